"""The `altegio-loyalty` command: `sandbox`, `load`, `nightly`, `demo` and `report` (the write
commands, `memberships` and `catalog`, live in `assets.cli_writes`).

`load`, `nightly` and `demo` materialize the same Dagster assets as the nightly job,
in-process, for a range of days (`nightly`: yesterday plus the lookback window, as the
schedule picks it), the re-read of stored memberships included, then print a one-screen
summary. Exit status: 0 when every chain loaded or was
skipped for lack of rights (403 or an access flag of "0"); 1 on any other failure; 2 on bad
configuration, wrong credentials and a plain-http base URL included (one request checks them
before the run starts).
"""

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import dagster as dg

from assets import sql_command
from assets.altegio import REFRESH_TAG, TABLE_ASSETS, warehouse
from assets.resources import SANDBOX, SANDBOX_END, SANDBOX_START, build_resources
from assets.schedules import RANGE_END_TAG, RANGE_START_TAG, nightly_window
from pipelines import interrupts
from pipelines.altegio.http import ApiError, AuthError, ConfigurationError
from pipelines.refresh import RefreshMode
from pipelines.report import REPORT_FILE

DEMO_DATA_DIR = "data/demo"
EXAMPLE_QUERY = "SELECT count(*) FROM altegio.loyalty_transactions"
# Dagster's own step logs are for the UI; the command shows progress and a summary instead.
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class LoadSummary:
    """What one `load` did, gathered from the run's materializations and check evaluations."""

    success: bool
    rows: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    retries: int = 0
    http_429: int = 0
    quarantined: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # step -> why it failed (the innermost error: what the user code raised)
    step_failures: dict[str, str] = field(default_factory=dict)
    # the stop signal (SIGINT/SIGTERM) that ended the load early, if any
    interrupted_by: int | None = None

    @property
    def exit_code(self) -> int:
        if self.interrupted_by is not None:
            return 128 + self.interrupted_by
        return 0 if self.success and not self.failed and not self.errors else 1

    def interrupted_steps(self) -> tuple[list[str], list[str]]:
        """(steps the signal stopped, steps that then did not start)."""
        failures = sorted(self.step_failures.items())
        stopped = [step for step, text in failures if text.startswith("interrupted")]
        not_started = [step for step, text in failures if text.startswith("not started")]
        return stopped, not_started


def _value(metadata: dict[str, Any], key: str) -> Any:
    entry = metadata.get(key)
    return getattr(entry, "value", entry)


def _failure_text(error: Any) -> str:
    """The message of the error user code raised, not Dagster's wrapper around it."""
    while error is not None and getattr(error, "cause", None) is not None:
        error = error.cause
    return (getattr(error, "message", "") or "unknown error").strip()


def summarize(result: dg.ExecuteInProcessResult) -> LoadSummary:
    summary = LoadSummary(success=result.success)
    for failure in result.get_step_failure_events():
        data = failure.step_failure_data
        if data is not None and data.user_failure_data is not None:
            text = data.user_failure_data.description or "failed"
        else:
            text = _failure_text(data.error if data is not None else None)
        summary.step_failures[failure.step_key or "run"] = text
    steps_seen: set[str] = set()
    for event in result.get_asset_materialization_events():
        materialization = event.materialization
        table = "/".join(materialization.asset_key.path)
        # A ranged run emits one event per day partition, each carrying the step's totals.
        if table in summary.rows:
            continue
        metadata = dict(materialization.metadata)
        summary.rows[table] = int(_value(metadata, "dagster/row_count") or 0)
        step = event.step_key or table
        if step in steps_seen or "requests" not in metadata:
            continue
        # Accounting is per step (a family writes several tables): count it once per step.
        steps_seen.add(step)
        summary.requests += int(_value(metadata, "requests") or 0)
        # The re-read of stored memberships by id is a step of its own inside that asset.
        summary.requests += int(_value(metadata, "refresh_requests") or 0)
        summary.retries += int(_value(metadata, "retries") or 0)
        summary.http_429 += int(_value(metadata, "http_429") or 0)
        summary.quarantined += int(_value(metadata, "rows_quarantined") or 0)
        for key, target in (("skipped_chains", summary.skipped), ("failed_chains", summary.failed)):
            text = str(_value(metadata, key) or "none")
            if text != "none":
                target[table] = text
    for evaluation in result.get_asset_check_evaluations():
        if evaluation.passed:
            continue
        label = f"{'/'.join(evaluation.asset_key.path)}:{evaluation.check_name}"
        if evaluation.severity == dg.AssetCheckSeverity.ERROR:
            summary.errors.append(label)
        else:
            summary.warnings.append(label)
    return summary


