"""Streamlit pieces every page shares: the sidebar filters, the HUD, empty states, money
columns, charts and the approve / reject controls. Pages compose these; none of them
repeats what is here."""

from __future__ import annotations

from collections.abc import Callable

import altair as alt
import polars as pl
import streamlit as st

from dashboards import data, gate, state
from dashboards.data import fmt_pct, fmt_usd
from resources.services.decisions import DecisionNotFound
from resources.store.errors import Conflict

FLASH_KEY = "_effectlake_flash"
SOURCE_LABELS = {"real": "Real", "simulated": "Simulated"}


# -- sidebar ---------------------------------------------------------------------------------
def sidebar(admin: str, now) -> str:
    """The sidebar: real vs simulated filter, as-of time (``now``, UTC), who is signed in.
    Returns the chosen source."""
    with st.sidebar:
        source = st.radio(
            "Data",
            data.SOURCES,
            key="source",
            format_func=SOURCE_LABELS.get,
            horizontal=True,
            help="Real executions and simulated history are never added together.",
        )
        st.caption(f"As of {now:%Y-%m-%d %H:%M} UTC · signed in as **{admin}**")
        st.button("Sign out", key="sign_out", on_click=gate.sign_out)
    return source


# -- messages --------------------------------------------------------------------------------
def empty(what: str, hint: str) -> None:
    """A readable empty state: what is missing and what fills it."""
    st.info(f"**{what}** {hint}", icon=":material/hourglass_empty:")


def flash(kind: str, text: str) -> None:
    """Show ``text`` at the top of the next run (messages raised in callbacks)."""
    st.session_state[FLASH_KEY] = (kind, text)


def show_flash() -> None:
    """Show and clear the pending flash message."""
    kind, text = st.session_state.pop(FLASH_KEY, (None, None))
    if kind == "success":
        st.success(text, icon=":material/check_circle:")
    elif kind:
        st.warning(text)


def source_note(ctx: state.Context, what: str) -> None:
    """Say that a view holds real data only while the filter shows simulated data."""
    if ctx.source != "real":
        st.caption(f"{what} come from real executions only; the data filter does not apply here.")


def page(title: str) -> state.Context:
    """Open a page: its title, the pending message, the HUD; returns the run's context."""
    ctx = state.current()
    st.header(title)
    show_flash()
    hud(ctx)
    return ctx


# -- HUD ----------------------------------------------------------------------------------------
def hud(ctx: state.Context) -> None:
    """Margin, revenue, cost and burn rate over 1h / 24h / 7d and the next-24h forecast, on
    top of every page."""
    windows = state.hud(ctx)
    fc = state.forecast(ctx)
    with st.container(border=True):
        cols = st.columns(4)
        # Three windows in the first three columns; the fourth holds the forecast below.
        for col, w in zip(cols, windows.iter_rows(named=True), strict=False):
            with col:
                st.metric(
                    f"Margin · last {w['window']}",
                    fmt_pct(w["margin"]),
                    delta=fmt_usd(w["margin_usd"]) if w["executions"] else None,
                    help=f"(revenue − cost) / revenue of the {w['executions']:,} {ctx.source} executions "
                    f"that finished in the last {w['window']}; the delta is the margin in USD.",
                )
                st.markdown(
                    f"Revenue **{fmt_usd(w['revenue_usd'])}** · Cost **{fmt_usd(w['cost_usd'])}**  \n"
                    f"Burn **{fmt_usd(w['cost_usd_per_hour'])}/h** · {w['executions']:,} runs"
                )
        with cols[3]:
            if fc is None:
                st.metric("Forecast · next 24h", "—", help="No complete hour of history yet.")
                st.markdown("Needs at least one finished hour of executions.")
            else:
                t = {r["metric"]: r for r in fc.totals.iter_rows(named=True)}
                m = t["margin_usd"]
                interval = f" (90 %: {fmt_usd(m['lower'])} … {fmt_usd(m['upper'])})" if m["lower"] is not None else ""
                st.metric(
                    "Forecast · next 24h",
                    fmt_pct(fc.margin_pct),
                    delta=fmt_usd(m["point"]),
                    help=f"Method: {m['method']}; margin USD{interval}.",
                )
                st.markdown(
                    f"Revenue **{fmt_usd(t['revenue_usd']['point'])}** · "
                    f"Cost **{fmt_usd(t['cost_usd']['point'])}**  \n"
                    f"Burn **{fmt_usd(t['cost_usd']['point'] / 24)}/h** · {m['method'].replace('_', ' ')}"
                )


# -- tables and charts ---------------------------------------------------------------------------
def money(label: str, help: str | None = None):
    """Column config for a USD column (small amounts keep their digits)."""
    return st.column_config.NumberColumn(label, help=help, format="$%.4g")


