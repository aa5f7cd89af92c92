"""The DuckDB warehouse: ``<data-dir>/warehouse.duckdb``, rebuilt whole from the lake.

Schema ``altegio`` holds one table per lake table (same names and columns), the enum dimension
tables ``enum_*`` and ``_publish`` (when this file was published, and row counts); schema
``altegio_history`` holds the history of the mutable tables (``pipelines.storage.history``:
the version rows with ``_valid_to`` derived); schema ``marts`` holds the analytics tables of
``pipelines.storage.marts``.

Why a whole new file per publish: DuckDB allows one writer and analysts hold the warehouse open
read-only. ``publish`` never opens the live file for writing. It builds a complete database in a
private temporary directory next to it, checkpoints and closes it, fsyncs it, and moves it over
``warehouse.duckdb`` with ``os.replace``. A reader that already has the old file open keeps
reading that (unlinked) inode, a consistent snapshot; a new connection opens the new file. No
reader can see a mix, and a crash at any step leaves the previous file in place (the temporary
is removed by the next publish). Because the lake is the source of truth, a lost warehouse file
is rebuilt by ``publish(lake)`` alone.

How a lake table gets in: the table is created empty from its declared Arrow schema (so a table
without any partition file still has every declared column and type), then DuckDB reads the
partition files itself (``INSERT ... BY NAME SELECT <columns present> FROM read_parquet($files)``,
Hive discovery off: the partition columns are stored inside each file). No rows pass through
Python, and DuckDB streams the files, so the publish's memory does not grow with the lake. A
partition without a file (an empty one) simply contributes no rows. Columns a file written under
an older declaration lacks become NULL; types are cast to the declared ones.
"""

import contextlib
import ctypes
import datetime as dt
import errno
import fcntl
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from pipelines.storage.history import (
    VALID_TO,
    VERSION,
    HistorySpec,
    HistoryStore,
)
from pipelines.storage.marts import DIRECTED_TRANSACTIONS_SQL, DIRECTED_TRANSACTIONS_VIEW, MARTS
from pipelines.storage.parquet import (
    DIR_MODE,
    FILE_MODE,
    Lake,
    TableSpecLike,
    remove_stale_temporaries,
    validate_identifier,
)

logger = logging.getLogger(__name__)

WAREHOUSE_FILE = "warehouse.duckdb"
LOCK_FILE = ".load.lock"
PUBLISH_TMP_PREFIX = ".publish-"
RAW_SCHEMA = "altegio"
HISTORY_SCHEMA = "altegio_history"
MARTS_SCHEMA = "marts"
PUBLISH_TABLE = "_publish"
DEFAULT_LOCK_TIMEOUT = 600.0
LOCK_POLL_SECONDS = 0.05
# DuckDB settings for the private build connection: a small buffer pool (it spills to the build
# directory beyond it) and one thread keep the publish's memory flat whatever the size of the
# lake. More threads or a bigger pool bought no time but cost peak memory (the figures are in
# docs/performance.md).
PUBLISH_DUCKDB_CONFIG: dict[str, str | int | bool] = {"memory_limit": "64MB", "threads": 1}

# Parquet files per INSERT ... SELECT of the publish (see Warehouse._insert_parquet).
FILES_PER_INSERT = 200

DimensionSource = Callable[[], Mapping[str, pa.Table]]


def release_free_memory() -> None:
    """Hand memory that is free but still held by the allocators back to the OS.

    The load steps before a publish free hundreds of MB (pages, batches, Parquet buffers) that
    Arrow's pool and glibc's malloc keep for reuse; the publish's DuckDB buffers would stack on
    top of them. Best effort: glibc's malloc_trim is skipped where it does not exist.
    """
    pa.default_memory_pool().release_unused()
    # The process's own symbols hold libc's: no find_library (it runs ldconfig, a subprocess).
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    if trim is not None:
        trim(0)


