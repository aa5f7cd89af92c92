"""Subprocess plumbing shared by the crash and concurrency suites: the sandbox as its own
process, `altegio-loyalty load` as its own process, reader processes."""

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipelines.altegio.sandbox.config import PARTNER_TOKEN, USER_TOKEN
from reliability.common import (
    LOAD_END,
    LOAD_START,
    PHONE_HASH_KEY_VARIABLE,
    SUITE_CONFIG,
    SUITE_PHONE_HASH_KEY,
    Checksums,
)

SANDBOX_READY_TIMEOUT_S = 60.0


@contextmanager
def sandbox_process() -> Iterator[str]:
    """`altegio-loyalty sandbox` serving `SUITE_CONFIG` on a free port; yields its base URL."""
    cfg = SUITE_CONFIG
    cmd = [
        sys.executable, "-m", "pipelines.altegio.sandbox.cli", "--port", "0",
        "--seed", str(cfg.seed), "--chains", str(cfg.chains),
        "--locations-per-chain", str(cfg.locations_per_chain),
        "--start", cfg.start.isoformat(), "--end", cfg.end.isoformat(),
        "--transactions-per-day", str(cfg.transactions_per_day),
        "--memberships-per-day", str(cfg.memberships_per_day),
    ]  # fmt: skip
    proc = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + SANDBOX_READY_TIMEOUT_S
        base_url = ""
        while time.monotonic() < deadline and not base_url:
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError("the sandbox process exited before serving")
            if "serving at" in line:
                base_url = line.rsplit(" ", 1)[-1].strip()
        if not base_url:
            raise RuntimeError("the sandbox process did not report its URL in time")
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def load_command() -> list[str]:
    """`altegio-loyalty load` for the suite's window (the installed script, else the module)."""
    script = Path(sys.executable).parent / "altegio-loyalty"
    head = [str(script)] if script.exists() else [sys.executable, "-m", "assets.cli"]
    return [*head, "load", "--start", LOAD_START.isoformat(), "--end", LOAD_END.isoformat()]


def load_env(base_url: str, data_dir: Path, dagster_home: Path) -> dict[str, str]:
    """The environment of a load process: the documented ALTEGIO_* variables only."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALTEGIO_")}
    env.update(
        ALTEGIO_BASE_URL=base_url,
        ALTEGIO_PARTNER_TOKEN=PARTNER_TOKEN,
        ALTEGIO_USER_TOKEN=USER_TOKEN,
        ALTEGIO_RATE_LIMIT="unlimited",
        ALTEGIO_DATA_DIR=str(data_dir),
        DAGSTER_HOME=str(dagster_home),
    )
    env[PHONE_HASH_KEY_VARIABLE] = SUITE_PHONE_HASH_KEY
    return env


def start_load(base_url: str, data_dir: Path, work: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 (our own entry point)
        load_command(),
        env=load_env(base_url, data_dir, work / "dagster-home"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


class Reader:
    """A `reliability.readers` process over one data directory."""

    def __init__(self, data_dir: Path, work: Path, expected: Checksums | None, tag: str) -> None:
        self.stop_file = work / f"stop-{tag}"
        self.out = work / f"reader-{tag}.json"
        args = [sys.executable, "-m", "reliability.readers", str(data_dir), str(self.stop_file)]
        args.append(str(self.out))
        if expected is not None:
            digests = work / f"expected-{tag}.json"
            digests.write_text(json.dumps({n: t.digest for n, t in expected.items()}))
            args.append(str(digests))
        self.stop_file.unlink(missing_ok=True)
        self.proc = subprocess.Popen(args)  # noqa: S603 (our own interpreter and module)

    def finish(self, timeout: float = 60.0) -> dict[str, Any]:
        self.stop_file.touch()
        code = self.proc.wait(timeout=timeout)
        if code != 0 or not self.out.exists():
            return {"snapshots": 0, "lake_files_read": 0, "errors": [f"reader exited {code}"],
                    "partial": [], "published_at": []}  # fmt: skip
        tallies: dict[str, Any] = json.loads(self.out.read_text())
        return tallies


def copy_tree(src: Path, dst: Path) -> None:
    """A previous night's complete data directory (keeps the private permissions)."""
    shutil.copytree(src, dst, symlinks=True)
