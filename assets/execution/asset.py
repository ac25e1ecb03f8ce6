"""M6 ``provider_outputs``: run every task of the batch on its provider → TaskSucceeded |
TaskFailed, with measured telemetry; settle each task's reserved tokens."""

import json
import os
import tempfile
from contextlib import ExitStack
from pathlib import Path

import dagster as dg
import polars as pl

from assets.common import SILVER_KW, frame, only_row, silver_ins
from assets.execution.runner import run_tasks
from economics.telemetry import MEASURED, REAL, terminal_event
from resources.events import event, record_execution_events, record_pipeline_events, utcnow
from resources.lake import Lake
from resources.media import MediaStore
from resources.providers.base import ProviderTask, TaskResult
from resources.providers.client import ProviderRegistry
from resources.schemas import PROVIDER_OUTPUTS
from resources.settings import Settings

STAGE = "M6"


def output_key(video_id: str, task_id: str) -> str:
    """Media key of a task's output video."""
    return f"outputs/{video_id}/{task_id}.mp4"


def telemetry(result: TaskResult) -> dict:
    """What the provider run measured (``economics.telemetry.MEASURED``), as stored in
    execution events and ``provider_outputs``."""
    return {field: getattr(result, field) for field in MEASURED}


def result_events(task: dict, result: TaskResult, at, output_bytes: int | None = None) -> tuple[dict, dict]:
    """The (pipeline event, execution event) pair recording one finished task. The execution
    event carries the telemetry as its typed columns (``economics.telemetry.TELEMETRY``),
    including ``output_bytes``, the stored output's size (base of storage and bandwidth
    cost); its payload is empty."""
    kind = terminal_event(result.status)
    pipeline = event(
        kind,
        task["video_id"],
        STAGE,
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
        STAGE,
        {},
        identity=task["task_id"],
        occurred_at=at,
        task_id=task["task_id"],
        provider_id=task["provider_id"],
        effect_type=task["effect_type"],
        **telemetry(result),
        selection=task["selection"],
        source=REAL,
        output_bytes=output_bytes,
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
) -> pl.DataFrame:
    """One row per task: status, output media key, duration, queue wait, measured compute
    seconds, instance type, partner cost, attempts, error class and message.

    A failing provider fails only its own task; the run succeeds as long as the stage could
    record every outcome.
    """
    video = only_row(ingested_video, "ingested_video")
    tasks = list(test_batch.iter_rows(named=True))
    registry = providers.registry()
    with ExitStack() as stack, tempfile.TemporaryDirectory() as workdir:
        # Each task renders on its input_key (M5: the job's neutral reference clip), else the proxy.
        keys = {t.get("input_key") or video["proxy_key"] for t in tasks}
        inputs = {k: stack.enter_context(media.local_file(k)) for k in sorted(keys)}
        jobs = [
            ProviderTask(
                task_id=t["task_id"],
                video_id=t["video_id"],
                effect_type=t["effect_type"],
                provider_id=t["provider_id"],
                input_path=inputs[t.get("input_key") or video["proxy_key"]],
                output_path=str(Path(workdir) / f"{t['task_id']}.mp4"),
                params=json.loads(t["params"]),
                prompt=t["prompt"],
            )
            for t in tasks
        ]
        results = run_tasks(jobs, providers.adapter, platform.max_parallel_tasks, registry.instance_type)
        sizes = {}
        for job, result in zip(jobs, results, strict=True):
            if result.status == "succeeded":
                sizes[job.task_id] = os.path.getsize(result.output_path)
                media.put_file(output_key(job.video_id, job.task_id), result.output_path)
    finished = utcnow()
    rows, pipeline_events, execution_events = [], [], []
    for task, result in zip(tasks, results, strict=True):
        ok = result.status == "succeeded"
        rows.append(
            {
                "video_id": task["video_id"],
                "task_id": task["task_id"],
                "effect_type": task["effect_type"],
                "provider_id": task["provider_id"],
                "selection": task["selection"],
                **telemetry(result),
                "output_key": output_key(task["video_id"], task["task_id"]) if ok else None,
                "node_timings": json.dumps(result.node_timings),
                "finished_at": finished,
            }
        )
        p, e = result_events(task, result, finished, sizes.get(task["task_id"]))
        pipeline_events.append(p)
        execution_events.append(e)
        if not ok:
            context.log.warning(
                f"task {task['task_id']} on {task['provider_id']} failed ({result.error_class}): {result.error_message}"
            )
    record_execution_events(lake, execution_events)
    record_pipeline_events(lake, pipeline_events)
    succeeded = sum(r["status"] == "succeeded" for r in rows)
    context.add_output_metadata(
        {
            "tasks": len(rows),
            "succeeded": succeeded,
            "failed": len(rows) - succeeded,
            "compute_seconds": round(sum(r["compute_seconds"] or 0 for r in rows), 3),
        }
    )
    return frame(rows, PROVIDER_OUTPUTS)
