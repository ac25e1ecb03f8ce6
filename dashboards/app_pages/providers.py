"""Providers: quality × cost × speed per provider × effect type from executions and from
the latest benchmark, with health and success rates."""

from datetime import timedelta

import polars as pl
import streamlit as st

from dashboards import charts, data, state, widgets

ctx = widgets.page("Providers")

# -- health ------------------------------------------------------------------------------------
st.subheader("Health and success rates")
health = state.health(ctx)
rates = data.success_rates(state.cube(ctx), ctx.now)
if health.is_empty() and rates.is_empty():
    widgets.empty("No provider health checks yet.", "The economics job checks every registered provider (M3).")
else:
    both = health.join(rates, on="provider_id", how="full", coalesce=True).select(
        "provider_id",
        "healthy",
        "breaker_state",
        "mode",
        "effect_types",
        "runs_24h",
        "success_24h",
        "runs_7d",
        "success_7d",
        "latency_ms",
        "health_detail",
        "checked_at",
    )
    healthy = int(health["healthy"].sum()) if health.height else 0
    st.caption(
        f"{healthy} of {health.height} providers healthy at the last check; success rates of {ctx.source} executions."
    )
    widgets.table(both, healthy=st.column_config.CheckboxColumn("Healthy"))

# -- matrix ------------------------------------------------------------------------------------
st.subheader("Quality × cost × speed")
spans = {"7d": timedelta(days=7), "24h": timedelta(hours=24), "30d": timedelta(days=30), "all": None}
span = st.segmented_control("Executions of the last", list(spans), default="7d", key="matrix_span") or "7d"
since = ctx.now - spans[span] if spans[span] else None
tab_exec, tab_bench = st.tabs([f"From {ctx.source} executions", "From the latest benchmark"])


def _matrix_view(matrix: pl.DataFrame, note: str) -> None:
    st.caption(note)
    left, right = st.columns(2)
    with left:
        if matrix["mean_quality"].is_null().all():
            st.caption("No quality scores for these runs (simulated runs are not scored).")
        else:
            widgets.chart(charts.cost_scatter(matrix, "mean_quality", "mean quality (composite)"))
    with right:
        widgets.chart(
            charts.cost_scatter(
                matrix.with_columns(p50_s=pl.col("p50_duration_ms") / 1000), "p50_s", "median time (s)", y_format=",.1f"
            )
        )
    widgets.table(
        matrix.select(
            "effect_type",
            "provider_id",
            "runs",
            "success_rate",
            "mean_quality",
            "mean_cost_usd",
            "p50_duration_ms",
            "p95_duration_ms",
            "margin",
        ),
        p50_duration_ms=st.column_config.NumberColumn("p50 ms", format="%.0f"),
        p95_duration_ms=st.column_config.NumberColumn("p95 ms", format="%.0f"),
    )


with tab_exec:
    matrix = state.execution_matrix(ctx, since)
    if matrix.is_empty():
        widgets.empty("No executions in this span.", f"Pick a longer span, or switch the data filter ({ctx.source}).")
    else:
        _matrix_view(
            matrix,
            f"{int(matrix['runs'].sum()):,} {ctx.source} executions; quality is the mean "
            "composite of the scored outputs, cost includes failed runs.",
        )
with tab_bench:
    bench = state.benchmark(ctx)
    if bench.is_empty():
        widgets.empty(
            "No benchmark yet.",
            "The benchmark job runs the reference suite on every provider (weekly, or `effectlake benchmark`).",
        )
    else:
        _matrix_view(
            bench,
            f"Benchmark {bench['benchmark_id'][0]} of {bench['computed_at'].max():%Y-%m-%d %H:%M} "
            "UTC: the reference suite on every non-disabled provider, priced at list price.",
        )
