"""The Parquet lake: exact round trip, idempotent partition replacement, atomic writes."""

import datetime as dt
import hashlib
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.storage import parquet
from pipelines.storage.parquet import NULL_PARTITION, PART_FILE, Lake
from tests.conftest import (
    TEST_TABLES,
    rows_to_table,
    run_and_kill_at_marker,
    tx,
)

D1, D2, D3, D4 = (dt.date(2026, 1, d) for d in (1, 2, 3, 4))


def _lake(tmp_path: Path) -> Lake:
    return Lake(tmp_path / "data" / "parquet", TEST_TABLES)


def _day_rows(chain_id: int, day: dt.date, n: int, version: int = 0) -> list[dict]:
    """n transactions of one chain-day; ids are stable per (chain, day, i) so reruns overlap."""
    base = chain_id * 1_000_000 + day.toordinal() % 10_000 * 100
    return [tx(base + i, chain_id, day, 2, float(i + version), visit_id=base + i) for i in range(n)]


def _days(lake_rows: list[dict]) -> list[dict]:
    return sorted(
        {(r["chain_id"], r["transaction_date"]) for r in lake_rows},
    )


def _partitions(keys: list[tuple[int, dt.date]]) -> list[dict]:
    return [{"chain_id": c, "transaction_date": d} for c, d in keys]


def _checksum(table: pa.Table) -> str:
    ordered = table.sort_by([("chain_id", "ascending"), ("id", "ascending")])
    return hashlib.sha256(repr(ordered.to_pylist()).encode()).hexdigest()


