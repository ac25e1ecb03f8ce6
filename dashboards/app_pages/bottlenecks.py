"""Bottlenecks & alerts: the admins' alerts (open and acknowledged, with Acknowledge and
Resolve: the store's lifecycle, resources/store/alerts.py), what is flagged for an admin (users
whose tokens run out, workflows to review, recommendations the actions raised), open bottleneck
classifications (critical first) with their evidence chart, cost impact, recommended action,
actions taken, runbook and alert state; the Isolation Forest's alerts; and the history
(docs/signals.md)."""

import json
from datetime import timedelta
from pathlib import Path

import polars as pl
import streamlit as st

from dashboards import data, state, widgets
from resources.schemas import (
    BOTTLENECK_ACTIONS,
    BOTTLENECK_CLASSIFICATIONS,
    ECONOMIC_ALERTS,
    METRIC_STREAMS,
)

ROOT = Path(__file__).resolve().parents[2]
ctx = widgets.page("Bottlenecks & alerts")

classes = state.table(ctx, BOTTLENECK_CLASSIFICATIONS)
alerts = state.table(ctx, ECONOMIC_ALERTS)
if classes.is_empty() and alerts.is_empty() and not ctx.store.alerts():
    widgets.empty(
        "No bottleneck or alert data yet.",
        "The signals job (every 5 minutes) classifies bottlenecks from the metric streams and "
        "raises economic alerts for unusual combinations; they appear here as they are found.",
    )
    st.stop()

classes = classes.filter(pl.col("source") == ctx.source) if not classes.is_empty() else classes
actions = state.table(ctx, BOTTLENECK_ACTIONS)
# Alerts are transactional (an admin acknowledges here or through the API): read from the
# store on every run, never cached.
raised = [a for a in ctx.store.alerts() if a["source"] == ctx.source]
active = [a for a in raised if a["state"] != "resolved"]


def _alert(a: dict) -> None:
    with st.container(border=True):
        st.markdown(f"**{a['title']}** · `{a['severity']}` · {a['state']}")
        st.write(a["summary"])
        emails = ", ".join(f"{d['recipient']}: {d['state']}" for d in a["deliveries"]) or "none"
        st.caption(
            f"Open since {a['opened_at']:%Y-%m-%d %H:%M} UTC · {len(a['classification_ids'])} classification(s)"
            f" · emails: {emails} · runbook {a['runbook']}"
        )
        if a["state"] == "acknowledged":
            st.caption(f"Acknowledged by {a['acknowledged_by']} at {a['acknowledged_at']:%Y-%m-%d %H:%M} UTC")
        cols = st.columns(2)
        if a["state"] == "open" and cols[0].button("Acknowledge", key=f"ack_{a['alert_id']}"):
            ctx.store.acknowledge_alert(a["alert_id"], ctx.admin)
            st.rerun()
        if cols[1].button("Resolve", key=f"resolve_{a['alert_id']}"):
            ctx.store.resolve_alert(a["alert_id"], ctx.admin)
            st.rerun()


st.subheader(f"Alerts ({len(active)})")
if not active:
    st.caption("No open alert" + f" for {ctx.source} data.")
for a in sorted(active, key=lambda a: (a["severity"] != "critical", a["state"] != "open", a["opened_at"])):
    _alert(a)
alert_of = ctx.store.alerts_by_classification(classes["classification_id"].to_list()) if classes.height else {}
open_ = classes.filter(pl.col("status") == "open").sort(
    pl.col("severity") == "critical", "cost_impact_usd_per_hour", descending=True
)
flagged = data.admin_flags(open_, actions)
st.subheader(f"Flagged for admins ({flagged.height})")
if flagged.is_empty():
    st.caption("Nothing needs an admin now.")
else:
    widgets.table(flagged, height=min(60 + 35 * flagged.height, 320))

st.subheader(f"Open bottlenecks ({open_.height})")
if open_.is_empty():
    st.caption("None open" + f" for {ctx.source} data.")


