"""Email through SMTP (the standard library's ``smtplib``): one message per call, one attempt;
the caller retries (``resources.retry.transient_failures`` with ``is_transient``) and keeps a
dead letter when every attempt failed (``resources.services.alerts``)."""

from __future__ import annotations

import smtplib
from dataclasses import dataclass
from email.message import EmailMessage

from resources.settings import Settings


def is_transient(exc: BaseException) -> bool:
    """Whether a failed send may succeed if tried again: a refused or dropped connection, a
    timeout, or a 4xx answer (RFC 5321 §4.2.1: "transient negative completion"); a 5xx answer
    (unknown recipient, failed login) is permanent."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(400 <= code < 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    return isinstance(exc, OSError)  # includes SMTPServerDisconnected and socket timeouts


@dataclass(frozen=True)
class SmtpMailer:
    """An SMTP server to send through (``Settings``' ``smtp_*`` fields)."""

    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout_s: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpMailer | None:
        """The configured server, or None when ``EFFECTLAKE_SMTP_HOST`` is unset (no email)."""
        if not settings.smtp_host.strip():
            return None
        return cls(
            settings.smtp_host.strip(),
            settings.smtp_port,
            settings.smtp_from,
            settings.smtp_username,
            settings.smtp_password,
            settings.smtp_starttls,
            settings.smtp_timeout_s,
        )

    def send(self, to: str, subject: str, body: str) -> None:
        """Send one plain-text message to ``to`` (one attempt).

        Raises:
            OSError: the connection failed or dropped (``smtplib.SMTPException`` is one),
                including an answer refusing the message (``SMTPResponseException``).
        """
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = self.sender, to, subject
        msg.set_content(body)
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(msg)
