"""Someone hears about a bad night: two sensors turn Dagster's events into alerts.

- `alert_on_run_failure` (a run-failure sensor): any run of this code location that fails (the
  nightly job, a backfill, a run launched from the UI). The alert names each failed step with
  its reason, and every alerting check that also failed in the run, with its chains.
- `alert_on_failed_checks` (a run-status sensor on success): a run that succeeded, but in which
  an error-severity check failed (a chain that could not be loaded, rows that do not reconcile,
  duplicate ids) or a freshness check failed (stale data: the freshness sensor's runs).

One run gives at most one alert: a failed run is the first sensor's, a successful one the
second's. Each alert goes to every configured channel (AlertResource: the webhook, e-mail);
with none configured the sensors skip and say why. Every text passes through the secrets'
redaction (pipelines.alerts.message) before it leaves.
"""

from collections.abc import Iterable, Sequence
from typing import Any

import dagster as dg
from dagster._core.events import DagsterEventType

from assets.checks import CHECK_DESCRIPTIONS
from assets.resources import AlertResource, AltegioResource, StorageResource
from assets.schedules import RANGE_END_TAG, RANGE_START_TAG
from pipelines.alerts import (
    Alert,
    DeliveryError,
    Problem,
    email_message,
    post_webhook,
    redacted,
    send_email,
    slack_payload,
)

# A failed step fails every chain it would have loaded; its error rarely names one.
WHOLE_STEP = "every chain of the step"
NO_CHANNEL = (
    "no alert channel configured: set ALTEGIO_ALERT_WEBHOOK_URL and/or ALTEGIO_ALERT_SMTP_HOST"
)


def _innermost_message(error: Any) -> str:
    """The message of the error user code raised, not Dagster's wrappers around it."""
    while error is not None and getattr(error, "cause", None) is not None:
        error = error.cause
    return str(getattr(error, "message", "") or "unknown error").strip()


def step_failures(events: Iterable[dg.DagsterEvent]) -> list[Problem]:
    """One problem per failed step: its key and why (a dg.Failure's description, else the
    innermost error)."""
    problems = []
    for event in events:
        data = event.step_failure_data
        if data is not None and data.user_failure_data is not None:
            reason = data.user_failure_data.description or "failed"
        else:
            reason = _innermost_message(data.error if data is not None else None)
        problems.append(Problem(event.step_key or "run", reason, WHOLE_STEP))
    return problems


def _metadata_text(metadata: dict[str, Any], key: str) -> str:
    entry = metadata.get(key)
    text = str(getattr(entry, "value", entry) or "")
    return "" if text in ("", "none") else text


def _check_reason(evaluation: dg.AssetCheckEvaluation) -> str:
    """Why the check failed: its own description (freshness checks say it), else what the check
    asserts and the figures its metadata carries (the chains go in their own field)."""
    if evaluation.description:
        return str(evaluation.description)
    metadata = dict(evaluation.metadata or {})
    details = [
        f"{key} {_metadata_text(metadata, key)}"
        for key in sorted(metadata)
        if key not in ("failed", "skipped") and _metadata_text(metadata, key)
    ]
    asserted = CHECK_DESCRIPTIONS.get(evaluation.check_name, "")
    expected = f"expected: {asserted}" if asserted else "the check did not pass"
    return "; ".join([expected, *details])


def failed_checks(
    instance: dg.DagsterInstance, run_id: str, stale_checks: frozenset[dg.AssetCheckKey]
) -> tuple[list[Problem], bool]:
    """The alerting checks that failed in the run (error severity, or a freshness check), and
    whether one of them was a freshness check (stale data)."""
    problems: list[Problem] = []
    stale = False
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = entry.dagster_event.event_specific_data if entry.dagster_event else None
        if not isinstance(evaluation, dg.AssetCheckEvaluation) or evaluation.passed:
            continue
        key = dg.AssetCheckKey(evaluation.asset_key, evaluation.check_name)
        is_stale = key in stale_checks
        if evaluation.severity != dg.AssetCheckSeverity.ERROR and not is_stale:
            continue
        stale = stale or is_stale
        where = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
        chains = _metadata_text(dict(evaluation.metadata or {}), "failed")
        problems.append(Problem(where, _check_reason(evaluation), chains))
    return problems, stale


