"""Routing: the manifest that routes the next jobs, its history, how much of the exploration
budget is used, and what shadow providers would have delivered."""

import streamlit as st

from dashboards import charts, data, state, widgets
from economics.marginality import WINDOWS

ctx = widgets.page("Routing")

# -- current manifest --------------------------------------------------------------------------
st.subheader("Current manifest")
manifest = state.manifest(ctx)
entries = data.manifest_table(manifest)
epsilon = float((manifest or {}).get("exploration_rate", ctx.settings.exploration_rate))
if entries.is_empty():
    widgets.empty("No routing manifest published yet.", "The economics job publishes one every 15 minutes.")
else:
    overrides = manifest.get("overrides") or {}
    st.markdown(
        f"Version `{manifest['version']}` · published {manifest['published_at'][:16].replace('T', ' ')} UTC"
        f" · priority **{manifest.get('priority', '—')}** · exploration ε **{data.fmt_pct(epsilon)}**"
    )
    if manifest.get("excluded"):
        st.caption("Left out (unhealthy or disabled): " + ", ".join(manifest["excluded"]))
    if overrides:
        st.warning(
            "Emergency override in force: "
            + "; ".join(f"{e} → {o.get('provider_id')} ({o.get('reason')})" for e, o in overrides.items())
        )
    adjusted = [a for a in manifest.get("adjustments") or [] if a.get("applied")]
    if adjusted:
        # Runtime parameters (docs/signals.md): an approved pin, a latency demotion.
        said = {"pin": "pinned first", "demote": "demoted"}
        st.info(
            "Adjustments in force: "
            + "; ".join(f"{a['effect_type']}: {a['provider_id']} {said[a['kind']]} ({a['reason']})" for a in adjusted)
            + " — roll back from Recommendations → Applied changes."
        )
    widgets.chart(charts.routing_weights(entries))
    widgets.table(
        entries,
        expected_duration_ms=st.column_config.NumberColumn("Expected ms", format="%.0f"),
        expected_success_rate=widgets.percent("Expected success"),
    )

# -- history -----------------------------------------------------------------------------------
st.subheader("History")
history = state.manifest_history(ctx)
if history.is_empty():
    widgets.empty("No manifest history yet.", "Every published version is kept in gold routing_manifests.")
else:
    st.caption(f"{history['version'].n_unique()} versions; the provider each one ranked first, per effect type.")
    widgets.chart(charts.top_provider_history(history))
    with st.expander("Versions"):
        widgets.table(history, height=300)

# -- exploration budget and shadows ------------------------------------------------------------
window = st.segmented_control("Over the last", list(WINDOWS), default="24h", key="routing_window") or "24h"
since = ctx.now - WINDOWS[window]
cube = state.cube(ctx)
left, right = st.columns(2)
with left:
    st.subheader("Exploration budget")
    burn = data.exploration_burn(cube, since, epsilon)
    if burn.is_empty():
        widgets.empty("No user jobs in this window.", f"({ctx.source} executions)")
    else:
        used = burn["exploration_jobs"].sum() / max(burn["user_jobs"].sum(), 1)
        st.caption(
            f"{data.fmt_pct(used, 2)} of {int(burn['user_jobs'].sum()):,} user jobs explored "
            f"(budget ε = {data.fmt_pct(epsilon)}), costing "
            f"{data.fmt_usd(burn['exploration_cost_usd'].sum())}."
        )
        widgets.chart(charts.budget_bars(burn))
        widgets.table(burn)
with right:
    st.subheader("Shadow results")
    quality = state.quality_by_selection(ctx) if ctx.source == "real" else None
    shadows = data.shadow_results(cube, since, quality)
    if shadows.is_empty():
        widgets.empty(
            "No shadow executions in this window.",
            "Providers in `shadow` mode get a copy of each job of their effect type; none ran.",
        )
    else:
        st.caption(
            "Shadow copies are never shown to users nor charged; next to them, the ranked jobs of the same effect type."
        )
        widgets.table(shadows, mean_duration_ms=st.column_config.NumberColumn("Mean ms", format="%.0f"))
