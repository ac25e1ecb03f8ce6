"""Recommendations: pending, approved and rejected, with projected impact; decisions are
recorded through resources/services/recommendations.py, as the API records them. Approving
applies a recommendation (its parameter change), and every applied change — an approval, an
unattended application, an automatic action — can be rolled back from here."""

import json

import polars as pl
import streamlit as st

from dashboards import charts, data, state, widgets
from resources.services.recommendations import decide_recommendation, rollback

ctx = widgets.page("Recommendations")
widgets.source_note(ctx, "Recommendations")

recs = state.recommendations(ctx)
changes = state.parameter_changes(ctx)
if recs.is_empty() and not changes:
    widgets.empty(
        "No recommendations this cycle.",
        "The economics job proposes provider switches, price changes, fleet and workflow changes "
        "once real executions give a rule at least 10 data points; the automatic actions propose "
        "scale-ups, warm pools and workflow reviews.",
    )
    st.stop()

STATUS = {"pending": "Pending", "approve": "Approved", "reject": "Rejected"}
tabs = st.tabs(
    [f"{label} ({recs.filter(pl.col('status') == s).height})" for s, label in STATUS.items()]
    + [f"Applied changes ({len(changes)})"]
)
by_id = {c["change_id"]: c for c in changes}
# The change in force per parameter (only that one can be rolled back): the newest of its key
# that is not a rollback and was not rolled back (resources.store.parameters).
latest: dict[tuple, str] = {}
for c in reversed(changes):
    if c["source"] != "rollback" and c["rolled_back_by"] is None:
        latest[(c["scope"], c["subject"], c["name"])] = c["change_id"]


def _undo(change_id: str) -> dict:
    return rollback(ctx.lake, ctx.store, ctx.manifest_store, change_id, ctx.admin)


def _in_force(change: dict) -> bool:
    key = (change["scope"], change["subject"], change["name"])
    return change["rolled_back_by"] is None and latest.get(key) == change["change_id"]


def _card(rec: dict, decidable: bool) -> None:
    with st.container(border=True):
        st.markdown(
            f"**{rec['title']}**  \n`{rec['type']}` · "
            + " · ".join(x for x in (rec["effect_type"], rec["provider_id"]) if x)
        )
        m = st.columns(4)
        m[0].metric("Margin impact / day", data.fmt_usd(rec["projected_margin_impact_usd"]))
        q = rec["projected_quality_impact"]
        m[1].metric("Quality impact", "—" if q is None else f"{q:+.3f}")
        m[2].metric("Confidence", data.fmt_pct(rec["confidence"], 0))
        m[3].metric("Based on", f"{rec['based_on_executions']:,} runs")
        st.write(rec["rationale"])
        with st.expander("Action"):
            st.json(json.loads(rec["action"] or "{}"))
        change = by_id.get(rec["change_id"]) if rec.get("change_id") else None
        if change is not None:
            state_text = f"rolled back by `{change['rolled_back_by']}`" if change["rolled_back_by"] else "in force"
            st.write(f"**Applied:** {widgets.change_text(change)} by {change['actor']} — {state_text}")
            if _in_force(change):
                widgets.rollback_button(f"rec_{rec['recommendation_id']}", change, _undo)
        if decidable:
            widgets.decision_controls(
                f"rec_{rec['recommendation_id']}",
                rec["title"],
                lambda decision, reason, rid=rec["recommendation_id"]: decide_recommendation(
                    ctx.lake, ctx.store, ctx.manifest_store, ctx.catalog, rid, decision, ctx.admin, reason
                ),
            )


with tabs[-1]:
    st.caption(
        "Every change of a runtime parameter (a provider's concurrency, an effect's price, a routing pin or "
        "demotion) with its value before and after; the change in force for a parameter can be rolled back, "
        "which restores the value before exactly."
    )
    if not changes:
        st.caption("None.")
    for c in changes:
        with st.container(border=True):
            cost = f" · +${c['cost_usd_per_hour']:.2f}/h" if c["cost_usd_per_hour"] else ""
            st.markdown(
                f"**{widgets.change_text(c)}**  \n`{c['source']}` by {c['actor']} · "
                f"{c['applied_at']:%Y-%m-%d %H:%M} UTC{cost} · `{c['change_id']}`"
            )
            st.caption(c["reason"])
            if c["rolled_back_by"]:
                st.caption(f"Rolled back by `{c['rolled_back_by']}`")
            elif _in_force(c):
                widgets.rollback_button(f"chg_{c['change_id']}", c, _undo)

for (status, _), tab in zip(STATUS.items(), tabs[: len(STATUS)], strict=True):
    with tab:
        subset = recs.filter(pl.col("status") == status)
        if subset.is_empty():
            st.caption("None.")
            continue
        if status == "pending":
            widgets.chart(charts.impact_bars(subset))
        for rec in subset.iter_rows(named=True):
            _card(rec, decidable=status == "pending")
