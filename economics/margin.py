"""Margin, defined once.

    margin = (charged − cost) / charged

the share of what users were charged that the business keeps (gross margin), a fraction:
0.25 = 25 %, negative when the work cost more than it brought in. ``charged`` and ``cost``
are in one unit — tokens (tokens charged and cost in tokens, cost USD / USD per token) or
USD (revenue and cost); the ratio is the same. When nothing was charged there is no margin
(None / null), not 0 or −∞: a failed task, a shadow copy or an A/B run is pure cost, and it
weighs on the margin of the window or cell it falls in, through that aggregate's cost.

Aggregates are ratios of sums (Σ charged − Σ cost) / Σ charged, never means of per-task
margins, so a window's margin is the business's real margin on it: pass the sums.
"""

from __future__ import annotations

import polars as pl


def margin(charged: float, cost: float) -> float | None:
    """(charged − cost) / charged; None when nothing was charged (``charged`` ≤ 0)."""
    if charged <= 0:
        return None
    return (charged - cost) / charged


def margin_expr(charged: pl.Expr | str, cost: pl.Expr | str) -> pl.Expr:
    """``margin`` as a Polars expression: Float64, null where ``charged`` ≤ 0 (or null).

    Args:
        charged: column name or expression (per row, or an aggregate such as
            ``pl.col("tokens_charged").sum()`` inside ``agg``).
        cost: the cost in the same unit, likewise.
    """
    charged = pl.col(charged) if isinstance(charged, str) else charged
    cost = pl.col(cost) if isinstance(cost, str) else cost
    return pl.when(charged > 0).then((charged - cost) / charged).otherwise(None)


def price_for_margin(cost: float, target: float) -> float:
    """The charge that leaves margin ``target`` on ``cost``: cost / (1 − target), the margin
    formula solved for ``charged``.

    Raises:
        ValueError: ``target`` ≥ 1 (no finite price keeps all of it).
    """
    if target >= 1:
        raise ValueError(f"a margin target must be below 1, got {target}")
    return cost / (1 - target)
