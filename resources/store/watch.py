"""What the orphan-recovery sensor watches in the store (``pipelines/recovery``): unfinished
uploads and open reservations older than its deadline, and the deliveries and approval
decisions of a time window. Reads only, each one indexed query (migration 0012).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, exists, select
from sqlalchemy.orm import Session, aliased

from economics import ledger as rules
from resources.store.admission import ACTIVE_STATUSES
from resources.store.models import RUN_SOURCE, Decision, LedgerEntry, Upload
from resources.store.sql import as_dict


def stale_uploads(session: Session, before: datetime) -> list[dict]:
    """Uploads still unfinished (``ACTIVE_STATUSES``: received, ingested or dispatched)
    that arrived before ``before``: ``{video_id, user_id, status, uploaded_at}``, oldest
    first. A video sent with an effect run is that run's input, not an example: no creation
    job ever runs on it (its status stays ``uploaded``), so it is left out — the run itself
    is watched (``runs.unfinished``)."""
    query = (
        select(Upload.video_id, Upload.user_id, Upload.status, Upload.uploaded_at)
        .where(Upload.status.in_(ACTIVE_STATUSES), Upload.uploaded_at < before, Upload.source != RUN_SOURCE)
        .order_by(Upload.uploaded_at)
    )
    return [dict(r._mapping) for r in session.execute(query)]


def open_reservations(session: Session, before: datetime) -> list[dict]:
    """Jobs reserved before ``before`` and neither consumed nor refunded: their reserve
    entries (``task_id`` is the job id, ``correlation_id`` the video), oldest first."""
    settled = aliased(LedgerEntry)
    query = (
        select(LedgerEntry)
        .where(
            LedgerEntry.kind == rules.RESERVE,
            LedgerEntry.occurred_at < before,
            ~exists().where(
                and_(settled.task_id == LedgerEntry.task_id, settled.kind.in_((rules.CONSUME, rules.REFUND)))
            ),
        )
        .order_by(LedgerEntry.occurred_at)
    )
    return [as_dict(e) for e in session.scalars(query)]


def settlements_between(session: Session, kind: str, after: datetime, before: datetime) -> list[dict]:
    """Ledger entries of ``kind`` (``consume``: a delivered job) with ``after < occurred_at
    <= before``, oldest first."""
    query = (
        select(LedgerEntry)
        .where(LedgerEntry.kind == kind, LedgerEntry.occurred_at > after, LedgerEntry.occurred_at <= before)
        .order_by(LedgerEntry.occurred_at)
    )
    return [as_dict(e) for e in session.scalars(query)]


def approvals_decided_between(session: Session, after: datetime, before: datetime) -> list[dict]:
    """Approval decisions with ``after < decided_at <= before`` (``correlation_id`` is the
    video), oldest first."""
    query = (
        select(Decision)
        .where(Decision.subject_kind == "approval", Decision.decided_at > after, Decision.decided_at <= before)
        .order_by(Decision.decided_at)
    )
    return [as_dict(d) for d in session.scalars(query)]
