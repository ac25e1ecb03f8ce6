"""Routing regret on a simulated market with a price shock, an outage, a failure spike and
drift: cumulative margin of routing policies over the same demand.

Usage: ``python bench/routing_regret.py [hours] [jobs_per_hour] [seeds]`` (defaults 48, 2000,
3). Prices come from data/effects.yaml, instance rates from data/rate_card.yaml, and
token_usd_rate is 0.01 USD (the Settings default).

Policies (all routers of economics.simulator.simulate, re-deciding every 15 simulated min):
  manifest ε-greedy   build_manifest on provider_stats of the history (trailing window as
                      named), weights 1−ε / ε/(n−1), ε = 5% — what the economics job does
  oracle (score)      the manifest's own score on the market's TRUE current statistics, no
                      exploration: the regret baseline (same objective, perfect knowledge)
  oracle (margin)     the provider with the highest true expected margin per job — what a
                      margin-only objective would earn (quality ignored)
  static cheapest     the provider with the cheapest list cost at the start, forever
  manifest greedy     the manifest with ε = 0: separates the cost of exploring from the
                      cost of estimating (a provider without executions in the window falls
                      back to the neutral priors, which is its only way back in)

margin = Σ tokens charged − Σ cost in tokens (cost_frame; failed calls are pure cost),
regret = oracle (score) margin − policy margin, in tokens. Same seed ⇒ same arrivals and
effect mix for every policy; outcomes differ only through the provider chosen.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import yaml

from economics.cost_model import RateCard, cost_frame
from economics.simulator import (
    ManifestPolicy,
    Market,
    OraclePolicy,
    Outage,
    ProviderModel,
    Shock,
    diurnal,
    simulate,
)

ROOT = Path(__file__).resolve().parents[1]
TOKEN_USD_RATE = 0.01
T0 = datetime(2026, 3, 2, tzinfo=UTC)
CYCLE = timedelta(minutes=15)


def market() -> Market:
    """Four effect types, three providers each, GPU- and partner-priced where AI effects are.

    Events: toon-api (cheapest cartoon at list price) raises its price ×5 at hour 12;
    rife-l4 (cheapest and best-scored slow motion) is down 20:00–23:00 and fails 40% of
    calls from hour 30;
    opencv-curves' compute grows 20%/day; grade-api's quality decays 0.03/day.
    """
    m = ProviderModel
    models = (
        m("toon-api", "cartoon", "cpu-2c", 1.0, partner_cost_usd=0.004, quality_mean=0.80, latency_median_ms=8_000),
        m("comfy-l4", "cartoon", "gpu-l4", 40.0, quality_mean=0.85, latency_median_ms=45_000),
        m("comfy-a10g", "cartoon", "gpu-a10g", 25.0, quality_mean=0.84, latency_median_ms=30_000, failure_rate=0.03),
        m("slowmo-mci", "slow_motion", "cpu-8c", 120.0, quality_mean=0.90, latency_median_ms=120_000),
        m("rife-l4", "slow_motion", "gpu-l4", 6.0, quality_mean=0.88, latency_median_ms=10_000),
        m("slowmo-blend", "slow_motion", "cpu-2c", 60.0, quality_mean=0.70, latency_median_ms=60_000),
        *(
            m(
                p,
                e,
                inst,
                s,
                partner_cost_usd=pc,
                quality_mean=q,
                latency_median_ms=lat,
                cost_drift_per_day=cd,
                quality_drift_per_day=qd,
            )
            for e in ("warm_grade", "cool_grade")
            for p, inst, s, pc, q, lat, cd, qd in (
                ("ffmpeg-colortemp", "cpu-2c", 2.0, 0.0, 0.78, 2_000, 0.0, 0.0),
                ("opencv-curves", "cpu-2c", 6.0, 0.0, 0.80, 6_000, 0.2, 0.0),
                ("grade-api", "cpu-2c", 0.5, 0.001, 0.90, 3_000, 0.0, -0.03),
            )
        ),
    )
    return Market(
        models,
        T0,
        shocks=(
            Shock("toon-api", T0 + timedelta(hours=12), cost_factor=5.0),
            Shock("rife-l4", T0 + timedelta(hours=30), failure_rate=0.4),
        ),
        outages=(Outage("rife-l4", T0 + timedelta(hours=20), T0 + timedelta(hours=23)),),
        volume_by_hour=diurnal(0.4),
        latency_load_elasticity=0.3,
    )


class MarginOracle:
    """Every job to the provider with the highest true expected margin per job:
    success · price − expected cost per call (failures included)."""

    def __init__(self, market: Market, card: RateCard, prices_usd: dict[str, float]):
        self.market, self.card, self.prices = market, card, prices_usd

    def __call__(self, now, history):
        s = self.market.expected_stats(now, self.card).with_columns(
            m=pl.col("success_rate") * pl.col("effect_type").replace_strict(self.prices) - pl.col("cost_per_call_usd")
        )
        active = self.market.providers_by_effect()
        return {
            e: {
                s.filter(pl.col("effect_type") == e, pl.col("provider_id").is_in(ps)).sort("m", descending=True)[
                    "provider_id"
                ][0]: 1.0
            }
            for e, ps in active.items()
        }


def static_cheapest(market: Market, card: RateCard):
    """Router fixed at the start: the cheapest list cost per effect type."""
    s = market.expected_stats(market.origin, card)
    table = {
        e: {
            s.filter(pl.col("effect_type") == e, pl.col("provider_id").is_in(ps)).sort("mean_cost_usd")["provider_id"][
                0
            ]: 1.0
        }
        for e, ps in market.providers_by_effect().items()
    }
    return lambda now, history: table


def summarise(rows: pl.DataFrame, card: RateCard, prices: dict[str, int]) -> dict:
    c = cost_frame(rows, card, prices, TOKEN_USD_RATE)
    charged, cost = float(c["tokens_charged"].sum()), float(c["cost_tokens"].sum())
    return {
        "jobs": c.height,
        "success": float((c["status"] == "succeeded").mean()),
        "quality": float(c["composite"].mean()),
        "charged": charged,
        "cost": cost,
        "margin": charged - cost,
    }


def main(hours: float, rate: float, seeds: int) -> None:
    card = RateCard.from_dict(yaml.safe_load((ROOT / "data/rate_card.yaml").read_text()))
    prices = {
        k: int(v["price_tokens"])
        for k, v in yaml.safe_load((ROOT / "data/effects.yaml").read_text())["effects"].items()
    }
    mk = market()
    active = mk.providers_by_effect()
    policies = {
        "oracle (score)": lambda: OraclePolicy(mk, card),
        "oracle (margin)": lambda: MarginOracle(mk, card, {e: p * TOKEN_USD_RATE for e, p in prices.items()}),
        "manifest ε-greedy, window 1h": lambda: ManifestPolicy(active, card, window=timedelta(hours=1)),
        "manifest greedy ε=0, window 1h": lambda: ManifestPolicy(active, card, epsilon=0.0, window=timedelta(hours=1)),
        "manifest ε-greedy, window 6h": lambda: ManifestPolicy(active, card, window=timedelta(hours=6)),
        "manifest ε-greedy, all history": lambda: ManifestPolicy(active, card),
        "static cheapest list price": lambda: static_cheapest(mk, card),
    }
    results: dict[str, list[dict]] = {name: [] for name in policies}
    started = time.perf_counter()
    for seed in range(1, seeds + 1):
        for name, make in policies.items():
            rows = simulate(mk, T0, hours, rate, seed, router=make(), cycle=CYCLE)
            results[name].append(summarise(rows, card, prices))
    base = [r["margin"] for r in results["oracle (score)"]]
    # Per policy and seed: margin lost against the oracle on the same seed.
    regrets = {name: [b - r["margin"] for b, r in zip(base, rs, strict=True)] for name, rs in results.items()}
    table = pl.DataFrame(
        [
            {
                "policy": name,
                "jobs": sum(r["jobs"] for r in rs) / seeds,
                "success %": 100 * sum(r["success"] for r in rs) / seeds,
                "quality": sum(r["quality"] for r in rs) / seeds,
                "charged tok": sum(r["charged"] for r in rs) / seeds,
                "cost tok": sum(r["cost"] for r in rs) / seeds,
                "margin tok": sum(r["margin"] for r in rs) / seeds,
                "margin %": 100 * sum(r["margin"] for r in rs) / sum(r["charged"] for r in rs),
                "regret tok": sum(regrets[name]) / seeds,
                "regret min..max": f"{min(regrets[name]):.0f}..{max(regrets[name]):.0f}",
            }
            for name, rs in results.items()
        ]
    )
    print(
        f"{hours:g} h × {rate:g} jobs/h, mean over {seeds} seed(s), cycle {CYCLE}, "
        f"token_usd_rate {TOKEN_USD_RATE} — {time.perf_counter() - started:.1f} s"
    )
    with pl.Config(
        tbl_rows=-1,
        tbl_cols=-1,
        tbl_width_chars=200,
        float_precision=2,
        tbl_hide_dataframe_shape=True,
        tbl_hide_column_data_types=True,
    ):
        print(table)


if __name__ == "__main__":
    args = sys.argv[1:]
    main(
        float(args[0]) if args else 48.0,
        float(args[1]) if len(args) > 1 else 2000.0,
        int(args[2]) if len(args) > 2 else 3,
    )
