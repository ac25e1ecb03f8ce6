"""``effectlake signals`` and ``effectlake alerts [--json]`` on a lake with simulated history
(``effectlake simulate``) and a burst of 429s planted at its end: the signals cycle classifies
the throttling, the actions record what they would do (simulated streams never change the real
platform), and ``alerts`` prints the classification with its evidence, action and cost."""

from __future__ import annotations

import json
from datetime import timedelta

import polars as pl
import pytest

from pipelines.cli.main import main
from resources.events import utcnow
from resources.lake import Lake
from resources.schemas import EXECUTION_EVENTS

pytestmark = pytest.mark.slow

PROVIDER, EFFECT = "ffmpeg-colortemp", "warm_grade"


def _throttled_burst(minutes: int = 30, per_minute: int = 4) -> pl.DataFrame:
    """The provider's last ``minutes``: half its calls refused with 429 (``Throttled``)."""
    now = utcnow()
    rows = []
    for i in range(minutes * per_minute):
        at = now - timedelta(seconds=60 * minutes - i * 60 / per_minute)
        ok = i % 2 == 0
        rows.append(
            {
                "event_id": f"burst-{i}",
                "event_type": "TaskSucceeded" if ok else "TaskFailed",
                "correlation_id": f"sim-burst-{i}",
                "stage": "M6",
                "occurred_at": at,
                "task_id": f"burst-{i}",
                "provider_id": PROVIDER,
                "effect_type": EFFECT,
                "status": "succeeded" if ok else "failed",
                "duration_ms": 2500 if ok else 40,
                "queue_wait_ms": 100,
                "compute_seconds": 2.0 if ok else 0.0,
                "instance_type": "cpu-2c",
                "error_class": None if ok else "Throttled",
                "selection": "ranked",
                "source": "simulated",
            }
        )
    return pl.DataFrame(rows)


def test_signals_then_alerts_on_simulated_history(tmp_path, monkeypatch, capsys):
    for name, value in {
        "LAKE_URI": tmp_path / "lake",
        "DAGSTER_HOME": tmp_path / "dagster_home",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}",
        "MANIFEST_URI": tmp_path / "manifest" / "routing_manifest.json",
        "EFFECTLAKE_LOG_DIR": tmp_path / "logs",
    }.items():
        monkeypatch.setenv(name, str(value))
    assert main(["simulate", "--days", "1", "--seed", "3", "--per-hour", "40"]) == 0
    lake = Lake(uri=str(tmp_path / "lake"))
    lake.append(EXECUTION_EVENTS, _throttled_burst())
    capsys.readouterr()

    assert main(["signals"]) == 0
    out = capsys.readouterr().out
    assert "signals_job: run" in out and "actions_job: run" in out and "Open bottlenecks:" in out
    assert f"PROVIDER_API_THROTTLING [critical] {PROVIDER} · {EFFECT}" in out

    assert main(["alerts", "--json"]) == 0
    findings = json.loads(capsys.readouterr().out)
    [thr] = [c for c in findings["classifications"] if c["category"] == "PROVIDER_API_THROTTLING"]
    assert (thr["provider_id"], thr["effect_type"], thr["source"]) == (PROVIDER, EFFECT, "simulated")
    assert thr["evidence"]["numbers"]["throttle_rate"] >= 0.4 and thr["cost_impact_usd_per_hour"] >= 0
    [act] = thr["actions"]
    # Simulated history never changes the real platform: recorded as what would have been done.
    assert (act["action"], act["outcome"]) == ("reduce_concurrency", "simulated")
    assert "2 → 1" in act["detail"] and act["change_id"] is None
    assert isinstance(findings["alerts"], list)

    assert main(["alerts"]) == 0
    text = capsys.readouterr().out
    assert (
        "action taken: reduce_concurrency: simulated" in text
        and "runbook: docs/runbooks/provider-api-throttling.md" in text
    )
    assert "evidence: " in text and "Economic alerts (last 30 min):" in text
