"""Remote provider tasks outside any run's wait: sending them when a slot is free, reading
their state, stopping the overdue, retrying the transient failures (docs/architecture.md,
"Remote tasks"). Plain code over the store, the registry and the media store — no Dagster: M6
calls ``send`` for its own video's tasks, the completion sensor ``advance`` for all.

The decisions are ``resources.providers.resilience``'s; the state is the store's
``remote_tasks`` and ``provider_breakers`` rows; what happened is returned as pipeline events
(``TaskSubmitted``, ``TaskRetryScheduled``, ``TaskDeadlinePassed``, ``ProviderBreakerChanged``)
for the caller to append.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from resources.events import event
from resources.media import MediaStore
from resources.providers.base import Located, ProviderTask, RemoteAdapter, RemoteStatus, TaskResult
from resources.providers.client import RegistryView
from resources.providers.registry import ProviderSpec
from resources.providers.resilience import BreakerPolicy, Transition, account, overdue, retry_delay_s, send_orphaned
from resources.store import parameters, remote
from resources.store.client import Store

STAGE = "M6"
BREAKER_EVENT = "ProviderBreakerChanged"
# The orphan-recovery sensor's events about remote tasks (pipelines/recovery).
RECOVERY_STAGE = "recovery"
RESUMED_EVENT, ORPHANED_EVENT = "RemoteTaskRequeued", "RemoteTaskOrphaned"
ORPHANED = "Orphaned"


@dataclass
class Progress:
    """What one pass changed: pipeline events to append, the videos whose remote tasks are
    all finished with some not yet collected (ready for M6 to collect: video → how many), and
    how many remote tasks are still open."""

    events: list[dict] = field(default_factory=list)
    ready: dict[str, int] = field(default_factory=dict)  # video id → its remote tasks, all states
    open_tasks: int = 0


def breaker_event(t: Transition, correlation_id: str) -> dict:
    """The pipeline event of a breaker's state change (correlation: the video whose task
    caused it)."""
    return event(
        BREAKER_EVENT,
        correlation_id,
        STAGE,
        {"provider_id": t.provider_id, "from": t.from_state, "to": t.to_state, "reason": t.reason},
        identity=f"{t.provider_id}:{t.to_state}:{t.at.isoformat()}",
        occurred_at=t.at,
    )


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def run_deadline(row: dict) -> datetime | None:
    """The deadline of the effect run a remote task serves (its spec's ``deadline``, ISO
    8601), or None for a video's task: past it the task is stopped (``RunDeadline``), since
    its output could no longer be delivered in time."""
    at = json.loads(row["spec"]).get("deadline")
    return datetime.fromisoformat(at) if at else None


@dataclass(frozen=True)
class Collected:
    """A finished remote task, collected: its result as the provider timed it (``output_path``
    the downloaded file when it succeeded), the stored output's size, and why the provider's
    clean-up failed (None when it did not)."""

    result: TaskResult
    output_bytes: int | None
    cleanup_error: str | None = None


def collect(row: dict, spec: ProviderSpec, adapter: RemoteAdapter, media: MediaStore, key: str, dest: str) -> Collected:
    """Collect a ``finished`` remote task (its store ``row``): download a succeeded output to
    ``dest`` and store it under media key ``key`` (a vanished output fails the task,
    ``OutputMissing``), clean the provider up (a failed clean-up costs disk, not correctness:
    reported, not raised), and build its ``TaskResult`` from the stored outcome. M6 collects a
    video's tasks with it, an effect run its own (``assets/runs``)."""
    r = json.loads(row["result"])
    status, error_class, message, size = r["status"], r["error_class"], r["error_message"], None
    if status == "succeeded":
        try:
            size = adapter.fetch(r["handle"], r["output"], dest)
            media.put_file(key, dest)
        except Exception as exc:  # noqa: BLE001 - a vanished output fails this task only
            status, error_class, message = "failed", "OutputMissing", f"{type(exc).__name__}: {exc}"
    cleanup_error = None
    if r.get("handle"):
        try:
            adapter.cleanup(r["handle"], r.get("output"))
        except Exception as exc:  # noqa: BLE001 - leftovers cost disk, not correctness
            cleanup_error = str(exc)
    started = r.get("started")
    result = TaskResult(
        task_id=row["task_id"],
        status=status,
        output_path=dest if status == "succeeded" else None,
        duration_ms=int(r["duration_ms"]),
        compute_seconds=float(r["compute_seconds"]),
        instance_type=spec.instance_type,
        queue_wait_ms=int(r["queue_wait_ms"]),
        partner_cost_usd=spec.cost.partner_cost_usd_per_call if started and not r.get("reused") else 0.0,
        attempts=int(r["attempts"]),
        error_class=error_class,
        error_message=message,
    )
    return Collected(result, size if status == "succeeded" else None, cleanup_error)


