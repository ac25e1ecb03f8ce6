"""Burn rates, "why margin moved" and the 24-h forecast — on hand-checked numbers, a
hypothesis property (the decomposition sums exactly) and synthetic daily series."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from economics.decomposition import EFFECTS, decompose_margin_change, period_cells, why_margin_moved
from economics.forecast import forecast_next_24h, forecast_series, hourly_totals
from economics.marginality import burn_rates

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
CENT = 0.005


def costs(rows) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            "provider_id": pl.String,
            "effect_type": pl.String,
            "finished_at": pl.Datetime("us", "UTC"),
            "cost_usd": pl.Float64,
            "revenue_usd": pl.Float64,
            "tokens_charged": pl.Int64,
            "cost_tokens": pl.Float64,
        },
        orient="row",
    )


# --- burn rate -----------------------------------------------------------------------------

BURN = costs(
    [
        ("a", "cartoon", NOW - timedelta(minutes=10), 0.30, 0.50, 50, 30.0),
        ("a", "cartoon", NOW - timedelta(hours=5), 0.60, 1.00, 100, 60.0),
        ("b", "cartoon", NOW - timedelta(days=3), 1.50, 0.00, 0, 150.0),
        ("b", "cartoon", NOW - timedelta(hours=24), 0.12, 0.00, 0, 12.0),  # 24h window is (start, now]
        ("b", "cartoon", NOW - timedelta(days=8), 100.0, 0.00, 0, 10_000.0),  # outside every window
    ]
)


def test_burn_rate_is_window_total_over_window_hours():
    w = {r["window"]: r for r in burn_rates(BURN, NOW).iter_rows(named=True)}
    # 1h: one execution, $0.30 and 50 tokens in 1 hour
    assert (w["1h"]["executions"], w["1h"]["hours"]) == (1, 1.0)
    assert w["1h"]["cost_usd_per_hour"] == pytest.approx(0.30)
    assert w["1h"]["tokens_charged_per_hour"] == pytest.approx(50.0)
    # 24h: (0.30 + 0.60) / 24 = 0.0375 $/h; (50 + 100) / 24 = 6.25 tokens/h; the row at
    # exactly now − 24 h is out
    assert w["24h"]["executions"] == 2
    assert w["24h"]["cost_usd_per_hour"] == pytest.approx(0.0375)
    assert w["24h"]["tokens_charged_per_hour"] == pytest.approx(6.25)
    assert w["24h"]["revenue_usd_per_hour"] == pytest.approx(1.50 / 24)
    # 7d: (0.30 + 0.60 + 1.50 + 0.12) / 168 = 2.52 / 168 = 0.015 $/h; 252 cost tokens / 168 = 1.5
    assert w["7d"]["cost_usd_per_hour"] == pytest.approx(0.015)
    assert w["7d"]["cost_tokens_per_hour"] == pytest.approx(1.5)


def test_burn_rate_per_provider_and_on_no_data():
    rows = burn_rates(BURN, NOW, by=("provider_id",))
    assert rows.filter(pl.col("window") == "1h")["provider_id"].to_list() == ["a"]
    b7 = rows.filter((pl.col("window") == "7d") & (pl.col("provider_id") == "b")).row(0, named=True)
    assert b7["cost_usd_per_hour"] == pytest.approx(1.62 / 168)  # 0.0096
    empty = burn_rates(BURN.clear(), NOW)
    assert empty["window"].to_list() == ["1h", "24h", "7d"]
    assert empty["cost_usd_per_hour"].to_list() == [0.0, 0.0, 0.0]


# --- why margin moved ------------------------------------------------------------------------


def cells(rows) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            "provider_id": pl.String,
            "effect_type": pl.String,
            "runs": pl.Int64,
            "revenue_usd": pl.Float64,
            "cost_usd": pl.Float64,
        },
        orient="row",
    )


def test_one_cell_price_cost_and_volume_by_hand():
    # A: 10 runs at $1.00, cost $0.40/run → margin 6.00.  B: 12 runs at $1.10, $0.45/run →
    # 12 × 0.65 = 7.80.  ΔM = 1.80.  One cell: s = 1 in both, so mix = 0 and
    # w(N, s) = (10·1 + 12·1)/3 + (10·1 + 12·1)/6 = 22/3 + 22/6 = 11
    #   price  =  0.10 × 11 = 1.10
    #   cost   = −0.05 × 11 = −0.55
    #   volume = ΔN · w(s, u) = 2 × [(0.60 + 0.65)/3 + (0.65 + 0.60)/6] = 2 × 0.625 = 1.25
    #   1.10 − 0.55 + 1.25 + 0 = 1.80 ✓
    r = decompose_margin_change(cells([("a", "cartoon", 10, 10.0, 4.0)]), cells([("a", "cartoon", 12, 13.2, 5.4)]))
    assert (r.margin_usd_a, r.margin_usd_b, r.change) == pytest.approx((6.0, 7.8, 1.8), abs=CENT)
    assert r.price_effect == pytest.approx(1.10, abs=CENT)
    assert r.cost_effect == pytest.approx(-0.55, abs=CENT)
    assert r.volume_effect == pytest.approx(1.25, abs=CENT)
    assert r.mix_effect == pytest.approx(0.0, abs=1e-12)
    # margin %: 6 / 10 = 60 % → 7.8 / 13.2 = 59.09 %
    assert r.margin_pct_change == pytest.approx(7.8 / 13.2 - 0.6)


def test_mix_shift_and_cells_in_one_period_only_by_hand():
    # A: x 10 runs p 1.00 c 0.50 (u 0.5), y 10 runs p 1.00 c 0.80 (u 0.2); N 20, s .5/.5, M 7
    # B: x 20 runs p 1.20 c 0.50 (u 0.7), z  5 runs p 1.00 c 0.20 (u 0.8); N 25, s .8/.2, M 18
    # y is gone in B, z is new: their missing prices/costs are copied, shares are 0.
    # x: price  = 0.2 × [(20·.5 + 25·.8)/3 + (20·.8 + 25·.5)/6] = 0.2 × 14.75 = 2.95
    #    volume = 5 × [(.5·.5 + .8·.7)/3 + (.5·.7 + .8·.5)/6] = 5 × 0.395 = 1.975
    #    mix    = 0.3 × [(20·.5 + 25·.7)/3 + (20·.7 + 25·.5)/6] = 0.3 × 13.58333 = 4.075
    #    sum 9.00 = 14 − 5 ✓
    # y: volume = 5 × [(.5·.2)/3 + (.5·.2)/6] = 0.25;  mix = −.5 × [9/3 + 9/6] = −2.25  (−2 ✓)
    # z: volume = 5 × [(.2·.8)/3 + (.2·.8)/6] = 0.40;  mix = .2 × [36/3 + 36/6] = 3.60  (+4 ✓)
    # totals: price 2.95, cost 0, volume 2.625, mix 5.425 → 11.00 = 18 − 7 ✓
    a = cells([("x", "cartoon", 10, 10.0, 5.0), ("y", "cartoon", 10, 10.0, 8.0)])
    b = cells([("x", "cartoon", 20, 24.0, 10.0), ("z", "cartoon", 5, 5.0, 1.0)])
    r = decompose_margin_change(a, b)
    assert r.change == pytest.approx(11.0, abs=CENT)
    got = {e: getattr(r, e) for e in EFFECTS}
    assert got == pytest.approx(
        {"price_effect": 2.95, "cost_effect": 0.0, "volume_effect": 2.625, "mix_effect": 5.425}, abs=CENT
    )
    per_cell = {row["provider_id"]: row for row in r.cells.iter_rows(named=True)}
    assert per_cell["x"]["mix_effect"] == pytest.approx(4.075, abs=CENT)
    assert per_cell["y"]["mix_effect"] == pytest.approx(-2.25, abs=CENT)
    assert (per_cell["y"]["runs_b"], per_cell["z"]["runs_a"]) == (0, 0)
    assert per_cell["z"]["price_effect"] == 0.0  # new cell: no price change to blame
    assert (r.margin_pct_a, r.margin_pct_b) == pytest.approx((7 / 20, 18 / 29))


def test_an_empty_period_is_all_volume():
    b = cells([("x", "cartoon", 20, 24.0, 10.0), ("z", "cartoon", 5, 5.0, 1.0)])
    r = decompose_margin_change(b.clear(), b)
    assert (r.change, r.volume_effect, r.mix_effect, r.price_effect) == pytest.approx((18.0, 18.0, 0, 0))
    assert r.margin_pct_a is None and r.margin_pct_change is None
    gone = decompose_margin_change(b, b.clear())
    assert (gone.change, gone.volume_effect) == pytest.approx((-18.0, -18.0))


def test_why_margin_moved_reads_periods_of_execution_costs():
    day_a, day_b = (NOW - timedelta(days=2), NOW - timedelta(days=1)), (NOW - timedelta(days=1), NOW)
    rows = [("a", "cartoon", NOW - timedelta(days=1, hours=i + 1), 0.40, 1.00, 100, 40.0) for i in range(10)] + [
        ("a", "cartoon", NOW - timedelta(hours=i), 0.45, 1.10, 110, 45.0) for i in range(12)
    ]
    r = why_margin_moved(costs(rows), day_a, day_b)  # the one-cell case above, from raw rows
    assert (r.price_effect, r.cost_effect, r.volume_effect) == pytest.approx((1.10, -0.55, 1.25), abs=CENT)
    assert period_cells(costs(rows))["runs"].to_list() == [22]


def test_bad_cells_are_refused():
    with pytest.raises(ValueError, match="runs > 0"):
        decompose_margin_change(cells([("x", "c", 0, 1.0, 1.0)]), cells([]))
    with pytest.raises(ValueError, match="twice"):
        decompose_margin_change(cells([("x", "c", 1, 1.0, 1.0)] * 2), cells([]))


POOL = [("p1", "cartoon"), ("p1", "slow_motion"), ("p2", "cartoon"), ("p3", "warm_grade")]
money = st.floats(0, 1000, allow_nan=False, allow_infinity=False)
# a period: each cell of POOL present or not, with random runs, revenue and cost
period = st.lists(st.tuples(st.integers(1, 500), money, money), min_size=len(POOL), max_size=len(POOL)).flatmap(
    lambda values: st.sets(st.sampled_from(range(len(POOL)))).map(
        lambda present: cells([(*POOL[i], *values[i]) for i in sorted(present)])
    )
)


@settings(max_examples=300, deadline=None)
@given(period, period)
def test_decomposition_parts_sum_exactly_to_the_change(a, b):
    r = decompose_margin_change(a, b)
    assert sum(getattr(r, e) for e in EFFECTS) == pytest.approx(r.change, abs=1e-9)
    per_cell = r.cells.select(pl.sum_horizontal(*EFFECTS) - pl.col("change")).to_series()
    assert per_cell.abs().max() is None or per_cell.abs().max() < 1e-9
    want = tuple(p["revenue_usd"].sum() - p["cost_usd"].sum() for p in (a, b))
    assert (r.margin_usd_a, r.margin_usd_b) == pytest.approx(want, abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(period, st.integers(2, 5))
def test_more_of_the_same_is_pure_volume(a, k):
    # every cell k times the runs at the same price and cost: shares, prices and costs
    # did not change, so their effects are exactly 0
    b = a.with_columns(pl.col("runs") * k, pl.col("revenue_usd") * k, pl.col("cost_usd") * k)
    r = decompose_margin_change(a, b)
    assert (r.price_effect, r.cost_effect, r.mix_effect) == pytest.approx((0, 0, 0), abs=1e-9)
    assert r.volume_effect == pytest.approx(r.change, abs=1e-9)


# --- forecast ------------------------------------------------------------------------------


def daily(seed: int, days: int, sd: float = 1.0, base: float = 20.0, amp: float = 10.0):
    """History of ``days`` days and the next day of an hourly series base + amp·sin(2πh/24)
    + N(0, sd²), and the noiseless pattern of the next day."""
    rng = np.random.default_rng(seed)
    h = np.arange(24 * (days + 1))
    pattern = base + amp * np.sin(2 * np.pi * h / 24)
    y = pattern + rng.normal(0, sd, h.size)
    return y[: 24 * days], y[24 * days :], pattern[24 * days :]


def test_holt_winters_captures_the_daily_pattern():
    history, _, truth = daily(seed=1, days=7)
    f = forecast_series(history)
    assert f.method == "holt_winters_daily"
    assert np.abs(f.point - truth).mean() < 0.6  # noise sd is 1.0
    assert np.corrcoef(f.point, truth)[0, 1] > 0.98
    assert abs(int(np.argmax(f.point)) - int(np.argmax(truth))) <= 1  # peak hour
    assert f.total == pytest.approx(truth.sum(), rel=0.02)  # 480 USD/day


def test_interval_contains_the_truth_most_of_the_time():
    hourly, totals = [], []
    for seed in range(10):
        history, future, _ = daily(seed=100 + seed, days=4)
        f = forecast_series(history, level=0.9, seed=seed)
        hourly.append(((f.lower <= future) & (future <= f.upper)).mean())
        totals.append(f.total_lower <= future.sum() <= f.total_upper)
    # nominal 90 %; parameter uncertainty is not simulated (≈ 85 % measured, see module doc)
    assert np.mean(hourly) >= 0.75
    assert sum(totals) >= 7


def test_short_history_falls_back_to_smoothing_then_last_value():
    history, _, _ = daily(seed=2, days=1)
    ses = forecast_series(history[:30])
    assert ses.method == "simple_exponential_smoothing"
    assert np.ptp(ses.point) == 0 and (ses.upper - ses.lower)[-1] >= (ses.upper - ses.lower)[0]
    last = forecast_series(np.array([3.0, 5.0]))
    assert (last.method, last.total, last.lower) == ("last_value", 5.0 * 24, None)
    assert forecast_series(np.zeros(100)).method == "last_value"  # constant: nothing to fit
    with pytest.raises(ValueError, match="non-empty, finite hourly history"):
        forecast_series(np.array([]))


def test_forecast_next_24h_from_execution_costs():
    revenue, _, _ = daily(seed=3, days=3, sd=0.5, base=2.0, amp=2.0)  # touches 0 at night
    cost = 0.4 * revenue
    start = NOW - timedelta(days=3)
    rows = [
        ("a", "cartoon", start + timedelta(hours=h, minutes=20), float(c), float(r), 0, 0.0)
        for h, (r, c) in enumerate(zip(revenue, cost, strict=True))
    ]
    hourly = hourly_totals(costs(rows), start, NOW)
    assert hourly.height == 72 and hourly["hour"][0] == start
    f = forecast_next_24h(hourly)
    assert f.hourly["hour"].unique().sort().to_list() == [NOW + timedelta(hours=h) for h in range(24)]
    assert set(f.totals["method"]) == {"holt_winters_daily"}
    assert f.hourly.filter(pl.col("metric") != "margin_usd")["lower"].min() >= 0  # clipped
    assert f.margin_pct == pytest.approx(0.6, abs=0.05)  # cost is 40 % of revenue


def test_hourly_totals_fills_idle_hours():
    rows = [
        ("a", "cartoon", NOW - timedelta(hours=2, minutes=30), 1.0, 3.0, 30, 10.0),
        ("a", "cartoon", NOW - timedelta(hours=2, minutes=5), 1.0, 3.0, 30, 10.0),
        ("a", "cartoon", NOW, 9.0, 9.0, 90, 90.0),
    ]  # at the end: next hour, excluded
    h = hourly_totals(costs(rows), NOW - timedelta(hours=4), NOW)  # 08:00 … 11:00
    assert h["executions"].to_list() == [0, 2, 0, 0]
    assert h["margin_usd"].to_list() == [0.0, 4.0, 0.0, 0.0]
