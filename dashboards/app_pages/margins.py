"""Margins: per provider and per effect type now and over time, revenue vs cost, creation
(test batches) apart from users' runs of published effects, and why margin moved between two
periods (with the executions behind it)."""

from datetime import UTC, datetime, time, timedelta

import polars as pl
import streamlit as st

from dashboards import charts, data, state, widgets
from dashboards.data import fmt_pct, fmt_usd
from economics.marginality import WINDOWS

ctx = widgets.page("Margins")
_SAVED = widgets.money("Saved by the cache", help="what the cache hits' reused outputs cost when they were made")

# -- now ---------------------------------------------------------------------------------------
windows = state.windows(ctx)
if windows.is_empty():
    widgets.empty(
        "No marginality windows yet.",
        "The economics job writes them every 15 minutes from execution costs "
        f"({ctx.source} executions shown; switch the data filter in the sidebar).",
    )
else:
    window = st.segmented_control("Window", list(WINDOWS), default="24h", key="margins_window")
    window = window or "24h"
    by_effect = data.current_margins(windows, "effect_type").filter(pl.col("window") == window)
    by_provider = data.current_margins(windows, "provider_id").filter(pl.col("window") == window)
    end = windows["window_end"].max()
    st.caption(f"Last {window} before the economics run of {end:%Y-%m-%d %H:%M} UTC, {ctx.source} executions.")
    left, right = st.columns(2)
    with left:
        st.subheader("Per effect type")
        widgets.chart(
            charts.grouped_bars(data.revenue_vs_cost(by_effect), "effect_type", "usd", "measure", y_title="USD")
        )
        widgets.table(by_effect.drop("window", "window_end"), saved_cost_usd=_SAVED)
    with right:
        st.subheader("Per provider")
        widgets.table(by_provider.drop("window", "window_end"), saved_cost_usd=_SAVED)

# -- creation vs runs --------------------------------------------------------------------------
st.subheader("Creation vs runs")
st.caption(
    "Creation: the test batches that make an effect from an example video. Runs: users applying a "
    "published effect to their own video. One cost model and one ledger; shown apart. A run served "
    "from the result cache is a cache hit, not an execution: its charge is revenue at no cost."
)
span = st.segmented_control("Over the last", list(WINDOWS), default="7d", key="kinds_window") or "7d"
kinds = state.job_kinds(ctx, WINDOWS[span])
if int(kinds["executions"].sum()) + int(kinds["cache_hits"].sum()) == 0:
    widgets.empty("No executions in this window.", f"Pick a longer window ({ctx.source} executions).")
else:
    widgets.table(
        kinds,
        revenue_usd=widgets.money("Revenue"),
        cost_usd=widgets.money("Cost"),
        margin_usd=widgets.money("Margin USD"),
        margin=widgets.percent("Margin"),
        saved_cost_usd=widgets.money("Saved by the cache", help="what the reused outputs cost when they were made"),
    )
if ctx.source == "real":
    jobs = state.jobs_by_kind(ctx, WINDOWS[span])
    st.markdown("**Per job** — what users paid per job, what it cost, and what the result cache saved")
    widgets.table(
        jobs,
        revenue_usd=widgets.money("Revenue"),
        cost_usd=widgets.money("Cost"),
        margin=widgets.percent("Margin"),
        saved_cost_usd=widgets.money("Saved by the cache", help="what the reused outputs cost when they were made"),
    )

# -- history -----------------------------------------------------------------------------------
st.subheader("History")
cube = state.cube(ctx)
if cube.is_empty():
    widgets.empty("No executions yet.", f"Margins over time appear once {ctx.source} executions are costed.")
