"""The action planner (``economics.actions``), the routing adjustments
(``economics.manifest_adjustments``) and what applying a recommendation changes
(``economics.applications``): pure, branch by branch."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from economics import actions as a
from economics.applications import NotApplicable, Stale, change_for, unattended_refusal
from economics.bottlenecks import CLASSIFICATION_SCHEMA, automatic_action
from economics.manifest_adjustments import adjust, adjustments_from_parameters
from economics.routing import build_manifest

NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)


def _cls(cid: str, category: str, status: str = "open", severity: str = "critical", **kw) -> dict:
    numbers = kw.pop("numbers", {})
    signals = kw.pop("signals", {})
    return {
        "classification_id": cid,
        "category": category,
        "severity": severity,
        "status": status,
        "scope": "user" if category == "TOKEN_DEPLETION_RISK" else "provider_effect",
        "provider_id": kw.pop("provider_id", "p1"),
        "effect_type": kw.pop("effect_type", "warm"),
        "source": kw.pop("source", "real"),
        "evidence": json.dumps({"signals": signals, "numbers": numbers, "runs_per_hour": 12}),
        "automatic_action": automatic_action(category, severity),
        "cost_impact_usd_per_hour": kw.pop("impact", 2.0),
        "first_seen_at": NOW - timedelta(minutes=30),
        "last_seen_at": NOW,
        "resolved_at": NOW if status == "resolved" else None,
        **kw,
    }


def _frame(*rows: dict) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=CLASSIFICATION_SCHEMA)


def _recorded(*rows: dict) -> pl.DataFrame:
    schema = {
        "classification_id": pl.String,
        "action": pl.String,
        "phase": pl.String,
        "outcome": pl.String,
        "change_id": pl.String,
        "taken_at": pl.Datetime("us", "UTC"),
    }
    return pl.DataFrame([{"taken_at": NOW, **r} for r in rows], schema=schema)


STATE = a.State(
    registry_concurrency={"p1": 4, "p2": 2, "gpu1": 2, "gpu2": 2},
    usd_per_instance_hour={"p1": 0.085, "p2": 0.085, "gpu1": 0.80, "gpu2": 1.006},
    retry_attempts={"p1": 3},
    routing={"warm": ["p1", "p2"], "solo": ["p1"]},
    prices={"warm": 10},
    token_usd_rate=0.01,
)


def test_every_category_has_an_action_and_only_critical_latency_demotes():
    assert automatic_action("PROVIDER_LATENCY_DEGRADATION", "warning") is None
    assert automatic_action("PROVIDER_LATENCY_DEGRADATION", "critical") == a.DEMOTE
    assert automatic_action("PROVIDER_API_THROTTLING", "warning") == a.REDUCE
    assert automatic_action("TOKEN_DEPLETION_RISK", "warning") == a.NOTIFY


def test_throttling_halves_concurrency_once_per_provider_and_restores_when_all_clear():
    c1 = _cls("c1", "PROVIDER_API_THROTTLING", numbers={"throttle_rate": 0.3})
    c2 = _cls("c2", "PROVIDER_API_THROTTLING", effect_type="cool")
    [step, second] = a.plan(_frame(c1, c2), _recorded(), STATE)
    assert step.kind == a.CHANGE and step.change == a.Change("provider", "p1", "concurrency", None, 2)
    assert "4 → 2" in step.detail and "30.0%" in step.detail
    assert second.kind == a.NOTHING and second.outcome == a.SKIPPED and "already reduced" in second.detail

    done = _recorded(
        {"classification_id": "c1", "action": a.REDUCE, "phase": a.APPLY, "outcome": a.DONE, "change_id": "chg1"},
        {"classification_id": "c2", "action": a.REDUCE, "phase": a.APPLY, "outcome": a.SKIPPED},
    )
    reduced = a.State(**{**STATE.__dict__, "concurrency_overrides": {"p1": 2}})
    # c1 resolved while c2 (same provider) is still throttled: the reduction stays.
    assert a.plan(_frame({**c1, "status": "resolved", "resolved_at": NOW}, c2), done, reduced) == []
    both = _frame({**c1, "status": "resolved", "resolved_at": NOW}, {**c2, "status": "resolved", "resolved_at": NOW})
    [restore] = a.plan(both, done, reduced)
    assert (restore.kind, restore.phase, restore.restores) == (a.ROLLBACK, a.RESTORE, "chg1")
    restored = pl.concat(
        [done, _recorded({"classification_id": "c1", "action": a.REDUCE, "phase": a.RESTORE, "outcome": a.DONE})]
    )
    assert a.plan(both, restored, STATE) == []


def test_throttling_at_the_minimum_and_on_a_simulated_stream():
    one = a.State(registry_concurrency={"p2": 1})
    [at_min] = a.plan(_frame(_cls("c", "PROVIDER_API_THROTTLING", provider_id="p2")), _recorded(), one)
    assert at_min.outcome == a.SKIPPED and "minimum" in at_min.detail
    [sim] = a.plan(_frame(_cls("s", "PROVIDER_API_THROTTLING", source="simulated")), _recorded(), STATE)
    assert sim.kind == a.NOTHING and sim.outcome == a.SIMULATED and "4 → 2" in sim.detail
    [acted] = a.plan(
        _frame(_cls("s", "PROVIDER_API_THROTTLING", source="simulated")),
        _recorded(),
        STATE,
        a.ActionPolicy(act_on_simulated=True),
    )
    assert acted.kind == a.CHANGE


def test_latency_demotes_when_there_is_an_alternative():
    [demote] = a.plan(_frame(_cls("c", "PROVIDER_LATENCY_DEGRADATION")), _recorded(), STATE)
    assert demote.change is not None and demote.change.name == "demote.p1" and demote.change.subject == "warm"
    assert "p2 take" in demote.detail
    [alone] = a.plan(_frame(_cls("c", "PROVIDER_LATENCY_DEGRADATION", effect_type="solo")), _recorded(), STATE)
    assert alone.outcome == a.SKIPPED and "no alternative" in alone.detail
    warning = _cls("w", "PROVIDER_LATENCY_DEGRADATION", severity="warning")
    assert a.plan(_frame(warning), _recorded(), STATE) == []  # no automatic action below critical


def test_depletion_notice_names_the_projected_hours_once():
    c = _cls(
        "t",
        "TOKEN_DEPLETION_RISK",
        severity="warning",
        user_id="u1",
        provider_id=None,
        effect_type=None,
        numbers={"hours_to_exhaustion": 4.2, "token_burn_per_hour": 24.0, "tokens_available": 100},
    )
    [step] = a.plan(_frame(c), _recorded(), STATE)
    assert step.kind == a.NOTIFY_KIND and step.user_id == "u1"
    assert "at the current rate (24 tokens/h) your balance runs out in 4.2 h" in step.body.lower()
    done = _recorded({"classification_id": "t", "action": a.NOTIFY, "phase": a.APPLY, "outcome": a.DONE})
    assert a.plan(_frame(c), done, STATE) == []  # the same episode (classification) is told once
    assert a.hours_text(0.5) == "30 min"


def test_scale_up_within_budget_is_applied_else_recommended():
    sat = _cls("g", "GPU_SATURATION", provider_id="gpu1", impact=3.0)
    [within] = a.plan(_frame(sat), _recorded(), STATE, a.ActionPolicy(autoscale_budget_usd_per_hour=1.0))
    assert within.kind == a.CHANGE and within.guard_budget
    assert within.change == a.Change("provider", "gpu1", "concurrency", None, 3, 0.8)
    # gpu1 already runs a slot above its registry ($0.80/h in force): the next one ($1.006) is over.
    spent = a.State(**{**STATE.__dict__, "concurrency_overrides": {"gpu1": 3}})
    [over] = a.plan(_frame(_cls("h", "GPU_SATURATION", provider_id="gpu2")), _recorded(), spent)
    assert over.kind == a.RECOMMEND and over.proposal["extra_capacity_usd_per_hour"] == pytest.approx(0.8)
    assert over.proposal["after"] == 3 and over.proposal["cost_usd_per_hour"] == pytest.approx(1.006)
    # A throttled provider gets no more slots.
    throttled = _recorded({"classification_id": "x", "action": a.REDUCE, "phase": a.APPLY, "outcome": a.DONE})
    steps = a.plan(_frame(_cls("x", "PROVIDER_API_THROTTLING", provider_id="gpu1"), sat), throttled, STATE)
    assert [s.outcome for s in steps] == [a.SKIPPED] and "throttled" in steps[0].detail


def test_warm_pool_schedule_follows_littles_law():
    hourly = {
        ("p1", "real"): [
            {"hour": 8, "runs_per_hour": 360.0, "seconds_per_run": 30.0},  # λW = 0.1/s × 30 s = 3 instances
            {"hour": 9, "runs_per_hour": 200.0, "seconds_per_run": 30.0},  # ≥ 50 % of the peak: 2 instances
            {"hour": 3, "runs_per_hour": 20.0, "seconds_per_run": 30.0},  # quiet: not kept warm
        ]
    }
    state = a.State(**{**STATE.__dict__, "hourly": hourly})
    [step] = a.plan(_frame(_cls("w", "COLD_START_PENALTY", impact=0.5)), _recorded(), state)
    assert step.kind == a.RECOMMEND
    assert step.proposal["schedule"] == [{"hour_utc": 8, "min_instances": 3}, {"hour_utc": 9, "min_instances": 2}]
    assert step.proposal["cost_usd_per_day"] == pytest.approx(5 * 0.085)
    assert step.proposal["avoided_startup_usd_per_day"] == pytest.approx(1.0)


def test_workflow_review_suggests_a_price_and_no_retries():
    c = _cls(
        "r",
        "WORKFLOW_INEFFICIENCY",
        signals={"cost_per_run_usd": [{"detector": "cusum"}], "error_rate": [{"detector": "robust_z"}]},
        numbers={"cost_per_run_usd": 0.06, "error_rate": 0.2, "throttle_rate": 0.0, "timeout_rate": 0.05},
    )
    [flag] = a.plan(_frame(c), _recorded(), STATE)
    assert flag.kind == a.FLAG
    # 0.06 USD = 6 tokens per run; 70 % margin needs 6 / 0.3 = 20 tokens.
    assert flag.change == a.Change("effect", "warm", "price_tokens", 10, 20)
    params = [s["parameter"] for s in flag.proposal["suggestions"]]
    assert params == ["providers.yaml p1 retry.attempts", "effect.warm.price_tokens"]


def test_hourly_profile_averages_over_days():
    start = datetime(2026, 12, 1, tzinfo=UTC)
    rows = [
        {
            "scope": "provider_effect",
            "provider_id": "p1",
            "source": "real",
            "bucket_start": start + timedelta(days=d, hours=8, minutes=m),
            "runs": 5,
            "p50_latency_ms": 2000.0,
        }
        for d in range(2)
        for m in (0, 5)
    ]
    [h8] = a.hourly_profile(pl.DataFrame(rows))[("p1", "real")]
    assert (h8["hour"], h8["runs_per_hour"], h8["seconds_per_run"]) == (8, 10.0, 2.0)


def _manifest():
    return build_manifest(pl.DataFrame(), {"warm": ["p1", "p2", "p3"], "solo": ["p1"]}, NOW, exploration_rate=0.1)


def test_pin_and_demote_adjust_a_manifest_and_compose():
    m = _manifest()
    assert adjust(m, []) is m
    params = {
        ("routing", "warm", "pin"): {"value": "p3", "change_id": "c1"},
        ("routing", "warm", "demote.p1"): {"value": "slow", "change_id": "c2"},
        ("routing", "solo", "demote.p1"): {"value": "slow", "change_id": "c3"},
        ("provider", "p1", "concurrency"): {"value": 1, "change_id": "c4"},
    }
    out = adjust(m, adjustments_from_parameters(params), NOW)
    warm = out["effects"]["warm"]
    assert [(e["provider_id"], e["rank"], e["weight"]) for e in warm] == [("p3", 1, 0.9), ("p2", 2, 0.1)]
    assert (out["demoted"]["warm"][0]["provider_id"], out["demoted"]["warm"][0]["weight"]) == ("p1", 0.0)
    assert [e["provider_id"] for e in out["effects"]["solo"]] == ["p1"]  # the only provider stays
    notes = {(x["effect_type"], x["kind"]): x["applied"] for x in out["adjustments"]}
    assert notes == {("warm", "pin"): True, ("warm", "demote"): True, ("solo", "demote"): False}
    assert out["base_version"] == m["version"] and out["version"] != m["version"]
    assert m["effects"]["warm"][0]["provider_id"] == "p1"  # not modified
    both = adjust(
        m,
        adjustments_from_parameters(
            {
                ("routing", "warm", "pin"): {"value": "p1", "change_id": "a"},
                ("routing", "warm", "demote.p1"): {"value": "x", "change_id": "b"},
            }
        ),
    )
    assert "p1" not in [e["provider_id"] for e in both["effects"]["warm"]]  # the demotion wins


def test_what_a_recommendation_changes():
    switch = {
        "type": "PROVIDER_SWITCH",
        "action": json.dumps({"effect_type": "warm", "from_provider": "p1", "to_provider": "p2"}),
    }
    assert change_for(switch, {}, {}, {}) == a.Change("routing", "warm", "pin", None, "p2")
    price = {
        "type": "PRICE_ADJUSTMENT",
        "action": {"effect_type": "warm", "price_tokens": 14, "previous_price_tokens": 10},
    }
    assert change_for(price, {}, {"warm": 10}, {"warm": 10}) == a.Change("effect", "warm", "price_tokens", None, 14)
    with pytest.raises(Stale):
        change_for(price, {("effect", "warm", "price_tokens"): 12}, {"warm": 12}, {"warm": 10})
    back = {
        "type": "PRICE_ADJUSTMENT",
        "action": {"effect_type": "warm", "price_tokens": 10, "previous_price_tokens": 12},
    }
    # Back to the list price: the parameter is removed, not set to the default's value.
    assert change_for(back, {("effect", "warm", "price_tokens"): 12}, {"warm": 12}, {"warm": 10}).after is None
    with pytest.raises(NotApplicable, match="fleet"):
        change_for({"type": "FLEET_OPTIMIZATION", "action": {"provider_id": "p1", "spot": True}}, {}, {}, {})
    scale = {
        "type": "CAPACITY_SCALE_UP",
        "action": {
            "scope": "provider",
            "subject": "g",
            "name": "concurrency",
            "before": None,
            "after": 3,
            "cost_usd_per_hour": 0.8,
        },
    }
    assert change_for(scale, {}, {}, {}).cost_usd_per_hour == 0.8
    with pytest.raises(Stale):
        change_for(scale, {("provider", "g", "concurrency"): 1}, {}, {})


def test_unattended_guardrails():
    c = a.Change("effect", "warm", "price_tokens", None, 12)
    assert unattended_refusal({"auto_applicable": False}, c, 10, 0, 2, 0.25).startswith("not auto-applicable")
    assert unattended_refusal({"auto_applicable": True}, c, 10, 0, 2, 0.25) is None  # +20 %
    assert "over the 25%" in unattended_refusal({"auto_applicable": True}, c, 9, 0, 2, 0.25)  # +33 %
    assert "next cycle" in unattended_refusal({"auto_applicable": True}, c, 10, 2, 2, 0.25)
