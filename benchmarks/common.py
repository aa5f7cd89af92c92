"""What every benchmark process shares: the sandbox sizes, the child-process protocol."""

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from pipelines.altegio.endpoints import ACCEPT_HEADER, UNDOCUMENTED_REQUEST_PAGE_SIZE

SEED = 7
START = date(2025, 1, 1)
PAGE_SIZE = UNDOCUMENTED_REQUEST_PAGE_SIZE
PYTHON = sys.executable
RESULT_PREFIX = "BENCH-RESULT "


@dataclass(frozen=True)
class Size:
    """One sandbox size: `chains` x `days` chain-days of about `per_day` transactions each."""

    label: str
    chains: int
    days: int
    per_day: int
    memberships_per_day: int = 3

    @property
    def end(self) -> date:
        return START + timedelta(days=self.days - 1)

    def sandbox_args(self, rate_limit: float | None = None) -> list[str]:
        args = [
            "--seed", str(SEED),
            "--chains", str(self.chains),
            "--start", START.isoformat(),
            "--end", self.end.isoformat(),
            "--transactions-per-day", str(self.per_day),
            "--memberships-per-day", str(self.memberships_per_day),
        ]  # fmt: skip
        if rate_limit:
            args += ["--rate-limit", str(rate_limit)]
        return args

    def day_list(self) -> list[date]:
        return [START + timedelta(days=i) for i in range(self.days)]


def auth_header(partner_token: str, user_token: str) -> dict[str, str]:
    return {"Accept": ACCEPT_HEADER, "Authorization": f"Bearer {partner_token}, User {user_token}"}


def emit(result: dict[str, Any]) -> None:
    """A child's last stdout line: its result as JSON."""
    print(RESULT_PREFIX + json.dumps(result, default=str), flush=True)


@dataclass
class ChildRun:
    result: dict[str, Any]
    wall_s: float
    peak_rss_mb: float
    returncode: int
    stderr_tail: str


def run_child(module: str, args: list[str], timeout_s: float, log_dir: Path) -> ChildRun:
    """Run `python -m module args` and measure its wall time and peak RSS (its own, via
    wait4 on that one child: RUSAGE_CHILDREN would be the max over every child so far)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{module.rsplit('.', 1)[-1]}-{time.time_ns()}"
    stdout_path, stderr_path = log_dir / f"{stem}.out", log_dir / f"{stem}.log"
    with open(stdout_path, "w") as out, open(stderr_path, "w") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen([PYTHON, "-m", module, *args], stdout=out, stderr=err)
        deadline = t0 + timeout_s
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.01)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    result: dict[str, Any] = {}
    for line in stdout_path.read_text().splitlines():
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX) :])
    tail = stderr_path.read_text()[-2000:]
    return ChildRun(result, wall, usage.ru_maxrss / 1024, proc.returncode, tail)
