"""Effect runs' routing and settlement, pure and fast: ONE provider per run by the manifest's
epsilon-greedy weights, fallbacks in rank order, shadow copies costed but never delivered nor
charged — over 10,000 simulated runs through the same functions the run asset uses
(``route_run``, ``attempt_order``) and the economics' own revenue rule (``recognise``)."""

from __future__ import annotations

import random

import polars as pl
import pytest

from assets.runs.plan import attempt_order, cache_key, provider_version, run_rng, run_task_id
from economics.revenue import job_charges, recognise, run_deliveries
from economics.routing import EXPLOIT, EXPLORE, FORCED, route_run, routing_weights

ENTRIES = [
    {"provider_id": "best", "rank": 1},
    {"provider_id": "second", "rank": 2},
    {"provider_id": "third", "rank": 3},
    {"provider_id": "ghost", "rank": 4},  # listed by mistake, but a shadow provider
]
SHADOW = ("ghost",)
PRICE = 2


def _simulate(n: int, epsilon: float, seed: int) -> tuple[list, pl.DataFrame, pl.DataFrame]:
    """n runs: route, then each candidate fails with probability 0.3 until one delivers;
    shadow copies run alongside the first attempt. Returns (routes, executions, outputs)."""
    rng, outcomes = random.Random(seed), random.Random(seed + 1)
    routes, executions, outputs = [], [], []
    for i in range(n):
        run_id = f"run_{i}"
        route = route_run(ENTRIES, rng, epsilon, SHADOW)
        routes.append(route)
        delivered = None
        for k, provider in enumerate(attempt_order(route)):
            ok = outcomes.random() > 0.3
            tasks = [(provider, route.selection if k == 0 else "ranked", ok)]
            tasks += [(p, "shadow", outcomes.random() > 0.3) for p in route.shadow] if k == 0 else []
            for p, selection, succeeded in tasks:
                tid = run_task_id(run_id, p)
                executions.append(
                    {
                        "task_id": tid,
                        "video_id": run_id,
                        "provider_id": p,
                        "selection": selection,
                        "status": "succeeded" if succeeded else "failed",
                        "source": "real",
                        "tokens_charged": 0,
                        "cost_tokens": 0.5,
                    }
                )
                outputs.append({"run_id": run_id, "task_id": tid, "delivered": succeeded and selection != "shadow"})
            if ok:
                delivered = provider
                break
        assert delivered is None or delivered not in SHADOW
    return routes, pl.DataFrame(executions), pl.DataFrame(outputs)


@pytest.mark.parametrize("epsilon", [0.05, 0.2])
def test_over_10000_runs_exploration_is_epsilon_and_shadows_are_never_delivered_or_charged(epsilon):
    routes, executions, outputs = _simulate(10_000, epsilon, seed=7)
    decisions = pl.Series([r.decision for r in routes])
    share = (decisions == EXPLORE).mean()
    assert abs(share - epsilon) <= 0.01, share
    assert set(decisions) == {EXPLOIT, EXPLORE}
    # Exploration is uniform over the non-best providers; propensities are the routing weights.
    explored = pl.Series([r.provider_id for r in routes if r.decision == EXPLORE])
    assert set(explored) == {"second", "third"}
    assert all(r.propensity == pytest.approx(1 - epsilon if r.decision == EXPLOIT else epsilon / 2) for r in routes)
    # A shadow provider is never routed, never a fallback, always a copy.
    assert all("ghost" not in r.candidates and r.shadow == SHADOW for r in routes)
    # Charged by the economics' revenue rule: one reservation and one consume per delivered run.
    delivered = outputs.filter(pl.col("delivered"))
    assert delivered["run_id"].n_unique() == delivered.height  # one delivery per run at most
    paid = set(delivered["run_id"])
    ledger = pl.DataFrame(
        [
            {
                "entry_id": f"{kind}-{run}",
                "user_id": "u",
                "correlation_id": run,
                "task_id": f"job-{run}",
                "kind": kind,
                "tokens": PRICE,
                "occurred_at": None,
            }
            for run in outputs["run_id"].unique().to_list()
            for kind in ("reserve", "consume" if run in paid else "refund")
        ]
    )
    charged = recognise(executions, job_charges(ledger, run_deliveries(outputs)), 0.01)
    shadows = charged.filter(pl.col("selection") == "shadow")
    assert shadows.height > 3000 and shadows["tokens_charged"].sum() == 0
    assert charged["tokens_charged"].sum() == PRICE * delivered.height
    assert set(charged.filter(pl.col("tokens_charged") > 0)["task_id"]) == set(delivered["task_id"])


def test_a_forced_entry_takes_every_run_and_the_others_stay_fallbacks():
    forced = [{**e, "forced": e["provider_id"] == "third"} for e in ENTRIES[:3]]
    forced[2]["rank"], forced[0]["rank"] = 1, 3
    route = route_run(forced, random.Random(1), 0.5)
    assert (route.provider_id, route.decision, route.propensity) == ("third", FORCED, 1.0)
    assert route.fallbacks == ("second", "best")


def test_one_provider_is_always_exploited_and_no_provider_is_an_error():
    route = route_run(ENTRIES[:1], random.Random(3), 0.5)
    assert (route.decision, route.propensity, route.fallbacks) == (EXPLOIT, 1.0, ())
    with pytest.raises(ValueError, match="no provider"):
        route_run(ENTRIES[3:], random.Random(3), 0.05, SHADOW)


def test_a_run_routes_the_same_way_when_re_executed():
    draws = {route_run(ENTRIES, run_rng("run_abc"), 0.5, SHADOW).provider_id for _ in range(20)}
    assert len(draws) == 1
    assert routing_weights(ENTRIES[:3], 0.05) == {"best": 0.95, "second": 0.025, "third": 0.025}


def test_the_cache_key_changes_with_every_part_and_only_with_them():
    spec = {"adapter": "ffmpeg", "workflow": {"graph": "eq"}, "concurrency": 2}
    version = provider_version(spec)
    assert version == provider_version({**spec, "concurrency": 8})  # a price or capacity change
    assert version != provider_version({**spec, "workflow": {"graph": "eq,hue"}})
    base = ("ws", "a" * 64, "rev1", {"strength": 0.5, "x": 1}, "p1", version)
    key = cache_key(*base)
    assert key == cache_key("ws", "a" * 64, "rev1", {"x": 1, "strength": 0.5}, "p1", version)  # key order
    for i, other in enumerate(("ws2", "b" * 64, "rev2", {"strength": 0.6, "x": 1}, "p2", "0" * 12)):
        assert cache_key(*base[:i], other, *base[i + 1 :]) != key
