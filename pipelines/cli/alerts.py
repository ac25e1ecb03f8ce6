"""``effectlake signals`` and ``effectlake alerts``: the economic engine on demand.

``signals`` runs ``signals_job`` in process on the current instance (as ``effectlake
economics`` runs the economics job), then ``actions_job`` when the classifications want an
action or a restore (what ``bottleneck_action_sensor`` would start), and prints what is open.
``alerts`` prints the open bottleneck classifications and the recent Isolation Forest alerts:
category, provider, effect type, evidence, action taken and cost impact (``--json``: the same
as one JSON document).
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta

import polars as pl

from economics.bottlenecks import Policy
from resources.events import utcnow
from resources.lake import Lake
from resources.schemas import BOTTLENECK_ACTIONS, BOTTLENECK_CLASSIFICATIONS, ECONOMIC_ALERTS
from resources.settings import get_settings

# An alert is shown while it is as recent as a classification stays open without its
# condition (the classifier's resolve_after: 30 minutes).
ALERT_WINDOW = Policy().resolve_after


def open_findings(lake: Lake, now: datetime, alert_window: timedelta = ALERT_WINDOW) -> dict:
    """``{"classifications": [...], "alerts": [...]}``: open classifications (critical first,
    then by cost impact) with their evidence parsed and every action recorded for them, and
    the alerts raised within ``alert_window``. JSON-able."""
    classes = lake.read(BOTTLENECK_CLASSIFICATIONS, pl.col("status") == "open").sort(
        [pl.col("severity") == "critical", "cost_impact_usd_per_hour"], descending=True
    )
    acts = lake.read(BOTTLENECK_ACTIONS).sort("taken_at")
    alerts = lake.read(ECONOMIC_ALERTS, pl.col("raised_at") > now - alert_window).sort("raised_at", descending=True)
    out_classes = []
    for r in classes.iter_rows(named=True):
        mine = acts.filter(pl.col("classification_id") == r["classification_id"])
        out_classes.append(
            {
                **{k: v for k, v in r.items() if k not in ("evidence", "first_seen_at", "last_seen_at", "resolved_at")},
                "evidence": json.loads(r["evidence"] or "{}"),
                "first_seen_at": r["first_seen_at"].isoformat(),
                "last_seen_at": r["last_seen_at"].isoformat(),
                "actions": [
                    {
                        "action": a["action"],
                        "phase": a.get("phase") or "apply",
                        "outcome": a["outcome"],
                        "detail": a["detail"],
                        "change_id": a.get("change_id"),
                        "taken_at": a["taken_at"].isoformat(),
                    }
                    for a in mine.iter_rows(named=True)
                ],
            }
        )
    out_alerts = [
        {
            **{k: v for k, v in a.items() if k not in ("features", "raised_at", "computed_at")},
            "features": json.loads(a["features"] or "[]"),
            "raised_at": a["raised_at"].isoformat(),
        }
        for a in alerts.iter_rows(named=True)
    ]
    return {"classifications": out_classes, "alerts": out_alerts}


def _evidence_line(evidence: dict) -> str:
    parts = []
    for metric, hits in evidence.get("signals", {}).items():
        h = hits[0]
        parts.append(f"{metric} {h['value']:.4g} vs {h['baseline']:.4g} ({h['detector']})")
    if not parts:
        numbers = evidence.get("numbers", {})
        parts = [f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in numbers.items()][:4]
    return "; ".join(parts) or "—"


def render(findings: dict) -> str:
    """The findings as text for a terminal."""
    lines = []
    classes = findings["classifications"]
    lines.append(f"Open bottlenecks: {len(classes)}")
    for c in classes:
        who = " · ".join(x for x in (c["provider_id"], c["effect_type"], c["instance_type"], c["user_id"]) if x)
        last = c["actions"][-1] if c["actions"] else None
        taken = (
            f"{last['action']}: {last['outcome']} — {last['detail']}"
            if last
            else (c["automatic_action"] or "none (an operator decides)")
        )
        lines += [
            f"- {c['category']} [{c['severity']}] {who} ({c['source']})",
            f"    cost impact: ${c['cost_impact_usd_per_hour']:,.2f}/h · open since {c['first_seen_at']}",
            f"    evidence: {_evidence_line(c['evidence'])}",
            f"    action taken: {taken}",
            f"    runbook: {c['runbook']}",
        ]
    alerts = findings["alerts"]
    lines.append(f"Economic alerts (last {int(ALERT_WINDOW.total_seconds() // 60)} min): {len(alerts)}")
    for a in alerts:
        lines.append(f"- [{a['severity']}] {a['raised_at']} {a['summary']} (score {a['anomaly_score']:.3f})")
    return "\n".join(lines) + "\n"


def print_alerts(as_json: bool) -> int:
    """``effectlake alerts``: print the open findings of the current lake."""
    findings = open_findings(Lake(uri=get_settings().lake_uri), utcnow())
    sys.stdout.write(json.dumps(findings, indent=2, default=str) + "\n" if as_json else render(findings))
    return 0


def run_signals() -> int:
    """``effectlake signals``: one signals cycle now, then the actions it calls for; prints
    the open findings. Exit status 1 when a run failed."""
    from assets.gold.actions import pending
    from pipelines.cli.run_jobs import run_job

    if not run_job("signals_job"):
        return 1
    lake = Lake(uri=get_settings().lake_uri)
    todo = pending(lake)
    if todo and not run_job("actions_job"):
        return 1
    sys.stdout.write(render(open_findings(lake, utcnow())))
    return 0
