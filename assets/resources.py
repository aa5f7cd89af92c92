"""The two resources of the code location, and the only place that reads the environment.

Every variable is documented in README.md and .env.example. Variables that are set become
`dg.EnvVar`s, so Dagster resolves them at run time and its UI shows the variable's name, never
its value; variables that are not set take the defaults below.
"""

import json
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dagster as dg

from pipelines.alerts.delivery import SMTP_DEFAULT_PORTS, TLS_MODES, SmtpSettings
from pipelines.altegio.client import AltegioClient, ClientSettings, Credentials
from pipelines.altegio.endpoints import DEFAULT_BASE_URL
from pipelines.altegio.enums import dimension_tables
from pipelines.altegio.http import (
    DEFAULT_RATE_LIMIT,
    ConfigurationError,
    RetryPolicy,
    Timeouts,
)
from pipelines.altegio.identities import IDENTITIES_ENV, Identity, identities_from_environment
from pipelines.altegio.personal import phone_hash_key
from pipelines.altegio.schema import TABLES
from pipelines.history import history_tables
from pipelines.storage.history import HISTORY_DIR, HistoryStore
from pipelines.storage.parquet import Lake
from pipelines.storage.warehouse import Warehouse

SANDBOX = "sandbox"
# Against the built-in sandbox nobody's quota is at stake: the sandbox enforces this rate
# itself and the client's budget matches it, so the demo finishes in seconds.
SANDBOX_RATE_LIMIT = 40.0
# ALTEGIO_RATE_LIMIT value that turns the client-side budget off (never for a real API).
UNLIMITED = "unlimited"
DEFAULT_LOOKBACK_DAYS = 3
DEFAULT_DEEP_LOOKBACK_DAYS = 35
# Schedules other than the nightly one, by the variable that sets their cron and its default:
# the full refresh of every stored membership on Sunday 06:00 UTC, the deep lookback of
# transactions on Saturday 07:00 UTC (both stopped until switched on, like the nightly).
SCHEDULE_CRON_VARIABLES = {
    "ALTEGIO_FULL_REFRESH_CRON": "0 6 * * 0",
    "ALTEGIO_DEEP_LOOKBACK_CRON": "0 7 * * 6",
}
DEFAULT_TIMEZONE = "UTC"
# The sandbox serves data for these days; `altegio-loyalty demo` loads exactly this range.
SANDBOX_START = date(2026, 1, 1)
SANDBOX_END = date(2026, 3, 31)
SANDBOX_SEED = 7
# Identities the built-in sandbox accepts, so ALTEGIO_IDENTITIES can be tried against it.
SANDBOX_IDENTITIES = 4

# variable name -> resource field
ALTEGIO_VARIABLES = {
    "ALTEGIO_BASE_URL": "base_url",
    "ALTEGIO_PARTNER_TOKEN": "partner_token",
    "ALTEGIO_USER_TOKEN": "user_token",
    "ALTEGIO_LOGIN": "login",
    "ALTEGIO_PASSWORD": "password",
    "ALTEGIO_CHAIN_IDS": "chain_ids",
    "ALTEGIO_RATE_LIMIT": "rate_limit",
    IDENTITIES_ENV: "identities",
    "ALTEGIO_RATE_BUDGET_URL": "rate_budget_url",
}
STORAGE_VARIABLES = {
    "ALTEGIO_DATA_DIR": "data_dir",
    "ALTEGIO_LOOKBACK_DAYS": "lookback_days",
    "ALTEGIO_DEEP_LOOKBACK_DAYS": "deep_lookback_days",
    "ALTEGIO_TIMEZONE": "timezone",
    "ALTEGIO_PHONE_HASH_KEY": "phone_hash_key",
}
ALERT_VARIABLES = {
    "ALTEGIO_ALERT_WEBHOOK_URL": "webhook_url",
    "ALTEGIO_UI_BASE_URL": "ui_base_url",
    "ALTEGIO_ALERT_SMTP_HOST": "smtp_host",
    "ALTEGIO_ALERT_SMTP_PORT": "smtp_port",
    "ALTEGIO_ALERT_SMTP_TLS": "smtp_tls",
    "ALTEGIO_ALERT_SMTP_USER": "smtp_user",
    "ALTEGIO_ALERT_SMTP_PASSWORD": "smtp_password",
    "ALTEGIO_ALERT_EMAIL_FROM": "email_from",
    "ALTEGIO_ALERT_EMAIL_TO": "email_to",
}
# `make dev`'s UI: where an alert's link points unless ALTEGIO_UI_BASE_URL says otherwise.
DEFAULT_UI_BASE_URL = "http://127.0.0.1:3000"


