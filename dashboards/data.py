"""Data shaping for the dashboard pages: pure functions on Polars frames, no Streamlit, no
I/O. Money is USD, margins are fractions (0.25 = 25 %), times are UTC. Every margin is a
ratio of sums, as in ``economics.marginality``; the economics library does the arithmetic
wherever it has a function for it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from economics.decomposition import EFFECTS, MarginChange
from economics.forecast import Forecast, forecast_next_24h, hourly_totals
from economics.margin import margin_expr
from economics.marginality import WINDOWS, burn_rates, marginality_windows
from economics.matrix import provider_effect_matrix
from resources.schemas import QUALITY_METRICS

SOURCES = ("real", "simulated")
# Hours of history the forecast fits on: two weeks hold two daily cycles many times over.
FORECAST_HISTORY = timedelta(days=14)
USER_SELECTIONS = ("ranked", "exploration", "ab")  # jobs a user pays for (not shadow copies)
SUMS = ("executions", "tokens_charged", "cost_tokens", "revenue_usd", "cost_usd")
# Effect runs served from the result cache: counted apart from executions (no provider ran),
# their charge in the revenue at no cost, what they saved shown beside it.
CACHE_SUMS = ("cache_hits", "saved_cost_usd")


def _with_cache_sums(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with CACHE_SUMS (0 where null or absent: rows written before cache hits
    were costed)."""
    return frame.with_columns(
        cache_hits=(pl.col("cache_hits") if "cache_hits" in frame.columns else pl.lit(0)).fill_null(0).cast(pl.Int64),
        saved_cost_usd=(pl.col("saved_cost_usd") if "saved_cost_usd" in frame.columns else pl.lit(0.0))
        .fill_null(0.0)
        .cast(pl.Float64),
    )


# -- formatting ------------------------------------------------------------------------------
def fmt_usd(x: float | None) -> str:
    """USD for people: ``$12,345``, ``$12.35``, ``$0.123``, and two significant digits
    below a cent (``$0.0000024``: one local execution costs millionths); ``—`` for None."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    a = abs(x)
    if a >= 1000:
        body = f"{a:,.0f}"
    elif a >= 1:
        body = f"{a:,.2f}"
    elif a >= 0.01:
        body = f"{a:.3f}"
    elif a == 0:
        body = "0.00"
    else:
        body = f"{a:.{1 - math.floor(math.log10(a))}f}"
    return f"{'-' if x < 0 else ''}${body}"


def fmt_pct(x: float | None, digits: int = 1) -> str:
    """A fraction as a percentage (``0.2534`` → ``25.3 %``); ``—`` for None/NaN."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return f"{x * 100:.{digits}f} %"


def floor_minute(t: datetime) -> datetime:
    """``t`` without seconds: the dashboard's "as of" moves once a minute, so cached views
    stay valid for a minute and every page of a visit agrees on the windows."""
    return t.replace(second=0, microsecond=0)


# -- HUD ----------------------------------------------------------------------------------------
def hud_windows(costs: pl.DataFrame, now: datetime) -> pl.DataFrame:
    """Platform totals over the 1h / 24h / 7d windows ending at ``now``.

    Args:
        costs: execution_costs rows of one source (``finished_at``, ``provider_id``,
            ``effect_type``, ``status``, ``tokens_charged``, ``cost_tokens``,
            ``revenue_usd``, ``cost_usd``), at least the last 7 days.
        now: window end (UTC).

    Returns:
        One row per window in 1h, 24h, 7d order: window, hours, executions, revenue_usd,
        cost_usd, margin_usd, margin (fraction, null without revenue),
        cost_usd_per_hour (burn rate) and revenue_usd_per_hour. Zeros when nothing ran.
    """
    costs = costs.drop("source", strict=False)
    per_cell = marginality_windows(costs, now)
    totals = per_cell.group_by("window").agg(pl.col(c).sum() for c in SUMS)
    burn = burn_rates(costs, now).select("window", "hours", "cost_usd_per_hour", "revenue_usd_per_hour")
    return (
        burn.join(totals, on="window", how="left")
        .with_columns(
            pl.col("executions").fill_null(0).cast(pl.Int64),
            pl.col("tokens_charged").fill_null(0).cast(pl.Int64),
            pl.col("cost_tokens", "revenue_usd", "cost_usd").fill_null(0.0).cast(pl.Float64),
        )
        .with_columns(
            margin_usd=pl.col("revenue_usd") - pl.col("cost_usd"),
            margin=margin_expr(pl.col("tokens_charged"), pl.col("cost_tokens")),
        )
        .select(
            "window",
            "hours",
            "executions",
            "revenue_usd",
            "cost_usd",
            "margin_usd",
            "margin",
            "cost_usd_per_hour",
            "revenue_usd_per_hour",
        )
        .sort("hours")
    )


