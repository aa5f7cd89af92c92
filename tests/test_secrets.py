"""Canary secrets: distinctive partner token, user token, login and password go through full
loads (in-process with DEBUG logging and a persistent Dagster instance; the CLI as a user runs
it, logging in with login/password) and must appear nowhere a run leaves traces: log records,
stdout/stderr, Dagster events, every byte of every file under the data dir and DAGSTER_HOME
(and the decoded contents of every Parquet file and DuckDB table), reprs and error texts.
Also: plain http to a non-loopback host is refused before any request, and what a load writes
is owner-only."""

import logging
import os
import stat
import subprocess
import sys
import traceback
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import httpx
import pyarrow.parquet as pq
import pytest

from assets import cli
from assets.resources import AlertResource, AltegioResource, StorageResource
from pipelines.altegio.client import AltegioClient, ClientSettings, Credentials
from pipelines.altegio.http import AuthError, InsecureURLError
from pipelines.altegio.sandbox import SandboxConfig, SandboxServer
from pipelines.altegio.sandbox.config import SandboxCredentials

PARTNER = "cnryPARTNER-7f3a9c1e"
USER = "cnryUSER-b2d84e06"
LOGIN = "cnry-login-5c1d@example.org"
PASSWORD = "cnryPASS-e91f2a7b"
HASH_KEY = "cnryHASHKEY-3e7d0c5a91b2"
CANARIES = (PARTNER, USER, LOGIN, PASSWORD, HASH_KEY)

START, END = date(2026, 1, 1), date(2026, 1, 3)
# The module's sandbox (tests/conftest.py) answers to the canary credentials.
SANDBOX_CONFIG = SandboxConfig(
    seed=9,
    chains=2,
    locations_per_chain=2,
    start=START,
    end=END,
    transactions_per_day=20,
    credentials=SandboxCredentials(
        partner_token=PARTNER, user_token=USER, login=LOGIN, password=PASSWORD
    ),
)
LOGGERS = ("", "dagster", "httpx", "httpcore", "pipelines", "assets")


def leaks(text: str | bytes, where: str) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [f"{canary!r} in {where}" for canary in CANARIES if canary.encode() in data]


def scan_tree(root: Path) -> tuple[list[str], int]:
    """Every byte of every file under `root`, plus the decoded rows of Parquet files and
    DuckDB tables (both compress strings, so raw bytes alone could hide a value)."""
    found: list[str] = []
    files = 0
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        files += 1
        found += leaks(path.read_bytes(), str(path))
        if path.suffix == ".parquet":
            found += leaks(repr(pq.read_table(path).to_pylist()), f"{path} (decoded)")
        elif path.suffix == ".duckdb":
            found += scan_duckdb(path)
    return found, files


def scan_duckdb(path: Path) -> list[str]:
    found: list[str] = []
    with duckdb.connect(str(path), read_only=True) as con:
        tables = con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE NOT internal"
        ).fetchall()
        for schema, table in tables:
            rows = con.execute(f'SELECT * FROM "{schema}"."{table}"').fetchall()
            found += leaks(repr(rows), f"{path}:{schema}.{table}")
    return found


def owner_only_violations(root: Path) -> list[str]:
    """Files and directories under `root` (root included) readable by group or others."""
    bad = []
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if mode & 0o077:
            bad.append(f"{path.relative_to(root.parent)} {oct(mode)}")
    return bad


@pytest.fixture
def umask_022() -> Iterator[None]:
    # The usual default: without explicit modes, files would come out world-readable.
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "".join(traceback.format_exception(*record.exc_info))
        self.lines.append(f"{record.name}: {text} {record.args!r}")


