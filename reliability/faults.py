"""Fault suite: a load against a misbehaving sandbox must publish the clean run's warehouse.

Each scenario turns one sandbox knob on (two settings in the full run), materializes every
Dagster asset in-process against it, and compares the published warehouse with a clean run's
row by row. The client's read timeout and backoff base are shortened through the resource
(`read_timeout_s`, `backoff_base_s`) so slow answers trip the timeout in a fraction of a
second and retries do not sleep for seconds; the retry logic itself is the production one.
"""

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from assets.cli import run_load
from pipelines.altegio.sandbox import Faults, SandboxServer
from pipelines.storage.warehouse import WAREHOUSE_FILE
from reliability.common import (
    LOAD_END,
    LOAD_START,
    Checksums,
    ScenarioResult,
    altegio_overrides,
    compare,
    fault_count,
    sandbox,
    warehouse_checksums,
)

# Client tuning for every fault run: a slow answer (SLOW_SECONDS) outlasts the read timeout.
READ_TIMEOUT_S = "0.25"
BACKOFF_BASE_S = "0.05"
SLOW_SECONDS = 1.0


@dataclass(frozen=True)
class FaultScenario:
    """One knob: the sandbox config changes of each trial (the quick run uses the first)."""

    name: str
    trials: tuple[dict[str, Any], ...]
    quick: bool = True
    tuning: dict[str, str] = field(default_factory=dict)


SCENARIOS: tuple[FaultScenario, ...] = (
    FaultScenario(
        "faults: 5xx bursts",
        (
            {"faults": Faults(error_every=6, error_burst=2)},
            {"faults": Faults(error_every=10, error_burst=3, error_statuses=(500, 504))},
        ),
    ),
    FaultScenario(
        "faults: 429 storm, Retry-After",
        ({"rate_limit": 12.0, "rate_limit_burst": 2, "rate_limit_retry_after": True},),
        quick=False,
    ),
    FaultScenario(
        "faults: 429 storm, no Retry-After",
        (
            {"rate_limit": 20.0, "rate_limit_burst": 3, "rate_limit_retry_after": False},
            {"rate_limit": 10.0, "rate_limit_burst": 1, "rate_limit_retry_after": False},
        ),
        quick=False,
        tuning={"backoff_base_s": "0.2"},
    ),
    FaultScenario(
        "faults: slow beyond timeout",
        (
            {"faults": Faults(slow_every=7, slow_seconds=SLOW_SECONDS)},
            {"faults": Faults(slow_every=4, slow_seconds=SLOW_SECONDS)},
        ),
        quick=False,
    ),
    FaultScenario(
        "faults: dropped mid-body",
        ({"faults": Faults(drop_every=5)}, {"faults": Faults(drop_every=3)}),
    ),
    FaultScenario(
        "faults: truncated JSON",
        ({"faults": Faults(truncate_every=5)}, {"faults": Faults(truncate_every=3)}),
        quick=False,
    ),
    FaultScenario(
        "faults: page-boundary repeats",
        (
            {"faults": Faults(overlap_pages=True, page_size_cap=9)},
            {"faults": Faults(overlap_pages=True, page_size_caps={"transactions": 4})},
        ),
    ),
    FaultScenario(
        "faults: capped page sizes",
        (
            {"faults": Faults(page_size_cap=7)},
            {"faults": Faults(page_size_caps={"transactions": 3, "memberships": 2})},
        ),
        quick=False,
    ),
    FaultScenario(
        "faults: all at once",
        (
            {
                "faults": Faults(
                    error_every=15,
                    slow_every=23,
                    slow_seconds=SLOW_SECONDS,
                    drop_every=19,
                    truncate_every=29,
                    overlap_pages=True,
                    page_size_cap=8,
                ),
                "rate_limit": 30.0,
                "rate_limit_retry_after": False,
            },
        ),
        quick=False,
    ),
)


def load_into(
    data_dir: Path, server_changes: dict[str, Any], tuning: dict[str, str]
) -> tuple[int, bool, str]:
    """One in-process load against a sandbox with `server_changes`:
    (faults injected, load succeeded, what failed)."""
    with sandbox(**server_changes) as server:
        summary = run_load(
            LOAD_START,
            LOAD_END,
            str(data_dir),
            altegio_overrides=altegio_overrides(server, **tuning),
        )
        faults = fault_count(server) + capped_pages(server, server_changes.get("faults"))
    if summary.exit_code == 0:
        faults += repeated_rows(data_dir)
    problems = "; ".join([f"{t}: {why}" for t, why in summary.failed.items()] + summary.errors) or (
        "" if summary.exit_code == 0 else "load failed"
    )
    return faults, summary.exit_code == 0, problems


def capped_pages(server: SandboxServer, faults: Faults | None) -> int:
    """Pages the sandbox silently cut to a cap (a page served at exactly the cap size: the
    client asked for more, and more rows followed). The sandbox does not count these itself."""
    if faults is None or (faults.page_size_cap is None and not faults.page_size_caps):
        return 0
    total = 0
    for endpoint, sizes in server.stats().get("page_sizes", {}).items():
        cap = faults.page_size_caps.get(endpoint, faults.page_size_cap)
        if cap is not None:
            total += int(sizes.get(str(cap), 0))
    return total


def repeated_rows(data_dir: Path) -> int:
    """Rows the API repeated across page boundaries in a load (the client dropped them), from
    the run's own `load_steps` rows."""
    con = duckdb.connect(str(data_dir / WAREHOUSE_FILE), read_only=True)
    try:
        row = con.execute(
            "SELECT coalesce(sum(api_reported_rows - rows_received), 0) FROM altegio.load_steps"
        ).fetchone()
    finally:
        con.close()
    return int(row[0]) if row else 0


def clean_run(work: Path) -> Checksums:
    """The reference warehouse: a load against the sandbox with no knob on."""
    data_dir = work / "clean"
    _, ok, problems = load_into(data_dir, {}, {})
    if not ok:
        raise RuntimeError(f"the clean reference load failed: {problems}")
    return warehouse_checksums(data_dir)


def run(clean: Checksums, work: Path, quick: bool, only: str | None = None) -> list[ScenarioResult]:
    """Every fault scenario (quick: the quick ones, first trial only; `only`: names holding
    this text)."""
    results = []
    for scenario in SCENARIOS:
        if (quick and not scenario.quick) or (only and only not in scenario.name):
            continue
        result = ScenarioResult(scenario.name)
        tuning = {"read_timeout_s": READ_TIMEOUT_S, "backoff_base_s": BACKOFF_BASE_S}
        tuning.update(scenario.tuning)
        for changes in scenario.trials[:1] if quick else scenario.trials:
            data_dir = Path(tempfile.mkdtemp(prefix="fault-", dir=work))
            faults, ok, problems = load_into(data_dir, changes, tuning)
            result.trials += 1
            result.faults += faults
            if not ok:
                result.differences += 1
                result.notes.append(f"load failed: {problems}")
                continue
            result.absorb(compare(clean, warehouse_checksums(data_dir)))
        results.append(result)
    return results
