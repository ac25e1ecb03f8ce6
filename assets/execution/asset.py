"""M6 ``provider_outputs``: run every task of the batch on its provider → TaskSucceeded |
TaskFailed, with measured telemetry.

Local providers run inline. Remote ones (ComfyUI) are sent and left running: the intake run
records them ``pending`` and returns; the completion sensor follows them
(``assets/execution/remote.py``) and, once a video's remote tasks are all finished, runs this
asset again (``collect_job``), which stores their outputs, records their outcomes and cleans
the provider up. Materializing again never re-runs a finished task. A ranked task whose
provider failed for good or whose breaker is open falls back to the next provider of the
manifest (``test_batch.fallbacks``); the job is still charged once (M5's one reservation).
"""

import json
import tempfile
from contextlib import ExitStack
from pathlib import Path

import dagster as dg
import polars as pl

from assets.common import SILVER_KW, frame, only_row, silver_ins
from assets.execution import remote as remote_tasks
from assets.execution.local import dispatched_event, output_key, provider_task, run_local
from assets.logs import warn
from economics.telemetry import CREATION, MEASURED, REAL, terminal_event
from resources.events import event, record_execution_events, record_pipeline_events, utcnow
from resources.lake import Lake
from resources.media import MediaStore
from resources.providers.base import TaskResult
from resources.providers.client import ProviderRegistry, RegistryView
from resources.providers.render_spec import try_render_spec
from resources.providers.resilience import breaker_allows
from resources.schemas import PROVIDER_OUTPUTS
from resources.settings import Settings
from resources.store import remote
from resources.store.client import Store

PENDING = "pending"  # a remote task still running: its row is replaced when collected

STAGE = "M6"


def telemetry(result: TaskResult) -> dict:
    """What the provider run measured (``economics.telemetry.MEASURED``), as stored in
    execution events and ``provider_outputs``."""
    return {field: getattr(result, field) for field in MEASURED}


def result_events(
    task: dict,
    result: TaskResult,
    at,
    output_bytes: int | None = None,
    *,
    stage: str = STAGE,
    job_kind: str = CREATION,
) -> tuple[dict, dict]:
    """The (pipeline event, execution event) pair recording one finished task. The execution
    event carries the telemetry as its typed columns (``economics.telemetry.TELEMETRY``),
    including ``output_bytes``, the stored output's size (base of storage and bandwidth
    cost), and the ``job_kind`` the task served (creation, or a user's run); its payload is
    empty."""
    kind = terminal_event(result.status)
    pipeline = event(
        kind,
        task["video_id"],
        stage,
        {
            "task_id": task["task_id"],
            "provider_id": task["provider_id"],
            "effect_type": task["effect_type"],
            "error_class": result.error_class,
        },
        identity=task["task_id"],
        occurred_at=at,
    )
    execution = event(
        kind,
        task["video_id"],
        stage,
        {},
        identity=task["task_id"],
        occurred_at=at,
        task_id=task["task_id"],
        provider_id=task["provider_id"],
        effect_type=task["effect_type"],
        **telemetry(result),
        selection=task["selection"],
        # None for a fallback: it ran because another task failed, not by a routing draw.
        propensity=task.get("propensity"),
        source=REAL,
        output_bytes=output_bytes,
        job_kind=job_kind,
    )
    return pipeline, execution