else:
    c1, c2, c3 = st.columns(3)
    trailing = c1.selectbox("Margin over the trailing", list(WINDOWS), index=1, key="history_window")
    by = c2.selectbox(
        "Per",
        ["effect_type", "provider_id"],
        key="history_by",
        format_func=lambda c: c.replace("_id", "").replace("_", " "),
    )
    span = c3.selectbox("Showing", ["7d", "24h", "30d"], key="history_span")
    end = ctx.now.replace(minute=0) + timedelta(hours=1)
    hist = data.margin_history(cube, by, trailing, end - timedelta(days={"24h": 1, "7d": 7, "30d": 30}[span]), end)
    if hist["margin"].is_null().all():
        widgets.empty("Nothing was charged in this span.", "Pick a longer span.")
    else:
        widgets.chart(
            charts.lines_over_time(
                hist.drop_nulls("margin"), "margin", by, y_title=f"margin over the trailing {trailing}", percent=True
            )
        )
        totals = (
            hist.group_by("hour")
            .agg(pl.col("revenue_usd", "cost_usd").sum())
            .unpivot(["revenue_usd", "cost_usd"], index="hour", variable_name="measure", value_name="usd")
            .with_columns(measure=pl.col("measure").str.replace("_usd", ""))
        )
        widgets.chart(charts.lines_over_time(totals, "usd", "measure", y_title=f"USD over the trailing {trailing}"))
    fc = state.forecast(ctx)
    if fc is not None:
        st.markdown(f"**Next 24 hours** — margin per hour, forecast with its {fc.level:.0%} interval")
        widgets.chart(charts.forecast_chart(*data.forecast_view(cube, fc)))

# -- why did margin move -----------------------------------------------------------------------
st.subheader("Why did margin move?")
preset = st.selectbox("Compare", [*data.PERIOD_PRESETS, "custom dates"], key="why_preset")
if preset == "custom dates":
    today = ctx.now.date()
    c1, c2 = st.columns(2)
    pa = c1.date_input("Period A (days, UTC)", (today - timedelta(days=13), today - timedelta(days=7)), key="why_a")
    pb = c2.date_input("Period B (days, UTC)", (today - timedelta(days=6), today), key="why_b")

    def _period(days) -> tuple[datetime, datetime] | None:
        if not isinstance(days, tuple) or len(days) != 2:
            return None
        return (datetime.combine(days[0], time(), UTC), datetime.combine(days[1] + timedelta(days=1), time(), UTC))

    a, b = _period(pa), _period(pb)
else:
    a, b = data.preset_periods(data.PERIOD_PRESETS[preset], ctx.now)
if a is None or b is None:
    st.caption("Pick a start and an end day for both periods.")
else:
    change = state.decomposition(ctx, a, b)
    if change.cells.is_empty():
        widgets.empty("No executions in either period.", f"Pick other periods ({ctx.source} executions).")
    else:
        st.caption(
            f"A: {a[0]:%Y-%m-%d %H:%M} → {a[1]:%Y-%m-%d %H:%M} · B: {b[0]:%Y-%m-%d %H:%M} → "
            f"{b[1]:%Y-%m-%d %H:%M} UTC. Shapley decomposition: the four effects add up to the change."
        )
        m = st.columns(6)
        m[0].metric("Margin A", fmt_usd(change.margin_usd_a), help=f"margin {fmt_pct(change.margin_pct_a)}")
        m[1].metric(
            "Margin B",
            fmt_usd(change.margin_usd_b),
            delta=fmt_usd(change.change),
            help=f"margin {fmt_pct(change.margin_pct_b)}",
        )
        for col, (name, value) in zip(m[2:], data.decomposition_parts(change).iter_rows(), strict=True):
            col.metric(name.capitalize(), fmt_usd(value))
        widgets.chart(charts.effect_bars(data.decomposition_parts(change)))
        cells = data.decomposition_cells(change)
        widgets.table(
            cells,
            price_a=widgets.money("Price A"),
            price_b=widgets.money("Price B"),
            cost_per_run_a=widgets.money("Cost/run A"),
            cost_per_run_b=widgets.money("Cost/run B"),
            margin_usd_a=widgets.money("Margin A"),
            margin_usd_b=widgets.money("Margin B"),
            change=widgets.money("Change"),
            price_effect=widgets.money("Price"),
            cost_effect=widgets.money("Cost/run"),
            volume_effect=widgets.money("Volume"),
            mix_effect=widgets.money("Mix"),
        )
        st.markdown("**Drill down** — the executions of one provider × effect type")
        labels = [f"{r['provider_id']} · {r['effect_type']}" for r in cells.iter_rows(named=True)]
        c1, c2 = st.columns([3, 1])
        pick = c1.selectbox("Cell", range(len(labels)), format_func=labels.__getitem__, key="why_cell")
        which = c2.radio("Period", ["B", "A"], horizontal=True, key="why_period")
        cell = cells.row(pick, named=True)
        lo, hi = b if which == "B" else a
        rows = state.executions(ctx, lo, hi, {"provider_id": cell["provider_id"], "effect_type": cell["effect_type"]})
        st.caption(f"{rows.height:,} newest executions of period {which} (at most 500).")
        widgets.table(rows, height=300)