def forecast(cube: pl.DataFrame, now: datetime) -> Forecast | None:
    """Next-24h revenue, cost and margin from the complete hours before ``now``
    (``economics.forecast``), fitted on up to ``FORECAST_HISTORY`` starting at the first
    hour with executions.

    Args:
        cube: ``LakeReader.hourly_cube`` rows (``hour``, ``revenue_usd``, ``cost_usd``).
            ``hourly_totals`` only sums revenue and cost per hour, so hourly sums give the
            same series as the raw executions.

    Returns:
        The forecast, or None when no hour before ``now`` had an execution.
    """
    end = now.replace(minute=0, second=0, microsecond=0)
    start = end - FORECAST_HISTORY
    seen = cube.filter((pl.col("hour") >= start) & (pl.col("hour") < end))
    if seen.is_empty():
        return None
    first = seen["hour"].min()
    hourly = hourly_totals(seen.rename({"hour": "finished_at"}), max(first, start), end)
    return forecast_next_24h(hourly) if hourly.height else None


def forecast_view(cube: pl.DataFrame, fc: Forecast, hours: int = 48) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The margin USD forecast with the hours before it, for a chart.

    Returns:
        (history: hour, margin_usd — the last ``hours`` complete hours before the forecast,
        idle hours as 0; forecast: hour, point, lower, upper of margin_usd).
    """
    ahead = fc.hourly.filter(pl.col("metric") == "margin_usd").select("hour", "point", "lower", "upper")
    end = ahead["hour"].min()
    history = hourly_totals(cube.rename({"hour": "finished_at"}), end - timedelta(hours=hours), end)
    return history.select("hour", "margin_usd"), ahead


# -- margins -----------------------------------------------------------------------------------
def current_margins(windows: pl.DataFrame, by: str) -> pl.DataFrame:
    """Gold ``marginality_windows`` rows (one source) summed per window and ``by``.

    Args:
        windows: marginality_windows rows.
        by: ``provider_id`` or ``effect_type``.

    Returns:
        window, window_end, <by>, executions, succeeded, cache_hits, revenue_usd (cache hits'
        charge included), cost_usd, margin_usd, margin (fraction, null without charge),
        success_rate (of the executions), saved_cost_usd (what the cache hits' reused outputs
        cost to make); sorted by window length then margin USD (largest first).
    """
    order = {name: i for i, name in enumerate(WINDOWS)}
    return (
        _with_cache_sums(windows)
        .group_by("window", by)
        .agg(pl.col("window_end").max(), *(pl.col(c).sum() for c in (*SUMS, "succeeded", *CACHE_SUMS)))
        .with_columns(
            margin_usd=pl.col("revenue_usd") - pl.col("cost_usd"),
            margin=margin_expr(pl.col("tokens_charged"), pl.col("cost_tokens")),
            success_rate=pl.when(pl.col("executions") > 0).then(pl.col("succeeded") / pl.col("executions")),
        )
        .with_columns(_o=pl.col("window").replace_strict(order, default=99))
        .sort("_o", "margin_usd", descending=[False, True])
        .select(
            "window",
            "window_end",
            by,
            "executions",
            "succeeded",
            "cache_hits",
            "revenue_usd",
            "cost_usd",
            "margin_usd",
            "margin",
            "success_rate",
            "saved_cost_usd",
        )
    )


def revenue_vs_cost(margins: pl.DataFrame, by: str = "effect_type") -> pl.DataFrame:
    """``current_margins`` of one window in long form for a grouped bar chart:
    <by>, measure ('revenue' / 'cost'), usd."""
    return (
        margins.select(by, revenue="revenue_usd", cost="cost_usd")
        .unpivot(["revenue", "cost"], index=by, variable_name="measure", value_name="usd")
        .sort(by, "measure", descending=[False, True])
    )


def margin_history(cube: pl.DataFrame, by: str, window: str, start: datetime, end: datetime) -> pl.DataFrame:
    """Margin over the trailing ``window`` at the end of every hour in [start, end).

    Args:
        cube: ``LakeReader.hourly_cube`` rows.
        by: ``provider_id`` or ``effect_type``.
        window: a key of ``economics.marginality.WINDOWS`` (1h, 24h, 7d).
        start, end: the hours to chart (UTC, floored to the hour).

    Returns:
        hour (end of the trailing window), <by>, revenue_usd, cost_usd, executions (sums over
        the trailing window), margin (fraction, null when nothing was charged). Idle hours
        count as zero, so a 24h point is always 24 clock hours.
    """
    size = int(WINDOWS[window].total_seconds() // 3600)
    start, end = (t.replace(minute=0, second=0, microsecond=0) for t in (start, end))
    lead = start - timedelta(hours=size - 1)
    per = (
        cube.filter((pl.col("hour") >= lead) & (pl.col("hour") < end))
        .group_by("hour", by)
        .agg(pl.col(c).sum() for c in SUMS)
    )
    if per.is_empty():
        return pl.DataFrame(
            schema={
                "hour": cube.schema["hour"],
                by: pl.String,
                "revenue_usd": pl.Float64,
                "cost_usd": pl.Float64,
                "executions": pl.Int64,
                "margin": pl.Float64,
            }
        )
    hours = pl.DataFrame(
        {"hour": pl.datetime_range(lead, end, timedelta(hours=1), closed="left", time_unit="us", eager=True)}
    ).cast({"hour": cube.schema["hour"]})
    grid = hours.join(per.select(by).unique(), how="cross")
    dense = (
        grid.join(per, on=["hour", by], how="left").with_columns(pl.col(c).fill_null(0) for c in SUMS).sort(by, "hour")
    )
    rolled = dense.with_columns(pl.col(c).rolling_sum(size, min_samples=1).over(by) for c in SUMS)
    return (
        rolled.filter(pl.col("hour") >= start)
        .with_columns(
            hour=pl.col("hour") + timedelta(hours=1),
            margin=margin_expr(pl.col("tokens_charged"), pl.col("cost_tokens")),
        )
        .select("hour", by, "revenue_usd", "cost_usd", pl.col("executions").cast(pl.Int64), "margin")
    )


# -- creation vs runs --------------------------------------------------------------------------
JOB_KINDS = ("creation", "run")  # economics.telemetry CREATION, RUN


def job_kind_totals(totals: pl.DataFrame) -> pl.DataFrame:
    """Executions' money per job kind (creation: the test batches that make an effect; run: a
    user's run of a published effect).

    Args:
        totals: ``LakeReader.job_kind_totals`` rows (job_kind, executions, tokens_charged,
            cost_tokens, revenue_usd, cost_usd).

    Returns:
        job_kind (creation first), executions, cache_hits (runs served from the result cache:
        their charge is in revenue_usd, at no cost), revenue_usd, cost_usd, margin_usd, margin
        (fraction, null when nothing was charged), saved_cost_usd; a zero row for a kind with
        neither.
    """
    kinds = pl.DataFrame({"job_kind": list(JOB_KINDS)})
    return (
        _with_cache_sums(kinds.join(totals, on="job_kind", how="left"))
        .with_columns(pl.col(c).fill_null(0) for c in SUMS)
        .with_columns(
            margin_usd=pl.col("revenue_usd") - pl.col("cost_usd"),
            margin=margin_expr(pl.col("tokens_charged"), pl.col("cost_tokens")),
        )
        .select(
            "job_kind",
            pl.col("executions").cast(pl.Int64),
            "cache_hits",
            "revenue_usd",
            "cost_usd",
            "margin_usd",
            "margin",
            "saved_cost_usd",
        )
    )


def jobs_by_kind(jobs: pl.DataFrame, since: datetime) -> pl.DataFrame:
    """Jobs finished after ``since`` per kind, from gold ``job_margins``: what users paid per
    job and what it cost, and what the result cache saved (runs served from it ran nothing).

    Returns:
        job_kind (creation first), jobs, tokens_charged, revenue_usd, cost_usd, margin,
        cache_hits, saved_cost_usd; a zero row for a kind with no jobs.
    """
    recent = jobs.filter(pl.col("finished_at") > since).with_columns(
        job_kind=pl.col("job_kind").fill_null("creation"), cache_hit=pl.col("cache_hit").fill_null(False)
    )
    per = recent.group_by("job_kind").agg(
        jobs=pl.len().cast(pl.Int64),
        tokens_charged=pl.col("tokens_charged").sum().cast(pl.Int64),
        revenue_usd=pl.col("revenue_usd").sum(),
        cost_usd=pl.col("cost_usd").sum(),
        cost_tokens=pl.col("cost_tokens").sum(),
        cache_hits=pl.col("cache_hit").sum().cast(pl.Int64),
        saved_cost_usd=pl.col("saved_cost_usd").sum(),
    )
    return (
        pl.DataFrame({"job_kind": list(JOB_KINDS)})
        .join(per, on="job_kind", how="left")
        .with_columns(pl.col("jobs", "tokens_charged", "cache_hits").fill_null(0))
        .with_columns(pl.col("revenue_usd", "cost_usd", "cost_tokens", "saved_cost_usd").fill_null(0.0))
        .with_columns(margin=margin_expr(pl.col("tokens_charged"), pl.col("cost_tokens")))
        .select(
            "job_kind", "jobs", "tokens_charged", "revenue_usd", "cost_usd", "margin", "cache_hits", "saved_cost_usd"
        )
    )


PERIOD_PRESETS: dict[str, timedelta] = {
    "last 24h vs the 24h before": timedelta(hours=24),
    "last 7d vs the 7d before": timedelta(days=7),
    "last 1h vs the hour before": timedelta(hours=1),
}


def preset_periods(length: timedelta, now: datetime) -> tuple[tuple[datetime, datetime], tuple[datetime, datetime]]:
    """(period A, period B): B = the ``length`` ending at ``now``, A = the one before it."""
    return (now - 2 * length, now - length), (now - length, now)


def decomposition_cells(change: MarginChange) -> pl.DataFrame:
    """The per-cell decomposition for a table: largest change first, effects rounded to
    1e-9 USD (the Shapley formulas leave float noise like 4e-16 where a factor did not move)."""
    usd = [*EFFECTS, "change", "margin_usd_a", "margin_usd_b"]
    return change.cells.with_columns(pl.col(usd).round(9)).sort(pl.col("change").abs(), descending=True)


def decomposition_parts(change: MarginChange) -> pl.DataFrame:
    """The four Shapley effects of a margin change for a chart: factor, usd (their sum is
    ``change.change``)."""
    names = {"price_effect": "price", "cost_effect": "cost per run", "volume_effect": "volume", "mix_effect": "mix"}
    return pl.DataFrame({"factor": [names[e] for e in EFFECTS], "usd": [float(getattr(change, e)) for e in EFFECTS]})


# -- providers ---------------------------------------------------------------------------------
def execution_matrix(runs: pl.DataFrame, quality: pl.DataFrame, computed_at: datetime) -> pl.DataFrame:
    """Quality × cost × speed per provider × effect type from executions
    (``economics.matrix.provider_effect_matrix``).

    Args:
        runs: execution_costs rows (task_id, provider_id, effect_type, status, duration_ms,
            cost_usd, tokens_charged, cost_tokens) of one source.
        quality: quality_scores rows (task_id, composite); simulated runs have none.
    """
    scored = runs.join(quality.select("task_id", "composite").unique("task_id"), on="task_id", how="left")
    return provider_effect_matrix(scored, "executions", computed_at)


def benchmark_matrix(matrix: pl.DataFrame) -> pl.DataFrame:
    """The latest benchmark's rows of gold ``provider_effect_matrix`` (source 'benchmark')."""
    bench = matrix.filter(pl.col("source") == "benchmark")
    if bench.is_empty():
        return bench
    latest = bench.sort("computed_at")["benchmark_id"][-1]
    return bench.filter(pl.col("benchmark_id") == latest).sort("effect_type", "provider_id")


