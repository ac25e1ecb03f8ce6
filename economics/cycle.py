"""The marginality windows and the provider statistics of the same executions in one pass.

``marginality_windows`` and ``provider_stats`` each read every cost row once; a caller that
wants both from one large plan (a full recompute from the events: bench/economics_cycle.py)
reads it once here instead: one streaming group-by per (provider_id, effect_type[, source],
window index, the row's class: ``economics.tallies``) holding both functions' sums and
counts, then each function's own finishing step on those few rows. Both aggregate only sums
and counts, so the finer partial groups add up to exactly their groups (up to the order of
floating-point additions).
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from economics.frames import collected, names
from economics.marginality import MARGIN_TALLIES, from_marginality_partials, margin_keys, window_partials
from economics.revenue import with_cache_columns
from economics.stats import STAT_TALLIES, from_stat_partials
from economics.tallies import CLASS_COLUMNS, partial_aggs
from economics.telemetry import SUPERSEDED


def windows_and_stats(
    costs: pl.DataFrame | pl.LazyFrame, now: datetime, quality: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(marginality_windows(costs, now), provider_stats(costs, quality))`` in one pass.

    Args:
        costs: ``execution_costs`` rows (the columns both functions read), a DataFrame or a
            LazyFrame (streamed: the rows are never all held). With a ``SUPERSEDED`` column
            (``economics.telemetry.terminal_outcomes`` costed), the rows it marks are left
            out.
        now: end of the windows (UTC, tz-aware).
        quality: ``quality_scores`` rows of the same executions (see ``provider_stats``).
    """
    keys = margin_keys(costs)
    # Superseded outcomes are grouped apart and dropped with their few partial rows rather
    # than filtered out first: a filter copies every column of every row it keeps (measured
    # at 10 M executions: ~6 % less CPU for the whole cycle).
    marked = (SUPERSEDED,) if SUPERSEDED in names(costs) else ()
    aggs = partial_aggs([*MARGIN_TALLIES.values(), *STAT_TALLIES.values()])
    partials = collected(window_partials(with_cache_columns(costs), now, (*keys, *CLASS_COLUMNS, *marked), aggs))
    if marked:
        partials = partials.filter(~pl.col(SUPERSEDED))
    return from_marginality_partials(partials, now, keys), from_stat_partials(partials, quality)
