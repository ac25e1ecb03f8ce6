"""Alerts (resources/store/alerts.py, resources/services/alerts.py): classifications of one
group make one alert per episode; open → acknowledged → resolved (automatically when the
classifications clear, or by an admin, through the API); new critical alerts are emailed once
through a real SMTP server on 127.0.0.1 (aiosmtpd), with retries and a dead letter when the
server is down."""

from __future__ import annotations

import email
import email.policy
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from aiosmtpd.controller import Controller

from api.app import create_app
from resources.mailer import SmtpMailer, is_transient
from resources.services import alerts as service
from resources.store import Store
from resources.store.alerts import AlertConflict, AlertNotFound
from tests.api_users import ADMIN
from tests.server import free_port, serve

T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)


def _classification(cid: str, category="PROVIDER_API_THROTTLING", severity="critical", **over) -> dict:
    return {
        "classification_id": cid,
        "category": category,
        "severity": severity,
        "status": "open",
        "scope": "provider_effect",
        "provider_id": "partner-toon",
        "effect_type": "cartoon",
        "instance_type": "cpu-2c",
        "user_id": None,
        "source": "real",
        "evidence": json.dumps({"numbers": {"throttle_rate": 0.31, "runs": 9}}),
        "recommended_action": "Lower the provider's concurrency.",
        "runbook": "docs/runbooks/provider-api-throttling.md",
        "cost_impact_usd_per_hour": 7.5,
        "first_seen_at": T0,
        "last_seen_at": T0,
    } | over


class Inbox:
    """aiosmtpd handler keeping every message; ``refuse`` first answers with 451s."""

    def __init__(self, refuse: int = 0):
        self.messages: list = []
        self.refuse = refuse

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 — aiosmtpd's hook name
        if self.refuse > 0:
            self.refuse -= 1
            return "451 4.3.0 Try again later"
        self.messages.append(envelope)
        return "250 OK"


@contextmanager
def smtp_server(inbox: Inbox) -> Iterator[int]:
    """A real SMTP server on 127.0.0.1 (a free port), stopped after the block."""
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@pytest.fixture
def store(settings):
    s = Store(settings.database_url)
    yield s
    s.close()


def _mail_settings(settings, port: int, **extra):
    return settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_timeout_s": 5.0,
            "alert_email_to": "ops@example.com, oncall@example.com",
            "alert_email_attempts": 3,
            "alert_email_retry_s": 0.0,
        }
        | extra
    )


# --- grouping and lifecycle ------------------------------------------------------------------
def test_a_group_makes_one_alert_per_episode(store):
    first = store.sync_alerts([_classification("c1", severity="warning")], T0)
    [alert_id] = first["opened"]
    # The next cycles, a second classification of the same group (another stream of it, a
    # re-raise) and an escalation all land on the same alert.
    again = store.sync_alerts(
        [_classification("c1"), _classification("c2", instance_type="gpu-l4")], T0 + timedelta(minutes=5)
    )
    assert again["opened"] == [] and again["escalated"] == [alert_id]
    other = store.sync_alerts(
        [_classification("c1"), _classification("c2"), _classification("c3", category="WORKFLOW_INEFFICIENCY")],
        T0 + timedelta(minutes=10),
    )
    assert len(other["opened"]) == 1 and other["opened"] != [alert_id]
    alert = store.alert(alert_id)
    assert alert["classification_ids"] == ["c1", "c2"] and alert["severity"] == "critical"
    assert alert["state"] == "open" and alert["last_seen_at"] == T0 + timedelta(minutes=10)
    # Its classifications clear: resolved automatically; the next one is a new episode.
    cleared = store.sync_alerts([_classification("c3", category="WORKFLOW_INEFFICIENCY")], T0 + timedelta(hours=1))
    assert cleared["resolved"] == [alert_id]
    assert store.alert(alert_id)["resolution"] == "cleared" and store.alert(alert_id)["resolved_by"] == "signals"
    later = store.sync_alerts([_classification("c4")], T0 + timedelta(hours=2))
    assert len(later["opened"]) == 1 and later["opened"] != [alert_id]


