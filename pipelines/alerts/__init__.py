"""Alerts on a bad night: what they say (message.py) and how they are sent (delivery.py).

The Dagster sensors that notice a failed run, a failed error-severity check or stale data live
in assets/alerts.py; this package knows nothing of Dagster.
"""

from pipelines.alerts.delivery import DeliveryError, SmtpSettings, post_webhook, send_email
from pipelines.alerts.message import Alert, Problem, email_message, redacted, slack_payload

__all__ = [
    "Alert",
    "DeliveryError",
    "Problem",
    "SmtpSettings",
    "email_message",
    "post_webhook",
    "redacted",
    "send_email",
    "slack_payload",
]
