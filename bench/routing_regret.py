"""Routing regret on simulated markets of several shapes: cumulative margin of routing policies
over the same demand, against an oracle that knows the market's true current statistics.

Usage: ``python bench/routing_regret.py [hours] [seeds] [scenario…]`` (defaults 48, 2, every
scenario). Prices come from data/effects.yaml, instance rates from data/rate_card.yaml, and
token_usd_rate is 0.01 USD (the Settings default). The table printed is the one in
docs/routing.md.

Scenarios (``SCENARIOS``):
  shock          4 effect types × 3 providers at 2,000 jobs/h: a 5× price shock on the
                 cheapest cartoon provider (h12), an outage (h20–23) then 40 % failures (from
                 h30) on the best slow-motion one, cost drift +20 %/day and quality drift
                 −0.03/day on two grading providers
  low volume     the same market at 50 jobs/h (12.5 jobs/h per effect type)
  slow drift     the same providers at 500 jobs/h with no step at all: costs, latencies and
                 qualities drift for 48 h until the leaders of three effect types change
  many providers 2 effect types × 8 providers at 2,000 jobs/h: a 5× price shock on a
                 leader, 30 % failures on a cheap one, an outage of another, quality decay

Policies (all routers of economics.simulator.simulate, re-deciding every 15 simulated min):
  default            what the economics job publishes at its default settings: decayed
                     estimates with change-point restarts and discounted Thompson sampling
                     (economics.bandit, AdaptivePolicy)
  window 1h / 24h    the former manifest: provider_stats over a trailing window, ε-greedy
                     with ε = 5 % (ManifestPolicy); 24 h was the product's default
  static cheapest    the provider with the cheapest list cost at the start, forever
  oracle             the manifest's own score on the market's TRUE current statistics, no
                     exploration: the regret baseline (same objective, perfect knowledge)

margin = Σ tokens charged − Σ cost in tokens (cost_frame; failed calls are pure cost),
regret % = (oracle margin − policy margin) / oracle margin, per seed, then averaged. Same
seed ⇒ same arrivals and effect mix for every policy; outcomes differ only through the
provider chosen.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import yaml

from economics.cost_model import RateCard, cost_frame
from economics.simulator import (
    AdaptivePolicy,
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


def drift_market() -> Market:
    """The shock market's providers with no step: every change is gradual. Over 48 h the
    cheapest cartoon provider's cost doubles every day and the slow-motion leader's cost and
    latency grow 50 %/day while its quality falls 0.05/day; the best grading provider's quality falls
    0.06/day while a cheaper one gets 30 %/day cheaper — so three leaders change, at
    different moments, without a jump a change detector would see at once."""
    m = ProviderModel
    models = (
        m(
            "toon-api",
            "cartoon",
            "cpu-2c",
            1.0,
            partner_cost_usd=0.004,
            quality_mean=0.80,
            latency_median_ms=8_000,
            cost_drift_per_day=1.0,
        ),
        m("comfy-l4", "cartoon", "gpu-l4", 40.0, quality_mean=0.85, latency_median_ms=45_000),
        m("comfy-a10g", "cartoon", "gpu-a10g", 25.0, quality_mean=0.84, latency_median_ms=30_000, failure_rate=0.03),
        m("slowmo-mci", "slow_motion", "cpu-8c", 120.0, quality_mean=0.90, latency_median_ms=120_000),
        m(
            "rife-l4",
            "slow_motion",
            "gpu-l4",
            6.0,
            quality_mean=0.88,
            latency_median_ms=10_000,
            latency_drift_per_day=0.5,
            cost_drift_per_day=0.5,
            quality_drift_per_day=-0.05,
        ),
        m("slowmo-blend", "slow_motion", "cpu-2c", 60.0, quality_mean=0.70, latency_median_ms=60_000),
        *(
            m(
                p,
                e,
                "cpu-2c",
                s,
                partner_cost_usd=pc,
                quality_mean=q,
                latency_median_ms=lat,
                cost_drift_per_day=cd,
                quality_drift_per_day=qd,
            )
            for e in ("warm_grade", "cool_grade")
            for p, s, pc, q, lat, cd, qd in (
                ("ffmpeg-colortemp", 2.0, 0.0, 0.78, 2_000, 0.0, 0.0),
                ("opencv-curves", 6.0, 0.0, 0.80, 6_000, -0.3, 0.0),
                ("grade-api", 0.5, 0.001, 0.90, 3_000, 0.0, -0.06),
            )
        ),
    )
    return Market(models, T0, volume_by_hour=diurnal(0.4), latency_load_elasticity=0.3)


def many_market() -> Market:
    """Two effect types with eight providers each, spread in cost, quality, speed and
    reliability. Events: the cheapest good cartoon provider raises its price ×5 at h12, the
    cheapest slow-motion provider (a poor one) fails 30 % of calls from h20, the best one is
    down h24–26, and a cartoon provider's quality decays 0.05/day."""
    m = ProviderModel
    cartoon = (
        ("cart-api-a", "cpu-2c", 1.0, 0.003, 0.82, 8_000, 0.0, 0.0),
        ("cart-api-b", "cpu-2c", 1.0, 0.006, 0.86, 9_000, 0.02, 0.0),
        ("cart-l4", "gpu-l4", 40.0, 0.0, 0.85, 45_000, 0.0, 0.0),
        ("cart-a10g", "gpu-a10g", 25.0, 0.0, 0.84, 30_000, 0.03, 0.0),
        ("cart-cpu", "cpu-8c", 90.0, 0.0, 0.70, 90_000, 0.0, 0.0),
        ("cart-fast", "gpu-l4", 10.0, 0.0, 0.78, 6_000, 0.05, 0.0),
        ("cart-hq", "gpu-a10g", 60.0, 0.0, 0.93, 70_000, 0.01, -0.05),
        ("cart-cheap", "cpu-2c", 20.0, 0.0, 0.60, 20_000, 0.10, 0.0),
    )
    slowmo = (
        ("slow-rife", "gpu-l4", 6.0, 0.0, 0.88, 10_000, 0.0, 0.0),
        ("slow-mci", "cpu-8c", 120.0, 0.0, 0.90, 120_000, 0.0, 0.0),
        ("slow-blend", "cpu-2c", 60.0, 0.0, 0.70, 60_000, 0.0, 0.0),
        ("slow-api", "cpu-2c", 1.0, 0.01, 0.86, 12_000, 0.02, 0.0),
        ("slow-a10g", "gpu-a10g", 8.0, 0.0, 0.87, 9_000, 0.04, 0.0),
        ("slow-dup", "cpu-2c", 3.0, 0.0, 0.60, 3_000, 0.0, 0.0),
        ("slow-flaky", "gpu-l4", 5.0, 0.0, 0.88, 9_000, 0.15, 0.0),
        ("slow-hq", "gpu-a10g", 30.0, 0.0, 0.95, 40_000, 0.02, 0.0),
    )
    models = tuple(
        m(
            p,
            e,
            inst,
            s,
            partner_cost_usd=pc,
            quality_mean=q,
            latency_median_ms=lat,
            failure_rate=f,
            quality_drift_per_day=qd,
        )
        for e, rows in (("cartoon", cartoon), ("slow_motion", slowmo))
        for p, inst, s, pc, q, lat, f, qd in rows
    )
    return Market(
        models,
        T0,
        shocks=(
            Shock("cart-api-a", T0 + timedelta(hours=12), cost_factor=5.0),
            Shock("slow-dup", T0 + timedelta(hours=20), failure_rate=0.3),
        ),
        outages=(Outage("slow-rife", T0 + timedelta(hours=24), T0 + timedelta(hours=26)),),
        volume_by_hour=diurnal(0.4),
        latency_load_elasticity=0.3,
    )