def print_summary(summary: LoadSummary, out: Any = sys.stdout) -> None:
    print("\nRows per table", file=out)
    for table, rows in sorted(summary.rows.items()):
        print(f"  {table:<45} {rows:>10,}", file=out)
    print(
        f"\nRequests {summary.requests:,}  retries {summary.retries:,}  "
        f"429s {summary.http_429:,}  quarantined rows {summary.quarantined:,}",
        file=out,
    )
    for title, entries in (("Skipped (no right)", summary.skipped), ("FAILED", summary.failed)):
        for table, text in sorted(entries.items()):
            print(f"{title}: {table}: {text}", file=out)
    for label in summary.warnings:
        print(f"check warning: {label}", file=out)
    for label in summary.errors:
        print(f"CHECK FAILED: {label}", file=out)
    if summary.interrupted_by is not None:
        _print_interruption(summary, out)
        return
    # One cause (a full disk, a refused credential) fails every step alike: one line for it.
    by_text: dict[str, list[str]] = {}
    for step, text in sorted(summary.step_failures.items()):
        by_text.setdefault(text, []).append(step)
    for text, steps in by_text.items():
        print(f"STEP FAILED: {', '.join(steps)}: {text}", file=out)
    print("\nLoad " + ("succeeded" if summary.exit_code == 0 else "FAILED"), file=out)


def _print_interruption(summary: LoadSummary, out: Any) -> None:
    stopped, not_started = summary.interrupted_steps()
    name = interrupts.signal_name(summary.interrupted_by or 0)
    print(f"\nLoad INTERRUPTED by {name}", file=out)
    print(f"  stopped while running: {', '.join(stopped) or 'none (between steps)'}", file=out)
    if not_started:
        print(f"  not started: {', '.join(not_started)}", file=out)
    print(
        "  Every lake partition is either as before or fully rewritten; the warehouse is "
        "published only by a load that finishes. Run the same command again to complete.",
        file=out,
    )


def run_load(
    start: date,
    end: date,
    data_dir: str | None = None,
    chain_ids: Sequence[int] = (),
    altegio_overrides: dict[str, Any] | None = None,
    refresh: RefreshMode = RefreshMode.ACTIVE,
    today: date | None = None,
) -> LoadSummary:
    """Materialize every asset for days start..end (inclusive) in this process; with `today`
    (the nightly path) the days are yesterday plus the lookback window instead."""
    if today is not None:
        start, end = date.min, date.min
    if end < start:
        raise ConfigurationError(f"--end {end} is before --start {start}")
    with interrupts.watch(on_overrun=_print_overrun):
        return _run_load(start, end, data_dir, chain_ids, altegio_overrides, refresh, today)


