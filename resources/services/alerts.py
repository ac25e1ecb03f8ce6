"""Alerts for admins (docs/signals.md, "Alerts"): the signals job folds the open bottleneck
classifications into de-duplicated, grouped alerts in the store (``resources/store/
alerts.py``) and emails the new critical ones; admins see them in the API (``GET
/v1/admin/alerts``) and on the dashboard's Bottlenecks page, and acknowledge or resolve them
there.

Email: each queued delivery is sent through SMTP (``resources.mailer``) with up to
``alert_email_attempts`` attempts ``alert_email_retry_s`` apart (``resources.retry.
transient_failures``: a refused connection, a timeout or a 4xx answer is tried again, a 5xx
is not); after the last failure the delivery becomes a dead letter with the error, and a
warning says so. A crash between the send and its record sends it again next cycle (at least
once; mail servers drop nothing, so at most twice).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import structlog
from tenacity import RetryCallState

from resources.mailer import SmtpMailer, is_transient
from resources.retry import transient_failures
from resources.settings import Settings
from resources.store.client import Store

log = structlog.get_logger(__name__)
RUNBOOK = "docs/runbooks/platform-logs.md#alert_email_dead_letter"


def email_of(alert: dict, settings: Settings) -> tuple[str, str]:
    """(subject, body) of an alert's email: what, how bad, what to do, where to look."""
    simulated = " (simulated)" if alert["source"] != "real" else ""
    subject = f"[effectlake] {alert['severity'].upper()}{simulated} {alert['title']}"
    body = "\n".join(
        [
            alert["title"],
            "",
            f"Severity: {alert['severity']} · cost impact about {alert['cost_impact_usd_per_hour']:.2f} USD/h",
            f"Open since: {alert['opened_at']:%Y-%m-%d %H:%M} UTC ({alert['source']} data)",
            "",
            alert["summary"],
            "",
            f"Runbook: {alert['runbook']}",
            (
                f"Acknowledge: POST {settings.api_base_url}/v1/admin/alerts/{alert['alert_id']}/acknowledge,"
                " or the dashboard's Bottlenecks page."
            ),
        ]
    )
    return subject, body


def sync(store: Store, open_classifications: list[dict], now: datetime, settings: Settings) -> dict:
    """Fold this cycle's open classifications into alerts and queue their emails (none when
    no SMTP server is configured); ``Store.sync_alerts``' result."""
    recipients = settings.alert_recipients if settings.smtp_host.strip() else []
    return store.sync_alerts(open_classifications, now, recipients, settings.alert_emailed_severities)


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.info("alert_email_retry", attempt=state.attempt_number, error=repr(exc), retry_in_s=state.upcoming_sleep)


def deliver(
    store: Store,
    mailer: SmtpMailer | None,
    settings: Settings,
    now: Callable[[], datetime],
    sleep: Callable[[float], None] | None = None,
) -> dict:
    """Send every queued delivery (module docstring).

    Args:
        mailer: the SMTP server; None (no server configured): nothing is sent, the queue
            stays as it is.
        now: the clock the records are stamped with.
        sleep: the pause between attempts (tests pass a recorder); default ``time.sleep``.

    Returns:
        ``{"sent": n, "dead_letter": n, "attempts": total attempts}``.
    """
    out = {"sent": 0, "dead_letter": 0, "attempts": 0}
    if mailer is None:
        return out
    for d in store.pending_alert_deliveries():
        subject, body = email_of(d["alert"], settings)
        policy = transient_failures(
            is_transient, settings.alert_email_attempts, settings.alert_email_retry_s, before_sleep=_log_retry
        )
        if sleep is not None:
            policy = policy.copy(sleep=sleep)
        try:
            policy(mailer.send, d["recipient"], subject, body)
        except Exception as exc:  # noqa: BLE001 — every failure ends as a dead letter, the others go on
            tries = policy.statistics.get("attempt_number", 1)
            out["attempts"] += tries
            error = f"{type(exc).__name__}: {exc}"
            store.alert_dead_letter(d["delivery_id"], tries, error, now())
            out["dead_letter"] += 1
            log.warning(
                "alert email dead-lettered",
                alert_id=d["alert_id"],
                recipient=d["recipient"],
                attempts=tries,
                error=error,
                event_type="alert_email_dead_letter",
                economic_impact_usd=float(d["alert"]["cost_impact_usd_per_hour"]),
                urgency="high" if d["alert"]["severity"] == "critical" else "medium",
                operator_action="Check the SMTP server and settings; the alert is still open in the API and dashboard.",
                runbook=RUNBOOK,
            )
        else:
            tries = policy.statistics.get("attempt_number", 1)
            out["attempts"] += tries
            store.alert_delivered(d["delivery_id"], tries, now())
            out["sent"] += 1
    return out
