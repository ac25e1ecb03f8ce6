"""The gallery's revisions and pins: immutable revisions, one movable pin per slug.

* A **revision** (``effect_revisions``) is written once and never changed: this module has no
  update, the ORM refuses one (``models.APPEND_ONLY``) and a trigger refuses SQL ``UPDATE`` /
  ``DELETE`` (migration 0007). Its id is derived from (slug, content hash), and (slug,
  content hash) is unique: publishing the same content again finds the existing revision
  and writes nothing.
* A slug's **pin** (``effect_pins``) names the revision the gallery shows. ``publish`` moves
  it when it writes a new revision (the admin approved that content) and on a slug's first
  publication; publishing content that already exists leaves it where it is (a rollback
  stands). ``pin`` moves it to any revision of the slug: rollback is pinning an older one.
* Every move is an **event** (``effect_pin_events``, append-only like the revisions) with
  the revision before and after, who moved it and why; the revisions and the events are
  mirrored tables, landed into ``bronze/effect_revisions`` and ``bronze/effect_pin_events``.

Concurrency: a move locks the slug's pin row (PostgreSQL ``SELECT … FOR UPDATE``; SQLite's
writers are serial), so two admins moving one pin are serialized and ``expected_revision_id``
detects a lost update (``PinConflict``). Two first publications of one slug race on the pin
row's primary key: the insert-if-absent keeps one, the other then moves it as a second move.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from economics.ids import stable_id
from resources.store.errors import (
    EffectNotFound,
    InvalidInput,
    PinConflict,
    RevisionNotFound,
    RevisionOfAnotherEffect,
)
from resources.store.models import EffectPin, EffectPinEvent, EffectRevision
from resources.store.sql import as_dict, insert_ignore, new_id, utcnow

SHA256 = re.compile(r"^[0-9a-f]{64}$")
SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,199}$")
# What a caller gives for a new revision; the store adds revision_id, created_at, seq.
REVISION_FIELDS = (
    "slug",
    "effect_type",
    "provider_id",
    "content_hash",
    "params",
    "template_id",
    "template_version",
    "prompt",
    "price_tokens",
    "snapshot",
    "render_spec",
    "output_key",
    "preview_key",
    "approval_id",
    "source_video_id",
    "created_by",
)
JSON_FIELDS = ("params", "snapshot", "render_spec")


def revision_id_for(slug: str, content_hash: str) -> str:
    """The id of the revision of ``slug`` with ``content_hash``: ``r_`` + 24 hex digits of
    ``economics.ids.stable_id("revision", slug, content_hash)``."""
    return f"r_{stable_id('revision', slug, content_hash, length=24)}"


@dataclass(frozen=True)
class Published:
    """What ``publish`` did: the revision that stands for the content, whether this call
    wrote it (``created``), and the slug's pin after the call (``pin``: the pin row;
    ``pin_moved``: this call moved it)."""

    revision: dict
    created: bool
    pin: dict
    pin_moved: bool


@dataclass(frozen=True)
class Pinned:
    """What ``pin`` did: the pin row after the call, the revision pinned before it, whether
    it moved, and the event recorded (None when it did not move)."""

    pin: dict
    previous_revision_id: str | None
    moved: bool
    event: dict | None


def _check(values: dict) -> dict:
    missing = [f for f in REVISION_FIELDS if f not in values]
    extra = sorted(set(values) - set(REVISION_FIELDS) - {"created_at"})
    if missing or extra:
        raise InvalidInput(f"a revision needs exactly {REVISION_FIELDS}; missing {missing}, unknown {extra}")
    if not isinstance(values["slug"], str) or not SLUG.match(values["slug"]):
        raise InvalidInput("a slug is 1-200 lowercase letters, digits, '-' and '_', starting with a letter or digit")
    if not isinstance(values["content_hash"], str) or not SHA256.match(values["content_hash"]):
        raise InvalidInput("content_hash must be 64 lowercase hex characters")
    price = values["price_tokens"]
    if isinstance(price, bool) or not isinstance(price, int) or price < 0:
        raise InvalidInput("price_tokens must be a non-negative integer")
    row = dict(values)
    for field in JSON_FIELDS:
        if row[field] is not None and not isinstance(row[field], str):
            row[field] = json.dumps(row[field], sort_keys=True, default=str)
    return row


def _revision(session: Session, revision_id: str) -> EffectRevision | None:
    return session.scalars(select(EffectRevision).where(EffectRevision.revision_id == revision_id)).one_or_none()


def _locked_pin(session: Session, slug: str) -> EffectPin | None:
    return session.scalars(select(EffectPin).where(EffectPin.slug == slug).with_for_update()).one_or_none()


def _move(
    session: Session, slug: str, target: EffectRevision, kind: str, by: str, reason: str, at: datetime, event_id: str
) -> tuple[dict, str | None, dict]:
    """Point the slug's pin at ``target`` and record the move; (pin, previous id, event)."""
    pin = _locked_pin(session, slug)
    if pin is None and insert_ignore(
        session,
        EffectPin,
        {"slug": slug, "revision_id": target.revision_id, "pinned_by": by, "reason": reason, "pinned_at": at},
    ):
        previous = None
        pin = _locked_pin(session, slug)
    else:
        pin = pin or _locked_pin(session, slug)  # a concurrent first publication won the insert
        assert pin is not None
        previous = pin.revision_id
        pin.revision_id, pin.pinned_by, pin.reason, pin.pinned_at = target.revision_id, by, reason, at
    assert pin is not None
    insert_ignore(
        session,
        EffectPinEvent,
        {
            "event_id": event_id,
            "slug": slug,
            "revision_id": target.revision_id,
            "previous_revision_id": previous,
            "kind": kind,
            "pinned_by": by,
            "reason": reason,
            "pinned_at": at,
        },
    )
    session.flush()
    event = session.scalars(select(EffectPinEvent).where(EffectPinEvent.event_id == event_id)).one()
    return as_dict(pin), previous, as_dict(event)


