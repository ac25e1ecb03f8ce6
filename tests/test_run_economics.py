"""Effect runs served from the result cache in the economics: one ``execution_costs`` row per
hit that carries the run's charge at no cost, counted in the per-provider windows as revenue
and as a cache hit (not an execution), kept out of what measures providers, and shown by the
dashboards' views with the cost it saved."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from dashboards import data
from economics import ledger
from economics.marginality import burn_rates, marginality_windows
from economics.revenue import (
    cache_hit_costs,
    cache_savings,
    job_charges,
    job_margins,
    provider_executions,
    recognise,
    run_deliveries,
)
from economics.stats import provider_stats
from resources.schemas import EXECUTION_COSTS, conform

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
RATE = 0.01  # USD per token
PRICE = 2  # tokens per run


def _run_outputs() -> pl.DataFrame:
    """Run ``run_a`` ran provider p1 (delivered task ta, a shadow copy ts on p2); ``run_b``
    was served from the cache: row tb reuses ta's output."""
    return pl.DataFrame(
        {
            "run_id": ["run_a", "run_a", "run_b"],
            "task_id": ["ta", "ts", "tb"],
            "provider_id": ["p1", "p2", "p1"],
            "effect_type": ["warm_grade"] * 3,
            "selection": ["ranked", "shadow", "cache"],
            "delivered": [True, False, True],
            "cached_from_task_id": [None, None, "ta"],
            "finished_at": [NOW - timedelta(minutes=30), NOW - timedelta(minutes=30), NOW - timedelta(minutes=5)],
        }
    )


def _ledger() -> pl.DataFrame:
    """Both runs reserved and consumed their price (a hit is charged the full price)."""
    entries = [ledger.credit("u", 100, "pay-1", NOW - timedelta(days=1))]
    for run in ("run_a", "run_b"):
        task = {"user_id": "u", "video_id": run, "task_id": ledger.job_id(run), "tokens_reserved": PRICE}
        entries += ledger.reserve([task], NOW - timedelta(hours=1))
        consumed = ledger.settle(task, "succeeded", NOW - timedelta(minutes=1))
        assert consumed is not None
        entries.append(consumed)
    return pl.DataFrame(entries)


def _costs() -> pl.DataFrame:
    """``execution_costs`` as the economics job writes them: run_a's two tasks (costed by
    the model, list price until recognised) and run_b's hit."""
    ran = pl.DataFrame(
        {
            "task_id": ["ta", "ts"],
            "video_id": ["run_a", "run_a"],
            "provider_id": ["p1", "p2"],
            "effect_type": ["warm_grade"] * 2,
            "status": ["succeeded", "succeeded"],
            "selection": ["ranked", "shadow"],
            "source": ["real", "real"],
            "job_kind": ["run", "run"],
            "cost_usd": [0.004, 0.001],
            "cost_tokens": [0.4, 0.1],
            "tokens_charged": [PRICE, PRICE],
            "duration_ms": [900, 800],
            "cache_hit": [False, False],
            "finished_at": [NOW - timedelta(minutes=30)] * 2,
        }
    )
    outputs = _run_outputs()
    hits = cache_hit_costs(cache_savings(outputs, ran.select("task_id", "cost_usd")))
    costs = pl.concat([ran, hits], how="diagonal_relaxed")
    return recognise(costs, job_charges(_ledger(), run_deliveries(outputs)), RATE)


def test_a_cache_hit_is_a_costs_row_with_the_runs_charge_no_cost_and_the_saved_cost():
    costs = _costs()
    hit = costs.filter(pl.col("task_id") == "tb").row(0, named=True)
    assert (hit["video_id"], hit["provider_id"], hit["selection"], hit["status"]) == ("run_b", "p1", "cache", "cached")
    assert (hit["cache_hit"], hit["job_kind"], hit["source"]) == (True, "run", "real")
    assert (hit["tokens_charged"], hit["revenue_usd"], hit["cost_usd"], hit["margin"]) == (PRICE, 0.02, 0.0, 1.0)
    assert hit["saved_cost_usd"] == pytest.approx(0.004)  # what ta cost to make
    # The fresh run's charge is still on its delivered task only.
    assert costs.sort("task_id")["tokens_charged"].to_list() == [PRICE, PRICE, 0]  # ta, tb, ts
    # The row fits the table as the job writes it.
    assert conform(costs, EXECUTION_COSTS)["cache_hit"].to_list() == [False, False, True]


