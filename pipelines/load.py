"""Load steps: fetch one table family for a set of chains (and days), normalize it, and replace
exactly the lake partitions it owns.

Framework-free on purpose: the Dagster assets, the `altegio-loyalty` command and the benchmarks
all run these same functions. One call is one step of a nightly load; its `StepReport` says
what happened per chain, which is what the assets turn into metadata and checks.

Failure isolation: a chain whose rights forbid an endpoint (access flag "0" or a 403) is
skipped and reported; any other error on one chain is recorded as a failure of that chain and
the other chains are still written. Only an authentication failure stops the step, because it
would fail identically for every chain.
"""

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
import pyarrow as pa

from pipelines.altegio.client import AltegioClient, Chain, Page
from pipelines.altegio.http import AccessDenied, ApiError, AuthError
from pipelines.altegio.normalize import NormalizedBatch, normalize, normalize_groups
from pipelines.altegio.schema import TABLES
from pipelines.altegio.sources import SOURCES, LoadShape, Source, groups_source
from pipelines.storage.disk import is_disk_full
from pipelines.storage.parquet import Lake
from pipelines.storage.state import MonthlyState

log = logging.getLogger(__name__)

# Rows per lake write while paging through a long range: bounds memory whatever the range
# (transactions hold up to two such buffers: one being written, one filling).
FLUSH_ROWS = 100_000


class ChainStatus:
    LOADED = "loaded"
    SKIPPED = "skipped"  # no right to this endpoint: expected, not an error
    FAILED = "failed"
    NOT_READY = "not_ready"  # the day has not ended yet in the chain's time zone


@dataclass
class ChainOutcome:
    """What one step did for one chain."""

    chain_id: int
    status: str
    reason: str = ""
    rows: int = 0  # received, after page-boundary repeats were removed
    api_rows: int = 0  # what the API's pages held, repeats included
    duplicates: int = 0  # page-boundary repeats the client removed
    written: int = 0  # rows of the family's main table written to the lake
    quarantined: int = 0
    requested_ids: int = 0  # records asked for by id (a refresh)


@dataclass
class StepReport:
    """Everything one step did: per-table rows, per-chain outcomes, request accounting."""

    table: str
    # The step's name in load_steps when it is not the table's (the refresh of a table).
    step: str = ""
    rows: dict[str, int] = field(default_factory=dict)
    api_rows: int = 0
    received_rows: int = 0
    quarantined: int = 0
    partitions_written: int = 0
    chains: list[ChainOutcome] = field(default_factory=list)
    drift: dict[str, set[str]] = field(default_factory=dict)
    unknown_codes: dict[str, set[int]] = field(default_factory=dict)
    unknown_values: dict[str, set[str]] = field(default_factory=dict)
    previews: dict[str, pa.Table] = field(default_factory=dict)
    requests: int = 0
    retries: int = 0
    http_429: int = 0
    bytes_received: int = 0
    duration_s: float = 0.0

    @property
    def step_name(self) -> str:
        return self.step or self.table

    @property
    def failed(self) -> list[ChainOutcome]:
        return [c for c in self.chains if c.status == ChainStatus.FAILED]

    @property
    def skipped(self) -> list[ChainOutcome]:
        return [c for c in self.chains if c.status == ChainStatus.SKIPPED]

    def absorb(self, batch: NormalizedBatch) -> None:
        for table, unknown in batch.drift.items():
            self.drift.setdefault(table, set()).update(unknown)
        for column, codes in batch.unknown_codes.items():
            self.unknown_codes.setdefault(column, set()).update(codes)
        for column, values in batch.unknown_values.items():
            self.unknown_values.setdefault(column, set()).update(values)
        for name, table in batch.tables.items():
            if name not in self.previews and table.num_rows:
                self.previews[name] = table.slice(0, 5)

    def add_outcome(self, outcome: ChainOutcome) -> None:
        self.chains.append(outcome)
        self.api_rows += outcome.api_rows
        self.received_rows += outcome.rows