def test_round_trip_keeps_declared_schema_exactly(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    rows = _day_rows(1, D1, 3) + _day_rows(1, D2, 2) + _day_rows(2, D1, 4)
    table = rows_to_table("loyalty_transactions", rows)
    lake.replace_partitions("loyalty_transactions", table, _partitions(_days(rows)))

    back = lake.read("loyalty_transactions")
    declared = TEST_TABLES["loyalty_transactions"].schema
    assert back.schema.equals(declared, check_metadata=True)
    assert [f.metadata for f in back.schema] == [f.metadata for f in declared]
    assert back.schema.metadata == declared.metadata
    assert _checksum(back) == _checksum(table)
    assert [p.values for p in lake.partitions("loyalty_transactions")] == _partitions(_days(rows))
    # Partition columns stay in the file, so each file is self-describing.
    one = lake.partitions("loyalty_transactions")[0].path
    assert "transaction_date" in pq.read_schema(one).names


def test_files_use_zstd_and_the_hive_layout(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    rows = _day_rows(7, D3, 5)
    lake.replace_partitions(
        "loyalty_transactions",
        rows_to_table("loyalty_transactions", rows),
        _partitions(_days(rows)),
    )
    path = (
        lake.root
        / "loyalty_transactions"
        / "chain_id=7"
        / "transaction_date=2026-01-03"
        / PART_FILE
    )
    meta = pq.ParquetFile(path).metadata
    assert meta.num_rows == 5
    assert meta.row_group(0).column(0).compression == "ZSTD"


def test_empty_lake_reads_as_empty_table_with_declared_schema(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    empty = lake.read("memberships")
    assert empty.num_rows == 0
    assert empty.schema.equals(TEST_TABLES["memberships"].schema, check_metadata=True)
    assert lake.partitions("memberships") == []


def test_rewriting_a_partition_is_idempotent(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    rows = _day_rows(1, D1, 10) + _day_rows(1, D2, 5)
    table = rows_to_table("loyalty_transactions", rows)
    for _ in range(3):
        lake.replace_partitions("loyalty_transactions", table, _partitions(_days(rows)))
        back = lake.read("loyalty_transactions")
        assert back.num_rows == 15
        assert _checksum(back) == _checksum(table)
    files = sorted(p.name for p in (lake.root / "loyalty_transactions").rglob("*") if p.is_file())
    assert files == [PART_FILE, PART_FILE]


def test_overlapping_lookback_windows_never_duplicate(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    first = [r for d in (D1, D2, D3) for r in _day_rows(1, d, 4)]
    lake.replace_partitions(
        "loyalty_transactions",
        rows_to_table("loyalty_transactions", first),
        _partitions(_days(first)),
    )
    # The next night's 3-day lookback re-reads D2 and D3 (amounts changed) and adds D4.
    second = [r for d in (D2, D3, D4) for r in _day_rows(1, d, 4, version=100)]
    lake.replace_partitions(
        "loyalty_transactions",
        rows_to_table("loyalty_transactions", second),
        _partitions(_days(second)),
    )
    back = lake.read("loyalty_transactions")
    assert back.num_rows == 16
    assert len(set(back.column("id").to_pylist())) == 16
    by_day = {}
    for row in back.to_pylist():
        by_day.setdefault(row["transaction_date"], set()).add(row["amount"] >= 100)
    assert by_day == {D1: {False}, D2: {True}, D3: {True}, D4: {True}}


def test_listed_partition_without_rows_becomes_empty(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    rows = _day_rows(1, D1, 3) + _day_rows(1, D2, 3)
    lake.replace_partitions(
        "loyalty_transactions",
        rows_to_table("loyalty_transactions", rows),
        _partitions(_days(rows)),
    )
    only_d1 = _day_rows(1, D1, 3)
    lake.replace_partitions(
        "loyalty_transactions",
        rows_to_table("loyalty_transactions", only_d1),
        _partitions([(1, D1), (1, D2)]),
    )
    back = lake.read("loyalty_transactions")
    assert sorted(set(back.column("transaction_date").to_pylist())) == [D1]
    # An empty partition is represented by the absence of its file (not an empty file): it
    # reads as zero rows and is not listed. "Loaded, nothing happened" is recorded by the
    # load's own bookkeeping (load_steps, Dagster materializations), not by the lake.
    assert [p.values for p in lake.partitions("loyalty_transactions")] == _partitions([(1, D1)])
    assert not lake.partition_path("loyalty_transactions", _partitions([(1, D2)])[0]).exists()


def test_empty_partitions_write_no_files_and_count_zero_rows(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    rows = _day_rows(1, D1, 2)
    written = lake.replace_partitions(
        "loyalty_transactions",
        rows_to_table("loyalty_transactions", rows),
        _partitions([(1, D1), (1, D2), (1, D3)]),
    )
    assert written == {
        "chain_id=1/transaction_date=2026-01-01": 2,
        "chain_id=1/transaction_date=2026-01-02": 0,
        "chain_id=1/transaction_date=2026-01-03": 0,
    }
    files = sorted(p.relative_to(lake.root) for p in lake.root.rglob("*") if p.is_file())
    assert files == [
        Path("loyalty_transactions/chain_id=1/transaction_date=2026-01-01") / PART_FILE
    ]
    keys = [
        {"source_table": "loyalty_transactions", "chain_id": 1, "partition_key": d.isoformat()}
        for d in (D1, D2)
    ]
    lake.replace_partitions("quarantine", rows_to_table("quarantine", []), keys)
    assert not (lake.root / "quarantine").exists()
    assert lake.read("quarantine").num_rows == 0
    assert lake.partitions("quarantine") == []


def test_a_failed_write_among_many_leaves_every_partition_whole_and_no_temporaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = _lake(tmp_path)
    days = [dt.date(2026, 2, d) for d in range(1, 11)]
    old = rows_to_table("loyalty_transactions", [r for d in days for r in _day_rows(1, d, 2)])
    lake.replace_partitions("loyalty_transactions", old, _partitions([(1, d) for d in days]))
    new = rows_to_table(
        "loyalty_transactions", [r for d in days for r in _day_rows(1, d, 4, version=3)]
    )
    real = parquet._write_temporary

    def fail_on_day_5(table: pa.Table, directory: Path, **kwargs: object) -> Path:
        if directory.name == "transaction_date=2026-02-05":
            raise OSError("simulated disk full")
        return real(table, directory)

    monkeypatch.setattr(parquet, "_write_temporary", fail_on_day_5)
    with pytest.raises(OSError, match="disk full"):
        lake.replace_partitions("loyalty_transactions", new, _partitions([(1, d) for d in days]))
    monkeypatch.undo()
    back = lake.read("loyalty_transactions")
    per_day = {d: back.filter(pa.compute.equal(back["transaction_date"], d)).num_rows for d in days}
    # Renames happen in the listed order: the days before the failed one are new, the rest old.
    assert per_day == {d: 4 if d.day < 5 else 2 for d in days}
    assert not [p for p in lake.root.rglob("*") if p.name.startswith(".tmp-")]
    lake.replace_partitions("loyalty_transactions", new, _partitions([(1, d) for d in days]))
    assert _checksum(lake.read("loyalty_transactions")) == _checksum(new)


def test_rows_outside_the_listed_partitions_are_rejected_before_any_write(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    old = _day_rows(1, D1, 2)
    lake.replace_partitions(
        "loyalty_transactions", rows_to_table("loyalty_transactions", old), _partitions(_days(old))
    )
    new = _day_rows(1, D1, 5, version=50) + _day_rows(1, D2, 1)
    with pytest.raises(ValueError, match="unlisted partition"):
        lake.replace_partitions(
            "loyalty_transactions",
            rows_to_table("loyalty_transactions", new),
            _partitions([(1, D1)]),
        )
    assert _checksum(lake.read("loyalty_transactions")) == _checksum(
        rows_to_table("loyalty_transactions", old)
    )


def test_columns_are_conformed_to_the_declared_order_and_missing_ones_rejected(
    tmp_path: Path,
) -> None:
    lake = _lake(tmp_path)
    rows = _day_rows(1, D1, 2)
    table = rows_to_table("loyalty_transactions", rows)
    shuffled = table.select(list(reversed(table.column_names)))
    lake.replace_partitions("loyalty_transactions", shuffled, _partitions(_days(rows)))
    assert lake.read("loyalty_transactions").column_names == table.column_names
    with pytest.raises(ValueError, match="columns differ"):
        lake.replace_partitions("loyalty_transactions", table.drop_columns(["amount"]), [])


@pytest.mark.parametrize(
    ("table_name", "partition"),
    [
        ("../etc", {"chain_id": 1}),
        ("Loyalty", {"chain_id": 1}),
        ("not_a_table", {"chain_id": 1}),
        ("loyalty_transactions", {"chain_id": "1", "transaction_date": D1}),
        ("loyalty_transactions", {"chain_id": True, "transaction_date": D1}),
        ("loyalty_transactions", {"chain_id": 1, "transaction_date": "2026-01-01"}),
        ("loyalty_transactions", {"chain_id": 1, "transaction_date": dt.datetime(2026, 1, 1)}),
        ("loyalty_transactions", {"chain_id": 1}),
        ("quarantine", {"source_table": "../x", "chain_id": 1, "partition_key": "all"}),
        ("quarantine", {"source_table": "a/b", "chain_id": 1, "partition_key": "all"}),
        ("quarantine", {"source_table": ".hidden", "chain_id": 1, "partition_key": "all"}),
        ("quarantine", {"source_table": "x", "chain_id": 1, "partition_key": "a=b"}),
        ("quarantine", {"source_table": "x", "chain_id": 1, "partition_key": NULL_PARTITION}),
    ],
)
def test_identifiers_and_partition_values_are_validated(
    tmp_path: Path, table_name: str, partition: dict
) -> None:
    lake = _lake(tmp_path)
    with pytest.raises(ValueError):
        lake.partition_path(table_name, partition)
    assert not (tmp_path / "data").exists()


def test_quarantine_partitions_by_source_table_chain_and_key_including_null_chain(
    tmp_path: Path,
) -> None:
    lake = _lake(tmp_path)
    now = dt.datetime(2026, 1, 6, tzinfo=dt.UTC)
    rows = [
        {"source_table": "loyalty_transactions", "chain_id": 1, "partition_key": "2026-01-05",
         "raw_json": "{}", "reason": "bad amount", "quarantined_at": now},
        {"source_table": "chains", "chain_id": None, "partition_key": "all",
         "raw_json": "{\"id\": \"x\"}", "reason": "bad id", "quarantined_at": now},
    ]  # fmt: skip
    keys = [{k: r[k] for k in ("source_table", "chain_id", "partition_key")} for r in rows]
    lake.replace_partitions("quarantine", rows_to_table("quarantine", rows), keys)
    found = [p.values for p in lake.partitions("quarantine")]
    assert sorted(found, key=repr) == sorted(keys, key=repr)
    assert (
        lake.root / "quarantine" / "source_table=chains" / f"chain_id={NULL_PARTITION}"
    ).is_dir()
    assert lake.read("quarantine").num_rows == 2


def test_files_and_directories_are_not_world_readable(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    rows = _day_rows(1, D1, 2)
    lake.replace_partitions(
        "loyalty_transactions",
        rows_to_table("loyalty_transactions", rows),
        _partitions(_days(rows)),
    )
    paths = [lake.root, *lake.root.rglob("*")]
    assert any(p.is_file() for p in paths)
    for path in paths:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, (path, oct(mode))


def test_crash_after_temp_write_keeps_old_partition_and_next_run_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = _lake(tmp_path)
    old = _day_rows(1, D1, 3)
    lake.replace_partitions(
        "loyalty_transactions", rows_to_table("loyalty_transactions", old), _partitions(_days(old))
    )
    new = rows_to_table("loyalty_transactions", _day_rows(1, D1, 6, version=9))

    def crash(*args: object) -> None:
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(parquet.os, "replace", crash)
    with pytest.raises(OSError, match="simulated"):
        lake.replace_partitions("loyalty_transactions", new, _partitions([(1, D1)]))
    monkeypatch.undo()

    partition_dir = lake.partitions("loyalty_transactions")[0].path.parent
    assert [p.name for p in partition_dir.iterdir() if p.name.startswith(".tmp-")]  # left over
    assert lake.read("loyalty_transactions").num_rows == 3  # the old partition, whole

    lake.replace_partitions("loyalty_transactions", new, _partitions([(1, D1)]))
    assert sorted(p.name for p in partition_dir.iterdir()) == [PART_FILE]
    assert _checksum(lake.read("loyalty_transactions")) == _checksum(new)


def test_crash_after_rename_leaves_new_partition_whole_and_rerun_is_idempotent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = _lake(tmp_path)
    old = rows_to_table("loyalty_transactions", _day_rows(1, D1, 3) + _day_rows(1, D2, 3))
    lake.replace_partitions("loyalty_transactions", old, _partitions([(1, D1), (1, D2)]))
    new = rows_to_table("loyalty_transactions", _day_rows(1, D1, 5, 7) + _day_rows(1, D2, 5, 7))
    real_fsync_dir = parquet._fsync_dir
    calls = {"n": 0}

    def crash_after_first_rename(path: Path) -> None:
        real_fsync_dir(path)
        if any(p.name == PART_FILE for p in path.iterdir()):
            calls["n"] += 1
            raise OSError("simulated crash after rename")

    monkeypatch.setattr(parquet, "_fsync_dir", crash_after_first_rename)
    with pytest.raises(OSError, match="simulated"):
        lake.replace_partitions("loyalty_transactions", new, _partitions([(1, D1), (1, D2)]))
    monkeypatch.undo()
    assert calls["n"] == 1
    # Each partition is whole: D1 already new, D2 still old; never a torn file.
    back = lake.read("loyalty_transactions")
    per_day = {
        d: back.filter(pa.compute.equal(back["transaction_date"], d)).num_rows for d in (D1, D2)
    }
    assert per_day == {D1: 5, D2: 3}

    lake.replace_partitions("loyalty_transactions", new, _partitions([(1, D1), (1, D2)]))
    assert _checksum(lake.read("loyalty_transactions")) == _checksum(new)


def test_writer_killed_mid_write_leaves_old_partition_and_next_write_cleans_up(
    tmp_path: Path,
) -> None:
    lake = _lake(tmp_path)
    old = rows_to_table("loyalty_transactions", _day_rows(3, D1, 4))
    lake.replace_partitions("loyalty_transactions", old, _partitions([(3, D1)]))
    marker = tmp_path / "temp-written"
    script = textwrap.dedent(
        f"""
        import datetime as dt, os, time
        from pathlib import Path
        from pipelines.storage import parquet
        from pipelines.storage.parquet import Lake
        from tests.conftest import TEST_TABLES, rows_to_table, tx

        def stall(src, dst):
            # The temporary is complete and fsynced; die here, before the rename.
            Path({str(marker)!r}).write_text(str(src))
            time.sleep(120)

        parquet.os.replace = stall
        lake = Lake(Path({str(lake.root)!r}), TEST_TABLES)
        day = dt.date(2026, 1, 1)
        rows = [tx(90_000 + i, 3, day, 2, 1.0) for i in range(50_000)]
        lake.replace_partitions(
            "loyalty_transactions",
            rows_to_table("loyalty_transactions", rows),
            [{{"chain_id": 3, "transaction_date": day}}],
        )
        """
    )
    run_and_kill_at_marker(script, marker, tmp_path)

    temp = Path(marker.read_text())
    assert temp.exists()
    assert _checksum(lake.read("loyalty_transactions")) == _checksum(old)

    new = rows_to_table("loyalty_transactions", _day_rows(3, D1, 2, version=5))
    lake.replace_partitions("loyalty_transactions", new, _partitions([(3, D1)]))
    assert not temp.exists()
    assert _checksum(lake.read("loyalty_transactions")) == _checksum(new)


def test_sweep_removes_dead_writers_temporaries_anywhere_and_spares_live_ones(tmp_path: Path):
    """A killed load can leave a temporary where no later write goes (its own load_steps run
    partition); the publish's sweep removes it, but never a live process's."""
    lake = _lake(tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True)  # fmt: skip
    dead_pid = int(dead.stdout)
    nowhere_written_again = lake.root / "load_steps" / "step=x" / "run_id=killed"
    nowhere_written_again.mkdir(parents=True)
    stale = nowhere_written_again / f"{parquet.TMP_PREFIX}{dead_pid}-abc{parquet.TMP_SUFFIX}"
    stale.write_bytes(b"half a file")
    live = lake.root / f"{parquet.TMP_PREFIX}{os.getppid()}-def{parquet.TMP_SUFFIX}"
    live.write_bytes(b"being written")
    assert lake.sweep_stale_temporaries() == 1
    assert not stale.exists()
    assert live.exists()
    assert lake.sweep_stale_temporaries() == 0