def test_ack_and_resolve_transitions(store):
    [alert_id] = store.sync_alerts([_classification("c1")], T0)["opened"]
    acked = store.acknowledge_alert(alert_id, "alice", "looking")
    assert (acked["state"], acked["acknowledged_by"], acked["note"]) == ("acknowledged", "alice", "looking")
    assert store.acknowledge_alert(alert_id, "bob")["acknowledged_by"] == "alice"  # the first stands
    # A cycle while it is acknowledged keeps the acknowledgement.
    store.sync_alerts([_classification("c1")], T0 + timedelta(minutes=5))
    assert store.alert(alert_id)["state"] == "acknowledged"
    done = store.resolve_alert(alert_id, "alice")
    assert (done["state"], done["resolution"], done["resolved_by"]) == ("resolved", "admin", "alice")
    assert store.resolve_alert(alert_id, "bob")["resolved_by"] == "alice"  # a repeat is a no-op
    with pytest.raises(AlertConflict):
        store.acknowledge_alert(alert_id, "bob")
    with pytest.raises(AlertNotFound):
        store.resolve_alert("al_nope", "bob")
    # The admin closed the episode: its classification, still open, does not reopen it.
    assert store.sync_alerts([_classification("c1")], T0 + timedelta(minutes=10))["opened"] == []
    assert store.alert(alert_id)["state"] == "resolved"


# --- email ----------------------------------------------------------------------------------
def test_a_critical_alert_is_emailed_once(settings, store):
    inbox = Inbox()
    with smtp_server(inbox) as port:
        cfg = _mail_settings(settings, port)
        mailer = SmtpMailer.from_settings(cfg)
        for minute in (0, 5, 10):  # three cycles of the same open classification
            service.sync(store, [_classification("c1")], T0 + timedelta(minutes=minute), cfg)
            sent = service.deliver(store, mailer, cfg, lambda: T0)
            assert sent["dead_letter"] == 0
        assert sorted(rcpt for m in inbox.messages for rcpt in m.rcpt_tos) == ["oncall@example.com", "ops@example.com"]
        mail = email.message_from_bytes(inbox.messages[0].content, policy=email.policy.default)
        assert mail["Subject"].strip() == "[effectlake] CRITICAL PROVIDER_API_THROTTLING: partner-toon on cartoon"
        assert "docs/runbooks/provider-api-throttling.md" in mail.get_content()
        # A warning is not emailed (EFFECTLAKE_ALERT_EMAIL_SEVERITY=critical).
        service.sync(
            store,
            [_classification("c1"), _classification("w1", category="COLD_START_PENALTY", severity="warning")],
            T0,
            cfg,
        )
        assert service.deliver(store, mailer, cfg, lambda: T0)["sent"] == 0
    [alert] = [a for a in store.alerts() if a["category"] == "PROVIDER_API_THROTTLING"]
    assert {(d["state"], d["attempts"]) for d in alert["deliveries"]} == {("sent", 1)}


def test_a_server_answering_451_is_retried(settings, store):
    inbox = Inbox(refuse=2)
    pauses: list[float] = []
    with smtp_server(inbox) as port:
        cfg = _mail_settings(settings, port, alert_email_to="ops@example.com", alert_email_retry_s=1.5)
        service.sync(store, [_classification("c1")], T0, cfg)
        sent = service.deliver(store, SmtpMailer.from_settings(cfg), cfg, lambda: T0, sleep=pauses.append)
    assert sent == {"sent": 1, "dead_letter": 0, "attempts": 3} and pauses == [1.5, 1.5]
    assert len(inbox.messages) == 1


