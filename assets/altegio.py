"""One asset per source (`pipelines.altegio.sources`) writing its tables (keys `altegio/<table>`),
and the published warehouse marts (whose step also writes the HTML report beside it).

Assets only orchestrate: they ask `pipelines.load` to fetch, normalize and write, then turn the
step's report into metadata and check results. A source's child tables (a membership type's
balance links, a promotion's rules, ...) are written by its step, so each source is one
multi-asset whose outputs are its tables. A source read by day is partitioned by day.
"""

import contextlib
import functools
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa

from assets.checks import CHECK_NAMES, check_results, check_specs
from assets.partitions import DAILY_BACKFILL_POLICY, DAILY_PARTITIONS
from assets.resources import AltegioResource, StorageResource
from pipelines import interrupts, load, refresh
from pipelines.altegio.http import AuthError
from pipelines.altegio.schema import TABLES
from pipelines.altegio.sources import SOURCES, LoadShape, Source, groups_source
from pipelines.report import ReportError, WrittenReport, write_report
from pipelines.storage.disk import disk_full_message, is_disk_full
from pipelines.storage.marts import MART_DOCS

GROUP = "altegio"
# Run tag naming which stored memberships the run re-reads by id (refresh.RefreshMode); the
# nightly job and `altegio-loyalty load` leave it unset: active.
REFRESH_TAG = "altegio/refresh"
# What a load step yields: one materialization per table it wrote, then its check results.
StepEvent = dg.MaterializeResult[Any] | dg.AssetCheckResult
RETRY_POLICY = dg.RetryPolicy(max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL)


@contextlib.contextmanager
def retries_cannot_help(data_dir: Path) -> Iterator[None]:
    """Fail the step at once, without RETRY_POLICY, where a retry can only repeat the failure:
    RETRY_POLICY's retries are for transient faults. A refused credential would be repeated
    against the account (30 s, then 90 s later; the AuthError's message names the setting to
    fix, never a secret); a full disk stays full, and the previous warehouse stays readable."""
    try:
        yield
    except AuthError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from exc
    except Exception as exc:
        if not is_disk_full(exc):
            raise
        raise dg.Failure(description=disk_full_message(str(data_dir)), allow_retries=False) from exc


def _refuse_after_a_stop() -> None:
    signum = interrupts.received()
    if signum is not None:
        raise dg.Failure(
            description=f"not started: the load was {interrupts.Interrupted(signum)}",
            allow_retries=False,
        )


def stops_when_asked(
    step: Callable[..., Iterator[StepEvent]],
) -> Callable[..., Iterator[StepEvent]]:
    """SIGINT or SIGTERM fails the step at once, without RETRY_POLICY, and a step starting
    after one does not run: the user asked the load to stop (Dagster itself would retry an
    interrupted step 30 s later). Each resumption of the step's generator runs under
    `interrupts.stop_on_signals`, so the whole of the step's own code is covered; what it
    wrote stays consistent (lake writes are atomic)."""

    @functools.wraps(step)
    def guarded(*args: Any, **kwargs: Any) -> Iterator[StepEvent]:
        _refuse_after_a_stop()
        events = step(*args, **kwargs)
        while True:
            try:
                with interrupts.stop_on_signals():
                    event = next(events)
            except StopIteration:
                return
            except interrupts.Interrupted as exc:
                raise dg.Failure(description=str(exc), allow_retries=False) from exc
            yield event

    return guarded


def asset_key(table: str) -> dg.AssetKey:
    return dg.AssetKey([GROUP, table])


def column_schema(table: str) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=field.name,
                type=str(field.type),
                description=(field.metadata or {}).get(b"doc", b"").decode(),
            )
            for field in TABLES[table].schema
        ]
    )


def _spec(table: str, deps: list[dg.AssetKey]) -> dg.AssetSpec:
    return dg.AssetSpec(
        asset_key(table),
        group_name=GROUP,
        description=TABLES[table].description,
        deps=deps,
        metadata={"dagster/column_schema": column_schema(table)},
        kinds={"parquet", "duckdb"},
    )


def _preview(table: pa.Table | None) -> dg.MetadataValue:
    """The first rows as a Markdown table (nested/long values cut short)."""
    if table is None or table.num_rows == 0:
        return dg.MetadataValue.md("(no rows)")
    rows = table.slice(0, 5).to_pylist()
    names = table.column_names
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    for row in rows:
        cells = [str(row[name])[:40].replace("|", "/") for name in names]
        lines.append("| " + " | ".join(cells) + " |")
    return dg.MetadataValue.md("\n".join(lines))