def percent(label: str, help: str | None = None):
    """Column config for a fraction shown as a percentage."""
    return st.column_config.NumberColumn(label, help=help, format="percent")


def fraction_bar(label: str, help: str | None = None):
    """Column config for a 0..1 value drawn as a bar (quality, success rate)."""
    return st.column_config.ProgressColumn(label, help=help, min_value=0.0, max_value=1.0, format="%.3f")


COLUMN_CONFIG = {
    "revenue_usd": money("Revenue"),
    "cost_usd": money("Cost"),
    "margin_usd": money("Margin USD"),
    "mean_cost_usd": money("Cost / run"),
    "expected_cost_usd": money("Expected cost"),
    "exploration_cost_usd": money("Exploration cost"),
    "ranked_mean_cost_usd": money("Ranked cost / run"),
    "projected_margin_impact_usd": money("Impact / day"),
    "margin": percent("Margin"),
    "success_rate": fraction_bar("Success"),
    "mean_quality": fraction_bar("Quality"),
    "expected_quality": fraction_bar("Expected quality"),
    "ranked_mean_quality": fraction_bar("Ranked quality"),
    "weight": fraction_bar("Routing weight"),
    "confidence": fraction_bar("Confidence"),
    "exploration_share": percent("Exploring"),
    "budget": percent("Budget ε"),
    "budget_used": percent("Budget used"),
    "exploration_margin": percent("Margin exploring"),
    "exploited_margin": percent("Margin ranked"),
    "success_24h": percent("Success 24h"),
    "success_7d": percent("Success 7d"),
    "composite": fraction_bar("Composite"),
}


def table(df: pl.DataFrame, *, height: int | str = "auto", key: str | None = None, **config) -> None:
    """A dataframe with the shared column formats (``config`` adds or overrides)."""
    cols = {k: v for k, v in {**COLUMN_CONFIG, **config}.items() if k in df.columns}
    st.dataframe(df, hide_index=True, column_config=cols, height=height, key=key)


def chart(c: alt.Chart) -> None:
    """An Altair chart at the container's width."""
    st.altair_chart(c, width="stretch")


# -- decisions -----------------------------------------------------------------------------------
def _decide(key: str, decision: str, record: Callable[[str, str], dict], label: str) -> None:
    # Runs as a button callback: the result shows on the rerun the click starts.
    reason = st.session_state.get(f"{key}_reason", "")
    try:
        result = record(decision, reason)
    except DecisionNotFound:
        flash("warning", f"{label} no longer exists (a newer economics cycle replaced it).")
    except Conflict as exc:  # decided the other way, stale, or the value changed meanwhile
        flash("warning", f"{label}: {exc}")
    else:
        flash("success", f"{label}: {decision}d{_applied_text(result)}.")


def _applied_text(result: dict | None) -> str:
    applied = (result or {}).get("applied")
    if applied:
        return f" — applied: {change_text(applied)} (change `{applied['change_id']}`)"
    note = (result or {}).get("note")
    return f" — {note}" if note else ""


def change_text(change: dict) -> str:
    """``scope.subject.name: before → after`` (``default`` for a parameter not set)."""
    key = ".".join(change[k] for k in ("scope", "subject", "name"))
    return f"{key}: {_shown(change['before'])} → {_shown(change['after'])}"


def _shown(value) -> str:
    return "default" if value is None else str(value)


def rollback_button(key: str, change: dict, rollback: Callable[[str], dict]) -> None:
    """A Roll back button for ``change`` (an applied recommendation or an automatic action);
    ``rollback(change_id)`` undoes it through the shared service when clicked."""
    st.button(
        "Roll back",
        key=f"{key}_rollback",
        icon=":material/undo:",
        on_click=_rollback,
        args=(change, rollback),
        help=f"Restore {change_text(change).split(': ')[0]} to {_shown(change['before'])}",
    )


def _rollback(change: dict, rollback: Callable[[str], dict]) -> None:
    try:
        undo = rollback(change["change_id"])
    except Conflict as exc:  # already rolled back, or a later change stands
        flash("warning", f"Not rolled back: {exc}")
    else:
        flash("success", f"Rolled back: {change_text(undo)} (change `{undo['change_id']}`).")


def decision_controls(key: str, label: str, record: Callable[[str, str], dict]) -> None:
    """A reason field with Approve and Reject buttons; ``record(decision, reason)`` stores
    the decision (through the shared decision services) when one is clicked."""
    st.text_input("Reason (optional)", key=f"{key}_reason", placeholder="why — kept with the decision")
    a, r, _ = st.columns([1, 1, 4])
    a.button(
        "Approve",
        key=f"{key}_approve",
        type="primary",
        icon=":material/check:",
        on_click=_decide,
        args=(key, "approve", record, label),
    )
    r.button(
        "Reject", key=f"{key}_reject", icon=":material/close:", on_click=_decide, args=(key, "reject", record, label)
    )
