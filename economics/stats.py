"""Per (provider, effect type) statistics that the routing manifest ranks on (docs/architecture.md, "Economics").

The one definition of the plain (trailing-window) aggregation, shared by the market
simulator's ``ManifestPolicy`` (the former default, kept as the regret bench's baseline) and
the scenario tests; the economics job ranks on the discounted estimates of
``economics.bandit`` instead (docs/routing.md):

    executions       = rows (succeeded + failed, shadow copies included: they measure the
                       provider just as well; a cache hit's row is not one)
    success_rate     = succeeded / executions
    mean_cost_usd    = mean cost_usd of the succeeded rows (failures weigh through
                       success_rate, which multiplies the whole score)
    mean_duration_ms = mean duration_ms of the succeeded rows
    mean_quality     = mean composite of the ``scored`` quality rows (null if none)
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from economics.frames import collected
from economics.revenue import CACHE_STATUS, with_cache_columns
from economics.tallies import CLASS_COLUMNS, Tally, partial_aggs, shares

KEYS = ["provider_id", "effect_type"]

# What ``provider_stats`` sums per group before it divides (``economics.tallies``: sums and
# counts, so partial rows of finer groups — economics.cycle's windows — add up): the means
# are Σ / count of the non-null values, as polars' ``mean`` takes them. A cache hit's row
# (status ``cached``, economics.revenue) ran no provider: it is neither an execution nor a
# success nor a failure.
_OK = pl.col("status") == "succeeded"
_RAN = pl.col("status") != CACHE_STATUS
STAT_TALLIES: dict[str, Tally] = {
    "_s_executions": Tally(_RAN),
    "_s_ok": Tally(_OK),
    "_s_cost": Tally(_OK, "cost_usd"),
    "_s_cost_n": Tally(_OK, "cost_usd", count=True),
    "_s_duration": Tally(_OK, "duration_ms"),
    "_s_duration_n": Tally(_OK, "duration_ms", count=True),
}


def provider_stats(
    costs: pl.DataFrame | pl.LazyFrame,
    quality: pl.DataFrame,
    since: datetime | None = None,
) -> pl.DataFrame:
    """Aggregate execution costs and quality scores per (provider_id, effect_type).

    Args:
        costs: ``execution_costs`` rows: provider_id, effect_type, status, cost_usd,
            duration_ms (and finished_at, task_id when ``since`` is given); a DataFrame or a
            LazyFrame (streamed: the rows are never all held).
        quality: ``quality_scores`` rows: provider_id, effect_type, status, composite
            (and task_id when ``since`` is given).
        since: keep only executions finished at or after it (UTC), and the quality rows of
            those tasks (quality rows carry no time). A trailing window makes the ranking
            follow price shocks and drift within one window instead of diluting them in the
            whole history. None: all history.

    Returns:
        One row per (provider_id, effect_type) present in ``costs``, sorted by them:
        executions (UInt32), success_rate, mean_cost_usd, mean_duration_ms, mean_quality
        (all Float64; the means null when no row qualifies).
    """
    if since is not None:
        costs = costs.filter(pl.col("finished_at") >= since)
        quality = quality.join(collected(costs.select("task_id")), on="task_id", how="semi")
    partials = with_cache_columns(costs).group_by(*KEYS, *CLASS_COLUMNS).agg(**partial_aggs(STAT_TALLIES.values()))
    return from_stat_partials(collected(partials), quality)


def from_stat_partials(partials: pl.DataFrame, quality: pl.DataFrame) -> pl.DataFrame:
    """``provider_stats`` from rows of ``tallies.partial_aggs`` (of STAT_TALLIES at least)
    grouped by KEYS and ``tallies.CLASS_COLUMNS`` (or finer: the finer keys are summed
    away), and the quality rows of the same executions."""

    def mean(total: str, count: str) -> pl.Expr:
        return pl.when(pl.col(count) > 0).then(pl.col(total) / pl.col(count))

    q = quality.filter(pl.col("status") == "scored").group_by(KEYS).agg(mean_quality=pl.col("composite").mean())
    return (
        partials.with_columns(**shares(STAT_TALLIES))
        .group_by(KEYS)
        .agg(pl.col(c).sum() for c in STAT_TALLIES)
        .select(
            *KEYS,
            executions=pl.col("_s_executions").cast(pl.UInt32),
            success_rate=mean("_s_ok", "_s_executions"),
            mean_cost_usd=mean("_s_cost", "_s_cost_n"),
            mean_duration_ms=mean("_s_duration", "_s_duration_n").cast(pl.Float64),
        )
        .join(q, on=KEYS, how="left")
        .sort(KEYS)
    )
