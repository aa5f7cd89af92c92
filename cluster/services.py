"""The processes of the cluster test, each on a free loopback port, each stopped on the way out.

PostgreSQL and Redis come from Debian packages (installed with apt-get when missing, as root,
saying so); the sandbox and the Celery workers are this repository's own commands. Every
process starts in its own session, so stopping one stops its children too, and `Services` (an
ExitStack) stops whatever was started, in reverse order, however the scenario ends.
"""

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 15.0
# Debian package -> a program it provides (found on PATH or under the PostgreSQL bin dirs).
DEBIAN_PACKAGES = {"redis-server": "redis-server", "postgresql": "initdb"}


def say(text: str) -> None:
    print(f"[cluster-test] {text}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _program(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    # PostgreSQL's server programs live in a versioned directory, off PATH.
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def program(name: str) -> str:
    found = _program(name)
    if found is None:
        raise RuntimeError(f"{name} not found after installing its package")
    return found


def ensure_debian_packages() -> None:
    """apt-get install the packages whose programs are missing (root only), saying so."""
    missing = [pkg for pkg, prog in DEBIAN_PACKAGES.items() if _program(prog) is None]
    if not missing:
        say(f"found {', '.join(DEBIAN_PACKAGES)}")
        return
    if os.geteuid() != 0:
        raise RuntimeError(
            f"missing Debian packages {missing}: run `sudo apt-get install {' '.join(missing)}` "
            "(the test installs them itself only as root)"
        )
    say(f"installing missing Debian packages: {' '.join(missing)} (apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)


@dataclass
class Process:
    """A started process (leader of its own session) and its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        """SIGTERM to its process group, then SIGKILL if it lingers."""
        if not self.alive():
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGTERM)
        try:
            self.popen.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.popen.wait(STOP_TIMEOUT_S)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Services(contextlib.ExitStack):
    """Everything the scenario started; leaving the block stops it all (reverse order)."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
        self.processes: list[Process] = []

    def start(
        self,
        name: str,
        argv: list[str],
        env: Mapping[str, str] | None = None,
        *,
        user: str | None = None,
        cwd: Path = REPO,
    ) -> Process:
        log = self.root / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        if user is not None:
            argv = ["runuser", "-u", user, "--", *argv]
        with log.open("wb") as out:
            popen = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
            )
        process = Process(name, popen, log)
        self.processes.append(process)
        self.callback(process.stop)
        return process

    def spawn(self, argv: list[str], env: Mapping[str, str]) -> subprocess.Popen[str]:
        """A short-lived command whose output the caller reads; killed on the way out if it
        is still running (with its children: its own session)."""
        popen = subprocess.Popen(
            argv,
            env=dict(env),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.callback(_kill_group, popen)
        return popen


def _kill_group(popen: "subprocess.Popen[Any]") -> None:
    if popen.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, signal.SIGKILL)
        popen.wait(STOP_TIMEOUT_S)


def stop_on_sigterm() -> None:
    """SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so every `Services` block stops
    what it started."""

    def _raise(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _raise)


def wait_until(what: str, ready: Callable[[], bool], process: Process | None = None) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process is not None and not process.alive():
            raise RuntimeError(f"{what} exited early:\n{process.tail()}")
        with contextlib.suppress(Exception):
            if ready():
                return
        time.sleep(0.3)
    tail = process.tail() if process is not None else ""
    raise RuntimeError(f"{what} not ready in {START_TIMEOUT_S:.0f} s\n{tail}")


def start_postgres(services: Services) -> str:
    """A throw-away PostgreSQL cluster on a free port; returns the database URL.

    PostgreSQL refuses to run as root: as root, its directory belongs to the `postgres` user
    the Debian package created and its programs run as that user."""
    user = "postgres" if os.geteuid() == 0 else None
    data = Path(tempfile.mkdtemp(prefix="altegio-cluster-pg-"))
    services.callback(shutil.rmtree, data, True)
    if user is not None:
        shutil.chown(data, user, user)
    port = free_port()
    initdb = [program("initdb"), "-D", str(data / "db"), "-U", "altegio", "--auth=trust"]
    subprocess.run(
        (["runuser", "-u", user, "--", *initdb] if user else initdb),
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "LC_ALL": "C.UTF-8"},
    )
    server = services.start(
        "postgres",
        [
            program("postgres"),
            "-D",
            str(data / "db"),
            "-p",
            str(port),
            "-k",
            str(data),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
        ],
        user=user,
    )

    def ready() -> bool:
        probe = [program("pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port)]
        return subprocess.run(probe, check=False).returncode == 0

    wait_until("PostgreSQL", ready, server)
    createdb = [program("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "altegio"]
    subprocess.run([*createdb, "dagster"], check=True)
    # dagster-postgres speaks psycopg2 (SQLAlchemy would pick psycopg 3 for plain postgresql://).
    return f"postgresql+psycopg2://altegio@127.0.0.1:{port}/dagster"


def start_redis(services: Services) -> int:
    """A Redis without persistence on a free port; returns the port."""
    port = free_port()
    directory = services.root / "redis"
    directory.mkdir()
    server = services.start(
        "redis",
        [
            program("redis-server"),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
        ],
    )

    def ready() -> bool:
        import redis

        return bool(redis.Redis(port=port, socket_timeout=2).ping())

    wait_until("Redis", ready, server)
    return port


def start_sandbox(services: Services, options: list[str]) -> str:
    """The sandbox as its own process (every worker reads the same API); returns its URL."""
    port = free_port()
    server = services.start(
        "sandbox",
        [str(VENV_BIN / "altegio-loyalty"), "sandbox", "--port", str(port), *options],
    )
    base_url = f"http://127.0.0.1:{port}/api/v1"
    wait_until(
        "sandbox", lambda: httpx.get(f"{base_url}/_sandbox/stats").status_code == 200, server
    )
    return base_url


def sandbox_stats(base_url: str) -> dict[str, Any]:
    stats: dict[str, Any] = httpx.get(f"{base_url}/_sandbox/stats", timeout=30).json()
    return stats


def reset_sandbox_stats(base_url: str) -> None:
    httpx.post(f"{base_url}/_sandbox/reset", timeout=30).raise_for_status()


def start_worker(services: Services, name: str, env: Mapping[str, str]) -> Process:
    """One Celery worker running one step at a time, as a worker machine would."""
    worker = services.start(
        f"worker-{name}",
        [
            str(VENV_BIN / "celery"),
            "-A",
            "assets.celery_worker",
            "worker",
            "-Q",
            "dagster",
            "-c",
            "1",
            "-n",
            f"{name}@%h",
            "--prefetch-multiplier=1",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "INFO",
        ],
        env,
    )
    wait_until(f"worker {name}", lambda: "ready." in worker.log.read_text(errors="replace"), worker)
    return worker
