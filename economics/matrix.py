"""The provider × effect matrix: quality, time, cost per run and margin per provider and
effect type, from benchmark runs or from real executions (same aggregation for both, so the
two sources can be compared cell by cell)."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from economics.margin import margin_expr


def provider_effect_matrix(
    runs: pl.DataFrame, source: str, computed_at: datetime, benchmark_id: str | None = None
) -> pl.DataFrame:
    """Aggregate runs per (provider_id, effect_type).

    Args:
        runs: one row per run with ``provider_id``, ``effect_type``, ``status``
            ('succeeded'/'failed'), ``composite`` (null when not scored), ``duration_ms``,
            ``cost_usd``, ``tokens_charged``, ``cost_tokens``.
        source: ``benchmark``, ``executions`` (real) or ``simulated``.

    Returns:
        ``provider_effect_matrix`` rows: runs, success_rate, mean_quality (scored runs),
        p50/p95 duration of successes (ms), mean cost per run (USD, all runs: a failure
        costs too), margin = (Σ tokens charged − Σ cost tokens) / Σ tokens charged.
    """
    ok = pl.col("status") == "succeeded"
    charged = pl.col("tokens_charged").sum()
    return (
        runs.group_by("provider_id", "effect_type")
        .agg(
            runs=pl.len().cast(pl.Int64),
            success_rate=ok.mean(),
            mean_quality=pl.col("composite").mean(),
            p50_duration_ms=pl.col("duration_ms").filter(ok).quantile(0.5),
            p95_duration_ms=pl.col("duration_ms").filter(ok).quantile(0.95),
            mean_cost_usd=pl.col("cost_usd").mean(),
            margin=margin_expr(charged, pl.col("cost_tokens").sum()),
        )
        .with_columns(
            source=pl.lit(source), benchmark_id=pl.lit(benchmark_id, pl.String), computed_at=pl.lit(computed_at)
        )
        .sort("effect_type", "provider_id")
    )
