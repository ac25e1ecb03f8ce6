"""Recommendations on hand-built fixtures: each type fires when it should and only then; ids
are stable; simulated rows never count."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from economics.cost_model import RateCard
from economics.recommendations import RECOMMENDATION_SCHEMA, Policy, recommend

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
TOKEN_USD = 0.01
PRICES = {"cartoon": 4, "warm_grade": 2}
CARD = RateCard({"cpu-2c": 0.085 / 3600, "cpu-8c": 0.34 / 3600, "gpu-l4": 0.8 / 3600}, spot_multiplier=0.35)


def _runs(
    provider,
    effect="cartoon",
    n=20,
    cost=0.002,
    *,
    failed=0,
    instance="cpu-2c",
    duration_ms=5_000,
    costs=None,
    idle=0.0,
    source="real",
    start=0,
):
    """n executions within one hour (so volumes are per day = totals); the first ``failed`` fail."""
    cost_list = costs or [cost] * n
    status = ["failed"] * failed + ["succeeded"] * (n - failed)
    return pl.DataFrame(
        {
            "task_id": [f"{provider}-{effect}-{source}-{start + i}" for i in range(n)],
            "provider_id": provider,
            "effect_type": effect,
            "instance_type": instance,
            "status": status,
            "selection": "ranked",
            "source": source,
            "cost_usd": cost_list,
            "compute_cost_usd": cost_list,
            "idle_cost_usd": [c * idle for c in cost_list],
            "cost_tokens": [c / TOKEN_USD for c in cost_list],
            "tokens_charged": [PRICES[effect] if s == "succeeded" else 0 for s in status],
            "duration_ms": duration_ms,
            "finished_at": [NOW - timedelta(minutes=60 - i * 60 / n) for i in range(n)],
        }
    )


def _quality(*rows):
    return pl.DataFrame(
        rows,
        schema={
            "provider_id": pl.String,
            "effect_type": pl.String,
            "mean_quality": pl.Float64,
            "mean_artifacts": pl.Float64,
            "scored": pl.Int64,
        },
        orient="row",
    )


def _manifest(effect="cartoon", ranked=("pricey", "cheap")):
    return {"version": "v", "effects": {effect: [{"provider_id": p, "rank": i + 1} for i, p in enumerate(ranked)]}}


def _recs(costs, quality, manifest=None, **kw):
    return recommend(costs, quality, manifest or _manifest(), PRICES, TOKEN_USD, now=NOW, **kw)


def _of(df, type_):
    return df.filter(pl.col("type") == type_)


def test_provider_switch_to_a_cheaper_provider_of_equal_quality():
    costs = pl.concat([_runs("pricey", cost=0.004, n=50), _runs("cheap", cost=0.002, n=50)])
    recs = _recs(costs, _quality(("pricey", "cartoon", 0.80, 0.0, 50), ("cheap", "cartoon", 0.79, 0.0, 50)))
    (s,) = _of(recs, "PROVIDER_SWITCH").iter_rows(named=True)
    assert s["provider_id"] == "cheap" and s["effect_type"] == "cartoon"
    assert json.loads(s["action"]) == {"effect_type": "cartoon", "from_provider": "pricey", "to_provider": "cheap"}
    assert s["projected_margin_impact_usd"] == pytest.approx(0.002 * 50)  # 50 outputs a day, $0.002 each
    assert s["projected_quality_impact"] == pytest.approx(-0.01)
    assert s["confidence"] == pytest.approx(50 / 60, abs=1e-4) and s["based_on_executions"] == 100
    assert not s["auto_applicable"] and s["requires_admin_approval"]  # it loses a little quality


@pytest.mark.parametrize(
    "cheap_cost, cheap_quality, cheap_n",
    [
        (0.0037, 0.80, 50),  # saves 7.5%: below the 10% worth a switch
        (0.002, 0.70, 50),  # cheaper but 0.10 worse
        (0.002, 0.80, 5),  # too few executions to trust
    ],
)
def test_no_switch_without_a_real_advantage(cheap_cost, cheap_quality, cheap_n):
    costs = pl.concat([_runs("pricey", cost=0.004, n=50), _runs("cheap", cost=cheap_cost, n=cheap_n)])
    q = _quality(("pricey", "cartoon", 0.80, 0.0, 50), ("cheap", "cartoon", cheap_quality, 0.0, cheap_n))
    assert _of(_recs(costs, q), "PROVIDER_SWITCH").is_empty()


def test_provider_switch_to_a_better_provider_at_similar_cost_is_auto_applicable():
    costs = pl.concat([_runs("pricey", cost=0.004, n=50), _runs("cheap", cost=0.0041, n=50)])
    recs = _recs(costs, _quality(("pricey", "cartoon", 0.80, 0.0, 50), ("cheap", "cartoon", 0.90, 0.0, 50)))
    (s,) = _of(recs, "PROVIDER_SWITCH").iter_rows(named=True)
    assert "better" in s["title"] and s["projected_quality_impact"] == pytest.approx(0.10)
    assert s["projected_margin_impact_usd"] == pytest.approx(-0.0001 * 50)  # it costs a bit more
    assert s["auto_applicable"] and not s["requires_admin_approval"]  # no quality loss, 50 runs each


def test_failures_count_in_the_cost_per_success():
    # "cheap" is cheap per run but fails half its tasks: per delivered output it is dearer.
    costs = pl.concat([_runs("pricey", cost=0.004, n=50), _runs("cheap", cost=0.0025, n=50, failed=25)])
    q = _quality(("pricey", "cartoon", 0.80, 0.0, 50), ("cheap", "cartoon", 0.80, 0.0, 25))
    assert _of(_recs(costs, q), "PROVIDER_SWITCH").is_empty()


def test_price_raised_to_the_target_margin_when_below_the_floor():
    costs = _runs("p", cost=0.03, n=20)  # 3 tokens of cost per 4-token sale: margin 25%
    (p,) = _of(_recs(costs, _quality()), "PRICE_ADJUSTMENT").iter_rows(named=True)
    assert json.loads(p["action"]) == {"effect_type": "cartoon", "price_tokens": 10, "previous_price_tokens": 4}
    assert p["provider_id"] is None
    assert p["projected_margin_impact_usd"] == pytest.approx((10 - 4) * TOKEN_USD * 20)
    assert p["requires_admin_approval"] and not p["auto_applicable"]


def test_price_cut_towards_the_market_only_when_far_above_it():
    costs = _runs("p", cost=0.0001, n=20)  # margin 99.75%
    assert _of(_recs(costs, _quality()), "PRICE_ADJUSTMENT").is_empty()  # no market given
    assert _of(_recs(costs, _quality(), market_price_tokens={"cartoon": 3}), "PRICE_ADJUSTMENT").is_empty()  # +33%
    (p,) = _of(_recs(costs, _quality(), market_price_tokens={"cartoon": 2}), "PRICE_ADJUSTMENT").iter_rows(named=True)
    assert json.loads(p["action"])["price_tokens"] == 2  # the market price, still above target margin
    assert p["projected_margin_impact_usd"] == pytest.approx(-2 * TOKEN_USD * 20)


def test_spot_for_short_reliable_tasks_only():
    recs = _recs(_runs("p", cost=0.001, n=40, duration_ms=30_000), _quality(), rate_card=CARD)
    (f,) = _of(recs, "FLEET_OPTIMIZATION").iter_rows(named=True)
    assert json.loads(f["action"]) == {"provider_id": "p", "instance_type": "cpu-2c", "spot": True}
    assert f["effect_type"] is None
    assert f["projected_margin_impact_usd"] == pytest.approx(40 * 0.001 * 0.65)
    assert f["auto_applicable"] and not f["requires_admin_approval"]
    (few,) = _of(
        _recs(_runs("p", n=20, duration_ms=30_000), _quality(), rate_card=CARD), "FLEET_OPTIMIZATION"
    ).iter_rows(named=True)
    assert not few["auto_applicable"] and few["requires_admin_approval"]  # confidence 0.67 < 0.8
    on_spot = _runs("p", n=40, duration_ms=30_000).with_columns(spot=pl.lit(True))
    assert _of(_recs(on_spot, _quality(), rate_card=CARD), "FLEET_OPTIMIZATION").is_empty()
    long = _recs(_runs("p", cost=0.001, n=20, duration_ms=600_000), _quality(), rate_card=CARD)
    assert _of(long, "FLEET_OPTIMIZATION").is_empty()  # 10-minute tasks outlive the 2-minute notice
    assert _of(_recs(_runs("p", n=20, duration_ms=30_000), _quality()), "FLEET_OPTIMIZATION").is_empty()  # no card


def test_downsize_an_idle_instance_when_the_work_fits_the_smaller_one():
    # idle = 4 × busy → utilisation 20%; cpu-2c is 1/4 the price → ~80% busy: fits the limit.
    idle = _runs("big", cost=0.01, n=20, instance="cpu-8c", duration_ms=600_000, idle=4.0)
    (f,) = _of(_recs(idle, _quality(), rate_card=CARD), "FLEET_OPTIMIZATION").iter_rows(named=True)
    assert json.loads(f["action"]) == {"provider_id": "big", "instance_type": "cpu-2c", "from_instance_type": "cpu-8c"}
    assert f["projected_margin_impact_usd"] == pytest.approx(20 * (0.01 + 0.04) * 0.75)  # instance spend × (1 − ¼)
    busier = _runs("big", cost=0.01, n=20, instance="cpu-8c", duration_ms=600_000, idle=2.0)  # 33%: 133% on cpu-2c
    assert _of(_recs(busier, _quality(), rate_card=CARD), "FLEET_OPTIMIZATION").is_empty()


def test_workflow_tuning_flags_failures_variance_and_artifacts():
    heavy_tail = [0.001] * 18 + [0.05, 0.08]
    costs = pl.concat(
        [
            _runs("flaky", n=20, failed=6),
            _runs("spiky", n=20, costs=heavy_tail),
            _runs("noisy", n=20),
            _runs("clean", n=20),
        ]
    )
    q = _quality(("noisy", "cartoon", 0.7, 0.40, 20), ("clean", "cartoon", 0.8, 0.05, 20))
    w = {
        (r["provider_id"], json.loads(r["action"])["issue"]): r
        for r in _of(_recs(costs, q, _manifest(ranked=())), "WORKFLOW_TUNING").iter_rows(named=True)
    }
    assert set(w) == {("flaky", "failure_rate"), ("spiky", "cost_variance"), ("noisy", "artifacts")}
    assert w["flaky", "failure_rate"]["projected_margin_impact_usd"] == pytest.approx(6 * 0.002)
    mean, median = sum(heavy_tail) / 20, 0.001
    assert w["spiky", "cost_variance"]["projected_margin_impact_usd"] == pytest.approx((mean - median) * 20)
    assert w["noisy", "artifacts"]["projected_quality_impact"] is None
    assert not any(r["auto_applicable"] or r["requires_admin_approval"] for r in w.values())


def test_schema_ids_and_simulated_rows():
    costs = pl.concat(
        [
            _runs("pricey", cost=0.004, n=50),
            _runs("cheap", cost=0.002, n=50, failed=10),
            _runs("p", effect="warm_grade", cost=0.015, n=20),
        ]
    )
    q = _quality(("pricey", "cartoon", 0.80, 0.0, 50), ("cheap", "cartoon", 0.80, 0.3, 40))
    recs = _recs(costs, q, rate_card=CARD)
    assert recs.schema == RECOMMENDATION_SCHEMA
    assert set(recs["type"]) == {"PROVIDER_SWITCH", "PRICE_ADJUSTMENT", "FLEET_OPTIMIZATION", "WORKFLOW_TUNING"}
    assert recs["recommendation_id"].n_unique() == recs.height
    later = recommend(costs, q, _manifest(), PRICES, TOKEN_USD, now=NOW + timedelta(days=1), rate_card=CARD)
    assert later["recommendation_id"].to_list() == recs["recommendation_id"].to_list()
    assert recs["projected_margin_impact_usd"].to_list() == sorted(recs["projected_margin_impact_usd"], reverse=True)
    assert ((recs["confidence"] >= 0) & (recs["confidence"] <= 1)).all()
    # Simulated rows — even ones that would trigger every rule — change nothing.
    sim = _runs("sim", cost=1.0, n=50, failed=40, source="simulated")
    assert recs.equals(_recs(pl.concat([costs, sim]), q, rate_card=CARD))
    assert _recs(costs.head(0), q, rate_card=CARD).schema == RECOMMENDATION_SCHEMA
    # Only the required columns: every rule that can still decide does (no window → one day).
    bare = costs.select(
        "provider_id", "effect_type", "instance_type", "status", "cost_usd", "cost_tokens", "tokens_charged"
    )
    assert set(_recs(bare, q, rate_card=CARD)["type"]) == {"PROVIDER_SWITCH", "PRICE_ADJUSTMENT", "WORKFLOW_TUNING"}


def test_policy_thresholds_are_the_knobs():
    costs = _runs("p", cost=0.03, n=20)
    assert _of(_recs(costs, _quality(), policy=Policy(margin_floor=0.2)), "PRICE_ADJUSTMENT").is_empty()
