"""Late corrections of transactions: the nightly lookback replaces its recent days (a corrected
amount replaced, a vanished id removed), the weekly deep lookback the older ones."""

import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from assets.definitions import defs
from assets.resources import build_resources
from assets.schedules import RANGE_END_TAG, RANGE_START_TAG
from pipelines.altegio.sandbox import SandboxConfig, SandboxServer, serve

END = date(2026, 2, 20)
START = END - timedelta(days=39)
TODAY = END + timedelta(days=1)
CONFIG = SandboxConfig(
    seed=9, chains=2, start=START, end=END, transactions_per_day=6, memberships_per_day=1
)
PHONE_KEY = "test-lookbacks-phone-hash-key"
pytestmark = [pytest.mark.xdist_group("cli"), pytest.mark.timeout(900)]


def cli(server: SandboxServer, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ALTEGIO_BASE_URL": server.base_url,
        "ALTEGIO_PARTNER_TOKEN": server.credentials.partner_token,
        "ALTEGIO_USER_TOKEN": server.credentials.user_token,
        "ALTEGIO_RATE_LIMIT": "unlimited",
        "ALTEGIO_DATA_DIR": str(data_dir),
        "ALTEGIO_PHONE_HASH_KEY": PHONE_KEY,
    }
    return subprocess.run(
        [str(Path(sys.executable).with_name("altegio-loyalty")), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def amounts(data_dir: Path, chain: int, day: date) -> dict[int, float]:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute(
            "SELECT id, amount FROM altegio.loyalty_transactions "
            "WHERE chain_id = ? AND transaction_date = ?",
            [chain, day],
        ).fetchall()
    return {int(i): float(a) for i, a in rows}


def served(server: SandboxServer, chain: int, day: date) -> dict[int, float]:
    return {int(r["id"]): float(r["amount"]) for r in server.dataset.transactions(chain, day, day)}


def deep_lookback(server: SandboxServer, data_dir: Path, days: int) -> Any:
    creds = server.credentials
    resources = build_resources(
        altegio={
            "base_url": server.base_url,
            "partner_token": creds.partner_token,
            "user_token": creds.user_token,
            "rate_limit": "unlimited",
        },
        storage={
            "data_dir": str(data_dir),
            "deep_lookback_days": str(days),
            "phone_hash_key": PHONE_KEY,
        },
    )
    first = END - timedelta(days=days)
    job = defs.resolve_job_def("deep_lookback")
    return job.execute_in_process(
        resources=resources,
        tags={RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: END.isoformat()},
        raise_on_error=False,
    )


def test_the_nightly_and_the_deep_lookback_replace_corrected_days(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with serve(CONFIG) as server:
        chain = server.dataset.chain_ids()[0]
        first = cli(server, data, "load", "--start", str(START), "--end", str(END))
        assert first.returncode == 0, first.stdout + first.stderr
        recent, vanishing, old = (
            END - timedelta(days=1),
            END - timedelta(days=2),
            END - timedelta(days=20),
        )
        fixes = {}
        for day, amount in ((recent, 123.45), (vanishing, None), (old, 67.0)):
            (victim, *_) = served(server, chain, day)
            server.dataset.correct_transaction(chain, day, victim, amount=amount)
            fixes[day] = victim
        night = cli(server, data, "nightly", "--today", str(TODAY))
        assert night.returncode == 0, night.stdout + night.stderr
        for day in (recent, vanishing):
            assert amounts(data, chain, day) == served(server, chain, day)
        assert amounts(data, chain, recent)[fixes[recent]] == 123.45
        assert fixes[vanishing] not in amounts(data, chain, vanishing)
        # Twenty days back is beyond the nightly window: still the first answer.
        assert amounts(data, chain, old) != served(server, chain, old)
        result = deep_lookback(server, data, 35)
        assert result.success
        assert amounts(data, chain, old) == served(server, chain, old)
        assert amounts(data, chain, old)[fixes[old]] == 67.0
