"""Recommendations: pending, approved and rejected, with projected impact; decisions are
recorded through resources/services/recommendations.py, as the API records them."""

import json

import polars as pl
import streamlit as st

from dashboards import charts, data, state, widgets
from resources.services.recommendations import decide_recommendation

ctx = widgets.page("Recommendations")
widgets.source_note(ctx, "Recommendations")

recs = state.recommendations(ctx)
if recs.is_empty():
    widgets.empty(
        "No recommendations this cycle.",
        "The economics job proposes provider switches, price changes, fleet and workflow changes "
        "once real executions give a rule at least 10 data points.",
    )
    st.stop()

STATUS = {"pending": "Pending", "approve": "Approved", "reject": "Rejected"}
tabs = st.tabs([f"{label} ({recs.filter(pl.col('status') == s).height})" for s, label in STATUS.items()])


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
        if decidable:
            widgets.decision_controls(
                f"rec_{rec['recommendation_id']}",
                rec["title"],
                lambda decision, reason, rid=rec["recommendation_id"]: decide_recommendation(
                    ctx.lake, ctx.store, rid, decision, ctx.admin, reason
                ),
            )


for (status, _), tab in zip(STATUS.items(), tabs, strict=True):
    with tab:
        subset = recs.filter(pl.col("status") == status)
        if subset.is_empty():
            st.caption("None.")
            continue
        if status == "pending":
            widgets.chart(charts.impact_bars(subset))
        for rec in subset.iter_rows(named=True):
            _card(rec, decidable=status == "pending")