def latest_health(registry: pl.DataFrame) -> pl.DataFrame:
    """The newest provider_registry snapshot of every provider: provider_id, mode, healthy,
    breaker_state, health_detail, latency_ms, checked_at, effect_types (comma-joined)."""
    columns = [
        "provider_id",
        "mode",
        "healthy",
        "breaker_state",
        "health_detail",
        "latency_ms",
        "checked_at",
        pl.col("effect_types").list.join(", "),
    ]
    if registry.is_empty():
        return registry.select(columns)
    return registry.sort("checked_at").group_by("provider_id").last().select(columns).sort("provider_id")


def success_rates(cube: pl.DataFrame, now: datetime) -> pl.DataFrame:
    """Per provider: executions and success rate over the last 24h and 7d (whole hours of
    the cube that end by ``now``): provider_id, runs_24h, success_24h, runs_7d, success_7d."""
    cols = []
    for name in ("24h", "7d"):
        inside = pl.col("hour") >= now - WINDOWS[name]
        runs = pl.col("executions").filter(inside).sum()
        ok = pl.col("executions").filter(inside & (pl.col("status") == "succeeded")).sum()
        cols += [runs.alias(f"runs_{name}"), pl.when(runs > 0).then(ok / runs).alias(f"success_{name}")]
    return cube.filter(pl.col("hour") < now).group_by("provider_id").agg(cols).sort("provider_id")


