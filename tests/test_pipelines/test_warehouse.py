"""The DuckDB warehouse: complete publish, atomic swap under readers, crash safety, load lock."""

import datetime as dt
import json
import logging
import os
import stat
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.altegio.enums import dimension_tables
from pipelines.altegio.schema import TABLES
from pipelines.storage import warehouse as warehouse_module
from pipelines.storage.marts import HISTORY_MART_DOCS, MART_DOCS
from pipelines.storage.parquet import Lake
from pipelines.storage.warehouse import LoadInProgressError, Warehouse
from tests.conftest import (
    TEST_TABLES,
    VERSION_DAYS,
    dimension_stub,
    expected_rows,
    project_lake,
    project_warehouse,
    published_version,
    python_env,
    rows_to_table,
    run_and_kill_at_marker,
    write_version,
)

DAYS = VERSION_DAYS


def _setup(tmp_path: Path) -> tuple[Lake, Warehouse]:
    data_dir = tmp_path / "data"
    return Lake(data_dir / "parquet", TEST_TABLES), Warehouse(data_dir, dimensions=dimension_stub)


def test_publish_builds_every_table_dimension_and_mart(tmp_path: Path) -> None:
    lake, wh = _setup(tmp_path)
    write_version(lake, 1)
    result = wh.publish(lake)

    with wh.connect_read_only() as con:
        tables = {
            (s, t): c
            for s, t, c in con.execute(
                "SELECT schema_name, table_name, comment FROM duckdb_tables()"
            ).fetchall()
        }
        for name, spec in TEST_TABLES.items():
            assert ("altegio", name) in tables
            columns = [
                r[0]
                for r in con.execute(
                    "SELECT column_name FROM duckdb_columns() "
                    "WHERE schema_name = 'altegio' AND table_name = ? ORDER BY column_index",
                    [name],
                ).fetchall()
            ]
            assert columns == spec.schema.names  # also for tables with no partitions yet
            assert tables[("altegio", name)] == spec.description
        assert ("altegio", "enum_transaction_type") in tables
        for mart, doc in MART_DOCS.items():
            # Without a history, the marts built on it are not published.
            if mart in HISTORY_MART_DOCS:
                assert ("marts", mart) not in tables
                continue
            assert tables[("marts", mart)] == doc
        (doc,) = con.execute(
            "SELECT comment FROM duckdb_columns() WHERE schema_name = 'altegio' "
            "AND table_name = 'loyalty_transactions' AND column_name = 'id'"
        ).fetchone()  # type: ignore[misc]
        assert doc == "transaction id; it's the API's id"  # quotes survive the literal
        recorded = dict(
            con.execute("SELECT table_name, row_count FROM altegio._publish").fetchall()
        )
        assert recorded == result.row_counts
        assert recorded["altegio.memberships"] == 0
        assert recorded["altegio.loyalty_transactions"] == expected_rows(1)
        assert published_version(con) == 1
        (types,) = con.execute(
            "SELECT count(*) FROM duckdb_columns() WHERE schema_name = 'altegio' "
            "AND table_name = 'loyalty_transactions' AND column_name = '_extracted_at' "
            "AND data_type = 'TIMESTAMP WITH TIME ZONE'"
        ).fetchone()  # type: ignore[misc]
        assert types == 1


