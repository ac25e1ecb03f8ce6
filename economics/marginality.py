"""Margin per provider × effect type over sliding windows (DESIGN.md §6).

MARGIN = (tokens charged − cost in tokens) / tokens charged, summed over the executions that
finished inside the window (a ratio of sums, not a mean of per-execution margins, so a
window's margin is the business's real margin on it).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

WINDOWS: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
}


def marginality_windows(costs: pl.DataFrame, now: datetime) -> pl.DataFrame:
    """Aggregate execution costs into 1h / 24h / 7d windows ending at ``now``.

    Args:
        costs: ``execution_costs`` rows (``finished_at`` UTC, ``provider_id``,
            ``effect_type``, ``status``, ``tokens_charged``, ``cost_tokens``,
            ``revenue_usd``, ``cost_usd``).
        now: window end (UTC, tz-aware).

    Returns:
        One row per (window, provider_id, effect_type) with executions, succeeded,
        tokens_charged, cost_tokens, revenue_usd, cost_usd and margin (null when nothing was
        charged in the window).
    """
    frames = []
    for name, length in WINDOWS.items():
        start = now - length
        frames.append(
            costs.filter((pl.col("finished_at") > start) & (pl.col("finished_at") <= now))
            .group_by("provider_id", "effect_type")
            .agg(
                executions=pl.len().cast(pl.Int64),
                succeeded=(pl.col("status") == "succeeded").sum().cast(pl.Int64),
                tokens_charged=pl.col("tokens_charged").sum().cast(pl.Int64),
                cost_tokens=pl.col("cost_tokens").sum(),
                revenue_usd=pl.col("revenue_usd").sum(),
                cost_usd=pl.col("cost_usd").sum(),
            )
            .with_columns(
                window=pl.lit(name), window_start=pl.lit(start), window_end=pl.lit(now)
            )
        )
    out = pl.concat(frames, how="vertical_relaxed") if frames else pl.DataFrame()
    return out.with_columns(
        margin=pl.when(pl.col("tokens_charged") > 0)
        .then((pl.col("tokens_charged") - pl.col("cost_tokens")) / pl.col("tokens_charged"))
        .otherwise(None)
    ).sort("window", "provider_id", "effect_type")