# -- routing -----------------------------------------------------------------------------------
MANIFEST_COLUMNS = (
    "effect_type",
    "rank",
    "provider_id",
    "weight",
    "forced",
    "score",
    "expected_cost_usd",
    "expected_quality",
    "expected_duration_ms",
    "expected_success_rate",
    "confidence",
    "executions",
    "reason",
    "breaker",
    "available",
)
# What an entry of a manifest published before breakers were part of it stands for.
_ENTRY_DEFAULTS = {"breaker": "closed", "available": True}


def manifest_table(manifest: dict | None) -> pl.DataFrame:
    """The entries of a published manifest (``ManifestStore.read()``), one row per effect
    type × provider in rank order, columns ``MANIFEST_COLUMNS``."""
    rows = [
        {"effect_type": effect, **{c: e.get(c, _ENTRY_DEFAULTS.get(c)) for c in MANIFEST_COLUMNS if c != "effect_type"}}
        for effect, entries in sorted(((manifest or {}).get("effects") or {}).items())
        for e in entries
    ]
    schema = {
        "effect_type": pl.String,
        "rank": pl.Int64,
        "provider_id": pl.String,
        "weight": pl.Float64,
        "forced": pl.Boolean,
        "score": pl.Float64,
        "expected_cost_usd": pl.Float64,
        "expected_quality": pl.Float64,
        "expected_duration_ms": pl.Float64,
        "expected_success_rate": pl.Float64,
        "confidence": pl.Float64,
        # effective executions: discounted (economics.bandit), so fractional
        "executions": pl.Float64,
        "reason": pl.String,
        "breaker": pl.String,
        "available": pl.Boolean,
    }
    return pl.DataFrame(rows, schema=schema).sort("effect_type", "rank")