# SQL in this module is assembled only from constants and identifiers that passed
# ``validate_identifier`` (see ``quote_identifier``); values always travel as parameters. Lines
# marked ``noqa: S608`` are such identifier-only statements.


class LoadInProgressError(RuntimeError):
    """Another load holds the warehouse load lock and did not release it in time."""


@dataclass(frozen=True)
class PublishResult:
    """One publish: the file it produced, when, and the rows in every table it wrote."""

    path: Path
    published_at: dt.datetime
    row_counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def quote_identifier(name: str) -> str:
    """``name`` validated and double-quoted for SQL (names never come from raw input)."""
    return '"' + validate_identifier(name) + '"'


def _qualified(schema: str, name: str) -> str:
    return f"{quote_identifier(schema)}.{quote_identifier(name)}"


def sql_string_literal(text: str) -> str:
    """A SQL string literal for ``text`` (only for DDL that takes no parameters, e.g. COMMENT).

    Used for documentation text we declare ourselves; quotes are doubled and NULs dropped.
    """
    return "'" + text.replace("\x00", "").replace("'", "''") + "'"


def _fsync_path(path: Path, *, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _doc(metadata: Mapping[bytes, bytes] | None) -> str | None:
    if not metadata or b"doc" not in metadata:
        return None
    return metadata[b"doc"].decode("utf-8", errors="replace")


_INTEGER_TYPES = {
    8: ("TINYINT", "UTINYINT"),
    16: ("SMALLINT", "USMALLINT"),
    32: ("INTEGER", "UINTEGER"),
    64: ("BIGINT", "UBIGINT"),
}
_TIMESTAMP_TYPES = {
    "s": "TIMESTAMP_S",
    "ms": "TIMESTAMP_MS",
    "us": "TIMESTAMP",
    "ns": "TIMESTAMP_NS",
}


def duckdb_type(arrow_type: pa.DataType) -> str:
    """The DuckDB column type DuckDB's own Arrow scan gives ``arrow_type``; TypeError if this
    function does not know it (the caller then lets DuckDB map it)."""
    t = pa.types
    if t.is_boolean(arrow_type):
        return "BOOLEAN"
    if t.is_integer(arrow_type):
        return _INTEGER_TYPES[arrow_type.bit_width][0 if t.is_signed_integer(arrow_type) else 1]
    if t.is_float32(arrow_type):
        return "FLOAT"
    if t.is_float64(arrow_type):
        return "DOUBLE"
    if t.is_string(arrow_type) or t.is_large_string(arrow_type):
        return "VARCHAR"
    if t.is_binary(arrow_type) or t.is_large_binary(arrow_type):
        return "BLOB"
    if t.is_date(arrow_type):
        return "DATE"
    if t.is_timestamp(arrow_type):
        if arrow_type.tz is None:
            return _TIMESTAMP_TYPES[arrow_type.unit]
        if arrow_type.unit == "us":
            return "TIMESTAMP WITH TIME ZONE"
    if t.is_decimal128(arrow_type) and arrow_type.precision <= 38:
        return f"DECIMAL({arrow_type.precision}, {arrow_type.scale})"
    if t.is_list(arrow_type) or t.is_large_list(arrow_type):
        return f"{duckdb_type(arrow_type.value_type)}[]"
    raise TypeError(f"no DuckDB spelling known for {arrow_type}")


class Warehouse:
    """The warehouse of one data directory: ``<data_dir>/warehouse.duckdb`` and its load lock."""

    def __init__(
        self,
        data_dir: Path,
        *,
        dimensions: DimensionSource | None = None,
        history: HistoryStore | None = None,
    ) -> None:
        """``dimensions`` gives the dimension tables a publish writes beside the lake's (the
        project's: ``pipelines.altegio.enums.dimension_tables``); only ``publish`` needs it.
        ``history``: the history a publish writes (schema altegio_history) and builds the
        history marts on; without it neither exists."""
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / WAREHOUSE_FILE
        self.lock_path = self.data_dir / LOCK_FILE
        self._dimensions = dimensions
        self._history = history

    def _ensure_data_dir(self) -> None:
        if not self.data_dir.exists():
            self.data_dir.mkdir(mode=DIR_MODE, parents=True)
            os.chmod(self.data_dir, DIR_MODE)

    @contextlib.contextmanager
    def load_lock(
        self, timeout: float = DEFAULT_LOCK_TIMEOUT, poll_interval: float = LOCK_POLL_SECONDS
    ) -> Iterator[None]:
        """Hold the exclusive load lock (``<data_dir>/.load.lock``) for the ``with`` block.

        A second load waits up to ``timeout`` seconds, then raises LoadInProgressError. The
        lock is an ``flock`` so the kernel releases it if the holder dies.
        """
        self._ensure_data_dir()
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            deadline = time.monotonic() + max(timeout, 0.0)
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                        raise
                    if time.monotonic() >= deadline:
                        holder = self._lock_holder()
                        raise LoadInProgressError(
                            f"another load holds {self.lock_path} (pid {holder}); "
                            f"gave up after waiting {timeout:g}s"
                        ) from None
                    time.sleep(poll_interval)
            # The pid is only a hint for the error message of a waiting load.
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            logger.debug("acquired load lock %s", self.lock_path)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                logger.debug("released load lock %s", self.lock_path)
        finally:
            os.close(fd)

    def _lock_holder(self) -> str:
        try:
            return self.lock_path.read_text().strip() or "unknown"
        except OSError:
            return "unknown"

    def connect_read_only(self) -> duckdb.DuckDBPyConnection:
        """A read-only connection to the published warehouse (what analysts should use).

        A connection reads the file that was live when it opened. DuckDB shares one database
        instance per path inside a process, so a process sees a newer publish only after it
        has closed every connection it holds to the warehouse (use ``with``).
        """
        return duckdb.connect(str(self.path), read_only=True)

    def publish(self, lake: Lake, history: HistoryStore | None = None) -> PublishResult:
        """Rebuild the whole warehouse from ``lake`` (+ enum dims, + ``history`` and the marts
        built on it when given, + marts) and swap it in.

        Safe while readers hold the old file open; on any failure the previous warehouse is
        left untouched. Returns the row count of every table written.
        """
        history = history or self._history
        dimensions = self._dimensions
        if dimensions is None:
            raise ValueError("publish needs the dimension tables: Warehouse(..., dimensions=...)")
        started = time.monotonic()
        release_free_memory()
        self._ensure_data_dir()
        # Earlier publishes killed mid-way leave their private directories behind, and killed
        # loads their lake temporaries.
        remove_stale_temporaries(self.data_dir, PUBLISH_TMP_PREFIX)
        lake.sweep_stale_temporaries()
        work_dir = self.data_dir / f"{PUBLISH_TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex}"
        work_dir.mkdir(mode=DIR_MODE)
        os.chmod(work_dir, DIR_MODE)
        tmp_path = work_dir / WAREHOUSE_FILE
        published_at = dt.datetime.now(dt.UTC)
        try:
            con = duckdb.connect(
                str(tmp_path),
                config={**PUBLISH_DUCKDB_CONFIG, "temp_directory": str(work_dir / "spill")},
            )
            try:
                # One transaction: far fewer commits for the many DDL/COMMENT statements.
                con.execute("BEGIN TRANSACTION")
                row_counts = self._build(con, lake, published_at, dimensions, history)
                con.execute("COMMIT")
                con.execute("CHECKPOINT")
            finally:
                con.close()
            self._finalize(tmp_path)
            self._swap(tmp_path)
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)
        seconds = time.monotonic() - started
        logger.info(
            "published %s: %d tables, %d rows in %.2fs",
            self.path,
            len(row_counts),
            sum(row_counts.values()),
            seconds,
        )
        return PublishResult(self.path, published_at, row_counts, seconds)

    def _build(
        self,
        con: duckdb.DuckDBPyConnection,
        lake: Lake,
        published_at: dt.datetime,
        dimensions: DimensionSource,
        history: HistoryStore | None = None,
    ) -> dict[str, int]:
        con.execute(f"CREATE SCHEMA {quote_identifier(RAW_SCHEMA)}")
        con.execute(f"CREATE SCHEMA {quote_identifier(MARTS_SCHEMA)}")
        row_counts: dict[str, int] = {}
        for name in sorted(lake.tables):
            row_counts[f"{RAW_SCHEMA}.{name}"] = self._load_table(con, lake, name)
        for name, table in sorted(dimensions().items()):
            row_counts[f"{RAW_SCHEMA}.{name}"] = self._load_dimension(con, name, table)
        if history is not None:
            con.execute(f"CREATE SCHEMA {quote_identifier(HISTORY_SCHEMA)}")
            # Main tables first: a child's validity is its parent version's.
            specs = sorted(history.tables.values(), key=lambda t: (t.parent is not None, t.name))
            for spec in specs:
                row_counts[f"{HISTORY_SCHEMA}.{spec.name}"] = self._load_history_table(
                    con, history, spec
                )
        row_counts.update(self._build_marts(con))
        self._record_publish(con, published_at, row_counts)
        return row_counts

    @staticmethod
    def _create_from_arrow(
        con: duckdb.DuckDBPyConnection, target: str, schema: Any, batches: Iterator[pa.Table]
    ) -> int:
        """Create ``target`` with the DuckDB equivalent of ``schema`` and insert ``batches``.

        Plain DDL and parameterized inserts when every column type has a DuckDB spelling in
        ``duckdb_type`` (always, for the declared tables): handing DuckDB an Arrow object
        would import pandas (seconds and memory, docs/performance.md) just to create a table.
        """
        try:
            columns = [f"{quote_identifier(f.name)} {duckdb_type(f.type)}" for f in schema]
        except TypeError:
            return Warehouse._create_from_registered_arrow(con, target, schema, batches)
        con.execute(f"CREATE TABLE {target} ({', '.join(columns)})")
        rows = 0
        marks = ", ".join("?" for _ in schema)
        for batch in batches:
            if not batch.num_rows:
                continue
            con.executemany(
                f"INSERT INTO {target} VALUES ({marks})",  # noqa: S608
                [list(row.values()) for row in batch.select(schema.names).to_pylist()],
            )
            rows += batch.num_rows
        return rows

    @staticmethod
    def _create_from_registered_arrow(
        con: duckdb.DuckDBPyConnection, target: str, schema: Any, batches: Iterator[pa.Table]
    ) -> int:
        """``_create_from_arrow`` through DuckDB's Arrow scan (types DuckDB maps itself)."""
        view = f"_src_{uuid.uuid4().hex}"
        con.register(view, schema.empty_table())
        try:
            con.execute(f"CREATE TABLE {target} AS SELECT * FROM {quote_identifier(view)}")  # noqa: S608
        finally:
            con.unregister(view)
        rows = 0
        for batch in batches:
            if not batch.num_rows:
                continue
            con.register(view, batch)
            try:
                con.execute(f"INSERT INTO {target} SELECT * FROM {quote_identifier(view)}")  # noqa: S608
            finally:
                con.unregister(view)
            rows += batch.num_rows
        return rows

    @staticmethod
    def _insert_parquet(
        con: duckdb.DuckDBPyConnection, target: str, schema: Any, files: list[str]
    ) -> int:
        """Append the rows of the Parquet ``files`` to ``target`` (declared columns only, by
        name; a declared column missing from a file stays NULL) and return how many.

        A few hundred files per INSERT: one scan over every file of a large table keeps each
        file's metadata at once, which costs peak memory and time (docs/performance.md)."""
        return sum(
            Warehouse._insert_parquet_files(con, target, schema, files[i : i + FILES_PER_INSERT])
            for i in range(0, len(files), FILES_PER_INSERT)
        )

    @staticmethod
    def _insert_parquet_files(
        con: duckdb.DuckDBPyConnection, target: str, schema: Any, files: list[str]
    ) -> int:
        if not files:
            return 0
        source = "read_parquet($files, hive_partitioning = false, union_by_name = true)"
        present = {
            str(row[0])
            for row in con.execute(f"DESCRIBE SELECT * FROM {source}", {"files": files}).fetchall()  # noqa: S608
        }
        columns = [quote_identifier(f.name) for f in schema if f.name in present]
        if not columns:
            return 0
        listed = ", ".join(columns)
        row = con.execute(
            f"INSERT INTO {target} ({listed}) SELECT {listed} FROM {source}",  # noqa: S608
            {"files": files},
        ).fetchone()
        return int(row[0]) if row else 0

    def _load_table(self, con: duckdb.DuckDBPyConnection, lake: Lake, name: str) -> int:
        """Materialize one lake table (every declared column, even with no partitions yet)."""
        spec = lake.spec(name)
        target = _qualified(RAW_SCHEMA, name)
        self._create_from_arrow(con, target, spec.schema, iter(()))
        files = [str(info.path) for info in lake.partitions(name)]
        rows = self._insert_parquet(con, target, spec.schema, files)
        self._comment_table(con, target, spec)
        return rows

    def _load_dimension(self, con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> int:
        if not name.startswith("enum_"):
            raise ValueError(f"dimension table names start with 'enum_': {name!r}")
        target = _qualified(RAW_SCHEMA, name)
        rows = self._create_from_arrow(con, target, table.schema, iter([table]))
        doc = _doc(table.schema.metadata) or f"Enum dimension {name}: code -> label."
        con.execute(f"COMMENT ON TABLE {target} IS {sql_string_literal(doc)}")
        self._comment_columns(con, target, table.schema)
        return rows

    def _comment_table(
        self, con: duckdb.DuckDBPyConnection, target: str, spec: TableSpecLike
    ) -> None:
        doc = spec.description or _doc(spec.schema.metadata)
        if doc:
            con.execute(f"COMMENT ON TABLE {target} IS {sql_string_literal(doc)}")
        self._comment_columns(con, target, spec.schema)

    @staticmethod
    def _comment_columns(con: duckdb.DuckDBPyConnection, target: str, schema: Any) -> None:
        for column in schema:
            doc = _doc(column.metadata)
            if doc:
                con.execute(
                    f"COMMENT ON COLUMN {target}.{quote_identifier(column.name)} "
                    f"IS {sql_string_literal(doc)}"
                )

    def _load_history_table(
        self, con: duckdb.DuckDBPyConnection, history: HistoryStore, spec: HistorySpec
    ) -> int:
        """One history table: its version rows with ``_valid_to`` derived, the next version's
        ``_valid_from`` for a main table and its parent version's ``_valid_to`` for a child
        (child rows of a parent version that was never written, left by a crash, drop out)."""
        stage = quote_identifier(f"_stage_{spec.name}")
        self._create_from_arrow(con, stage, spec.schema, iter(()))
        self._insert_parquet(con, stage, spec.schema, history.files(spec.name))
        columns = [f.name for f in spec.schema if f.name != VERSION]
        target = _qualified(HISTORY_SCHEMA, spec.name)
        listed = ", ".join(f"s.{quote_identifier(c)}" for c in columns)
        if spec.parent is None:
            key = ", ".join(f"s.{quote_identifier(c)}" for c in spec.current_key)
            query = (
                f"SELECT {listed}, lead(s._valid_from) OVER (PARTITION BY {key} "  # noqa: S608
                f"ORDER BY s._valid_from) AS _valid_to FROM {stage} AS s"
            )
        else:
            parent = history.tables[spec.parent]
            links = zip(spec.current_key, parent.current_key, strict=False)
            on = " AND ".join(
                f"s.{quote_identifier(c)} = p.{quote_identifier(pc)}" for c, pc in links
            )
            query = (
                f"SELECT {listed}, p._valid_to FROM {stage} AS s "  # noqa: S608
                f"JOIN {_qualified(HISTORY_SCHEMA, parent.name)} AS p "
                f"ON {on} AND s._valid_from = p._valid_from"
            )
        con.execute(f"CREATE TABLE {target} AS {query} ORDER BY ALL")
        con.execute(f"DROP TABLE {stage}")
        doc = spec.description
        con.execute(f"COMMENT ON TABLE {target} IS {sql_string_literal(doc)}")
        fields = [f for f in spec.schema if f.name != VERSION]
        valid_to = pa.field(
            VALID_TO,
            pa.timestamp("us", tz="UTC"),
            metadata={b"doc": b"When the next version began (NULL = this is the current version)."},
        )
        self._comment_columns(con, target, pa.schema([*fields, valid_to]))
        row = con.execute(f"SELECT count(*) FROM {target}").fetchone()  # noqa: S608
        return int(row[0]) if row else 0

    def _build_marts(self, con: duckdb.DuckDBPyConnection) -> dict[str, int]:
        counts: dict[str, int] = {}
        with_history = bool(
            con.execute(
                "SELECT count(*) FROM duckdb_schemas() WHERE schema_name = ?", [HISTORY_SCHEMA]
            ).fetchone()[0]  # type: ignore[index]
        )
        view = quote_identifier(DIRECTED_TRANSACTIONS_VIEW)
        con.execute(f"CREATE TEMP VIEW {view} AS {DIRECTED_TRANSACTIONS_SQL}")
        for mart in MARTS:
            if mart.from_history and not with_history:
                continue
            target = _qualified(MARTS_SCHEMA, mart.name)
            con.execute(f"CREATE TABLE {target} AS {mart.query}")
            con.execute(f"COMMENT ON TABLE {target} IS {sql_string_literal(mart.doc)}")
            row = con.execute(f"SELECT count(*) FROM {target}").fetchone()  # noqa: S608
            counts[f"{MARTS_SCHEMA}.{mart.name}"] = int(row[0]) if row else 0
        return counts

    def _record_publish(
        self,
        con: duckdb.DuckDBPyConnection,
        published_at: dt.datetime,
        row_counts: Mapping[str, int],
    ) -> None:
        target = _qualified(RAW_SCHEMA, PUBLISH_TABLE)
        con.execute(
            f"CREATE TABLE {target} "
            "(published_at TIMESTAMPTZ NOT NULL, table_name VARCHAR NOT NULL, row_count BIGINT)"
        )
        con.executemany(
            f"INSERT INTO {target} VALUES (?, ?, ?)",  # noqa: S608
            [[published_at, name, count] for name, count in sorted(row_counts.items())],
        )
        con.execute(
            f"COMMENT ON TABLE {target} IS "
            + sql_string_literal(
                "One row per table written by the publish that produced this file: when it "
                "was published and how many rows the table holds."
            )
        )

    @staticmethod
    def _finalize(tmp_path: Path) -> None:
        """Make the closed temporary database private and durable before it becomes visible."""
        wal = tmp_path.with_name(tmp_path.name + ".wal")
        if wal.exists():
            # CHECKPOINT + close should have folded the WAL in; a leftover one would be replayed
            # against the wrong file after the rename.
            raise RuntimeError(f"DuckDB left a WAL behind after checkpoint: {wal}")
        os.chmod(tmp_path, FILE_MODE)
        _fsync_path(tmp_path)

    def _swap(self, tmp_path: Path) -> None:
        """Atomically replace the live warehouse with ``tmp_path`` and make the rename durable."""
        stale_wal = self.path.with_name(self.path.name + ".wal")
        if stale_wal.exists():
            # Only a read-write session on the live file can leave this; DuckDB would replay it
            # onto the new file on next open.
            logger.warning("removing stale WAL %s before publishing", stale_wal)
            stale_wal.unlink()
        os.replace(tmp_path, self.path)
        _fsync_path(self.data_dir, directory=True)