def send(
    store: Store,
    registry: RegistryView,
    adapter_for: Callable[[str], RemoteAdapter],
    media: MediaStore,
    now: datetime,
    video_id: str | None = None,
) -> Progress:
    """Claim the waiting tasks that have a slot (the registry's concurrency, or the
    ``provider.<id>.concurrency`` runtime parameter in force) and an allowing breaker, and
    submit each.

    A submit the provider refused is a failed attempt: retried after the backoff (or its
    ``Retry-After``) when transient, else finished as failed.
    """
    capacity = {p.provider_id: p.concurrency for p in registry.providers if p.remote}
    servers = {p.provider_id: p.servers for p in registry.providers if p.remote}
    policies = {p.provider_id: p.breaker_policy() for p in registry.providers if p.remote}
    with store.write() as s:
        # A concurrency in force (a throttled provider reduced, a saturated one scaled up;
        # docs/signals.md "Runtime parameters") is read in the claim's own transaction.
        capacity = parameters.overlay(capacity, parameters.values(s, "provider", "concurrency"))
        claimed, transitions = remote.claim(s, capacity, policies, now, video_id, servers)
    progress = Progress(events=[breaker_event(t, t.provider_id) for t in transitions])
    for row in claimed:
        spec = json.loads(row["spec"])
        adapter = adapter_for(row["provider_id"])
        with media.local_file(spec["input_key"]) as proxy:
            handle = adapter.submit(
                ProviderTask(
                    task_id=row["task_id"],
                    video_id=row["video_id"],
                    effect_type=row["effect_type"],
                    provider_id=row["provider_id"],
                    input_path=proxy,
                    output_path="",  # M6 downloads to a place of its own when it collects
                    params=spec.get("params", {}),
                    prompt=spec.get("prompt", ""),
                    attempt=int(row["attempt"]),
                    server=int(row["server"] or 0),
                )
            )
        status = adapter.status(handle) if "error" in json.loads(handle) else None
        if status is not None:
            progress.events += _failed_attempt(store, registry, row, status, handle, now)
            continue
        job_id = json.loads(handle).get("prompt_id")
        with store.write() as s:
            remote.submitted(s, row["task_id"], handle, job_id, now)
        progress.events.append(
            event(
                "TaskSubmitted",
                row["video_id"],
                STAGE,
                {
                    "task_id": row["task_id"],
                    "provider_id": row["provider_id"],
                    "provider_job_id": job_id,
                    "attempt": row["attempt"],
                    "reused": json.loads(handle).get("reused", False),
                },
                identity=f"{row['task_id']}:{row['attempt']}",
                occurred_at=now,
            )
        )
    return progress


def _result(row: dict, status: RemoteStatus, handle: str | None, now: datetime, error_class: str | None = None) -> dict:
    """The stored outcome of a finished task, timed by the provider's own clock."""
    h = json.loads(handle) if handle else {}
    spent = account(
        _ms(row["enqueued_at"]), status.start_ms, status.end_ms, reused=bool(h.get("finished_before_submit"))
    )
    ok = status.state == "done" and status.succeeded and error_class is None
    duration = (status.end_ms - status.start_ms) if status.start_ms and status.end_ms else 0
    return {
        "status": "succeeded" if ok else "failed",
        "error_class": None if ok else (error_class or status.error_class),
        "error_message": None if ok else status.error_message,
        "queue_wait_ms": spent.queue_wait_ms,
        "compute_seconds": spent.compute_seconds,
        "duration_ms": int(max(0, duration)),
        "attempts": int(row["attempt"]),
        "reused": bool(h.get("finished_before_submit")),
        "started": status.start_ms is not None,
        "output": status.output,
        "handle": handle,
        "notes": list(spent.notes),
    }


