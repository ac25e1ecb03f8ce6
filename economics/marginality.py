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

from economics.frames import collected, names
from economics.margin import margin_expr
from economics.revenue import with_cache_columns
from economics.tallies import CLASS_COLUMNS, Tally, partial_aggs, shares

WINDOWS: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
}

BURN_RATE_COLUMNS = ("cost_usd", "revenue_usd", "tokens_charged", "cost_tokens")


# The column of a partial aggregate holding the position in WINDOWS (shortest first) of the
# shortest window a row belongs to; null for a row in none of them.
WINDOW_INDEX = "_window"


def _lengths() -> list[timedelta]:
    lengths = list(WINDOWS.values())
    assert lengths == sorted(lengths), "WINDOWS are listed shortest first"
    return lengths


def window_index(now: datetime) -> pl.Expr:
    """Position in ``WINDOWS`` (shortest first) of the shortest window ending at ``now`` that
    holds the row's ``finished_at``, named WINDOW_INDEX; null when no window holds it (older
    than the longest, later than ``now``, or no time). The windows are nested, so a row
    belongs to its own window and every longer one."""
    index = pl.lit(None, dtype=pl.Int8)
    for i, length in reversed(list(enumerate(_lengths()))):
        index = pl.when(pl.col("finished_at") > now - length).then(pl.lit(i, dtype=pl.Int8)).otherwise(index)
    return pl.when(pl.col("finished_at") <= now).then(index).alias(WINDOW_INDEX)


def window_partials(
    costs: pl.DataFrame | pl.LazyFrame, now: datetime, by: Sequence[str], aggs: dict[str, pl.Expr]
) -> pl.DataFrame | pl.LazyFrame:
    """``aggs`` per ``by`` and WINDOW_INDEX: the one pass over the rows behind every window.

    Args:
        costs: rows with ``finished_at`` and what ``aggs`` read (a DataFrame or a LazyFrame;
            the result is of the same kind).
        now: window end (UTC, tz-aware).
        by: grouping columns.
        aggs: sums and counts only — aggregates that add up across partial rows, which
            ``from_window_partials`` sums per window.
    """
    return costs.group_by(*by, window_index(now)).agg(**aggs)


def from_window_partials(partials: pl.DataFrame, now: datetime, by: Sequence[str], sums: Sequence[str]) -> pl.DataFrame:
    """The ``sums`` columns of ``window_partials`` rows added up per window (its own index
    and every shorter one's) and ``by``: one frame with ``window``, ``window_start``,
    ``window_end``, ``by`` and ``sums``. Without ``by`` every window has a row (zeros when
    empty); with ``by`` a group appears in the windows it has rows in."""
    frames = []
    for i, (name, length) in enumerate(WINDOWS.items()):
        inside = partials.filter(pl.col(WINDOW_INDEX) <= i)
        totals = [pl.col(c).sum() for c in sums]
        agg = inside.group_by(*by).agg(totals) if by else inside.select(totals)
        frames.append(agg.with_columns(window=pl.lit(name), window_start=pl.lit(now - length), window_end=pl.lit(now)))
    out = pl.concat(frames, how="vertical_relaxed")
    return out.select("window", "window_start", "window_end", *by, *sums)


def _per_window(
    costs: pl.DataFrame | pl.LazyFrame,
    now: datetime,
    by: Sequence[str],
    aggs: dict[str, pl.Expr],
) -> pl.DataFrame:
    """``aggs`` (sums and counts) over the rows of each window ending at ``now``, grouped by
    ``by``; one frame with ``window``, ``window_start``, ``window_end`` first. One pass over
    ``costs`` (streamed when it is a LazyFrame), not one per window."""
    return from_window_partials(collected(window_partials(costs, now, by, aggs)), now, by, list(aggs))


