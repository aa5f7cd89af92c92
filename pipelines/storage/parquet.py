"""The Parquet lake: one Hive-style directory tree per table, one file per partition.

Layout: ``<root>/<table>/<col>=<value>/.../part-0.parquet``. The partition columns are the
table's ``TableSpec.partition_by`` and stay inside the file too, so a file is self-describing
and a read restores the declared Arrow schema exactly (field metadata included).

Atomicity argument: a partition is at most one file with a fixed name. A write goes to a hidden
temporary file in the same directory, is fsynced, and is moved over the fixed name with
``os.replace`` (atomic on POSIX within one file system); the directory is fsynced afterwards so
the rename itself survives a power cut. A reader therefore sees either the whole old file or the
whole new file. Readers only ever open ``part-0.parquet`` names, never temporaries, and a crashed
writer's temporary is removed by the next write into that partition.

Empty partitions have no file: replacing a partition with zero rows removes its file (one atomic
``unlink``, directory fsynced) instead of writing an empty one, and every reader (``read``,
``partitions``, the warehouse publish) treats a partition without a file as zero rows. Most
quarantine and child-table partitions are empty, so this saves most of the files and fsyncs.

Speed: the temporaries of one ``replace_partitions`` call are encoded and fsynced on a small
thread pool (Arrow's encoder and ``fsync`` release the GIL); the calling thread then renames them
in the listed order, fsyncing each directory after its rename, so a crash part-way leaves some
partitions new and the rest old, each one whole.

Idempotency argument: ``replace_partitions`` overwrites the listed partitions and never appends,
so a rerun or an overlapping lookback window rewrites the same bytes instead of duplicating rows.
"""

import contextlib
import datetime as dt
import errno
import logging
import os
import re
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

logger = logging.getLogger(__name__)

PART_FILE = "part-0.parquet"
TMP_PREFIX = ".tmp-"
TMP_SUFFIX = ".parquet"
COMPRESSION = "zstd"
COMPRESSION_LEVEL = 3
# ~128k rows per row group keeps per-group statistics useful for pruning while a daily
# transaction partition (a few thousand rows) stays a single group.
ROW_GROUP_SIZE = 128 * 1024
DIR_MODE = 0o700
FILE_MODE = 0o600
# Threads that encode and fsync partition temporaries (both release the GIL); the renames stay
# on the calling thread, in order.
WRITE_WORKERS = 4

# Table and column names become path segments and SQL identifiers: lower snake case only.
IDENTIFIER_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# String partition values (quarantine's source_table / partition_key): no separators, no
# leading dot (so never "." / ".." / a hidden temp name), no "=" (Hive key/value separator).
STRING_VALUE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")


class TableSpecLike(Protocol):
    """What the lake needs from ``pipelines.altegio.schema.TableSpec``."""

    @property
    def name(self) -> str: ...

    @property
    def schema(self) -> Any: ...  # pa.Schema (pyarrow ships no type information)

    @property
    def partition_by(self) -> tuple[str, ...]: ...

    @property
    def description(self) -> str: ...


PartitionValue = int | str | dt.date | None
# Directory text of a null partition value (the quarantine's chain_id is null for /groups
# records); Hive's own spelling, so DuckDB/Spark read it the same way.
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
Partition = Mapping[str, PartitionValue]


def validate_identifier(name: str, what: str = "identifier") -> str:
    """Return ``name`` if it is a safe lower-snake-case identifier, else raise ValueError."""
    if not isinstance(name, str) or not IDENTIFIER_RE.fullmatch(name):
        raise ValueError(f"invalid {what}: {name!r}")
    return name