def _run_load(
    start: date,
    end: date,
    data_dir: str | None,
    chain_ids: Sequence[int],
    altegio_overrides: dict[str, Any] | None,
    refresh: RefreshMode,
    today: date | None,
) -> LoadSummary:
    altegio: dict[str, Any] = dict(altegio_overrides or {})
    if chain_ids:
        altegio["chain_ids"] = ",".join(str(c) for c in chain_ids)
    storage: dict[str, Any] = {"data_dir": data_dir} if data_dir else {}
    resources = build_resources(altegio=altegio, storage=storage)
    # Resolve the environment now so a configuration mistake stops here, before any run.
    storage_config = resources["storage"].process_config_and_initialize()
    altegio_config = resources["altegio"].process_config_and_initialize()
    lookback = storage_config.lookback()
    if today is not None:
        start, end = nightly_window(today, lookback)
        print(f"Nightly: days {start}..{end} (yesterday plus {lookback} lookback days)")
    altegio_config.chain_id_list()
    altegio_config.settings(storage_config.budget_dir)
    storage_config.guard_source(altegio_config.source_identity())
    # One request before any run: wrong credentials stop here with one message naming the
    # variable to fix, instead of failing the first step (and its Dagster retries).
    with altegio_config.open_client(storage_config.budget_dir) as client:
        client.list_chains(chain_ids=altegio_config.chain_id_list())
    result = dg.materialize(
        [*TABLE_ASSETS, warehouse],
        resources=resources,
        tags={
            RANGE_START_TAG: start.isoformat(),
            RANGE_END_TAG: end.isoformat(),
            REFRESH_TAG: refresh.value,
        },
        run_config=QUIET_RUN_CONFIG,
        raise_on_error=False,
    )
    summary = summarize(result)
    summary.interrupted_by = interrupts.received()
    return summary


def _print_overrun(signum: int) -> None:
    print(
        f"\nLoad INTERRUPTED by {interrupts.signal_name(signum)}: still winding down "
        f"{interrupts.GRACE_S:.0f} s later, so it stops now. Every lake partition is either as "
        "before or fully rewritten; run the same command again to complete.",
        flush=True,
    )


def _demo_report(data_dir: str) -> None:
    from pipelines.storage.warehouse import Warehouse

    with Warehouse(Path(data_dir)).connect_read_only() as con:
        print("\nLoyalty activity by chain (marts.points_liability, last day)")
        rows = con.execute(
            "SELECT chain_id, max(transaction_date), "
            "arg_max(cumulative_liability, transaction_date) "
            "FROM marts.points_liability GROUP BY chain_id ORDER BY chain_id"
        ).fetchall()
        for chain_id, day, liability in rows:
            print(f"  chain {chain_id}: points liability {liability:,.2f} on {day}")
        print("\nTop promotions by discount given (marts.promotion_effect)")
        for chain_id, title, discount in con.execute(
            "SELECT chain_id, promotion_title, discount_given FROM marts.promotion_effect "
            "ORDER BY discount_given DESC NULLS LAST LIMIT 5"
        ).fetchall():
            print(f"  chain {chain_id}: {title}: {discount or 0:,.2f}")
    print(f"\nWarehouse: {Path(data_dir) / 'warehouse.duckdb'}")
    demo = Path(data_dir) == Path(DEMO_DATA_DIR)
    shell = "make sql" if demo else f"ALTEGIO_DATA_DIR={data_dir} make sql"
    flag = "" if demo else f" --data-dir {data_dir}"
    print(f"Explore it: {shell} (interactive SQL shell, read-only), or one query:")
    print(f'  .venv/bin/altegio-loyalty sql{flag} "{EXAMPLE_QUERY}"')


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is when a record is emitted: an in-process caller (the
    tests) may swap and close the stream that was current when the handler was made."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def _configure_logging(verbose: bool) -> None:
    handler = _CurrentStderr()
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    logger = logging.getLogger("pipelines")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="altegio-loyalty", description="Altegio loyalty data into Parquet and DuckDB."
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    commands = parser.add_subparsers(dest="command", required=True)

    from pipelines.altegio.sandbox import cli as sandbox_cli

    sandbox = commands.add_parser("sandbox", help="serve the built-in Altegio look-alike API")
    sandbox_cli.add_arguments(sandbox)

    load = commands.add_parser("load", help="load a range of days (env vars configure the API)")
    load.add_argument("--start", type=date.fromisoformat, required=True, help="YYYY-MM-DD")
    load.add_argument("--end", type=date.fromisoformat, required=True, help="YYYY-MM-DD")
    load.add_argument("--data-dir", help="default: $ALTEGIO_DATA_DIR or ./data")
    load.add_argument("--chain", type=int, action="append", default=[], help="chain id (repeat)")
    refresh_help = (
        "stored memberships re-read by id: active (status not final, the nightly's), all "
        "(the weekly full refresh's), none"
    )
    load.add_argument(
        "--refresh",
        type=RefreshMode,
        choices=list(RefreshMode),
        default=RefreshMode.ACTIVE,
        help=refresh_help,
    )

    nightly = commands.add_parser(
        "nightly", help="what the nightly schedule runs: yesterday plus the lookback window"
    )
    nightly.add_argument(
        "--today", type=date.fromisoformat, help="YYYY-MM-DD (default: today, UTC)"
    )
    nightly.add_argument("--data-dir", help="default: $ALTEGIO_DATA_DIR or ./data")
    nightly.add_argument("--chain", type=int, action="append", default=[], help="chain id (repeat)")

    sql_command.add_parser(commands)

    demo = commands.add_parser("demo", help="sandbox + full load of its range + a short summary")
    demo.add_argument("--data-dir", default=DEMO_DATA_DIR)

    report = commands.add_parser(
        "report", help="write the HTML loyalty report from the warehouse's marts"
    )
    report.add_argument("--data-dir", help="default: $ALTEGIO_DATA_DIR or ./data")
    report.add_argument(
        "--out", type=Path, help="where to write the page (default: <data-dir>/report.html)"
    )

    from assets import cli_writes

    cli_writes.register(commands)
    return parser


