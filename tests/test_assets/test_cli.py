"""End to end: `altegio-loyalty load` as a user runs it, against the sandbox over HTTP."""

import os
import signal
import subprocess
import sys
import time
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


def start_cli(server: SandboxServer, data_dir: Path, *args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "ALTEGIO_BASE_URL": server.base_url,
        "ALTEGIO_PARTNER_TOKEN": server.credentials.partner_token,
        "ALTEGIO_USER_TOKEN": server.credentials.user_token,
        # Slow enough that the signal lands while the transactions are being paged through.
        "ALTEGIO_RATE_LIMIT": "4",
        "ALTEGIO_DATA_DIR": str(data_dir),
        "ALTEGIO_PHONE_HASH_KEY": "test-cli-phone-hash-key",
    }
    cli = Path(sys.executable).with_name("altegio-loyalty")
    return subprocess.Popen(
        [str(cli), "load", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _transaction_requests(server: SandboxServer) -> int:
    return sum(server.stats()["requests"].get("transactions", {}).values())


# The step retry a signal used to trigger waited 30 s before repeating the step; a load that
# honours the signal is gone long before this bound.
STOP_BOUND_S = 20


@pytest.mark.xdist_group("cli")
@pytest.mark.parametrize(("signum", "exit_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_the_load_without_retry_and_a_rerun_equals_a_clean_load(
    clean_warehouse, tmp_path, signum, exit_code
):
    with serve(CONFIG) as server:
        proc = start_cli(server, tmp_path, "--start", str(START), "--end", str(END))
        deadline = time.monotonic() + 120
        while _transaction_requests(server) < 3 and proc.poll() is None:
            assert time.monotonic() < deadline, "the load never reached the transactions"
            time.sleep(0.05)
        assert proc.poll() is None, "the load finished before the signal"
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=STOP_BOUND_S)
        requests_at_exit = server.stats()["total_requests"]
        assert proc.returncode == exit_code, stdout + stderr
        assert f"Load INTERRUPTED by {signal.Signals(signum).name}" in stdout
        assert "stopped while running: loyalty_transactions" in stdout
        assert "Load succeeded" not in stdout
        # Nothing of the load kept running after the command ended.
        time.sleep(0.5)
        assert server.stats()["total_requests"] == requests_at_exit
        assert not (tmp_path / "warehouse.duckdb").exists()

        rerun = run_cli(server, tmp_path, "--start", str(START), "--end", str(END))
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert warehouse_digest(tmp_path / "warehouse.duckdb") == clean_warehouse