# name → (market, user jobs per hour)
SCENARIOS: dict[str, tuple[Callable[[], Market], float]] = {
    "shock": (market, 2000.0),
    "low volume": (market, 50.0),
    "slow drift": (drift_market, 500.0),
    "many providers": (many_market, 2000.0),
}


def policies(mk: Market, card: RateCard) -> dict[str, Callable[[], Callable]]:
    """Policy name → a fresh router for one run."""
    active = mk.providers_by_effect()
    return {
        "default": lambda: AdaptivePolicy(active, card),
        "window 1h": lambda: ManifestPolicy(active, card, window=timedelta(hours=1)),
        "window 24h": lambda: ManifestPolicy(active, card, window=timedelta(hours=24)),
        "static cheapest": lambda: static_cheapest(mk, card),
        "oracle": lambda: OraclePolicy(mk, card),
    }


def run(scenario: str, hours: float, seeds: int, card: RateCard, prices: dict[str, int]) -> list[dict]:
    """One row per policy: mean margin (tokens), mean and worst regret % over ``seeds``."""
    make_market, rate = SCENARIOS[scenario]
    mk = make_market()
    margins: dict[str, list[float]] = {}
    for name, make in policies(mk, card).items():
        margins[name] = [
            summarise(simulate(mk, T0, hours, rate, seed, router=make(), cycle=CYCLE), card, prices)["margin"]
            for seed in range(1, seeds + 1)
        ]
    base = margins["oracle"]
    rows = []
    for name, ms in margins.items():
        regret = [100 * (b - m) / b for b, m in zip(base, ms, strict=True)]
        rows.append(
            {
                "scenario": scenario,
                "jobs/h": rate,
                "policy": name,
                "margin tok": sum(ms) / seeds,
                "regret %": sum(regret) / seeds,
                "worst seed %": max(regret),
            }
        )
    return rows


def main(hours: float, seeds: int, scenarios: list[str]) -> None:
    card = RateCard.from_dict(yaml.safe_load((ROOT / "data/rate_card.yaml").read_text()))
    prices = {
        k: int(v["price_tokens"])
        for k, v in yaml.safe_load((ROOT / "data/effects.yaml").read_text())["effects"].items()
    }
    started = time.perf_counter()
    table = pl.DataFrame([row for name in scenarios for row in run(name, hours, seeds, card, prices)])
    print(
        f"{hours:g} h, mean over {seeds} seed(s), cycle {CYCLE}, token_usd_rate {TOKEN_USD_RATE} — "
        f"{time.perf_counter() - started:.0f} s"
    )
    with pl.Config(
        tbl_rows=-1,
        tbl_cols=-1,
        tbl_width_chars=200,
        float_precision=2,
        tbl_hide_dataframe_shape=True,
        tbl_hide_column_data_types=True,
        tbl_formatting="MARKDOWN",
    ):
        print(table)


if __name__ == "__main__":
    args = sys.argv[1:]
    unknown = [a for a in args[2:] if a not in SCENARIOS]
    if unknown:
        sys.exit(f"unknown scenario(s) {unknown}; known: {list(SCENARIOS)}")
    main(
        float(args[0]) if args else 48.0,
        int(args[1]) if len(args) > 1 else 2,
        args[2:] or list(SCENARIOS),
    )
