"""Revenue recognised from the token ledger.

``cost_frame`` prices a successful, user-visible task at its list price; the ledger knows
what was really kept: a task consumed and later refunded (admin rejection, no usable
result) earned nothing. Where a task has a ledger settlement, its net ``spent`` tokens are
the revenue; tasks without one (simulated history, never reserved) keep the list price.
"""

from __future__ import annotations

import polars as pl

from economics.margin import margin_expr


def recognise(costs: pl.DataFrame, settlements: pl.DataFrame, token_usd_rate: float) -> pl.DataFrame:
    """Replace ``tokens_charged`` by the ledger's net charge where one exists and recompute
    ``revenue_usd`` and ``margin`` (``economics.margin``: (charged − cost tokens) / charged; null when 0).

    Args:
        costs: ``cost_frame`` output (``task_id``, ``tokens_charged``, ``cost_tokens``…).
        settlements: ``economics.ledger.task_settlements`` rows (``task_id``, ``spent``).
        token_usd_rate: USD per token.
    """
    spent = settlements.select("task_id", _spent=pl.col("spent"))
    return (
        costs.join(spent, on="task_id", how="left")
        .with_columns(tokens_charged=pl.coalesce("_spent", "tokens_charged").cast(pl.Int64))
        .with_columns(revenue_usd=pl.col("tokens_charged") * token_usd_rate)
        .with_columns(margin=margin_expr("tokens_charged", "cost_tokens"))
        .drop("_spent")
    )
