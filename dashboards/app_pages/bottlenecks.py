"""Bottlenecks and alerts: the gold tables of the signals issue, shown as they are once they
exist (signals, bottleneck_classifications, economic_alerts)."""

import streamlit as st

from dashboards import data, state, widgets

ctx = widgets.page("Bottlenecks & alerts")

TITLES = {
    "signals": "Signals",
    "bottleneck_classifications": "Bottleneck classifications",
    "economic_alerts": "Economic alerts",
}
found = {name: state.optional_table(ctx, name) for name in data.OPTIONAL_TABLES}
if all(t is None for t in found.values()):
    widgets.empty(
        "No bottleneck or alert data yet.",
        "Signals, bottleneck classifications and economic alerts will be computed by a later "
        "economics stage (gold "
        + ", ".join(f"`{n}`" for n in data.OPTIONAL_TABLES)
        + "); this page shows them as soon as those tables exist.",
    )
    st.stop()

for name, df in found.items():
    st.subheader(TITLES[name])
    if df is None:
        st.caption(f"gold `{name}` does not exist yet.")
        continue
    rows = data.newest_first(df, ctx.source)
    if rows.is_empty():
        st.caption("No rows" + (f" for {ctx.source} data." if "source" in df.columns else "."))
    else:
        st.caption(f"{rows.height:,} rows, newest first" + (" (the first 1,000 shown)." if rows.height > 1000 else "."))
        widgets.table(rows.head(1000), height=320)