@dg.asset(group_name="M6_execution", ins=silver_ins("test_batch", "ingested_video"), **SILVER_KW)
def provider_outputs(
    context: dg.AssetExecutionContext,
    test_batch: pl.DataFrame,
    ingested_video: pl.DataFrame,
    lake: dg.ResourceParam[Lake],
    media: dg.ResourceParam[MediaStore],
    providers: dg.ResourceParam[ProviderRegistry],
    platform: dg.ResourceParam[Settings],
    store: dg.ResourceParam[Store],
) -> pl.DataFrame:
    """One row per task: status (``pending`` while a remote task runs), output media key,
    duration, queue wait, measured compute seconds, instance type, partner cost, attempts,
    error class and message.

    A failing provider fails only its own task; the run succeeds as long as the stage could
    record every outcome. Re-entrant: outcomes already recorded (its own earlier partition)
    are kept, remote tasks are read from the store.
    """
    video = only_row(ingested_video, "ingested_video")
    video_id = video["video_id"]
    registry = providers.registry()
    now = utcnow()
    batch = [dict(t) for t in test_batch.iter_rows(named=True)]
    # Its own earlier partition (no dep: an asset's own table): what is already final.
    prior = {
        r["task_id"]: r
        for r in lake.read(PROVIDER_OUTPUTS, pl.col("video_id") == video_id).iter_rows(named=True)
        if r["status"] != PENDING
    }
    stored = {r["task_id"]: r for r in store.video_remote_tasks(video_id)}
    tasks = batch + _earlier_fallbacks(batch, prior, stored)
    rows: dict[str, dict] = {}
    pipeline_events: list[dict] = []
    execution_events: list[dict] = []
    finished = utcnow()

    def record(task: dict, result: TaskResult, output_bytes: int | None, node_timings: str = "{}") -> None:
        ok = result.status == "succeeded"
        spec = result.render_spec
        if spec is None and ok:  # a remote task's output, downloaded: describe it here
            job = provider_task(task, input_path(task), workdir, input_key(task, video))
            spec = try_render_spec(job, providers.adapter(task["provider_id"]), result.output_path)
        rows[task["task_id"]] = {
            "video_id": video_id,
            "task_id": task["task_id"],
            "effect_type": task["effect_type"],
            "provider_id": task["provider_id"],
            "selection": task["selection"],
            **telemetry(result),
            "output_key": output_key(video_id, task["task_id"]) if ok else None,
            "node_timings": node_timings,
            "finished_at": finished,
            "render_spec": json.dumps(spec, sort_keys=True) if spec is not None else None,
        }
        p, e = result_events(task, result, finished, output_bytes)
        pipeline_events.append(p)
        execution_events.append(e)
        if not ok:
            warn(
                context,
                f"task {task['task_id']} on {task['provider_id']} failed "
                f"({result.error_class}): {result.error_message}",
                event_type="provider_task_failed",
                economic_impact_usd=0.0,  # priced by the economics job (execution_costs) once costed
                urgency="medium",
                operator_action="None for one failure; the signals page shows when a provider's error rate climbs.",
                runbook="docs/runbooks/platform-logs.md#provider_task_failed",
                provider_id=task["provider_id"],
                task_id=task["task_id"],
                error_class=result.error_class,
            )

    with ExitStack() as inputs, tempfile.TemporaryDirectory() as workdir:
        opened: dict[str, str] = {}

        def input_path(t: dict) -> str:
            # Each task renders on its input_key (M5: the job's neutral reference clip), else the proxy.
            key = input_key(t, video)
            if key not in opened:
                opened[key] = inputs.enter_context(media.local_file(key))
            return opened[key]

        todo, fallen_back = tasks, {t.get("fallback_for") for t in tasks if t.get("fallback_for")}
        while todo:
            local = []
            for t in todo:
                if t["task_id"] in prior:
                    rows[t["task_id"]] = prior[t["task_id"]]
                    continue
                try:
                    spec = registry.spec(t["provider_id"])
                except KeyError as exc:
                    record(t, _refused(t, "unknown", "UnknownProvider", str(exc)), None)
                    continue
                if spec.remote:
                    _remote(t, spec.provider_id, video, stored, store, now)
                    continue
                if not breaker_allows(store_breaker(store, spec.provider_id), spec.breaker_policy(), now):
                    record(
                        t, _refused(t, spec.instance_type, "BreakerOpen", f"{spec.provider_id}'s breaker is open"), None
                    )
                    continue
                local.append(t)
            ran = run_local(
                local,
                input_path,
                workdir,
                providers,
                registry,
                store,
                media,
                max_workers=platform.max_parallel_tasks,
                now=now,
                at=finished,
                stage=STAGE,
                input_key=lambda t: input_key(t, video),
            )
            for r in ran:
                pipeline_events.extend(r.events)
                record(r.task, r.result, r.output_bytes, json.dumps(r.result.node_timings))
            # Remote tasks: send what has a slot now, collect what has finished.
            if any(registry.spec(t["provider_id"]).remote for t in todo if t["provider_id"] in _ids(registry)):
                sent = remote_tasks.send(store, registry, providers.adapter, media, now, video_id)
                pipeline_events.extend(sent.events)
                stored = {r["task_id"]: r for r in store.video_remote_tasks(video_id)}
                for t in todo:
                    row = stored.get(t["task_id"])
                    if row is not None and t["task_id"] not in rows:
                        _collect(context, t, row, providers, media, workdir, record, rows, video_id, finished)
                with store.write() as s:
                    remote.collected(
                        s,
                        [
                            t["task_id"]
                            for t in todo
                            if t["task_id"] in stored and rows.get(t["task_id"], {}).get("status") != PENDING
                        ],
                        utcnow(),
                    )
            todo = _fallbacks(batch, tasks, rows, fallen_back, registry, store, now)
            for t in todo:
                tasks.append(t)
                fallen_back.add(t["fallback_for"])
                # A fallback takes its original's ranked slot; the job's one reservation covers it.
                execution_events.append(
                    dispatched_event(
                        t["video_id"], t, t["rank"], t["manifest_version"], t["fallback_for"], finished, STAGE, CREATION
                    )
                )
                pipeline_events.append(
                    event(
                        "TaskFellBack",
                        video_id,
                        STAGE,
                        {
                            "task_id": t["fallback_for"],
                            "provider_id": t["failed_provider"],
                            "fallback_task_id": t["task_id"],
                            "fallback_provider_id": t["provider_id"],
                            "reason": t["reason"],
                        },
                        identity=t["fallback_for"],
                        occurred_at=finished,
                    )
                )
    record_execution_events(lake, execution_events)
    record_pipeline_events(lake, pipeline_events)
    out = [rows[t["task_id"]] for t in tasks if t["task_id"] in rows]
    succeeded = sum(r["status"] == "succeeded" for r in out)
    pending = sum(r["status"] == PENDING for r in out)
    context.add_output_metadata(
        {
            "tasks": len(out),
            "succeeded": succeeded,
            "failed": len(out) - succeeded - pending,
            "pending": pending,
            "compute_seconds": round(sum(r.get("compute_seconds") or 0 for r in out), 3),
        }
    )
    return frame(out, PROVIDER_OUTPUTS)


