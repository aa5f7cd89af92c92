"""Alerts on a bad night, end to end: real runs of the nightly job against broken sandboxes, the
two alert sensors ticking over the runs' instance as the daemon would, and receivers on
loopback (an HTTP webhook, an SMTP server) that record what arrives."""

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from datetime import date
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from aiosmtpd.controller import Controller

from assets.alerts import build_alert_sensors
from assets.altegio import TABLE_ASSETS, warehouse
from assets.definitions import FRESHNESS_CHECKS
from assets.resources import build_resources
from assets.schedules import NIGHTLY_JOB, RANGE_END_TAG, RANGE_START_TAG
from pipelines.altegio.sandbox import Faults, SandboxConfig, SandboxCredentials, serve

UI = "http://dagster.example.test:3000"
DAYS = {RANGE_START_TAG: "2026-01-04", RANGE_END_TAG: "2026-01-04"}
# Canaries: none of them may reach an alert.
PARTNER_TOKEN = "canary-partner-token-h18b"
USER_TOKEN = "canary-user-token-h18b"
PHONE_KEY = "canary-phone-hash-key-h18b"
SMTP_PASSWORD = "canary-smtp-password-h18b"
HOOK_SECRET = "T000/B000/canary-hook-secret-h18b"
CANARIES = (PARTNER_TOKEN, USER_TOKEN, PHONE_KEY, SMTP_PASSWORD, HOOK_SECRET)


