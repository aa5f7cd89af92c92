"""Auth and rights through full loads against the sandbox: wrong credentials stop the load
before the run with one message naming the variable to fix, and a 401 is never retried more
than once (only a re-login with login/password earns a second try); a chain answering 403
and a chain whose access flag is "0" are skipped, listed in the summary, the load still exits
0, and every other chain's rows equal a clean load's."""

import io
import os
from dataclasses import replace
from datetime import date
from pathlib import Path

import duckdb
import pytest

from assets import cli
from pipelines.altegio.http import AuthError
from pipelines.altegio.sandbox import Faults, SandboxConfig, SandboxServer, serve
from pipelines.storage.warehouse import WAREHOUSE_FILE, quote_identifier
from reliability.common import EXCLUDED_COLUMNS, altegio_overrides

START, END = date(2026, 1, 1), date(2026, 1, 3)
SANDBOX_CONFIG = SandboxConfig(
    seed=21, chains=3, locations_per_chain=2, start=START, end=END, transactions_per_day=15
)
RUN_TIME_COLUMNS = EXCLUDED_COLUMNS  # _extracted_at, quarantined_at, history marts' bounds
RUN_TIME_TABLES = {"altegio.load_steps", "altegio._publish"}
CERTIFICATE_FLAG = "loyalty_certificate_types_access"


def statuses(server: SandboxServer) -> dict[str, int]:
    """Requests by status over every endpoint."""
    out: dict[str, int] = {}
    for by_status in server.stats()["requests"].values():
        for status, count in by_status.items():
            out[status] = out.get(status, 0) + count
    return out


@pytest.fixture
def fresh(sandbox: SandboxServer) -> SandboxServer:
    sandbox.reset_stats()
    return sandbox


def test_a_wrong_user_token_stops_the_load_with_one_message_and_one_401(fresh, tmp_path):
    with pytest.raises(AuthError) as raised:
        cli.run_load(
            START, END, str(tmp_path), altegio_overrides=altegio_overrides(fresh, user_token="x")
        )
    assert "ALTEGIO_USER_TOKEN" in str(raised.value)
    assert statuses(fresh) == {"401": 1}
    assert not (tmp_path / WAREHOUSE_FILE).exists()
    assert not list(tmp_path.rglob("*.parquet"))


def test_a_wrong_password_stops_the_load_naming_login_and_password(fresh, tmp_path):
    with pytest.raises(AuthError) as raised:
        cli.run_load(
            START,
            END,
            str(tmp_path),
            altegio_overrides=altegio_overrides(
                fresh, user_token="", login=fresh.credentials.login, password="wrong"
            ),
        )
    text = str(raised.value)
    assert "ALTEGIO_LOGIN" in text and "ALTEGIO_PASSWORD" in text
    assert "wrong" not in text
    assert fresh.stats()["requests"] == {"auth": {"401": 1}}


def test_an_expired_user_token_with_login_configured_relogs_once_per_client(fresh, tmp_path):
    summary = cli.run_load(
        START,
        END,
        str(tmp_path),
        altegio_overrides=altegio_overrides(
            fresh,
            user_token="expired",
            login=fresh.credentials.login,
            password=fresh.credentials.password,
        ),
    )
    assert summary.exit_code == 0, summary
    requests = fresh.stats()["requests"]
    logins = requests["auth"]["201"]
    # Each client (the pre-check and one per asset) tries the stale token once, then logs in.
    assert statuses(fresh)["401"] == logins
    assert "401" not in requests["auth"]