# The two manifests of a change as the Routing page names them.
POLICY_LABELS = {"current": "before (replaced manifest)", "candidate": "after (published manifest)"}
ESTIMATE_SCHEMA = {
    "policy": pl.String,
    "version": pl.String,
    "estimator": pl.String,
    "value": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "decisions": pl.Int64,
    "ess": pl.Float64,
}


def change_estimate(manifest: dict | None) -> pl.DataFrame:
    """The off-policy estimates published with ``manifest`` (its ``off_policy`` field,
    ``economics.off_policy.change_estimates``): one row per manifest (``policy`` labelled by
    POLICY_LABELS, before first) × estimator, values in tokens per routed job; empty when the
    manifest has none (an override, or nothing logged yet)."""
    block = (manifest or {}).get("off_policy") or {}
    rows = [
        {
            "policy": POLICY_LABELS[e["policy"]],
            "version": e["policy_version"],
            **{c: e.get(c) for c in ("estimator", "value", "ci_low", "ci_high", "decisions", "ess")},
        }
        for e in block.get("estimates", [])
    ]
    order = {label: i for i, label in enumerate(reversed(POLICY_LABELS.values()))}
    return (
        pl.DataFrame(rows, schema=ESTIMATE_SCHEMA)
        .with_columns(_o=pl.col("policy").replace_strict(order, default=9, return_dtype=pl.Int64))
        .sort("_o", "estimator")
        .drop("_o")
    )


