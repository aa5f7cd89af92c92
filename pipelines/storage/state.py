"""The current state of a table family whose records are re-read by id: sold memberships.

Its rows live in one lake partition per chain and creation month (`created_month`). Two
writers change them, each rewriting only the months it touches and keeping every other row:

* a creation-time window load replaces the rows created on its days (a vanished id leaves);
* a re-read by id replaces the rows of the ids it read back; an id the API did not return
  keeps its last known row (a partial read never deletes anything).

This is the one place that knows the layout, so a later storage format (issue 16: Delta Lake)
changes this module and `Lake`, not the load steps.
"""

import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.storage.parquet import PART_FILE, Lake, Partition

log = logging.getLogger(__name__)

CHAIN_COLUMN = "chain_id"
DAY_COLUMN = "created_day"
MONTH_COLUMN = "created_month"


def month_of(day: dt.date) -> dt.date:
    return day.replace(day=1)


@dataclass(frozen=True)
class MonthlyState:
    """The tables of one family (main first) and, per table, the column holding the id of the
    main record a row belongs to (`id` for the main table, `membership_id` for its links)."""

    lake: Lake
    id_columns: Mapping[str, str]

    @property
    def main(self) -> str:
        return next(iter(self.id_columns))

    def replace_days(
        self, chain_id: int, days: Collection[dt.date], tables: Mapping[str, pa.Table]
    ) -> int:
        """Replace the rows created on `days` by `tables`' rows; returns partitions written."""

        def keep(_name: str) -> Callable[[pa.Table], Any]:
            return _not_on_days(days)

        months = {month_of(d) for d in days}
        return self._merge(chain_id, months, tables, keep)

    def upsert(
        self,
        chain_id: int,
        ids: Collection[int],
        months: Collection[dt.date],
        tables: Mapping[str, pa.Table],
    ) -> int:
        """Replace the rows of the records `ids` (stored in `months`) by `tables`' rows."""
        replaced = pa.array(sorted(set(ids)), pa.int64())

        def keep(name: str) -> Callable[[pa.Table], Any]:
            column = self.id_columns[name]
            return lambda t: pc.invert(pc.is_in(t[column], value_set=replaced))

        new_months = tables[self.main][MONTH_COLUMN].unique().to_pylist()
        return self._merge(chain_id, {*months, *new_months}, tables, keep)

    def _merge(
        self,
        chain_id: int,
        months: Collection[dt.date | None],
        tables: Mapping[str, pa.Table],
        keep: Callable[[str], Callable[[pa.Table], Any]],
    ) -> int:
        partitions: list[Partition] = [
            {CHAIN_COLUMN: chain_id, MONTH_COLUMN: m} for m in sorted(m for m in months if m)
        ]
        for name in self.id_columns:
            self.lake.merge_partitions(name, tables[name], partitions, keep(name))
        return len(partitions)

    def known(self, chain_id: int, columns: Sequence[str]) -> pa.Table:
        """`columns` of every stored main record of the chain."""
        return self.lake.read_columns(self.main, columns, {CHAIN_COLUMN: chain_id})

    def migrate_day_layout(self) -> int:
        """Move partitions of the earlier layout (one per chain and `created_day`) into month
        partitions; returns the day files moved. Safe to rerun after a crash: a day is merged
        into its month before its file is removed, and merging it again gives the same rows."""
        moved = 0
        for name in self.id_columns:
            spec = self.lake.spec(name)
            base = self.lake.table_dir(name)
            old = sorted(base.glob(f"{CHAIN_COLUMN}=*/{DAY_COLUMN}=*/{PART_FILE}"))
            for path in old:
                chain_id = int(path.parent.parent.name.split("=", 1)[1])
                day = dt.date.fromisoformat(path.parent.name.split("=", 1)[1])
                with pq.ParquetFile(path) as handle:
                    rows = handle.read()
                month = pa.array([month_of(day)] * rows.num_rows, pa.date32())
                if MONTH_COLUMN in rows.column_names:
                    rows = rows.drop_columns([MONTH_COLUMN])
                rows = rows.append_column(MONTH_COLUMN, month)
                names = [f.name for f in spec.schema]
                rows = pa.Table.from_arrays(
                    [
                        rows.column(n) if n in rows.column_names else pa.nulls(rows.num_rows)
                        for n in names
                    ],
                    names=names,
                ).cast(spec.schema)
                partition: Partition = {CHAIN_COLUMN: chain_id, MONTH_COLUMN: month_of(day)}
                self.lake.merge_partitions(name, rows, [partition], _not_on_days([day]))
                path.unlink()
                _remove_empty(path.parent)
                moved += 1
        if moved:
            log.info("moved %d day partition(s) of %s into month partitions", moved, self.main)
        return moved


def _not_on_days(days: Collection[dt.date]) -> Callable[[pa.Table], Any]:
    """Keep-mask of the rows not created on `days`."""
    window = pa.array(sorted(set(days)), pa.date32())
    return lambda t: pc.invert(pc.is_in(t[DAY_COLUMN], value_set=window))


def _remove_empty(directory: Path) -> None:
    with contextlib.suppress(OSError):
        directory.rmdir()
