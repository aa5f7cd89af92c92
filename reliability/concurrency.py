"""Concurrency suite: analysts' read-only connections in a loop while nightly loads run.

Reader processes (`reliability.readers`) query the warehouse of a directory that already holds
a complete load, while loads run one after another into it. Every snapshot a reader opens
must satisfy the invariants of a complete publish and equal the clean run; no reader query may
fail; every load must succeed; the final warehouse must equal the clean run.
"""

from pathlib import Path

from assets.cli import run_load
from reliability.common import (
    LOAD_END,
    LOAD_START,
    Checksums,
    ScenarioResult,
    altegio_overrides,
    compare,
    sandbox,
    warehouse_checksums,
)
from reliability.procs import Reader, copy_tree

# The row this suite reports.
SCENARIOS = ("readers: queries during loads",)


def run(
    clean: Checksums, clean_dir: Path, work: Path, loads: int, readers: int
) -> list[ScenarioResult]:
    result = ScenarioResult(SCENARIOS[0])
    data_dir = work / "concurrency"
    copy_tree(clean_dir, data_dir)
    procs = [Reader(data_dir, work, clean, f"concurrency-{i}") for i in range(readers)]
    failed_loads = 0
    with sandbox() as server:
        for _ in range(loads):
            summary = run_load(
                LOAD_START, LOAD_END, str(data_dir), altegio_overrides=altegio_overrides(server)
            )
            failed_loads += summary.exit_code != 0
    tallies = [reader.finish() for reader in procs]
    rows = sum(len(t.rows) for t in clean.values())
    result.trials = loads
    # "Faults" here: publishes swapped in under open readers (distinct snapshots they saw).
    result.faults = len({stamp for t in tallies for stamp in t["published_at"]})
    result.rows_compared = sum(int(t["snapshots"]) for t in tallies) * rows
    for t in tallies:
        bad = t["errors"] + t["partial"]
        result.differences += len(bad)
        if bad:
            result.notes.append(f"reader: {bad[:3]}")
    if failed_loads:
        result.differences += failed_loads
        result.notes.append(f"{failed_loads} load(s) failed")
    final = compare(clean, warehouse_checksums(data_dir))
    result.absorb(final)
    result.notes.append(
        f"{readers} readers, {sum(int(t['snapshots']) for t in tallies)} snapshots, "
        f"{sum(int(t['lake_files_read']) for t in tallies)} lake files read"
    )
    return [result]