@dataclass(frozen=True)
class PartitionInfo:
    """One partition on disk: its key values (typed) and its file."""

    table: str
    values: dict[str, PartitionValue]
    path: Path


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _ensure_dirs(paths: Sequence[Path]) -> None:
    """Create every ``path`` and missing parents as 0o700, then fsync each parent that gained
    an entry once (not once per new directory)."""
    parents: dict[Path, None] = {}
    for path in paths:
        missing: list[Path] = []
        current = path
        while not current.exists() and current.parent != current:
            missing.append(current)
            current = current.parent
        for directory in reversed(missing):
            try:
                directory.mkdir(mode=DIR_MODE)
            except FileExistsError:
                continue
            # mkdir's mode is filtered by the umask; set it explicitly so it is never wider.
            os.chmod(directory, DIR_MODE)
            parents[directory.parent] = None
    for parent in parents:
        _fsync_dir(parent)


def _ensure_dir(path: Path) -> None:
    """Create ``path`` and missing parents as 0o700, fsyncing each new entry's parent."""
    _ensure_dirs([path])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True


def remove_stale_temporaries(directory: Path, prefix: str = TMP_PREFIX) -> int:
    """Remove temporaries (files or directories named ``<prefix><pid>-...``) left by crashed
    writers in ``directory``; return how many.

    A temporary carries its writer's pid. Ours (from an earlier failed call) and those of dead
    processes are stale; a live other process's temporary is left alone.
    """
    removed = 0
    if not directory.is_dir():
        return 0
    for entry in directory.iterdir():
        name = entry.name
        if not name.startswith(prefix):
            continue
        pid_text = name[len(prefix) :].split("-", 1)[0]
        pid = int(pid_text) if pid_text.isdigit() else -1
        if pid == os.getpid() or pid <= 0 or not _pid_alive(pid):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()
            removed += 1
            logger.info("removed stale temporary %s", entry)
    return removed


def _write_temporary(
    table: pa.Table, directory: Path, *, row_group_size: int = ROW_GROUP_SIZE
) -> Path:
    """Write ``table`` to a new private, fsynced temporary in ``directory``; return its path.

    Stale temporaries in ``directory`` are removed first. On failure nothing is left behind.
    """
    remove_stale_temporaries(directory)
    tmp = directory / f"{TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex}{TMP_SUFFIX}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            pq.write_table(
                table,
                handle,
                compression=COMPRESSION,
                compression_level=COMPRESSION_LEVEL,
                row_group_size=row_group_size,
                store_schema=True,
            )
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return tmp


def atomic_write_table(
    table: pa.Table, target: Path, *, row_group_size: int = ROW_GROUP_SIZE
) -> None:
    """Write ``table`` to ``target`` so that ``target`` is always either old or new, whole."""
    tmp = _write_temporary(table, target.parent, row_group_size=row_group_size)
    os.replace(tmp, target)
    _fsync_dir(target.parent)


def atomic_remove(target: Path) -> bool:
    """Remove ``target`` (a partition becoming empty) durably; True if there was a file.

    ``unlink`` is atomic: a reader opens either the whole old file or finds none. Stale
    temporaries in the directory are swept too, as a write into it would have done.
    """
    directory = target.parent
    if not directory.is_dir():
        return False
    remove_stale_temporaries(directory)
    try:
        target.unlink()
    except FileNotFoundError:
        return False
    _fsync_dir(directory)
    return True


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()
_POOL_PID = 0


def _write_pool() -> ThreadPoolExecutor:
    """The process-wide writer pool (recreated in a forked child, whose threads are gone)."""
    global _POOL, _POOL_PID
    with _POOL_LOCK:
        if _POOL is None or os.getpid() != _POOL_PID:
            _POOL = ThreadPoolExecutor(WRITE_WORKERS, thread_name_prefix="lake-write")
            _POOL_PID = os.getpid()
        return _POOL


def _replace_files(parts: Sequence[tuple[Path, pa.Table]]) -> None:
    """Atomically replace each ``path`` with its table: temporaries encoded and fsynced on the
    pool, then renamed in order on this thread (each rename followed by its directory fsync).

    If anything fails, the partitions renamed so far are new, the rest old (each whole), and
    temporaries that were never renamed are removed, except one whose rename itself failed
    (the next write into that partition sweeps it).
    """
    if not parts:
        return
    if len(parts) == 1:
        path, table = parts[0]
        atomic_write_table(table, path)
        return
    pool = _write_pool()
    futures: list[Future[Path]] = [
        pool.submit(_write_temporary, table, path.parent) for path, table in parts
    ]
    done = 0
    try:
        for (path, _), future in zip(parts, futures, strict=True):
            tmp = future.result()
            done += 1
            os.replace(tmp, path)
            _fsync_dir(path.parent)
    except BaseException:
        for future in futures[done:]:
            future.cancel()
        for future in futures[done:]:
            if future.cancelled():
                continue
            with contextlib.suppress(BaseException):
                leftover = future.result()
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()
        raise