def store_breaker(store: Store, provider_id: str):
    """``provider_id``'s breaker (``resources.providers.resilience.Breaker``) from the store."""
    with store.read() as s:
        return remote.breaker(s, provider_id)


def _ids(registry: RegistryView) -> set[str]:
    return {p.provider_id for p in registry.providers}


def input_key(t: dict, video: dict) -> str:
    """Media key of what task ``t`` renders on: its ``input_key`` (M5 sets the job's reference
    clip), else the video's proxy."""
    return t.get("input_key") or video["proxy_key"]


def _refused(t: dict, instance_type: str, error_class: str, message: str) -> TaskResult:
    """A task that never reached its provider: failed, nothing spent, no attempt made."""
    return TaskResult(
        t["task_id"], "failed", None, 0, 0.0, instance_type, attempts=0, error_class=error_class, error_message=message
    )


def _remote(t: dict, provider_id: str, video: dict, stored: dict, store: Store, now) -> None:
    """Enqueue a remote task in the store (once; a known one is left as it is)."""
    if t["task_id"] in stored:
        return
    spec = {
        "input_key": input_key(t, video),
        "params": json.loads(t["params"]),
        "prompt": t["prompt"],
        "fallback_for": t.get("fallback_for"),
    }
    with store.write() as s:
        remote.enqueue(
            s,
            [
                {
                    "task_id": t["task_id"],
                    "video_id": t["video_id"],
                    "provider_id": provider_id,
                    "effect_type": t["effect_type"],
                    "selection": t["selection"],
                    "spec": json.dumps(spec),
                }
            ],
            now,
        )


