"""What an alert says and how its channels are configured, without Dagster or a network."""

import pytest

from assets.resources import AlertResource
from pipelines.alerts import Alert, Problem, email_message, redacted, slack_payload
from pipelines.alerts.message import MAX_REASON_CHARS, plain_text, redact
from pipelines.altegio.http import ConfigurationError

SECRET = "s3cr3t-token-value"
ALERT = Alert(
    kind="failed",
    run_id="0123456789abcdef",
    job="nightly_load",
    problems=(
        Problem("chains", f"AuthError: refused Bearer {SECRET} <b>&", "every chain of the step"),
        Problem("altegio/deposits:all_chains_loaded", "expected: No chain failed", "42: 503"),
    ),
    window="2026-03-06..2026-03-09",
    run_url="http://ui.example:3000/runs/0123456789abcdef",
)


def test_the_text_names_run_job_days_steps_chains_reasons_and_the_link():
    assert plain_text(ALERT).splitlines() == [
        "altegio-loyalty: nightly_load failed (run 01234567)",
        "Run 0123456789abcdef of job nightly_load, days 2026-03-06..2026-03-09",
        f"- chains: AuthError: refused Bearer {SECRET} <b>&",
        "  chains: every chain of the step",
        "- altegio/deposits:all_chains_loaded: expected: No chain failed",
        "  chains: 42: 503",
        "Open the run: http://ui.example:3000/runs/0123456789abcdef",
    ]


def test_redaction_removes_every_secret_from_every_field():
    clean = redacted(ALERT, [SECRET, "", "ab"])  # empty and tiny values are not searched for
    text = plain_text(clean)
    assert SECRET not in text and "refused Bearer ***" in text
    assert "nightly_load" in text  # nothing else changes


def test_a_reason_becomes_one_line_of_bounded_length():
    reason = redact("first line\n  second\tline " + "x" * 1000, [])
    assert "\n" not in reason and reason.startswith("first line second line x")
    assert len(reason) == MAX_REASON_CHARS and reason.endswith("…")


def test_the_slack_payload_has_a_fallback_text_and_escaped_blocks():
    payload = slack_payload(ALERT)
    assert payload["text"] == plain_text(ALERT)
    header, run, first, second = payload["blocks"]
    assert header == {
        "type": "header",
        "text": {
            "type": "plain_text",
            "text": "altegio-loyalty: nightly_load failed (run 01234567)",
        },
    }
    assert run["text"]["text"].endswith(
        "<http://ui.example:3000/runs/0123456789abcdef|open the run in Dagster>"
    )
    # Slack's mrkdwn markup characters in a reason are escaped, not interpreted.
    assert "&lt;b&gt;&amp;" in first["text"]["text"] and "<b>" not in first["text"]["text"]
    assert second["text"]["text"].startswith("*altegio/deposits:all_chains_loaded*: ")


def test_the_email_carries_the_title_as_subject_and_the_text_as_body():
    message = email_message(ALERT, "etl@example.com", ["a@example.com", "b@example.com"])
    assert message["Subject"] == ALERT.title
    assert message["From"] == "etl@example.com"
    assert message["To"] == "a@example.com, b@example.com"
    assert message.get_content().strip() == plain_text(ALERT)


def test_alert_channels_follow_the_configuration():
    assert AlertResource().channels == []
    assert AlertResource(webhook_url="https://hooks.example/x").channels == ["webhook"]
    both = AlertResource(webhook_url="https://h.example/x", smtp_host="smtp.example")
    assert both.channels == ["webhook", "e-mail"]
    assert AlertResource().run_url("abc") == "http://127.0.0.1:3000/runs/abc"
    assert AlertResource(ui_base_url="https://ui.example/").run_url("abc") == (
        "https://ui.example/runs/abc"
    )


@pytest.mark.parametrize(("tls", "port"), [("starttls", 587), ("ssl", 465), ("none", 25)])
def test_the_smtp_port_defaults_to_the_tls_mode(tls, port):
    settings = AlertResource(smtp_host="smtp.example", smtp_tls=tls).smtp()
    assert (settings.host, settings.port, settings.tls) == ("smtp.example", port, tls)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("smtp_tls", "tls13", "ALTEGIO_ALERT_SMTP_TLS must be one of starttls, ssl, none"),
        ("smtp_port", "twenty-five", "ALTEGIO_ALERT_SMTP_PORT must be a port number"),
    ],
)
def test_bad_smtp_settings_are_one_line_errors_naming_the_variable(field, value, message):
    with pytest.raises(ConfigurationError, match=message):
        AlertResource(smtp_host="smtp.example", **{field: value}).smtp()


def test_e_mail_needs_a_recipient():
    with pytest.raises(ConfigurationError, match="ALTEGIO_ALERT_EMAIL_TO names no recipient"):
        AlertResource(smtp_host="smtp.example", email_to=" , ").recipients()
    assert AlertResource(email_to="a@x.example, b@x.example").recipients() == [
        "a@x.example",
        "b@x.example",
    ]