def _chains_table(report: load.StepReport) -> dg.MetadataValue:
    lines = [
        "| chain | status | received | api rows | written | quarantined | reason |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in report.chains:
        cells = (c.chain_id, c.status, c.rows, c.api_rows, c.written, c.quarantined, c.reason)
        lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    return dg.MetadataValue.md("\n".join(lines))


def step_metadata(report: load.StepReport, table: str) -> dict[str, Any]:
    """Metadata for one table of a step: its rows plus the step's request accounting."""
    return {
        "dagster/row_count": report.rows.get(table, 0),
        "rows_received": report.received_rows,
        "api_reported_rows": report.api_rows,
        "rows_quarantined": report.quarantined,
        "partitions_written": report.partitions_written,
        "requests": report.requests,
        "retries": report.retries,
        "http_429": report.http_429,
        "bytes_received": report.bytes_received,
        "duration_s": round(report.duration_s, 3),
        "chains": _chains_table(report),
        "skipped_chains": ", ".join(f"{c.chain_id} ({c.reason})" for c in report.skipped) or "none",
        "failed_chains": ", ".join(f"{c.chain_id} ({c.reason})" for c in report.failed) or "none",
        "schema_drift": ", ".join(
            f"{t}: {sorted(cols)}" for t, cols in sorted(report.drift.items()) if cols
        )
        or "none",
        "preview": _preview(report.previews.get(table)),
    }


def refresh_mode(context: dg.AssetExecutionContext) -> refresh.RefreshMode:
    """The run's refresh mode (REFRESH_TAG), active when the run does not say."""
    text = context.run.tags.get(REFRESH_TAG, refresh.RefreshMode.ACTIVE.value)
    try:
        return refresh.RefreshMode(text)
    except ValueError:
        modes = [m.value for m in refresh.RefreshMode]
        raise dg.Failure(f"run tag {REFRESH_TAG}={text!r}: expected one of {modes}") from None


def _results(
    context: dg.AssetExecutionContext,
    report: load.StepReport,
    storage: StorageResource,
    started_at: datetime,
    days: list[date] | None = None,
    refreshed: load.StepReport | None = None,
) -> Iterator[StepEvent]:
    load.record_step(storage.lake(), report, context.run.run_id, started_at, days or [])
    if refreshed is not None:
        load.record_step(storage.lake(), refreshed, context.run.run_id, started_at)
    for table in SOURCES[report.table].family:
        if context.selected_asset_keys and asset_key(table) not in context.selected_asset_keys:
            continue
        metadata = step_metadata(report, table)
        if refreshed is not None:
            metadata.update(refresh_metadata(refreshed, table))
        yield dg.MaterializeResult(asset_key=asset_key(table), metadata=metadata)
    yield from check_results(
        report, storage.lake(), asset_key(report.table), refreshed, storage.history()
    )
    _log_outcomes(context, report)
    if refreshed is not None:
        _log_outcomes(context, refreshed)


def refresh_metadata(report: load.StepReport, table: str) -> dict[str, Any]:
    """What the refresh by id did, beside the window load's metadata."""
    return {
        "refresh_requested_ids": sum(c.requested_ids for c in report.chains),
        "refresh_rows_written": report.rows.get(table, 0),
        "refresh_requests": report.requests,
        "refresh_duration_s": round(report.duration_s, 3),
        "refresh_failed_chains": ", ".join(f"{c.chain_id} ({c.reason})" for c in report.failed)
        or "none",
    }


def _log_outcomes(context: dg.AssetExecutionContext, report: load.StepReport) -> None:
    for outcome in report.chains:
        if outcome.status == load.ChainStatus.SKIPPED:
            context.log.warning(
                f"{report.table}: chain {outcome.chain_id} skipped: {outcome.reason}"
            )
        elif outcome.status == load.ChainStatus.FAILED:
            context.log.error(f"{report.table}: chain {outcome.chain_id} failed: {outcome.reason}")


def _now() -> datetime:
    return datetime.now(UTC)


def _chains_asset(source: Source) -> dg.AssetsDefinition:
    """The multi-asset discovering the chains: every other source is read per chain."""

    @dg.multi_asset(
        name=source.name,
        specs=[_spec(name, []) for name in source.family],
        check_specs=check_specs(source.name, history=source.history is not None),
        retry_policy=RETRY_POLICY,
        can_subset=False,
    )
    @stops_when_asked
    def _asset(
        context: dg.AssetExecutionContext, altegio: AltegioResource, storage: StorageResource
    ) -> Iterator[StepEvent]:
        started = _now()
        storage.guard_source(altegio.source_identity())
        with retries_cannot_help(storage.root), altegio.open_client(storage.budget_dir) as client:
            _, report = load.load_chains(
                client, storage.lake(), altegio.chain_id_list(), started, storage.history()
            )
        yield from _results(context, report, storage, started)

    _asset.__doc__ = source.main.description
    return _asset


def _table_asset(source: Source, chains_key: dg.AssetKey) -> dg.AssetsDefinition:
    """The multi-asset writing a source's tables: refreshed as of now, or (a source read by
    day) loaded one day partition per window."""
    daily = source.shape.by_day
    partitioning: dict[str, Any] = (
        {"partitions_def": DAILY_PARTITIONS, "backfill_policy": DAILY_BACKFILL_POLICY}
        if daily
        else {}
    )

    @dg.multi_asset(
        name=source.name,
        specs=[_spec(name, [chains_key]) for name in source.family],
        check_specs=check_specs(
            source.name,
            refreshed=source.refresh is not None,
            history=source.history is not None,
        ),
        retry_policy=RETRY_POLICY,
        **partitioning,
    )
    @stops_when_asked
    def _asset(
        context: dg.AssetExecutionContext, altegio: AltegioResource, storage: StorageResource
    ) -> Iterator[StepEvent]:
        started = _now()
        storage.guard_source(altegio.source_identity())
        days = [date.fromisoformat(key) for key in context.partition_keys] if daily else []
        personal_key = storage.personal_key() if source.entity.needs_personal_key else None
        lake, history = storage.lake(), storage.history()
        with retries_cannot_help(storage.root), altegio.open_client(storage.budget_dir) as client:
            chains = client.list_chains(chain_ids=altegio.chain_id_list())
            refreshed = None
            if daily:
                report = load.load_daily(
                    client, lake, chains, source.name, days, started, personal_key, history
                )
                if source.refresh is not None:
                    refreshed = refresh.refresh_by_ids(
                        client,
                        lake,
                        chains,
                        source.name,
                        refresh_mode(context),
                        started,
                        personal_key,
                        skip_days=refresh.fresh_days(report, chains, days, started),
                        history=history,
                    )
            else:
                report = load.load_reference(
                    client, lake, chains, source.name, started, personal_key, history
                )
        yield from _results(context, report, storage, started, days, refreshed)

    _asset.__doc__ = source.main.description
    return _asset


def _source_asset(source: Source) -> dg.AssetsDefinition:
    if source.shape is LoadShape.GROUPS:
        return _chains_asset(source)
    return _table_asset(source, asset_key(groups_source().name))


TABLE_ASSETS = [_source_asset(source) for source in SOURCES.values()]
ALL_TABLE_KEYS = [asset_key(name) for source in SOURCES.values() for name in source.family]


@dg.multi_asset(
    name="warehouse",
    specs=[
        dg.AssetSpec(
            dg.AssetKey(["marts", name]),
            group_name="marts",
            description=doc,
            deps=ALL_TABLE_KEYS,
            kinds={"duckdb"},
        )
        for name, doc in MART_DOCS.items()
    ],
)
@stops_when_asked
def warehouse(
    context: dg.AssetExecutionContext, storage: StorageResource
) -> Iterator[dg.MaterializeResult[Any]]:
    """Publish the DuckDB warehouse from the lake (tables, enum dimensions, marts) in one swap,
    then write the HTML report beside it."""
    wh = storage.warehouse()
    with retries_cannot_help(storage.root), wh.load_lock():
        result = wh.publish(storage.lake())
    # The marts are published whatever happens to the report: they are materialized first,
    # and a report that cannot be written then fails the step (so the failure alerts).
    report_error: str | None = None
    try:
        written = write_report(wh.data_dir)
        report_metadata = report_entries(written)
    except (ReportError, OSError) as exc:
        report_error = disk_full_message(str(storage.root)) if is_disk_full(exc) else str(exc)
        report_metadata = {"report": dg.MetadataValue.md(f"**not written**: {report_error}")}
    for name in MART_DOCS:
        yield dg.MaterializeResult(
            asset_key=dg.AssetKey(["marts", name]),
            metadata={
                "dagster/row_count": result.row_counts.get(f"marts.{name}", 0),
                "warehouse": dg.MetadataValue.path(str(wh.path)),
                "publish_duration_s": round(result.seconds, 3),
                **report_metadata,
            },
        )
    if report_error is not None:
        raise dg.Failure(description=f"report not written: {report_error}", allow_retries=False)


def report_entries(written: WrittenReport) -> dict[str, dg.MetadataValue]:
    """The report as the UI shows it: its path, a file URL to open it, and what it holds."""
    path = written.path.resolve()
    return {
        "report": dg.MetadataValue.path(str(path)),
        "report_url": dg.MetadataValue.url(path.as_uri()),
        "report_summary": dg.MetadataValue.md(
            f"[Loyalty report]({path.as_uri()}): {written.charts} charts for "
            f"{written.chains} chains, {written.bytes:,} bytes, self-contained "
            f"(`{path}`)"
        ),
    }


__all__ = ["ALL_TABLE_KEYS", "CHECK_NAMES", "TABLE_ASSETS", "warehouse"]
