"""Slowly changing dimension type 2 for the mutable tables: which versions a read adds.

After a load step has written a chain's current rows, `ChainHistory.record` compares each
record with the last version stored for it (`pipelines.storage.history`) by a hash of its
values and its child rows, and appends a version only for what changed:

* a record seen for the first time, or whose hash differs, gets a version (its child rows are
  versioned with it, under the parent's `_valid_from`);
* a record whose last version is a deletion and that is listed again (a restored membership
  type) gets a new version;
* when the read was a complete list of the chain (`Source.history.complete`), a record whose
  last version is live but that the list no longer holds gets a tombstone: its last values
  with `_is_deleted` true. Only a complete, successful read closes anything: the load steps
  call this for a chain only after its whole read succeeded, never for a chain that answered
  403, 5xx or failed part-way.

Volatile columns (`Source.history.ignore`: counters that move with every sale, copies of
another table's values) are left out of the hash, so they never make a version by themselves;
a version still stores their value as read. A rerun that reads the same values adds nothing.
"""

import hashlib
import tempfile
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from pipelines.altegio.schema import TABLES, TableSpec
from pipelines.altegio.sources import SOURCES, Source
from pipelines.storage.history import (
    IS_DELETED,
    RECORD_HASH,
    VALID_FROM,
    VERSION,
    HistoryStore,
    version_text,
)
from pipelines.storage.parquet import Lake
from pipelines.storage.warehouse import PUBLISH_DUCKDB_CONFIG

# Lineage, not content: when and from where a record was read.
NOT_HASHED = frozenset({"_extracted_at", "_source_endpoint"})

Key = tuple[Any, ...]


def history_tables() -> dict[str, TableSpec]:
    """Every current table that keeps history (the families of sources with a policy)."""
    return {
        spec.name: TABLES[spec.name]
        for source in SOURCES.values()
        if source.history is not None
        for spec in source.tables
    }


@dataclass
class VersionCounts:
    """Versions one record call appended for one chain."""

    new: int = 0  # first seen (or seen again after a deletion)
    changed: int = 0
    deleted: int = 0  # tombstones

    @property
    def total(self) -> int:
        return self.new + self.changed + self.deleted


def _json(values: tuple[Any, ...]) -> bytes:
    return orjson.dumps(values, default=str)


def _rows(table: pa.Table, columns: list[str]) -> list[tuple[Any, ...]]:
    return list(zip(*(table[c].to_pylist() for c in columns), strict=True))


def _hashed_columns(spec: Any, ignore: frozenset[str]) -> list[str]:
    return [f.name for f in spec.schema if f.name not in NOT_HASHED | ignore]


def link_columns(source: Source, child: Any) -> list[str]:
    """The columns of a child row naming its parent: its key's leading columns, in the order
    of the parent's key (`(chain_id, membership_type_id)` -> `(chain_id, id)`)."""
    return list(child.primary_key[: len(source.main.primary_key)])


def record_hashes(source: Source, tables: Mapping[str, pa.Table]) -> dict[Key, str]:
    """Hash of each main record (by key) over its hashed values and its child rows'."""
    policy = source.history
    ignore = policy.ignore if policy is not None else frozenset()
    main = tables[source.name]
    key_columns = list(source.main.primary_key)
    children: list[dict[Key, list[bytes]]] = []
    for child in source.tables[1:]:
        rows = tables[child.name]
        grouped: dict[Key, list[bytes]] = {}
        links = _rows(rows, link_columns(source, child))
        for link, row in zip(links, _rows(rows, _hashed_columns(child, ignore)), strict=True):
            grouped.setdefault(link, []).append(_json(row))
        children.append(grouped)
    hashes: dict[Key, str] = {}
    keys = _rows(main, key_columns)
    for key, row in zip(keys, _rows(main, _hashed_columns(source.main, ignore)), strict=True):
        digest = hashlib.blake2b(_json(row), digest_size=16)
        for grouped in children:
            digest.update(b"\x1d")
            for part in sorted(grouped.get(key, [])):
                digest.update(part)
                digest.update(b"\x1e")
        hashes[key] = digest.hexdigest()
    return hashes