def run_report(data_dir: str | None, out: Path | None) -> int:
    """`altegio-loyalty report`: one self-contained HTML page from the published marts."""
    from pipelines.report import ReportError, write_report

    storage: dict[str, Any] = {"data_dir": data_dir} if data_dir else {}
    root = build_resources(storage=storage)["storage"].process_config_and_initialize().root
    try:
        written = write_report(root, out)
    except ReportError as exc:
        print(f"report error: {exc}", file=sys.stderr)
        return 1
    print(
        f"Report: {written.path} ({written.bytes:,} bytes, {written.charts} charts, "
        f"{written.chains} chains; self-contained, open it in a browser)"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "sandbox":
        from pipelines.altegio.sandbox import cli as sandbox_cli

        return sandbox_cli.run(args)
    if args.command == "sql":
        return sql_command.run(args)
    if args.command == "report":
        return run_report(args.data_dir, args.out)
    _configure_logging(args.verbose)
    from assets import cli_writes

    if args.command in cli_writes.COMMANDS:
        return cli_writes.run(args)
    try:
        if args.command == "load":
            summary = run_load(
                args.start, args.end, args.data_dir, args.chain, refresh=args.refresh
            )
        elif args.command == "nightly":
            today = args.today or datetime.now(UTC).date()
            summary = run_load(today, today, args.data_dir, args.chain, today=today)
        else:
            print(
                f"Demo: built-in sandbox, days {SANDBOX_START}..{SANDBOX_END}, into {args.data_dir}"
            )
            summary = run_load(
                SANDBOX_START, SANDBOX_END, args.data_dir, altegio_overrides={"base_url": SANDBOX}
            )
    except ConfigurationError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except AuthError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except ApiError as exc:
        print(f"load not started, the API check failed: {exc}", file=sys.stderr)
        return 1
    except interrupts.Interrupted as exc:
        print(f"load {exc} before its run started; no table was written", file=sys.stderr)
        return exc.exit_code
    print_summary(summary)
    if args.command == "demo" and summary.exit_code == 0:
        _demo_report(args.data_dir)
        print(f"Report: {Path(args.data_dir) / REPORT_FILE}  (open it in a browser)")
    return summary.exit_code


if __name__ == "__main__":
    sys.exit(main())