def test_the_cli_prints_one_clear_message_and_exits_2_on_a_wrong_token(
    fresh, tmp_path, monkeypatch, capsys
):
    for name in list(os.environ):
        if name.startswith("ALTEGIO_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ALTEGIO_BASE_URL", fresh.base_url)
    monkeypatch.setenv("ALTEGIO_PARTNER_TOKEN", fresh.credentials.partner_token)
    monkeypatch.setenv("ALTEGIO_USER_TOKEN", "revoked")
    code = cli.main(["load", "--start", str(START), "--end", str(END), "--data-dir", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("configuration error: AuthError")
    assert "ALTEGIO_USER_TOKEN" in lines[0]
    assert "Traceback" not in out + err
    assert statuses(fresh) == {"401": 1}


def chain_rows(data_dir: Path) -> dict[str, dict[int, list[str]]]:
    """table -> chain_id -> sorted row reprs (run-time columns left out), for tables with a
    chain_id column."""
    out: dict[str, dict[int, list[str]]] = {}
    with duckdb.connect(str(data_dir / WAREHOUSE_FILE), read_only=True) as con:
        tables = con.execute(
            "SELECT table_schema, table_name FROM information_schema.columns "
            "WHERE column_name = 'chain_id' AND table_schema IN ('altegio', 'marts')"
        ).fetchall()
        for schema, table in tables:
            name = f"{schema}.{table}"
            if name in RUN_TIME_TABLES:
                continue
            columns = [
                row[0]
                for row in con.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
                    [schema, table],
                ).fetchall()
                if row[0] not in RUN_TIME_COLUMNS
            ]
            select = ", ".join(quote_identifier(c) for c in columns)
            target = f"{quote_identifier(schema)}.{quote_identifier(table)}"
            key = columns.index("chain_id")
            by_chain: dict[int, list[str]] = {}
            for row in con.execute(f"SELECT {select} FROM {target}").fetchall():
                by_chain.setdefault(row[key], []).append(repr(row))
            out[name] = {chain: sorted(rows) for chain, rows in by_chain.items()}
    return out


@pytest.mark.xdist_group("reliability")
@pytest.mark.timeout(600)
def test_a_403_chain_and_an_access_flag_0_are_skipped_reported_and_the_rest_is_complete(
    tmp_path, monkeypatch
):
    # One hash key for both loads: their rows are compared, phone hashes included.
    monkeypatch.setenv("ALTEGIO_PHONE_HASH_KEY", "test-rights-phone-hash-key")
    with serve(SANDBOX_CONFIG) as clean_server:
        ids = [group["id"] for group in clean_server.dataset.groups()]
        clean = cli.run_load(
            START, END, str(tmp_path / "clean"), altegio_overrides=altegio_overrides(clean_server)
        )
    # The sandbox account lacks the deposits right in every chain but the first.
    assert clean.exit_code == 0 and set(clean.skipped) == {"altegio/deposits"}, clean
    assert str(ids[0]) not in clean.skipped["altegio/deposits"]
    forbidden, flagged = ids[1], ids[0]
    limited = replace(
        SANDBOX_CONFIG,
        faults=Faults(forbidden_chain=1),
        access_overrides={0: {CERTIFICATE_FLAG: "0"}},
    )
    with serve(limited) as server:
        summary = cli.run_load(
            START, END, str(tmp_path / "limited"), altegio_overrides=altegio_overrides(server)
        )
        status_403 = statuses(server).get("403", 0)
    printed = io.StringIO()
    cli.print_summary(summary, printed)
    text = printed.getvalue()

    assert summary.exit_code == 0, text
    assert "Load succeeded" in text
    assert status_403 > 0
    # The 403 chain is listed for every chain-level table; the flagged chain for its table only.
    assert summary.skipped, text
    for table, reason in summary.skipped.items():
        assert f"Skipped (no right): {table}: {reason}" in text
        assert str(forbidden) in reason
    certificate_tables = [t for t in summary.skipped if "certificate_types" in t]
    assert certificate_tables, summary.skipped
    assert all(str(flagged) in summary.skipped[t] for t in certificate_tables)
    assert not any(str(flagged) in r for t, r in summary.skipped.items() if "certificate" not in t)
    assert not summary.failed and not summary.errors, text

    before, after = chain_rows(tmp_path / "clean"), chain_rows(tmp_path / "limited")
    compared = 0
    for table, by_chain in before.items():
        for chain_id, rows in by_chain.items():
            got = after.get(table, {}).get(chain_id, [])
            # The chain list itself shows each limited chain's changed access flags.
            if chain_id in (forbidden, flagged) and table == "altegio.chains":
                assert len(got) == 1, table
                continue
            if chain_id == forbidden:
                continue
            if chain_id == flagged and "certificate_type" in table:
                assert not got, table
                continue
            if chain_id == flagged and table.startswith("marts.certificate"):
                continue  # marts joined to the certificate types the chain may not read
            assert got == rows, f"{table} chain {chain_id}"
            compared += len(rows)
    assert compared > 100
    # Nothing of the forbidden chain beyond the chain list itself (which /groups returns).
    loaded = {t for t, by_chain in after.items() if forbidden in by_chain}
    assert loaded <= {"altegio.chains", "altegio.locations"}, loaded