def test_publish_with_the_project_tables_creates_every_declared_table(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    lake = project_lake(data_dir / "parquet")
    wh = project_warehouse(data_dir)
    result = wh.publish(lake)
    with wh.connect_read_only() as con:
        for name, spec in TABLES.items():
            columns = [
                r[0]
                for r in con.execute(
                    "SELECT column_name FROM duckdb_columns() "
                    "WHERE schema_name = 'altegio' AND table_name = ? ORDER BY column_index",
                    [name],
                ).fetchall()
            ]
            assert columns == spec.schema.names, name
        for name in dimension_tables():
            assert result.row_counts[f"altegio.{name}"] > 0
        for mart in MART_DOCS:
            assert result.row_counts[f"marts.{mart}"] == 0


def test_declared_column_types_match_duckdbs_own_arrow_mapping() -> None:
    """Tables are created by DDL (no Arrow hand-over); the types must be the ones DuckDB's
    Arrow scan would have given, for every declared table and dimension."""
    schemas = [spec.schema for spec in [*TABLES.values(), *TEST_TABLES.values()]]
    schemas += [table.schema for table in dimension_tables().values()]
    with duckdb.connect() as con:
        for i, declared in enumerate(schemas):
            empty = declared.empty_table()  # noqa: F841 (scanned by name below)
            con.execute(f"CREATE TABLE arrow_{i} AS SELECT * FROM empty")
            ddl = ", ".join(f'"{f.name}" {warehouse_module.duckdb_type(f.type)}' for f in declared)
            con.execute(f"CREATE TABLE ddl_{i} ({ddl})")
            types = [
                con.execute(
                    "SELECT column_name, data_type FROM duckdb_columns() "
                    "WHERE table_name = ? ORDER BY column_index",
                    [name],
                ).fetchall()
                for name in (f"arrow_{i}", f"ddl_{i}")
            ]
            assert types[0] == types[1]


@pytest.mark.parametrize("files_per_insert", [warehouse_module.FILES_PER_INSERT, 1])
def test_publish_reads_files_written_under_an_older_declaration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files_per_insert: int
) -> None:
    """DuckDB reads the Parquet files itself: a file lacking a now-declared column gives NULLs,
    a narrower type is cast to the declared one, and empty partitions (no file) add nothing.
    With one file per INSERT, the old file is a batch of its own that lacks the column."""
    monkeypatch.setattr(warehouse_module, "FILES_PER_INSERT", files_per_insert)
    lake, wh = _setup(tmp_path)
    write_version(lake, 1)
    old_file = lake.partition_path(
        "loyalty_transactions", {"chain_id": 1, "transaction_date": DAYS[0]}
    )
    table = pq.read_table(old_file)
    older = table.drop_columns(["type_title"]).set_column(
        table.schema.get_field_index("visit_id"),
        "visit_id",
        table.column("visit_id").cast(pa.int32()),
    )
    pq.write_table(older, old_file)
    lake.replace_partitions(
        "loyalty_transactions",
        rows_to_table("loyalty_transactions", []),
        [{"chain_id": 1, "transaction_date": dt.date(2026, 1, 9)}],
    )
    result = wh.publish(lake)
    assert result.row_counts["altegio.loyalty_transactions"] == expected_rows(1)
    with wh.connect_read_only() as con:
        assert published_version(con) == 1
        nulls = con.execute(
            "SELECT count(*) FROM altegio.loyalty_transactions "
            "WHERE transaction_date = ? AND type_title IS NULL",
            [DAYS[0]],
        ).fetchone()
        assert nulls == (expected_rows(1) // len(DAYS),)
        (visit_type,) = con.execute(
            "SELECT data_type FROM duckdb_columns() WHERE table_name = 'loyalty_transactions' "
            "AND column_name = 'visit_id'"
        ).fetchone()  # type: ignore[misc]
        assert visit_type == "BIGINT"


def test_warehouse_rebuilds_from_the_lake_alone(tmp_path: Path) -> None:
    lake, wh = _setup(tmp_path)
    write_version(lake, 2)
    wh.publish(lake)
    with wh.connect_read_only() as con:
        before = con.execute("SELECT * FROM marts.daily_loyalty_activity").fetchall()
    wh.path.unlink()

    Warehouse(wh.data_dir, dimensions=dimension_stub).publish(Lake(lake.root, TEST_TABLES))
    with wh.connect_read_only() as con:
        assert published_version(con) == 2
        assert con.execute("SELECT * FROM marts.daily_loyalty_activity").fetchall() == before


def test_warehouse_files_are_private_and_no_temporaries_remain(tmp_path: Path) -> None:
    lake, wh = _setup(tmp_path)
    write_version(lake, 1)
    with wh.load_lock():
        wh.publish(lake)
    for path in (wh.data_dir, wh.path, wh.lock_path):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, (path, oct(mode))
    assert sorted(p.name for p in wh.data_dir.iterdir()) == [
        ".load.lock",
        "parquet",
        "warehouse.duckdb",
    ]


@pytest.mark.parametrize("step", ["_load_table", "_build_marts", "_record_publish", "_finalize"])
def test_failure_during_publish_keeps_the_previous_warehouse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    lake, wh = _setup(tmp_path)
    write_version(lake, 1)
    wh.publish(lake)
    write_version(lake, 2)

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"simulated crash in {step}")

    monkeypatch.setattr(Warehouse, step, crash)
    with pytest.raises(RuntimeError, match="simulated"):
        wh.publish(lake)
    monkeypatch.undo()

    with wh.connect_read_only() as con:
        assert published_version(con) == 1
    assert not list(wh.data_dir.glob(".publish-*"))
    wh.publish(lake)
    with wh.connect_read_only() as con:
        assert published_version(con) == 2