# The marginality tallies (``economics.tallies``: sums and counts, which ``window_partials``
# adds up per window), over rows with ``cache_hit`` (``economics.revenue.with_cache_columns``):
# a cache hit is not an execution, its charge is revenue at no cost and what it saved is
# summed apart.
MARGIN_TALLIES: dict[str, Tally] = {
    "executions": Tally(~pl.col("cache_hit")),
    "succeeded": Tally(pl.col("status") == "succeeded"),
    "cache_hits": Tally(pl.col("cache_hit")),
    "saved_cost_usd": Tally(value="saved_cost_usd", dtype=pl.Float64),
    "tokens_charged": Tally(value="tokens_charged", dtype=pl.Int64),
    "cost_tokens": Tally(value="cost_tokens"),
    "revenue_usd": Tally(value="revenue_usd"),
    "cost_usd": Tally(value="cost_usd"),
}


def margin_keys(costs: pl.DataFrame | pl.LazyFrame) -> tuple[str, ...]:
    """The marginality grouping: provider_id, effect_type, and ``source`` when ``costs`` has it."""
    return ("provider_id", "effect_type") + (("source",) if "source" in names(costs) else ())


def marginality_windows(costs: pl.DataFrame | pl.LazyFrame, now: datetime) -> pl.DataFrame:
    """Aggregate execution costs into 1h / 24h / 7d windows ending at ``now``.

    Args:
        costs: ``execution_costs`` rows (``finished_at`` UTC, ``provider_id``,
            ``effect_type``, ``status``, ``tokens_charged``, ``cost_tokens``,
            ``revenue_usd``, ``cost_usd``; ``cache_hit`` and ``saved_cost_usd`` when it has
            cache hits), a DataFrame or a LazyFrame (streamed in one pass: the rows are never
            all held).
        now: window end (UTC, tz-aware).

    Returns:
        One row per (window, provider_id, effect_type[, source]) with executions (provider
        executions), succeeded, cache_hits (effect runs served from the result cache: their
        charge is in tokens_charged and revenue_usd at no cost), saved_cost_usd (what those
        hits' reused outputs cost to make), tokens_charged, cost_tokens, revenue_usd, cost_usd
        and margin (null when nothing was charged in the window). When ``costs`` has a ``source`` column ('real' /
        'simulated'), it is a grouping key: simulated money never mixes with real money.
    """
    keys = margin_keys(costs)
    rows = with_cache_columns(costs)
    partials = window_partials(rows, now, (*keys, *CLASS_COLUMNS), partial_aggs(MARGIN_TALLIES.values()))
    return from_marginality_partials(collected(partials), now, keys)


def from_marginality_partials(partials: pl.DataFrame, now: datetime, keys: Sequence[str]) -> pl.DataFrame:
    """``marginality_windows`` from ``window_partials`` rows of ``tallies.partial_aggs``
    (of MARGIN_TALLIES at least) grouped by ``keys`` and ``tallies.CLASS_COLUMNS`` (or
    finer: the finer keys are summed away)."""
    out = from_window_partials(partials.with_columns(**shares(MARGIN_TALLIES)), now, keys, list(MARGIN_TALLIES))
    return out.with_columns(margin=margin_expr("tokens_charged", "cost_tokens")).sort("window", *keys)


def burn_rates(costs: pl.DataFrame | pl.LazyFrame, now: datetime, by: Sequence[str] = ()) -> pl.DataFrame:
    """Spend and consumption per hour over the 1h / 24h / 7d windows ending at ``now``.

    Args:
        costs: ``execution_costs`` rows (``finished_at``, ``cost_usd``, ``revenue_usd``,
            ``tokens_charged``, ``cost_tokens`` and the ``by`` columns).
        now: window end (UTC, tz-aware).
        by: grouping columns, e.g. ``("provider_id", "effect_type")``; () = whole platform.

    Returns:
        One row per window (× group; the platform-wide frame always has all three windows,
        zeros when nothing ran): window, window_start, window_end, *by, hours,
        executions (provider executions; a cache hit's charge is in the money, not here), and
        ``<column>_per_hour`` for cost_usd, revenue_usd,
        tokens_charged (the tokens consumed by users) and cost_tokens; all Float64.
    """
    totals = _per_window(
        with_cache_columns(costs),
        now,
        tuple(by),
        {
            "executions": (~pl.col("cache_hit")).sum().cast(pl.Int64),  # cache hits ran nothing
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