def _failed_attempt(
    store: Store, registry: RegistryView, row: dict, status: RemoteStatus, handle: str | None, now: datetime
) -> list[dict]:
    """A failed attempt: scheduled again after the backoff when transient and attempts are
    left, else the task's final failure. The failure counts in the provider's breaker."""
    spec = registry.spec(row["provider_id"])
    delay = retry_delay_s(spec.retry_policy(), status.error_class, int(row["attempt"]), status.retry_after_s)
    events = []
    with store.write() as s:
        if delay is None:
            # The failed prompt's compute is kept with the failure: the provider spent it.
            change = remote.finish(s, row["task_id"], _result(row, status, handle, now), spec.breaker_policy(), now)
        else:
            change = remote.retry_later(
                s,
                row["task_id"],
                status.error_class or "Unknown",
                now + timedelta(seconds=delay),
                spec.breaker_policy(),
                now,
            )
            events.append(
                event(
                    "TaskRetryScheduled",
                    row["video_id"],
                    STAGE,
                    {
                        "task_id": row["task_id"],
                        "provider_id": row["provider_id"],
                        "attempt": row["attempt"],
                        "error_class": status.error_class,
                        "wait_s": round(delay, 3),
                        "retry_after_s": status.retry_after_s,
                        "compute_seconds_lost": _result(row, status, handle, now)["compute_seconds"],
                    },
                    identity=f"{row['task_id']}:{row['attempt']}",
                    occurred_at=now,
                )
            )
    if change is not None:
        events.append(breaker_event(change, row["video_id"]))
    return events


def poll(store: Store, registry: RegistryView, adapter_for: Callable[[str], RemoteAdapter], now: datetime) -> Progress:
    """Read every sent task's state from its provider and act: note when it started, stop it
    past a deadline, finish it when the provider's record is final (retrying transient
    failures), and give up on waiting tasks past their queue bound."""
    progress = Progress()
    for row in store.remote_tasks(("waiting", "submitted", "submitting", "cancelling")):
        spec = registry.spec(row["provider_id"])
        deadlines = spec.deadlines()
        if row["state"] == "waiting":
            if (late := overdue(deadlines, row["enqueued_at"], None, now, run_deadline(row))) is not None:
                progress.events += _give_up(store, registry, row, late, now)
            continue
        if row["state"] == "submitting" or not row["handle"]:
            continue  # a sender is at work (or died: its claim ages into a queue timeout)
        adapter = adapter_for(row["provider_id"])
        status = adapter.status(row["handle"])
        if status.state == "done":
            interrupted_by_us = row["state"] == "cancelling" and not status.succeeded
            if status.succeeded or interrupted_by_us or not _transient(status):
                reason = row["error_class"] if interrupted_by_us else None
                with store.write() as s:
                    change = remote.finish(
                        s, row["task_id"], _result(row, status, row["handle"], now, reason), spec.breaker_policy(), now
                    )
                if change is not None:
                    progress.events.append(breaker_event(change, row["video_id"]))
            else:
                progress.events += _failed_attempt(store, registry, row, status, row["handle"], now)
            continue
        if status.state == "lost":
            progress.events += _failed_attempt(store, registry, row, status, row["handle"], now)
            continue
        if status.state == "running" and row["started_at"] is None:
            with store.write() as s:
                remote.started(s, row["task_id"], now)
            row["started_at"] = now
        if row["state"] == "cancelling":
            if now - row["cancel_requested_at"] > timedelta(seconds=deadlines.cancel_grace_s):
                progress.events += _give_up(store, registry, row, row["error_class"] or "Timeout", now)
            continue
        late = overdue(deadlines, row["enqueued_at"], row["started_at"], now, run_deadline(row))
        if late is not None:
            adapter.cancel(row["handle"])
            with store.write() as s:
                remote.cancelling(s, row["task_id"], now, late)
            progress.events.append(
                event(
                    "TaskDeadlinePassed",
                    row["video_id"],
                    STAGE,
                    {
                        "task_id": row["task_id"],
                        "provider_id": row["provider_id"],
                        "deadline": late,
                        "started_at": row["started_at"].isoformat() if row["started_at"] else None,
                    },
                    identity=f"{row['task_id']}:{row['attempt']}",
                    occurred_at=now,
                )
            )
    return progress


def _transient(status: RemoteStatus) -> bool:
    from resources.providers.resilience import is_transient

    return is_transient(status.error_class)


