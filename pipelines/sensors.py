"""Sensors that drive the main chain: store rows to land, new uploads, finished provider
tasks, admin decisions, users' effect runs.

``landing_sensor`` asks the transactional store whether any mirrored table has rows past its
landing cursor and starts ``landing_job`` for those tables (``assets/landing``).
``upload_sensor`` and ``run_sensor`` read their new rows from the store too (cursor: the
store seq), so a user's upload or effect run starts without waiting for its landing, which
happens in parallel. The others each read one bronze table through the lake resource. The cursor is that table's Delta
version, so a tick with no new commit reads nothing; run keys make every request at most
once per sensor, so re-reading a table never starts a run twice. A tick that sees a new
version reports an ``AssetObservation`` of the table's asset (Delta version, rows), so the
bronze assets the API writes outside any run have a history in Dagster too.

The cursors are Delta versions rather than Dagster asset events: the API's tables are
written outside any run, and a stage's materialization event for ``execution_events`` is
only logged when its step returns, so a step that fails after recording its tasks' outcomes
would leave an event-driven sensor waiting forever. The table is the record; it is what the
sensors watch.
"""

from collections.abc import Callable

import dagster as dg
import polars as pl

from assets.execution.remote import advance
from assets.landing.asset import completed_uploads, stored_cursor
from assets.landing.rows import LANDINGS
from assets.lineage import table_key
from assets.logs import warn
from assets.partitions import effect_runs, videos
from economics.telemetry import videos_awaiting_evaluation, videos_with_all_tasks_finished
from pipelines.jobs import (
    ab_job,
    benchmark_job,
    collect_job,
    effect_run_job,
    evaluation_job,
    intake_job,
    landing_job,
    publish_job,
)
from resources.events import record_pipeline_events, utcnow
from resources.lake import Lake
from resources.media import MediaStore
from resources.providers.client import ProviderRegistry
from resources.schemas import (
    AB_REQUESTS,
    APPROVAL_DECISIONS,
    BENCHMARK_REPORTS,
    EXECUTION_EVENTS,
    PIPELINE_EVENTS,
    UPLOADS,
    TableSpec,
)
from resources.store.client import Store
from resources.store.feed import UploadCursor, advance_cursor
from resources.store.runs import is_run_id

INTERVAL_S = 5
# The sensors that read the transactional store (landing, new uploads, new effect runs) are
# the first hop of a request's way into the pipeline: a short interval keeps that hop's
# latency small. A tick is a few indexed store queries (and, for landing, one Dagster run
# query). The daemon's sensor loop makes it 5 s there (docs/architecture.md).
STORE_INTERVAL_S = 2
# M7's event: a video's outputs were scored.
EVALUATED_EVENT = "QualityEvaluated"
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


@dg.sensor(job=landing_job, minimum_interval_seconds=STORE_INTERVAL_S, default_status=dg.DefaultSensorStatus.RUNNING)
def landing_sensor(context: dg.SensorEvaluationContext, store: dg.ResourceParam[Store], lake: dg.ResourceParam[Lake]):
    """Store tables with rows past their landing cursor → one ``landing_job`` run for
    exactly those tables' assets.

    Presigned uploads landed while ``pending`` are re-read too (``completed_uploads``): their
    completion changes the row in place, which no seq cursor sees.

    The cursors are the landing assets' own (``assets.landing.asset``; here only their
    cheap part, the last materialization's ``store_seq``: a lagging one costs a run that
    lands nothing new). No run key: a failed landing run must be retried on the next tick
    with the same cursors, and a run key would forbid that; instead no run is requested
    while one is in flight, so two landings never race on a table."""
    in_flight = context.instance.get_run_records(dg.RunsFilter(job_name=landing_job.name, statuses=IN_FLIGHT), limit=1)
    if in_flight:
        return dg.SkipReason(f"landing run {in_flight[0].dagster_run.run_id} in flight")
    pending = []
    for landing in LANDINGS:
        rows, _ = store.changes_since(landing.source, stored_cursor(context.instance, landing), limit=1)
        if rows:
            pending.append(table_key(landing.target))
    if table_key(UPLOADS) not in pending and not completed_uploads(lake, store, utcnow()).is_empty():
        pending.append(table_key(UPLOADS))  # a presigned upload landed pending has been completed
    if not pending:
        return dg.SkipReason("no new store rows")
    tags = {"landing": ",".join(k.path[-1] for k in pending)}
    return dg.SensorResult(run_requests=[dg.RunRequest(asset_selection=pending, tags=tags)])


