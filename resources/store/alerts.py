"""Alerts in the store (``models.Alert``, ``AlertClassification``, ``AlertDelivery``):
de-duplicated and grouped bottleneck classifications with a lifecycle, and their email
deliveries (docs/signals.md, "Alerts").

Grouping. A group is one category × scope × provider × effect type × user × source (a
provider's throttling on one effect type; one user's token depletion). An *episode* of a group
is one alert: every open classification of the group joins the group's active (open or
acknowledged) alert, or opens a new one when there is none; a classification belongs to one
alert for good (``alert_classifications``), so the signals job's cycles, re-classifications
and several streams of one group (real and simulated apart) never make a second alert. When
none of an active alert's classifications is open any more the alert is resolved
(``cleared``); an admin may resolve it earlier (``admin``) — its classifications then stay
with it, and only a new classification of the group (a new episode) opens a new alert.

Lifecycle: open → acknowledged → resolved, or open → resolved. Admin transitions lock the
alert's row (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's write transactions are serial),
and the signals job's sync never moves an alert backwards, so an acknowledgement made while a
cycle runs is kept.

Deliveries: an email per recipient is queued, in the sync's transaction, when an alert opens
at a severity that is emailed or escalates to one — once per alert and recipient (the unique
key), however many cycles it stays open. ``resources.services.alerts`` sends them.

Each function takes a session, so callers compose them in one transaction (``Store.write()``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from economics.ids import stable_id
from resources.store.errors import Conflict, InvalidInput, NotFound
from resources.store.models import ALERT_STATES, Alert, AlertClassification, AlertDelivery
from resources.store.sql import as_dict, insert_ignore, utcnow

ACTIVE = ("open", "acknowledged")
SEVERITY_RANK = {"warning": 0, "critical": 1}
GROUP_KEYS = ("category", "scope", "provider_id", "effect_type", "user_id", "source")
EMAIL = "email"
SYSTEM = "signals"  # who resolves an alert whose classifications cleared


class AlertNotFound(NotFound):
    """No alert has this id."""


class AlertConflict(Conflict):
    """The transition is not allowed from the alert's state (e.g. acknowledging a resolved
    alert); ``alert`` is its current row."""

    def __init__(self, message: str, alert: dict):
        super().__init__(message)
        self.alert = alert


def group_key(classification: Mapping) -> str:
    """The group a classification belongs to (module docstring): 32 hex characters."""
    return stable_id("alert-group", *(classification.get(k) or "" for k in GROUP_KEYS), length=32)


def _title(c: Mapping) -> str:
    who = c.get("provider_id") or (f"user {c['user_id']}" if c.get("user_id") else c.get("instance_type") or "?")
    where = f" on {c['effect_type']}" if c.get("effect_type") else ""
    return f"{c['category']}: {who}{where}"


def _summary(c: Mapping) -> str:
    numbers = json.loads(c.get("evidence") or "{}").get("numbers", {})
    shown = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in numbers.items())
    return f"{c.get('recommended_action') or ''} Latest: {shown}".strip()


def _refresh(alert: Alert, c: Mapping, now: datetime) -> bool:
    """Bring an active alert up to a classification of this cycle; True when it escalated."""
    escalated = SEVERITY_RANK[c["severity"]] > SEVERITY_RANK[alert.severity]
    if escalated:
        alert.severity = c["severity"]
    alert.last_seen_at = max(alert.last_seen_at, now)
    alert.cost_impact_usd_per_hour = float(c.get("cost_impact_usd_per_hour") or 0.0)
    alert.summary = _summary(c)
    alert.category = c["category"]
    alert.title = _title(c)
    return escalated


def _new_alert(session: Session, c: Mapping, key: str, now: datetime) -> Alert:
    # Deterministic id: two syncs racing on the group's first classification write one row.
    alert_id = f"al_{stable_id('alert', key, c['classification_id'], length=24)}"
    insert_ignore(
        session,
        Alert,
        {
            "alert_id": alert_id,
            "group_key": key,
            "category": c["category"],
            "severity": c["severity"],
            "scope": c["scope"],
            "provider_id": c.get("provider_id"),
            "effect_type": c.get("effect_type"),
            "user_id": c.get("user_id"),
            "source": c.get("source") or "real",
            "title": _title(c),
            "summary": _summary(c),
            "runbook": c.get("runbook") or "",
            "cost_impact_usd_per_hour": float(c.get("cost_impact_usd_per_hour") or 0.0),
            "classifications": 0,
            "state": "open",
            "opened_at": now,
            "last_seen_at": now,
            "note": "",
        },
    )
    return session.get(Alert, alert_id, with_for_update=True)  # type: ignore[return-value]


def sync(
    session: Session,
    open_classifications: Sequence[Mapping],
    now: datetime,
    recipients: Sequence[str] = (),
    emailed: Iterable[str] = ("critical",),
) -> dict:
    """Fold this cycle's open classifications into alerts (module docstring).

    Args:
        open_classifications: every open ``bottleneck_classifications`` row now (the
            ``CLASSIFICATION_SCHEMA`` columns); an active alert none of whose classifications
            is among them is resolved.
        now: the cycle's time.
        recipients: email addresses to queue a delivery for.
        emailed: severities that are emailed.

    Returns:
        ``{"opened": [alert ids], "escalated": [...], "updated": [...], "resolved": [...],
        "queued": deliveries queued}``.
    """
    emailed = set(emailed)
    out: dict = {"opened": [], "escalated": [], "updated": [], "resolved": [], "queued": 0}
    open_ids = {c["classification_id"] for c in open_classifications}
    for c in sorted(open_classifications, key=lambda c: (c["first_seen_at"], c["classification_id"])):
        link = session.get(AlertClassification, c["classification_id"])
        if link is not None:
            alert = session.get(Alert, link.alert_id, with_for_update=True)
            if alert is None or alert.state == "resolved":
                continue  # an admin closed this episode
        else:
            key = group_key(c)
            alert = session.scalars(
                select(Alert).where(Alert.group_key == key, Alert.state.in_(ACTIVE)).with_for_update()
            ).first()
            if alert is None:
                alert = _new_alert(session, c, key, now)
                if alert.alert_id not in out["opened"] and alert.classifications == 0:
                    out["opened"].append(alert.alert_id)
            if insert_ignore(
                session,
                AlertClassification,
                {"classification_id": c["classification_id"], "alert_id": alert.alert_id, "linked_at": now},
            ):
                alert.classifications += 1
        if _refresh(alert, c, now) and alert.alert_id not in out["opened"]:
            out["escalated"].append(alert.alert_id)
        if alert.alert_id not in out["opened"] and alert.alert_id not in out["updated"]:
            out["updated"].append(alert.alert_id)
    session.flush()
    for alert in session.scalars(select(Alert).where(Alert.state.in_(ACTIVE)).with_for_update()).all():
        linked = session.scalars(
            select(AlertClassification.classification_id).where(AlertClassification.alert_id == alert.alert_id)
        ).all()
        if not open_ids.intersection(linked):
            alert.state, alert.resolved_at, alert.resolved_by, alert.resolution = "resolved", now, SYSTEM, "cleared"
            out["resolved"].append(alert.alert_id)
    for alert_id in out["opened"] + out["escalated"]:
        alert = session.get(Alert, alert_id)
        if alert is None or alert.state == "resolved" or alert.severity not in emailed:
            continue
        for rcpt in recipients:
            out["queued"] += insert_ignore(
                session,
                AlertDelivery,
                {
                    "delivery_id": f"dl_{stable_id('delivery', alert_id, EMAIL, rcpt, length=24)}",
                    "alert_id": alert_id,
                    "channel": EMAIL,
                    "recipient": rcpt,
                    "state": "pending",
                    "attempts": 0,
                    "created_at": now,
                },
            )
    return out


def _locked(session: Session, alert_id: str) -> Alert:
    alert = session.get(Alert, alert_id, with_for_update=True)
    if alert is None:
        raise AlertNotFound(f"no alert {alert_id!r}")
    return alert


def acknowledge(session: Session, alert_id: str, admin: str, note: str = "", at: datetime | None = None) -> dict:
    """open → acknowledged by ``admin`` (a repeat is a no-op: the first acknowledgement
    stands). Returns the alert.

    Raises:
        AlertNotFound: no such alert.
        AlertConflict: the alert is resolved.
        InvalidInput: no admin named.
    """
    if not admin.strip():
        raise InvalidInput("admin must name who acknowledges")
    alert = _locked(session, alert_id)
    if alert.state == "resolved":
        raise AlertConflict(f"alert {alert_id} is resolved; it cannot be acknowledged", as_dict(alert))
    if alert.state == "open":
        alert.state, alert.acknowledged_by, alert.acknowledged_at = "acknowledged", admin, at or utcnow()
        alert.note = note or alert.note
    return as_dict(alert)


def resolve(session: Session, alert_id: str, admin: str, note: str = "", at: datetime | None = None) -> dict:
    """open | acknowledged → resolved by ``admin`` (resolution ``admin``); resolving a
    resolved alert is a no-op. Returns the alert.

    Raises:
        AlertNotFound: no such alert.
        InvalidInput: no admin named.
    """
    if not admin.strip():
        raise InvalidInput("admin must name who resolves")
    alert = _locked(session, alert_id)
    if alert.state != "resolved":
        alert.state, alert.resolved_by, alert.resolved_at = "resolved", admin, at or utcnow()
        alert.resolution = "admin"
        alert.note = note or alert.note
    return as_dict(alert)


def get(session: Session, alert_id: str) -> dict:
    """The alert with its ``classification_ids`` and ``deliveries`` (dicts).

    Raises:
        AlertNotFound: no such alert.
    """
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise AlertNotFound(f"no alert {alert_id!r}")
    return _full(session, alert)


def _full(session: Session, alert: Alert) -> dict:
    ids = session.scalars(
        select(AlertClassification.classification_id)
        .where(AlertClassification.alert_id == alert.alert_id)
        .order_by(AlertClassification.linked_at, AlertClassification.classification_id)
    ).all()
    deliveries = session.scalars(
        select(AlertDelivery).where(AlertDelivery.alert_id == alert.alert_id).order_by(AlertDelivery.recipient)
    ).all()
    return {**as_dict(alert), "classification_ids": list(ids), "deliveries": [as_dict(d) for d in deliveries]}


def list_alerts(session: Session, states: Iterable[str] = ALERT_STATES) -> list[dict]:
    """Alerts in ``states``, newest first, each as ``get`` returns it.

    Raises:
        InvalidInput: an unknown state.
    """
    states = list(states)
    if not set(states) <= set(ALERT_STATES):
        raise InvalidInput(f"state must be one of {ALERT_STATES}")
    query = select(Alert).where(Alert.state.in_(states)).order_by(Alert.opened_at.desc(), Alert.alert_id)
    return [_full(session, a) for a in session.scalars(query).all()]


def by_classification(session: Session, classification_ids: Iterable[str]) -> dict[str, dict]:
    """classification id → the alert it belongs to (plain row), for those that have one."""
    rows = session.execute(
        select(AlertClassification.classification_id, Alert)
        .join(Alert, Alert.alert_id == AlertClassification.alert_id)
        .where(AlertClassification.classification_id.in_(list(classification_ids)))
    ).all()
    return {cid: as_dict(alert) for cid, alert in rows}


def pending_deliveries(session: Session, limit: int = 100) -> list[dict]:
    """Queued deliveries, oldest first, each with its alert (``alert``)."""
    query = (
        select(AlertDelivery)
        .where(AlertDelivery.state == "pending")
        .order_by(AlertDelivery.created_at, AlertDelivery.delivery_id)
        .limit(limit)
    )
    return [{**as_dict(d), "alert": as_dict(session.get(Alert, d.alert_id))} for d in session.scalars(query).all()]


def delivered(session: Session, delivery_id: str, attempts: int, at: datetime) -> None:
    """The delivery was sent after ``attempts`` attempts."""
    d = session.get(AlertDelivery, delivery_id, with_for_update=True)
    if d is not None and d.state == "pending":
        d.state, d.attempts, d.sent_at, d.last_error = "sent", attempts, at, None


def dead_letter(session: Session, delivery_id: str, attempts: int, error: str, at: datetime) -> None:
    """Every attempt failed: the delivery becomes a dead letter keeping the last error."""
    d = session.get(AlertDelivery, delivery_id, with_for_update=True)
    if d is not None and d.state == "pending":
        d.state, d.attempts, d.last_error, d.dead_lettered_at = "dead_letter", attempts, error[:2000], at
