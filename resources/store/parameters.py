"""Runtime parameters and their audit trail (``runtime_parameters``, ``parameter_changes``;
docs/signals.md, "Runtime parameters").

A runtime parameter overrides a shipped default while the platform runs: a provider's
dispatch concurrency, an effect's price, a routing pin or demotion. Each is keyed
(``scope``, ``subject``, ``name``) and holds a JSON value. Every change — an automatic action,
an applied recommendation, a rollback — is one transaction that writes the new value and its
audit row (value before and after) together, so the trail never disagrees with what is in
force and what the dispatch reads.

Why the store and not a lake table: the dispatch reads a provider's concurrency inside the
transaction that claims a slot (``remote.claim``), a change must compare-and-set (an automatic
restore must not undo an admin's later change), and the scale-up budget is a sum that two
concurrent actions must not both spend. Writes of parameters are serialised: SQLite's writes
are (``BEGIN IMMEDIATE``), PostgreSQL takes a transaction advisory lock.

Rollback is a stack: only the change in force for its key — the newest that is not a rollback
and was not rolled back — can be rolled back (a later change is rolled back first), and it
restores the value before exactly: a parameter that was not set is removed again. A rollback
is not itself undone (the value is applied anew instead).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from resources.store.errors import Conflict, InvalidInput, NotFound
from resources.store.models import CHANGE_SOURCES, PARAMETER_SCOPES, ParameterChange, RuntimeParameter
from resources.store.sql import as_dict, new_id, utcnow

Key = tuple[str, str, str]  # (scope, subject, name)
# The scopes (``models.PARAMETER_SCOPES``) and the parameter names the platform honours
# (resources/services/runtime.py says where each is read).
PROVIDER, EFFECT, ROUTING = "provider", "effect", "routing"
CONCURRENCY, PRICE = "concurrency", "price_tokens"
# The advisory lock every parameter write takes on PostgreSQL (any fixed 64-bit number).
_LOCK = 0x454C4B504152414D  # "ELKPARAM"
UNSET: Any = object()  # "no expectation" (None means "expected not set")


class ParameterConflict(Conflict):
    """The value in force is not the one the change expected (someone changed it since), or
    the change to roll back is not the one in force."""

    code = "parameter_conflict"


class GuardrailRefused(Conflict):
    """A guard of the change refused it (e.g. the scale-up budget is spent)."""

    code = "guardrail_refused"


def encode(value: Any) -> str | None:
    """A value as stored (canonical JSON; None stays None: not set)."""
    return None if value is None else json.dumps(value, sort_keys=True)


def decode(raw: str | None) -> Any:
    """A stored value back (None: not set)."""
    return None if raw is None else json.loads(raw)


def _serialise(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})


def _row(p: RuntimeParameter) -> dict:
    return {**as_dict(p), "value": decode(p.value)}


def _change(c: ParameterChange) -> dict:
    return {**as_dict(c), "before": decode(c.before), "after": decode(c.after)}


def in_force(session: Session, scope: str | None = None) -> dict[Key, dict]:
    """Every parameter set now (of ``scope``): key → row (``value`` decoded, ``change_id``,
    ``updated_at``)."""
    query = select(RuntimeParameter)
    if scope is not None:
        query = query.where(RuntimeParameter.scope == scope)
    return {(p.scope, p.subject, p.name): _row(p) for p in session.scalars(query)}


def get(session: Session, scope: str, subject: str, name: str) -> dict | None:
    """The parameter (scope, subject, name) set now (``value`` decoded, ``change_id``,
    ``updated_at``), or None when it is not set. Read inside the caller's transaction, so a
    decision taken on it (a run's price) and the write it leads to see the same value."""
    row = session.get(RuntimeParameter, (scope, subject, name))
    return None if row is None else _row(row)


def values(session: Session, scope: str, name: str) -> dict[str, Any]:
    """subject → value of the parameters ``scope``.``name`` set now (e.g. provider →
    concurrency)."""
    query = select(RuntimeParameter).where(RuntimeParameter.scope == scope, RuntimeParameter.name == name)
    return {p.subject: decode(p.value) for p in session.scalars(query)}


def apply(
    session: Session,
    scope: str,
    subject: str,
    name: str,
    after: Any,
    *,
    source: str,
    actor: str,
    reason: str,
    source_id: str | None = None,
    expect: Any = UNSET,
    cost_usd_per_hour: float | None = None,
    guard: Callable[[dict[Key, dict]], None] | None = None,
    at: datetime | None = None,
) -> dict:
    """Set (``after`` not None) or remove (None) one parameter and record the change.

    Args:
        source: ``bottleneck`` | ``recommendation`` | ``rollback``; ``source_id`` its id
            (classification, recommendation, rolled-back change).
        actor: ``auto`` or the admin.
        expect: the value the caller saw (None: not set); a different value in force is a
            ``ParameterConflict`` (compare-and-set). Omitted: no check.
        cost_usd_per_hour: what the change adds to the hourly bill, if anything.
        guard: called with every parameter in force, under the write lock, before the write;
            raises ``GuardrailRefused`` to refuse (e.g. a budget check that must see
            concurrent changes).

    Returns:
        The ``parameter_changes`` row (``before``/``after`` decoded).

    Raises:
        InvalidInput: unknown scope or source, or the value in force is already ``after``.
        ParameterConflict, GuardrailRefused: as above.
    """
    if scope not in PARAMETER_SCOPES or source not in CHANGE_SOURCES:
        raise InvalidInput(f"scope must be one of {PARAMETER_SCOPES}, source one of {CHANGE_SOURCES}")
    _serialise(session)
    row = session.get(RuntimeParameter, (scope, subject, name), with_for_update=True)
    before = decode(row.value) if row is not None else None
    if expect is not UNSET and encode(before) != encode(expect):
        raise ParameterConflict(f"{scope}.{subject}.{name} is {before!r}, not the {expect!r} this change expected")
    if encode(before) == encode(after):
        raise InvalidInput(f"{scope}.{subject}.{name} is already {after!r}")
    if guard is not None:
        guard(in_force(session))
    at = at or utcnow()
    change_id = new_id("chg", 12)
    if after is None:
        session.execute(
            delete(RuntimeParameter).where(
                RuntimeParameter.scope == scope, RuntimeParameter.subject == subject, RuntimeParameter.name == name
            )
        )
    elif row is None:
        session.add(
            RuntimeParameter(
                scope=scope, subject=subject, name=name, value=encode(after), change_id=change_id, updated_at=at
            )
        )
    else:
        row.value, row.change_id, row.updated_at = encode(after), change_id, at
    change = ParameterChange(
        change_id=change_id,
        scope=scope,
        subject=subject,
        name=name,
        before=encode(before),
        after=encode(after),
        source=source,
        source_id=source_id,
        actor=actor,
        reason=reason[:1000],
        cost_usd_per_hour=cost_usd_per_hour,
        applied_at=at,
    )
    session.add(change)
    session.flush()
    return _change(change)


def rollback(session: Session, change_id: str, *, actor: str, reason: str, at: datetime | None = None) -> dict:
    """Undo ``change_id``: its parameter gets its value before back (removed if it was not
    set), recorded as a change of source ``rollback``; the original is marked
    ``rolled_back_by``.

    Returns:
        The rollback's ``parameter_changes`` row.

    Raises:
        NotFound: no such change.
        ParameterConflict: already rolled back, a rollback itself, or another change is in
            force for its key (roll that one back first).
    """
    _serialise(session)
    original = session.scalars(
        select(ParameterChange).where(ParameterChange.change_id == change_id).with_for_update()
    ).one_or_none()
    if original is None:
        raise NotFound(f"no parameter change {change_id!r}")
    if original.rolled_back_by is not None:
        raise ParameterConflict(f"change {change_id} was already rolled back by {original.rolled_back_by}")
    if original.source == "rollback":
        raise ParameterConflict(f"change {change_id} is a rollback: apply the value anew instead of undoing it")
    key = (original.scope, original.subject, original.name)
    if _in_force(session, key) != change_id:
        raise ParameterConflict(
            f"change {change_id} is not in force for {'.'.join(key)} (a later change is); roll that one back first"
        )
    undo = apply(
        session,
        *key,
        decode(original.before),
        source="rollback",
        source_id=change_id,
        actor=actor,
        reason=reason,
        at=at,
    )
    original.rolled_back_by = undo["change_id"]
    return undo


def _in_force(session: Session, key: Key) -> str | None:
    """The change in force for ``key``: the newest one that is not a rollback and was not
    rolled back (rollbacks pop changes off the key's stack)."""
    scope, subject, name = key
    return session.scalars(
        select(ParameterChange.change_id)
        .where(
            ParameterChange.scope == scope,
            ParameterChange.subject == subject,
            ParameterChange.name == name,
            ParameterChange.source != "rollback",
            ParameterChange.rolled_back_by.is_(None),
        )
        .order_by(ParameterChange.seq.desc())
        .limit(1)
    ).one_or_none()


def get_change(session: Session, change_id: str) -> dict:
    """One change. Raises ``NotFound``."""
    found = session.scalars(select(ParameterChange).where(ParameterChange.change_id == change_id)).one_or_none()
    if found is None:
        raise NotFound(f"no parameter change {change_id!r}")
    return _change(found)


def changes(
    session: Session,
    *,
    source: str | None = None,
    source_ids: list[str] | None = None,
    after_seq: int = 0,
    limit: int = 100,
    newest_first: bool = False,
) -> list[dict]:
    """Changes in ``seq`` order after ``after_seq`` (a page), or the newest first;
    optionally of one source, or of some source ids."""
    order = ParameterChange.seq.desc() if newest_first else ParameterChange.seq
    query = select(ParameterChange).where(ParameterChange.seq > after_seq).order_by(order).limit(limit)
    if source is not None:
        query = query.where(ParameterChange.source == source)
    if source_ids is not None:
        query = query.where(ParameterChange.source_id.in_(source_ids))
    return [_change(c) for c in session.scalars(query)]


def overlay(defaults: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``defaults`` with the overrides of the same subjects in force (a subject only in
    ``overrides`` is ignored: a parameter of something no longer shipped changes nothing)."""
    return {k: overrides.get(k, v) for k, v in defaults.items()}
