"""Local provider tasks, run and accounted the same way wherever they come from: M6 (a video's
test batch) and effect runs (``assets/runs``).

A task is a dict with ``task_id``, ``video_id`` (its correlation id: the video, or the run),
``effect_type``, ``provider_id``, ``params`` (JSON) and ``prompt``. Each runs on its provider
through ``runner.run_tasks`` (parallel, a failure contained to its task); a succeeded output
is stored in the media store under ``output_key(correlation id, task id)``; every outcome
counts in the provider's circuit breaker (the store's ``provider_breakers``), whose state
changes are returned as events with the retries the adapter made.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from assets.execution import remote as remote_tasks
from assets.execution.runner import run_tasks
from economics.telemetry import DISPATCHED_EVENT
from resources.events import event
from resources.media import MediaStore
from resources.providers.base import ProviderTask, TaskResult
from resources.providers.client import ProviderRegistry, RegistryView
from resources.services.runtime import effective_concurrency
from resources.store import remote
from resources.store.client import Store


def output_key(correlation_id: str, task_id: str) -> str:
    """Media key of a task's output video (correlation id: the task's video, or its run)."""
    return f"outputs/{correlation_id}/{task_id}.mp4"


@dataclass(frozen=True)
class LocalRun:
    """One task run: the task, its result (``output_path`` still in the work directory),
    the size of the stored output (None when it failed) and the pipeline events it caused
    (``TaskRetried`` per inline retry, ``ProviderBreakerChanged`` when its breaker moved)."""

    task: dict
    result: TaskResult
    output_bytes: int | None
    events: list[dict] = field(default_factory=list)


def provider_task(t: dict, input_path: str, workdir: str, input_key: str | None = None) -> ProviderTask:
    """The adapter's task for ``t``, rendering ``input_path`` (media key ``input_key``, which
    its render spec records) into ``workdir``."""
    return ProviderTask(
        task_id=t["task_id"],
        video_id=t["video_id"],
        effect_type=t["effect_type"],
        provider_id=t["provider_id"],
        input_path=input_path,
        output_path=str(Path(workdir) / f"{t['task_id']}.mp4"),
        params=json.loads(t["params"]),
        prompt=t.get("prompt") or "",
        input_key=input_key,
    )


def retry_events(t: dict, result: TaskResult, at: datetime, stage: str) -> list[dict]:
    """``TaskRetried`` per retry an inline task made (its attempts beyond the first)."""
    return [
        event(
            "TaskRetried",
            t["video_id"],
            stage,
            {"task_id": t["task_id"], "provider_id": t["provider_id"], "attempt": n},
            identity=f"{t['task_id']}:{n}",
            occurred_at=at,
        )
        for n in range(2, (result.attempts or 1) + 1)
    ]


def run_local(
    tasks: list[dict],
    input_path: Callable[[dict], str],
    workdir: str,
    providers: ProviderRegistry,
    registry: RegistryView,
    store: Store,
    media: MediaStore,
    *,
    max_workers: int,
    now: datetime,
    at: datetime,
    stage: str,
    input_key: Callable[[dict], str | None] = lambda t: None,
) -> list[LocalRun]:
    """Run ``tasks`` on their (local) providers, at most ``max_workers`` at once.

    Args:
        input_path: task → local path of the video it renders.
        input_key: task → media key of that video (recorded in the output's render spec).
        now: the breaker's clock for the outcomes.
        at: when the events happened (the stage's finish time).
        stage: the stage the events are recorded under.

    Returns:
        One ``LocalRun`` per task, in order.
    """
    jobs = [provider_task(t, input_path(t), workdir, input_key(t)) for t in tasks]
    # The concurrency in force per provider (a runtime parameter may have reduced it).
    slots = effective_concurrency({p.provider_id: p.concurrency for p in registry.providers}, store)
    results = run_tasks(jobs, providers.adapter, max_workers, registry.instance_type, slots)
    out = []
    for t, job, result in zip(tasks, jobs, results, strict=True):
        size = None
        ok = result.status == "succeeded"
        if ok and result.output_path is not None:
            size = os.path.getsize(result.output_path)
            media.put_file(output_key(t["video_id"], job.task_id), result.output_path)
        events = retry_events(t, result, at, stage)
        with store.write() as s:
            change = remote.record_outcome(
                s, t["provider_id"], ok, result.error_class, registry.spec(t["provider_id"]).breaker_policy(), now
            )
        if change is not None:
            events.append(remote_tasks.breaker_event(change, t["video_id"]))
        out.append(LocalRun(t, result, size, events))
    return out


def dispatched_event(
    correlation_id: str,
    t: dict,
    rank: int,
    manifest_version: str,
    fallback_for: str | None,
    at: datetime,
    stage: str,
    job_kind: str,
) -> dict:
    """The ``TaskDispatched`` execution event of task ``t`` (``task_id``, ``provider_id``,
    ``effect_type``, ``selection``) under ``correlation_id`` (its video, or its run): its rank
    in the manifest ``manifest_version`` and, for a fallback, the task it stands in for."""
    return event(
        DISPATCHED_EVENT,
        correlation_id,
        stage,
        {"rank": rank, "manifest_version": manifest_version, "fallback_for": fallback_for},
        identity=t["task_id"],
        occurred_at=at,
        task_id=t["task_id"],
        provider_id=t["provider_id"],
        effect_type=t["effect_type"],
        selection=t["selection"],
        job_kind=job_kind,
    )