def estimate_history(rows: pl.DataFrame, estimator: str = "dr") -> pl.DataFrame:
    """Gold ``routing_estimates`` of one estimator as one row per published version and
    manifest: estimated_at, version, policy (POLICY_LABELS), value, ci_low, ci_high, oldest
    first — the published manifest's estimate against the one it replaced, over time."""
    schema = {
        "estimated_at": pl.Datetime("us", "UTC"),
        "version": pl.String,
        "policy": pl.String,
        "value": pl.Float64,
        "ci_low": pl.Float64,
        "ci_high": pl.Float64,
    }
    if rows.is_empty():
        return pl.DataFrame(schema=schema)
    return (
        rows.filter(pl.col("estimator") == estimator)
        .with_columns(policy=pl.col("policy").replace_strict(POLICY_LABELS, default=pl.col("policy")))
        .select(list(schema))
        .cast(schema)
        .sort("estimated_at", "policy")
    )


def manifest_history(rows: pl.DataFrame) -> pl.DataFrame:
    """Gold ``routing_manifests`` reduced to the provider ranked first per version and
    effect type: version, published_at, effect_type, provider_id, score, providers (how many
    were ranked), newest first."""
    if rows.is_empty():
        return pl.DataFrame(
            schema={
                "version": pl.String,
                "published_at": rows.schema["published_at"],
                "effect_type": pl.String,
                "provider_id": pl.String,
                "score": pl.Float64,
                "providers": pl.UInt32,
            }
        )
    ranked = rows.group_by("version", "effect_type").agg(providers=pl.len())
    return (
        rows.filter(pl.col("rank") == 1)
        .join(ranked, on=["version", "effect_type"])
        .select("version", "published_at", "effect_type", "provider_id", "score", "providers")
        .sort("published_at", "effect_type", descending=[True, False])
    )


def exploration_burn(cube: pl.DataFrame, since: datetime, epsilon: float) -> pl.DataFrame:
    """How much of the exploration budget (ε of the user jobs) each effect type used.

    Args:
        cube: ``LakeReader.hourly_cube`` rows; hours ≥ ``since`` are counted.
        epsilon: the manifest's exploration rate (the budget share).

    Returns:
        effect_type, user_jobs (ranked + exploration + A/B), exploration_jobs,
        exploration_share, budget (= ε), budget_used (share / ε; > 1 means over budget),
        exploration_cost_usd, exploration_margin and exploited_margin (margin of the
        exploring vs the ranked jobs: what exploring costs in margin).
    """
    user = cube.filter((pl.col("hour") >= since) & pl.col("selection").is_in(USER_SELECTIONS))
    explo = pl.col("selection") == "exploration"

    def margin_of(mask: pl.Expr) -> pl.Expr:
        return margin_expr(pl.col("tokens_charged").filter(mask).sum(), pl.col("cost_tokens").filter(mask).sum())

    out = user.group_by("effect_type").agg(
        user_jobs=pl.col("executions").sum(),
        exploration_jobs=pl.col("executions").filter(explo).sum(),
        exploration_cost_usd=pl.col("cost_usd").filter(explo).sum(),
        exploration_margin=margin_of(explo),
        exploited_margin=margin_of(pl.col("selection") == "ranked"),
    )
    return (
        out.with_columns(
            exploration_share=pl.col("exploration_jobs") / pl.col("user_jobs"), budget=pl.lit(float(epsilon))
        )
        .with_columns(budget_used=pl.when(pl.col("budget") > 0).then(pl.col("exploration_share") / pl.col("budget")))
        .select(
            "effect_type",
            "user_jobs",
            "exploration_jobs",
            "exploration_share",
            "budget",
            "budget_used",
            "exploration_cost_usd",
            "exploration_margin",
            "exploited_margin",
        )
        .sort("effect_type")
    )


