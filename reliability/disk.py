"""Disk-full suite: a load into a data directory whose disk fills up part-way, then a rerun.

Each trial copies a complete previous load onto its own small tmpfs, fills that file system with
a filler file until only `headroom` bytes are free, and runs `altegio-loyalty load` again: with
almost no room it fails writing the lake, with room for the lake but not for a second warehouse
it fails in the publish. The load must fail with one line that says the disk is full, the
previous warehouse must still open and equal the clean run, and after the filler is removed a
rerun must complete with 0 differences and leave no temporaries. Mounting a tmpfs needs root
(the CI machine is root); elsewhere the scenario reports that it could not run, as a difference.
"""

import os
import subprocess
import tempfile
from pathlib import Path

from pipelines.storage.parquet import TMP_PREFIX
from pipelines.storage.warehouse import PUBLISH_TMP_PREFIX, WAREHOUSE_FILE
from reliability.common import Checksums, ScenarioResult, compare, warehouse_checksums
from reliability.procs import copy_tree, load_command, load_env, sandbox_process

SCENARIO = "disk full: ENOSPC + rerun"
SCENARIOS = (SCENARIO,)
LOAD_TIMEOUT_S = 300.0
DISK_FULL_LINE = "disk full"


def _tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def headrooms(clean_dir: Path) -> dict[str, int]:
    """Free bytes left to the load: none to speak of (the first lake write fails), and room for
    the lake's temporaries but not for a second copy of the warehouse (the publish fails)."""
    warehouse = (clean_dir / WAREHOUSE_FILE).stat().st_size
    return {"lake write": 16 * 1024, "publish": warehouse // 3}


def _run(base_url: str, data_dir: Path, work: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (our own entry point)
        load_command(),
        env=load_env(base_url, data_dir, work / "dagster-home-disk"),
        capture_output=True,
        text=True,
        timeout=LOAD_TIMEOUT_S,
        check=False,
    )


def _fill(mount: Path, headroom: int) -> Path:
    stat = os.statvfs(mount)
    free = stat.f_bavail * stat.f_frsize
    filler = mount / "filler"
    with open(filler, "wb") as handle:
        os.posix_fallocate(handle.fileno(), 0, max(free - headroom, 1))
    return filler


def _trial(
    name: str, headroom: int, clean: Checksums, clean_dir: Path, work: Path, base_url: str
) -> ScenarioResult:
    result = ScenarioResult(SCENARIO, trials=1)
    size = 3 * _tree_bytes(clean_dir) + 32 * 1024 * 1024
    with tempfile.TemporaryDirectory(dir=work, prefix="disk-") as tmp:
        mount = Path(tmp)
        options = f"size={size},mode=0700"
        subprocess.run(  # noqa: S603 (a fixed command on our own directory)
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)],  # noqa: S607
            check=True,
            capture_output=True,
        )
        try:
            data_dir = mount / "data"
            copy_tree(clean_dir, data_dir)
            filler = _fill(mount, headroom)
            full = _run(base_url, data_dir, work)
            result.faults += 1
            said = [line for line in full.stdout.splitlines() if DISK_FULL_LINE in line]
            if full.returncode == 0 or len(said) != 1:
                result.differences += 1
                result.notes.append(
                    f"{name}: exit {full.returncode}, {len(said)} disk-full lines "
                    f"(want exit != 0 and 1 line): {full.stdout[-400:]!r}"
                )
            # The previous warehouse: still readable, still the clean run's.
            result.absorb(compare(clean, warehouse_checksums(data_dir)))
            filler.unlink()
            rerun = _run(base_url, data_dir, work)
            if rerun.returncode != 0:
                result.differences += 1
                result.notes.append(f"{name}: rerun exited {rerun.returncode}")
            else:
                result.absorb(compare(clean, warehouse_checksums(data_dir)))
            temporaries = (TMP_PREFIX, PUBLISH_TMP_PREFIX)
            stale = [p for p in data_dir.rglob("*") if p.name.startswith(temporaries)]
            if stale:
                result.differences += len(stale)
                result.notes.append(f"{name}: {len(stale)} temporaries left by the rerun")
            if said:
                result.notes.append(f"{name}: said {said[0].strip()!r}")
        finally:
            subprocess.run(["umount", str(mount)], check=False)  # noqa: S603, S607
    return result


def run(clean: Checksums, clean_dir: Path, work: Path) -> list[ScenarioResult]:
    total = ScenarioResult(SCENARIO)
    if os.geteuid() != 0:
        total.differences += 1
        total.notes.append("not run: mounting a small tmpfs needs root")
        return [total]
    with sandbox_process() as base_url:
        for name, headroom in headrooms(clean_dir).items():
            one = _trial(name, headroom, clean, clean_dir, work, base_url)
            total.trials += one.trials
            total.faults += one.faults
            total.rows_compared += one.rows_compared
            total.differences += one.differences
            total.notes += one.notes
    return [total]
