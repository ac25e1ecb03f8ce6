"""Routing scenarios, black box: simulated histories → provider_stats → manifest → routed jobs.

Each scenario builds a market, lets the simulator produce history (uniform traffic, or the
manifest policy re-publishing every 15 simulated minutes), and checks what the manifest does
with real-looking statistics — not hand-written ones.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from economics.cost_model import RateCard, cost_frame
from economics.routing import (
    EXPLORATION_RATE,
    ab_assignments,
    build_manifest,
    manifest_rows,
    manifest_weights,
    override_manifest,
    route,
    route_many,
    routing_weights,
    select_providers,
)
from economics.simulator import ManifestPolicy, Market, ProviderModel, Shock, quality_rows, simulate
from economics.stats import provider_stats

T0 = datetime(2026, 3, 2, tzinfo=UTC)
CARD = RateCard({"cpu-2c": 0.085 / 3600, "gpu-l4": 0.80 / 3600})
EPS = EXPLORATION_RATE
CYCLE = timedelta(minutes=15)


def _model(pid: str, compute_s: float, **kw) -> ProviderModel:
    return ProviderModel(pid, "cartoon", kw.pop("instance_type", "cpu-2c"), compute_s, **kw)


def _manifest(rows: pl.DataFrame, market: Market, **kw) -> dict:
    stats = provider_stats(cost_frame(rows, CARD, {"cartoon": 4}, 0.01), quality_rows(rows))
    return build_manifest(stats, market.providers_by_effect(), T0, **kw)


def _policy_run(market: Market, hours: float, rate: float, seed: int) -> tuple[pl.DataFrame, ManifestPolicy]:
    # Statistics over the last cycle: a shock is fully visible one cycle after it happens.
    policy = ManifestPolicy(market.providers_by_effect(), CARD, window=CYCLE)
    return simulate(market, T0, hours, rate, seed, router=policy, cycle=CYCLE), policy


def _cycle(policy: ManifestPolicy, at: timedelta) -> list[dict]:
    """Cartoon entries of the manifest published at ``T0 + at``."""
    return policy.published[int(at / CYCLE)]["effects"]["cartoon"]


def test_a_consistently_cheaper_at_equal_quality_gets_over_90_percent_of_jobs():
    market = Market((_model("b", 15.0), _model("a", 10.0), _model("c", 20.0)), T0)
    manifest = _manifest(simulate(market, T0, 6, 600, seed=1), market)
    picks = route_many(manifest["effects"]["cartoon"], np.random.default_rng(1), 10_000)
    assert (picks == "a").mean() > 0.90
    assert manifest["effects"]["cartoon"][0]["provider_id"] == "a"


def test_b_ranks_first_the_cycle_after_a_price_shock_makes_it_3x_cheaper():
    shock = timedelta(hours=1)
    market = Market(
        (_model("a", 10.0), _model("b", 12.0)), T0, shocks=(Shock("a", T0 + shock, cost_factor=3.6),)
    )  # b: 12 vs 36 → 3× cheaper
    rows, policy = _policy_run(market, 2, 2000, seed=2)
    assert _cycle(policy, shock)[0]["provider_id"] == "a"  # history still before the shock
    after = {e["provider_id"]: e for e in _cycle(policy, shock + CYCLE)}
    assert after["b"]["rank"] == 1 and after["b"]["weight"] == pytest.approx(1 - EPS)
    assert after["a"]["expected_cost_usd"] / after["b"]["expected_cost_usd"] == pytest.approx(3.0, rel=0.15)
    late = rows.filter(pl.col("finished_at") >= T0 + shock + CYCLE)
    assert (late["provider_id"] == "b").mean() == pytest.approx(1 - EPS, abs=0.015)


def test_c_failing_half_its_calls_drops_to_exploration_weight_the_next_cycle():
    broke = timedelta(hours=1)
    market = Market(
        (_model("a", 14.0), _model("b", 16.0), _model("c", 10.0)),
        T0,
        shocks=(Shock("c", T0 + broke, failure_rate=0.5),),
    )
    rows, policy = _policy_run(market, 2, 2000, seed=3)
    before = {e["provider_id"]: e for e in _cycle(policy, broke)}
    after = {e["provider_id"]: e for e in _cycle(policy, broke + CYCLE)}
    assert before["c"]["rank"] == 1
    n = len(after)
    assert after["c"]["weight"] <= EPS / (n - 1) + 1e-9
    assert after["c"]["expected_success_rate"] == pytest.approx(0.5, abs=0.06)
    late = rows.filter(pl.col("finished_at") >= T0 + broke + CYCLE)
    assert (late["provider_id"] == "c").mean() < EPS / (n - 1) + 0.01


def test_exploration_share_is_epsilon_over_10000_routing_decisions():
    market = Market(tuple(_model(p, 10.0 + i) for i, p in enumerate("abcd")), T0)
    entries = _manifest(simulate(market, T0, 4, 400, seed=4), market)["effects"]["cartoon"]
    best = entries[0]["provider_id"]
    rng = random.Random(4)
    picks = Counter(route(entries, rng) for _ in range(10_000))
    assert 0.04 <= 1 - picks[best] / 10_000 <= 0.06
    assert set(picks) == {e["provider_id"] for e in entries}  # every other provider is explored
    weights = [e["weight"] for e in sorted(entries, key=lambda e: e["rank"])]
    assert weights == pytest.approx([1 - EPS] + [EPS / 3] * 3) and sum(weights) == pytest.approx(1)


def test_a_shadow_provider_never_becomes_a_user_visible_result():
    # The shadow provider is the cheapest and the best: if it could leak, it would win.
    market = Market((_model("a", 10.0), _model("b", 12.0), _model("s", 1.0, quality_mean=0.99, mode="shadow")), T0)
    rows, policy = _policy_run(market, 2, 1000, seed=5)
    assert set(rows.filter(pl.col("provider_id") == "s")["selection"]) == {"shadow"}
    assert all("s" not in manifest_weights(m)["cartoon"] for m in policy.published)
    entries = policy.published[-1]["effects"]["cartoon"]
    assert "s" not in set(route_many(entries, np.random.default_rng(5), 10_000))
    # Even a manifest that lists it by mistake cannot give it a ranked or exploration slot.
    leaky = _manifest(rows, market, exploration_rate=EPS)
    leaky_entries = build_manifest(
        provider_stats(cost_frame(rows, CARD, {}, 1.0), quality_rows(rows)), {"cartoon": ["a", "b", "s"]}, T0
    )["effects"]["cartoon"]
    assert leaky_entries[0]["provider_id"] == "s"
    rng = random.Random(5)
    for ranked in (leaky["effects"]["cartoon"], leaky_entries):
        for _ in range(1000):
            chosen = select_providers(ranked, rng, top_k=2, epsilon=0.5, shadow=["s"])
            assert {c.provider_id for c in chosen if c.selection != "shadow"} <= {"a", "b"}
            assert [c.provider_id for c in chosen if c.selection == "shadow"] == ["s"]


def test_excluded_providers_get_no_entry_and_do_not_set_the_cost_bar():
    market = Market((_model("a", 10.0), _model("b", 20.0), _model("c", 30.0)), T0)
    rows = simulate(market, T0, 2, 600, seed=6)
    manifest = _manifest(rows, market, exclude={"a"})
    entries = manifest["effects"]["cartoon"]
    assert [e["provider_id"] for e in entries] == ["b", "c"] and manifest["excluded"] == ["a"]
    assert "×1.00 of cheapest" in entries[0]["reason"]  # b is the cheapest routable one
    assert [e["weight"] for e in entries] == pytest.approx([1 - EPS, EPS])


def test_override_forces_one_provider_until_the_next_regular_publication():
    market = Market((_model("a", 10.0), _model("b", 12.0), _model("c", 14.0)), T0)
    rows = simulate(market, T0, 2, 600, seed=7)
    regular = _manifest(rows, market)
    snapshot = json.dumps(regular, sort_keys=True)
    at = T0 + timedelta(minutes=5)
    forced = override_manifest(regular, "cartoon", "c", "a and b timing out (PROVIDER_LATENCY_DEGRADATION)", at)
    assert json.dumps(regular, sort_keys=True) == snapshot  # pure
    assert json.loads(json.dumps(forced)) == forced  # JSON-serialisable
    assert forced["version"] != regular["version"] and forced["base_version"] == regular["version"]
    assert forced["overrides"]["cartoon"]["provider_id"] == "c" and forced["published_at"] == at.isoformat()
    entries = forced["effects"]["cartoon"]
    assert (entries[0]["provider_id"], entries[0]["rank"], entries[0]["weight"]) == ("c", 1, 1.0)
    assert sum(e["weight"] for e in entries) == 1.0 and entries[0]["reason"].startswith("override: ")
    rng = random.Random(7)
    assert {route(entries, rng) for _ in range(2000)} == {"c"}
    assert set(route_many(entries, np.random.default_rng(7), 2000)) == {"c"}
    batches = [select_providers(entries, rng, top_k=2, epsilon=1.0, shadow=["s"]) for _ in range(50)]
    assert all([(x.provider_id, x.selection) for x in b] == [("c", "ranked"), ("s", "shadow")] for b in batches)
    assert manifest_rows(forced).height == 3
    assert "overrides" not in _manifest(rows, market)  # the next regular publication drops it
    with pytest.raises(ValueError, match="no entry"):
        override_manifest(regular, "cartoon", "zz", "why", at)
    with pytest.raises(KeyError):
        override_manifest(regular, "slow_motion", "a", "why", at)


def test_ab_assignments_run_every_input_on_every_listed_provider():
    tasks = ab_assignments(["a", "b", "a", "c"], ["v1", "v2"], "cartoon", experiment="exp1")
    assert [(t["video_id"], t["provider_id"]) for t in tasks] == [(v, p) for v in ("v1", "v2") for p in ("a", "b", "c")]
    assert {t["selection"] for t in tasks} == {"ab"} and len({t["task_id"] for t in tasks}) == 6
    assert tasks == ab_assignments(["a", "b", "c"], ["v1", "v2"], "cartoon", experiment="exp1")
    assert {t["task_id"] for t in tasks}.isdisjoint(
        t["task_id"] for t in ab_assignments(["a", "b", "c"], ["v1", "v2"], "cartoon", experiment="exp2")
    )
    assert [t["video_id"] for t in ab_assignments(["a", "b"], 2, "cartoon", "x")] == ["x-0", "x-0", "x-1", "x-1"]
    with pytest.raises(ValueError, match="at least two"):
        ab_assignments(["a", "a"], 3, "cartoon")


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 8), eps=st.floats(0, 1), forced=st.integers(-1, 7))
def test_routing_weights_are_a_distribution_matching_route(n, eps, forced):
    entries = [{"provider_id": f"p{i}", "rank": i + 1, "forced": i == forced} for i in range(n)]
    w = routing_weights(entries, eps)
    assert sum(w.values()) == pytest.approx(1.0) and all(v >= 0 for v in w.values())
    if 0 <= forced < n:
        assert w[f"p{forced}"] == 1.0
    elif n > 1:
        assert w["p0"] == pytest.approx(1 - eps) and len({round(v, 12) for k, v in w.items() if k != "p0"}) == 1
    picks = Counter(route_many(entries, np.random.default_rng(0), 4000, eps))
    assert set(picks) <= {k for k, v in w.items() if v > 0}
