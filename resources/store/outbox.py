"""Notifications as an outbox: a notification is a row written in the same transaction as the
change it reports (so it exists if and only if the change committed); a deliverer sends
``pending`` rows and marks them ``delivered``. Users list their own notifications."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from resources.store.models import Notification
from resources.store.sql import as_dict, insert_ignore, new_id, utcnow


def notify(
    session: Session,
    user_id: str,
    kind: str,
    title: str,
    body: str = "",
    url: str = "",
    correlation_id: str | None = None,
    notification_id: str | None = None,
    at: datetime | None = None,
) -> dict:
    """Queue a notification; idempotent by ``notification_id`` (pass a deterministic one to
    make a retried producer write it once; random when not given). Returns the stored row."""
    notification_id = notification_id or new_id("n", 16)
    insert_ignore(
        session,
        Notification,
        {
            "notification_id": notification_id,
            "user_id": user_id,
            "correlation_id": correlation_id,
            "kind": kind,
            "title": title,
            "body": body,
            "url": url,
            "created_at": at or utcnow(),
        },
    )
    return as_dict(session.scalars(select(Notification).where(Notification.notification_id == notification_id)).one())


def pending(session: Session, limit: int = 100) -> list[dict]:
    """Undelivered notifications, oldest first."""
    query = select(Notification).where(Notification.delivered_at.is_(None)).order_by(Notification.seq).limit(limit)
    return [as_dict(n) for n in session.scalars(query)]


def mark_delivered(session: Session, notification_ids: list[str], at: datetime | None = None) -> int:
    """Mark notifications delivered (the first delivery time stands); returns how many changed."""
    if not notification_ids:
        return 0
    return session.execute(
        update(Notification)
        .where(Notification.notification_id.in_(notification_ids), Notification.delivered_at.is_(None))
        .values(delivered_at=at or utcnow())
    ).rowcount


def for_user(
    session: Session, user_id: str, after_seq: int = 0, limit: int = 50, correlation_id: str | None = None
) -> list[dict]:
    """The user's notifications in ``seq`` order after the cursor ``after_seq`` (only those
    of ``correlation_id``, e.g. one video, when given)."""
    query = select(Notification).where(Notification.user_id == user_id, Notification.seq > after_seq)
    if correlation_id is not None:
        query = query.where(Notification.correlation_id == correlation_id)
    query = query.order_by(Notification.seq).limit(limit)
    return [as_dict(n) for n in session.scalars(query)]