def shadow_results(cube: pl.DataFrame, since: datetime, quality: pl.DataFrame | None = None) -> pl.DataFrame:
    """Shadow providers next to the ranked ones of the same effect type.

    Args:
        cube: ``LakeReader.hourly_cube`` rows; hours ≥ ``since`` are counted.
        quality: per task quality (task_id, provider_id, effect_type, selection, composite)
            when known (real executions; simulated runs carry none).

    Returns:
        provider_id, effect_type, runs, success_rate, mean_cost_usd, mean_duration_ms,
        mean_quality (shadow), ranked_mean_cost_usd, ranked_mean_quality (the ranked jobs of
        that effect type); empty when no shadow copy ran.
    """
    recent = cube.filter(pl.col("hour") >= since)
    ok = pl.col("status") == "succeeded"

    def stats(frame: pl.DataFrame, keys: list[str], prefix: str = "") -> pl.DataFrame:
        runs = pl.col("executions").sum()
        return frame.group_by(keys).agg(
            runs.alias(f"{prefix}runs"),
            (pl.col("executions").filter(ok).sum() / runs).alias(f"{prefix}success_rate"),
            (pl.col("cost_usd").sum() / runs).alias(f"{prefix}mean_cost_usd"),
            (pl.col("duration_ms").sum() / runs).alias(f"{prefix}mean_duration_ms"),
        )

    shadow = stats(recent.filter(pl.col("selection") == "shadow"), ["provider_id", "effect_type"])
    ranked = stats(recent.filter(pl.col("selection") == "ranked"), ["effect_type"], "ranked_")
    if quality is not None and not quality.is_empty():
        q = quality.filter(pl.col("composite").is_not_null())
        shadow_q = (
            q.filter(pl.col("selection") == "shadow")
            .group_by("provider_id", "effect_type")
            .agg(mean_quality=pl.col("composite").mean())
        )
        shadow = shadow.join(shadow_q, on=["provider_id", "effect_type"], how="left")
        ranked = ranked.join(
            q.filter(pl.col("selection") == "ranked")
            .group_by("effect_type")
            .agg(ranked_mean_quality=pl.col("composite").mean()),
            on="effect_type",
            how="left",
        )
    else:
        shadow = shadow.with_columns(mean_quality=pl.lit(None, pl.Float64))
        ranked = ranked.with_columns(ranked_mean_quality=pl.lit(None, pl.Float64))
    return (
        shadow.join(ranked, on="effect_type", how="left")
        .select(
            "provider_id",
            "effect_type",
            "runs",
            "success_rate",
            "mean_cost_usd",
            "mean_duration_ms",
            "mean_quality",
            "ranked_mean_cost_usd",
            "ranked_mean_quality",
        )
        .sort("effect_type", "provider_id")
    )


# -- approvals ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ApprovalItem:
    """One pending approval request, ready to show.

    Attributes:
        approval_id, video_id, effect_type, provider_id (the winner's), user_id, requested_at.
        input_key: media key of the video the outputs were made from (the proxy), or None.
        outputs: one row per provider output of the video — task_id, effect_type,
            provider_id, selection, status, the QUALITY_METRICS columns, gate_passed,
            gate_failures (comma-joined), rank, cost_usd, margin, output_key (media key or
            null), winner (bool) — the winner's effect type first, then by effect type and rank.
    """

    approval_id: str
    video_id: str
    effect_type: str
    provider_id: str
    user_id: str | None
    requested_at: datetime | None
    input_key: str | None
    outputs: pl.DataFrame


def quality_summary(output: dict) -> str:
    """An output's quality vector as compact Markdown (three short lines, 3 decimals;
    ``—`` where it was not measured)."""

    def v(name: str) -> str:
        x = output.get(name)
        return "—" if x is None else f"{x:.3f}"

    return (
        f"composite **{v('composite')}**  \nfidelity **{v('fidelity')}** · artifacts **{v('artifacts')}**  \n"
        f"style **{v('style_adherence')}** · temporal **{v('temporal_consistency')}** · "
        f"pHash **{v('perceptual_hash_distance')}**"
    )


