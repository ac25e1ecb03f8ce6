"""Adaptive routing estimates (economics/bandit.py): the discount by executions, change-point
restarts, Thompson probabilities, how fast a price shock flips the ranking, that a low-volume
market starves no provider, and the propensities the routing logs."""

from __future__ import annotations

import math
import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
import yaml

from economics.bandit import (
    OBSERVATION_SCHEMA,
    BanditConfig,
    adaptive_manifest,
    change_points,
    decayed_stats,
    newest_per_effect,
    thompson_probabilities,
)
from economics.cost_model import RateCard
from economics.routing import inclusion_probabilities, manifest_weights, select_providers
from economics.simulator import (
    AdaptivePolicy,
    ManifestPolicy,
    Market,
    ProviderModel,
    diurnal,
    simulate,
)
from resources.settings import DATA_DIR

T0 = datetime(2026, 3, 2, tzinfo=UTC)
CARD = RateCard.from_dict(yaml.safe_load((DATA_DIR / "rate_card.yaml").read_text()))


def _rows(
    provider: str,
    n: int,
    start: int = 0,
    cost: float = 0.01,
    ok: bool | list[bool] = True,
    quality: float = 0.8,
    effect: str = "e",
    rng: np.random.Generator | None = None,
    noise: float = 0.0,
) -> list[dict]:
    rng = rng or np.random.default_rng(0)
    oks = ok if isinstance(ok, list) else [ok] * n
    return [
        {
            "provider_id": provider,
            "effect_type": effect,
            "finished_at": T0 + timedelta(seconds=start + i),
            "ok": oks[i],
            "cost_usd": cost * math.exp(noise * rng.standard_normal()),
            "duration_ms": 1000.0 * math.exp(noise * rng.standard_normal()),
            "quality": quality + noise * 0.1 * rng.standard_normal() if oks[i] else None,
        }
        for i in range(n)
    ]


def _frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=OBSERVATION_SCHEMA)


# -- the discount ---------------------------------------------------------------------------------
def test_weights_halve_every_half_life_of_the_effect_types_executions():
    # a: cost 1 at age 4 (first), then b four times; a: cost 3 at age 0 (newest).
    rows = _rows("a", 1, 0, cost=1.0) + _rows("b", 3, 1, cost=5.0) + _rows("a", 1, 4, cost=3.0)
    stats = decayed_stats(_frame(rows), BanditConfig(half_life=4.0, detect_changes=False))
    a = stats.filter(pl.col("provider_id") == "a").row(0, named=True)
    # weights: newest 1, the one 4 executions older 2^-1 = 0.5
    assert a["executions"] == pytest.approx(1.5)
    assert a["mean_cost_usd"] == pytest.approx((3.0 * 1 + 1.0 * 0.5) / 1.5)
    assert a["var_cost"] is None  # 1.5 effective executions: too few for a variance
    b = stats.filter(pl.col("provider_id") == "b").row(0, named=True)
    assert b["executions"] == pytest.approx(sum(2 ** (-k / 4) for k in (1, 2, 3)))
    assert b["var_cost"] == pytest.approx(0.0, abs=1e-12)
    longer = decayed_stats(_frame(rows + _rows("a", 1, 5, cost=2.0)), BanditConfig(half_life=1e9))
    a = longer.filter(pl.col("provider_id") == "a").row(0, named=True)
    assert a["var_cost"] == pytest.approx(2 / 3, rel=1e-6)  # costs 1, 3 and 2, equal weights
    # Another effect type's executions do not age these.
    other = _frame(rows + _rows("c", 50, 10, effect="f"))
    assert decayed_stats(other, BanditConfig(half_life=4.0, detect_changes=False)).filter(pl.col("provider_id") == "a")[
        "executions"
    ][0] == pytest.approx(1.5)


def test_failures_count_in_success_but_not_in_cost_and_only_newest_rows_are_read():
    rows = _rows("a", 4, 0, cost=1.0, ok=[True, False, True, False])
    stats = decayed_stats(_frame(rows), BanditConfig(half_life=1e9, detect_changes=False))
    r = stats.row(0, named=True)
    assert r["success_rate"] == pytest.approx(0.5) and r["n_ok"] == pytest.approx(2.0)
    assert r["mean_cost_usd"] == pytest.approx(1.0) and r["n_quality"] == pytest.approx(2.0)
    config = BanditConfig(half_life=2.0)
    many = _frame(_rows("a", config.keep_executions + 30))
    assert newest_per_effect(many, config.keep_executions).height == config.keep_executions
    assert decayed_stats(many, config)["executions"][0] == pytest.approx(
        sum(2 ** (-k / 2) for k in range(config.keep_executions))
    )
    assert decayed_stats(_frame([]), config).is_empty()