def _with_history_columns(
    rows: pa.Table, valid_from: datetime, deleted: bool, hashes: list[str], spec: Any
) -> pa.Table:
    n = rows.num_rows
    extra = {
        VALID_FROM: pa.array([valid_from] * n, pa.timestamp("us", tz="UTC")),
        IS_DELETED: pa.array([deleted] * n, pa.bool_()),
        RECORD_HASH: pa.array(hashes, pa.string()),
        VERSION: pa.array([version_text(valid_from)] * n, pa.string()),
    }
    for name, values in extra.items():
        rows = rows.append_column(name, values)
    return rows.select([f.name for f in spec.schema]).cast(spec.schema)


def _take(table: pa.Table, columns: list[str], keys: set[Key]) -> tuple[pa.Table, list[Key]]:
    """The rows of `table` whose `columns` are one of `keys`, and their keys in row order."""
    row_keys = _rows(table, columns)
    mask = [k in keys for k in row_keys]
    return table.filter(pa.array(mask, pa.bool_())), [
        k for k, m in zip(row_keys, mask, strict=True) if m
    ]


class ChainHistory:
    """The history of one source's tables for one chain, kept in step with each write."""

    def __init__(
        self, store: HistoryStore, source: Source, chain_id: int, scope_column: str | None = None
    ) -> None:
        """`scope_column`: a column by which a partial read says which records it covers (the
        creation day of a window of memberships)."""
        if source.history is None:
            raise ValueError(f"{source.name} keeps no history")
        self.store = store
        self.source = source
        self.chain_id = chain_id
        self.scope_column = scope_column
        key = list(source.main.primary_key)
        last = store.latest(
            source.name, chain_id, [*key, *([scope_column] if scope_column else [])]
        )
        self._scopes: dict[Key, Any] = (
            dict(zip(_rows(last, key), last[scope_column].to_pylist(), strict=True))
            if scope_column
            else {}
        )
        self._last: dict[Key, tuple[str, bool]] = {
            k: (h, d)
            for k, h, d in zip(
                _rows(last, key),
                last[RECORD_HASH].to_pylist(),
                last[IS_DELETED].to_pylist(),
                strict=True,
            )
        }

    def record(
        self,
        tables: Mapping[str, pa.Table],
        valid_from: datetime,
        scope: Collection[Any] | None = None,
    ) -> VersionCounts:
        """Append the versions this read shows (see the module); the read is a complete list
        of the chain when the source's history policy says so, else of the records whose
        `scope_column` is in `scope` (a window of memberships lists every one created on its
        days: one it no longer lists has left the current table too)."""
        source, counts = self.source, VersionCounts()
        policy = source.history
        assert policy is not None
        key_columns = list(source.main.primary_key)
        hashes = record_hashes(source, tables)
        changed: dict[Key, str] = {}
        for key, digest in hashes.items():
            last = self._last.get(key)
            if last is None or last[1]:
                counts.new += 1
            elif last[0] != digest:
                counts.changed += 1
            else:
                continue
            changed[key] = digest
        gone: set[Key] = set()
        if policy.complete or scope is not None:
            covered = set(scope or ())
            gone = {
                k
                for k, (_, deleted) in self._last.items()
                if not deleted
                and k not in hashes
                and (policy.complete or self._scopes.get(k) in covered)
            }
        # Children first: the parent's version is what makes a version count, so a crash
        # between the two leaves orphan child rows (ignored) and the next run writes both.
        for child in source.tables[1:]:
            rows, keys = _take(tables[child.name], link_columns(source, child), set(changed))
            spec = self.store.tables[child.name]
            versioned = _with_history_columns(
                rows, valid_from, False, [changed[k] for k in keys], spec
            )
            self.store.append(child.name, self.chain_id, valid_from, versioned)
        main_spec = self.store.tables[source.name]
        rows, keys = _take(tables[source.name], key_columns, set(changed))
        parts = [
            _with_history_columns(rows, valid_from, False, [changed[k] for k in keys], main_spec)
        ]
        if gone:
            parts.append(self._tombstones(gone, valid_from))
            counts.deleted = len(gone)
        self.store.append(source.name, self.chain_id, valid_from, pa.concat_tables(parts))
        for key, digest in changed.items():
            self._last[key] = (digest, False)
        if self.scope_column:
            main = tables[source.name]
            scoped = zip(_rows(main, key_columns), main[self.scope_column].to_pylist(), strict=True)
            self._scopes.update(scoped)
        for key in gone:
            self._last[key] = (self._last[key][0], True)
        return counts

    def _tombstones(self, keys: set[Key], valid_from: datetime) -> pa.Table:
        """The last values of the records `keys` as deletion versions."""
        spec = self.store.tables[self.source.name]
        columns = [f.name for f in self.source.main.schema]
        last = self.store.latest(self.source.name, self.chain_id, columns)
        rows, _ = _take(last, list(self.source.main.primary_key), keys)
        hashes = rows[RECORD_HASH].to_pylist()
        return _with_history_columns(rows.select(columns), valid_from, True, hashes, spec)


