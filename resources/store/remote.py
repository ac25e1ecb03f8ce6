"""Remote provider tasks and provider breakers in the store (``models.RemoteTask``,
``models.ProviderBreaker``): the durable side of ``resources.providers.resilience``.

Why the store and not a lake table: these rows change state several times a minute from
several processes at once (intake runs sending, the completion sensor polling), and sending
must be counted against a provider's slots exactly — a row lock per provider does that; Delta's
optimistic whole-table commits do not. Their history is in the lake as events.

Each function takes a session so callers can compose them in one transaction
(``Store.write()``). Admission locks the provider's breaker row (``SELECT … FOR UPDATE`` on
PostgreSQL; SQLite write transactions are serial), so two senders never both take a
provider's last slot, and a half-open breaker lets exactly its probes through.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from resources.providers.resilience import (
    NOT_THE_PROVIDERS_FAULT,
    Breaker,
    BreakerPolicy,
    Transition,
    Waiting,
    admit,
    assign_servers,
    breaker_record,
    breaker_view,
    transition,
)
from resources.store.models import ProviderBreaker, RemoteTask
from resources.store.sql import as_dict, insert_ignore

# Sent and not finished: these hold a provider slot.
IN_FLIGHT = ("submitting", "submitted", "cancelling")
# Not yet collected by M6: the completion sensor has work while any exist.
OPEN_STATES = ("waiting", *IN_FLIGHT, "finished")


def enqueue(session: Session, tasks: Iterable[Mapping], now: datetime) -> list[str]:
    """Insert tasks as ``waiting`` (a task already known is left as it is); the ids inserted.

    Args:
        tasks: ``{task_id, video_id, provider_id, effect_type, selection, spec}`` (``spec``
            a JSON string).
    """
    inserted = []
    for t in tasks:
        row = {k: t[k] for k in ("task_id", "video_id", "provider_id", "effect_type", "selection", "spec")}
        if insert_ignore(session, RemoteTask, {**row, "state": "waiting", "attempt": 1, "enqueued_at": now}):
            inserted.append(t["task_id"])
    return inserted


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _breaker(row: ProviderBreaker | None) -> Breaker:
    if row is None:
        return Breaker()
    outcomes = tuple((datetime.fromtimestamp(ms / 1000, UTC), bool(ok)) for ms, ok in json.loads(row.outcomes))
    return Breaker(row.state, row.consecutive_failures, outcomes, row.opened_at, row.probes_in_flight, row.changed_at)


def _lock_breakers(session: Session, provider_ids: Iterable[str]) -> dict[str, ProviderBreaker]:
    ids = sorted(set(provider_ids))  # one lock order everywhere: no deadlocks between lockers
    for pid in ids:
        insert_ignore(
            session,
            ProviderBreaker,
            {"provider_id": pid, "state": "closed", "consecutive_failures": 0, "outcomes": "[]", "probes_in_flight": 0},
        )
    rows = session.scalars(
        select(ProviderBreaker)
        .where(ProviderBreaker.provider_id.in_(ids))
        .order_by(ProviderBreaker.provider_id)
        .with_for_update()
    ).all()
    return {r.provider_id: r for r in rows}


def _save(row: ProviderBreaker, b: Breaker) -> None:
    row.state, row.consecutive_failures = b.state, b.consecutive_failures
    row.outcomes = json.dumps([[_ms(at), ok] for at, ok in b.outcomes])
    row.opened_at, row.probes_in_flight, row.changed_at = b.opened_at, b.probes_in_flight, b.changed_at


def claim(
    session: Session,
    capacity: Mapping[str, int],
    policies: Mapping[str, BreakerPolicy],
    now: datetime,
    video_id: str | None = None,
    servers: Mapping[str, int] | None = None,
) -> tuple[list[dict], list[Transition]]:
    """Take the waiting tasks that may be sent now (``resilience.admit``) and mark them
    ``submitting`` on a server of their provider with no task of ours
    (``resilience.assign_servers``); also the breaker transitions admitting caused (open →
    half-open).

    Args:
        capacity: provider id → its real concurrency (slots).
        video_id: only that video's waiting tasks (M6 sending its own); None = all.
        servers: provider id → its servers (default: its capacity).
    """
    query = select(RemoteTask).where(RemoteTask.state == "waiting")
    if video_id is not None:
        query = query.where(RemoteTask.video_id == video_id)
    waiting = session.scalars(query).all()
    if not waiting:
        return [], []
    providers = {w.provider_id for w in waiting}
    locked = _lock_breakers(session, providers)
    busy = dict(
        session.execute(
            select(RemoteTask.provider_id, func.count())
            .where(RemoteTask.state.in_(IN_FLIGHT), RemoteTask.provider_id.in_(providers))
            .group_by(RemoteTask.provider_id)
        ).all()
    )
    # Re-read under the locks: another sender may have claimed some meanwhile.
    waiting = session.scalars(query.where(RemoteTask.provider_id.in_(providers))).all()
    before = {pid: _breaker(row) for pid, row in locked.items()}
    chosen, after = admit(
        [Waiting(w.task_id, w.provider_id, w.enqueued_at, w.not_before) for w in waiting],
        busy,
        capacity,
        before,
        policies,
        now,
    )
    transitions = []
    for pid, row in locked.items():
        seen = breaker_view(before[pid], policies.get(pid, BreakerPolicy()), now)
        change = transition(pid, before[pid], seen, now)
        if change is not None:
            transitions.append(change)
        _save(row, after.get(pid, seen))
    by_id = {w.task_id: w for w in waiting}
    in_flight = session.execute(
        select(RemoteTask.provider_id, RemoteTask.server).where(
            RemoteTask.state.in_(IN_FLIGHT), RemoteTask.provider_id.in_(providers)
        )
    ).all()
    busy_servers: dict[str, list[int | None]] = {}
    for pid, server in in_flight:
        busy_servers.setdefault(pid, []).append(server)
    placed = assign_servers([(t, by_id[t].provider_id) for t in chosen], busy_servers, dict(servers or capacity))
    claimed = []
    for task_id in chosen:
        w = by_id[task_id]
        w.state, w.submitted_at, w.not_before, w.server = "submitting", now, None, placed[task_id]
        claimed.append(as_dict(w))
    return claimed, transitions


def submitted(session: Session, task_id: str, handle: str, provider_job_id: str | None, now: datetime) -> None:
    """The provider accepted the task: keep its handle and job id."""
    row = session.get(RemoteTask, task_id, with_for_update=True)
    if row is not None and row.state in ("submitting", "waiting"):
        row.state, row.handle, row.provider_job_id, row.submitted_at = "submitted", handle, provider_job_id, now


def resumed(session: Session, task_id: str, attempt: int, handle: str, provider_job_id: str, now: datetime) -> bool:
    """An orphaned send (``submitting`` whose sender stopped) that the provider turned out to
    have: ``submitted`` with the handle the recovery found. Only while the row is still that
    attempt's ``submitting`` (a slow sender that recorded its own answer meanwhile wins);
    True when changed."""
    row = session.get(RemoteTask, task_id, with_for_update=True)
    if row is None or row.state != "submitting" or row.attempt != attempt:
        return False
    row.state, row.handle, row.provider_job_id = "submitted", handle, provider_job_id
    return True


def orphaned(
    session: Session, task_id: str, attempt: int, result: Mapping, policy: BreakerPolicy, now: datetime
) -> bool:
    """An orphaned send the provider never got: ``finish`` it with ``result`` (failed), only
    while the row is still that attempt's ``submitting``; True when changed."""
    row = session.get(RemoteTask, task_id, with_for_update=True)
    if row is None or row.state != "submitting" or row.attempt != attempt:
        return False
    finish(session, task_id, result, policy, now)
    return True