def test_change_points_find_a_price_step_and_stay_quiet_on_noise():
    rng = np.random.default_rng(3)
    calm = _rows("a", 300, 0, cost=0.01, rng=rng, noise=0.25)
    config = BanditConfig()
    from economics.bandit import _weighted

    assert change_points(_weighted(_frame(calm), config)).is_empty()
    shocked = calm + _rows("a", 6, 300, cost=0.05, rng=rng, noise=0.25)
    [change] = change_points(_weighted(_frame(shocked), config)).to_dicts()
    assert change["keep"] == 6
    stats = decayed_stats(_frame(shocked), config).row(0, named=True)
    assert stats["mean_cost_usd"] == pytest.approx(0.05, rel=0.2)
    assert stats["changed_at"] == T0 + timedelta(seconds=300)
    # Three failures in a row of a provider that never failed: an outage.
    down = calm + _rows("a", 3, 300, ok=False)
    assert change_points(_weighted(_frame(down), config))["keep"].to_list() == [3]


# -- Thompson probabilities ------------------------------------------------------------------------
def test_thompson_probabilities_are_a_distribution_with_the_floor():
    rows = _rows("good", 200, 0, cost=0.01, quality=0.9, noise=0.1) + _rows("bad", 200, 200, cost=0.05, quality=0.6)
    stats = decayed_stats(_frame(rows))
    config = BanditConfig(floor=0.04)
    probs = thompson_probabilities(stats, ["bad", "good", "new"], config=config, rng=np.random.default_rng(1))
    assert sum(probs.values()) == pytest.approx(1.0)
    assert all(config.floor / 3 - 1e-12 <= p <= 1.0 for p in probs.values())
    assert probs["good"] > 0.9 > probs["bad"]
    # Without any evidence every provider is equally likely to be best.
    blind = thompson_probabilities(decayed_stats(_frame([])), ["x", "y", "z"], rng=np.random.default_rng(2))
    assert all(abs(p - 1 / 3) < 0.03 for p in blind.values())
    assert thompson_probabilities(stats, ["only"]) == {"only": 1.0}
    assert thompson_probabilities(stats, []) == {}


def test_adaptive_manifest_ranks_by_weight_and_is_reproducible():
    rows = _rows("a", 100, 0, cost=0.01, quality=0.9) + _rows("b", 100, 100, cost=0.03, quality=0.7)
    stats = decayed_stats(_frame(rows))
    m1 = adaptive_manifest(stats, {"e": ["b", "a"]}, T0)
    m2 = adaptive_manifest(stats, {"e": ["b", "a"]}, T0)
    assert m1 == m2 and m1["policy"]["kind"] == "thompson"
    entries = m1["effects"]["e"]
    assert [e["provider_id"] for e in entries] == ["a", "b"] and [e["rank"] for e in entries] == [1, 2]
    assert sum(manifest_weights(m1)["e"].values()) == pytest.approx(1.0)
    assert entries[0]["weight"] >= entries[1]["weight"] > 0


# -- adaptivity ------------------------------------------------------------------------------------
def _leader(rows: list[dict], config: BanditConfig) -> str:
    manifest = adaptive_manifest(decayed_stats(_frame(rows), config), {"e": ["a", "b"]}, T0, config=config)
    return manifest["effects"]["e"][0]["provider_id"]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(("detect", "bound"), [(True, 3), (False, 150)])
def test_a_price_shock_flips_the_ranking_within_a_bounded_number_of_jobs(detect, bound, seed):
    """a is the cheaper of two otherwise equal providers (b is explored one job in 20) until
    its cost rises ×5; the ranking must move to b within ``bound`` of a's post-shock jobs: a
    few with change detection, under the half-life (200) by the discount alone."""
    rng = np.random.default_rng(seed)
    config = BanditConfig(detect_changes=detect)
    history = []
    for i in range(400):
        history += _rows("b" if i % 20 == 0 else "a", 1, i, cost=0.01 if i % 20 else 0.02, rng=rng, noise=0.25)
    assert _leader(history, config) == "a"
    jobs_of_a = 0
    for i in range(400, 400 + 2 * bound):
        explored = i % 20 == 0
        history += _rows("b" if explored else "a", 1, i, cost=0.02 if explored else 0.05, rng=rng, noise=0.25)
        jobs_of_a += not explored
        if _leader(history, config) == "b":
            break
    assert _leader(history, config) == "b" and jobs_of_a <= bound