def record_step(
    lake: Lake,
    report: StepReport,
    run_id: str,
    started_at: datetime,
    days: Sequence[date] = (),
) -> None:
    """Write the step's own row into the `load_steps` table (one partition per step and run)."""
    outcomes = [
        {
            "chain_id": c.chain_id,
            "status": c.status,
            "reason": c.reason,
            "api_rows": c.api_rows,
            "received": c.rows,
            "written": c.written,
            "quarantined": c.quarantined,
            **({"requested_ids": c.requested_ids} if c.requested_ids else {}),
        }
        for c in report.chains
    ]
    statuses = [c.status for c in report.chains]
    row = {
        "step": report.step_name,
        "run_id": run_id,
        "started_at": started_at,
        "finished_at": started_at + timedelta(seconds=report.duration_s),
        "days_from": min(days) if days else None,
        "days_to": max(days) if days else None,
        "chains_loaded": statuses.count(ChainStatus.LOADED),
        "chains_skipped": statuses.count(ChainStatus.SKIPPED),
        "chains_failed": statuses.count(ChainStatus.FAILED),
        "chains_not_ready": statuses.count(ChainStatus.NOT_READY),
        "chain_outcomes": orjson.dumps(outcomes).decode(),
        "api_reported_rows": report.api_rows,
        "rows_received": report.received_rows,
        "rows_written": report.rows.get(report.table, 0),
        "rows_quarantined": report.quarantined,
        "partitions_written": report.partitions_written,
        "requests": report.requests,
        "retries": report.retries,
        "http_429": report.http_429,
        "bytes_received": report.bytes_received,
        "duration_s": report.duration_s,
        "schema_drift": orjson.dumps(
            {t: sorted(cols) for t, cols in report.drift.items() if cols}
        ).decode(),
        "unknown_codes": orjson.dumps(
            {c: sorted(codes) for c, codes in report.unknown_codes.items() if codes}
        ).decode(),
    }
    schema = TABLES["load_steps"].schema
    lake.replace_partitions(
        "load_steps",
        pa.Table.from_pylist([row], schema=schema),
        [{"step": report.step_name, "run_id": run_id}],
    )


class _Accounting:
    """Snapshots the client's counters so a step reports only its own requests."""

    def __init__(self, client: AltegioClient) -> None:
        self._client = client
        self._start = client.stats.snapshot()
        self._t0 = time.monotonic()

    def finish(self, report: StepReport) -> StepReport:
        now = self._client.stats.snapshot()
        report.requests = now.requests - self._start.requests
        report.retries = now.retries - self._start.retries
        report.http_429 = now.http_429 - self._start.http_429
        report.bytes_received = now.bytes_received - self._start.bytes_received
        report.duration_s = time.monotonic() - self._t0
        return report


def _concat(tables: Sequence[pa.Table], name: str) -> pa.Table:
    schema = TABLES[name].schema
    if not tables:
        return schema.empty_table()
    return pa.concat_tables(tables)


class _FamilyBuffer:
    """Collects normalized batches of one table family until they are written together."""

    def __init__(self, family: tuple[str, ...]) -> None:
        self.family = family
        self.tables: dict[str, list[pa.Table]] = {name: [] for name in family}
        self.quarantine: list[pa.Table] = []
        self.rows = 0

    def add(self, batch: NormalizedBatch) -> None:
        for name in self.family:
            table = batch.tables.get(name)
            if table is not None and table.num_rows:
                self.tables[name].append(table)
        if batch.quarantine.num_rows:
            self.quarantine.append(batch.quarantine)
        self.rows += batch.tables[self.family[0]].num_rows

    def write(
        self,
        lake: Lake,
        partitions: Sequence[dict[str, Any]],
        quarantine_partitions: Sequence[dict[str, Any]],
        report: StepReport,
    ) -> None:
        for name in self.family:
            data = _concat(self.tables[name], name)
            lake.replace_partitions(name, data, partitions)
            report.rows[name] = report.rows.get(name, 0) + data.num_rows
        quarantine = _concat(self.quarantine, "quarantine")
        lake.replace_partitions("quarantine", quarantine, quarantine_partitions)
        report.quarantined += quarantine.num_rows
        report.partitions_written += len(partitions)
        self.tables = {name: [] for name in self.family}
        self.quarantine = []
        self.rows = 0


