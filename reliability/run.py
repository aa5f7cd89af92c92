"""`make reliability` (full) and the test suite's fast subset (`--quick`).

    python -m reliability.run [--quick] [--only TEXT] [--crash-trials N] [--work DIR]

Prints one row per scenario: trials, faults injected (sandbox fault counters; SIGKILLs for the
crash suite; publishes swapped under open readers for the concurrency suite), rows compared
with the clean run, and differences (rows that differ, failed loads, reader errors or partial
snapshots). `--only TEXT` runs the clean reference plus the scenarios whose name holds TEXT
(e.g. `--only "all at once"`). Exit status 1 when any difference is not 0.
"""

import argparse
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from reliability import concurrency, crash, disk, faults
from reliability.common import ScenarioResult, one_phone_hash_key

FULL_CRASH_TRIALS = 21
QUICK_CRASH_TRIALS = 3


def run_suite(
    work: Path, quick: bool, crash_trials: int | None = None, only: str | None = None
) -> list[ScenarioResult]:
    """Every scenario of the suite (or those whose name holds `only`), against sandboxes,
    inside `work`; the clean reference always runs, as every scenario compares with it."""
    with one_phone_hash_key():
        clean = faults.clean_run(work)
        clean_dir = work / "clean"
        results = [ScenarioResult("clean reference", trials=1)]
        results[0].rows_compared = sum(len(t.rows) for t in clean.values())
        results += faults.run(clean, work, quick, only)
        if _wanted(crash.SCENARIOS, only):
            trials = crash_trials or (QUICK_CRASH_TRIALS if quick else FULL_CRASH_TRIALS)
            results += crash.run(clean, clean_dir, work, trials)
        if _wanted(concurrency.SCENARIOS, only):
            results += concurrency.run(clean, clean_dir, work, loads=1 if quick else 3, readers=2)
        if _wanted(disk.SCENARIOS, only):
            results += disk.run(clean, clean_dir, work)
    return results


def _wanted(names: Sequence[str], only: str | None) -> bool:
    return only is None or any(only in name for name in names)


def format_table(results: Sequence[ScenarioResult]) -> str:
    head = (
        f"{'scenario':<36} {'trials':>6} {'faults injected':>15} {'rows compared':>13} "
        f"{'differences':>11}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(
            f"{r.scenario:<36} {r.trials:>6} {r.faults:>15,} {r.rows_compared:>13,} "
            f"{r.differences:>11}"
        )
    total = sum(r.differences for r in results)
    lines.append("-" * len(head))
    lines.append(f"{'total':<36} {sum(r.trials for r in results):>6} "
                 f"{sum(r.faults for r in results):>15,} "
                 f"{sum(r.rows_compared for r in results):>13,} {total:>11}")  # fmt: skip
    notes = [f"  {r.scenario}: {note}" for r in results for note in r.notes]
    if notes:
        lines += ["", "notes:", *notes]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the test suite's fast subset")
    parser.add_argument(
        "--only", metavar="TEXT", default=None, help="only the scenarios whose name holds TEXT"
    )
    parser.add_argument("--crash-trials", type=int, default=None)
    parser.add_argument("--work", type=Path, default=None, help="keep the run's files here")
    args = parser.parse_args(argv)
    # Retries and skips are expected here; the table is the output.
    logging.getLogger("pipelines").setLevel(logging.CRITICAL)
    started = time.monotonic()
    if args.work is not None:
        args.work.mkdir(parents=True, exist_ok=True)
        results = run_suite(args.work, args.quick, args.crash_trials, args.only)
    else:
        with tempfile.TemporaryDirectory(prefix="altegio-reliability-") as tmp:
            results = run_suite(Path(tmp), args.quick, args.crash_trials, args.only)
    print(format_table(results))
    kind = "quick" if args.quick else "full"
    if args.only:
        kind += f" --only {args.only!r}"
    print(f"\n{kind} run in {time.monotonic() - started:.0f}s")
    return 1 if any(r.differences for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
