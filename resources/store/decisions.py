"""Admin decisions on approvals and recommendations, recorded once: the first decision on a
subject stands, repeating it is a no-op and contradicting it is a ``DecisionConflict`` (the
same rules as ``resources/decisions.py`` on the lake). Two admins racing on one subject: the
unique (subject_kind, subject_id) key keeps the first writer's row."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from resources.store.errors import DecisionConflict, InvalidInput, NotFound
from resources.store.models import DECISIONS, SUBJECT_KINDS, Decision
from resources.store.sql import as_dict, insert_ignore, utcnow


def _find(session: Session, subject_kind: str, subject_id: str) -> Decision | None:
    return session.scalars(
        select(Decision).where(Decision.subject_kind == subject_kind, Decision.subject_id == subject_id)
    ).one_or_none()


def record(
    session: Session,
    subject_kind: str,
    subject_id: str,
    decision: str,
    admin: str,
    reason: str = "",
    at: datetime | None = None,
    correlation_id: str | None = None,
) -> dict:
    """Record ``decision`` (approve|reject) on a subject (approval|recommendation) unless one
    exists; returns the decision that stands. ``correlation_id``: the video an approval
    concerns (landed as the lake's ``approval_decisions.video_id``).

    Raises:
        InvalidInput: unknown kind or decision.
        DecisionConflict: already decided the other way (``existing`` holds it).
    """
    if subject_kind not in SUBJECT_KINDS or decision not in DECISIONS:
        raise InvalidInput(f"subject_kind must be one of {SUBJECT_KINDS}, decision one of {DECISIONS}")
    insert_ignore(
        session,
        Decision,
        {
            "subject_kind": subject_kind,
            "subject_id": subject_id,
            "decision": decision,
            "admin": admin,
            "reason": reason,
            "correlation_id": correlation_id,
            "decided_at": at or utcnow(),
        },
    )
    stored = as_dict(_find(session, subject_kind, subject_id))
    if stored["decision"] != decision:
        raise DecisionConflict(stored)
    return stored


def get(session: Session, subject_kind: str, subject_id: str) -> dict:
    """The decision on a subject. Raises ``NotFound`` when undecided."""
    found = _find(session, subject_kind, subject_id)
    if found is None:
        raise NotFound(f"{subject_kind} {subject_id!r} is undecided")
    return as_dict(found)


def of_kind(session: Session, subject_kind: str) -> list[dict]:
    """Every decision on subjects of ``subject_kind``, in the order they were recorded.

    Raises:
        InvalidInput: unknown kind.
    """
    if subject_kind not in SUBJECT_KINDS:
        raise InvalidInput(f"subject_kind must be one of {SUBJECT_KINDS}")
    query = select(Decision).where(Decision.subject_kind == subject_kind).order_by(Decision.seq)
    return [as_dict(d) for d in session.scalars(query)]
