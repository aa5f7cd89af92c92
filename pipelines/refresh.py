"""The refresh step: re-read stored records by id so their state stays current (CONTRACT
§5.4.1: sold memberships are listed by creation date only, there is no changed-since filter).

Which records: `RefreshMode.ACTIVE` (every night) re-reads each stored record whose status is
not final (`Source.refresh`); `RefreshMode.ALL` (the weekly full refresh) re-reads every one,
since set_balance and set_period can move even a final one. Records the same run has just read
by their creation window are not asked again. Ids travel `IDS_PER_REQUEST` per request through
the client, so the refresh shares the run's rate budget with every other step.

What it writes: the rows of the ids it read back replace their stored rows (one month
partition each, `pipelines.storage.state`); an id the API did not return keeps its row; a
record that cannot be typed is quarantined (partition key `refresh`) and its stored row kept.
A chain that fails part-way keeps what was refreshed before the failure and is reported.
"""

import logging
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import date, datetime
from enum import StrEnum

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.altegio.client import AltegioClient, Chain
from pipelines.altegio.normalize import normalize
from pipelines.altegio.sources import SOURCES, LoadShape, Source
from pipelines.load import (
    _EXPECTED_FAILURES,
    ChainOutcome,
    ChainStatus,
    StepReport,
    _Accounting,
    _classify_failure,
    _flag_skip,
    _normalized,
    _records,
    completed_days,
    monthly_state,
)
from pipelines.storage.parquet import Lake, Partition
from pipelines.storage.state import DAY_COLUMN, MONTH_COLUMN

log = logging.getLogger(__name__)

# Ids refreshed between two lake writes: bounds memory whatever the number of stored records
# (a write rewrites the month partitions those ids live in).
IDS_PER_WRITE = 20_000
QUARANTINE_KEY = "refresh"


class RefreshMode(StrEnum):
    """Which stored records a run re-reads by id."""

    ACTIVE = "active"  # those whose status is not final (the nightly default)
    ALL = "all"  # every stored record (the weekly full refresh)
    NONE = "none"  # none (the deep lookback of transactions)


def refresh_step_name(table: str) -> str:
    return f"{table}_refresh"


def refreshed_sources() -> list[Source]:
    return [s for s in SOURCES.values() if s.refresh is not None]


def fresh_days(
    report: StepReport, chains: Sequence[Chain], days: Sequence[date], extracted_at: datetime
) -> dict[int, list[date]]:
    """Per chain the window load just read, the days it read (their records are current)."""
    by_id = {c.id: c for c in chains}
    return {
        o.chain_id: completed_days(sorted(set(days)), by_id[o.chain_id].timezone, extracted_at)
        for o in report.chains
        if o.status == ChainStatus.LOADED and o.chain_id in by_id
    }


def _selected(
    known: pa.Table, source: Source, mode: RefreshMode, skip_days: Collection[date]
) -> pa.Table:
    """The stored records to re-read: (id, created_month), sorted by month."""
    if source.refresh is None:
        raise ValueError(f"{source.name} is not refreshed by id")
    mask = pc.invert(
        pc.is_in(known[DAY_COLUMN], value_set=pa.array(sorted(skip_days), pa.date32()))
    )
    if mode is RefreshMode.ACTIVE:
        final = pa.array(sorted(source.refresh.final_codes), pa.int64())
        status = known[source.refresh.status_column]
        not_final = pc.or_kleene(pc.is_null(status), pc.invert(pc.is_in(status, value_set=final)))
        mask = pc.and_(mask, not_final)
    chosen = known.filter(mask).select([source.entity.key, MONTH_COLUMN])
    return chosen.sort_by([(MONTH_COLUMN, "ascending"), (source.entity.key, "ascending")])


def _batches(selected: pa.Table, key: str) -> Iterator[tuple[set[date], list[int]]]:
    """Ids in groups of about IDS_PER_WRITE, with the months they are stored in."""
    ids = selected[key].to_pylist()
    months = selected[MONTH_COLUMN].to_pylist()
    for start in range(0, len(ids), IDS_PER_WRITE):
        yield set(months[start : start + IDS_PER_WRITE]), ids[start : start + IDS_PER_WRITE]


def refresh_by_ids(
    client: AltegioClient,
    lake: Lake,
    chains: Sequence[Chain],
    table: str,
    mode: RefreshMode,
    extracted_at: datetime,
    personal_key: bytes | None = None,
    skip_days: Mapping[int, Collection[date]] | None = None,
) -> StepReport:
    """Re-read the stored records of `table` the `mode` selects, per chain (see the module)."""
    source = SOURCES[table]
    if source.shape is not LoadShape.CREATED_WINDOW or source.refresh is None:
        raise ValueError(f"{table} is not refreshed by id")
    accounting = _Accounting(client)
    report = StepReport(table=table, step=refresh_step_name(table))
    if mode is RefreshMode.NONE:
        return accounting.finish(report)
    state = monthly_state(lake, source)
    columns = [source.entity.key, DAY_COLUMN, MONTH_COLUMN, source.refresh.status_column]
    for chain in chains:
        if not chain.can(source.gate.name):
            report.add_outcome(_flag_skip(chain, source))
            continue
        selected = _selected(
            state.known(chain.id, columns), source, mode, (skip_days or {}).get(chain.id, ())
        )
        outcome = ChainOutcome(chain.id, ChainStatus.LOADED, requested_ids=selected.num_rows)
        quarantine: list[pa.Table] = []
        try:
            for months, ids in _batches(selected, source.entity.key):
                records = _records(client.list_by_ids(source, chain.id, ids), outcome)
                batch = normalize(
                    table,
                    records,
                    chain_id=chain.id,
                    extracted_at=extracted_at,
                    chain_timezone=chain.timezone,
                    personal_key=personal_key,
                )
                report.absorb(_normalized(batch, table, outcome))
                written = batch.tables[table][source.entity.key].to_pylist()
                report.partitions_written += state.upsert(chain.id, written, months, batch.tables)
                for name in source.family:
                    report.rows[name] = report.rows.get(name, 0) + batch.tables[name].num_rows
                quarantine.append(batch.quarantine)
        except _EXPECTED_FAILURES as exc:
            failure = _classify_failure(chain, exc)
            failure.requested_ids = selected.num_rows
            report.add_outcome(failure)
            continue
        finally:
            _write_quarantine(lake, table, chain.id, quarantine, report)
        missing = outcome.requested_ids - outcome.rows
        if missing > 0:
            outcome.reason = f"{missing} id(s) not returned: their stored rows are kept"
        report.add_outcome(outcome)
        log.info(
            "%s: chain %s: %s of %s refreshed",
            table,
            chain.id,
            outcome.written,
            outcome.requested_ids,
        )
    return accounting.finish(report)


def _write_quarantine(
    lake: Lake, table: str, chain_id: int, parts: list[pa.Table], report: StepReport
) -> None:
    """The refresh's refusals of one chain, under the partition key `refresh`."""
    schema = lake.spec("quarantine").schema
    rows = pa.concat_tables(parts) if parts else schema.empty_table()
    index = rows.schema.get_field_index("partition_key")
    rows = rows.set_column(
        index, rows.schema.field(index), pa.array([QUARANTINE_KEY] * rows.num_rows, pa.string())
    )
    partition: Partition = {
        "source_table": table,
        "chain_id": chain_id,
        "partition_key": QUARANTINE_KEY,
    }
    lake.replace_partitions("quarantine", rows, [partition])
    report.quarantined += rows.num_rows
