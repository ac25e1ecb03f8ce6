"""Cost of an execution and what the user was charged for it (DESIGN.md §6).

cost_usd = compute_seconds × rate(instance_type) [× spot multiplier] + partner cost
margin   = (tokens charged − cost in tokens) / tokens charged,  cost in tokens = cost_usd / token_usd_rate

Storage, bandwidth and idle-share terms of DESIGN.md §6 arrive with the fuller cost model
(issue 3); their rates already live in the rate card.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class RateCard:
    """USD per compute-second by instance type, from ``data/rate_card.yaml``.

    Attributes:
        usd_per_second: instance type → USD per compute-second (hourly list price / 3600).
        spot_multiplier: factor applied to spot capacity (0..1).
    """

    usd_per_second: dict[str, float]
    spot_multiplier: float = 1.0

    @classmethod
    def from_dict(cls, doc: dict) -> RateCard:
        """Build from the parsed YAML (``instance_types: {name: {usd_per_hour}}``)."""
        rates = {k: float(v["usd_per_hour"]) / 3600.0 for k, v in doc["instance_types"].items()}
        return cls(rates, float(doc.get("spot_multiplier", 1.0)))

    def rate(self, instance_type: str) -> float:
        """USD per compute-second.

        Raises:
            KeyError: the instance type is not on the rate card (a provider declared an
                instance the business has no price for; better loud than free).
        """
        try:
            return self.usd_per_second[instance_type]
        except KeyError:
            raise KeyError(f"instance type {instance_type!r} is not on the rate card") from None


def execution_cost_usd(
    compute_seconds: float, instance_type: str, partner_cost_usd: float, rate_card: RateCard,
    spot: bool = False,
) -> float:
    """USD cost of one execution: compute × rate (× spot multiplier) + partner cost."""
    rate = rate_card.rate(instance_type) * (rate_card.spot_multiplier if spot else 1.0)
    return compute_seconds * rate + partner_cost_usd


def margin(tokens_charged: float, cost_tokens: float) -> float | None:
    """(charged − cost) / charged; None when nothing was charged (a failed task is pure cost)."""
    if tokens_charged <= 0:
        return None
    return (tokens_charged - cost_tokens) / tokens_charged


def cost_frame(
    outputs: pl.DataFrame, rate_card: RateCard, price_tokens: dict[str, int], token_usd_rate: float
) -> pl.DataFrame:
    """Add cost and margin columns to execution rows.

    Args:
        outputs: rows with ``status``, ``effect_type``, ``instance_type``, ``compute_seconds``,
            ``partner_cost_usd`` and (optional) ``selection``; shadow copies are never charged.
        rate_card: see RateCard.
        price_tokens: effect type → tokens charged per successful execution.
        token_usd_rate: USD per token.

    Returns:
        ``outputs`` plus ``compute_cost_usd``, ``cost_usd``, ``tokens_charged`` (Int64),
        ``revenue_usd``, ``cost_tokens`` and ``margin`` (null when nothing was charged).
    """
    rates = pl.DataFrame(
        {"instance_type": list(rate_card.usd_per_second),
         "_rate": list(rate_card.usd_per_second.values())}
    )
    prices = pl.DataFrame(
        {"effect_type": list(price_tokens), "_price": [int(p) for p in price_tokens.values()]},
        schema={"effect_type": pl.String, "_price": pl.Int64},
    )
    missing = set(outputs["instance_type"].drop_nulls().unique()) - set(rate_card.usd_per_second)
    if missing:
        raise KeyError(f"instance types not on the rate card: {sorted(missing)}")
    selection = pl.col("selection") if "selection" in outputs.columns else pl.lit("ranked")
    charged = (pl.col("status") == "succeeded") & (selection != "shadow")
    return (
        outputs.join(rates, on="instance_type", how="left")
        .join(prices, on="effect_type", how="left")
        .with_columns(
            compute_cost_usd=pl.col("compute_seconds").fill_null(0.0) * pl.col("_rate").fill_null(0.0),
            tokens_charged=pl.when(charged).then(pl.col("_price")).otherwise(0).cast(pl.Int64),
        )
        .with_columns(
            cost_usd=pl.col("compute_cost_usd") + pl.col("partner_cost_usd").fill_null(0.0),
            revenue_usd=pl.col("tokens_charged") * token_usd_rate,
        )
        .with_columns(cost_tokens=pl.col("cost_usd") / token_usd_rate)
        .with_columns(
            margin=pl.when(pl.col("tokens_charged") > 0)
            .then((pl.col("tokens_charged") - pl.col("cost_tokens")) / pl.col("tokens_charged"))
            .otherwise(None)
        )
        .drop("_rate", "_price")
    )