def _give_up(store: Store, registry: RegistryView, row: dict, error_class: str, now: datetime) -> list[dict]:
    """Finish a task the provider never gave a final record for (never started, or no record
    came within the cancel grace): failed, no compute known to the provider."""
    spec = registry.spec(row["provider_id"])
    status = RemoteStatus("done", error_class=error_class, error_message=f"{error_class} (no final record)")
    with store.write() as s:
        change = remote.finish(
            s, row["task_id"], _result(row, status, row["handle"], now, error_class), spec.breaker_policy(), now
        )
    return [breaker_event(change, row["video_id"])] if change is not None else []


def advance(
    store: Store,
    registry: RegistryView,
    adapter_for: Callable[[str], RemoteAdapter],
    media: MediaStore,
    now: datetime,
) -> Progress:
    """One pass of the completion sensor: ``poll`` every sent task, ``send`` what now has a
    slot, and name the videos ready to collect (every remote task finished, some not yet
    collected)."""
    progress = poll(store, registry, adapter_for, now)
    sent = send(store, registry, adapter_for, media, now)
    progress.events += sent.events
    open_rows = store.remote_tasks()
    progress.open_tasks = len(open_rows)
    by_video: dict[str, list[str]] = {}
    for r in open_rows:
        by_video.setdefault(r["video_id"], []).append(r["state"])
    # Counted over all of the video's remote tasks, collected ones too: a fallback sent after
    # a first collect makes a new count, so a new collect request.
    progress.ready = {
        v: len(store.video_remote_tasks(v)) for v, states in by_video.items() if set(states) == {"finished"}
    }
    return progress


def recover_orphaned_sends(
    store: Store,
    registry: RegistryView,
    adapter_for: Callable[[str], RemoteAdapter],
    now: datetime,
    grace_s: float,
) -> list[dict]:
    """Resolve the remote tasks whose send was orphaned (``resilience.send_orphaned``: still
    ``submitting`` after ``grace_s``, so they hold a provider slot for nobody) exactly once
    each: ask the provider (``RemoteAdapter.locate``) whether it has that attempt —

    - it has: back to ``submitted`` with the handle found, so the completion sensor follows
      it again (``RemoteTaskRequeued``);
    - it answered that it has not: finished as failed, ``Orphaned`` with a readable message
      (``RemoteTaskOrphaned``); the video then goes on as after any failed task (a fallback,
      its evaluation, or no usable result and the job's refund);
    - it did not answer: nothing this time.

    Both changes apply only while the row is still that attempt's ``submitting``, so a second
    pass (or a slow sender recording its own answer) changes nothing. Returns the events.
    """
    events = []
    known = {p.provider_id for p in registry.providers}
    for row in store.remote_tasks(("submitting",)):
        if not send_orphaned(row["submitted_at"], now, grace_s):
            continue
        attempt = int(row["attempt"])
        if row["provider_id"] in known:
            found = adapter_for(row["provider_id"]).locate(row["task_id"], attempt)
            policy = registry.spec(row["provider_id"]).breaker_policy()
        else:  # the provider left the registry: nobody can be asked, and nobody will send it
            found, policy = Located(False, detail=f"provider {row['provider_id']} is not registered"), None
        if found.known is None:
            continue
        payload = {
            "task_id": row["task_id"],
            "provider_id": row["provider_id"],
            "attempt": attempt,
            "sending_since": row["submitted_at"].isoformat(),
            "provider_says": found.detail,
        }
        if found.known:
            assert found.handle is not None
            job_id = json.loads(found.handle).get("prompt_id")
            with store.write() as s:
                changed = remote.resumed(s, row["task_id"], attempt, found.handle, job_id, now)
            kind = RESUMED_EVENT
        else:
            message = (
                "the task was being sent to the provider when its sender stopped, and the provider "
                f"never received it ({found.detail})"
            )
            status = RemoteStatus("done", error_class=ORPHANED, error_message=message)
            with store.write() as s:
                changed = remote.orphaned(
                    s,
                    row["task_id"],
                    attempt,
                    _result(row, status, None, now, ORPHANED),
                    policy or BreakerPolicy(),
                    now,
                )
            kind = ORPHANED_EVENT
        if changed:
            events.append(
                event(
                    kind,
                    row["video_id"],
                    RECOVERY_STAGE,
                    payload,
                    identity=f"{row['task_id']}:{attempt}",
                    occurred_at=now,
                )
            )
    return events
