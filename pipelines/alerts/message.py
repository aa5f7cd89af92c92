"""What an alert says: the run, each failed step or check with its chains and reason, a link.

An alert is built from facts (no Dagster types here) and rendered three ways: one plain-text
block (the e-mail body and the Slack fallback), Slack-compatible webhook JSON (`text` plus
`blocks`, which Slack, Mattermost and most chat webhooks accept) and an e-mail message. Every
string that goes out passes through `redact` first: reasons come from error messages, and no
secret may ride along in one.
"""

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

REDACTED = "***"
# An alert is read on a phone: one reason is cut to this many characters.
MAX_REASON_CHARS = 400
# Secrets shorter than this are not searched for: a 2-character "secret" would blank out words.
MIN_SECRET_CHARS = 6


@dataclass(frozen=True)
class Problem:
    """One thing that went wrong in a run: a step that failed, or a check that did not pass."""

    # The step key, or `asset/key:check_name` for a check.
    where: str
    reason: str
    # The chains concerned (`160262: ServerError: ...`), or "" when the problem is not per chain.
    chains: str = ""


@dataclass(frozen=True)
class Alert:
    """Everything one alert says about one run."""

    # "failed", "check failed" or "stale data": what kind of bad night this is.
    kind: str
    run_id: str
    job: str
    problems: tuple[Problem, ...]
    # The days the run covered ("2026-03-06..2026-03-09"), when it was a ranged run.
    window: str = ""
    # The run's page in the Dagster UI, when a UI base URL is configured.
    run_url: str = ""

    @property
    def title(self) -> str:
        return f"altegio-loyalty: {self.job} {self.kind} (run {self.run_id[:8]})"


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret value replaced, on one line and cut to MAX_REASON_CHARS."""
    for secret in sorted({s for s in secrets if len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) > MAX_REASON_CHARS:
        text = text[: MAX_REASON_CHARS - 1] + "…"
    return text


def redacted(alert: Alert, secrets: Sequence[str]) -> Alert:
    """The alert with every free text (reasons, chains, places) redacted."""
    problems = tuple(
        Problem(redact(p.where, secrets), redact(p.reason, secrets), redact(p.chains, secrets))
        for p in alert.problems
    )
    return Alert(
        kind=alert.kind,
        run_id=alert.run_id,
        job=alert.job,
        problems=problems,
        window=alert.window,
        run_url=alert.run_url,
    )


def _run_line(alert: Alert) -> str:
    window = f", days {alert.window}" if alert.window else ""
    return f"Run {alert.run_id} of job {alert.job}{window}"


def plain_text(alert: Alert) -> str:
    lines = [alert.title, _run_line(alert)]
    for problem in alert.problems:
        lines.append(f"- {problem.where}: {problem.reason}")
        if problem.chains:
            lines.append(f"  chains: {problem.chains}")
    if alert.run_url:
        lines.append(f"Open the run: {alert.run_url}")
    return "\n".join(lines)


def _mrkdwn(text: str) -> str:
    """Slack's mrkdwn treats &, < and > as markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(alert: Alert) -> dict[str, Any]:
    """Incoming-webhook JSON: `text` (notifications, clients without blocks) and `blocks`."""
    link = f" <{alert.run_url}|open the run in Dagster>" if alert.run_url else ""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": alert.title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _mrkdwn(_run_line(alert)) + link}},
    ]
    for problem in alert.problems:
        text = f"*{_mrkdwn(problem.where)}*: {_mrkdwn(problem.reason)}"
        if problem.chains:
            text += f"\nchains: {_mrkdwn(problem.chains)}"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}})
    return {"text": plain_text(alert), "blocks": blocks}


def email_message(alert: Alert, sender: str, recipients: Sequence[str]) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = alert.title
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message.set_content(plain_text(alert))
    return message