def test_windows_count_the_hits_revenue_at_no_cost_and_not_as_an_execution():
    windows = marginality_windows(_costs(), NOW).filter(pl.col("window") == "1h")
    p1 = windows.filter(pl.col("provider_id") == "p1").row(0, named=True)
    assert (p1["executions"], p1["succeeded"], p1["cache_hits"]) == (1, 1, 1)
    assert (p1["tokens_charged"], p1["cost_usd"], p1["saved_cost_usd"]) == (2 * PRICE, pytest.approx(0.004), 0.004)
    assert p1["margin"] == pytest.approx((4 - 0.4) / 4)  # two charges against one task's cost
    p2 = windows.filter(pl.col("provider_id") == "p2").row(0, named=True)
    assert (p2["executions"], p2["cache_hits"], p2["tokens_charged"], p2["saved_cost_usd"]) == (1, 0, 0, 0.0)
    # The burn rate counts the hit's revenue, not an execution.
    hour = burn_rates(_costs(), NOW).filter(pl.col("window") == "1h").row(0, named=True)
    assert hour["executions"] == 2 and hour["revenue_usd_per_hour"] == pytest.approx(0.04)
    # A costs frame written before cache hits were costed (no columns) still aggregates.
    old = marginality_windows(_costs().drop("cache_hit", "saved_cost_usd"), NOW)
    assert old.filter(pl.col("window") == "1h")["cache_hits"].sum() == 0


def test_providers_are_measured_on_executions_only():
    costs = _costs()
    assert provider_executions(costs)["task_id"].sort().to_list() == ["ta", "ts"]
    quality = pl.DataFrame(
        schema={"provider_id": pl.String, "effect_type": pl.String, "status": pl.String, "composite": pl.Float64}
    )
    stats = provider_stats(costs, quality)
    p1 = stats.filter(pl.col("provider_id") == "p1").row(0, named=True)
    assert (p1["executions"], p1["success_rate"], p1["mean_cost_usd"]) == (1, 1.0, pytest.approx(0.004))


def test_job_margins_take_the_hit_from_its_costs_row():
    costs = _costs()
    jobs = job_margins(costs, job_charges(_ledger(), run_deliveries(_run_outputs())), RATE).sort("video_id")
    fresh, hit = jobs.row(0, named=True), jobs.row(1, named=True)
    assert (fresh["tasks"], fresh["cache_hit"], fresh["cost_usd"]) == (2, False, pytest.approx(0.005))
    assert (hit["tasks"], hit["cache_hit"], hit["cost_usd"], hit["tokens_charged"], hit["margin"]) == (
        0,
        True,
        0.0,
        PRICE,
        1.0,
    )
    assert (hit["delivered_task_id"], hit["provider_id"], hit["saved_cost_usd"]) == ("tb", "p1", 0.004)


def test_the_dashboards_margins_show_the_hits_revenue_and_saved_cost():
    windows = marginality_windows(_costs(), NOW).with_columns(source=pl.lit("real"))
    by_provider = data.current_margins(windows, "provider_id").filter(pl.col("window") == "1h")
    p1 = by_provider.filter(pl.col("provider_id") == "p1").row(0, named=True)
    assert (p1["executions"], p1["cache_hits"], p1["success_rate"]) == (1, 1, 1.0)
    assert (p1["revenue_usd"], p1["cost_usd"], p1["saved_cost_usd"]) == (0.04, pytest.approx(0.004), 0.004)
    # Creation vs runs: the hit is a run's revenue, not an execution.
    totals = pl.DataFrame(
        {
            "job_kind": ["run"],
            "executions": [2],
            "cache_hits": [1],
            "saved_cost_usd": [0.004],
            "tokens_charged": [2 * PRICE],
            "cost_tokens": [0.5],
            "revenue_usd": [0.04],
            "cost_usd": [0.005],
        }
    )
    kinds = data.job_kind_totals(totals)
    assert kinds["job_kind"].to_list() == ["creation", "run"]
    run = kinds.row(1, named=True)
    assert (run["executions"], run["cache_hits"], run["saved_cost_usd"]) == (2, 1, 0.004)
    assert kinds.row(0, named=True)["cache_hits"] == 0


def test_a_runs_price_is_the_price_parameter_in_force_else_the_revisions():
    from economics.pricing import RunPrice, run_price

    assert run_price(2) == RunPrice(2, 2, None) and run_price(2).source == "revision"
    raised = run_price(2, 5, "chg_1")
    assert (raised.tokens, raised.revision_price_tokens, raised.source) == (5, 2, "runtime_parameter")
    assert run_price(4, 0, "chg_2").tokens == 0  # a parameter may make an effect free
    for bad in (-1, 2.5, True, "3"):
        with pytest.raises(ValueError, match="whole number of tokens"):
            run_price(2, bad, "chg")
    with pytest.raises(ValueError, match="revision's price"):
        run_price(-1)