def _format_value(value: object, field: pa.Field) -> str:
    """Render one partition value as its path text; the value must match the field's type."""
    if value is None:
        return NULL_PARTITION
    if pa.types.is_integer(field.type):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"partition value for {field.name!r} must be an int: {value!r}")
        return str(value)
    if pa.types.is_date(field.type):
        if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
            raise ValueError(f"partition value for {field.name!r} must be a date: {value!r}")
        return value.isoformat()
    if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
        if (
            not isinstance(value, str)
            or not STRING_VALUE_RE.fullmatch(value)
            or value == NULL_PARTITION
        ):
            raise ValueError(f"invalid partition value for {field.name!r}: {value!r}")
        return value
    raise ValueError(f"unsupported partition column type {field.type} for {field.name!r}")


def _parse_value(text: str, field: pa.Field) -> PartitionValue:
    """Inverse of ``_format_value``; raises ValueError on anything it would not have written."""
    if text == NULL_PARTITION:
        return None
    if pa.types.is_integer(field.type):
        if not re.fullmatch(r"-?[0-9]{1,19}", text):
            raise ValueError(f"bad integer partition directory {field.name}={text}")
        return int(text)
    if pa.types.is_date(field.type):
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
            raise ValueError(f"bad date partition directory {field.name}={text}")
        return dt.date.fromisoformat(text)
    if not STRING_VALUE_RE.fullmatch(text):
        raise ValueError(f"bad partition directory {field.name}={text}")
    return text