def test_a_down_server_is_retried_then_dead_lettered(settings, store):
    port = free_port()  # nothing listens there
    cfg = _mail_settings(settings, port, alert_email_to="ops@example.com")
    pauses: list[float] = []
    service.sync(store, [_classification("c1")], T0, cfg)
    out = service.deliver(
        store, SmtpMailer.from_settings(cfg), cfg, lambda: T0 + timedelta(seconds=9), sleep=pauses.append
    )
    assert out == {"sent": 0, "dead_letter": 1, "attempts": 3} and len(pauses) == 2
    [delivery] = store.alerts()[0]["deliveries"]
    assert delivery["state"] == "dead_letter" and delivery["attempts"] == 3
    assert "ConnectionRefusedError" in delivery["last_error"]
    assert delivery["dead_lettered_at"] == T0 + timedelta(seconds=9)
    # A dead letter is not sent again by the next cycles.
    service.sync(store, [_classification("c1")], T0 + timedelta(minutes=5), cfg)
    assert service.deliver(store, SmtpMailer.from_settings(cfg), cfg, lambda: T0, sleep=pauses.append)["attempts"] == 0


def test_only_transient_smtp_failures_are_retried():
    import smtplib

    assert is_transient(ConnectionRefusedError()) and is_transient(smtplib.SMTPServerDisconnected())
    assert is_transient(smtplib.SMTPDataError(451, b"later"))
    assert not is_transient(smtplib.SMTPDataError(554, b"no"))
    assert not is_transient(smtplib.SMTPRecipientsRefused({"a@b": (550, b"unknown")}))
    assert not is_transient(ValueError("bug"))


def test_no_smtp_host_means_no_email(settings, store):
    assert SmtpMailer.from_settings(settings) is None
    service.sync(store, [_classification("c1")], T0, settings)
    assert store.alerts()[0]["deliveries"] == []


# --- the API ----------------------------------------------------------------------------------
def test_admins_list_acknowledge_and_resolve_alerts_through_the_api(settings, store):
    [alert_id] = store.sync_alerts([_classification("c1")], T0)["opened"]
    store.sync_alerts(
        [_classification("c1"), _classification("c2", category="GPU_SATURATION", severity="warning")],
        T0 + timedelta(minutes=5),
    )
    with serve(create_app(settings)) as base, httpx.Client(base_url=base) as c:
        assert c.get("/v1/admin/alerts").status_code == 401
        listed = c.get("/v1/admin/alerts", headers=ADMIN, params={"limit": 1})
        assert listed.status_code == 200
        page = listed.json()
        assert len(page["items"]) == 1 and page["next_cursor"]
        rest = c.get("/v1/admin/alerts", headers=ADMIN, params={"cursor": page["next_cursor"]}).json()
        assert {a["alert_id"] for a in page["items"] + rest["items"]} >= {alert_id}
        assert c.get("/v1/admin/alerts", headers=ADMIN, params={"state": "nope"}).status_code == 422
        one = c.get(f"/v1/admin/alerts/{alert_id}", headers=ADMIN).json()
        assert one["classification_ids"] == ["c1"] and one["state"] == "open"
        assert c.get("/v1/admin/alerts/al_missing", headers=ADMIN).status_code == 404

        key = {**ADMIN, "Idempotency-Key": "ack-1"}
        acked = c.post(
            f"/v1/admin/alerts/{alert_id}/acknowledge", headers=key, json={"admin": "alice", "note": "on it"}
        )
        assert acked.status_code == 200 and acked.json()["state"] == "acknowledged"
        replay = c.post(
            f"/v1/admin/alerts/{alert_id}/acknowledge", headers=key, json={"admin": "alice", "note": "on it"}
        )
        assert replay.json() == acked.json()
        opened = c.get("/v1/admin/alerts", headers=ADMIN, params={"state": "acknowledged"}).json()["items"]
        assert [a["alert_id"] for a in opened] == [alert_id]
        resolved = c.post(f"/v1/admin/alerts/{alert_id}/resolve", headers=ADMIN, json={"admin": "alice"})
        assert resolved.json()["resolution"] == "admin"
        late = c.post(f"/v1/admin/alerts/{alert_id}/acknowledge", headers=ADMIN, json={"admin": "bob"})
        assert late.status_code == 409 and late.headers["content-type"].startswith("application/problem+json")
        assert c.post("/v1/admin/alerts/al_missing/resolve", headers=ADMIN, json={}).status_code == 404
    assert store.alert(alert_id)["acknowledged_by"] == "alice"