def _changed(context: dg.SensorEvaluationContext, lake: Lake, spec: TableSpec) -> int | None:
    """The table's version when it changed since the cursor, else None."""
    version = lake.version(spec)
    if version < 0 or str(version) == context.cursor:
        return None
    return version


def observed(spec: TableSpec, version: int, rows: int) -> dg.AssetObservation:
    """The observation a sensor reports of ``spec``'s table at Delta ``version``."""
    return dg.AssetObservation(asset_key=table_key(spec), metadata={"delta_version": version, "rows": rows})


def for_known_videos(context: dg.SensorEvaluationContext, requests: list[dg.RunRequest]) -> list[dg.RunRequest]:
    """``requests`` without those for a video this instance never partitioned (a row of a
    lake or store that outlived its Dagster instance, e.g. a reset ``DAGSTER_HOME``): one such
    row must not fail every tick and hold up the other videos' runs, so it is skipped, and
    said so in the tick's log."""
    known = set(context.instance.get_dynamic_partitions(videos.name))
    unknown = sorted({r.partition_key for r in requests if r.partition_key not in known})
    if unknown:
        context.log.warning(
            f"skipped {len(unknown)} video(s) with no partition on this instance "
            f"(their upload predates it): {', '.join(unknown[:5])}"
        )
    return [r for r in requests if r.partition_key in known]


def _on_table_change(
    context: dg.SensorEvaluationContext,
    lake: Lake,
    spec: TableSpec,
    idle: str,
    requests: Callable[[pl.DataFrame], list[dg.RunRequest]],
):
    """Skip when ``spec``'s table has no new commit; else the run requests ``requests``
    makes from the whole table (run keys drop the ones already made; a video this instance
    does not know is skipped: ``for_known_videos``), an observation of the table and the new
    cursor."""
    version = _changed(context, lake, spec)
    if version is None:
        return dg.SkipReason(idle)
    table = lake.read(spec)
    made = requests(table)
    if any(r.partition_key is not None for r in made):
        made = for_known_videos(context, made)
    return dg.SensorResult(run_requests=made, asset_events=[observed(spec, version, table.height)], cursor=str(version))


# Rows a store-fed sensor reads per tick: more wait for the next one.
FEED_BATCH = 1_000
SEQ_CURSOR = "seq:"


@dg.sensor(job=intake_job, minimum_interval_seconds=STORE_INTERVAL_S, default_status=dg.DefaultSensorStatus.RUNNING)
def upload_sensor(context: dg.SensorEvaluationContext, store: dg.ResourceParam[Store], lake: dg.ResourceParam[Lake]):
    """New received uploads in the store → a ``videos`` partition each and its intake run
    (run_key = video_id, so the same bytes uploaded twice run once).

    It reads the transactional store, not ``bronze/uploads``: an upload starts its intake
    without waiting for the landing run, which lands the same row in parallel
    (docs/architecture.md, "Time to first preview"). A tick is one indexed store query past
    the cursor, plus one by id for presigned uploads still waiting for their bytes
    (``resources.store.feed``: cursor, what counts as received, presigned completion)."""
    cursor = UploadCursor.decode(context.cursor)
    rows, settled = store.recent_changes("uploads", cursor.seq, FEED_BATCH)
    watched = store.uploads_by_id(list(cursor.pending))
    received, after = advance_cursor(cursor, rows, settled, watched, utcnow())
    if not received and after == cursor:
        return dg.SkipReason("no new uploads")
    known = set(context.instance.get_dynamic_partitions(videos.name))
    new = [r["video_id"] for r in received if r["video_id"] not in known]
    if new:
        # Tables exist before runs go parallel: a partition overwrite into a table that does
        # not exist yet can lose another run's partition (docs/architecture.md, "Known pitfalls").
        lake.ensure_all()
    return dg.SensorResult(
        run_requests=[dg.RunRequest(partition_key=v, run_key=v) for v in new],
        dynamic_partitions_requests=[videos.build_add_request(new)] if new else [],
        cursor=after.encode(),
    )