def _window(run: dg.DagsterRun) -> str:
    start, end = run.tags.get(RANGE_START_TAG), run.tags.get(RANGE_END_TAG)
    if start and end:
        return f"{start}..{end}"
    return run.tags.get("dagster/partition", "")


def _secrets(
    alerts: AlertResource, altegio: AltegioResource, storage: StorageResource
) -> list[str]:
    return [
        altegio.partner_token,
        altegio.user_token,
        altegio.password,
        storage.phone_hash_key,
        *alerts.secrets(),
    ]


def deliver(alert: Alert, alerts: AlertResource, secrets: Sequence[str]) -> list[str]:
    """Send the (redacted) alert to every configured channel; the channels that took it.

    A channel that fails does not stop the others; if none took it, DeliveryError: Dagster
    records it on the sensor's tick (the UI shows it) and does not evaluate that run again."""
    alert = redacted(alert, secrets)
    delivered, errors = [], []
    if alerts.webhook_url:
        try:
            post_webhook(alerts.webhook_url, slack_payload(alert))
            delivered.append("webhook")
        except DeliveryError as exc:
            errors.append(str(exc))
    if alerts.smtp_host:
        try:
            send_email(alerts.smtp(), email_message(alert, alerts.sender(), alerts.recipients()))
            delivered.append("e-mail")
        except DeliveryError as exc:
            errors.append(str(exc))
    if errors and not delivered:
        raise DeliveryError("; ".join(errors))
    return delivered


def _skip_or_sent(delivered: Sequence[str], alert: Alert) -> dg.SkipReason:
    # A run-status sensor reports through its tick: the SkipReason is what the UI lists.
    return dg.SkipReason(f"alert for run {alert.run_id} sent to {', '.join(delivered)}")


def build_alert_sensors(
    stale_checks: Iterable[dg.AssetChecksDefinition],
) -> list[dg.SensorDefinition]:
    """The two alert sensors; `stale_checks` are the freshness checks whose failure alerts."""
    stale_keys = frozenset(key for checks in stale_checks for key in checks.check_keys)

    @dg.run_failure_sensor(
        name="alert_on_run_failure",
        description="A failed run sends an alert: run, failed steps, failed checks, link.",
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def alert_on_run_failure(
        context: dg.RunFailureSensorContext,
        alerts: AlertResource,
        altegio: AltegioResource,
        storage: StorageResource,
    ) -> dg.SkipReason:
        if not alerts.channels:
            return dg.SkipReason(NO_CHANNEL)
        run = context.dagster_run
        problems = step_failures(context.get_step_failure_events())
        if not problems:
            problems = [Problem("run", context.failure_event.message or "failed", WHOLE_STEP)]
        checks, _ = failed_checks(context.instance, run.run_id, stale_keys)
        alert = Alert(
            kind="failed",
            run_id=run.run_id,
            job=run.job_name,
            problems=tuple(problems + checks),
            window=_window(run),
            run_url=alerts.run_url(run.run_id),
        )
        return _skip_or_sent(deliver(alert, alerts, _secrets(alerts, altegio, storage)), alert)

    @dg.run_status_sensor(
        run_status=dg.DagsterRunStatus.SUCCESS,
        name="alert_on_failed_checks",
        description="A run that succeeded but failed an error-severity or freshness check "
        "sends an alert.",
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def alert_on_failed_checks(
        context: dg.RunStatusSensorContext,
        alerts: AlertResource,
        altegio: AltegioResource,
        storage: StorageResource,
    ) -> dg.SkipReason:
        run = context.dagster_run
        problems, stale = failed_checks(context.instance, run.run_id, stale_keys)
        if not problems:
            return dg.SkipReason(f"run {run.run_id}: every alerting check passed")
        if not alerts.channels:
            return dg.SkipReason(NO_CHANNEL)
        alert = Alert(
            kind="stale data" if stale else "check failed",
            run_id=run.run_id,
            job=run.job_name,
            problems=tuple(problems),
            window=_window(run),
            run_url=alerts.run_url(run.run_id),
        )
        return _skip_or_sent(deliver(alert, alerts, _secrets(alerts, altegio, storage)), alert)

    return [alert_on_run_failure, alert_on_failed_checks]