def publish(session: Session, values: dict, at: datetime | None = None) -> Published:
    """Write the revision of ``values`` (``REVISION_FIELDS``; JSON fields as str or JSON
    values) unless the slug already has one with its content hash, and pin it when it is new
    or the slug had no pin (``kind`` published, by ``created_by``, reason the approval).

    Raises:
        InvalidInput: a field missing or unknown, a malformed slug or hash, a bad price.
    """
    row = _check(values)
    given = row.pop("created_at", None)
    at = at or given or utcnow()
    revision_id = revision_id_for(row["slug"], row["content_hash"])
    created = insert_ignore(session, EffectRevision, {**row, "revision_id": revision_id, "created_at": at})
    stored = _revision(session, revision_id)
    assert stored is not None
    pin = _locked_pin(session, row["slug"])
    if created or pin is None:
        event_id = stable_id("pin", row["slug"], revision_id, "published")
        reason = f"approval {row['approval_id']}"
        pin_row, _, _ = _move(session, row["slug"], stored, "published", row["created_by"], reason, at, event_id)
        return Published(as_dict(stored), created, pin_row, True)
    return Published(as_dict(stored), created, as_dict(pin), False)


def pin(
    session: Session,
    slug: str,
    revision_id: str,
    pinned_by: str,
    reason: str = "",
    expected_revision_id: str | None = None,
    at: datetime | None = None,
) -> Pinned:
    """Point ``slug``'s pin at ``revision_id`` (kind ``rollback`` when it is older than the
    pinned one, else ``pin``); pinning the revision already pinned changes nothing.

    Args:
        expected_revision_id: the revision the caller believes is pinned; another one is a
            ``PinConflict`` (none given: no check).

    Raises:
        EffectNotFound: the slug has no revision.
        RevisionNotFound: no revision has this id.
        RevisionOfAnotherEffect: the revision belongs to another slug.
        PinConflict: the pin is not ``expected_revision_id``.
    """
    if session.scalars(select(EffectRevision.seq).where(EffectRevision.slug == slug).limit(1)).first() is None:
        raise EffectNotFound(f"no published effect {slug!r}")
    target = _revision(session, revision_id)
    if target is None:
        raise RevisionNotFound(f"no revision {revision_id!r}")
    if target.slug != slug:
        raise RevisionOfAnotherEffect(f"revision {revision_id} is a revision of {target.slug!r}, not {slug!r}")
    current = _locked_pin(session, slug)
    current_id = current.revision_id if current else None
    if expected_revision_id is not None and expected_revision_id != current_id:
        raise PinConflict(f"{slug!r} is pinned to {current_id}, not {expected_revision_id}: reload and retry")
    if current is not None and current_id == revision_id:
        return Pinned(as_dict(current), current_id, False, None)
    older = current is not None and target.seq < _revision(session, current_id).seq  # type: ignore[union-attr, arg-type]
    kind = "rollback" if older else "pin"
    pin_row, previous, event = _move(session, slug, target, kind, pinned_by, reason, at or utcnow(), new_id("pe", 16))
    return Pinned(pin_row, previous, True, event)


def get(session: Session, revision_id: str) -> dict:
    """The revision ``revision_id``. Raises ``RevisionNotFound``."""
    found = _revision(session, revision_id)
    if found is None:
        raise RevisionNotFound(f"no revision {revision_id!r}")
    return as_dict(found)


def of_slug(session: Session, slug: str, after_seq: int = 0, limit: int = 50) -> list[dict]:
    """The slug's revisions in the order they were written, after the cursor ``after_seq``
    (empty when the slug has none)."""
    query = (
        select(EffectRevision)
        .where(EffectRevision.slug == slug, EffectRevision.seq > after_seq)
        .order_by(EffectRevision.seq)
        .limit(limit)
    )
    return [as_dict(r) for r in session.scalars(query)]


def pinned(session: Session, slug: str | None = None) -> list[dict]:
    """Pinned revisions (one per slug, or only ``slug``'s) as revision rows plus the pin's
    ``pinned_at``, ``pinned_by`` and ``pin_reason``; in no particular order."""
    query = select(EffectRevision, EffectPin).join(EffectPin, EffectPin.revision_id == EffectRevision.revision_id)
    if slug is not None:
        query = query.where(EffectPin.slug == slug)
    return [
        as_dict(r) | {"pinned_at": p.pinned_at, "pinned_by": p.pinned_by, "pin_reason": p.reason}
        for r, p in session.execute(query)
    ]


def of_video(session: Session, video_id: str) -> list[dict]:
    """The revisions published from ``video_id``'s job, oldest first."""
    query = select(EffectRevision).where(EffectRevision.source_video_id == video_id).order_by(EffectRevision.seq)
    return [as_dict(r) for r in session.scalars(query)]


def pin_events(session: Session, slug: str, after_seq: int = 0, limit: int = 50) -> list[dict]:
    """The slug's pin moves, oldest first, after the cursor ``after_seq``."""
    query = (
        select(EffectPinEvent)
        .where(EffectPinEvent.slug == slug, EffectPinEvent.seq > after_seq)
        .order_by(EffectPinEvent.seq)
        .limit(limit)
    )
    return [as_dict(e) for e in session.scalars(query)]