def _records(pages: Iterable[Page], counter: ChainOutcome) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for page in pages:
        counter.api_rows += page.reported_rows
        counter.rows += len(page.records)
        counter.duplicates += page.reported_rows - len(page.records)
        records.extend(page.records)
    return records


def _normalized(batch: NormalizedBatch, table: str, outcome: ChainOutcome) -> NormalizedBatch:
    outcome.written += batch.tables[table].num_rows
    outcome.quarantined += batch.quarantine.num_rows
    return batch


def _classify_failure(chain: Chain, exc: Exception) -> ChainOutcome:
    # A refused credential or a full disk is not this chain's failure: the next chain would
    # meet it too, so the step stops.
    if isinstance(exc, AuthError) or is_disk_full(exc):
        raise exc
    if isinstance(exc, AccessDenied):
        return ChainOutcome(chain.id, ChainStatus.SKIPPED, f"403 access denied: {exc.message}")
    log.warning("chain %s failed: %s", chain.id, exc)
    return ChainOutcome(chain.id, ChainStatus.FAILED, f"{type(exc).__name__}: {exc}")


_EXPECTED_FAILURES = (ApiError, httpx.HTTPError, OSError, ValueError)


def load_chains(
    client: AltegioClient, lake: Lake, chain_ids: Sequence[int] | None, extracted_at: datetime
) -> tuple[list[Chain], StepReport]:
    """Discover the chains the credentials see (/groups) and write chains + locations."""
    source = groups_source()
    accounting = _Accounting(client)
    report = StepReport(table=source.name)
    chains = client.list_chains(chain_ids=chain_ids)
    batch = normalize_groups([c.raw for c in chains], extracted_at=extracted_at)
    report.absorb(batch)
    for chain in chains:
        report.add_outcome(ChainOutcome(chain.id, ChainStatus.LOADED, rows=1, api_rows=1))
    main = batch.tables[source.name]
    written = set(main[source.entity.key].to_pylist())
    for outcome in report.chains:
        outcome.written = int(outcome.chain_id in written)
        outcome.quarantined = 1 - outcome.written
    partitions = [{"chain_id": c.id} for c in chains]
    for name in source.family:
        lake.replace_partitions(name, batch.tables[name], partitions)
    # A /groups record that cannot be typed has no trustworthy chain id: it is quarantined
    # under a null chain_id, so that partition belongs to this step too.
    lake.replace_partitions(
        "quarantine",
        batch.quarantine,
        [
            {"source_table": source.name, "chain_id": chain_id, "partition_key": "all"}
            for chain_id in [*(c.id for c in chains), None]
        ],
    )
    report.rows = {name: batch.tables[name].num_rows for name in source.family}
    report.quarantined = batch.quarantine.num_rows
    report.partitions_written = len(partitions)
    return chains, accounting.finish(report)


def _flag_skip(chain: Chain, source: Source) -> ChainOutcome:
    flag = source.gate.access_flag
    return ChainOutcome(chain.id, ChainStatus.SKIPPED, f'access flag {flag} is "0"')


def load_reference(
    client: AltegioClient,
    lake: Lake,
    chains: Sequence[Chain],
    table: str,
    extracted_at: datetime,
    personal_key: bytes | None = None,
) -> StepReport:
    """Refresh one source read as of now (REFERENCE or LOCATION_SEARCH_THEN_DETAIL) for
    every chain; one partition per chain. `personal_key` keys the hashes of personal data."""
    source = SOURCES[table]
    if source.shape.by_day or source.shape is LoadShape.GROUPS:
        raise ValueError(f"{table} is not read as of now; use load_daily or load_chains")
    accounting = _Accounting(client)
    report = StepReport(table=table)
    for chain in chains:
        if not chain.can(source.gate.name):
            report.add_outcome(_flag_skip(chain, source))
            continue
        outcome = ChainOutcome(chain.id, ChainStatus.LOADED)
        buffer = _FamilyBuffer(source.family)
        try:
            records = _records(client.list_source(source, chain), outcome)
        except _EXPECTED_FAILURES as exc:
            report.add_outcome(_classify_failure(chain, exc))
            continue
        batch = normalize(
            table,
            records,
            chain_id=chain.id,
            extracted_at=extracted_at,
            chain_timezone=chain.timezone,
            personal_key=personal_key,
        )
        report.absorb(_normalized(batch, table, outcome))
        buffer.add(batch)
        buffer.write(
            lake,
            [{"chain_id": chain.id}],
            [{"source_table": table, "chain_id": chain.id, "partition_key": "all"}],
            report,
        )
        report.add_outcome(outcome)
        log.info("%s: chain %s: %s rows", table, chain.id, outcome.written)
    return accounting.finish(report)


