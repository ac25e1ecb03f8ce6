"""Margin and burn rate per provider × effect type over sliding windows (docs/architecture.md, "Economics").

MARGIN = (tokens charged − cost in tokens) / tokens charged (``economics.margin``), summed
over the executions that finished inside the window (a ratio of sums, not a mean of per-execution margins, so a
window's margin is the business's real margin on it).

BURN RATE = window total / window length in hours (USD of cost, tokens charged, …). The
divisor is the window's length, not the span of the data in it: a window only partly
covered by history reads low rather than extrapolating a few busy minutes to a day.

Windows are half-open on the left: an execution belongs to a window ending at ``now`` when
``now − length < finished_at ≤ now``.

Related: "why margin moved" is ``economics.decomposition``, the next 24 h is
``economics.forecast``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import polars as pl

from economics.margin import margin_expr

WINDOWS: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
}

BURN_RATE_COLUMNS = ("cost_usd", "revenue_usd", "tokens_charged", "cost_tokens")


def _per_window(
    costs: pl.DataFrame,
    now: datetime,
    by: Sequence[str],
    aggs: dict[str, pl.Expr],
) -> pl.DataFrame:
    """``aggs`` over the rows of each window ending at ``now``, grouped by ``by``; one
    frame with ``window``, ``window_start``, ``window_end`` first."""
    frames = []
    for name, length in WINDOWS.items():
        start = now - length
        inside = costs.filter((pl.col("finished_at") > start) & (pl.col("finished_at") <= now))
        agg = inside.group_by(*by).agg(**aggs) if by else inside.select(**aggs)
        frames.append(agg.with_columns(window=pl.lit(name), window_start=pl.lit(start), window_end=pl.lit(now)))
    out = pl.concat(frames, how="vertical_relaxed")
    return out.select("window", "window_start", "window_end", *by, *aggs)


def marginality_windows(costs: pl.DataFrame, now: datetime) -> pl.DataFrame:
    """Aggregate execution costs into 1h / 24h / 7d windows ending at ``now``.

    Args:
        costs: ``execution_costs`` rows (``finished_at`` UTC, ``provider_id``,
            ``effect_type``, ``status``, ``tokens_charged``, ``cost_tokens``,
            ``revenue_usd``, ``cost_usd``).
        now: window end (UTC, tz-aware).

    Returns:
        One row per (window, provider_id, effect_type[, source]) with executions, succeeded,
        tokens_charged, cost_tokens, revenue_usd, cost_usd and margin (null when nothing was
        charged in the window). When ``costs`` has a ``source`` column ('real' /
        'simulated'), it is a grouping key: simulated money never mixes with real money.
    """
    keys = ("provider_id", "effect_type") + (("source",) if "source" in costs.columns else ())
    out = _per_window(
        costs,
        now,
        keys,
        {
            "executions": pl.len().cast(pl.Int64),
            "succeeded": (pl.col("status") == "succeeded").sum().cast(pl.Int64),
            "tokens_charged": pl.col("tokens_charged").sum().cast(pl.Int64),
            "cost_tokens": pl.col("cost_tokens").sum(),
            "revenue_usd": pl.col("revenue_usd").sum(),
            "cost_usd": pl.col("cost_usd").sum(),
        },
    )
    return out.with_columns(margin=margin_expr("tokens_charged", "cost_tokens")).sort("window", *keys)


def burn_rates(costs: pl.DataFrame, now: datetime, by: Sequence[str] = ()) -> pl.DataFrame:
    """Spend and consumption per hour over the 1h / 24h / 7d windows ending at ``now``.

    Args:
        costs: ``execution_costs`` rows (``finished_at``, ``cost_usd``, ``revenue_usd``,
            ``tokens_charged``, ``cost_tokens`` and the ``by`` columns).
        now: window end (UTC, tz-aware).
        by: grouping columns, e.g. ``("provider_id", "effect_type")``; () = whole platform.

    Returns:
        One row per window (× group; the platform-wide frame always has all three windows,
        zeros when nothing ran): window, window_start, window_end, *by, hours,
        executions, and ``<column>_per_hour`` for cost_usd, revenue_usd,
        tokens_charged (the tokens consumed by users) and cost_tokens; all Float64.
    """
    totals = _per_window(
        costs,
        now,
        tuple(by),
        {
            "executions": pl.len().cast(pl.Int64),
            **{c: pl.col(c).sum().cast(pl.Float64) for c in BURN_RATE_COLUMNS},
        },
    )
    hours = pl.col("window").replace_strict(
        {name: length.total_seconds() / 3600 for name, length in WINDOWS.items()},
        return_dtype=pl.Float64,
    )
    return (
        totals.with_columns(hours=hours)
        .with_columns(**{f"{c}_per_hour": pl.col(c).fill_null(0.0) / pl.col("hours") for c in BURN_RATE_COLUMNS})
        .drop(*BURN_RATE_COLUMNS)
        .sort(pl.col("hours"), *by)
    )