@pytest.mark.xdist_group("reliability")
@pytest.mark.timeout(600)
def test_in_process_load_with_debug_logging_leaks_no_canary(
    sandbox, tmp_path, caplog, capfd, monkeypatch, umask_022
):
    data_dir, home = tmp_path / "data", tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    records = _Records()
    saved = {}
    for name in LOGGERS:
        logger = logging.getLogger(name)
        saved[name] = logger.level
        logger.setLevel(logging.DEBUG)
        logger.addHandler(records)
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("ALTEGIO_PHONE_HASH_KEY", HASH_KEY)
    results: list[dg.ExecuteInProcessResult] = []
    real_materialize = dg.materialize

    def materialize(*args: Any, **kwargs: Any) -> dg.ExecuteInProcessResult:
        # The CLI's own call, with a persistent instance under DAGSTER_HOME (events land on
        # disk) and every Dagster log line at DEBUG on the console.
        kwargs["run_config"] = {"loggers": {"console": {"config": {"log_level": "DEBUG"}}}}
        result = real_materialize(*args, instance=instance, **kwargs)
        results.append(result)
        return result

    try:
        with dg.DagsterInstance.get() as instance:
            monkeypatch.setattr(cli.dg, "materialize", materialize)
            summary = cli.run_load(
                START,
                END,
                str(data_dir),
                altegio_overrides={
                    "base_url": sandbox.base_url,
                    "partner_token": PARTNER,
                    "user_token": USER,
                    "rate_limit": "unlimited",
                },
            )
            (result,) = results
            stored = instance.all_logs(result.run_id)
    finally:
        for name in LOGGERS:
            logging.getLogger(name).removeHandler(records)
            logging.getLogger(name).setLevel(saved[name])
    out, err = capfd.readouterr()
    assert summary.exit_code == 0, (summary, err[-3000:])
    assert sum(summary.rows.values()) > 0

    found: list[str] = []
    found += leaks("\n".join(records.lines), "log records")
    found += leaks("\n".join(r.getMessage() for r in caplog.records), "caplog")
    found += leaks(out + err, "stdout/stderr")
    found += leaks("\n".join(repr(e) for e in result.all_events), "Dagster events")
    found += leaks("\n".join(repr(e) for e in stored), "stored Dagster event log")
    data_found, data_files = scan_tree(data_dir)
    home_found, home_files = scan_tree(home)
    found += data_found + home_found
    assert not found, found
    # The scans saw something: DEBUG lines, events, the lake, the warehouse, the event log.
    assert len(records.lines) > 50 and len(stored) > 50
    assert "DEBUG" in err
    assert list(data_dir.rglob("*.parquet")) and (data_dir / "warehouse.duckdb").exists()
    assert data_files > 10 and home_files > 0
    assert not owner_only_violations(data_dir), owner_only_violations(data_dir)


@pytest.mark.xdist_group("reliability")
@pytest.mark.timeout(600)
def test_cli_load_with_login_and_password_leaks_no_canary(sandbox, tmp_path, umask_022):
    data_dir, home = tmp_path / "data", tmp_path / "dagster_home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALTEGIO_")}
    env.update(
        {
            "ALTEGIO_BASE_URL": sandbox.base_url,
            "ALTEGIO_PARTNER_TOKEN": PARTNER,
            "ALTEGIO_LOGIN": LOGIN,
            "ALTEGIO_PASSWORD": PASSWORD,
            # A client-side budget, so its state directory under the data dir is created too.
            "ALTEGIO_RATE_LIMIT": "200",
            "ALTEGIO_DATA_DIR": str(data_dir),
            "DAGSTER_HOME": str(home),
        }
    )
    auths_before = sandbox.stats()["requests"].get("auth", {}).get("201", 0)
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("altegio-loyalty")),
            "--verbose",
            "load",
            "--start",
            str(START),
            "--end",
            str(END),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # POST /auth ran (so login and password travelled) and DEBUG lines were printed.
    assert sandbox.stats()["requests"]["auth"]["201"] > auths_before
    assert "logging in to" in done.stderr
    found = leaks(done.stdout + done.stderr, "CLI stdout/stderr")
    found += scan_tree(data_dir)[0] + scan_tree(home)[0]
    assert not found, found
    assert list((data_dir / ".rate-budget").glob("*.budget"))
    assert not owner_only_violations(data_dir), owner_only_violations(data_dir)


def test_the_scan_finds_a_canary_in_compressed_parquet_and_duckdb(tmp_path):
    import pyarrow as pa

    pq.write_table(pa.table({"v": [PASSWORD] * 1000}), tmp_path / "t.parquet", compression="zstd")
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        con.execute("CREATE TABLE t AS SELECT ? || i AS v FROM range(100000) r(i)", [USER])
    found, _ = scan_tree(tmp_path)
    assert any("t.parquet (decoded)" in f for f in found), found
    assert any("w.duckdb:main.t" in f for f in found), found


