"""Per (provider, effect type) statistics that the routing manifest ranks on (docs/architecture.md, "Economics").

The one definition of the plain (trailing-window) aggregation, shared by the market
simulator's ``ManifestPolicy`` (the former default, kept as the regret bench's baseline) and
the scenario tests; the economics job ranks on the discounted estimates of
``economics.bandit`` instead (docs/routing.md):

    executions       = rows (succeeded + failed, shadow copies included: they measure the
                       provider just as well)
    success_rate     = succeeded / executions
    mean_cost_usd    = mean cost_usd of the succeeded rows (failures weigh through
                       success_rate, which multiplies the whole score)
    mean_duration_ms = mean duration_ms of the succeeded rows
    mean_quality     = mean composite of the ``scored`` quality rows (null if none)
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

KEYS = ["provider_id", "effect_type"]


def provider_stats(
    costs: pl.DataFrame,
    quality: pl.DataFrame,
    since: datetime | None = None,
) -> pl.DataFrame:
    """Aggregate execution costs and quality scores per (provider_id, effect_type).

    Args:
        costs: ``execution_costs`` rows: provider_id, effect_type, status, cost_usd,
            duration_ms (and finished_at, task_id when ``since`` is given).
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
        quality = quality.join(costs.select("task_id"), on="task_id", how="semi")
    q = quality.filter(pl.col("status") == "scored").group_by(KEYS).agg(mean_quality=pl.col("composite").mean())
    ok = pl.col("status") == "succeeded"
    return (
        costs.group_by(KEYS)
        .agg(
            executions=pl.len(),
            success_rate=ok.mean(),
            mean_cost_usd=pl.col("cost_usd").filter(ok).mean(),
            mean_duration_ms=pl.col("duration_ms").filter(ok).mean(),
        )
        .join(q, on=KEYS, how="left")
        .sort(KEYS)
    )