def started(session: Session, task_id: str, at: datetime) -> None:
    """The provider started the task (first seen running): the run deadline counts from here."""
    row = session.get(RemoteTask, task_id, with_for_update=True)
    if row is not None and row.started_at is None:
        row.started_at = at


def cancelling(session: Session, task_id: str, at: datetime, reason: str) -> None:
    """A deadline passed and the interrupt was sent; the outcome is the provider's record."""
    row = session.get(RemoteTask, task_id, with_for_update=True)
    if row is not None and row.state in ("submitted", "submitting"):
        row.state, row.cancel_requested_at, row.error_class = "cancelling", at, reason


def _record_outcome(
    session: Session, provider_id: str, ok: bool, error_class: str | None, policy: BreakerPolicy, now: datetime
) -> Transition | None:
    row = _lock_breakers(session, [provider_id])[provider_id]
    before = _breaker(row)
    if error_class in NOT_THE_PROVIDERS_FAULT:
        return None
    after = breaker_record(before, policy, ok, now)
    _save(row, after)
    return transition(provider_id, before, after, now)


def finish(session: Session, task_id: str, result: Mapping, policy: BreakerPolicy, now: datetime) -> Transition | None:
    """The task's outcome is final: store it and count it in the provider's breaker (once:
    a task already finished is left alone, so a repeated poll is never counted twice).

    Args:
        result: the outcome (``status``, ``error_class``, … see ``models.RemoteTask``).

    Returns:
        The breaker transition the outcome caused, if any.
    """
    row = session.get(RemoteTask, task_id, with_for_update=True)
    if row is None or row.state in ("finished", "collected"):
        return None
    row.state, row.finished_at, row.result = "finished", now, json.dumps(dict(result), sort_keys=True)
    row.error_class = result.get("error_class")
    return _record_outcome(session, row.provider_id, result.get("status") == "succeeded", row.error_class, policy, now)


