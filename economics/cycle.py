"""The marginality windows and the provider statistics of the same executions in one pass.

``marginality_windows`` and ``provider_stats`` each read every cost row once; a caller that
wants both from one large plan (a full recompute from the events: bench/economics_cycle.py)
reads it once here instead: one streaming group-by per (provider_id, effect_type[, source],
window index) holding both functions' sums and counts, then each function's own finishing
step on those few rows. Both aggregate only sums and counts, so the finer partial groups
add up to exactly their groups (up to the order of floating-point additions).
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from economics.frames import collected
from economics.marginality import MARGIN_SUMS, from_marginality_partials, margin_keys, window_partials
from economics.revenue import with_cache_columns
from economics.stats import STAT_SUMS, from_stat_partials


def windows_and_stats(
    costs: pl.DataFrame | pl.LazyFrame, now: datetime, quality: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(marginality_windows(costs, now), provider_stats(costs, quality))`` in one pass.

    Args:
        costs: ``execution_costs`` rows (the columns both functions read), a DataFrame or a
            LazyFrame (streamed: the rows are never all held).
        now: end of the windows (UTC, tz-aware).
        quality: ``quality_scores`` rows of the same executions (see ``provider_stats``).
    """
    keys = margin_keys(costs)
    rows = with_cache_columns(costs)
    partials = collected(window_partials(rows, now, keys, {**MARGIN_SUMS, **STAT_SUMS}))
    return from_marginality_partials(partials, now, keys), from_stat_partials(partials, quality)
