"""Market simulator: determinism, the exact shape the economics job reads, outages,
seasonality, drift, price shocks, shadow copies and routers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from economics.cost_model import RateCard, cost_frame
from economics.simulator import (
    SIMULATED_SCHEMA,
    Market,
    Outage,
    ProviderModel,
    Shock,
    diurnal,
    execution_events,
    quality_rows,
    simulate,
)
from resources.schemas import EXECUTION_COSTS, EXECUTION_EVENTS, QUALITY_SCORES, conform

T0 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday, 00:00 UTC
CARD = RateCard({"cpu-2c": 0.085 / 3600, "gpu-l4": 0.80 / 3600})


def _market(*models: ProviderModel, **kw) -> Market:
    base = (ProviderModel("a", "cartoon", "cpu-2c", 10.0), ProviderModel("b", "cartoon", "gpu-l4", 5.0))
    return Market(models or base, T0, **kw)


def test_same_seed_same_rows_other_seed_other_rows():
    m = _market(shocks=(Shock("a", T0 + timedelta(hours=1), cost_factor=2),), volume_by_hour=diurnal(0.3))
    first = simulate(m, T0, 3, 500, seed=11)
    assert first.equals(simulate(m, T0, 3, 500, seed=11))
    assert not first.equals(simulate(m, T0, 3, 500, seed=12))


def test_rows_have_exactly_the_execution_costs_input_shape():
    m = _market(
        ProviderModel("a", "cartoon", "cpu-2c", 10.0, failure_rate=0.2),
        ProviderModel("s", "cartoon", "gpu-l4", 5.0, mode="shadow"),
    )
    rows = simulate(m, T0, 2, 300, seed=1)
    assert rows.schema == SIMULATED_SCHEMA
    shared = {c: t for c, t in EXECUTION_COSTS.schema.items() if c in rows.columns}
    assert set(rows.columns) - set(shared) == {"composite"}
    assert all(rows.schema[c] == t for c, t in shared.items())
    assert set(rows["status"]) == {"succeeded", "failed"} and set(rows["source"]) == {"simulated"}
    assert set(rows["selection"]) == {"ranked", "shadow"}
    assert rows["task_id"].is_unique().all() and rows["finished_at"].is_sorted()
    assert rows["finished_at"].min() >= T0 and rows["finished_at"].max() < T0 + timedelta(hours=2)
    assert (rows["composite"].is_null() == (rows["status"] == "failed")).all()
    assert rows["composite"].drop_nulls().is_between(0, 1).all()
    # The economics job's cost step accepts the rows and their output conforms to the table.
    conform(cost_frame(rows, CARD, {"cartoon": 4}, 0.01).drop("composite"), EXECUTION_COSTS)
    conform(quality_rows(rows), QUALITY_SCORES)


def test_execution_events_round_trip_through_the_economics_job_reader():
    from economics.telemetry import finished_executions

    rows = simulate(_market(ProviderModel("a", "cartoon", "cpu-2c", 10.0, failure_rate=0.3)), T0, 1, 200, seed=2)
    events = conform(execution_events(rows), EXECUTION_EVENTS)
    assert set(events["event_type"]) == {"TaskSucceeded", "TaskFailed"}
    assert events["event_id"].is_unique().all()
    back = finished_executions(events.lazy()).select(rows.drop("composite").columns).sort("task_id")
    assert back.equals(rows.drop("composite").sort("task_id"))


def test_outage_fails_every_call_inside_the_window_and_none_outside():
    start, end = T0 + timedelta(minutes=40), T0 + timedelta(minutes=70)
    m = _market(outages=(Outage("b", start, end),))
    rows = simulate(m, T0, 2, 2000, seed=3)
    b = rows.filter(pl.col("provider_id") == "b")
    inside = pl.col("finished_at").is_between(start, end, closed="left")
    assert (b.filter(inside)["status"] == "failed").all() and b.filter(inside).height > 100
    assert (b.filter(~inside)["status"] == "succeeded").all()
    assert (rows.filter(pl.col("provider_id") == "a")["status"] == "succeeded").all()
    assert b.filter(inside)["compute_seconds"].sum() == 0  # refused calls cost nothing


def test_hourly_volume_and_latency_follow_the_seasonality():
    m = _market(volume_by_hour=diurnal(0.5, peak_hour=18), latency_load_elasticity=1.0)
    rows = simulate(m, T0, 48, 1000, seed=4)
    by_hour = (
        rows.group_by(h=pl.col("finished_at").dt.hour()).agg(n=pl.len(), ms=pl.col("duration_ms").median()).sort("h")
    )
    n, ms = dict(zip(by_hour["h"], by_hour["n"], strict=True)), dict(zip(by_hour["h"], by_hour["ms"], strict=True))
    assert n[18] / n[6] == pytest.approx(1.5 / 0.5, rel=0.15)  # peak / trough of 1 ± 0.5
    assert rows.height / 48 == pytest.approx(1000, rel=0.05)  # the mean rate is kept
    assert ms[18] / ms[6] == pytest.approx(3.0, rel=0.2)  # latency ∝ load¹


def _median_by(rows: pl.DataFrame, col: str, key: pl.Expr) -> dict:
    out = rows.group_by(k=key).agg(pl.col(col).median()).sort("k")
    return dict(zip(out["k"], out[col], strict=True))


def test_drift_compounds_per_day():
    m = _market(
        ProviderModel(
            "a", "cartoon", "cpu-2c", 10.0, cost_drift_per_day=0.5, quality_drift_per_day=-0.1, quality_sd=0.02
        )
    )
    rows = simulate(m, T0, 96, 100, seed=5)
    day = (pl.col("finished_at") - T0).dt.total_days()
    compute, quality = _median_by(rows, "compute_seconds", day), _median_by(rows, "composite", day)
    assert compute[3] / compute[0] == pytest.approx(1.5**3, rel=0.1)
    assert quality[0] - quality[3] == pytest.approx(0.3, abs=0.03)


def test_price_shock_scales_cost_from_its_time_on():
    at = T0 + timedelta(hours=2)
    m = _market(
        ProviderModel("a", "cartoon", "cpu-2c", 10.0, partner_cost_usd=0.01), shocks=(Shock("a", at, cost_factor=3.0),)
    )
    costs = cost_frame(simulate(m, T0, 4, 1000, seed=6), CARD, {"cartoon": 4}, 0.01)
    median = _median_by(costs, "cost_usd", pl.col("finished_at") >= at)
    assert median[True] / median[False] == pytest.approx(3.0, rel=0.05)


def test_shadow_providers_get_one_copy_of_every_user_job():
    m = _market(
        ProviderModel("a", "cartoon", "cpu-2c", 10.0),
        ProviderModel("a", "warm_grade", "cpu-2c", 2.0),
        ProviderModel("s", "cartoon", "gpu-l4", 5.0, mode="shadow"),
    )
    rows = simulate(m, T0, 2, 500, seed=7)
    user = rows.filter(pl.col("selection") != "shadow")
    shadow = rows.filter(pl.col("selection") == "shadow")
    assert set(shadow["provider_id"]) == {"s"} and "s" not in set(user["provider_id"])
    cartoon = user.filter(pl.col("effect_type") == "cartoon")
    pairs = cartoon.join(shadow, on=["video_id", "finished_at"], how="inner")
    assert pairs.height == cartoon.height == shadow.height


def test_expected_stats_match_what_is_simulated():
    m = _market(
        ProviderModel(
            "a",
            "cartoon",
            "gpu-l4",
            20.0,
            partner_cost_usd=0.002,
            failure_rate=0.1,
            quality_dist="beta",
            quality_mean=0.7,
            quality_sd=0.1,
        )
    )
    rows = simulate(m, T0, 10, 2000, seed=8)
    costs = cost_frame(rows, CARD, {"cartoon": 4}, 0.01)
    ok = costs.filter(pl.col("status") == "succeeded")
    true = m.expected_stats(T0 + timedelta(hours=5), CARD).row(0, named=True)
    assert ok["cost_usd"].mean() == pytest.approx(true["mean_cost_usd"], rel=0.02)
    assert costs["cost_usd"].mean() == pytest.approx(true["cost_per_call_usd"], rel=0.02)
    assert ok["duration_ms"].mean() == pytest.approx(true["mean_duration_ms"], rel=0.02)
    assert ok["composite"].mean() == pytest.approx(0.7, abs=0.01) and ok["composite"].std() == pytest.approx(
        0.1, abs=0.01
    )
    assert (costs["status"] == "succeeded").mean() == pytest.approx(true["success_rate"], abs=0.015)


def test_router_sees_only_the_past_and_its_weights_are_followed():
    seen = []

    def router(now, history):
        seen.append((now, history["finished_at"].max(), history.height))
        return {"cartoon": {"a": 3.0, "b": 1.0}}

    rows = simulate(_market(), T0, 2, 4000, seed=9, router=router, cycle=timedelta(minutes=30))
    assert [s[0] for s in seen] == [T0 + timedelta(minutes=30 * k) for k in range(4)]
    assert seen[0][2] == 0 and all(last < now for now, last, n in seen[1:])
    share = (rows["provider_id"] == "a").mean()
    assert share == pytest.approx(0.75, abs=0.02)
    assert set(rows.filter(pl.col("provider_id") == "b")["selection"]) == {"exploration"}
    counts = rows["provider_id"].value_counts()
    assert counts.height == 2
    uniform = simulate(_market(), T0, 2, 4000, seed=9)
    assert (uniform["provider_id"] == "a").mean() == pytest.approx(0.5, abs=0.02)


def test_invalid_inputs_are_rejected():
    with pytest.raises(ValueError, match="tz-aware"):
        simulate(_market(), datetime(2026, 1, 1), 1, 10, seed=0)  # noqa: DTZ001 - naive on purpose
    shadowed = _market(
        ProviderModel("a", "cartoon", "cpu-2c", 1.0), ProviderModel("s", "cartoon", "cpu-2c", 1.0, mode="shadow")
    )
    with pytest.raises(ValueError, match="not active"):
        simulate(shadowed, T0, 1, 100, seed=0, router=lambda now, h: {"cartoon": {"s": 1.0}})
    with pytest.raises(ValueError, match="duplicate"):
        Market((ProviderModel("a", "cartoon", "cpu-2c", 1.0),) * 2, T0)
    with pytest.raises(ValueError, match="beta"):
        ProviderModel("a", "cartoon", "cpu-2c", 1.0, quality_dist="beta", quality_mean=0.5, quality_sd=0.6)
    assert simulate(_market(), T0, 0, 100, seed=0).schema == SIMULATED_SCHEMA


def test_arrivals_are_uniform_within_an_hour():
    # The spacing construction must not bunch arrivals at either end of a segment.
    rows = simulate(_market(), T0 + timedelta(minutes=20), 5, 20_000, seed=10)
    minute = rows["finished_at"].dt.minute().to_numpy()
    hist = np.bincount(minute // 10, minlength=6)
    assert hist.min() / hist.max() > 0.95