def approval_item(request: dict, provider_outputs: pl.DataFrame, input_key: str | None) -> ApprovalItem:
    """Build an ApprovalItem from an approval_requests row (its ``comparison`` JSON holds
    every output's quality vector, cost and margin) and the video's provider_outputs rows
    (for the media keys: the comparison only has public URLs)."""
    comparison = json.loads(request["comparison"] or "{}")
    winner = comparison.get("winner_task_id") or request["task_id"]
    keys = dict(zip(provider_outputs["task_id"], provider_outputs["output_key"], strict=True))
    rows = [
        {
            "task_id": o.get("task_id"),
            "effect_type": o.get("effect_type"),
            "provider_id": o.get("provider_id"),
            "selection": o.get("selection"),
            "status": o.get("status"),
            **{q: o.get(q) for q in QUALITY_METRICS},
            "gate_passed": o.get("gate_passed"),
            "gate_failures": ", ".join(o.get("gate_failures") or []),
            "rank": o.get("rank"),
            "cost_usd": o.get("cost_usd"),
            "margin": o.get("margin"),
            "output_key": keys.get(o.get("task_id")),
            "winner": o.get("task_id") == winner,
        }
        for o in comparison.get("outputs", [])
    ]
    schema = {
        "task_id": pl.String,
        "effect_type": pl.String,
        "provider_id": pl.String,
        "selection": pl.String,
        "status": pl.String,
        **dict.fromkeys(QUALITY_METRICS, pl.Float64),
        "gate_passed": pl.Boolean,
        "gate_failures": pl.String,
        "rank": pl.Int64,
        "cost_usd": pl.Float64,
        "margin": pl.Float64,
        "output_key": pl.String,
        "winner": pl.Boolean,
    }
    outputs = (
        pl.DataFrame(rows, schema=schema)
        .with_columns(_first=pl.col("effect_type") != request["effect_type"])
        .sort("_first", "effect_type", "rank", nulls_last=True)
        .drop("_first")
    )
    return ApprovalItem(
        request["approval_id"],
        request["video_id"],
        request["effect_type"],
        request["provider_id"],
        request.get("user_id"),
        request.get("requested_at"),
        input_key,
        outputs,
    )


# -- bottlenecks -------------------------------------------------------------------------------
def newest_first(df: pl.DataFrame, source: str | None = None) -> pl.DataFrame:
    """An undeclared table for display: rows of ``source`` only when it has a ``source``
    column, newest first by its first datetime column when it has one."""
    if source is not None and "source" in df.columns:
        df = df.filter(pl.col("source") == source)
    times = [c for c, t in df.schema.items() if isinstance(t, pl.Datetime)]
    return df.sort(times[0], descending=True, nulls_last=True) if times else df


def admin_flags(open_classes: pl.DataFrame, actions: pl.DataFrame) -> pl.DataFrame:
    """What the automatic actions left for an admin, one row per open classification: users
    whose tokens run out (projected hours, balance, whether they were told), workflows flagged
    for review (the suggested change), and scale-up / warm-pool recommendations awaiting
    approval. Columns: category, who, what, action (latest recorded)."""
    cols = {"category": pl.String, "who": pl.String, "what": pl.String, "action": pl.String}
    if open_classes.is_empty():
        return pl.DataFrame(schema=cols)
    latest = {}
    if not actions.is_empty():
        for a in actions.sort("taken_at").iter_rows(named=True):
            latest[a["classification_id"]] = a
    rows = []
    for r in open_classes.iter_rows(named=True):
        a = latest.get(r["classification_id"])
        numbers = json.loads(r["evidence"] or "{}").get("numbers", {})
        if r["category"] == "TOKEN_DEPLETION_RISK":
            hours = numbers.get("hours_to_exhaustion")
            what = (
                f"balance {numbers.get('tokens_available', '?')} tokens runs out in "
                f"{hours:.1f} h at {numbers.get('token_burn_per_hour', 0):,.0f} tokens/h"
                if hours is not None
                else "balance running out"
            )
        elif a is not None and a["outcome"] in ("recommended", "flagged"):
            what = a["detail"]
        else:
            continue
        action = f"{a['action']}: {a['outcome']}" if a is not None else "—"
        who = r["user_id"] or " · ".join(x for x in (r["provider_id"], r["effect_type"]) if x)
        rows.append({"category": r["category"], "who": who, "what": what, "action": action})
    return pl.DataFrame(rows, schema=cols)
