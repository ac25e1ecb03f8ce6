"""``recovery_sensor``: finds work stuck past its deadline and resolves it exactly once
(docs/architecture.md, "Recovery").

Each tick:

1. runs whose worker died with its code server are reported failed (``runs.reap_dead_runs``),
   so nothing waits on a run that will never end (the landing sensor waits for an in-flight
   landing run; a video's run would look live);
2. remote tasks whose send was orphaned are resolved with their provider
   (``assets.execution.remote.recover_orphaned_sends``: re-queued if it has them, failed if
   not);
3. each watched video (``facts.watched``) is decided on (``rules.decide``): its phase's job
   started again with a run key of its own (``RecoveryRequeued``), or — after
   ``recovery_requeues`` attempts — the video failed, its job refunded and the user told why
   (``VideoAbandoned``, ``resources.refunds.refund_and_notify``);
4. each unfinished effect run queued before the deadline (``Store.unfinished_runs``) is
   decided on (``rules.decide_run``): its ``effect_run_job`` started again
   (``RecoveryRequeued``), or the run failed with a reason and its tokens refunded in one
   compare-and-set in the store (``RunAbandoned``, the user told).

Every resolution is a ``pipeline_events`` row of a deterministic id; a second tick on the same
facts changes nothing (``rules`` module docstring). Idle cost: five indexed store queries and
one run query.
"""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from assets.execution.remote import recover_orphaned_sends
from assets.logs import warn
from assets.partitions import effect_runs, videos
from pipelines.jobs import collect_job, effect_run_job, evaluation_job, intake_job, publish_job
from pipelines.recovery.facts import Cursor, Watched, gather, gather_runs, watched
from pipelines.recovery.rules import (
    ABANDONED_EVENT,
    REQUEUED_EVENT,
    RUN_ABANDONED_EVENT,
    STAGE,
    Abandon,
    Policy,
    Requeue,
    decide,
    decide_run,
    settled_status,
    waits_on_a_run,
)
from pipelines.recovery.runs import reap_dead_runs
from resources.events import event, record_pipeline_events, utcnow
from resources.job_status import DONE, mark_job
from resources.lake import Lake
from resources.providers.client import ProviderRegistry
from resources.refunds import refund_and_notify
from resources.settings import Settings
from resources.store.client import Store
from resources.store.errors import UploadNotFound
from resources.store.runs import FAILED

RECOVERY_TAG = "effectlake/recovery"


def requeue_event(r: Requeue, now) -> dict:
    """The ``RecoveryRequeued`` event of a requeue (its id: video, phase, attempt)."""
    return event(
        REQUEUED_EVENT,
        r.video_id,
        STAGE,
        {"phase": r.phase, "job": r.job, "attempt": r.attempt, "run_key": r.run_key, "quiet_s": round(r.quiet_s, 1)},
        identity=f"{r.phase}:{r.attempt}",
        occurred_at=now,
    )


def requeue_request(r: Requeue, partition_key: str) -> dg.RunRequest:
    """The run request of a requeue: its phase's job for ``partition_key`` (a video or an
    effect run), keyed once per (partition, phase, attempt) and tagged with the attempt."""
    return dg.RunRequest(
        job_name=r.job,
        partition_key=partition_key,
        run_key=r.run_key,
        tags={RECOVERY_TAG: f"{r.phase}:{r.attempt}"},
    )


def abandon(store: Store, lake: Lake, a: Abandon, user_id: str | None) -> int:
    """Fail the video: refund its job (a consumed job's charge is reversed), tell the user
    why, record ``VideoAbandoned`` and free its GPU slot. Each part is idempotent, so a tick
    that dies half-way is completed by the next. Returns the tokens given back."""
    if user_id is None:
        try:
            user_id = store.upload(a.video_id)["user_id"]
        except UploadNotFound:
            user_id = None
    tokens = 0
    if user_id is not None:
        tokens = refund_and_notify(
            store,
            lake,
            STAGE,
            f"recovery: {a.phase} stuck",
            outcome=ABANDONED_EVENT,
            details=a.details,
            user_id=user_id,
            video_id=a.video_id,
            kind="processing_failed",
            title="We could not finish your video",
            body=f"Sorry: {a.reason}. Your {{tokens}} tokens were given back to your balance.",
        )
    else:  # a video with no upload and no reservation has nobody to tell and nothing to refund
        record_pipeline_events(
            lake,
            [event(ABANDONED_EVENT, a.video_id, STAGE, {"phase": a.phase, "reason": a.reason, "refunded_tokens": 0})],
        )
    mark_job(store, a.video_id, DONE)
    return tokens


def abandon_run(store: Store, lake: Lake, a: Abandon, run: dict) -> int | None:
    """Fail the effect run ``run`` (its store row): status ``failed`` with the reason the
    user reads and its tokens refunded, in one compare-and-set in the store
    (``Store.settle_run``); then ``RunAbandoned`` and the user told. Returns the tokens given
    back, or None when the run was settled meanwhile (by its own run: nothing is done)."""
    settled = store.settle_run(a.video_id, FAILED, f"recovery: effect run {run['slug']} stuck", error=a.reason)
    if settled is None:
        return None
    # The refund is made; refund_and_notify replays it (the ledger returns the first) for
    # its tokens, then records the outcome and the notification.
    return refund_and_notify(
        store,
        lake,
        STAGE,
        f"recovery: effect run {run['slug']} stuck",
        outcome=RUN_ABANDONED_EVENT,
        details=a.details,
        user_id=run["user_id"],
        video_id=a.video_id,
        kind="run_failed",
        title="Your video could not be made",
        body=f"Sorry: {a.reason}. Your {{tokens}} tokens were given back to your balance.",
    )


