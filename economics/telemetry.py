"""Execution telemetry: what one finished provider task measured, declared once.

Three places meet on these fields: M6 records them for real tasks, the market simulator for
simulated ones (millions of rows), and the economics job reads them back to cost every
execution. They are typed columns of the ``execution_events`` table (``TELEMETRY`` joins the
event envelope in ``resources.schemas``), so the economics reads them as columns, with
projection pushdown, instead of decoding a JSON payload per event.

Pure: Polars and numpy only; the lake scan it reads is the caller's.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from economics.frames import one_of
from economics.ids import TASK_KEY, has_task_keys

# Where an execution came from. Simulated money never mixes with real money (marginality
# splits by it) and never steers routing.
REAL, SIMULATED = "real", "simulated"
# What kind of job an execution served: an effect's creation (a video's test batch, M5/M6) or
# a user's run of a published effect (assets/runs). Both feed one cost model, ledger and
# manifest; the column lets the economics and the dashboard show them apart. Executions
# recorded before the column existed are creation (``finished_executions`` fills it).
CREATION, RUN = "creation", "run"
JOB_KINDS = (CREATION, RUN)
# The execution event that closes a task, by its status.
SUCCEEDED_EVENT, FAILED_EVENT = "TaskSucceeded", "TaskFailed"
# The execution event that opens a task (M5 dispatching it).
DISPATCHED_EVENT = "TaskDispatched"
TERMINAL_EVENTS = (SUCCEEDED_EVENT, FAILED_EVENT)

# What a provider run measures about itself (``resources.providers.base.TaskResult``'s
# fields of the same names; also the telemetry columns of ``provider_outputs``).
MEASURED = pl.Schema(
    {
        "status": pl.String,  # 'succeeded' | 'failed'
        "duration_ms": pl.Int64,  # wall time of the work, ms
        "queue_wait_ms": pl.Int64,  # waiting for a slot before the work started, ms
        "compute_seconds": pl.Float64,  # measured CPU (or reported GPU) seconds
        "instance_type": pl.String,  # rate-card key the work ran on
        "partner_cost_usd": pl.Float64,  # a partner API's bill for the call, USD
        "attempts": pl.Int64,  # tries made (1 = the first try was final)
        "error_class": pl.String,  # short machine-readable class when failed
        "error_message": pl.String,  # readable reason when failed
    }
)
# Every telemetry column of an execution event: the measurements plus how the task was
# chosen, where it came from and what it stored.
# (Annotated: mypy types a dict mixing MEASURED's dtype instances with dtype classes such as
# pl.String as dict[str, object], which pl.Schema does not take.)
_TELEMETRY_COLUMNS: dict[str, pl.DataType | type[pl.DataType]] = {
    **MEASURED,
    "selection": pl.String,  # ranked | exploration | shadow | ab
    # Probability that the routing policy included this provider for this job (M5's
    # inclusion probability, the simulator's routing weight); null for tasks no routing draw
    # chose (fallbacks, A/B runs). Off-policy evaluation divides by it (economics.off_policy).
    "propensity": pl.Float64,
    "source": pl.String,  # REAL | SIMULATED
    "output_bytes": pl.Int64,  # size of the stored output (storage and bandwidth cost)
    "job_kind": pl.String,  # CREATION | RUN (null = creation, recorded before the column)
}
TELEMETRY = pl.Schema(_TELEMETRY_COLUMNS)
# The telemetry the cost model reads (``finished_executions``' columns besides the task's
# identity); the rest is kept for diagnosis.
COSTED = (
    "status",
    "duration_ms",
    "compute_seconds",
    "instance_type",
    "partner_cost_usd",
    "selection",
    "propensity",
    "source",
    "output_bytes",
    "job_kind",
)


# Error classes that mean the provider refused for load (HTTP 429 and its kin): an adapter that
# sees a 429 reports ``Throttled``. The metric streams count them apart from other errors.
THROTTLE_CLASSES = frozenset({"Throttled", "RateLimited", "HTTP429", "TooManyRequests"})
TIMEOUT_CLASSES = frozenset({"Timeout", "TimedOut"})


def terminal_event(status: str) -> str:
    """``TaskSucceeded`` for status ``succeeded``, else ``TaskFailed``."""
    return SUCCEEDED_EVENT if status == "succeeded" else FAILED_EVENT


def terminal_event_expr(status: pl.Expr) -> pl.Expr:
    """``terminal_event`` as a Polars expression over a status column."""
    return pl.when(status == "succeeded").then(pl.lit(SUCCEEDED_EVENT)).otherwise(pl.lit(FAILED_EVENT))


# The row position ``terminal_outcomes`` tags terminal events with: how the superseded events
# it finds are marked in the plan without reading their task ids again.
_ROW = "__event_row"
#: A task's 128-bit fingerprint in ``terminal_outcomes`` (columns h and g): the task key
#: written with each event (``economics.ids.TASK_KEY``).
TASK_FINGERPRINT = {"h": pl.col(TASK_KEY[0]), "g": pl.col(TASK_KEY[1])}
#: The fingerprint of every event instead, when some event has no task key (written before
#: the keys): two 64-bit hashes of the task id under different seeds, independent (ids whose
#: first hashes agree in their low 32 bits differ in the second, tests/test_economics_cycle.py).
#: Two different task ids share either fingerprint with probability 2^-128.
TASK_ID_HASHES = {"h": pl.col("task_id").hash(seed=0), "g": pl.col("task_id").hash(seed=1)}
#: The Boolean column of ``terminal_outcomes``: a later terminal event of the task replaces this one.
SUPERSEDED = "superseded"


def terminal_outcomes(events: pl.LazyFrame, columns: tuple[str, ...] = COSTED) -> pl.LazyFrame:
    """Terminal task events, lazily, each marked ``SUPERSEDED`` when it is not its task's
    latest outcome (a re-executed task has several terminal events).

    The plan streams: nothing sorts or groups the whole table. A first pass reads only each
    terminal event's time and its task's 128-bit fingerprint: the task key written with the
    event (two Int64 columns, ``TASK_FINGERPRINT``), or, when some event of the table has
    none, two hashes of every task id (``TASK_ID_HASHES``: decoding the id strings costs about
    twice the keys' read, ~0.3 against ~0.15 CPU s at 10 M events). The low 32 bits of the
    fingerprint are sorted (numpy: a sort of integers, not of the rows) to find the events
    whose bits are seen more than once (re-executed tasks, and ~12,000 pairs of 32-bit
    collisions at 10 M events), and those few are settled on the whole fingerprint and their
    times: two of n task ids share a fingerprint with probability below n^2 / 2^129 (10^-25 at
    10 M events, 10^-21 at 1 B), and the ids themselves are not read again (a second decoding
    of the whole column, whatever the filter: ~0.4 CPU s at 10 M). The returned plan marks
    the superseded events by position, so the consumer (a group-by, a sink) reads every row
    once and never holds them all; an aggregate can group the marked rows apart and drop
    them after (``economics.cycle``), a consumer of rows filters them out
    (``latest_outcomes``).

    Args:
        events: ``execution_events`` rows (envelope, ``task_id``, ``provider_id``,
            ``effect_type`` and the ``TELEMETRY`` columns), or any deterministic plan over
            them (a filtered scan, a concat): it is evaluated twice, so it must yield the
            same rows in the same order both times — a Delta scan is pinned to the version
            it was opened at.
        columns: the telemetry columns to keep (default ``COSTED``; the metric streams also
            read ``queue_wait_ms`` and ``error_class``).

    Returns:
        A LazyFrame of task_id, provider_id, effect_type, video_id (the correlation id: a
        run's id for a run's task), finished_at (the event's ``occurred_at``), ``columns``
        and SUPERSEDED (Boolean, never null); ``source`` (when kept) defaults to REAL,
        ``job_kind`` to CREATION. Row order is not defined. Of two terminal events of one
        task at the same instant, the later row of ``events`` is the latest.

    Runs the first pass (the fingerprints and times, and the settling of the few repeats) when
    called.
    """
    # A table written before a telemetry column was declared lacks it until its next append
    # (the lake's merge adds it): read it as nulls meanwhile.
    missing = [c for c in columns if c not in events.collect_schema().names()]
    events = events.with_columns(pl.lit(None, TELEMETRY[c]).alias(c) for c in missing)
    terminal = events.filter(one_of(pl.col("event_type"), TERMINAL_EVENTS)).with_row_index(_ROW)
    mask = _superseded(terminal)
    # A gather from a boolean per position: 40 % cheaper than ``is_in`` on the positions
    # over 10 M rows (measured), since no set is probed per row.
    superseded = pl.lit(False) if mask is None else pl.lit(mask).gather(pl.col(_ROW))
    defaults = {"source": REAL, "job_kind": CREATION}
    return terminal.select(
        "task_id",
        "provider_id",
        "effect_type",
        *(pl.col(c).fill_null(defaults[c]) if c in defaults else c for c in columns),
        video_id=pl.col("correlation_id"),
        finished_at=pl.col("occurred_at"),
        **{SUPERSEDED: superseded},
    )


def latest_outcomes(events: pl.LazyFrame, columns: tuple[str, ...] = COSTED) -> pl.LazyFrame:
    """Terminal task events as one row per task, lazily: the latest outcome wins.

    Args:
        events: see ``terminal_outcomes``.
        columns: see ``terminal_outcomes``.

    Returns:
        ``terminal_outcomes`` without its superseded rows and its SUPERSEDED column.

    Runs ``terminal_outcomes``' first pass when called.
    """
    return terminal_outcomes(events, columns).filter(~pl.col(SUPERSEDED)).drop(SUPERSEDED)


def _superseded(terminal: pl.LazyFrame) -> pl.Series | None:
    """Per position (``_ROW``), whether a later terminal event of its task replaces the
    event; None when none does (no task has two)."""
    # The n-th row is the n-th terminal event's (a collect keeps the order), so the
    # positions need not be collected.
    times = {"t": pl.col("occurred_at")}
    seen = None
    if has_task_keys(terminal):
        seen = terminal.select(**TASK_FINGERPRINT, **times).collect(engine="streaming")
    if seen is None or seen["h"].has_nulls() or seen["g"].has_nulls():  # a key missing: hash every id
        seen = terminal.select(**TASK_ID_HASHES, **times).collect(engine="streaming")
    n = seen.height
    # The repeats are found on 32 bits: half the array of 64 to allocate and sort (~0.1 s
    # less at 10 M events), for a few thousand more candidates settled below.
    low = seen["h"].to_numpy().astype(np.uint32)
    hashes = np.sort(low)
    repeated = np.unique(hashes[1:][hashes[1:] == hashes[:-1]])
    del hashes
    if not len(repeated):
        return None
    rows = seen.with_row_index(_ROW).filter(pl.Series(low).is_in(pl.Series(repeated).implode()))
    del seen, low
    # The latest event of each task (ties: the later row) is kept; every other one goes.
    latest = rows.sort("t", _ROW).group_by(*TASK_FINGERPRINT, maintain_order=True).agg(pl.col(_ROW).last())[_ROW]
    replaced = rows.filter(~pl.col(_ROW).is_in(latest.implode()))[_ROW].to_numpy()
    if not len(replaced):  # only colliding keys, no task with two events
        return None
    superseded = np.zeros(n, dtype=bool)
    superseded[replaced] = True
    return pl.Series(SUPERSEDED, superseded)


def finished_executions(events: pl.LazyFrame, columns: tuple[str, ...] = COSTED) -> pl.DataFrame:
    """``latest_outcomes`` collected: one row per task, the latest outcome wins.

    Args:
        events: see ``latest_outcomes``.
        columns: see ``latest_outcomes``.

    Returns:
        task_id, provider_id, effect_type, video_id (the correlation id), finished_at (the
        event's ``occurred_at``) and ``columns``; ``source`` (when kept) defaults to REAL,
        ``job_kind`` to CREATION. Row order is not defined.
    """
    return latest_outcomes(events, columns).collect(engine="streaming")


# A terminal event written before telemetry had typed columns: no status, the telemetry in the
# payload only (``telemetry_from_payload`` moves it).
UNTYPED = pl.col("event_type").is_in(TERMINAL_EVENTS) & pl.col("status").is_null() & (pl.col("payload") != "{}")


def telemetry_from_payload(events: pl.DataFrame) -> pl.DataFrame:
    """Terminal events written before telemetry had typed columns — their telemetry only in
    the JSON ``payload`` (the same field names as ``TELEMETRY``) — with the typed columns
    filled from it and the payload emptied, as M6 writes them now; other rows unchanged.

    Args:
        events: ``execution_events`` rows.

    Returns:
        ``events`` with the same columns; the UNTYPED rows rewritten.
    """
    decoded = pl.col("payload").str.json_decode(pl.Struct(TELEMETRY))
    return events.with_columns(
        *(pl.when(UNTYPED).then(decoded.struct.field(c)).otherwise(pl.col(c)).alias(c) for c in TELEMETRY),
        payload=pl.when(UNTYPED).then(pl.lit("{}")).otherwise(pl.col("payload")),
    )


def videos_with_all_tasks_finished(events: pl.DataFrame) -> pl.DataFrame:
    """(video_id, tasks) for videos whose every dispatched task has a terminal event (effect
    creation only: a run's tasks settle inside its own run, ``job_kind`` RUN).

    Args:
        events: execution events with ``correlation_id``, ``task_id``, ``event_type`` (and
            ``job_kind``, when present).
    """
    if "job_kind" in events.columns:
        events = events.filter(pl.col("job_kind").fill_null(CREATION) == CREATION)
    per_video = events.group_by("correlation_id").agg(
        dispatched=pl.col("task_id").filter(pl.col("event_type") == DISPATCHED_EVENT).n_unique(),
        finished=pl.col("task_id").filter(pl.col("event_type").is_in(TERMINAL_EVENTS)).n_unique(),
    )
    return (
        per_video.filter((pl.col("dispatched") > 0) & (pl.col("finished") >= pl.col("dispatched")))
        .select(video_id="correlation_id", tasks="dispatched")
        .sort("video_id")
    )


def videos_awaiting_evaluation(events: pl.DataFrame, evaluated: pl.DataFrame) -> pl.DataFrame:
    """(video_id, tasks) of ``videos_with_all_tasks_finished`` that no evaluation has scored
    since their last task finished: the videos whose run ended without evaluating them (a
    failed step), or whose last tasks were collected by a run that did not.

    Args:
        events: execution events with ``correlation_id``, ``task_id``, ``event_type``,
            ``occurred_at`` (and ``job_kind``, when present).
        evaluated: one row per evaluation (``QualityEvaluated``), ``correlation_id`` and
            ``occurred_at``.
    """
    finished = videos_with_all_tasks_finished(events)
    last = (
        events.filter(pl.col("event_type").is_in(TERMINAL_EVENTS))
        .group_by("correlation_id")
        .agg(finished_at=pl.col("occurred_at").max())
    )
    scored = evaluated.group_by("correlation_id").agg(evaluated_at=pl.col("occurred_at").max())
    return (
        finished.join(last, left_on="video_id", right_on="correlation_id", how="left")
        .join(scored, left_on="video_id", right_on="correlation_id", how="left")
        .filter(pl.col("evaluated_at").is_null() | (pl.col("evaluated_at") < pl.col("finished_at")))
        .select("video_id", "tasks")
        .sort("video_id")
    )