def test_reprs_and_str_of_configuration_objects_hide_every_secret(tmp_path):
    resource = AltegioResource(
        base_url="https://api.example.com/api/v1",
        partner_token=PARTNER,
        user_token=USER,
        login=LOGIN,
        password=PASSWORD,
    )
    credentials = Credentials(
        partner_token=PARTNER, user_token=USER, login=LOGIN, password=PASSWORD
    )
    settings = ClientSettings(
        base_url="https://api.example.com/api/v1",
        credentials=credentials,
        rate_limit=None,
        budget_dir=tmp_path,
    )
    storage = StorageResource(data_dir=str(tmp_path), phone_hash_key=HASH_KEY)
    alerts = AlertResource(
        webhook_url=f"https://hooks.example.com/services/{USER}",
        smtp_host="smtp.example.com",
        smtp_user=LOGIN,
        smtp_password=PASSWORD,
    )
    with AltegioClient(settings) as client:
        objects = [resource, storage, alerts, alerts.smtp(), credentials, settings, client]
        objects.append(client._session)
        objects.append(SANDBOX_CONFIG)
        texts = [f(obj) for obj in objects for f in (repr, str)]
    found = leaks("\n".join(texts), "reprs")
    assert not found, found
    assert "***" in repr(credentials) and "***" in repr(settings)


def _client(server: SandboxServer, tmp_path: Path, **credentials: str) -> AltegioClient:
    return AltegioClient(
        ClientSettings(
            base_url=server.base_url,
            credentials=Credentials(**credentials),
            rate_limit=None,
            budget_dir=tmp_path,
            sleep=lambda s: None,
        )
    )


def _error_texts(exc: BaseException) -> str:
    return "\n".join([str(exc), repr(exc), repr(exc.args), *traceback.format_exception(exc)])


def test_a_refused_token_error_names_the_variable_not_the_token(sandbox, tmp_path):
    wrong = "cnryWRONG-0a1b2c3d"
    with (
        _client(sandbox, tmp_path, partner_token=PARTNER, user_token=wrong) as client,
        pytest.raises(AuthError) as raised,
    ):
        client.list_chains()
    text = _error_texts(raised.value)
    assert "ALTEGIO_USER_TOKEN" in text
    assert not leaks(text, "AuthError"), text
    assert wrong not in text


def test_a_refused_password_error_names_the_variables_not_the_password(sandbox, tmp_path):
    wrong = "cnryWRONGPASS-9e8d"
    with (
        _client(sandbox, tmp_path, partner_token=PARTNER, login=LOGIN, password=wrong) as client,
        pytest.raises(AuthError) as raised,
    ):
        client.list_chains()
    text = _error_texts(raised.value)
    assert "ALTEGIO_LOGIN" in text and "ALTEGIO_PASSWORD" in text
    assert not leaks(text, "AuthError"), text
    assert wrong not in text


@pytest.mark.parametrize(
    "url",
    [
        "http://api.example.com/api/v1",
        "http://10.0.0.5:8080/api/v1",
        "http://127.0.0.1.example.com/api/v1",
        "ftp://api.example.com/api/v1",
    ],
)
def test_plain_http_to_a_non_loopback_host_is_refused_before_any_request(tmp_path, url):
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"success": True, "data": [], "meta": []})

    settings = ClientSettings(
        base_url=url,
        credentials=Credentials(partner_token=PARTNER, user_token=USER),
        rate_limit=None,
        budget_dir=tmp_path,
        transport=httpx.MockTransport(record),
    )
    with pytest.raises(InsecureURLError, match="https") as raised:
        AltegioClient(settings).list_chains()
    assert sent == []
    assert not leaks(_error_texts(raised.value), "InsecureURLError")


def test_the_cli_refuses_a_plain_http_base_url_as_a_configuration_error(
    tmp_path, monkeypatch, capsys
):
    for name in list(os.environ):
        if name.startswith("ALTEGIO_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ALTEGIO_BASE_URL", "http://api.example.com/api/v1")
    monkeypatch.setenv("ALTEGIO_PARTNER_TOKEN", PARTNER)
    monkeypatch.setenv("ALTEGIO_USER_TOKEN", USER)
    # main() adds a stderr handler to the "pipelines" logger: restore the logger afterwards.
    pipelines_logger = logging.getLogger("pipelines")
    monkeypatch.setattr(pipelines_logger, "handlers", list(pipelines_logger.handlers))
    monkeypatch.setattr(pipelines_logger, "level", pipelines_logger.level)
    code = cli.main(
        ["load", "--start", "2026-01-01", "--end", "2026-01-01", "--data-dir", str(tmp_path)]
    )
    out, err = capsys.readouterr()
    assert code == 2
    assert "InsecureURLError" in err and "https" in err
    assert not leaks(out + err, "CLI output")
    assert not (tmp_path / "warehouse.duckdb").exists()
