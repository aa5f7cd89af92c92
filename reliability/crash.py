"""Crash suite: SIGKILL `altegio-loyalty load` at random moments, rerun it, compare.

Each trial picks a phase in turn and a seeded random moment inside it: fetch (after 1-40 API
requests), write (up to 1.5 s after the first lake partition is replaced), publish (up to
0.25 s after the `.publish-*` build directory appears). It starts a load (from an empty
directory on even trials, from a copy of a complete previous load on odd ones), kills its
process group with SIGKILL at that moment, reruns the load to completion and compares the
published warehouse with the clean run. A reader process watches the directory throughout:
every snapshot it opens must be complete and equal to the clean run, and every final-named
Parquet file it reads must be whole.

Then the polite stop: SIGINT (Ctrl-C) and SIGTERM in turn, sent to the load's process group
at a random moment of each phase in turn; the load must exit 130 / 143 within STOP_TIMEOUT_S
(no step retried) and a rerun must publish what the clean run did.
"""

import contextlib
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import httpx

from pipelines.storage.parquet import TMP_PREFIX
from pipelines.storage.warehouse import PUBLISH_TMP_PREFIX
from reliability.common import Checksums, ScenarioResult, compare, warehouse_checksums
from reliability.procs import Reader, copy_tree, sandbox_process, start_load

SEED = 20260101
PHASES = ("fetch", "write", "publish")
POLL_S = 0.01
LOAD_TIMEOUT_S = 300.0


def _phase(data_dir: Path, since: float) -> str:
    if any(p.name.startswith(PUBLISH_TMP_PREFIX) for p in _entries(data_dir)):
        return "publish"
    lake = data_dir / "parquet"
    if lake.exists():
        for path in lake.rglob("*"):
            try:
                if path.is_file() and path.stat().st_mtime >= since:
                    return "write"
            except FileNotFoundError:
                continue
    return "fetch"


def _entries(path: Path) -> list[Path]:
    try:
        return list(path.iterdir())
    except FileNotFoundError:
        return []


def _requests(base_url: str) -> int:
    stats = httpx.get(base_url.split("/api/")[0] + "/_sandbox/stats", timeout=5).json()
    return int(stats.get("total_requests", 0))


def _watch(
    proc: subprocess.Popen[bytes],
    data_dir: Path,
    until: float | None,
    base_url: str = "",
    after_requests: int | None = None,
    reached: str | None = None,
) -> tuple[str, dict[str, float]]:
    """Poll the directory until `until` (monotonic), until the sandbox has answered
    `after_requests` more requests, until phase `reached` begins, or the process ends; the
    furthest phase seen and when each phase was first seen (seconds after start)."""
    start = time.monotonic()
    wall_start = time.time() - 1.0  # mtime granularity slack
    base = _requests(base_url) if after_requests is not None else 0
    seen: dict[str, float] = {}
    furthest = "fetch"
    while proc.poll() is None and (until is None or time.monotonic() < until):
        if after_requests is not None and _requests(base_url) - base >= after_requests:
            break
        phase = _phase(data_dir, wall_start)
        if PHASES.index(phase) > PHASES.index(furthest):
            furthest = phase
        seen.setdefault(phase, time.monotonic() - start)
        if reached is not None and PHASES.index(furthest) >= PHASES.index(reached):
            break
        time.sleep(POLL_S)
    return furthest, seen


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


# Stop signals as a terminal (Ctrl-C: SIGINT to the process group) or a supervisor (SIGTERM)
# sends them, each at a moment of each phase; the load must exit 128 + signal number.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Far above a load that honours the signal (about a second), far below the 30 s step retry
# an interrupted step used to get.
STOP_TIMEOUT_S = 20.0

# The rows this suite reports.
SCENARIOS = (
    "crash: SIGKILL + rerun",
    "crash: readers during kills",
    "crash: SIGINT/SIGTERM + rerun",
)