@dg.sensor(job=effect_run_job, minimum_interval_seconds=STORE_INTERVAL_S, default_status=dg.DefaultSensorStatus.RUNNING)
def run_sensor(context: dg.SensorEvaluationContext, store: dg.ResourceParam[Store], lake: dg.ResourceParam[Lake]):
    """New rows in the store's ``effect_runs`` (runs the API queued) → a ``runs`` partition
    each and its ``effect_run_job`` run (run_key = run id, so a run is executed once
    whatever the ticks). Read from the store like ``upload_sensor`` (one indexed query past
    the cursor, the store seq), so a user's run does not wait for its row to be landed in
    ``bronze/effect_runs``."""
    # "seq:<n>": a bare number is the bronze-era cursor (a Delta version, not a seq): start over.
    raw = (context.cursor or "").removeprefix(SEQ_CURSOR)
    after = int(raw) if context.cursor and context.cursor.startswith(SEQ_CURSOR) and raw.isdigit() else 0
    rows, settled = store.recent_changes("effect_runs", after, FEED_BATCH)
    if not rows:
        return dg.SkipReason("no new effect runs")
    known = set(context.instance.get_dynamic_partitions(effect_runs.name))
    new = [r["run_id"] for r in rows if r["run_id"] not in known]
    if new:
        lake.ensure_all()  # tables exist before runs write partitions in parallel (Known pitfalls)
    return dg.SensorResult(
        run_requests=[dg.RunRequest(partition_key=r, run_key=r) for r in new],
        dynamic_partitions_requests=[effect_runs.build_add_request(new)] if new else [],
        cursor=f"{SEQ_CURSOR}{settled}",
    )


@dg.sensor(job=evaluation_job, minimum_interval_seconds=INTERVAL_S, default_status=dg.DefaultSensorStatus.RUNNING)
def completion_sensor(context: dg.SensorEvaluationContext, lake: dg.ResourceParam[Lake]):
    """Every provider task of a video finished (succeeded or failed) and no evaluation has
    scored them → its evaluation run.

    The run that finishes a video's tasks evaluates it itself (``intake_job``,
    ``collect_job``), so this sensor only catches a run that ended without doing so (its
    evaluation step failed). While a run of the video is live it may still evaluate: the
    video is deferred, and the cursor stays where it was so the next tick looks again."""
    version = _changed(context, lake, EXECUTION_EVENTS)
    if version is None:
        return dg.SkipReason("no new task events")
    events = lake.read(EXECUTION_EVENTS)
    finished = videos_with_all_tasks_finished(events)
    ids = finished["video_id"].to_list()
    evaluated = lake.read(
        PIPELINE_EVENTS, (pl.col("event_type") == EVALUATED_EVENT) & pl.col("correlation_id").is_in(ids)
    ).select("correlation_id", "occurred_at")
    waiting = videos_awaiting_evaluation(events, evaluated)
    live = live_partitions(context.instance, waiting["video_id"].to_list())
    requests = for_known_videos(
        context,
        [
            dg.RunRequest(partition_key=r["video_id"], run_key=f"evaluate:{r['video_id']}:{r['tasks']}")
            for r in waiting.iter_rows(named=True)
            if r["video_id"] not in live
        ],
    )
    if live:  # the cursor stays: the next tick looks at these videos again
        idle = None if requests else f"{len(live)} video(s) finished in a run still live"
        return dg.SensorResult(run_requests=requests, skip_reason=idle)
    return dg.SensorResult(
        run_requests=requests, asset_events=[observed(EXECUTION_EVENTS, version, events.height)], cursor=str(version)
    )


def live_partitions(instance: dg.DagsterInstance, video_ids: list[str]) -> set[str]:
    """Those of ``video_ids`` with a run queued, starting or running (one query per video,
    on the run storage's tag index; ``video_ids`` are the few awaiting something)."""
    return {
        v
        for v in video_ids
        if instance.get_run_records(dg.RunsFilter(tags={"dagster/partition": v}, statuses=IN_FLIGHT), limit=1)
    }


# A failed collect run is retried by a new request (a new run key) at most this many times.
COLLECT_RETRIES = 3


