"""Full cost model: the six terms on hand-checked numbers, their sum, amortisation measured
from a timeline, and compatibility with the ``execution_costs`` schema."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from economics.cost_model import (
    BREAKDOWN_COLUMNS,
    BYTES_PER_GB,
    DAYS_PER_MONTH,
    DEFAULT_KEEP_WARM_SECONDS,
    MIN_UTILISATION,
    ProviderCostProfile,
    RateCard,
    cost_breakdown,
    cost_frame,
    execution_cost_usd,
    measure_bursts,
    profiles_from_registry,
)
from resources.schemas import EXECUTION_COSTS, conform

DATA = Path(__file__).resolve().parents[1] / "data"
# $0.001 per compute-second; storage priced so one GiB kept one average month costs $0.03.
CARD = RateCard(
    {"gpu-l4": 3.6 / 3600, "cpu-2c": 0.36 / 3600},
    spot_multiplier=0.5,
    storage_usd_per_gb_month=0.03,
    bandwidth_usd_per_gb=0.09,
    retention_days=DAYS_PER_MONTH,
)
T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def test_each_term_on_hand_checked_numbers():
    profile = ProviderCostProfile(
        cold_start_seconds=60,
        tasks_per_burst=4,
        utilisation=0.5,
        partner_usd_per_million_tokens=0.5,
        partner_usd_per_credit=0.01,
    )
    rows = pl.DataFrame(
        {
            "provider_id": ["gpu", "gpu", "gpu"],
            "instance_type": ["gpu-l4"] * 3,
            "compute_seconds": [10.0, 10.0, 10.0],
            "partner_cost_usd": [0.02, None, 0.0],
            "spot": [False, True, False],
            "output_bytes": [BYTES_PER_GB, BYTES_PER_GB, None],
            "partner_tokens": [2_000_000, 0, 0],
            "partner_credits": [3, 0, 0],
            "status": ["succeeded", "succeeded", "failed"],
            "selection": ["ranked", "shadow", "ranked"],
        }
    )
    b = cost_breakdown(rows, CARD, profiles={"gpu": profile})
    on_demand, spot_shadow, failed = b.iter_rows(named=True)
    assert on_demand["compute_cost_usd"] == pytest.approx(0.010)  # 10 s × $0.001
    assert on_demand["startup_cost_usd"] == pytest.approx(0.015)  # 60 s / 4 tasks
    assert on_demand["idle_cost_usd"] == pytest.approx(0.010)  # (1 − 0.5)/0.5 × 10 s
    assert on_demand["partner_cost_usd"] == pytest.approx(0.02 + 1.0 + 0.03)  # call + 2M tok + 3 credits
    assert on_demand["storage_cost_usd"] == pytest.approx(0.03)  # 1 GiB for one month
    assert on_demand["bandwidth_cost_usd"] == pytest.approx(0.09)  # downloaded once
    # Spot halves every instance term; a shadow copy is stored but never sent to a user.
    assert [spot_shadow[c] for c in ("compute_cost_usd", "startup_cost_usd", "idle_cost_usd")] == pytest.approx(
        [0.005, 0.0075, 0.005]
    )
    assert (spot_shadow["partner_cost_usd"], spot_shadow["bandwidth_cost_usd"]) == (0.0, 0.0)
    # A failed task pays its instance time and stores nothing.
    assert failed["compute_cost_usd"] == pytest.approx(0.01)
    assert (failed["storage_cost_usd"], failed["bandwidth_cost_usd"]) == (0.0, 0.0)
    assert b["cost_usd"].to_list() == pytest.approx(
        b.select(pl.sum_horizontal(*BREAKDOWN_COLUMNS)).to_series().to_list()
    )


def test_recorded_egress_wins_over_the_one_download_default():
    rows = pl.DataFrame(
        {
            "instance_type": ["cpu-2c"] * 2,
            "compute_seconds": [0.0, 0.0],
            "output_bytes": [BYTES_PER_GB] * 2,
            "egress_bytes": [3 * BYTES_PER_GB, None],
        }
    )
    assert cost_breakdown(rows, CARD)["bandwidth_cost_usd"].to_list() == pytest.approx([0.27, 0.09])


@settings(max_examples=40, deadline=None)
@given(
    busy=st.floats(0, 1e4),
    cold=st.floats(0, 600),
    tpb=st.floats(1, 100),
    util=st.floats(0.05, 1),
    partner=st.floats(0, 5),
    out_bytes=st.integers(0, 10 * BYTES_PER_GB),
    spot=st.booleans(),
    tokens=st.integers(0, 10**7),
)
def test_terms_sum_to_cost_and_scalar_equals_frame(busy, cold, tpb, util, partner, out_bytes, spot, tokens):
    profile = ProviderCostProfile(cold, tpb, util, partner_usd_per_million_tokens=2.0)
    row = pl.DataFrame(
        {
            "provider_id": ["p"],
            "instance_type": ["gpu-l4"],
            "compute_seconds": [busy],
            "partner_cost_usd": [partner],
            "spot": [spot],
            "output_bytes": [out_bytes],
            "partner_tokens": [tokens],
        }
    )
    b = cost_breakdown(row, CARD, profiles={"p": profile}).row(0, named=True)
    assert b["cost_usd"] == pytest.approx(sum(b[c] for c in BREAKDOWN_COLUMNS))
    assert all(b[c] >= 0 for c in BREAKDOWN_COLUMNS)
    scalar = execution_cost_usd(
        busy, "gpu-l4", partner, CARD, spot, profile=profile, output_bytes=out_bytes, partner_tokens=tokens
    )
    assert scalar == pytest.approx(b["cost_usd"])


def _timeline(starts_s, duration_s=10.0, provider="p"):
    return pl.DataFrame(
        {
            "provider_id": [provider] * len(starts_s),
            "finished_at": [T0 + timedelta(seconds=s + duration_s) for s in starts_s],
            "duration_ms": [int(duration_s * 1000)] * len(starts_s),
            "compute_seconds": [duration_s] * len(starts_s),
        }
    )


def test_bursts_are_split_by_the_keep_warm_gap():
    # Two tasks 10 s apart share a node; one 20 minutes later needs a new cold start.
    m = measure_bursts(_timeline([0, 20, 1200]), keep_warm_seconds=300).row(0, named=True)
    assert (m["tasks"], m["bursts"], m["tasks_per_burst"]) == (3, 2, 1.5)
    assert m["provisioned_seconds"] == pytest.approx((30 + 300) + (10 + 300))
    assert m["busy_seconds"] == 30
    assert m["utilisation"] == MIN_UTILISATION  # 30 / 640 < 5%: floored, see MIN_UTILISATION


def test_measured_idle_makes_compute_plus_idle_equal_the_instance_bill():
    history = _timeline(list(range(0, 3000, 15)), duration_s=12.0)  # one long burst, 80% busy
    bursts = measure_bursts(history, keep_warm_seconds=60)
    profiles = profiles_from_registry([{"provider_id": "p", "cost": {"cold_start_seconds": 90}}], bursts)
    assert profiles["p"].tasks_per_burst == 200 and profiles["p"].cold_start_seconds == 90
    b = cost_breakdown(history.with_columns(instance_type=pl.lit("gpu-l4")), CARD, profiles=profiles)
    provisioned = bursts["provisioned_seconds"][0]
    assert (b["compute_cost_usd"].sum() + b["idle_cost_usd"].sum()) == pytest.approx(provisioned * 0.001)
    assert b["startup_cost_usd"].sum() == pytest.approx(90 * 0.001)  # one cold start, shared


def test_providers_sharing_a_host_are_measured_as_one_fleet():
    # Two local providers interleaved on one cpu-2c host: one idle tail, not one per provider.
    history = pl.concat([_timeline([0, 40], provider="a"), _timeline([20, 60], provider="b")]).with_columns(
        instance_type=pl.lit("cpu-2c")
    )
    per_host = measure_bursts(history, keep_warm_seconds=60, by="instance_type").row(0, named=True)
    assert (per_host["bursts"], per_host["provisioned_seconds"]) == (1, 70 + 60)
    per_provider = measure_bursts(history, keep_warm_seconds=60)
    assert per_provider["provisioned_seconds"].sum() == pytest.approx(2 * (50 + 60))
    profiles = profiles_from_registry(
        [{"provider_id": "a", "instance_type": "cpu-2c"}],
        measure_bursts(history, 60, by="instance_type"),
        by="instance_type",
    )
    assert profiles["a"].utilisation == pytest.approx(40 / 130)


def test_unmeasured_provider_pays_a_whole_cold_start_and_no_idle():
    p = profiles_from_registry([{"provider_id": "gpu", "cost": {"cold_start_seconds": 60}}])["gpu"]
    assert (p.tasks_per_burst, p.utilisation) == (1.0, 1.0)
    assert execution_cost_usd(10, "gpu-l4", 0.0, CARD, profile=p) == pytest.approx(0.07)


def test_profile_rejects_impossible_amortisation():
    with pytest.raises(ValueError, match="tasks_per_burst"):
        ProviderCostProfile(tasks_per_burst=0.5)
    with pytest.raises(ValueError, match="utilisation"):
        ProviderCostProfile(utilisation=0.0)


def test_shipped_rate_card_and_optional_keys():
    card = RateCard.from_dict(yaml.safe_load((DATA / "rate_card.yaml").read_text()))
    assert card.storage_usd_per_gb_month == 0.023 and card.bandwidth_usd_per_gb == 0.09
    assert card.keep_warm_seconds == DEFAULT_KEEP_WARM_SECONDS
    custom = RateCard.from_dict(
        {
            "instance_types": {"x": {"usd_per_hour": 36}},
            "output_retention_days": 7,
            "egress_downloads_per_output": 2,
            "keep_warm_seconds": 60,
        }
    )
    assert (custom.rate("x"), custom.retention_days, custom.egress_per_output, custom.keep_warm_seconds) == (
        0.01,
        7,
        2,
        60,
    )


def test_cost_frame_still_fits_the_execution_costs_table():
    rows = pl.DataFrame(
        {
            "task_id": ["t1", "t2"],
            "video_id": ["v", "v"],
            "provider_id": ["p", "p"],
            "effect_type": ["cartoon"] * 2,
            "instance_type": ["cpu-2c"] * 2,
            "status": ["succeeded", "failed"],
            "selection": ["ranked"] * 2,
            "source": ["real"] * 2,
            "compute_seconds": [2.0, None],
            "partner_cost_usd": [None, None],
            "duration_ms": [2000, 10],
            "finished_at": [T0, T0],
        }
    )
    df = cost_frame(rows, CARD, {"cartoon": 4}, token_usd_rate=0.01)
    conform(df, EXECUTION_COSTS)  # raises on any column the table does not declare
    assert df["partner_cost_usd"].to_list() == [0.0, 0.0]
    detailed = cost_frame(rows, CARD, {"cartoon": 4}, token_usd_rate=0.01, breakdown=True)
    assert set(BREAKDOWN_COLUMNS) <= set(detailed.columns)
    assert detailed["cost_usd"].to_list() == df["cost_usd"].to_list()