# --------------------------------------------------------------------------- checks

HISTORY_CHECKS = ("history_one_current_row", "history_no_overlap", "history_matches_current")


def history_problems(store: HistoryStore, lake: Lake, table: str) -> dict[str, int]:
    """What the history checks count for one main table (0 everywhere = healthy):

    * history_one_current_row: ids with more than one version at their latest `_valid_from`
      (which of them is current would be undecidable);
    * history_no_overlap: versions whose validity does not end after it starts (two versions
      of one id at the same moment: their intervals overlap);
    * history_matches_current: current rows without a live current version, plus live current
      versions without a current row.
    """
    spec = store.tables[table]
    key = ", ".join(f'"{c}"' for c in spec.current_key)
    history_files = store.files(table)
    current_files = [str(info.path) for info in lake.partitions(table)]
    if not history_files:
        return {name: (len(current_files) and 1) for name in HISTORY_CHECKS}
    source = "read_parquet($h, hive_partitioning = false, union_by_name = true)"
    versions = (
        f"SELECT {key}, _valid_from, _is_deleted, lead(_valid_from) OVER "  # noqa: S608 (validated identifiers)
        f"(PARTITION BY {key} ORDER BY _valid_from) AS _valid_to, "
        f"max(_valid_from) OVER (PARTITION BY {key}) AS _latest FROM {source}"
    )
    current = (
        f"SELECT DISTINCT {key} FROM read_parquet($c, hive_partitioning = false)"  # noqa: S608
        if current_files
        else f"SELECT {key} FROM ({versions}) WHERE false"  # noqa: S608
    )
    queries = {
        "history_one_current_row": f"SELECT count(*) FROM (SELECT {key} FROM v "  # noqa: S608
        f"WHERE _valid_from = _latest GROUP BY {key} HAVING count(*) > 1)",
        "history_no_overlap": "SELECT count(*) FROM v WHERE _valid_to <= _valid_from",
        "history_matches_current": f"SELECT (SELECT count(*) FROM (SELECT {key} FROM cur "  # noqa: S608
        f"EXCEPT SELECT {key} FROM live)) + (SELECT count(*) FROM (SELECT {key} FROM live "
        f"EXCEPT SELECT {key} FROM cur))",
    }
    params: dict[str, Any] = {"h": history_files}
    if current_files:
        params["c"] = current_files
    with (
        tempfile.TemporaryDirectory(prefix="altegio-history-check-") as spill,
        duckdb.connect(config={**PUBLISH_DUCKDB_CONFIG, "temp_directory": spill}) as con,
    ):
        prelude = (
            f"WITH v AS ({versions}), cur AS ({current}), "  # noqa: S608
            f"live AS (SELECT {key} FROM v WHERE _valid_to IS NULL AND NOT _is_deleted) "
        )
        out = {}
        for name, query in queries.items():
            row = con.execute(prelude + query, params).fetchone()
            out[name] = int(row[0]) if row else 0
    return out