def build_recovery_sensor(interval_s: int) -> dg.SensorDefinition:
    """The recovery sensor, ticking every ``interval_s`` seconds (``Settings.recovery_interval_s``)."""

    @dg.sensor(
        name="recovery_sensor",
        jobs=[intake_job, collect_job, evaluation_job, publish_job, effect_run_job],
        minimum_interval_seconds=interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def recovery_sensor(
        context: dg.SensorEvaluationContext,
        store: dg.ResourceParam[Store],
        lake: dg.ResourceParam[Lake],
        providers: dg.ResourceParam[ProviderRegistry],
        platform: dg.ResourceParam[Settings],
    ):
        """Stuck work → re-queued or failed and refunded, once (module docstring)."""
        now = utcnow()
        cursor = Cursor.load(context.cursor)
        cursor.tick(now, interval_s)
        reaped = reap_dead_runs(context.instance)
        if reaped:
            context.log.info(f"reported {len(reaped)} run(s) with a dead worker failed: {', '.join(reaped)}")
        events = recover_orphaned_sends(
            store, providers.registry(), providers.adapter, now, platform.recovery_submit_grace_s
        )
        policy = Policy(platform.recovery_stuck_after_s, platform.recovery_requeues)
        watch = watched(store, cursor, now, policy.stuck_after_s, platform.recovery_horizon_hours)
        facts = gather(lake, store, context.instance, watch, cursor.resumed_at)
        known = set(context.instance.get_dynamic_partitions(videos.name))
        requests, new_partitions, abandoned = [], [], []
        for video_id, f in facts.items():
            if (status := settled_status(f)) is not None and watch[video_id].unfinished:
                mark_job(store, video_id, status)  # ended, but its status never followed
            decision = decide(f, policy, now)
            if isinstance(decision, Requeue):
                events.append(requeue_event(decision, now))
                requests.append(requeue_request(decision, video_id))
                if video_id not in known:
                    new_partitions.append(video_id)
            elif isinstance(decision, Abandon):
                abandon(store, lake, decision, watch.get(video_id, Watched(now)).user_id)
                abandoned.append(video_id)
                warn(
                    context,
                    f"video {video_id}: stuck at {decision.phase} after {decision.requeues} restarts; "
                    "failed and refunded",
                    event_type="video_abandoned",
                    economic_impact_usd=0.0,  # the refund is in the ledger; the lost compute in execution_costs
                    urgency="high",
                    operator_action="Open the video's failed runs (tag effectlake/recovery) and fix what stops them.",
                    runbook="docs/runbooks/platform-logs.md#video_abandoned",
                    video_id=video_id,
                    phase=decision.phase,
                )
            if video_id in cursor.watch and (video_id in abandoned or not waits_on_a_run(f)):
                del cursor.watch[video_id]
        run_requests, abandoned_runs = _recover_runs(context, store, lake, platform, policy, cursor, now, events)
        requests += run_requests
        record_pipeline_events(lake, events)
        if abandoned_runs:
            context.log.info(f"failed and refunded stuck effect run(s): {', '.join(abandoned_runs)}")
        if requests:
            context.log.info(f"re-queued {', '.join(r.run_key or '' for r in requests)}")
        return dg.SensorResult(
            run_requests=requests,
            dynamic_partitions_requests=[videos.build_add_request(new_partitions)] if new_partitions else [],
            cursor=cursor.dump(),
        )

    return recovery_sensor


def _recover_runs(
    context: dg.SensorEvaluationContext,
    store: Store,
    lake: Lake,
    platform: Settings,
    policy: Policy,
    cursor: Cursor,
    now,
    events: list[dict],
) -> tuple[list[dg.RunRequest], list[str]]:
    """Step 4 of a tick (module docstring): the run requests of the re-queued effect runs
    (their ``RecoveryRequeued`` appended to ``events``) and the ids of the runs failed and
    refunded."""
    stale = store.unfinished_runs(now - timedelta(seconds=policy.stuck_after_s))
    facts = gather_runs(lake, store, context.instance, stale, cursor.resumed_at, platform.run_deadline_s)
    rows = {r["run_id"]: r for r in stale}
    partitions = str(effect_runs.name)  # named at definition: never None
    known = set(context.instance.get_dynamic_partitions(partitions))
    requests, abandoned = [], []
    for run_id, f in facts.items():
        decision = decide_run(f, policy, now)
        if isinstance(decision, Requeue):
            if run_id not in known:  # queued, never landed into a partition (the sensor died)
                context.instance.add_dynamic_partitions(partitions, [run_id])
            events.append(requeue_event(decision, now))
            requests.append(requeue_request(decision, run_id))
        elif isinstance(decision, Abandon) and abandon_run(store, lake, decision, rows[run_id]) is not None:
            abandoned.append(run_id)
            warn(
                context,
                f"effect run {run_id}: stuck after {decision.requeues} restarts; failed and refunded",
                event_type="effect_run_abandoned",
                economic_impact_usd=rows[run_id]["tokens"] * platform.token_usd_rate,  # the revenue given back
                urgency="high",
                operator_action="Open the run's failed effect_run_job runs (tag effectlake/recovery) and fix what "
                "stops them.",
                runbook="docs/runbooks/platform-logs.md#effect_run_abandoned",
                run_id=run_id,
            )
    return requests, abandoned