@dg.sensor(
    jobs=[collect_job, effect_run_job],
    minimum_interval_seconds=INTERVAL_S,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def remote_task_sensor(
    context: dg.SensorEvaluationContext,
    store: dg.ResourceParam[Store],
    lake: dg.ResourceParam[Lake],
    media: dg.ResourceParam[MediaStore],
    providers: dg.ResourceParam[ProviderRegistry],
):
    """Follows the remote (GPU) tasks M6 sent (``assets.execution.remote.advance``): reads
    each one's state from its provider, stops the overdue, retries transient failures after
    their backoff, sends waiting tasks as slots free up, and records what happened in
    ``pipeline_events``. A video whose remote tasks have all finished gets a ``collect_job``
    run (M6 again: outputs stored, outcomes recorded, provider cleaned up); the completion
    sensor then starts its evaluation. An effect run's finished remote task gets an
    ``effect_run_job`` run of the run's partition (``run_outputs`` again: collected, gated,
    delivered or fallen back or refunded).

    Idle cost: one indexed store query (no remote task open → skip, no provider called)."""
    if not store.remote_tasks():
        return dg.SkipReason("no remote task in flight")
    progress = advance(store, providers.registry(), providers.adapter, media, utcnow())
    if progress.events:
        record_pipeline_events(lake, progress.events)
    requests = []
    for video_id, finished in sorted(progress.ready.items()):
        # An effect run's tasks are under its run id: its own job collects them.
        job = effect_run_job if is_run_id(video_id) else collect_job
        runs = context.instance.get_run_records(
            dg.RunsFilter(job_name=job.name, tags={"dagster/partition": video_id}), limit=20
        )
        if any(r.dagster_run.status in IN_FLIGHT for r in runs):
            continue
        failed = sum(r.dagster_run.status == dg.DagsterRunStatus.FAILURE for r in runs)
        if failed > COLLECT_RETRIES:
            warn(
                context,
                f"video {video_id}: collect failed {failed} times; not retried",
                event_type="collect_abandoned",
                economic_impact_usd=0.0,  # the tasks' cost is already in execution_costs; nothing is delivered
                urgency="high",
                operator_action="Open the failed collect_job runs of the video, fix the cause, and re-run collect_job.",
                runbook="docs/runbooks/platform-logs.md#collect_abandoned",
                video_id=video_id,
            )
            continue
        requests.append(
            dg.RunRequest(job_name=job.name, partition_key=video_id, run_key=f"collect:{video_id}:{finished}:{failed}")
        )
    return (
        dg.SensorResult(run_requests=requests)
        if requests
        else dg.SkipReason(f"{progress.open_tasks} remote task(s) open, none ready to collect")
    )


@dg.sensor(job=publish_job, minimum_interval_seconds=INTERVAL_S, default_status=dg.DefaultSensorStatus.RUNNING)
def approval_sensor(context: dg.SensorEvaluationContext, lake: dg.ResourceParam[Lake]):
    """An admin decision (approve or reject) → the video's publication run."""
    return _on_table_change(
        context,
        lake,
        APPROVAL_DECISIONS,
        "no new decisions",
        lambda decisions: [
            dg.RunRequest(partition_key=r["video_id"], run_key=f"publish:{r['approval_id']}")
            for r in decisions.iter_rows(named=True)
        ],
    )


@dg.sensor(job=benchmark_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def provider_change_sensor(
    context: dg.SensorEvaluationContext, lake: dg.ResourceParam[Lake], providers: dg.ResourceParam[ProviderRegistry]
):
    """The provider registry changed since the last benchmark → benchmark again
    (run_key = registry version). Before any benchmark exists the weekly schedule or an
    operator starts the first one, so a fresh install is not flooded at start-up."""
    version = providers.registry().version
    last = lake.scan(BENCHMARK_REPORTS).sort("ran_at").select(pl.col("registry_version").last()).collect()
    if last.is_empty() or last.item() is None:
        return dg.SkipReason("no benchmark yet: the weekly schedule runs the first one")
    if last.item() == version:
        return dg.SkipReason(f"registry {version} already benchmarked")
    return dg.RunRequest(run_key=f"registry:{version}")


@dg.sensor(job=ab_job, minimum_interval_seconds=INTERVAL_S, default_status=dg.DefaultSensorStatus.RUNNING)
def ab_test_sensor(context: dg.SensorEvaluationContext, lake: dg.ResourceParam[Lake]):
    """A new A/B test request → one run of it (run_key = experiment id)."""
    return _on_table_change(
        context,
        lake,
        AB_REQUESTS,
        "no new A/B test requests",
        lambda requests: [
            dg.RunRequest(run_key=f"ab:{e}", run_config={"ops": {"gold__ab_results": {"config": {"experiment_id": e}}}})
            for e in requests["experiment_id"]
        ],
    )
