"""Metric streams: what the signal detectors watch, at a 5-minute grain, in one typed table.

Rows (``STREAM_SCHEMA``), one per 5-minute bucket (``bucket_start``, UTC, left-closed:
``bucket_start ≤ finished_at < bucket_start + 5 min``) and scope:

* ``provider_effect`` — per provider × effect type × source (real / simulated never mix):
  runs, succeeded, p50/p95 latency (queue wait + work, ms), p50/p95 queue wait (ms), error
  rate and its split — throttling (``telemetry.THROTTLE_CLASSES``, the 429s), timeouts,
  other — plus ``errors_by_class`` (error class → count), cost per run (USD, the
  ``execution_costs`` total), the bucket's cost and its cold-start (startup) part, margin
  (ratio of sums, ``economics.margin``) and cold-start share (tasks that started a burst,
  ``cost_model.cold_starts``);
* ``instance_type`` — per instance type × source: the same run, latency and error columns,
  cold-start share, and utilisation (busy compute-seconds / provisioned seconds of the
  bucket's bursts, ``cost_model.measure_bursts``);
* ``user`` — per user: tokens consumed in the bucket, burn rate (tokens / hour over the
  trailing hour ending with the bucket), and, on the user's latest bucket, the tokens
  available now (``ledger.balances``) and the projected hours to exhaustion
  (available / burn rate; null when nothing burns).

``stream`` names the stream (its key columns joined, ``stream_key``). Columns that do not
apply to a scope are null. Pure: Polars only.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TypeVar

import polars as pl

from economics.cost_model import DEFAULT_KEEP_WARM_SECONDS, cold_starts, measure_bursts, task_start
from economics.ledger import CONSUME, balances
from economics.margin import margin_expr
from economics.telemetry import THROTTLE_CLASSES, TIMEOUT_CLASSES

GRAIN = timedelta(minutes=5)
GRAIN_TEXT = "5m"
# The burn rate looks back an hour: long enough to smooth a single video's charge, short
# enough that a user who just started a batch shows up within the hour.
BURN_WINDOW = timedelta(hours=1)
SCOPES = ("provider_effect", "instance_type", "user")
# A cycle recomputes the execution scopes from this long before the newest bucket it wrote,
# so an event up to an hour late still lands in its bucket (the economics cycle's margin too);
# a later one is counted by a full recompute.
LATE_MARGIN = timedelta(hours=1)
# Events read before the first recomputed bucket: the earlier tasks of each fleet, which decide
# whether a task there was a cold start (the keep-warm period plus the task's own duration).
LEAD_IN = timedelta(hours=1)
# Execution-scope buckets a recompute computes at a time (``streams_in_chunks``): a twelfth of
# the detectors' 3-day history, so a first cycle's joins, sorts and groups hold that much of it
# at once (at 10 M executions the whole window in one go peaked at 14 GB, docs/signals.md).
STREAM_CHUNK = timedelta(hours=6)
# The ``execution_costs`` columns the streams read (beside ``task_id``).
COST_COLUMNS = ("cost_usd", "startup_cost_usd", "tokens_charged", "cost_tokens")

_Frame = TypeVar("_Frame", pl.DataFrame, pl.LazyFrame)

UTC_TS = pl.Datetime("us", "UTC")
ERROR_COUNT = pl.Struct({"error_class": pl.String, "count": pl.Int64})
_STREAM_SCHEMA_COLUMNS: dict[str, pl.DataType | type[pl.DataType]] = {
    "bucket_start": UTC_TS,
    "stream": pl.String,
    "scope": pl.String,
    "provider_id": pl.String,
    "effect_type": pl.String,
    "instance_type": pl.String,
    "user_id": pl.String,
    "source": pl.String,
    "runs": pl.Int64,
    "succeeded": pl.Int64,
    "p50_latency_ms": pl.Float64,
    "p95_latency_ms": pl.Float64,
    "p50_queue_wait_ms": pl.Float64,
    "p95_queue_wait_ms": pl.Float64,
    "error_rate": pl.Float64,
    "throttle_rate": pl.Float64,
    "timeout_rate": pl.Float64,
    "other_error_rate": pl.Float64,
    "errors_by_class": pl.List(ERROR_COUNT),
    "cost_per_run_usd": pl.Float64,
    "cost_usd": pl.Float64,
    "startup_cost_usd": pl.Float64,
    "margin": pl.Float64,
    "cold_start_share": pl.Float64,
    "utilisation": pl.Float64,
    "tokens_burned": pl.Int64,
    "token_burn_per_hour": pl.Float64,
    "tokens_available": pl.Int64,
    "hours_to_exhaustion": pl.Float64,
}
STREAM_SCHEMA = pl.Schema(_STREAM_SCHEMA_COLUMNS)
# The metrics the detectors run on, per scope (docs/signals.md).
WATCHED: dict[str, tuple[str, ...]] = {
    "provider_effect": (
        "p95_latency_ms",
        "p95_queue_wait_ms",
        "error_rate",
        "throttle_rate",
        "cost_per_run_usd",
        "margin",
        "cold_start_share",
    ),
    "instance_type": ("p95_queue_wait_ms", "utilisation", "cold_start_share"),
    "user": ("token_burn_per_hour",),
}
EXECUTION_COLUMNS = (
    "task_id",
    "provider_id",
    "effect_type",
    "instance_type",
    "status",
    "duration_ms",
    "queue_wait_ms",
    "compute_seconds",
    "error_class",
    "source",
    "finished_at",
)


def _bucket(col: str) -> pl.Expr:
    return pl.col(col).dt.truncate(GRAIN_TEXT).alias("bucket_start")


def _run_aggs() -> dict[str, pl.Expr]:
    failed = pl.col("status") != "succeeded"
    cls = pl.col("error_class").fill_null("Unknown")
    runs = pl.len()
    return {
        "runs": runs.cast(pl.Int64),
        "succeeded": (~failed).sum().cast(pl.Int64),
        "p50_latency_ms": pl.col("_latency").quantile(0.5, "linear"),
        "p95_latency_ms": pl.col("_latency").quantile(0.95, "linear"),
        "p50_queue_wait_ms": pl.col("queue_wait_ms").cast(pl.Float64).quantile(0.5, "linear"),
        "p95_queue_wait_ms": pl.col("queue_wait_ms").cast(pl.Float64).quantile(0.95, "linear"),
        "error_rate": failed.sum() / runs,
        "throttle_rate": (failed & cls.is_in(THROTTLE_CLASSES)).sum() / runs,
        "timeout_rate": (failed & cls.is_in(TIMEOUT_CLASSES)).sum() / runs,
        "other_error_rate": (failed & ~cls.is_in(THROTTLE_CLASSES | TIMEOUT_CLASSES)).sum() / runs,
        "cold_start_share": pl.col("cold_start").mean(),
    }


def _errors_by_class(runs: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    counted = (
        runs.filter(pl.col("status") != "succeeded")
        .with_columns(error_class=pl.col("error_class").fill_null("Unknown"))
        .group_by(*keys, "error_class")
        .agg(count=pl.len().cast(pl.Int64))
        .sort("count", "error_class", descending=[True, False])
    )
    return counted.group_by(*keys).agg(errors_by_class=pl.struct("error_class", "count"))


def metric_streams(
    executions: pl.DataFrame,
    costs: pl.DataFrame,
    ledger: pl.DataFrame,
    keep_warm_seconds: float = DEFAULT_KEEP_WARM_SECONDS,
) -> pl.DataFrame:
    """The 5-minute metric streams (module docstring), ``STREAM_SCHEMA``, sorted by scope,
    keys and bucket.

    Args:
        executions: one row per finished task (``telemetry.finished_executions`` with
            ``EXECUTION_COLUMNS``): telemetry, ``finished_at`` UTC.
        costs: ``execution_costs`` rows (``task_id``, ``cost_usd``, ``startup_cost_usd``,
            ``tokens_charged``, ``cost_tokens``) for those tasks; tasks without a row count with null cost.
        ledger: ``ledger_entries`` rows (all of them: the balance needs the history; the
            burn uses the consumption entries inside the executions' time span and after).
        keep_warm_seconds: the rate card's keep-warm period (what makes a start cold).
    """
    return _streams(with_costs(executions, costs), ledger, keep_warm_seconds)


def with_costs(executions: _Frame, costs: _Frame) -> _Frame:
    """The executions with their ``COST_COLUMNS`` (null without a cost row; ``execution_costs``
    has one row a task), eager or lazy (a lazy plan reads only those columns of ``costs``);
    no executions, no join (``costs`` may then have no schema)."""
    if isinstance(executions, pl.DataFrame) and executions.is_empty():
        return executions
    return executions.join(costs.select("task_id", *COST_COLUMNS), on="task_id", how="left")


def _streams(costed: pl.DataFrame, ledger: pl.DataFrame, keep_warm_seconds: float) -> pl.DataFrame:
    """``metric_streams`` of executions that carry their costs (``with_costs``)."""
    frames = []
    if not costed.is_empty():
        runs = (
            costed.with_columns(
                source=pl.col("source").fill_null("real"),
                _latency=(pl.col("queue_wait_ms").fill_null(0) + pl.col("duration_ms")).cast(pl.Float64),
            )
            .pipe(cold_starts, keep_warm_seconds, "provider_id")
            .with_columns(_bucket("finished_at"))
        )
        keys = ["bucket_start", "provider_id", "effect_type", "source"]
        per_provider = (
            runs.group_by(keys)
            .agg(
                **_run_aggs(),
                instance_type=pl.col("instance_type").drop_nulls().mode().first(),
                cost_usd=pl.col("cost_usd").sum(),
                startup_cost_usd=pl.col("startup_cost_usd").sum(),
                cost_per_run_usd=pl.col("cost_usd").mean(),
                _charged=pl.col("tokens_charged").sum(),
                _cost_tokens=pl.col("cost_tokens").sum(),
            )
            .with_columns(margin=margin_expr("_charged", "_cost_tokens"), scope=pl.lit("provider_effect"))
            .join(_errors_by_class(runs, keys), on=keys, how="left")
        )
        frames.append(per_provider)

        fleet = runs.filter(pl.col("instance_type").is_not_null()).drop("cold_start")
        fleet = fleet.pipe(cold_starts, keep_warm_seconds, "instance_type")
        fkeys = ["bucket_start", "instance_type", "source"]
        # One integer per fleet and bucket (utilisation is measured per bucket): sorting and
        # grouping by it costs half of what a joined string key did.
        fleet = fleet.with_columns(_fleet=pl.struct(*fkeys).rank("dense"))
        used = measure_bursts(fleet, keep_warm_seconds, by="_fleet").select("_fleet", "utilisation")
        per_fleet = (
            fleet.group_by(*fkeys, "_fleet")
            .agg(**_run_aggs(), cost_usd=pl.col("cost_usd").sum(), cost_per_run_usd=pl.col("cost_usd").mean())
            .join(used, on="_fleet", how="left")
            .join(_errors_by_class(fleet, fkeys), on=fkeys, how="left")
            .with_columns(scope=pl.lit("instance_type"))
        )
        frames.append(per_fleet)
    frames.append(user_burn(ledger))
    out = pl.concat([f.select([c for c in f.columns if c in STREAM_SCHEMA]) for f in frames], how="diagonal_relaxed")
    # Every column first (a lake with no ledger entries has no user_id), then the key.
    out = out.select(
        [(pl.col(c) if c in out.columns else pl.lit(None)).cast(t).alias(c) for c, t in STREAM_SCHEMA.items()]
    ).with_columns(stream=stream_key())
    return _in_stream_order(out)


def _in_stream_order(streams: pl.DataFrame) -> pl.DataFrame:
    return streams.sort("scope", "provider_id", "effect_type", "instance_type", "user_id", "source", "bucket_start")


def streams_in_chunks(
    costed: pl.DataFrame,
    ledger: pl.DataFrame,
    start: datetime,
    keep_warm_seconds: float = DEFAULT_KEEP_WARM_SECONDS,
    chunk: timedelta = STREAM_CHUNK,
) -> pl.DataFrame:
    """``metric_streams``' rows of the execution scopes' buckets from ``start`` on, and every
    user-scope row, computed ``chunk`` of buckets at a time: the same rows (``tests/
    test_metric_streams_incremental.py`` compares them) with a fraction of the memory.

    A bucket's rows depend on the tasks finished in it and, through ``cost_model.cold_starts``,
    on the earlier-started tasks of their fleets that ended less than ``keep_warm_seconds``
    before one of them started: each chunk takes its finished tasks, every task that ended
    after its first task's start minus the keep-warm period (earlier ones cannot make a start
    warm), and the tasks that started inside it but finished later (a long task keeps its
    fleet warm before it ends). Utilisation is measured per bucket, so nothing else crosses a
    chunk's edges.

    Args:
        costed: the executions with their costs (``with_costs``: ``metric_streams``'
            ``executions`` plus ``COST_COLUMNS``).
        ledger, keep_warm_seconds: as ``metric_streams``.
        start: the first bucket of the execution scopes (a bucket boundary).
        chunk: buckets per step, a whole number of GRAIN.

    Raises:
        ValueError: ``chunk`` is not a positive multiple of GRAIN.
    """
    if chunk <= timedelta(0) or chunk % GRAIN:
        raise ValueError(f"chunk must be a positive multiple of {GRAIN}, got {chunk}")
    parts = [_streams(costed.clear(), ledger, keep_warm_seconds)]  # the user scope
    if costed.is_empty():
        return parts[0]
    runs = costed.with_columns(_start=task_start())
    last = runs.select(pl.col("finished_at").max()).item()
    finished = pl.col("finished_at")
    lo_bucket = start
    while last is not None and lo_bucket <= last:
        hi_bucket = lo_bucket + chunk
        first_start = runs.select(
            pl.col("_start").filter((finished >= lo_bucket) & (finished < hi_bucket)).min()
        ).item()
        if first_start is not None:
            deciding = finished >= first_start - timedelta(seconds=keep_warm_seconds)
            rows = runs.filter(deciding & ((finished < hi_bucket) | (pl.col("_start") < hi_bucket)))
            part = _streams(rows.drop("_start"), ledger.clear(), keep_warm_seconds)
            parts.append(part.filter((pl.col("bucket_start") >= lo_bucket) & (pl.col("bucket_start") < hi_bucket)))
        lo_bucket = hi_bucket
    return _in_stream_order(pl.concat(parts, how="vertical"))


def recompute_from(since: datetime, newest_bucket: datetime | None, late_margin: timedelta = LATE_MARGIN) -> datetime:
    """The first bucket of the execution scopes a cycle recomputes: ``late_margin`` before the
    newest bucket already written (``newest_bucket``, None on the first cycle), never before
    ``since`` (the detectors' history start, a bucket boundary); ``since`` on the first cycle.

    Why not the whole history every time: at 10 M executions in the 3-day history, reading and
    grouping them took 40-256 s of a 5-minute cycle and 14 GB; in ``STREAM_CHUNK`` steps, as
    the first cycle now computes them, ~20 s and ~4.3 GB (docs/signals.md, "Cost of a cycle")."""
    if newest_bucket is None:
        return since
    # late_margin is whole buckets and newest_bucket a boundary, so the result is one too.
    return max(since, newest_bucket - late_margin)


def lead_in_covers(
    executions: pl.DataFrame,
    start: datetime,
    read_from: datetime,
    keep_warm_seconds: float = DEFAULT_KEEP_WARM_SECONDS,
) -> bool:
    """Whether ``executions`` (every task finished at or after ``read_from``) hold each task
    that decides a cold start of a task finished at or after ``start``: a task is cold when it
    starts more than ``keep_warm_seconds`` after every earlier-started task of its fleet ended
    (``cost_model.cold_starts``), so only tasks that ended after ``its start - keep_warm``
    matter, and the read holds them all when every such task started at least
    ``keep_warm_seconds`` after ``read_from``. False: recompute from further back."""
    # Tasks without a duration are dropped by cold_starts, so they decide nothing (min skips nulls).
    earliest = executions.filter(pl.col("finished_at") >= start).select(task_start().min()).item()
    return earliest is None or earliest - timedelta(seconds=keep_warm_seconds) >= read_from


def recomputed(streams: pl.DataFrame, start: datetime, since: datetime) -> pl.DataFrame:
    """The rows of ``metric_streams``' output a cycle writes: the execution scopes' buckets from
    ``start`` on (earlier ones came from the lead-in alone, without their own lead-in) and the
    user scope's from ``since`` on (recomputed whole each cycle: from the ledger, a far smaller
    table, and its latest-bucket columns move as new buckets appear)."""
    first = pl.when(pl.col("scope") == "user").then(pl.lit(since)).otherwise(pl.lit(start))
    return streams.filter(pl.col("bucket_start") >= first.cast(STREAM_SCHEMA["bucket_start"]))


STREAM_KEYS = ("scope", "provider_id", "effect_type", "instance_type", "user_id", "source")


def stream_key() -> pl.Expr:
    """The ``stream`` column: the stream's key columns joined with ``|`` (nulls as empty),
    a non-null key a merge can match on."""
    return pl.concat_str([pl.col(k).fill_null("") for k in STREAM_KEYS], separator="|")


def user_burn(ledger: pl.DataFrame) -> pl.DataFrame:
    """The ``user`` scope of the streams: tokens consumed per user per bucket, the trailing
    hour's burn rate (tokens/hour), and on each user's latest bucket the tokens available
    now and the hours until they run out at that rate."""
    consumed = ledger.filter((pl.col("kind") == CONSUME) & pl.col("user_id").is_not_null())
    if consumed.is_empty():
        return pl.DataFrame(schema={"scope": pl.String})
    per_bucket = (
        consumed.with_columns(_bucket("occurred_at"))
        .group_by("user_id", "bucket_start")
        .agg(tokens_burned=pl.col("tokens").sum().cast(pl.Int64))
        .sort("user_id", "bucket_start")
    )
    hours = BURN_WINDOW.total_seconds() / 3600
    trailing = per_bucket.rolling(
        "bucket_start", period=f"{int(BURN_WINDOW.total_seconds())}s", group_by="user_id"
    ).agg(_hour=pl.col("tokens_burned").sum())
    available = balances(ledger).select("user_id", tokens_available="available")
    return (
        per_bucket.join(trailing, on=["user_id", "bucket_start"], how="left")
        .with_columns(token_burn_per_hour=pl.col("_hour").cast(pl.Float64) / hours)
        .join(available, on="user_id", how="left")
        .with_columns(
            _latest=pl.col("bucket_start") == pl.col("bucket_start").max().over("user_id"),
        )
        .with_columns(
            tokens_available=pl.when(pl.col("_latest")).then(pl.col("tokens_available")),
            hours_to_exhaustion=pl.when(pl.col("_latest") & (pl.col("token_burn_per_hour") > 0)).then(
                pl.col("tokens_available").clip(lower_bound=0) / pl.col("token_burn_per_hour")
            ),
            scope=pl.lit("user"),
            source=pl.lit("real"),
        )
        .drop("_hour", "_latest")
    )