def _evidence_chart(row: dict, evidence: dict) -> None:
    """The stream's signalled metrics over the last 6 hours, with the detectors' baselines."""
    metrics = list(evidence.get("signals", {}))
    if not metrics:
        return
    keys = ("scope", "provider_id", "effect_type", "instance_type", "user_id", "source")
    stream = "|".join(row[k] or "" for k in keys)
    since = ctx.now - timedelta(hours=6)
    rows = state.table(ctx, METRIC_STREAMS).filter((pl.col("stream") == stream) & (pl.col("bucket_start") > since))
    for metric in metrics:
        if rows.is_empty() or metric not in rows.columns:
            continue
        base = evidence["signals"][metric][0]["baseline"]
        frame = rows.select("bucket_start", pl.col(metric).alias(metric)).with_columns(baseline=pl.lit(base))
        st.caption(f"{metric} (baseline {base:,.4g})")
        st.line_chart(frame.to_pandas(), x="bucket_start", y=[metric, "baseline"], height=180)


def _card(row: dict) -> None:
    evidence = json.loads(row["evidence"] or "{}")
    with st.container(border=True):
        who = " · ".join(x for x in (row["provider_id"], row["effect_type"], row["instance_type"], row["user_id"]) if x)
        st.markdown(f"**{row['category']}** · `{row['severity']}` · {who}")
        m = st.columns(3)
        m[0].metric("Cost impact / hour", data.fmt_usd(row["cost_impact_usd_per_hour"]))
        m[1].metric("Open since", row["first_seen_at"].strftime("%Y-%m-%d %H:%M"))
        m[2].metric("Affected jobs", f"{len(row['affected_jobs'] or []):,}")
        st.write(f"**Recommended:** {row['recommended_action']}")
        done = actions.filter(pl.col("classification_id") == row["classification_id"]).sort("taken_at")
        st.write(f"**Automatic action:** {row['automatic_action'] or 'none (an operator decides)'}")
        if done.height:
            for a in done.iter_rows(named=True):
                phase = a.get("phase") or "apply"
                st.write(f"**Action taken** ({phase}): {a['action']}: {a['outcome']} — {a['detail']}")
        else:
            st.write(f"**Action taken:** {row['action_taken'] or '—'}")
        _evidence_chart(row, evidence)
        with st.expander("Evidence"):
            st.json(evidence)
        with st.expander(f"Runbook ({row['runbook']})"):
            page = ROOT / row["runbook"]
            st.markdown(page.read_text() if page.is_file() else f"`{row['runbook']}` is missing.")
        alert = alert_of.get(row["classification_id"])
        st.caption(f"Alert: {alert['state']} ({alert['alert_id']})" if alert else "Alert: not raised yet")


for r in open_.iter_rows(named=True):
    _card(r)

st.subheader("Economic alerts (unusual combinations)")
recent = data.newest_first(alerts, ctx.source)
if recent.is_empty():
    st.caption("None.")
else:
    widgets.table(recent.select("raised_at", "severity", "summary", "anomaly_score").head(200), height=240)

st.subheader("History")
closed = [a for a in raised if a["state"] == "resolved"]
if closed:
    widgets.table(
        pl.DataFrame(
            [
                {k: a[k] for k in ("title", "severity", "opened_at", "resolved_at", "resolution", "resolved_by")}
                for a in closed
            ]
        ).head(500),
        height=200,
    )
past = classes.filter(pl.col("status") == "resolved").sort("resolved_at", descending=True)
if past.is_empty():
    st.caption("No resolved bottlenecks yet.")
else:
    widgets.table(
        past.select(
            "category",
            "severity",
            "provider_id",
            "effect_type",
            "user_id",
            "cost_impact_usd_per_hour",
            "first_seen_at",
            "resolved_at",
            "action_taken",
        ).head(500),
        height=280,
    )
