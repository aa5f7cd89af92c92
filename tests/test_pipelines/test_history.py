"""History (SCD2) of the mutable tables: what a read appends, what it closes, what it ignores,
and that a chain whose read failed closes nothing."""

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipelines import load
from pipelines.altegio.http import RetryPolicy
from pipelines.altegio.normalize import normalize
from pipelines.altegio.sandbox import Faults, SandboxConfig, serve
from pipelines.history import ChainHistory, history_problems, history_tables
from pipelines.storage.history import HISTORY_DIR, HistoryStore
from tests.conftest import membership_type, project_lake, sandbox_altegio_client

T0 = datetime(2026, 3, 1, 5, tzinfo=UTC)
CHAIN = 509


def _tables(*records: dict[str, Any]) -> dict[str, pa.Table]:
    batch = normalize(
        "membership_types", list(records), chain_id=CHAIN, extracted_at=T0, chain_timezone="UTC"
    )
    assert not batch.quarantine.num_rows
    return dict(batch.tables)


def _store(tmp_path: Path) -> HistoryStore:
    return HistoryStore(tmp_path / HISTORY_DIR, history_tables())


def _versions(store: HistoryStore, table: str = "membership_types") -> list[dict[str, Any]]:
    rows = store.lake.read(table).sort_by([("id", "ascending"), ("_valid_from", "ascending")])
    return rows.select(["id", "cost", "abonements_count", "_valid_from", "_is_deleted"]).to_pylist()


def test_only_changes_make_versions_and_a_rerun_adds_none(tmp_path: Path) -> None:
    store = _store(tmp_path)
    first = _tables(membership_type(id=1), membership_type(id=2))
    counts = ChainHistory(store, _source(), CHAIN).record(first, T0)
    assert (counts.new, counts.changed, counts.deleted) == (2, 0, 0)
    # The same read again (a rerun, a new process): nothing.
    assert ChainHistory(store, _source(), CHAIN).record(first, T0 + timedelta(hours=1)).total == 0
    # A counter that moves with every sale is not a change by itself.
    sold = _tables(membership_type(id=1, abonements_count=99), membership_type(id=2))
    assert ChainHistory(store, _source(), CHAIN).record(sold, T0 + timedelta(days=1)).total == 0
    # A new price is; its child rows are versioned with it.
    repriced = _tables(membership_type(id=1, cost=1200), membership_type(id=2))
    counts = ChainHistory(store, _source(), CHAIN).record(repriced, T0 + timedelta(days=2))
    assert (counts.new, counts.changed) == (0, 1)
    assert [(v["id"], v["cost"]) for v in _versions(store)] == [(1, 1000), (1, 1200), (2, 1000)]
    links = store.lake.read("membership_type_balance_links")
    assert links.num_rows == 3 * 2  # two links per type version


def test_absent_from_a_complete_list_is_closed_and_a_return_reopens(tmp_path: Path) -> None:
    store = _store(tmp_path)
    lake = project_lake(tmp_path / "parquet")
    days = [T0 + timedelta(days=d) for d in range(3)]
    for when, ids in zip(days, ([1, 2], [1], [1, 2]), strict=True):
        tables = _tables(*(membership_type(id=i) for i in ids))
        for name, table in tables.items():
            lake.replace_partitions(name, table, [{"chain_id": CHAIN}])
        ChainHistory(store, _source(), CHAIN).record(tables, when)
        assert history_problems(store, lake, "membership_types") == {
            "history_one_current_row": 0,
            "history_no_overlap": 0,
            "history_matches_current": 0,
        }
    two = [(v["_valid_from"], v["_is_deleted"]) for v in _versions(store) if v["id"] == 2]
    assert two == [(days[0], False), (days[1], True), (days[2], False)]


def test_history_matches_current_sees_a_current_row_without_its_version(tmp_path: Path) -> None:
    store = _store(tmp_path)
    lake = project_lake(tmp_path / "parquet")
    ChainHistory(store, _source(), CHAIN).record(_tables(membership_type(id=1)), T0)
    tables = _tables(membership_type(id=1), membership_type(id=3))
    lake.replace_partitions("membership_types", tables["membership_types"], [{"chain_id": CHAIN}])
    assert history_problems(store, lake, "membership_types")["history_matches_current"] == 1


def test_a_chain_whose_read_fails_closes_nothing(tmp_path: Path) -> None:
    config = SandboxConfig(seed=3, chains=2, start=date(2026, 1, 1), end=date(2026, 1, 3))
    store = _store(tmp_path)
    lake = project_lake(tmp_path / "parquet")
    with serve(config) as server, sandbox_altegio_client(server, tmp_path / "b") as client:
        chains = client.list_chains()
        report = load.load_reference(client, lake, chains, "promotions", T0, history=store)
    assert not report.failed and report.versions > 0
    before = store.lake.read("promotions").num_rows
    broken = SandboxConfig(**{**config.__dict__, "faults": Faults(error_every=1)})
    with (
        serve(broken) as failing,
        sandbox_altegio_client(failing, tmp_path / "b", retry=RetryPolicy(max_attempts=1)) as c,
    ):
        later = T0 + timedelta(days=1)
        report = load.load_reference(c, lake, chains, "promotions", later, history=store)
    assert {o.chain_id for o in report.failed} == {c.id for c in chains}
    assert store.lake.read("promotions").num_rows == before
    assert not any(store.lake.read("promotions")["_is_deleted"].to_pylist())


def _source() -> Any:
    from pipelines.altegio.sources import SOURCES

    return SOURCES["membership_types"]


def test_a_window_of_memberships_closes_only_what_it_covered(tmp_path: Path) -> None:
    from pipelines.altegio.sources import SOURCES
    from tests.conftest import membership

    store = _store(tmp_path)
    source = SOURCES["memberships"]

    def read(*records: dict[str, Any]) -> dict[str, pa.Table]:
        batch = normalize(
            "memberships", list(records), chain_id=CHAIN, extracted_at=T0, chain_timezone="UTC"
        )
        return dict(batch.tables)

    jan5 = "2026-01-05T10:00:00+00:00"
    jan6 = "2026-01-06T10:00:00+00:00"
    first = read(membership(id=1, created_date=jan5), membership(id=2, created_date=jan6))
    ChainHistory(store, source, CHAIN, "created_day").record(
        first, T0, [date(2026, 1, 5), date(2026, 1, 6)]
    )
    # A window of Jan 6 that no longer lists membership 2; membership 1 (Jan 5) is not covered.
    keeper = ChainHistory(store, source, CHAIN, "created_day")
    counts = keeper.record(read(), T0 + timedelta(days=1), [date(2026, 1, 6)])
    assert (counts.deleted, counts.total) == (1, 1)
    rows = store.lake.read("memberships").select(["id", "_is_deleted"]).to_pylist()
    assert sorted((r["id"], r["_is_deleted"]) for r in rows) == [(1, False), (2, False), (2, True)]
    # A re-read by id (no scope) closes nothing.
    assert ChainHistory(store, source, CHAIN).record(read(), T0 + timedelta(days=2)).total == 0
