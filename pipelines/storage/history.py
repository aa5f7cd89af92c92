"""Where the history of the mutable tables lives: version rows, appended, never rewritten.

One history table per current table (same name, same columns) plus four columns, the naming of
dlt's scd2 (`_dlt_valid_from` ...) without the prefix:

* `_valid_from` (timestamp, UTC): when a load first saw this version (the run's extraction
  time);
* `_is_deleted` (bool): true on the version that records a deletion (a tombstone);
* `_record_hash` (string): hash of the record's values (its child rows included) that tells a
  change from a repeat;
* `_version` (string): `_valid_from` as text, the lake partition. `_valid_to` is not stored:
  the warehouse derives it as the next version's `_valid_from` (NULL = current).

Layout: ``<data-dir>/history/<table>/chain_id=<id>/_version=<time>/part-0.parquet``, one small
file per table, chain and run that saw a change, so a night that changes little writes little
and nothing already written is touched again. This module is the only one that knows it (issue
16 moves the lake to Delta Lake).
"""

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.storage.parquet import Lake, Partition

VALID_FROM = "_valid_from"
VALID_TO = "_valid_to"
IS_DELETED = "_is_deleted"
RECORD_HASH = "_record_hash"
VERSION = "_version"
TIMESTAMP = pa.timestamp("us", tz="UTC")
HISTORY_DIR = "history"


def _field(name: str, type_: pa.DataType, doc: str) -> pa.Field:
    return pa.field(name, type_, metadata={b"doc": doc.encode()})


HISTORY_FIELDS = (
    _field(VALID_FROM, TIMESTAMP, "When a load first saw this version (its extraction time, UTC)."),
    _field(IS_DELETED, pa.bool_(), "True on the version recording that the record was deleted."),
    _field(
        RECORD_HASH, pa.string(), "Hash of the record's values and child rows (change detection)."
    ),
    _field(VERSION, pa.string(), "_valid_from as text (the lake partition)."),
)


@dataclass(frozen=True)
class HistorySpec:
    """The history table of one current table (the lake's TableSpecLike)."""

    name: str
    schema: Any
    description: str
    primary_key: tuple[str, ...]
    partition_by: tuple[str, ...]
    parent: str | None
    current_key: tuple[str, ...]


def history_spec(spec: Any) -> HistorySpec:
    """The history table of a current table (`pipelines.altegio.schema.TableSpec`)."""
    doc = (
        f"History of altegio.{spec.name}: one row per version of a record (see README, "
        "Warehouse, History)."
    )
    schema = pa.schema([*spec.schema, *HISTORY_FIELDS], metadata={b"doc": doc.encode()})
    return HistorySpec(
        spec.name,
        schema,
        doc,
        (*spec.primary_key, VALID_FROM),
        ("chain_id", VERSION),
        spec.parent,
        tuple(spec.primary_key),
    )


def version_text(valid_from: dt.datetime) -> str:
    return valid_from.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")


class HistoryStore:
    """The history tables of a data directory (``<data-dir>/history``)."""

    def __init__(self, root: Path, tables: Mapping[str, Any]) -> None:
        """`tables`: the current tables that keep history (name -> TableSpec)."""
        self._specs = {name: history_spec(spec) for name, spec in tables.items()}
        self.lake = Lake(root, self._specs)

    @property
    def tables(self) -> Mapping[str, HistorySpec]:
        return self._specs

    def latest(self, table: str, chain_id: int, columns: list[str]) -> pa.Table:
        """The last version of every record of the chain: `columns` plus the history ones."""
        key = list(self._specs[table].current_key)
        wanted = list(dict.fromkeys([*key, *columns, VALID_FROM, IS_DELETED, RECORD_HASH]))
        rows = self.lake.read_columns(table, wanted, {"chain_id": chain_id})
        if not rows.num_rows:
            return rows
        # The last version per key: sort by key then time, keep each key's last row.
        ordered = rows.sort_by([*((k, "ascending") for k in key), (VALID_FROM, "ascending")])
        if len(key) == 1:
            keys = ordered[key[0]]
        else:
            keys = pc.binary_join_element_wise(
                *(pc.cast(ordered[k], pa.string()) for k in key), "\x1f"
            )
        following = pa.concat_arrays([keys.combine_chunks().slice(1), pa.array([None], keys.type)])
        last = pc.or_kleene(pc.is_null(following), pc.not_equal(keys.combine_chunks(), following))
        return ordered.filter(pc.fill_null(last, True))

    def append(self, table: str, chain_id: int, valid_from: dt.datetime, rows: pa.Table) -> int:
        """Add version rows (every history column set) to the chain's partition of this run.

        A run writes one partition per table and chain; a second write of the same run (the
        refresh after the window load) merges into it, replacing rows of the same key, so a
        retried write never doubles a version."""
        partition: Partition = {"chain_id": chain_id, VERSION: version_text(valid_from)}
        key = list(self._specs[table].primary_key)
        if not rows.num_rows:
            return 0
        incoming = {tuple(r.values()) for r in rows.select(key).to_pylist()}

        def keep(existing: pa.Table) -> Any:
            present = [tuple(r.values()) for r in existing.select(key).to_pylist()]
            return pa.array([k not in incoming for k in present], pa.bool_())

        self.lake.merge_partitions(table, rows, [partition], keep)
        return int(rows.num_rows)

    def files(self, table: str) -> list[str]:
        return [str(info.path) for info in self.lake.partitions(table)]
