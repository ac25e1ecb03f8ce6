"""Altair charts of the dashboard, built from ``dashboards.data`` frames (no Streamlit here:
pages hand the charts to ``st.altair_chart``). Money axes are USD, margin axes fractions
shown as percentages, times UTC."""

from __future__ import annotations

import altair as alt
import polars as pl

HEIGHT = 260
# Categorical colours that stay apart with a dozen providers (Vega's default ramps do not).
SCHEME = alt.Scale(scheme="tableau20")
TIME_AXIS = alt.Axis(format="%m-%d %H:%M", labelAngle=0, labelOverlap=True)


def _data(df: pl.DataFrame):
    # Altair takes pandas-like data; Arrow keeps the types (UTC datetimes) intact.
    return df.to_pandas()


def lines_over_time(
    df: pl.DataFrame, y: str, color: str, *, y_title: str, percent: bool = False, x: str = "hour"
) -> alt.Chart:
    """One line per ``color`` value of ``y`` over ``x`` (UTC)."""
    fmt = ".0%" if percent else "$,.4~g"
    return (
        alt.Chart(_data(df))
        .mark_line(point=False, interpolate="monotone")
        .encode(
            x=alt.X(f"{x}:T", title=None, axis=TIME_AXIS),
            y=alt.Y(f"{y}:Q", title=y_title, axis=alt.Axis(format=fmt)),
            color=alt.Color(f"{color}:N", title=color.replace("_", " "), scale=SCHEME),
            tooltip=[alt.Tooltip(f"{x}:T", format="%Y-%m-%d %H:%M"), f"{color}:N", alt.Tooltip(f"{y}:Q", format=fmt)],
        )
        .properties(height=HEIGHT)
        .interactive(bind_y=False)
    )


def grouped_bars(df: pl.DataFrame, x: str, y: str, color: str, *, y_title: str) -> alt.Chart:
    """Bars of ``y`` per ``x``, side by side per ``color`` (e.g. revenue and cost)."""
    return (
        alt.Chart(_data(df))
        .mark_bar()
        .encode(
            x=alt.X(f"{x}:N", title=None, axis=alt.Axis(labelAngle=0)),
            xOffset=alt.XOffset(f"{color}:N"),
            y=alt.Y(f"{y}:Q", title=y_title, axis=alt.Axis(format="$,.4~g")),
            color=alt.Color(
                f"{color}:N", title=None, scale=alt.Scale(domain=["revenue", "cost"], range=["#2e7d32", "#c62828"])
            ),
            tooltip=[f"{x}:N", f"{color}:N", alt.Tooltip(f"{y}:Q", format="$,.6~g")],
        )
        .properties(height=HEIGHT)
    )


def effect_bars(parts: pl.DataFrame) -> alt.Chart:
    """The four margin-change effects as bars, green when they raised margin, red otherwise."""
    return (
        alt.Chart(
            _data(
                parts.with_columns(
                    direction=pl.when(pl.col("usd") >= 0)
                    .then(pl.lit("raised margin"))
                    .otherwise(pl.lit("lowered margin"))
                )
            )
        )
        .mark_bar()
        .encode(
            x=alt.X("factor:N", sort=None, title=None, axis=alt.Axis(labelAngle=0)),
            y=alt.Y("usd:Q", title="effect on margin (USD)", axis=alt.Axis(format="$,.4~g")),
            color=alt.Color(
                "direction:N",
                title=None,
                scale=alt.Scale(domain=["raised margin", "lowered margin"], range=["#2e7d32", "#c62828"]),
            ),
            tooltip=["factor:N", alt.Tooltip("usd:Q", format="$,.6~g")],
        )
        .properties(height=HEIGHT)
    )


def cost_scatter(matrix: pl.DataFrame, y: str, y_title: str, *, y_format: str = ".2f") -> alt.Chart:
    """Providers × effect types as points: mean cost per run (log x) against ``y``, sized
    by runs, coloured by effect type."""
    return (
        alt.Chart(_data(matrix.filter(pl.col(y).is_not_null() & (pl.col("mean_cost_usd") > 0))))
        .mark_circle(opacity=0.8)
        .encode(
            x=alt.X(
                "mean_cost_usd:Q",
                title="mean cost per run (USD, log)",
                scale=alt.Scale(type="log"),
                axis=alt.Axis(format="$,.2~g"),
            ),
            y=alt.Y(f"{y}:Q", title=y_title, scale=alt.Scale(zero=False), axis=alt.Axis(format=y_format)),
            color=alt.Color("effect_type:N", title="effect type", scale=SCHEME),
            size=alt.Size("runs:Q", title="runs", scale=alt.Scale(range=[60, 600])),
            tooltip=[
                "provider_id:N",
                "effect_type:N",
                "runs:Q",
                alt.Tooltip("mean_cost_usd:Q", format="$,.6~g"),
                alt.Tooltip("mean_quality:Q", format=".3f"),
                alt.Tooltip("p50_duration_ms:Q", format=",.0f"),
                alt.Tooltip("success_rate:Q", format=".1%"),
            ],
        )
        .properties(height=HEIGHT)
    )


def routing_weights(manifest: pl.DataFrame) -> alt.Chart:
    """Share of the next jobs per provider, one stacked bar per effect type."""
    return (
        alt.Chart(_data(manifest))
        .mark_bar()
        .encode(
            y=alt.Y("effect_type:N", title=None),
            x=alt.X(
                "weight:Q", title="share of the next jobs", axis=alt.Axis(format=".0%"), scale=alt.Scale(domain=[0, 1])
            ),
            color=alt.Color("provider_id:N", title="provider", scale=SCHEME),
            order=alt.Order("rank:Q"),
            tooltip=[
                "effect_type:N",
                "provider_id:N",
                "rank:Q",
                alt.Tooltip("weight:Q", format=".1%"),
                alt.Tooltip("score:Q", format=".3f"),
            ],
        )
        .properties(height=max(80, 40 * manifest["effect_type"].n_unique()))
    )