def completed_days(days: Sequence[date], timezone: str, now: datetime) -> list[date]:
    """The days that have ended in `timezone` at `now` (a day still running is not loaded)."""
    today = now.astimezone(ZoneInfo(timezone)).date()
    return [d for d in days if d < today]


def load_daily(
    client: AltegioClient,
    lake: Lake,
    chains: Sequence[Chain],
    table: str,
    days: Sequence[date],
    extracted_at: datetime,
    personal_key: bytes | None = None,
) -> StepReport:
    """Load a source read by day (DAILY or CREATED_WINDOW) for each chain and each day.

    Each (chain, day) is one lake partition, replaced whole: rerunning a day, or a lookback
    overlapping an earlier load, rewrites it and never appends. A chain fails alone: its
    partitions keep their previous state and the other chains are written. Days that have not
    ended yet in the chain's own time zone are left for a later run.
    """
    source = SOURCES.get(table)
    if source is None or not source.shape.by_day:
        by_day = [s.name for s in SOURCES.values() if s.shape.by_day]
        raise ValueError(f"{table} is not a daily table; use one of {by_day}")
    loader = _DAY_LOADERS[source.shape]
    accounting = _Accounting(client)
    report = StepReport(table=table)
    if source.shape is LoadShape.CREATED_WINDOW:
        monthly_state(lake, source).migrate_day_layout()
    for chain in chains:
        if not chain.can(source.gate.name):
            report.add_outcome(_flag_skip(chain, source))
            continue
        ready = completed_days(sorted(set(days)), chain.timezone, extracted_at)
        if not ready:
            report.add_outcome(
                ChainOutcome(chain.id, ChainStatus.NOT_READY, "no requested day has ended yet")
            )
            continue
        outcome = ChainOutcome(chain.id, ChainStatus.LOADED)
        try:
            loader(
                _ChainDays(client, lake, source, chain, ready, extracted_at, personal_key),
                outcome,
                report,
            )
        except _EXPECTED_FAILURES as exc:
            report.add_outcome(_classify_failure(chain, exc))
            continue
        if len(ready) < len(set(days)):
            outcome.reason = (
                f"{len(set(days)) - len(ready)} day(s) not ended yet in {chain.timezone}"
            )
        report.add_outcome(outcome)
        log.info("%s: chain %s: %s days, %s rows", table, chain.id, len(ready), outcome.written)
    return accounting.finish(report)


@dataclass(frozen=True)
class _ChainDays:
    """What a day loader reads and writes for one chain: its days of one source."""

    client: AltegioClient
    lake: Lake
    source: Source
    chain: Chain
    days: Sequence[date]
    extracted_at: datetime
    personal_key: bytes | None


