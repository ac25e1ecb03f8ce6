"""Cost model, marginality windows, routing manifest and selection — on hand-checked numbers."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from economics import ledger
from economics.best import rank_candidates
from economics.cost_model import RateCard, cost_frame, execution_cost_usd
from economics.margin import margin
from economics.marginality import marginality_windows
from economics.routing import build_manifest, select_providers

CARD = RateCard({"cpu-2c": 0.36 / 3600, "gpu-l4": 3.6 / 3600})  # $0.0001/s and $0.001/s
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def test_execution_cost_is_compute_times_rate_plus_partner_cost():
    assert execution_cost_usd(10.0, "gpu-l4", 0.02, CARD) == pytest.approx(0.03)
    assert execution_cost_usd(10.0, "cpu-2c", 0.0, RateCard(CARD.usd_per_second, 0.5), spot=True) == pytest.approx(
        0.0005
    )
    with pytest.raises(KeyError, match="not on the rate card"):
        execution_cost_usd(1.0, "tpu-v5", 0.0, CARD)


def _outputs(**cols) -> pl.DataFrame:
    base = {
        "status": ["succeeded", "failed", "succeeded"],
        "effect_type": ["cartoon"] * 3,
        "instance_type": ["gpu-l4", "gpu-l4", "cpu-2c"],
        "compute_seconds": [20.0, 5.0, 100.0],
        "partner_cost_usd": [0.0, 0.0, 0.01],
        "selection": ["ranked", "ranked", "shadow"],
    }
    return pl.DataFrame({**base, **cols})


def test_cost_frame_charges_only_successful_user_visible_tasks():
    df = cost_frame(_outputs(), CARD, {"cartoon": 4}, token_usd_rate=0.01)
    assert df["cost_usd"].to_list() == pytest.approx([0.02, 0.005, 0.02])
    assert df["tokens_charged"].to_list() == [4, 0, 0]  # failed and shadow are not charged
    assert df["cost_tokens"].to_list() == pytest.approx([2.0, 0.5, 2.0])
    assert df["margin"].to_list()[0] == pytest.approx(0.5)  # (4 - 2) / 4
    assert df["margin"].to_list()[1:] == [None, None]


def test_marginality_windows_sum_then_divide():
    costs = pl.DataFrame(
        {
            "provider_id": ["a", "a", "a"],
            "effect_type": ["cartoon"] * 3,
            "status": ["succeeded", "succeeded", "failed"],
            "tokens_charged": [4, 4, 0],
            "cost_tokens": [1.0, 3.0, 0.5],
            "revenue_usd": [0.04, 0.04, 0.0],
            "cost_usd": [0.01, 0.03, 0.005],
            "finished_at": [NOW - timedelta(minutes=10), NOW - timedelta(hours=5), NOW - timedelta(days=2)],
        }
    )
    w = {r["window"]: r for r in marginality_windows(costs, NOW).iter_rows(named=True)}
    assert (w["1h"]["executions"], w["1h"]["tokens_charged"]) == (1, 4)
    assert w["1h"]["margin"] == pytest.approx(0.75)  # (4 - 1) / 4
    assert w["24h"]["margin"] == pytest.approx((8 - 4.0) / 8)  # 0.5
    assert w["7d"]["margin"] == pytest.approx((8 - 4.5) / 8)  # the failure's cost counts
    assert (w["7d"]["executions"], w["7d"]["succeeded"]) == (3, 2)
    assert w["7d"]["cost_usd"] == pytest.approx(0.045)


def _stats(rows):
    return pl.DataFrame(
        rows,
        schema={
            "provider_id": pl.String,
            "effect_type": pl.String,
            "executions": pl.Int64,
            "success_rate": pl.Float64,
            "mean_cost_usd": pl.Float64,
            "mean_quality": pl.Float64,
            "mean_duration_ms": pl.Float64,
        },
        orient="row",
    )


def test_manifest_prefers_cheaper_at_equal_quality_and_punishes_failures():
    stats = _stats(
        [
            ("cheap", "cartoon", 40, 1.0, 0.001, 0.8, 1000.0),
            ("pricey", "cartoon", 40, 1.0, 0.004, 0.8, 1000.0),
            ("flaky", "cartoon", 40, 0.5, 0.001, 0.8, 1000.0),
        ]
    )
    m = build_manifest(stats, {"cartoon": ["pricey", "flaky", "cheap"], "warm_grade": ["new"]}, NOW)
    ranked = [e["provider_id"] for e in m["effects"]["cartoon"]]
    assert ranked == ["cheap", "pricey", "flaky"]
    cheap = m["effects"]["cartoon"][0]
    assert cheap["score"] == pytest.approx(0.5 * 0.8 + 0.3 * 1 + 0.2 * 1)
    assert cheap["confidence"] == pytest.approx(40 / 50)
    assert m["effects"]["warm_grade"][0]["confidence"] == 0  # bootstrap prior
    assert (
        m["version"]
        == build_manifest(stats, {"cartoon": ["pricey", "flaky", "cheap"], "warm_grade": ["new"]}, NOW)["version"]
    )


def test_exploration_share_is_epsilon_and_shadow_always_copied():
    ranked = [{"provider_id": p, "rank": i + 1} for i, p in enumerate("abcd")]
    rng = random.Random(7)
    picks = [select_providers(ranked, rng, top_k=2, epsilon=0.05, shadow=["s"]) for _ in range(10_000)]
    explored = sum(any(s.selection == "exploration" for s in p) for p in picks)
    assert 0.04 <= explored / 10_000 <= 0.06
    assert all([s.provider_id for s in p[:2]] == ["a", "b"] for p in picks)
    assert all(p[-1].selection == "shadow" and p[-1].provider_id == "s" for p in picks)
    assert {s.provider_id for p in picks for s in p if s.selection == "exploration"} == {"c", "d"}


def test_best_result_never_picks_shadow_failed_or_gate_failed_outputs():
    c = pl.DataFrame(
        {
            "task_id": ["shadow", "gatefail", "ok_cheap", "ok_good"],
            "status": ["scored", "scored", "scored", "scored"],
            "gate_passed": [True, False, True, True],
            "composite": [0.99, 0.95, 0.6, 0.8],
            "selection": ["shadow", "ranked", "ranked", "exploration"],
            "cost_usd": [0.0001, 0.0001, 0.001, 0.002],
            "duration_ms": [100, 100, 1000, 1000],
            "effect_type": ["cartoon"] * 4,
        }
    )
    ranked = rank_candidates(c)
    assert ranked["task_id"].to_list() == ["ok_cheap", "ok_good"]
    # 0.5*0.6 + 0.3*1 + 0.2*1 = 0.8 vs 0.5*0.8 + 0.3*0.5 + 0.2*1 = 0.75
    assert ranked["score"].to_list() == pytest.approx([0.8, 0.75])


def test_cost_and_speed_are_compared_among_providers_of_the_same_effect():
    # A cheap, poor slow-motion must not beat a good one just because slow motion by frame
    # duplication is the cheapest output of the whole batch (seen in the demo on carphone).
    c = pl.DataFrame(
        {
            "task_id": ["dup", "blend", "grade"],
            "status": ["scored"] * 3,
            "gate_passed": [True] * 3,
            "composite": [0.86, 0.99, 0.95],
            "selection": ["ranked"] * 3,
            "effect_type": ["slow_motion", "slow_motion", "warm_grade"],
            "cost_usd": [0.0000030, 0.0000035, 0.0000043],
            "duration_ms": [900, 1000, 1100],
        }
    )
    scores = dict(zip(*rank_candidates(c).select("task_id", "score"), strict=True))
    assert scores["blend"] > scores["dup"]
    assert scores["grade"] == pytest.approx(0.5 * 0.95 + 0.3 + 0.2)  # alone in its effect type


def test_ledger_ids_make_settlement_exactly_once():
    task = {"user_id": "u", "video_id": "v", "task_id": "t", "tokens_reserved": 4}
    consume = ledger.settle(task, "succeeded", NOW)
    refund_after_reject = ledger.refund_consumed(task, NOW, "rejected")
    refund_on_failure = ledger.settle(task, "failed", NOW)
    assert consume["kind"] == "consume" and refund_on_failure["kind"] == "refund"
    assert refund_after_reject["entry_id"] == refund_on_failure["entry_id"]  # refunded at most once
    assert ledger.settle({**task, "tokens_reserved": 0}, "succeeded", NOW) is None
    assert len({e["entry_id"] for e in ledger.reserve([task, task], NOW)}) == 1


def _job_ledger() -> pl.DataFrame:
    """Three jobs of user u: v1 delivered (charged 5), v2 delivered then rejected (refunded),
    v3 still reserved."""
    entries = [ledger.credit("u", 100, "pay-1", NOW)]
    for video, tokens in (("v1", 5), ("v2", 4), ("v3", 2)):
        entries += ledger.reserve(
            [{"user_id": "u", "video_id": video, "task_id": ledger.job_id(video), "tokens_reserved": tokens}], NOW
        )
    job = {"user_id": "u", "tokens_reserved": 5}
    entries.append(ledger.settle({**job, "video_id": "v1", "task_id": ledger.job_id("v1")}, "succeeded", NOW))
    v2 = {"user_id": "u", "tokens_reserved": 4, "video_id": "v2", "task_id": ledger.job_id("v2")}
    entries += [ledger.settle(v2, "succeeded", NOW), ledger.refund_consumed(v2, NOW, "rejected")]
    return pl.DataFrame(entries)


DELIVERIES = pl.DataFrame(
    {
        "video_id": ["v1", "v2", "v3"],
        "outcome": ["selected", "selected", "no_usable_result"],
        "task_id": ["a", "c", None],
    }
)


def test_a_job_is_charged_once_and_its_charge_names_the_delivered_task():
    from economics.revenue import job_charges

    charges = job_charges(_job_ledger(), DELIVERIES).sort("video_id")
    assert charges.select("video_id", "tokens_charged", "delivered_task_id").rows() == [
        ("v1", 5, "a"),
        ("v2", 0, "c"),  # consumed, then refunded on rejection: nothing kept
        ("v3", 0, None),  # reserved, not delivered: nothing charged yet
    ]
    assert charges["job_id"].to_list() == [ledger.job_id(v) for v in ("v1", "v2", "v3")]


def test_revenue_goes_to_the_delivered_task_and_every_task_is_a_cost():
    from economics.revenue import job_charges, recognise

    costs = pl.DataFrame(
        {
            "task_id": ["a", "b", "x", "s", "c", "sim"],
            "video_id": ["v1", "v1", "v1", "v1", "v2", None],
            "selection": ["ranked", "ranked", "exploration", "shadow", "ranked", "ranked"],
            "source": ["real"] * 5 + ["simulated"],
            "tokens_charged": [2, 5, 4, 0, 4, 4],  # list prices, as cost_frame set them
            "cost_tokens": [1.0, 1.0, 0.5, 0.25, 1.0, 1.0],
        }
    )
    out = recognise(costs, job_charges(_job_ledger(), DELIVERIES), 0.01)
    # The job's one charge on its delivered task, 0 on the others; simulated keeps list price.
    assert out["tokens_charged"].to_list() == [5, 0, 0, 0, 0, 4]
    assert out["revenue_usd"].to_list() == pytest.approx([0.05, 0, 0, 0, 0, 0.04])
    assert out["margin"].to_list() == [0.8, None, None, None, None, 0.75]
    # A window over the job's tasks has the job's margin: Σ charged vs Σ every task's cost.
    v1 = out.filter(pl.col("video_id") == "v1")
    assert margin(v1["tokens_charged"].sum(), v1["cost_tokens"].sum()) == pytest.approx((5 - 2.75) / 5)


def test_job_margins_add_every_task_of_the_job():
    from economics.revenue import job_charges, job_margins

    costs = pl.DataFrame(
        {
            "task_id": ["a", "b", "x", "s", "c"],
            "video_id": ["v1", "v1", "v1", "v1", "v2"],
            "provider_id": ["p1", "p2", "p3", "p4", "p1"],
            "effect_type": ["warm_grade"] * 5,
            "selection": ["ranked", "ranked", "exploration", "shadow", "ranked"],
            "cost_usd": [0.01, 0.01, 0.005, 0.0025, 0.01],
            "finished_at": [NOW, NOW + timedelta(seconds=3), NOW, NOW, NOW],
        }
    )
    jobs = job_margins(costs, job_charges(_job_ledger(), DELIVERIES), 0.01).sort("video_id")
    assert jobs["video_id"].to_list() == ["v1", "v2"]  # v3 ran no task
    v1 = jobs.row(0, named=True)
    assert (v1["tasks"], v1["tokens_charged"], v1["provider_id"], v1["delivered_task_id"]) == (4, 5, "p1", "a")
    assert v1["cost_usd"] == pytest.approx(0.0275)
    assert (v1["ranked_cost_usd"], v1["exploration_cost_usd"], v1["shadow_cost_usd"]) == pytest.approx(
        (0.02, 0.005, 0.0025)
    )
    assert v1["margin"] == pytest.approx((5 - 2.75) / 5) and v1["finished_at"] == NOW + timedelta(seconds=3)
    assert jobs.row(1, named=True)["margin"] is None  # refunded: nothing charged, pure cost
    # The job's LLM calls (Gemini analysis, prompt, judge) are a cost line of their own.
    llm = pl.DataFrame({"correlation_id": ["v1", "v1", "v9"], "usd": [0.002, 0.0005, 1.0]})
    with_llm = job_margins(costs, job_charges(_job_ledger(), DELIVERIES), 0.01, llm).sort("video_id")
    v1 = with_llm.row(0, named=True)
    assert (v1["llm_cost_usd"], v1["cost_usd"]) == pytest.approx((0.0025, 0.03))
    assert v1["margin"] == pytest.approx((5 - 3.0) / 5)
    assert with_llm.row(1, named=True)["llm_cost_usd"] == 0.0


def test_job_price_is_the_dearest_effect_tried_plus_the_favoured_premiums():
    from economics.pricing import favoured, job_price
    from resources.priorities import Priorities, parse_priorities

    prices = {"warm_grade": 2, "slow_motion": 5, "cartoon": 4}
    premiums = {"quality": 0.25, "speed": 0.25}
    assert job_price(prices, ["warm_grade", "cartoon", "warm_grade"]) == 4
    assert job_price(prices, []) == 0
    quality = parse_priorities('{"quality": 0.7, "cost": 0.15, "speed": 0.15}').weights()
    assert (
        favoured(quality) == ["quality"] and favoured(None) == [] and favoured(Priorities.named("cost").weights()) == []
    )
    assert favoured(Priorities.named("balanced").weights()) == []
    assert job_price(prices, ["warm_grade"], premiums, quality) == 3  # ceil(2 × 1.25)
    assert job_price(prices, ["cartoon"], premiums, quality) == 5
    both = Priorities(quality=0.55, cost=0.0, speed=0.45).weights()
    assert job_price(prices, ["cartoon"], premiums, both) == 6  # 4 × 1.5
    assert job_price(prices, ["cartoon"], {}, both) == 4  # no premiums declared: list price
    with pytest.raises(KeyError):
        job_price(prices, ["unknown"])


def test_the_shipped_catalog_declares_premiums(settings):
    from resources.catalog import Catalog

    catalog = Catalog(data_dir=settings.data_dir)
    assert set(catalog.premiums()) == {"quality", "speed"}
    assert all(0 <= p < 1 for p in catalog.premiums().values())
