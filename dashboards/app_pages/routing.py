"""Routing: the manifest that routes the next jobs, the off-policy estimate of its margin per
routed job against the manifest it replaced, its history, how much of the exploration budget is
used, and what shadow providers would have delivered."""

import polars as pl
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

# -- off-policy estimate of the last change ----------------------------------------------------
st.subheader("Estimated margin per routed job: before and after the last change")
estimate = data.change_estimate(manifest)
if estimate.is_empty():
    widgets.empty(
        "No off-policy estimate for this manifest.",
        "The economics job estimates every manifest it publishes from the logged routing decisions "
        "(an emergency override has none).",
    )
else:
    dr = {r["policy"]: r for r in estimate.filter(pl.col("estimator") == "dr").iter_rows(named=True)}
    columns = st.columns(len(dr))
    for column, (policy, r) in zip(columns, dr.items(), strict=True):
        defined = r["value"] is not None
        column.metric(
            policy.capitalize(),
            f"{r['value']:.3f} tokens" if defined else "n/a",
            help=f"Doubly robust estimate on {r['decisions']:,} logged decisions; manifest {r['version']}.",
        )
        if defined and r["ci_low"] is not None:
            column.caption(f"95 % interval {r['ci_low']:.3f} … {r['ci_high']:.3f} tokens")
    st.caption(
        "What each manifest would earn per routed job (effect price if the provider succeeds, minus its cost), "
        "estimated from the decisions earlier manifests made and the probability each was made with: "
        "IPS (Horvitz–Thompson), self-normalised IPS and doubly robust (Dudík et al. 2011). ess = effective "
        "sample size of the importance weights."
    )
    widgets.table(estimate)
    history_est = state.estimate_history(ctx)
    if history_est.height > 2:
        widgets.chart(charts.estimate_history(history_est))

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