_sandbox_lock = threading.Lock()
_sandbox_server: Any = None


def _process_sandbox() -> Any:
    """One built-in sandbox per process, started on first use, serving SANDBOX_START..END."""
    global _sandbox_server
    with _sandbox_lock:
        if _sandbox_server is None:
            from pipelines.altegio.sandbox import SandboxConfig, SandboxServer

            server = SandboxServer(
                SandboxConfig(
                    seed=SANDBOX_SEED,
                    start=SANDBOX_START,
                    end=SANDBOX_END,
                    rate_limit=SANDBOX_RATE_LIMIT,
                    # Like a real account, one chain lacks one right: the load skips that
                    # endpoint for that chain and says so.
                    access_overrides={2: {"loyalty_certificate_types_access": "0"}},
                    identities=SANDBOX_IDENTITIES,
                )
            )
            server.start()
            _sandbox_server = server
        return _sandbox_server


class AltegioResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Connection to the Altegio B2B v1 API (or, with base_url "sandbox", the built-in one)."""

    base_url: str = DEFAULT_BASE_URL
    partner_token: str = ""
    user_token: str = ""
    login: str = ""
    password: str = ""
    chain_ids: str = ""
    rate_limit: str = ""
    # Names of several identities (their credentials are read from their own variables when
    # a client opens, never into this config); empty: the single identity above.
    identities: str = ""
    # redis://... : every identity's rate budget in that Redis (workers on several machines);
    # empty: a state file under the data directory. Secret (the URL may carry a password).
    rate_budget_url: str = ""
    # Client tuning, seconds (empty: the policies' defaults). Set by the reliability suite so
    # slow-response faults trip the timeout quickly and retries do not sleep for seconds.
    read_timeout_s: str = ""
    backoff_base_s: str = ""

    def __repr__(self) -> str:
        # Pydantic's repr would print every field, tokens included.
        return (
            f"AltegioResource(base_url={self.base_url!r}, chain_ids={self.chain_ids!r}, "
            f"identities={self.identities!r})"
        )

    __str__ = __repr__

    @property
    def is_sandbox(self) -> bool:
        return self.base_url.strip().lower() == SANDBOX

    def chain_id_list(self) -> list[int] | None:
        text = self.chain_ids.strip()
        if not text:
            return None
        try:
            return [int(part) for part in text.split(",") if part.strip()]
        except ValueError:
            raise ConfigurationError(
                f"ALTEGIO_CHAIN_IDS must be a comma list of integers, got {text!r}"
            ) from None

    def source_identity(self) -> str:
        """What the data in a data directory came from: 'sandbox' or the API's host."""
        return SANDBOX if self.is_sandbox else (urlsplit(self.base_url).hostname or "")

    def _identities(self, sandbox: list[Credentials] | None = None) -> tuple[Identity, ...]:
        """The identities ALTEGIO_IDENTITIES names, from their variables (empty: one)."""
        environ = {**os.environ, IDENTITIES_ENV: self.identities}
        return identities_from_environment(environ, sandbox=sandbox)

    def settings(self, budget_dir: Path) -> ClientSettings:
        if self.is_sandbox:
            server = _process_sandbox()
            accepted = [
                Credentials(partner_token=c.partner_token, user_token=c.user_token)
                for c in server.identity_credentials
            ]
            return ClientSettings(
                base_url=server.base_url,
                credentials=accepted[0],
                identities=self._identities(sandbox=accepted),
                rate_limit=self._rate(SANDBOX_RATE_LIMIT),
                budget_dir=budget_dir,
                budget_url=self.rate_budget_url or None,
                **self._tuning(),
            )
        identities = self._identities()
        if identities:
            if self.partner_token or self.user_token or self.login:
                raise ConfigurationError(
                    f"{IDENTITIES_ENV} is set together with ALTEGIO_PARTNER_TOKEN / "
                    "ALTEGIO_USER_TOKEN / ALTEGIO_LOGIN: set one or the other (each identity "
                    "has its own ALTEGIO_IDENTITY_<NAME>_... variables)"
                )
            return ClientSettings(
                base_url=self.base_url,
                credentials=identities[0].credentials,
                identities=identities,
                rate_limit=self._rate(DEFAULT_RATE_LIMIT),
                budget_dir=budget_dir,
                budget_url=self.rate_budget_url or None,
                **self._tuning(),
            )
        if not self.partner_token:
            raise ConfigurationError(
                "No Altegio credentials: set ALTEGIO_PARTNER_TOKEN and either "
                "ALTEGIO_USER_TOKEN or ALTEGIO_LOGIN + ALTEGIO_PASSWORD "
                "(or ALTEGIO_BASE_URL=sandbox to run against the built-in sandbox)."
            )
        if not self.user_token and not (self.login and self.password):
            raise ConfigurationError(
                "ALTEGIO_PARTNER_TOKEN is set but no user credentials: set ALTEGIO_USER_TOKEN "
                "or both ALTEGIO_LOGIN and ALTEGIO_PASSWORD."
            )
        return ClientSettings(
            base_url=self.base_url,
            credentials=Credentials(
                partner_token=self.partner_token,
                user_token=self.user_token or None,
                login=self.login or None,
                password=self.password or None,
            ),
            rate_limit=self._rate(DEFAULT_RATE_LIMIT),
            budget_dir=budget_dir,
            budget_url=self.rate_budget_url or None,
            **self._tuning(),
        )

    def _tuning(self) -> dict[str, Any]:
        """`retry` and `timeouts` for the client: the defaults, with any tuned field set."""
        backoff = self._seconds("backoff_base_s")
        read = self._seconds("read_timeout_s")
        return {
            "retry": RetryPolicy() if backoff is None else RetryPolicy(backoff_base_s=backoff),
            "timeouts": Timeouts() if read is None else Timeouts(read_s=read),
        }

    def _seconds(self, name: str) -> float | None:
        text = str(getattr(self, name)).strip()
        if not text:
            return None
        try:
            seconds = float(text)
        except ValueError:
            raise ConfigurationError(f"{name} must be seconds, got {text!r}") from None
        if not seconds > 0:
            raise ConfigurationError(f"{name} must be greater than 0")
        return seconds

    def _rate(self, default: float) -> float | None:
        if not self.rate_limit.strip():
            return default
        # Benchmarks against a sandbox without a limit: no client-side budget at all.
        if self.rate_limit.strip().lower() == UNLIMITED:
            return None
        try:
            rate = float(self.rate_limit)
        except ValueError:
            raise ConfigurationError(
                f"ALTEGIO_RATE_LIMIT must be requests per second, got {self.rate_limit!r}"
            ) from None
        if rate <= 0:
            raise ConfigurationError("ALTEGIO_RATE_LIMIT must be greater than 0")
        return rate

    @contextmanager
    def open_client(self, budget_dir: Path) -> Iterator[AltegioClient]:
        client = AltegioClient(self.settings(budget_dir))
        try:
            yield client
        finally:
            client.close()


class StorageResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Where the lake and the warehouse live, the nightly window settings, and the key of the
    hashes that stand in for personal data."""

    data_dir: str = "data"
    lookback_days: str = str(DEFAULT_LOOKBACK_DAYS)
    deep_lookback_days: str = str(DEFAULT_DEEP_LOOKBACK_DAYS)
    timezone: str = DEFAULT_TIMEZONE
    # Secret; empty: the data directory's own key (pipelines.altegio.personal).
    phone_hash_key: str = ""

    def __repr__(self) -> str:
        # Pydantic's repr would print every field, the hash key included.
        return f"StorageResource(data_dir={self.data_dir!r})"

    __str__ = __repr__

    def personal_key(self) -> bytes:
        """The key of the phone hashes (ALTEGIO_PHONE_HASH_KEY, else this data directory's)."""
        try:
            return phone_hash_key(self.phone_hash_key, self.root)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None

    @property
    def root(self) -> Path:
        return Path(self.data_dir)

    def lake(self) -> Lake:
        """The lake of this data directory, holding every declared table."""
        return Lake(self.root / "parquet", TABLES)

    def history(self) -> HistoryStore:
        """The history of the mutable tables (`<data-dir>/history`)."""
        return HistoryStore(self.root / HISTORY_DIR, history_tables())

    def warehouse(self) -> Warehouse:
        """The warehouse of this data directory, published with the enum dimension tables."""
        return Warehouse(self.root, dimensions=dimension_tables, history=self.history())

    @property
    def budget_dir(self) -> Path:
        return self.root / ".rate-budget"

    def lookback(self) -> int:
        return _days("ALTEGIO_LOOKBACK_DAYS", self.lookback_days)

    def deep_lookback(self) -> int:
        return _days("ALTEGIO_DEEP_LOOKBACK_DAYS", self.deep_lookback_days)

    def guard_source(self, identity: str) -> None:
        """Refuse to mix data from two APIs (say, the sandbox and production) in one directory."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        marker = self.root / "source.json"
        if marker.exists():
            recorded = json.loads(marker.read_text()).get("source")
            if recorded != identity:
                raise ConfigurationError(
                    f"{self.root} holds data loaded from {recorded!r}; this load reads "
                    f"{identity!r}. Use another ALTEGIO_DATA_DIR (or delete {self.root})."
                )
            return
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"source": identity}, handle)


def _days(variable: str, text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        raise ConfigurationError(f"{variable} must be an integer, got {text!r}") from None
    if days < 0:
        raise ConfigurationError(f"{variable} must be 0 or more")
    return days


def schedule_cron(variable: str) -> str:
    """The cron of a schedule: its variable (SCHEDULE_CRON_VARIABLES) or the default. Read
    when the code location loads: Dagster needs a schedule's cron before any run."""
    text = os.environ.get(variable, "").strip() or SCHEDULE_CRON_VARIABLES[variable]
    from dagster._utils.schedules import is_valid_cron_string

    if not is_valid_cron_string(text):
        raise ConfigurationError(f"{variable} must be a cron expression, got {text!r}")
    return text


class AlertResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Where alerts go: a Slack-compatible webhook and/or e-mail over SMTP (both optional), and
    the Dagster UI an alert links to. The webhook URL (a credential in itself, for Slack) and
    the SMTP password are secrets: never logged, never in a repr or an error."""

    webhook_url: str = ""
    ui_base_url: str = DEFAULT_UI_BASE_URL
    smtp_host: str = ""
    smtp_port: str = ""
    smtp_tls: str = "starttls"
    smtp_user: str = ""
    smtp_password: str = ""
    email_from: str = ""
    email_to: str = ""

    def __repr__(self) -> str:
        return (
            f"AlertResource(webhook={'set' if self.webhook_url else 'unset'}, "
            f"smtp_host={self.smtp_host!r}, ui_base_url={self.ui_base_url!r})"
        )

    __str__ = __repr__

    @property
    def channels(self) -> list[str]:
        """The configured channels, by name."""
        return [
            name for name, on in (("webhook", self.webhook_url), ("e-mail", self.smtp_host)) if on
        ]

    def run_url(self, run_id: str) -> str:
        base = self.ui_base_url.strip().rstrip("/")
        return f"{base}/runs/{run_id}" if base else ""

    def smtp(self) -> SmtpSettings:
        tls = self.smtp_tls.strip().lower() or "starttls"
        if tls not in TLS_MODES:
            raise ConfigurationError(
                f"ALTEGIO_ALERT_SMTP_TLS must be one of {', '.join(TLS_MODES)}, got {tls!r}"
            )
        port_text = self.smtp_port.strip() or str(SMTP_DEFAULT_PORTS[tls])
        try:
            port = int(port_text)
        except ValueError:
            raise ConfigurationError(
                f"ALTEGIO_ALERT_SMTP_PORT must be a port number, got {port_text!r}"
            ) from None
        return SmtpSettings(
            host=self.smtp_host.strip(),
            port=port,
            tls=tls,
            user=self.smtp_user,
            password=self.smtp_password,
        )

    def recipients(self) -> list[str]:
        recipients = [r.strip() for r in self.email_to.split(",") if r.strip()]
        if not recipients:
            raise ConfigurationError(
                "ALTEGIO_ALERT_SMTP_HOST is set but ALTEGIO_ALERT_EMAIL_TO names no recipient"
            )
        return recipients

    def sender(self) -> str:
        return self.email_from.strip() or f"altegio-loyalty@{socket.getfqdn()}"

    def secrets(self) -> list[str]:
        return [self.webhook_url, self.smtp_password]


def _from_environment(variables: dict[str, str]) -> dict[str, Any]:
    return {field: dg.EnvVar(name) for name, field in variables.items() if os.environ.get(name)}


def build_resources(**overrides: Any) -> dict[str, dg.ConfigurableResource]:  # type: ignore[type-arg]
    """The resources of the code location: environment first, then explicit overrides."""
    altegio = {**_from_environment(ALTEGIO_VARIABLES), **overrides.get("altegio", {})}
    storage = {**_from_environment(STORAGE_VARIABLES), **overrides.get("storage", {})}
    alerts = {**_from_environment(ALERT_VARIABLES), **overrides.get("alerts", {})}
    return {
        "altegio": AltegioResource(**altegio),
        "storage": StorageResource(**storage),
        "alerts": AlertResource(**alerts),
    }