def test_failure_at_the_swap_keeps_the_previous_warehouse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake, wh = _setup(tmp_path)
    write_version(lake, 1)
    wh.publish(lake)
    write_version(lake, 2)

    def crash(src: object, dst: object) -> None:
        raise OSError("simulated crash at rename")

    monkeypatch.setattr(warehouse_module.os, "replace", crash)
    with pytest.raises(OSError, match="simulated"):
        wh.publish(lake)
    monkeypatch.undo()
    with wh.connect_read_only() as con:
        assert published_version(con) == 1
    wh.publish(lake)
    with wh.connect_read_only() as con:
        assert published_version(con) == 2


def test_failure_after_the_swap_leaves_the_new_warehouse_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake, wh = _setup(tmp_path)
    write_version(lake, 1)
    wh.publish(lake)
    write_version(lake, 2)
    real = warehouse_module._fsync_path

    def crash_on_dir_fsync(path: Path, *, directory: bool = False) -> None:
        real(path, directory=directory)
        if directory:
            raise OSError("simulated crash after rename")

    monkeypatch.setattr(warehouse_module, "_fsync_path", crash_on_dir_fsync)
    with pytest.raises(OSError, match="simulated"):
        wh.publish(lake)
    monkeypatch.undo()
    with wh.connect_read_only() as con:
        assert published_version(con) == 2
    wh.publish(lake)
    with wh.connect_read_only() as con:
        assert published_version(con) == 2


def test_publisher_killed_mid_publish_keeps_previous_warehouse_and_next_run_completes(
    tmp_path: Path,
) -> None:
    lake, wh = _setup(tmp_path)
    write_version(lake, 1)
    wh.publish(lake)
    write_version(lake, 2)
    marker = tmp_path / "in-marts"
    script = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from pipelines.storage.parquet import Lake
        from pipelines.storage.warehouse import Warehouse
        from tests.conftest import TEST_TABLES, dimension_stub

        real = Warehouse._build_marts

        def stall(self, con):
            # The new tables are loaded into the temporary file; die while building marts.
            real(self, con)
            Path({str(marker)!r}).touch()
            time.sleep(120)

        Warehouse._build_marts = stall
        data_dir = Path({str(wh.data_dir)!r})
        Warehouse(data_dir, dimensions=dimension_stub).publish(
            Lake(data_dir / "parquet", TEST_TABLES)
        )
        """
    )
    run_and_kill_at_marker(script, marker, tmp_path)

    stale = list(wh.data_dir.glob(".publish-*"))
    assert len(stale) == 1  # the killed publisher's private build directory
    with wh.connect_read_only() as con:
        assert published_version(con) == 1
    wh.publish(lake)
    assert not stale[0].exists()
    with wh.connect_read_only() as con:
        assert published_version(con) == 2


READER = textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path
    import duckdb
    from tests.conftest import published_version

    db, progress, stop = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    seen, errors, iterations = set(), [], 0
    while not stop.exists():
        try:
            # One connection per query round: an analyst re-opening the warehouse.
            with duckdb.connect(db, read_only=True) as con:
                seen.add(published_version(con))
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        iterations += 1
        tmp = progress.with_suffix(".tmp")
        tmp.write_text(json.dumps({"seen": sorted(seen), "errors": errors[:20],
                                   "iterations": iterations}))
        os.replace(tmp, progress)
    """
)