def _market() -> Market:
    m = ProviderModel
    return Market(
        (
            m("cheap", "cartoon", "cpu-2c", 2.0, quality_mean=0.80, latency_median_ms=5_000),
            m("gpu", "cartoon", "gpu-l4", 30.0, quality_mean=0.85, latency_median_ms=30_000),
            m("flaky", "cartoon", "cpu-2c", 2.0, quality_mean=0.82, latency_median_ms=5_000, failure_rate=0.3),
            m("fast", "slow_motion", "gpu-l4", 6.0, quality_mean=0.88, latency_median_ms=10_000),
            m("slow", "slow_motion", "cpu-8c", 120.0, quality_mean=0.90, latency_median_ms=120_000),
        ),
        T0,
        volume_by_hour=diurnal(0.4),
    )


@pytest.mark.slow
def test_low_volume_starves_no_provider_and_logs_propensities():
    """At 20 jobs/h for a day, every provider keeps being tried (its weight never under the
    floor's share) and no decision is made on priors alone, where a 1 h window routinely
    has providers without a single execution (and falls back to neutral priors)."""
    mk = _market()
    active = mk.providers_by_effect()
    policy = AdaptivePolicy(active, CARD)
    rows = simulate(mk, T0, 24, 20, seed=4, router=policy)
    counts = Counter(rows["provider_id"])
    assert set(counts) == {p for ps in active.values() for p in ps}
    later = policy.published[len(policy.published) // 4 :]
    for manifest in later:
        for entries in manifest["effects"].values():
            assert all(e["weight"] >= policy.config.floor / len(entries) - 1e-9 for e in entries)
            assert all(e["executions"] > 0 for e in entries), "a provider fell back to priors"
    window = ManifestPolicy(active, CARD, window=timedelta(hours=1))
    simulate(mk, T0, 24, 20, seed=4, router=window)
    starved = sum(e["executions"] == 0 for m in window.published for es in m["effects"].values() for e in es)
    assert starved > 0
    # The propensity logged with each job is the weight its provider had in that cycle.
    assert rows["propensity"].is_between(0.0, 1.0, closed="right").all()
    first = rows.filter(pl.col("finished_at") < T0 + timedelta(minutes=15))
    weights = manifest_weights(policy.published[0])
    for r in first.iter_rows(named=True):
        assert r["propensity"] == pytest.approx(weights[r["effect_type"]][r["provider_id"]])


# -- M5's propensities -----------------------------------------------------------------------------
def _entries(n: int) -> list[dict]:
    return [{"provider_id": f"p{i}", "rank": i + 1} for i in range(n)]


@pytest.mark.parametrize(("n", "top_k", "eps"), [(5, 2, 0.1), (2, 2, 0.05), (4, 1, 0.3), (3, 2, 0.0)])
def test_inclusion_probabilities_match_select_providers(n, top_k, eps):
    entries = _entries(n)
    p = inclusion_probabilities(entries, top_k, eps, shadow=["s"])
    assert all(0.0 <= v <= 1.0 for v in p.values()) and p["s"] == 1.0
    routable = sum(v for k, v in p.items() if k != "s")
    assert routable == pytest.approx(min(top_k, n) + (eps if n > top_k else 0.0))
    rng = random.Random(9)
    draws = 20_000
    seen: Counter = Counter()
    for _ in range(draws):
        for sel in select_providers(entries, rng, top_k, eps, shadow=["s"]):
            seen[sel.provider_id] += 1
            assert sel.propensity == p[sel.provider_id]
    for pid, prob in p.items():
        assert seen[pid] / draws == pytest.approx(prob, abs=4 * math.sqrt(prob * (1 - prob) / draws) + 1e-9)


def test_inclusion_probabilities_under_an_override():
    entries = _entries(3)
    entries[2]["forced"] = True
    p = inclusion_probabilities(entries, 2, 0.1)
    assert p == {"p0": 0.0, "p1": 0.0, "p2": 1.0}
    [chosen] = select_providers(entries, random.Random(1), 2, 0.1)
    assert (chosen.provider_id, chosen.propensity) == ("p2", 1.0)
