"""A provider whose circuit breaker is open is demoted in the published routing manifest:
listed with its breaker state and ``available`` False, ranked after every available one,
weight 0; M5 neither ranks it in nor explores it while another provider can take the job."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import polars as pl

from economics.routing import build_manifest, manifest_rows, route, select_providers

NOW = datetime(2026, 12, 3, tzinfo=UTC)


def _stats() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "provider_id": ["best", "good", "ok"],
            "effect_type": ["cartoon"] * 3,
            "executions": [50, 50, 50],
            "success_rate": [1.0, 0.95, 0.9],
            "mean_cost_usd": [0.01, 0.012, 0.02],
            "mean_quality": [0.9, 0.8, 0.7],
            "mean_duration_ms": [1000.0, 1200.0, 2000.0],
        }
    )


def test_an_open_breaker_is_ranked_last_with_no_traffic():
    manifest = build_manifest(_stats(), {"cartoon": ["best", "good", "ok"]}, NOW, breakers={"best": "open"})
    entries = {e["provider_id"]: e for e in manifest["effects"]["cartoon"]}
    assert [e["provider_id"] for e in sorted(entries.values(), key=lambda e: e["rank"])] == ["good", "ok", "best"]
    assert entries["best"]["available"] is False and entries["best"]["breaker"] == "open"
    assert entries["best"]["weight"] == 0.0 and "breaker open" in entries["best"]["reason"]
    assert abs(sum(e["weight"] for e in entries.values()) - 1.0) < 1e-9
    # Half-open stays available: its probes decide.
    half = build_manifest(_stats(), {"cartoon": ["best", "good", "ok"]}, NOW, breakers={"best": "half_open"})
    assert half["effects"]["cartoon"][0]["provider_id"] == "best" and half["effects"]["cartoon"][0]["available"]
    rows = manifest_rows(manifest)
    assert set(rows.filter(pl.col("provider_id") == "best")["available"]) == {False}
    assert set(rows["breaker"]) == {"open", "closed"}


def test_m5_and_routing_skip_an_open_breaker_while_another_can_take_the_job():
    manifest = build_manifest(_stats(), {"cartoon": ["best", "good", "ok"]}, NOW, breakers={"best": "open"})
    entries = manifest["effects"]["cartoon"]
    for seed in range(50):
        picked = select_providers(entries, random.Random(seed), top_k=2, epsilon=1.0)
        assert "best" not in {s.provider_id for s in picked}
        assert route(entries, random.Random(seed), epsilon=0.5) != "best"
    # Every provider's breaker open: the batch still has its ranked tasks (M6 refuses them
    # and the job ends with its refund), rather than no batch at all.
    closed = build_manifest(_stats(), {"cartoon": ["best"]}, NOW, breakers={"best": "open"})
    assert [s.provider_id for s in select_providers(closed["effects"]["cartoon"], random.Random(1))] == ["best"]


def test_the_dashboard_routing_table_shows_the_breaker():
    from dashboards.data import manifest_table

    manifest = build_manifest(_stats(), {"cartoon": ["best", "good", "ok"]}, NOW, breakers={"best": "open"})
    table = manifest_table(manifest)
    assert table.filter(pl.col("provider_id") == "best").select("breaker", "available").row(0) == ("open", False)
    # A manifest published before breakers were part of it: every entry closed and available.
    for entries in manifest["effects"].values():
        for e in entries:
            e.pop("breaker"), e.pop("available")
    assert set(manifest_table(manifest)["available"]) == {True}
