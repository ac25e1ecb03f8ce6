"""Why margin moved between two periods (docs/architecture.md, "Economics"): price, cost per run, volume, mix.

Measured in margin USD (revenue − cost), per cell = provider × effect type. For cell i in
period X ∈ {A, B}:

    n_i  runs (executions of every status — a failed or shadow run costs and earns nothing)
    p_i  = revenue_i / n_i            price: realised revenue per run, USD
    c_i  = cost_i / n_i               cost per run, USD
    u_i  = p_i − c_i                  unit margin
    N    = Σ n_i,   s_i = n_i / N     volume and mix share

    M = Σ_i n_i · u_i = N · Σ_i s_i (p_i − c_i)          (margin USD of the period)

ΔM = M_B − M_A is shared among four factors — volume N, mix s, price p, cost c, each
switched as a whole from its A to its B value — by their Shapley values: a factor's effect
is its marginal contribution averaged over the 4! orders of switching (Shapley 1953;
applied to decomposition in Shorrocks, "Decomposition procedures for distributional
analysis", J. Econ. Inequality 2013). Unlike the sequential price-volume-mix variance, the
result does not depend on an arbitrary order, a factor that did not change gets exactly 0,
and the four parts sum to ΔM exactly (Shapley efficiency).

M is a sum over cells of N·s_i·p_i − N·s_i·c_i; for a product x·y·z the Shapley share of x
is Δx·[(y_A z_A + y_B z_B)/3 + (y_A z_B + y_B z_A)/6] (x first or last: 1/3 each; x second,
after y or after z: 1/6 each). Hence, per cell,

    price_i  =  Δp_i · w(N, s)            w(x, y) = (x_A y_A + x_B y_B)/3 + (x_A y_B + x_B y_A)/6
    cost_i   = −Δc_i · w(N, s)
    volume_i =  ΔN   · w(s_i, u_i)
    mix_i    =  Δs_i · w(N, u_i)

and price_i + cost_i + volume_i + mix_i = M_iB − M_iA (Δx = x_B − x_A). Signs: a positive
effect raised margin (a positive cost effect means runs got cheaper).

Cells present in one period only: the missing period's price and cost per run are taken
from the other period, so a cell that appears or disappears has no price or cost effect —
its margin enters or leaves through mix (share 0 ↔ s) and volume. A period with no runs at
all takes the other period's shares: the whole change is then volume.

"Price" is realised revenue per run, so a higher share of uncharged runs (failures, shadow
copies) in a cell shows up as a lower price there; the change in margin % (margin USD /
revenue, ratio of sums) is reported alongside but not decomposed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl

from economics.margin import margin

CELL = ("provider_id", "effect_type")
EFFECTS = ("price_effect", "cost_effect", "volume_effect", "mix_effect")


@dataclass(frozen=True)
class MarginChange:
    """The decomposition of one change.

    Attributes:
        cells: per cell: provider_id, effect_type, runs_a/b, price_a/b, cost_per_run_a/b
            (USD per run; a missing period's filled from the other), margin_usd_a/b,
            change, price_effect, cost_effect, volume_effect, mix_effect (USD).
        margin_usd_a, margin_usd_b, change: totals (USD); change = margin_usd_b − margin_usd_a.
        price_effect, cost_effect, volume_effect, mix_effect: USD; they sum to ``change``.
        margin_pct_a, margin_pct_b: margin / revenue (None without revenue);
        margin_pct_change: their difference (None if either is None).
    """

    cells: pl.DataFrame
    margin_usd_a: float
    margin_usd_b: float
    change: float
    price_effect: float
    cost_effect: float
    volume_effect: float
    mix_effect: float
    margin_pct_a: float | None
    margin_pct_b: float | None
    margin_pct_change: float | None


def period_cells(costs: pl.DataFrame) -> pl.DataFrame:
    """Runs, revenue and cost per provider × effect type of one period.

    Args:
        costs: ``execution_costs`` rows (``provider_id``, ``effect_type``, ``revenue_usd``,
            ``cost_usd``), already restricted to the period.

    Returns:
        provider_id, effect_type, runs (Int64), revenue_usd, cost_usd (Float64), sorted.
    """
    return (
        costs.group_by(*CELL)
        .agg(
            runs=pl.len().cast(pl.Int64),
            revenue_usd=pl.col("revenue_usd").fill_null(0.0).sum().cast(pl.Float64),
            cost_usd=pl.col("cost_usd").fill_null(0.0).sum().cast(pl.Float64),
        )
        .sort(*CELL)
    )


def _w(x: str, y: str) -> pl.Expr:
    """w(x, y) of the module docstring, over columns ``{x}_a``, ``{x}_b``, ``{y}_a``, ``{y}_b``."""
    xa, xb, ya, yb = (pl.col(f"{x}_a"), pl.col(f"{x}_b"), pl.col(f"{y}_a"), pl.col(f"{y}_b"))
    return (xa * ya + xb * yb) / 3 + (xa * yb + xb * ya) / 6


def _side(cells: pl.DataFrame, suffix: str) -> pl.DataFrame:
    """Validate one period's cells and suffix their columns."""
    dupes = cells.group_by(*CELL).len().filter(pl.col("len") > 1)
    if dupes.height:
        raise ValueError(f"cells listed twice: {dupes.select(*CELL).rows()}")
    if cells.filter(pl.col("runs") <= 0).height:
        raise ValueError("every cell needs runs > 0 (price and cost are per run)")
    return cells.select(
        *CELL, **{f"{c}_{suffix}": pl.col(c).cast(pl.Float64) for c in ("runs", "revenue_usd", "cost_usd")}
    )


def decompose_margin_change(cells_a: pl.DataFrame, cells_b: pl.DataFrame) -> MarginChange:
    """Split the change of margin USD from period A to period B (formulas: module doc).

    Args:
        cells_a, cells_b: ``period_cells`` frames (provider_id, effect_type, runs > 0,
            revenue_usd, cost_usd) of the two periods.

    Raises:
        ValueError: a cell is listed twice or has runs ≤ 0.
    """
    both = _side(cells_a, "a").join(_side(cells_b, "b"), on=list(CELL), how="full", coalesce=True)
    both = both.with_columns(
        pl.col(f"{c}_{x}").fill_null(0.0) for c in ("runs", "revenue_usd", "cost_usd") for x in "ab"
    )
    total_a, total_b = both["runs_a"].sum(), both["runs_b"].sum()
    # an empty period takes the other's shares, so its absence is all volume
    share_a = pl.col("runs_a") / total_a if total_a else pl.col("runs_b") / total_b
    share_b = pl.col("runs_b") / total_b if total_b else share_a
    per_run = {
        x: {
            "price": pl.col(f"revenue_usd_{x}") / pl.col(f"runs_{x}"),
            "cost": pl.col(f"cost_usd_{x}") / pl.col(f"runs_{x}"),
        }
        for x in "ab"
    }
    cells = (
        both.with_columns(
            N_a=pl.lit(float(total_a)),
            N_b=pl.lit(float(total_b)),
            s_a=share_a,
            s_b=share_b,
            **{
                f"{k}_{x}": pl.when(pl.col(f"runs_{x}") > 0)
                .then(per_run[x][k])
                .otherwise(per_run["b" if x == "a" else "a"][k])
                for k in ("price", "cost")
                for x in "ab"
            },
        )
        .with_columns(u_a=pl.col("price_a") - pl.col("cost_a"), u_b=pl.col("price_b") - pl.col("cost_b"))
        .with_columns(
            price_effect=(pl.col("price_b") - pl.col("price_a")) * _w("N", "s"),
            cost_effect=-(pl.col("cost_b") - pl.col("cost_a")) * _w("N", "s"),
            volume_effect=(pl.col("N_b") - pl.col("N_a")) * _w("s", "u"),
            mix_effect=(pl.col("s_b") - pl.col("s_a")) * _w("N", "u"),
            margin_usd_a=pl.col("revenue_usd_a") - pl.col("cost_usd_a"),
            margin_usd_b=pl.col("revenue_usd_b") - pl.col("cost_usd_b"),
        )
        .with_columns(change=pl.col("margin_usd_b") - pl.col("margin_usd_a"))
        .select(
            *CELL,
            pl.col("runs_a").cast(pl.Int64),
            pl.col("runs_b").cast(pl.Int64),
            "price_a",
            "price_b",
            pl.col("cost_a").alias("cost_per_run_a"),
            pl.col("cost_b").alias("cost_per_run_b"),
            "margin_usd_a",
            "margin_usd_b",
            "change",
            *EFFECTS,
        )
        .sort(*CELL)
    )
    revenue_a, cost_a = float(both["revenue_usd_a"].sum()), float(both["cost_usd_a"].sum())
    revenue_b, cost_b = float(both["revenue_usd_b"].sum()), float(both["cost_usd_b"].sum())
    margin_a, margin_b = revenue_a - cost_a, revenue_b - cost_b
    pct_a, pct_b = margin(revenue_a, cost_a), margin(revenue_b, cost_b)
    price_effect, cost_effect, volume_effect, mix_effect = (float(cells[e].sum()) for e in EFFECTS)
    return MarginChange(
        cells,
        margin_a,
        margin_b,
        margin_b - margin_a,
        price_effect,
        cost_effect,
        volume_effect,
        mix_effect,
        pct_a,
        pct_b,
        pct_b - pct_a if pct_a is not None and pct_b is not None else None,
    )


def why_margin_moved(
    costs: pl.DataFrame,
    period_a: tuple[datetime, datetime],
    period_b: tuple[datetime, datetime],
) -> MarginChange:
    """``decompose_margin_change`` of two periods of ``execution_costs``; a period
    ``(start, end)`` holds the executions with ``start < finished_at ≤ end`` (as the
    marginality windows)."""

    def cells(start: datetime, end: datetime) -> pl.DataFrame:
        inside = (pl.col("finished_at") > start) & (pl.col("finished_at") <= end)
        return period_cells(costs.filter(inside))

    return decompose_margin_change(cells(*period_a), cells(*period_b))