def top_provider_history(history: pl.DataFrame) -> alt.Chart:
    """Which provider each manifest version ranked first, per effect type over time."""
    return (
        alt.Chart(_data(history))
        .mark_point(filled=True, size=90)
        .encode(
            x=alt.X("published_at:T", title=None, axis=TIME_AXIS),
            y=alt.Y("effect_type:N", title=None),
            color=alt.Color("provider_id:N", title="ranked first", scale=SCHEME),
            tooltip=[
                "version:N",
                alt.Tooltip("published_at:T", format="%Y-%m-%d %H:%M"),
                "effect_type:N",
                "provider_id:N",
                alt.Tooltip("score:Q", format=".3f"),
            ],
        )
        .properties(height=max(80, 40 * history["effect_type"].n_unique()))
    )


def estimate_history(history: pl.DataFrame) -> alt.Chart:
    """Off-policy margin per routed job of each published manifest and of the one it
    replaced, with their 95 % intervals, over time (``data.estimate_history``)."""
    base = alt.Chart(_data(history)).encode(
        x=alt.X("estimated_at:T", title=None, axis=TIME_AXIS),
        color=alt.Color("policy:N", title=None, scale=SCHEME),
    )
    band = base.mark_area(opacity=0.2).encode(y=alt.Y("ci_low:Q", title="tokens per routed job"), y2="ci_high:Q")
    line = base.mark_line(point=True).encode(
        y="value:Q",
        tooltip=[
            alt.Tooltip("estimated_at:T", format="%Y-%m-%d %H:%M"),
            "version:N",
            "policy:N",
            alt.Tooltip("value:Q", format=".3f"),
            alt.Tooltip("ci_low:Q", format=".3f"),
            alt.Tooltip("ci_high:Q", format=".3f"),
        ],
    )
    return (band + line).properties(height=HEIGHT)


def budget_bars(burn: pl.DataFrame) -> alt.Chart:
    """Exploration share per effect type against the ε budget (the rule)."""
    data = _data(burn)
    bars = (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X("effect_type:N", title=None, axis=alt.Axis(labelAngle=0)),
            y=alt.Y("exploration_share:Q", title="share of user jobs exploring", axis=alt.Axis(format=".1%")),
            color=alt.condition("datum.exploration_share > datum.budget", alt.value("#c62828"), alt.value("#1565c0")),
            tooltip=[
                "effect_type:N",
                "user_jobs:Q",
                "exploration_jobs:Q",
                alt.Tooltip("exploration_share:Q", format=".2%"),
                alt.Tooltip("budget:Q", format=".1%"),
                alt.Tooltip("exploration_cost_usd:Q", format="$,.6~g"),
            ],
        )
    )
    rule = (
        alt.Chart(data)
        .mark_tick(color="#ff8f00", thickness=3, size=40)
        .encode(x="effect_type:N", y="budget:Q", tooltip=[alt.Tooltip("budget:Q", title="budget ε", format=".1%")])
    )
    return (bars + rule).properties(height=HEIGHT)


def forecast_chart(history: pl.DataFrame, fc: pl.DataFrame) -> alt.Chart:
    """Hourly margin USD: the last hours as a line, the forecast as a dashed line with its
    interval as a band.

    Args:
        history: hour, margin_usd.
        fc: ``Forecast.hourly`` rows of the margin_usd metric (hour, point, lower, upper).
    """
    past = (
        alt.Chart(_data(history))
        .mark_line(color="#1565c0")
        .encode(
            x=alt.X("hour:T", title=None, axis=TIME_AXIS),
            y=alt.Y("margin_usd:Q", title="margin per hour (USD)", axis=alt.Axis(format="$,.4~g")),
        )
    )
    data = _data(fc)
    band = alt.Chart(data).mark_area(opacity=0.2, color="#ff8f00").encode(x="hour:T", y="lower:Q", y2="upper:Q")
    point = (
        alt.Chart(data)
        .mark_line(color="#ff8f00", strokeDash=[5, 3])
        .encode(
            x="hour:T",
            y="point:Q",
            tooltip=[alt.Tooltip("hour:T", format="%Y-%m-%d %H:%M"), alt.Tooltip("point:Q", format="$,.6~g")],
        )
    )
    return (band + past + point).properties(height=HEIGHT)


def impact_bars(recs: pl.DataFrame) -> alt.Chart:
    """Projected margin impact (USD per day) per recommendation."""
    return (
        alt.Chart(_data(recs))
        .mark_bar()
        .encode(
            y=alt.Y("title:N", sort="-x", title=None, axis=alt.Axis(labelLimit=360)),
            x=alt.X(
                "projected_margin_impact_usd:Q",
                title="projected margin impact (USD / day)",
                axis=alt.Axis(format="$,.4~g"),
            ),
            color=alt.Color("type:N", title=None, scale=SCHEME),
            tooltip=[
                "title:N",
                "type:N",
                alt.Tooltip("projected_margin_impact_usd:Q", format="$,.4~g"),
                alt.Tooltip("confidence:Q", format=".0%"),
            ],
        )
        .properties(height=max(140, 44 * recs.height))
    )