def run(
    clean: Checksums, clean_dir: Path, work: Path, trials: int, seed: int = SEED
) -> list[ScenarioResult]:
    """`trials` kill-and-rerun trials, phases in turn. A fetch kill comes after a random
    number of API requests; a write kill at a random moment up to 1.5 s after the first lake
    file is replaced; a publish kill up to 0.25 s after the publish build directory appears."""
    rng = random.Random(seed)  # noqa: S311 (reproducible kill times, not security)
    result, readers, stops = (ScenarioResult(name) for name in SCENARIOS)
    by_phase = {p: 0 for p in (*PHASES, "finished")}
    rows = sum(len(t.rows) for t in clean.values())
    with sandbox_process() as base_url:
        for trial in range(trials):
            target = PHASES[trial % len(PHASES)]
            data_dir = work / f"crash-{trial}"
            if trial % 2:
                copy_tree(clean_dir, data_dir)  # a complete previous load
            reader = Reader(data_dir, work, clean, f"crash-{trial}")
            proc = start_load(base_url, data_dir, work)
            if target == "fetch":
                phase, _ = _watch(proc, data_dir, None, base_url, rng.randint(1, 40))
            else:
                # Wait for the phase to begin, then kill at a random moment inside it.
                phase, _ = _watch(proc, data_dir, None, reached=target)
                delay = rng.uniform(0.0, 1.5 if target == "write" else 0.25)
                later, _ = _watch(proc, data_dir, time.monotonic() + delay)
                phase = max(phase, later, key=PHASES.index)
            phase = target  # kills are reported by their trigger
            if proc.poll() is None:
                _kill(proc)
                result.faults += 1
            else:
                phase = "finished"
            by_phase[phase] += 1
            rerun = start_load(base_url, data_dir, work)
            code = rerun.wait(timeout=LOAD_TIMEOUT_S)
            tallies = reader.finish()
            result.trials += 1
            if code != 0:
                result.differences += 1
                result.notes.append(f"trial {trial}: rerun exited {code}")
            else:
                result.absorb(compare(clean, warehouse_checksums(data_dir)))
            stale = [
                p
                for p in data_dir.rglob("*")
                if p.name.startswith((TMP_PREFIX, PUBLISH_TMP_PREFIX))
            ]
            if stale:
                result.differences += len(stale)
                result.notes.append(f"trial {trial}: {len(stale)} temporaries left by the rerun")
            readers.trials += 1
            readers.faults += 1 if phase != "finished" else 0
            readers.rows_compared += int(tallies["snapshots"]) * rows
            bad = tallies["errors"] + tallies["partial"]
            readers.differences += len(bad)
            if bad:
                readers.notes.append(f"trial {trial}: {bad[:3]}")
        _signal_trials(stops, clean, base_url, work, rng, trials=min(trials, 2 * len(PHASES)))
    result.notes.insert(
        0, "kills by trigger: " + ", ".join(f"{p} {n}" for p, n in by_phase.items())
    )
    return [result, readers, stops]


def _signal_trials(
    result: ScenarioResult,
    clean: Checksums,
    base_url: str,
    work: Path,
    rng: random.Random,
    trials: int,
) -> None:
    """SIGINT and SIGTERM, in turn, at a random moment of each phase in turn: the load exits
    128 + signal within STOP_TIMEOUT_S, and a rerun publishes what a clean run does."""
    stop_times: list[float] = []
    for trial in range(trials):
        signum = STOP_SIGNALS[trial % len(STOP_SIGNALS)]
        target = PHASES[trial % len(PHASES)]
        data_dir = work / f"signal-{trial}"
        proc = start_load(base_url, data_dir, work)
        if target == "fetch":
            _watch(proc, data_dir, None, base_url, rng.randint(1, 40))
        else:
            _watch(proc, data_dir, None, reached=target)
            _watch(proc, data_dir, time.monotonic() + rng.uniform(0.0, 0.25))
        result.trials += 1
        label = f"trial {trial} ({signal.Signals(signum).name} in {target})"
        if proc.poll() is not None:
            result.notes.append(f"{label}: finished before the signal")
        else:
            sent = time.monotonic()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signum)
            try:
                code = proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                _kill(proc)
                code = None
            stop_times.append(time.monotonic() - sent)
            result.faults += 1
            if code != 128 + signum:
                result.differences += 1
                result.notes.append(f"{label}: exited {code}, expected {128 + signum}")
        rerun = start_load(base_url, data_dir, work)
        code = rerun.wait(timeout=LOAD_TIMEOUT_S)
        if code != 0:
            result.differences += 1
            result.notes.append(f"{label}: rerun exited {code}")
            continue
        result.absorb(compare(clean, warehouse_checksums(data_dir)))
    if stop_times:
        result.notes.insert(
            0,
            f"signal to exit: max {max(stop_times):.1f} s, "
            f"mean {sum(stop_times) / len(stop_times):.1f} s over {len(stop_times)} signals",
        )