def retry_later(
    session: Session, task_id: str, error_class: str, not_before: datetime, policy: BreakerPolicy, now: datetime
) -> Transition | None:
    """A transient failure: back to ``waiting`` for the next attempt from ``not_before``; the
    failure counts in the provider's breaker."""
    row = session.get(RemoteTask, task_id, with_for_update=True)
    if row is None or row.state in ("finished", "collected"):
        return None
    row.state, row.attempt, row.not_before = "waiting", row.attempt + 1, not_before
    row.handle = row.provider_job_id = row.started_at = row.cancel_requested_at = None
    row.error_class = error_class
    return _record_outcome(session, row.provider_id, False, error_class, policy, now)


def collected(session: Session, task_ids: Iterable[str], now: datetime) -> None:
    """M6 stored these tasks' outputs and recorded their outcomes."""
    for row in session.scalars(select(RemoteTask).where(RemoteTask.task_id.in_(list(task_ids)))).all():
        if row.state == "finished":
            row.state, row.collected_at = "collected", now


def tasks(session: Session, states: Iterable[str] = OPEN_STATES, video_id: str | None = None) -> list[dict]:
    """Remote tasks in ``states`` (default: every one not collected yet), of one video or all."""
    query = select(RemoteTask).where(RemoteTask.state.in_(list(states)))
    if video_id is not None:
        query = query.where(RemoteTask.video_id == video_id)
    return [as_dict(r) for r in session.scalars(query.order_by(RemoteTask.enqueued_at, RemoteTask.task_id)).all()]


def video_tasks(session: Session, video_id: str) -> list[dict]:
    """Every remote task of ``video_id``, whatever its state."""
    return tasks(session, ("waiting", *IN_FLIGHT, "finished", "collected"), video_id)


def breakers(session: Session) -> dict[str, dict]:
    """provider id → its breaker row (``state``, ``consecutive_failures``, ``opened_at``,
    ``changed_at``…); providers never seen are absent (closed)."""
    return {r.provider_id: as_dict(r) for r in session.scalars(select(ProviderBreaker)).all()}


def breaker(session: Session, provider_id: str) -> Breaker:
    """``provider_id``'s breaker as the pure ``Breaker`` (closed when never seen)."""
    return _breaker(session.get(ProviderBreaker, provider_id))


def record_outcome(
    session: Session, provider_id: str, ok: bool, error_class: str | None, policy: BreakerPolicy, now: datetime
) -> Transition | None:
    """Count an inline (local) task's outcome in its provider's breaker."""
    return _record_outcome(session, provider_id, ok, error_class, policy, now)
