"""Sending an alert: one POST to a webhook, one message over SMTP.

Neither is retried here: a POST that timed out may have been delivered, and a repeated alert is
noise. A delivery that fails raises `DeliveryError` with a message that names the channel but
never the webhook URL (a Slack webhook URL is itself a credential) or the SMTP password.
"""

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import httpx

WEBHOOK_TIMEOUT_S = 10.0
SMTP_TIMEOUT_S = 20.0
TLS_MODES = ("starttls", "ssl", "none")
SMTP_DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


class DeliveryError(RuntimeError):
    """An alert could not be handed over; the message says which channel and why."""


def post_webhook(url: str, payload: dict[str, Any]) -> int:
    """POST `payload` as JSON to `url`; the HTTP status, or DeliveryError."""
    try:
        response = httpx.post(url, json=payload, timeout=WEBHOOK_TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise DeliveryError(f"alert webhook unreachable: {type(exc).__name__}") from None
    if response.status_code >= 300:
        raise DeliveryError(f"alert webhook answered HTTP {response.status_code}")
    return response.status_code


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    tls: str
    user: str = ""
    password: str = ""

    def __repr__(self) -> str:
        return f"SmtpSettings(host={self.host!r}, port={self.port}, tls={self.tls!r})"


def send_email(settings: SmtpSettings, message: EmailMessage) -> None:
    """Hand `message` to the SMTP server (STARTTLS, implicit TLS or plain, as configured)."""
    context = ssl.create_default_context()
    try:
        smtp: smtplib.SMTP
        if settings.tls == "ssl":
            smtp = smtplib.SMTP_SSL(
                settings.host, settings.port, timeout=SMTP_TIMEOUT_S, context=context
            )
        else:
            smtp = smtplib.SMTP(settings.host, settings.port, timeout=SMTP_TIMEOUT_S)
        with smtp:
            if settings.tls == "starttls":
                smtp.starttls(context=context)
            if settings.user:
                smtp.login(settings.user, settings.password)
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        # smtplib's messages quote the server, never the password we sent.
        raise DeliveryError(
            f"alert e-mail via {settings.host}:{settings.port} failed: {type(exc).__name__}: {exc}"
        ) from None