def _collect(context, t, row, providers, media, workdir, record, rows, video_id, finished) -> None:
    """A remote task's row: pending until finished; when finished, its output stored, the
    provider cleaned up and its outcome recorded (as the provider timed it)."""
    if row["state"] not in ("finished", "collected"):
        rows[t["task_id"]] = {
            "video_id": video_id,
            "task_id": t["task_id"],
            "effect_type": t["effect_type"],
            "provider_id": t["provider_id"],
            "selection": t["selection"],
            "status": PENDING,
            "instance_type": providers.registry().instance_type(t["provider_id"]),
            "attempts": row["attempt"],
            "node_timings": "{}",
            "finished_at": None,
        }
        return
    got = remote_tasks.collect(
        row,
        providers.registry().spec(t["provider_id"]),
        providers.adapter(t["provider_id"]),
        media,
        output_key(video_id, t["task_id"]),
        str(Path(workdir) / f"{t['task_id']}.mp4"),
    )
    if got.cleanup_error is not None:
        cleanup_failed(context, t, got.cleanup_error)
    record(t, got.result, got.output_bytes)


def cleanup_failed(context, t: dict, error: str) -> None:
    """Warn that the provider's clean-up of task ``t`` failed (its leftover files)."""
    warn(
        context,
        f"task {t['task_id']}: provider clean-up failed: {error}",
        event_type="provider_cleanup_failed",
        economic_impact_usd=0.0,  # leftovers cost the provider's disk, priced nowhere yet
        urgency="low",
        operator_action="Remove the task's leftover files on the provider if this repeats.",
        runbook="docs/runbooks/platform-logs.md#provider_cleanup_failed",
        provider_id=t["provider_id"],
        task_id=t["task_id"],
    )


def _earlier_fallbacks(batch: list[dict], prior: dict, stored: dict) -> list[dict]:
    """Fallback tasks made by an earlier materialization (in its partition or the store)."""
    known = {t["task_id"] for t in batch}
    by_effect = {t["effect_type"]: t for t in batch}
    out = []
    for src in (*prior.values(), *stored.values()):
        if src["task_id"] in known or src["effect_type"] not in by_effect:
            continue
        known.add(src["task_id"])
        base = by_effect[src["effect_type"]]
        spec = json.loads(src["spec"]) if "spec" in src else {}
        out.append(
            {
                **base,
                "task_id": src["task_id"],
                "provider_id": src["provider_id"],
                "selection": src["selection"],
                "propensity": None,
                "fallbacks": [],
                "fallback_for": spec.get("fallback_for"),
            }
        )
    # A fallback read back from the partition names no original: it is the first ranked task
    # of its effect type whose chain lists its provider (fallbacks are made in that order).
    taken = {t["fallback_for"] for t in out if t["fallback_for"]}
    for t in out:
        if t["fallback_for"] is not None:
            continue
        for b in batch:
            ranked_here = b["selection"] == "ranked" and b["effect_type"] == t["effect_type"]
            if ranked_here and b["task_id"] not in taken and t["provider_id"] in (b.get("fallbacks") or []):
                t["fallback_for"] = b["task_id"]
                taken.add(b["task_id"])
                break
    return out


def _fallbacks(batch, tasks, rows, fallen_back, registry: RegistryView, store: Store, now) -> list[dict]:
    """The next provider for each ranked task that failed for good (or was refused by an open
    breaker) and has not fallen back yet: the first of its ``fallbacks`` not already in the
    video's batch, registered, and whose breaker allows."""
    from assets.batch.asset import task_id_for

    used = {t["provider_id"] for t in tasks}
    out = []
    for t in tasks:
        row = rows.get(t["task_id"])
        if t["selection"] != "ranked" or row is None or row["status"] != "failed" or t["task_id"] in fallen_back:
            continue
        chain = t.get("fallbacks") or _chain_of(batch, t)
        for pid in chain:
            if pid in used or pid not in _ids(registry):
                continue
            if not breaker_allows(store_breaker(store, pid), registry.spec(pid).breaker_policy(), now):
                continue
            used.add(pid)
            rest = [p for p in chain if p != pid]
            out.append(
                {
                    **t,
                    "task_id": task_id_for(t["video_id"], t["effect_type"], pid),
                    "provider_id": pid,
                    "propensity": None,
                    "fallbacks": rest,
                    "fallback_for": t["task_id"],
                    "failed_provider": t["provider_id"],
                    "reason": row["error_class"],
                }
            )
            break
    return out


def _chain_of(batch: list[dict], t: dict) -> list[str]:
    """A fallback task's remaining chain: its original's ``fallbacks``."""
    for b in batch:
        if b["effect_type"] == t["effect_type"] and b["selection"] == "ranked":
            return list(b.get("fallbacks") or [])
    return []
