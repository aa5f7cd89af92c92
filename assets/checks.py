"""Asset checks: evaluated by each load step right after it writes, from what it just did.

- rows_reconcile (error): per chain, the rows the API reported equal the rows received once
  page-boundary repeats are removed, and every received row was written or quarantined.
- unique_ids (error): no primary key appears twice in the lake table.
- all_chains_loaded (error): no chain failed; chains skipped for lack of rights are listed, not
  failed.
- known_enum_codes (warn): no enum code outside the contract's tables, with the codes.
- quarantine_empty (warn): no record was refused, with the counts.
- state_refreshed (error, sources re-read by id): the refresh by id read every chain it should
  (a failed chain is listed with its reason), with the ids asked for and the requests made.
- history_one_current_row, history_no_overlap, history_matches_current (error, sources that
  keep history, `pipelines.history.history_problems`): one current version per id, validity
  intervals that never overlap, and every current row with its live current version (and no
  live current version without its current row).
Freshness of the nightly load is a separate check built in definitions.py.
"""

import tempfile
from collections.abc import Iterator

import dagster as dg
import duckdb

from pipelines import load
from pipelines.altegio.schema import TABLES
from pipelines.history import HISTORY_CHECKS, history_problems
from pipelines.storage.history import HistoryStore
from pipelines.storage.parquet import Lake
from pipelines.storage.warehouse import PUBLISH_DUCKDB_CONFIG

CHECK_NAMES = (
    "rows_reconcile",
    "unique_ids",
    "all_chains_loaded",
    "known_enum_codes",
    "quarantine_empty",
)
REFRESH_CHECK = "state_refreshed"
_SEVERITY = {
    **{name: dg.AssetCheckSeverity.ERROR for name in HISTORY_CHECKS},
    REFRESH_CHECK: dg.AssetCheckSeverity.ERROR,
    "rows_reconcile": dg.AssetCheckSeverity.ERROR,
    "unique_ids": dg.AssetCheckSeverity.ERROR,
    "all_chains_loaded": dg.AssetCheckSeverity.ERROR,
    "known_enum_codes": dg.AssetCheckSeverity.WARN,
    "quarantine_empty": dg.AssetCheckSeverity.WARN,
}
_DESCRIPTIONS = {
    "history_one_current_row": "Every id has one current version in its history.",
    "history_no_overlap": "No two versions of an id are valid at the same moment.",
    "history_matches_current": "Every current row has its live current history version, and "
    "every live current version its current row.",
    REFRESH_CHECK: "The refresh by id re-read every chain it should (failed chains listed).",
    "rows_reconcile": "Rows the API reported = rows received (minus page-boundary repeats) "
    "= rows written + rows quarantined, per chain.",
    "unique_ids": "No primary key appears twice in the table.",
    "all_chains_loaded": "No chain failed (chains without the right are skipped and listed).",
    "known_enum_codes": "Every enum code is one the contract documents.",
    "quarantine_empty": "No record was refused into altegio.quarantine.",
}
# What each check asserts, for the alerts that name a failed one.
CHECK_DESCRIPTIONS = _DESCRIPTIONS


def check_specs(
    table: str, refreshed: bool = False, history: bool = False
) -> list[dg.AssetCheckSpec]:
    key = dg.AssetKey(["altegio", table])
    names = [
        *CHECK_NAMES,
        *([REFRESH_CHECK] if refreshed else []),
        *(HISTORY_CHECKS if history else ()),
    ]
    return [dg.AssetCheckSpec(name, asset=key, description=_DESCRIPTIONS[name]) for name in names]


def duplicate_keys(lake: Lake, table: str) -> int:
    """How many primary-key values occur more than once in the lake table."""
    files = [info.path for info in lake.partitions(table)]
    if not files:
        return 0
    columns = ", ".join(f'"{column}"' for column in TABLES[table].primary_key)
    # The publish's bounds, not DuckDB's defaults (every core, most of the RAM): with those this
    # GROUP BY over a large table set the load's peak memory (docs/performance.md).
    with (
        tempfile.TemporaryDirectory(prefix="altegio-check-") as spill,
        duckdb.connect(config={**PUBLISH_DUCKDB_CONFIG, "temp_directory": spill}) as con,
    ):
        row = con.execute(
            f"SELECT count(*) FROM (SELECT {columns} FROM read_parquet($files) "  # noqa: S608 (validated identifiers from schema.py)
            f"GROUP BY {columns} HAVING count(*) > 1)",
            {"files": [str(f) for f in files]},
        ).fetchone()
    return int(row[0]) if row else 0


def check_results(
    report: load.StepReport,
    lake: Lake,
    key: dg.AssetKey,
    refreshed: load.StepReport | None = None,
    history: HistoryStore | None = None,
) -> Iterator[dg.AssetCheckResult]:
    def result(name: str, passed: bool, **metadata: object) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(
            asset_key=key,
            check_name=name,
            passed=passed,
            severity=_SEVERITY[name],
            metadata=metadata,  # type: ignore[arg-type]
        )

    loaded = [c for c in report.chains if c.status == load.ChainStatus.LOADED]
    mismatched = [
        f"chain {c.chain_id}: api {c.api_rows}, received {c.rows} "
        f"(+{c.duplicates} repeats), written {c.written}, quarantined {c.quarantined}"
        for c in loaded
        if c.api_rows != c.rows + c.duplicates or c.rows != c.written + c.quarantined
    ]
    yield result(
        "rows_reconcile",
        not mismatched,
        api_reported_rows=report.api_rows,
        rows_received=report.received_rows,
        rows_quarantined=report.quarantined,
        mismatches="; ".join(mismatched) or "none",
    )
    duplicates = duplicate_keys(lake, report.table)
    yield result("unique_ids", duplicates == 0, duplicated_keys=duplicates)
    yield result(
        "all_chains_loaded",
        not report.failed,
        failed=", ".join(f"{c.chain_id}: {c.reason}" for c in report.failed) or "none",
        skipped=", ".join(f"{c.chain_id}: {c.reason}" for c in report.skipped) or "none",
    )
    unknown: dict[str, list[int | str]] = {
        column: sorted(codes) for column, codes in report.unknown_codes.items() if codes
    }
    # String enums (promotion type, template message type, ...) are checked the same way.
    for column, values in report.unknown_values.items():
        if values:
            unknown[column] = sorted(values)
    yield result(
        "known_enum_codes",
        not unknown,
        unknown_codes="; ".join(f"{c}: {codes}" for c, codes in sorted(unknown.items())) or "none",
    )
    yield result("quarantine_empty", report.quarantined == 0, rows_quarantined=report.quarantined)
    if refreshed is not None:
        yield result(
            REFRESH_CHECK,
            not refreshed.failed,
            requested_ids=sum(c.requested_ids for c in refreshed.chains),
            requests=refreshed.requests,
            failed=", ".join(f"{c.chain_id}: {c.reason}" for c in refreshed.failed) or "none",
        )
    if history is not None and report.table in history.tables:
        for name, problems in history_problems(history, lake, report.table).items():
            yield result(name, problems == 0, problems=problems, versions_added=report.versions)
