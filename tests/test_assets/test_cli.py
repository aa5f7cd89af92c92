"""End to end: `altegio-loyalty load` as a user runs it, against the sandbox over HTTP."""

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from pipelines.altegio.sandbox import Faults, SandboxConfig, SandboxServer, serve
from reliability.common import warehouse_checksums

START, END = date(2026, 1, 1), date(2026, 1, 6)


def warehouse_digest(path: Path) -> dict[str, object]:
    """A checksum of every row of every table and mart, ignoring when it was loaded."""
    return dict(warehouse_checksums(path.parent))


def run_cli(server: SandboxServer, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ALTEGIO_BASE_URL": server.base_url,
        "ALTEGIO_PARTNER_TOKEN": server.credentials.partner_token,
        "ALTEGIO_USER_TOKEN": server.credentials.user_token,
        "ALTEGIO_RATE_LIMIT": "25",
        "ALTEGIO_DATA_DIR": str(data_dir),
        # One key for every load: the warehouses' phone hashes are compared.
        "ALTEGIO_PHONE_HASH_KEY": "test-cli-phone-hash-key",
    }
    cli = Path(sys.executable).with_name("altegio-loyalty")
    return subprocess.run(
        [str(cli), "load", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


CONFIG = SandboxConfig(
    seed=5, chains=2, start=START, end=END, transactions_per_day=60, memberships_per_day=5
)


@pytest.fixture(scope="module")
def clean_warehouse(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    data_dir = tmp_path_factory.mktemp("clean")
    with serve(CONFIG) as server:
        done = run_cli(server, data_dir, "--start", str(START), "--end", str(END))
    assert done.returncode == 0, done.stdout + done.stderr
    return warehouse_digest(data_dir / "warehouse.duckdb")


@pytest.fixture
def faulty_server() -> Iterator[SandboxServer]:
    # Dense enough that every kind fires many times, sparse enough that one request failing
    # all of the client's attempts is a ~1e-6 event (the client retries each request 6 times).
    faults = Faults(
        error_every=15,
        drop_every=31,
        truncate_every=37,
        overlap_pages=True,
        page_size_caps={"transactions": 25},
    )
    config = SandboxConfig(
        seed=5,
        chains=2,
        start=START,
        end=END,
        transactions_per_day=60,
        memberships_per_day=5,
        faults=faults,
        rate_limit=20,
    )
    with serve(config) as server:
        yield server


@pytest.mark.xdist_group("cli")
def test_load_with_faults_and_rate_limit_then_a_subrange_rerun_matches_a_clean_load(
    clean_warehouse, faulty_server, tmp_path
):
    done = run_cli(faulty_server, tmp_path, "--start", str(START), "--end", str(END))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Load succeeded" in done.stdout
    assert "Rows per table" in done.stdout
    faults = faulty_server.stats()["faults"]
    assert sum(faults.values()) > 0, "the sandbox injected no fault"
    assert warehouse_digest(tmp_path / "warehouse.duckdb") == clean_warehouse

    rerun = run_cli(faulty_server, tmp_path, "--start", "2026-01-03", "--end", "2026-01-04")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert warehouse_digest(tmp_path / "warehouse.duckdb") == clean_warehouse


@pytest.mark.xdist_group("cli")
def test_load_without_credentials_names_the_variables_to_set(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALTEGIO_")}
    env["ALTEGIO_DATA_DIR"] = str(tmp_path)
    cli = Path(sys.executable).with_name("altegio-loyalty")
    done = subprocess.run(
        [str(cli), "load", "--start", "2026-01-01", "--end", "2026-01-01"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 2
    assert "ALTEGIO_PARTNER_TOKEN" in done.stderr
    assert "ALTEGIO_BASE_URL=sandbox" in done.stderr
    assert not (tmp_path / "warehouse.duckdb").exists()
