"""The economic engine's pure parts: detectors, metric streams, Isolation Forest alerts, the
classifier branch by branch, and the log contract."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
import structlog

from economics import bottlenecks as bn
from economics import detectors
from economics.detection_scores import score, windows_from_labels
from economics.metric_streams import STREAM_SCHEMA, metric_streams
from economics.outliers import feature_rows, unusual
from economics.signal_detection import detect
from resources import logconfig

T0 = datetime(2026, 3, 2, tzinfo=UTC)
RNG = np.random.default_rng(7)


# --- detectors -------------------------------------------------------------------------------
def test_cusum_finds_a_one_sigma_shift_within_its_arl():
    rng = np.random.default_rng(3)
    x = np.r_[rng.normal(0, 1, 200), rng.normal(1.0, 1, 100)]
    c = detectors.cusum(x, baseline=100)
    assert c.alarms and 200 <= c.alarms[0] <= 240 and c.directions[0] == 1
    assert not any(100 <= a < 200 for a in c.alarms)  # in control: ARL0 465


def test_cusum_constants_match_montgomery():
    assert detectors.two_sided_arl0(0.5, 5) == pytest.approx(465, rel=0.02)
    assert detectors.siegmund_arl(0.5, 5, shift=1.0) == pytest.approx(10.4, rel=0.02)
    assert detectors.two_sided_arl0(0.5, detectors.calibrate_h(2016)) == pytest.approx(2016)
    with pytest.raises(ValueError, match="ARL0"):
        detectors.calibrate_h(1)


def test_cusum_on_a_constant_baseline_has_no_scale_and_no_alarm():
    c = detectors.cusum(np.r_[np.ones(20), 5 * np.ones(5)], baseline=10)
    assert c.sigma == 0 and c.alarms == []


def test_robust_z_flags_a_spike_not_its_neighbours():
    x = np.random.default_rng(5).normal(100, 5, 60)
    x[40] = 200
    r = detectors.robust_z(x)
    assert 40 in r.alarms and r.directions[r.alarms.index(40)] == 1
    assert not any(41 <= i <= 50 for i in r.alarms)  # the median and MAD shrug the spike off


def test_holt_winters_flags_an_off_season_peak():
    t = np.arange(24 * 6)
    x = 10 + 5 * np.sin(2 * np.pi * t / 24) + RNG.normal(0, 0.3, t.size)
    x[24 * 5 + 3] += 6
    fit = detectors.holt_winters(x, season=24, train=24 * 4)
    assert fit is not None and 24 * 5 + 3 in fit.alarms
    assert detectors.holt_winters(x[:30], season=24) is None  # under two seasons


def test_hysteresis_raises_once_while_the_value_hovers_at_the_limit():
    x = np.array([1, 6, 4.9, 6, 4.9, 6, 2, 2, 2, 6])
    plain = detectors.hysteresis(x, 5, 5, 1)
    held = detectors.hysteresis(x, 5, 3, 3)
    assert len(plain.raised) == 4
    assert held.raised == [1, 9] and held.cleared == [8]
    with pytest.raises(ValueError, match="exceeds"):
        detectors.hysteresis(x, 5, 6)


def test_scoring_counts_delay_and_false_alarms():
    events = windows_from_labels([0, 0, 1, 1, 0, 0, 0, 0])
    assert events == [(2, 3)]
    s = score([0, 3, 4, 7], events, margin=1)
    assert (s.detected, s.delays, s.false_alarms) == (1, [1], 2)


# --- metric streams ----------------------------------------------------------------------------
def _executions(n=40, provider="p1", effect="warm", instance="gpu-l4", start=T0, **over):
    rows = [
        {
            "task_id": f"{provider}-{start.isoformat()}-{i}",
            "provider_id": provider,
            "effect_type": effect,
            "instance_type": instance,
            "status": "succeeded",
            "duration_ms": 1000,
            "queue_wait_ms": 100,
            "compute_seconds": 1.0,
            "error_class": None,
            "source": "real",
            "finished_at": start + timedelta(seconds=30 * i),
            **over,
        }
        for i in range(n)
    ]
    return pl.DataFrame(rows)


def test_streams_split_errors_and_price_runs():
    ex = _executions(10)
    ex = ex.with_columns(
        status=pl.when(pl.int_range(pl.len()) < 2).then(pl.lit("failed")).otherwise(pl.lit("succeeded")),
        error_class=pl.when(pl.int_range(pl.len()) < 2).then(pl.lit("Throttled")).otherwise(None),
    )
    costs = ex.select(
        "task_id",
        cost_usd=pl.lit(0.01),
        startup_cost_usd=pl.lit(0.001),
        tokens_charged=pl.lit(1),
        cost_tokens=pl.lit(0.5),
    )
    ledger = pl.DataFrame(
        [
            {
                "entry_id": "c",
                "user_id": "u",
                "task_id": None,
                "correlation_id": None,
                "kind": "credit",
                "tokens": 100,
                "reason": "",
                "occurred_at": T0,
            },
            {
                "entry_id": "r",
                "user_id": "u",
                "task_id": "t",
                "correlation_id": "v",
                "kind": "reserve",
                "tokens": 10,
                "reason": "",
                "occurred_at": T0,
            },
            {
                "entry_id": "k",
                "user_id": "u",
                "task_id": "t",
                "correlation_id": "v",
                "kind": "consume",
                "tokens": 10,
                "reason": "",
                "occurred_at": T0 + timedelta(minutes=1),
            },
        ]
    )
    s = metric_streams(ex, costs, ledger)
    assert s.schema == STREAM_SCHEMA
    pe = s.filter(pl.col("scope") == "provider_effect").row(0, named=True)
    assert pe["runs"] == 10 and pe["throttle_rate"] == pytest.approx(0.2) and pe["error_rate"] == pytest.approx(0.2)
    assert pe["errors_by_class"] == [{"error_class": "Throttled", "count": 2}]
    assert pe["p95_latency_ms"] == pytest.approx(1100) and pe["cost_per_run_usd"] == pytest.approx(0.01)
    assert pe["margin"] == pytest.approx(0.5) and pe["cold_start_share"] == pytest.approx(0.1)
    user = s.filter(pl.col("scope") == "user").row(0, named=True)
    assert user["token_burn_per_hour"] == 10 and user["tokens_available"] == 90
    assert user["hours_to_exhaustion"] == pytest.approx(9.0)
    assert s.filter(pl.col("scope") == "instance_type")["utilisation"][0] > 0


# --- detection over streams -------------------------------------------------------------------
def _stream_rows(values: dict[str, list[float]], start=T0, **keys) -> pl.DataFrame:
    n = len(next(iter(values.values())))
    base = {
        "scope": "provider_effect",
        "provider_id": "p1",
        "effect_type": "warm",
        "instance_type": "cpu-2c",
        "user_id": None,
        "source": "real",
        "runs": 10,
    } | keys
    rows = [
        {**base, "bucket_start": start + i * timedelta(minutes=5), **{k: v[i] for k, v in values.items()}}
        for i in range(n)
    ]
    return (
        pl.DataFrame(rows)
        .select([pl.col(c) if c in rows[0] else pl.lit(None).cast(t).alias(c) for c, t in STREAM_SCHEMA.items()])
        .cast(STREAM_SCHEMA)
    )


def test_detect_reports_a_latency_breach_as_threshold_and_spike():
    lat = [1000.0 + (i % 3) for i in range(60)] + [300_000.0]
    found = detect(_stream_rows({"p95_latency_ms": lat}), T0 + 60 * timedelta(minutes=5))
    assert {"threshold", "robust_z", "cusum"} <= set(found["detector"])
    assert set(found["metric"]) == {"p95_latency_ms"}


# --- classifier, branch by branch -------------------------------------------------------------
def _ev(scope="provider_effect", signals=(), fleet=None, **latest):
    key = {
        "scope": scope,
        "provider_id": "p1",
        "effect_type": "warm",
        "instance_type": None,
        "user_id": "u1",
        "source": "real",
    }
    sig = {m: [{"detector": "cusum", "value": 1.0, "baseline": b, "score": 6.0}] for m, b in signals}
    return bn.Evidence(key, {"instance_type": "cpu-2c", **latest}, fleet or {}, sig, 12.0, 1.2, 0.3)


P = bn.Policy()


def test_branch_token_depletion():
    assert bn.decide(_ev("user", hours_to_exhaustion=5.0), P) == bn.TOKEN_DEPLETION_RISK
    assert bn.decide(_ev("user", hours_to_exhaustion=48.0), P) is None


def test_branch_throttling_before_latency():
    ev = _ev(signals=[("p95_latency_ms", 1000.0)], throttle_rate=0.1)
    assert bn.decide(ev, P) == bn.PROVIDER_API_THROTTLING
    assert bn.decide(_ev(signals=[("throttle_rate", 0.0)]), P) == bn.PROVIDER_API_THROTTLING


def test_branch_gpu_saturation_needs_gpu_queue_and_utilisation():
    ev = _ev(signals=[("p95_queue_wait_ms", 10.0)], fleet={"utilisation": 0.9}, instance_type="gpu-l4")
    assert bn.decide(ev, P) == bn.GPU_SATURATION
    low = _ev(signals=[("p95_queue_wait_ms", 10.0)], fleet={"utilisation": 0.5}, instance_type="gpu-l4")
    assert bn.decide(low, P) == bn.PROVIDER_LATENCY_DEGRADATION


def test_branch_cold_start_with_slowness_and_alone():
    assert bn.decide(_ev(signals=[("p95_latency_ms", 1.0)], cold_start_share=0.6), P) == bn.COLD_START_PENALTY
    assert bn.decide(_ev(signals=[("cold_start_share", 0.1)]), P) == bn.COLD_START_PENALTY


def test_branch_latency_degradation_and_timeouts():
    assert bn.decide(_ev(signals=[("p95_latency_ms", 1.0)]), P) == bn.PROVIDER_LATENCY_DEGRADATION
    ev = _ev(signals=[("error_rate", 0.0)], timeout_rate=0.1, other_error_rate=0.0)
    assert bn.decide(ev, P) == bn.PROVIDER_LATENCY_DEGRADATION


def test_branch_workflow_inefficiency_and_nothing():
    assert bn.decide(_ev(signals=[("cost_per_run_usd", 0.01)]), P) == bn.WORKFLOW_INEFFICIENCY
    assert bn.decide(_ev(signals=[("error_rate", 0.0)], other_error_rate=0.2), P) == bn.WORKFLOW_INEFFICIENCY
    assert bn.decide(_ev(), P) is None


def test_cost_impact_and_severity():
    ev = _ev(signals=[("p95_latency_ms", 1000.0)], p95_latency_ms=2000.0, cost_per_run_usd=0.5, error_rate=0.0)
    impact = bn.cost_impact(bn.PROVIDER_LATENCY_DEGRADATION, ev, 0.01)
    assert impact == pytest.approx(12 * 0.5 * 1.0)
    assert bn.severity(bn.PROVIDER_LATENCY_DEGRADATION, ev, impact, P) == "critical"
    tok = _ev("user", token_burn_per_hour=100.0, hours_to_exhaustion=3.0)
    assert bn.cost_impact(bn.TOKEN_DEPLETION_RISK, tok, 0.01) == pytest.approx(1.0)
    assert bn.severity(bn.TOKEN_DEPLETION_RISK, tok, 1.0, P) == "critical"


def test_classify_keeps_id_while_open_and_resolves_later():
    ev = _ev(signals=[("cost_per_run_usd", 0.01)], cost_per_run_usd=0.02)
    empty = pl.DataFrame(schema=bn.CLASSIFICATION_SCHEMA)
    first = bn.classify([ev], {("p1", "warm"): ["v1"]}, empty, T0, 0.01)
    row = first.row(0, named=True)
    assert row["category"] == bn.WORKFLOW_INEFFICIENCY and row["affected_jobs"] == ["v1"]
    assert row["runbook"] == "docs/runbooks/workflow-inefficiency.md"
    assert json.loads(row["evidence"])["signals"]["cost_per_run_usd"][0]["detector"] == "cusum"
    again = bn.classify([ev], {}, first, T0 + timedelta(minutes=5), 0.01)
    assert again["classification_id"].to_list() == first["classification_id"].to_list()
    later = bn.classify([], {}, again, T0 + timedelta(hours=1), 0.01)
    assert later["status"].to_list() == ["resolved"]


def test_every_category_has_a_runbook_page():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for page in bn.RUNBOOKS.values():
        assert (root / page).is_file(), page


# --- Isolation Forest --------------------------------------------------------------------------
def test_isolation_forest_names_the_unusual_features():
    n = 120
    vals = {
        "p95_latency_ms": list(RNG.normal(1000, 30, n)),
        "p95_queue_wait_ms": list(RNG.normal(100, 5, n)),
        "error_rate": [0.0] * n,
        "throttle_rate": [0.0] * n,
        "cost_per_run_usd": list(RNG.normal(0.01, 0.0005, n)),
        "cold_start_share": [0.1] * n,
    }
    vals["p95_latency_ms"][-1], vals["p95_queue_wait_ms"][-1], vals["error_rate"][-1] = 1400.0, 180.0, 0.3
    rows = feature_rows(_stream_rows(vals), pl.DataFrame())
    last = T0 + (n - 1) * timedelta(minutes=5)
    alerts = unusual(rows, last, last)
    assert len(alerts) == 1
    named = {f["feature"] for f in json.loads(alerts[0].features)}
    assert {"p95_queue_wait_ms", "error_rate"} & named


# --- the log contract --------------------------------------------------------------------------
def test_a_bare_warning_fails_in_tests():
    with pytest.raises(logconfig.UnactionableLog):
        structlog.get_logger("t").warning("something odd")


def test_an_actionable_warning_lands_as_a_row(tmp_path):
    from assets.gold.logs import parse_lines

    sink = logconfig.JsonlSink(tmp_path)
    fields = {
        "event_type": "provider_unhealthy",
        "economic_impact_usd": 1.5,
        "urgency": "high",
        "operator_action": "Restore it.",
        "runbook": "docs/runbooks/platform-logs.md#provider_unhealthy",
    }
    event = logconfig.require_action_fields(None, "warning", {"event": "p1 down", "level": "warning", **fields})
    sink(None, "warning", {**event, "timestamp": "2026-03-02T00:00:00Z", "provider_id": "p1"})
    sink(None, "info", {"event": "ignored", "level": "info"})
    rows, offset = parse_lines(sink.path, 0)
    assert offset == sink.path.stat().st_size and len(rows) == 1
    assert rows[0]["event_type"] == "provider_unhealthy" and rows[0]["provider_id"] == "p1"


def test_a_missing_runbook_page_is_refused():
    bad = {
        "event": "x",
        "level": "error",
        "event_type": "x",
        "economic_impact_usd": 0,
        "urgency": "low",
        "operator_action": "a",
        "runbook": "docs/runbooks/nope.md",
    }
    with pytest.raises(logconfig.UnactionableLog, match="does not exist"):
        logconfig.require_action_fields(None, "error", bad)


# --- the classifier over cycles: corroboration, hold, episodes, hourly rates ------------------
def _signal(metric, detector, at, value=2.0, baseline=1.0, **keys) -> dict:
    base = {
        "signal_id": f"{detector}-{metric}-{at.isoformat()}",
        "detected_at": at,
        "detector": detector,
        "metric": metric,
        "scope": "provider_effect",
        "provider_id": "p1",
        "effect_type": "warm",
        "instance_type": "cpu-2c",
        "user_id": None,
        "source": "real",
        "value": value,
        "baseline": baseline,
        "score": 5.0,
        "direction": 1,
        "limit": None,
        "computed_at": at,
    }
    return base | keys


def _signals(*rows) -> pl.DataFrame:
    from economics.signal_detection import SIGNAL_SCHEMA

    return pl.DataFrame(list(rows), schema=SIGNAL_SCHEMA)


def _latency_stream(values, **over) -> pl.DataFrame:
    return _stream_rows({"p95_latency_ms": values, **over}, instance_type="cpu-2c")


GRAIN5 = timedelta(minutes=5)


def test_a_lone_spike_makes_no_case_two_do():
    now = T0 + 12 * GRAIN5
    streams = _latency_stream([1000.0] * 11 + [3000.0])
    one = _signals(_signal("p95_latency_ms", "robust_z", now - GRAIN5))
    assert bn.evidence_for(one, streams, now) == []
    two = _signals(
        _signal("p95_latency_ms", "robust_z", now - GRAIN5), _signal("p95_latency_ms", "holt_winters", now - 2 * GRAIN5)
    )
    [ev] = bn.evidence_for(two, streams, now)
    assert bn.decide(ev, P) == bn.PROVIDER_LATENCY_DEGRADATION
    lone_cusum = _signals(_signal("p95_latency_ms", "cusum", now - GRAIN5))
    assert len(bn.evidence_for(lone_cusum, streams, now)) == 1


def test_an_open_classification_is_held_while_its_metric_stays_up_then_resolves():
    empty = pl.DataFrame(schema=bn.CLASSIFICATION_SCHEMA)
    at = T0 + 12 * GRAIN5
    up = _latency_stream([1000.0] * 8 + [3000.0] * 4)
    sig = _signals(_signal("p95_latency_ms", "cusum", at - GRAIN5, value=3000.0, baseline=1000.0))
    first = bn.classify(bn.evidence_for(sig, up, at, empty), {}, empty, at, 0.01)
    assert first["category"].to_list() == [bn.PROVIDER_LATENCY_DEGRADATION]
    assert json.loads(first["evidence"][0])["hold"] == {"p95_latency_ms": {"baseline": 1000.0, "peak": 3000.0}}
    # No new signal (the CUSUM re-baselined), the latency still up: held, same id.
    later = at + 6 * GRAIN5
    still = _stream_rows({"p95_latency_ms": [1000.0] * 8 + [3000.0] * 10}, instance_type="cpu-2c")
    held = bn.classify(bn.evidence_for(_signals(), still, later, first), {}, first, later, 0.01)
    assert held["classification_id"].to_list() == first["classification_id"].to_list()
    assert held["last_seen_at"][0] == later and "held" in held["evidence"][0]
    # Back under the midpoint (2000): not seen; resolved 30 minutes after it was last seen.
    back = _stream_rows({"p95_latency_ms": [1000.0] * 8 + [3000.0] * 10 + [1100.0] * 3}, instance_type="cpu-2c")
    gone = later + 3 * GRAIN5
    assert bn.evidence_for(_signals(), back, gone, held) == []
    assert bn.classify([], {}, held, gone, 0.01).is_empty()
    resolved = bn.classify([], {}, held, later + P.resolve_after, 0.01)
    assert resolved["status"].to_list() == ["resolved"]


def test_an_episode_moves_only_up_the_tree():
    empty = pl.DataFrame(schema=bn.CLASSIFICATION_SCHEMA)
    slow = _ev(signals=[("p95_latency_ms", 1000.0)], instance_type="gpu-l4")
    opened = bn.classify([slow], {}, empty, T0, 0.01)
    # Later the same stream looks like a cost problem only: it stays the latency episode.
    costly = _ev(signals=[("cost_per_run_usd", 0.01)], instance_type="gpu-l4")
    stays = bn.classify([costly], {}, opened, T0 + GRAIN5, 0.01)
    assert stays["category"].to_list() == [bn.PROVIDER_LATENCY_DEGRADATION]
    assert stays["classification_id"].to_list() == opened["classification_id"].to_list()
    # The fleet turns out saturated: re-classified in place.
    saturated = _ev(signals=[("p95_queue_wait_ms", 10.0)], fleet={"utilisation": 0.95}, instance_type="gpu-l4")
    up = bn.classify([saturated], {}, stays, T0 + 2 * GRAIN5, 0.01)
    assert up["category"].to_list() == [bn.GPU_SATURATION]
    assert up["classification_id"].to_list() == opened["classification_id"].to_list()
    assert up["first_seen_at"][0] == T0


def test_errors_are_split_over_the_hour():
    # 30 % throttled over the hour, none in the latest bucket: still throttling, not an
    # inefficiency of "other" errors.
    ev = _ev(signals=[("error_rate", 0.05)], throttle_rate=0.0, other_error_rate=0.0)
    assert bn.decide(ev, P) == bn.WORKFLOW_INEFFICIENCY
    hourly = bn.Evidence(
        ev.key, ev.latest, {}, ev.signals, 12.0, 1.2, 0.3, rates={"throttle_rate": 0.3, "error_rate": 0.3}
    )
    assert bn.decide(hourly, P) == bn.PROVIDER_API_THROTTLING
    assert bn.severity(bn.PROVIDER_API_THROTTLING, hourly, 0.0, P) == "critical"