class Lake:
    """The Parquet lake rooted at ``root`` (normally ``<data-dir>/parquet``) holding ``tables``
    (table name -> spec; the project's are ``pipelines.altegio.schema.TABLES``)."""

    def __init__(self, root: Path, tables: Mapping[str, TableSpecLike]) -> None:
        self.root = Path(root)
        self._tables = tables

    @property
    def tables(self) -> Mapping[str, TableSpecLike]:
        """All declared tables, by name."""
        return self._tables

    def spec(self, table_name: str) -> TableSpecLike:
        """The spec of ``table_name``; ValueError for an invalid or undeclared name."""
        validate_identifier(table_name, "table name")
        try:
            spec = self.tables[table_name]
        except KeyError:
            raise ValueError(f"unknown table: {table_name!r}") from None
        for column in spec.partition_by:
            validate_identifier(column, "partition column")
            if spec.schema.get_field_index(column) < 0:
                raise ValueError(f"partition column {column!r} not in schema of {table_name}")
        return spec

    def table_dir(self, table_name: str) -> Path:
        """The directory holding every partition of ``table_name``."""
        self.spec(table_name)
        return self.root / table_name

    def partition_path(self, table_name: str, partition: Partition) -> Path:
        """The file of one partition (validated: exactly the partition columns, typed values)."""
        spec = self.spec(table_name)
        if set(partition) != set(spec.partition_by):
            raise ValueError(
                f"partition of {table_name} must have exactly {spec.partition_by}, "
                f"got {tuple(partition)}"
            )
        path = self.root / table_name
        for column in spec.partition_by:
            field = spec.schema.field(column)
            path = path / f"{column}={_format_value(partition[column], field)}"
        return path / PART_FILE

    def replace_partitions(
        self, table_name: str, data: pa.Table, partitions: Sequence[Partition]
    ) -> dict[str, int]:
        """Replace exactly the listed partitions of ``table_name`` with the rows of ``data``.

        Every row of ``data`` must fall into a listed partition (else ValueError, nothing
        written); a listed partition without rows becomes empty (its file is removed). Each
        partition is replaced atomically; returns rows written per partition path (relative to
        the table).
        """
        spec = self.spec(table_name)
        table = self._conform(spec, data)
        keys = list(spec.partition_by)
        wanted: dict[Path, dict[str, PartitionValue]] = {}
        for partition in partitions:
            wanted[self.partition_path(table_name, partition)] = dict(partition)

        # Validate the whole batch before touching the disk: a stray row must not leave
        # half of the listed partitions rewritten.
        slices = self._split(table_name, table, keys)
        for path, (key, _, _) in slices.items():
            if path not in wanted:
                raise ValueError(f"{table_name}: rows for unlisted partition {key}")

        written: dict[str, int] = {}
        to_write: list[tuple[Path, pa.Table]] = []
        for path in wanted:
            rows = 0
            if path in slices:
                _, sorted_table, (start, length) = slices[path]
                to_write.append((path, sorted_table.slice(start, length)))
                rows = length
            else:
                atomic_remove(path)
            written[str(path.parent.relative_to(self.root / table_name))] = rows
        _ensure_dirs([path.parent for path, _ in to_write])
        _replace_files(to_write)
        logger.debug(
            "replaced %d partition(s) of %s with %d row(s)", len(wanted), table_name, table.num_rows
        )
        return written

    def merge_partitions(
        self,
        table_name: str,
        data: pa.Table,
        partitions: Sequence[Partition],
        keep: Callable[[pa.Table], Any],
    ) -> dict[str, int]:
        """Rewrite each listed partition as its rows for which ``keep`` (one partition's rows
        -> boolean mask) is true, plus the rows of ``data`` that fall into it.

        A merge on top of ``replace_partitions`` (same validation, same atomic swap per
        partition): the current state of memberships changes a few rows of a month without
        losing the others. A crash part-way leaves each partition whole, old or new.
        """
        spec = self.spec(table_name)
        kept: list[pa.Table] = []
        for partition in partitions:
            path = self.partition_path(table_name, partition)
            if path.exists():
                existing = self._read_file(spec, path)
                kept.append(existing.filter(keep(existing)))
        merged = pa.concat_tables([*kept, self._conform(spec, data)])
        return self.replace_partitions(table_name, merged, partitions)

    def _split(
        self, table_name: str, table: pa.Table, keys: list[str]
    ) -> dict[Path, tuple[dict[str, PartitionValue], pa.Table, tuple[int, int]]]:
        """Group rows by partition: path -> (key, table sorted by key, (offset, length)).

        One stable sort plus a single pass over the key columns, instead of one filter per
        partition; stability keeps the input order inside a partition, so the same input
        always produces the same file.
        """
        if not table.num_rows:
            return {}
        if not keys:
            return {self.partition_path(table_name, {}): ({}, table, (0, table.num_rows))}
        ordered = table.sort_by([(key, "ascending") for key in keys])
        columns = [ordered.column(key).combine_chunks() for key in keys]
        # Run boundaries of the sorted key columns, found in Arrow (nulls form their own run):
        # only one Python value per partition is materialized, not one per row.
        ends: set[int] = set()
        for column in columns:
            ends.update(pc.run_end_encode(column).run_ends.to_pylist())
        out: dict[Path, tuple[dict[str, PartitionValue], pa.Table, tuple[int, int]]] = {}
        start = 0
        for end in sorted(ends):
            key = {name: column[start].as_py() for name, column in zip(keys, columns, strict=True)}
            out[self.partition_path(table_name, key)] = (key, ordered, (start, end - start))
            start = end
        return out

    @staticmethod
    def _conform(spec: TableSpecLike, data: pa.Table) -> pa.Table:
        """Return ``data`` with exactly the declared schema (names, order, types, metadata)."""
        declared = spec.schema
        names = [field.name for field in declared]
        if set(data.column_names) != set(names) or data.num_columns != len(names):
            missing = sorted(set(names) - set(data.column_names))
            extra = sorted(set(data.column_names) - set(names))
            raise ValueError(f"{spec.name}: columns differ (missing {missing}, extra {extra})")
        if data.schema.equals(declared, check_metadata=True):
            return data
        return data.select(names).cast(declared)

    def sweep_stale_temporaries(self) -> int:
        """Remove crashed writers' temporaries anywhere in the lake; return how many.

        A write sweeps the directory it writes into, but a killed load can leave a temporary
        in a directory no later load writes again (its own `load_steps` run partition, a day
        outside later ranges). The publish at the end of every load calls this.
        """
        if not self.root.is_dir():
            return 0
        directories = {path.parent for path in self.root.rglob(f"{TMP_PREFIX}*")}
        return sum(remove_stale_temporaries(directory) for directory in sorted(directories))

    def partitions(self, table_name: str) -> list[PartitionInfo]:
        """Every partition of ``table_name`` that holds rows (has a file), sorted by path.

        An empty partition has no file and is not listed: it reads as zero rows.
        """
        spec = self.spec(table_name)
        base = self.root / table_name
        if not base.is_dir():
            return []
        fields = [spec.schema.field(column) for column in spec.partition_by]
        found: list[PartitionInfo] = []
        for path in sorted(base.glob("/".join(["*"] * len(fields) + [PART_FILE]))):
            values: dict[str, PartitionValue] = {}
            segments = path.relative_to(base).parts[:-1]
            for field, segment in zip(fields, segments, strict=True):
                column, sep, text = segment.partition("=")
                if not sep or column != field.name:
                    raise ValueError(f"unexpected directory in lake: {path.parent}")
                values[column] = _parse_value(text, field)
            found.append(PartitionInfo(table_name, values, path))
        return found

    def iter_partition_tables(self, table_name: str) -> Iterator[pa.Table]:
        """Each partition of ``table_name`` as a table with exactly the declared schema."""
        spec = self.spec(table_name)
        for info in self.partitions(table_name):
            yield self._read_file(spec, info.path)

    def read(self, table_name: str) -> pa.Table:
        """All rows of ``table_name``, schema exactly as declared (empty table if none)."""
        spec = self.spec(table_name)
        parts = list(self.iter_partition_tables(table_name))
        if not parts:
            return spec.schema.empty_table()
        return pa.concat_tables(parts).combine_chunks()

    def read_columns(
        self, table_name: str, columns: Sequence[str], where: Partition | None = None
    ) -> pa.Table:
        """Only ``columns`` of the partitions whose key values include ``where`` (all when
        None), declared types; a column an older file lacks reads as nulls."""
        spec = self.spec(table_name)
        fields = [spec.schema.field(name) for name in columns]
        wanted = dict(where or {})
        parts: list[pa.Table] = []
        for info in self.partitions(table_name):
            if any(info.values.get(k) != v for k, v in wanted.items()):
                continue
            with pq.ParquetFile(info.path) as handle:
                present = [f.name for f in fields if f.name in handle.schema_arrow.names]
                table = handle.read(columns=present)
            parts.append(
                pa.Table.from_arrays(
                    [
                        table.column(f.name).cast(f.type)
                        if f.name in present
                        else pa.nulls(table.num_rows, type=f.type)
                        for f in fields
                    ],
                    schema=pa.schema(fields),
                )
            )
        if not parts:
            return pa.schema(fields).empty_table()
        return pa.concat_tables(parts)

    @staticmethod
    def _read_file(spec: TableSpecLike, path: Path) -> pa.Table:
        declared = spec.schema
        # ParquetFile, not pq.read_table: the latter would apply Hive discovery to the path.
        with pq.ParquetFile(path) as handle:
            table = handle.read()
        if table.schema.equals(declared, check_metadata=True):
            return table
        # A file written under an older declaration: keep the declared columns, add new ones
        # as nulls, and restore the declared types and metadata exactly.
        columns = []
        for field in declared:
            if field.name in table.column_names:
                columns.append(table.column(field.name).cast(field.type))
            else:
                columns.append(pa.nulls(table.num_rows, type=field.type))
        return pa.Table.from_arrays(columns, schema=declared)
