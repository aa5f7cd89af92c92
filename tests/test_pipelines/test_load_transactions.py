"""The transactions load step writes behind: several flushes per chain, one in flight while
the next days are fetched. Every row must land once, and a failing write must fail its chain
alone, with no write of it still running when the step reports."""

import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow.compute as pc
import pytest

from pipelines import load
from pipelines.altegio.client import AltegioClient
from pipelines.altegio.sandbox import SandboxConfig, serve
from pipelines.storage.parquet import Lake
from tests.conftest import project_lake, sandbox_altegio_client

START = date(2026, 1, 1)
DAYS = [START + timedelta(days=i) for i in range(10)]
CFG = SandboxConfig(seed=5, chains=2, start=START, end=DAYS[-1], transactions_per_day=30)
EXTRACTED = datetime(2026, 2, 1, tzinfo=UTC)


def _client(server, tmp_path: Path) -> AltegioClient:
    return sandbox_altegio_client(server, tmp_path / "budget")


@pytest.fixture
def small_flushes(monkeypatch):
    monkeypatch.setattr(load, "FLUSH_ROWS", 40)  # a flush every day or two: many per chain


def test_every_row_lands_once_across_many_background_flushes(small_flushes, tmp_path):
    lake = project_lake(tmp_path / "lake")
    with serve(CFG) as server, _client(server, tmp_path) as client:
        chains = client.list_chains()
        report = load.load_daily(client, lake, chains, "loyalty_transactions", DAYS, EXTRACTED)
        truth = {
            chain.id: sorted(
                r["id"] for r in server.dataset.transactions(chain.id, START, DAYS[-1])
            )
            for chain in chains
        }
    assert not report.failed
    table = lake.read("loyalty_transactions")
    for chain_id, ids in truth.items():
        mine = table.filter(pc.equal(table["chain_id"], chain_id))
        assert sorted(mine["id"].to_pylist()) == ids
    assert report.rows["loyalty_transactions"] == sum(map(len, truth.values()))
    assert report.partitions_written == len(DAYS) * len(truth)


def _second_flush_fails(monkeypatch, error: OSError) -> list[int]:
    """Lake writes of the chain put into the returned list fail with `error` from its second
    flush on; its first one lands."""
    real = Lake.replace_partitions
    running = threading.Event()
    failing_chain: list[int] = []

    def replace(self, table_name, data, partitions):
        chain_ids = {p.get("chain_id") for p in partitions}
        if table_name == "loyalty_transactions" and failing_chain[0] in chain_ids:
            if running.is_set():
                raise error
            running.set()
        return real(self, table_name, data, partitions)

    monkeypatch.setattr(Lake, "replace_partitions", replace)
    return failing_chain


def test_a_failed_background_write_fails_its_chain_only(small_flushes, tmp_path, monkeypatch):
    lake = project_lake(tmp_path / "lake")
    failing_chain = _second_flush_fails(monkeypatch, OSError(5, "Input/output error"))
    with serve(CFG) as server, _client(server, tmp_path) as client:
        chains = client.list_chains()
        failing_chain.append(chains[0].id)
        report = load.load_daily(client, lake, chains, "loyalty_transactions", DAYS, EXTRACTED)
    outcomes = {c.chain_id: c for c in report.chains}
    assert outcomes[chains[0].id].status == load.ChainStatus.FAILED
    assert "Input/output error" in outcomes[chains[0].id].reason
    assert all(outcomes[c.id].status == load.ChainStatus.LOADED for c in chains[1:])
    # No flush thread of the failed chain outlives the step.
    assert not [t for t in threading.enumerate() if t.name.startswith("lake-flush")]


def test_a_full_disk_stops_the_step_instead_of_failing_one_chain(
    small_flushes, tmp_path, monkeypatch
):
    lake = project_lake(tmp_path / "lake")
    failing_chain = _second_flush_fails(monkeypatch, OSError(28, "No space left on device"))
    with serve(CFG) as server, _client(server, tmp_path) as client:
        chains = client.list_chains()
        failing_chain.append(chains[0].id)
        # The next chain would meet the same full disk: the step stops with the error.
        with pytest.raises(OSError, match="No space left"):
            load.load_daily(client, lake, chains, "loyalty_transactions", DAYS, EXTRACTED)
    assert not [t for t in threading.enumerate() if t.name.startswith("lake-flush")]