class Webhook:
    """A Slack-style incoming webhook on loopback: records every JSON body POSTed to it."""

    def __init__(self, status: int = 200) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                hook.bodies.append(json.loads(self.rfile.read(length)))
                hook.paths.append(self.path)
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/services/{HOOK_SECRET}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class Mailbox:
    """aiosmtpd's handler: keeps each message received."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        await asyncio.sleep(0)
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = _free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


def resources(server: Any, data_dir: Path, **alerts: str) -> dict[str, Any]:
    return build_resources(
        altegio={
            "base_url": server.base_url,
            "partner_token": PARTNER_TOKEN,
            "user_token": USER_TOKEN,
            "rate_limit": "200",
        },
        storage={"data_dir": str(data_dir), "phone_hash_key": PHONE_KEY},
        alerts={"ui_base_url": UI, **alerts},
    )


class Daemon:
    """The alert sensors ticking over one instance, each keeping its cursor, as the daemon
    does; the first tick only sets the cursors (a sensor starts from 'now')."""

    def __init__(self, instance: dg.DagsterInstance, resources: dict[str, Any]) -> None:
        self.instance = instance
        self.resources = resources
        self.sensors = build_alert_sensors(stale_checks=FRESHNESS_CHECKS)
        self.cursors: dict[str, str | None] = {}
        # Errors the sensors raised, as the daemon records them on the tick.
        self.errors: list[str] = []
        self.tick()

    def tick(self) -> dict[str, str | None]:
        said = {}
        for sensor in self.sensors:
            with dg.build_sensor_context(
                instance=self.instance,
                cursor=self.cursors.get(sensor.name),
                resources=self.resources,
            ) as context:
                data = sensor.evaluate_tick(context)
            self.cursors[sensor.name] = data.cursor
            said[sensor.name] = data.skip_message
            for reaction in data.dagster_run_reactions or []:
                if reaction.error is not None:
                    self.errors.append(reaction.error.to_string())
        return said


def nightly(resources: dict[str, Any], instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    """The code location's nightly job, bound to the test's resources."""
    defs = dg.Definitions(
        assets=[*TABLE_ASSETS, warehouse], jobs=[NIGHTLY_JOB], resources=resources
    )
    return defs.resolve_job_def(NIGHTLY_JOB.name).execute_in_process(
        instance=instance, tags=DAYS, raise_on_error=False
    )


# The sandbox takes the canary credentials the runs send.
ACCEPTED = SandboxCredentials(partner_token=PARTNER_TOKEN, user_token=USER_TOKEN)


def _sandbox(**over: Any) -> SandboxConfig:
    base = {
        "seed": 3,
        "chains": 1,
        "start": date(2026, 1, 1),
        "end": date(2026, 1, 6),
        "credentials": ACCEPTED,
    }
    return SandboxConfig(**{**base, **over})


def _no_canary(text: str) -> None:
    for canary in CANARIES:
        assert canary not in text


def test_a_failing_nightly_run_against_a_broken_sandbox_posts_exactly_one_alert(
    tmp_path, webhook, mailbox
):
    box, smtp_port = mailbox
    # The sandbox no longer takes the token the run has (revoked in the night): every request
    # is refused, the chains step fails at once and the rest of the run is skipped.
    broken = _sandbox(
        credentials=SandboxCredentials(partner_token=PARTNER_TOKEN, user_token="rotated-token")
    )
    with serve(broken) as server, dg.instance_for_test() as instance:
        bound = resources(
            server,
            tmp_path,
            webhook_url=webhook.url,
            smtp_host="127.0.0.1",
            smtp_port=str(smtp_port),
            smtp_tls="none",
            smtp_user="",
            smtp_password=SMTP_PASSWORD,
            email_to="ops@example.test, data@example.test",
        )
        daemon = Daemon(instance, bound)
        result = nightly(bound, instance)
        said = [daemon.tick(), daemon.tick(), daemon.tick()]
    assert not result.success
    run_id = result.run_id
    assert len(webhook.bodies) == 1
    assert said[0]["alert_on_run_failure"] == f"alert for run {run_id} sent to webhook, e-mail"
    body = webhook.bodies[0]
    text = body["text"]
    assert f"nightly_load failed (run {run_id[:8]})" in text
    assert f"Run {run_id} of job nightly_load, days 2026-01-04..2026-01-04" in text
    assert "- chains: AuthError" in text and "status=401" in text
    assert "ALTEGIO_USER_TOKEN" in text  # the reason says what to fix
    assert "chains: every chain of the step" in text
    assert f"Open the run: {UI}/runs/{run_id}" in text
    assert f"<{UI}/runs/{run_id}|open the run in Dagster>" in json.dumps(body["blocks"])
    assert [block["type"] for block in body["blocks"]] == ["header", "section", "section"]
    _no_canary(json.dumps(body))
    # The same alert by e-mail, once, to both recipients.
    (mail,) = box.messages
    assert mail["Subject"] == f"altegio-loyalty: nightly_load failed (run {run_id[:8]})"
    assert mail["To"] == "ops@example.test, data@example.test"
    assert mail.get_content().replace("\r\n", "\n").strip() == text.strip()
    _no_canary(mail.as_string())


def test_a_nightly_run_whose_error_check_fails_alerts_once_naming_the_chains(tmp_path, webhook):
    # A server that ignores the page parameter: each chain's multi-page reads fail, the run
    # itself succeeds, and its all_chains_loaded checks (error severity) do not pass.
    broken = _sandbox(transactions_per_day=400, faults=Faults(stuck_pages=True))
    with serve(broken) as server, dg.instance_for_test() as instance:
        bound = resources(server, tmp_path, webhook_url=webhook.url)
        daemon = Daemon(instance, bound)
        result = nightly(bound, instance)
        daemon.tick()
        daemon.tick()
        chain_id = server.dataset.chain_ids()[0]
    assert result.success
    (body,) = webhook.bodies
    text = body["text"]
    assert f"nightly_load check failed (run {result.run_id[:8]})" in text
    assert "- altegio/loyalty_transactions:all_chains_loaded: expected: No chain failed" in text
    assert f"chains: {chain_id}: BadResponse" in text
    assert "the server ignores the page parameter" in text
    _no_canary(json.dumps(body))


def test_a_clean_nightly_run_sends_nothing(tmp_path, webhook):
    with serve(_sandbox()) as server, dg.instance_for_test() as instance:
        bound = resources(server, tmp_path, webhook_url=webhook.url)
        daemon = Daemon(instance, bound)
        result = nightly(bound, instance)
        said = daemon.tick()
    assert result.success
    assert webhook.bodies == []
    assert said["alert_on_failed_checks"] == f"run {result.run_id}: every alerting check passed"


def _freshness_run(bound: dict[str, Any], instance: dg.DagsterInstance) -> str:
    """A run of the freshness checks alone, as the freshness sensor launches them."""
    job = dg.define_asset_job(
        "freshness_only", selection=dg.AssetSelection.checks(*FRESHNESS_CHECKS)
    )
    defs = dg.Definitions(
        assets=[*TABLE_ASSETS, warehouse],
        asset_checks=FRESHNESS_CHECKS,
        jobs=[job],
        resources=bound,
    )
    result = defs.resolve_job_def("freshness_only").execute_in_process(
        instance=instance, raise_on_error=False
    )
    assert result.success
    assert [e.passed for e in result.get_asset_check_evaluations()] == [False, False]
    return result.run_id


def test_stale_data_alerts_once(tmp_path, webhook):
    with serve(_sandbox()) as server, dg.instance_for_test() as instance:
        bound = resources(server, tmp_path, webhook_url=webhook.url)
        daemon = Daemon(instance, bound)
        run_id = _freshness_run(bound, instance)
        daemon.tick()
        daemon.tick()
    (body,) = webhook.bodies
    text = body["text"]
    assert f"freshness_only stale data (run {run_id[:8]})" in text
    for table in ("loyalty_transactions", "chains"):
        assert f"- altegio/{table}:freshness_check: Asset has never been" in text


def test_without_a_channel_the_sensors_skip_and_say_which_variables_to_set(tmp_path):
    with serve(_sandbox()) as server, dg.instance_for_test() as instance:
        bound = resources(server, tmp_path)
        daemon = Daemon(instance, bound)
        _freshness_run(bound, instance)
        said = daemon.tick()
    assert "ALTEGIO_ALERT_WEBHOOK_URL" in (said["alert_on_failed_checks"] or "")


def test_a_webhook_that_refuses_fails_the_tick_once_without_naming_its_url(tmp_path):
    refusing = Webhook(status=500)
    try:
        with serve(_sandbox()) as server, dg.instance_for_test() as instance:
            bound = resources(server, tmp_path, webhook_url=refusing.url)
            daemon = Daemon(instance, bound)
            _freshness_run(bound, instance)
            daemon.tick()
            daemon.tick()
    finally:
        refusing.close()
    assert len(refusing.bodies) == 1  # tried once, not repeated
    (error,) = daemon.errors
    assert "DeliveryError: alert webhook answered HTTP 500" in error
    assert HOOK_SECRET not in error