def _progress(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {"seen": [], "errors": [], "iterations": 0}


def test_reader_process_never_errors_or_sees_a_mixed_state_during_publishes(
    tmp_path: Path,
) -> None:
    lake, wh = _setup(tmp_path)
    write_version(lake, 0)
    wh.publish(lake)
    progress, stop = tmp_path / "progress.json", tmp_path / "stop"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(wh.path), str(progress), str(stop)],
        cwd=tmp_path,
        env=python_env(),
    )
    versions = range(1, 6)
    try:
        for version in versions:
            write_version(lake, version)
            with wh.load_lock(timeout=30):
                wh.publish(lake)
            # Hand over only once the reader has seen this version, so every publish races
            # with live reads (bounded by pytest-timeout, no wall-clock assertion).
            while version not in _progress(progress)["seen"]:
                assert reader.poll() is None, "reader died"
                assert not _progress(progress)["errors"], _progress(progress)["errors"]
                threading.Event().wait(0.02)
    finally:
        stop.touch()
        reader.wait(timeout=60)
    result = _progress(progress)
    logging.getLogger(__name__).info("reader ran %d query rounds", result["iterations"])
    assert reader.returncode == 0
    assert result["errors"] == []
    assert set(result["seen"]) <= {0, *versions}
    assert set(versions) <= set(result["seen"])


def test_open_read_only_connection_keeps_its_snapshot_across_a_publish(tmp_path: Path) -> None:
    lake, wh = _setup(tmp_path)
    write_version(lake, 1)
    wh.publish(lake)
    analyst = wh.connect_read_only()
    try:
        assert published_version(analyst) == 1
        write_version(lake, 2)
        wh.publish(lake)  # must not wait for, or break, the open analyst session
        assert published_version(analyst) == 1
    finally:
        analyst.close()
    with wh.connect_read_only() as con:
        assert published_version(con) == 2


def test_second_load_fails_clearly_after_the_timeout(tmp_path: Path) -> None:
    _, wh = _setup(tmp_path)
    other = Warehouse(wh.data_dir, dimensions=dimension_stub)
    with (
        wh.load_lock(),
        pytest.raises(LoadInProgressError, match=f"pid {os.getpid()}"),
        other.load_lock(timeout=0.1, poll_interval=0.01),
    ):
        pytest.fail("two loads held the lock at once")
    with other.load_lock(timeout=0):
        pass  # free again once the first load ends


def test_second_load_waits_for_the_first_to_finish(tmp_path: Path) -> None:
    _, wh = _setup(tmp_path)
    order: list[str] = []
    first_has_lock, release = threading.Event(), threading.Event()

    def first() -> None:
        with wh.load_lock():
            order.append("first acquired")
            first_has_lock.set()
            release.wait(30)
            order.append("first released")

    thread = threading.Thread(target=first)
    thread.start()
    first_has_lock.wait(30)

    def second() -> None:
        with Warehouse(wh.data_dir).load_lock(timeout=60, poll_interval=0.01):
            order.append("second acquired")

    waiter = threading.Thread(target=second)
    waiter.start()
    release.set()
    thread.join(30)
    waiter.join(60)
    assert order == ["first acquired", "first released", "second acquired"]


def test_lock_of_a_killed_load_is_released(tmp_path: Path) -> None:
    _, wh = _setup(tmp_path)
    marker = tmp_path / "locked"
    script = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from pipelines.storage.warehouse import Warehouse

        with Warehouse(Path({str(wh.data_dir)!r})).load_lock():
            Path({str(marker)!r}).touch()
            time.sleep(120)
        """
    )
    run_and_kill_at_marker(script, marker, tmp_path)
    with wh.load_lock(timeout=30):
        pass