def _load_days(run: _ChainDays, outcome: ChainOutcome, report: StepReport) -> None:
    """DAILY: one window per day (the records carry no timestamp); days fetched in parallel.

    Lake writes run behind: while one flush of FLUSH_ROWS rows is encoded and written on a
    background thread, the next days are fetched and normalized (at most one flush in flight,
    so memory stays bounded). A failed write fails the chain like a failed fetch; days already
    flushed keep their new partitions, the rest their old ones, each partition whole.
    """
    client, lake, source, chain, extracted_at = (
        run.client,
        run.lake,
        run.source,
        run.chain,
        run.extracted_at,
    )
    table = source.name
    family = source.family
    buffer = _FamilyBuffer(family)
    pending: list[date] = []
    flusher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lake-flush")
    in_flight: Future[None] | None = None
    try:
        for day, pages in client.fetch_days(source, chain.id, run.days):
            batch = normalize(
                table,
                _records(pages, outcome),
                chain_id=chain.id,
                extracted_at=extracted_at,
                chain_timezone=chain.timezone,
                transaction_date=day,
                personal_key=run.personal_key,
            )
            report.absorb(_normalized(batch, table, outcome))
            buffer.add(batch)
            pending.append(day)
            if buffer.rows >= FLUSH_ROWS:
                if in_flight is not None:
                    in_flight.result()
                # The flush owns this buffer and day list; new days go into fresh ones.
                in_flight = flusher.submit(_write_days, buffer, lake, table, chain, pending, report)
                buffer, pending = _FamilyBuffer(family), []
        if in_flight is not None:
            in_flight.result()
        _write_days(buffer, lake, table, chain, pending, report)
    finally:
        # On failure too: the chain is reported only once no write of it is still running.
        flusher.shutdown(wait=True)


def monthly_state(lake: Lake, source: Source) -> MonthlyState:
    """The current-state storage of a CREATED_WINDOW family (rows kept by creation month)."""
    ids = {source.name: source.entity.key}
    # A child table's key starts (chain_id, <parent id>, ...).
    ids.update({spec.name: spec.primary_key[1] for spec in source.tables[1:]})
    return MonthlyState(lake, ids)


def _load_created_window(run: _ChainDays, outcome: ChainOutcome, report: StepReport) -> None:
    """CREATED_WINDOW: one creation-time window over all the days (the records carry their
    creation time): far fewer requests than a window per day. The rows created on those days
    are replaced inside their month partitions (`pipelines.storage.state`)."""
    client, lake, source, chain, days = run.client, run.lake, run.source, run.chain, run.days
    table = source.name
    tz = ZoneInfo(chain.timezone)
    start = datetime.combine(days[0], datetime.min.time(), tzinfo=tz)
    # Both bounds are inclusive on the sandbox and undocumented on the real API: end on the
    # last microsecond of the last day so no neighbouring window is touched.
    end = datetime.combine(days[-1], datetime.min.time(), tzinfo=tz) + timedelta(
        days=1, microseconds=-1
    )
    records = _records(client.list_created(source, chain.id, start, end), outcome)
    batch = normalize(
        table,
        records,
        chain_id=chain.id,
        extracted_at=run.extracted_at,
        chain_timezone=chain.timezone,
        window_days=days,
        personal_key=run.personal_key,
    )
    report.absorb(_normalized(batch, table, outcome))
    state = monthly_state(lake, source)
    report.partitions_written += state.replace_days(chain.id, days, batch.tables)
    for name in source.family:
        report.rows[name] = report.rows.get(name, 0) + batch.tables[name].num_rows
    label = f"{days[0].isoformat()}..{days[-1].isoformat()}"
    keys = [day.isoformat() for day in days] + [label]
    lake.replace_partitions(
        "quarantine",
        batch.quarantine,
        [{"source_table": table, "chain_id": chain.id, "partition_key": key} for key in keys],
    )
    report.quarantined += batch.quarantine.num_rows


_DayLoader = Callable[[_ChainDays, ChainOutcome, StepReport], None]
_DAY_LOADERS: dict[LoadShape, _DayLoader] = {
    LoadShape.DAILY: _load_days,
    LoadShape.CREATED_WINDOW: _load_created_window,
}


def _write_days(
    buffer: _FamilyBuffer,
    lake: Lake,
    table: str,
    chain: Chain,
    days: Sequence[date],
    report: StepReport,
) -> None:
    if not days:
        return
    partition_column = SOURCES[table].main.partition_by[-1]
    keys = [day.isoformat() for day in days]
    buffer.write(
        lake,
        [{"chain_id": chain.id, partition_column: day} for day in days],
        [{"source_table": table, "chain_id": chain.id, "partition_key": key} for key in keys],
        report,
    )
