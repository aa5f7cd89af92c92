"""`make cluster-test`: the nightly job on a real (loopback) cluster against a single-machine load.

1. PostgreSQL and Redis (Debian packages, installed when missing), the sandbox as its own
   process, accepting two API identities.
2. The single-machine load: the nightly job over the range with one identity, on a SQLite
   instance with Dagster's default executor (what runs without any new variable).
3. A clean cluster load: the same job on the PostgreSQL instance with the celery executor, two
   Celery workers, two identities, their rate budgets in Redis.
4. The same again into a fresh lake, but the worker process running the transactions step is
   killed with SIGKILL mid-step (the worker reports the step lost and the run fails); the run
   is then re-executed from failure.
5. Both cluster warehouses compared row by row with the single-machine one: 0 differences
   expected. Figures printed; everything started is stopped, also on failure.
"""

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from cluster.services import (
    REPO,
    VENV_BIN,
    Process,
    Services,
    ensure_debian_packages,
    reset_sandbox_stats,
    sandbox_stats,
    say,
    start_postgres,
    start_redis,
    start_sandbox,
    start_worker,
    stop_on_sigterm,
)
from pipelines.altegio.sandbox.config import SandboxCredentials
from reliability.common import compare, warehouse_checksums

START, END = "2026-01-01", "2026-01-14"
SANDBOX_OPTIONS = [
    "--seed", "19", "--chains", "4", "--locations-per-chain", "2",
    "--start", START, "--end", END, "--transactions-per-day", "40", "--identities", "2",
]  # fmt: skip
IDENTITIES = ("one", "two")
# Requests per second of each identity's budget: low enough that the API, not the machinery,
# sets the pace, as against the real API.
RATE_LIMIT = "4"
PHONE_HASH_KEY = "cluster-test-phone-hash-key"
KILLED_STEP = "loyalty_transactions"
# The kill waits until the step has made this many transaction requests: mid-step, not before.
KILL_AFTER_REQUESTS = 15
RUN_TIMEOUT_S = 900.0
PASSTHROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")


@dataclass
class Load:
    """One load: its wall time, the sandbox's counts, its runs."""

    name: str
    seconds: float = 0.0
    requests: int = 0
    by_identity: dict[str, int] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)


def clean_environment() -> dict[str, str]:
    """The caller's basics, none of its ALTEGIO_* or DAGSTER_* settings."""
    return {k: v for k, v in os.environ.items() if k in PASSTHROUGH}


def single_machine_env(root: Path, base_url: str) -> dict[str, str]:
    first = SandboxCredentials().numbered(1)
    home = root / "single-home"
    home.mkdir()
    return {
        **clean_environment(),
        "DAGSTER_HOME": str(home),
        "ALTEGIO_BASE_URL": base_url,
        "ALTEGIO_PARTNER_TOKEN": first.partner_token,
        "ALTEGIO_USER_TOKEN": first.user_token,
        "ALTEGIO_RATE_LIMIT": RATE_LIMIT,
        "ALTEGIO_DATA_DIR": str(root / "single"),
        "ALTEGIO_PHONE_HASH_KEY": PHONE_HASH_KEY,
    }


def cluster_env(root: Path, base_url: str, pg_url: str, redis_port: int) -> dict[str, str]:
    home = root / "cluster-home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    env = {
        **clean_environment(),
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_URL": pg_url,
        "ALTEGIO_BASE_URL": base_url,
        "ALTEGIO_IDENTITIES": ",".join(IDENTITIES),
        "ALTEGIO_RATE_LIMIT": RATE_LIMIT,
        "ALTEGIO_RATE_BUDGET_URL": f"redis://127.0.0.1:{redis_port}/1",
        "ALTEGIO_EXECUTOR": "celery",
        "ALTEGIO_CELERY_BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
        "ALTEGIO_PHONE_HASH_KEY": PHONE_HASH_KEY,
        # Every machine mounts the lake at the same path (the steps run in the workers).
        "ALTEGIO_DATA_DIR": str(root / "cluster-lake"),
    }
    for number, name in enumerate(IDENTITIES, start=1):
        creds = SandboxCredentials().numbered(number)
        env[f"ALTEGIO_IDENTITY_{name.upper()}_PARTNER_TOKEN"] = creds.partner_token
        env[f"ALTEGIO_IDENTITY_{name.upper()}_USER_TOKEN"] = creds.user_token
    return env


_services: list[Services] = []


def launch(env: Mapping[str, str], *args: str) -> subprocess.Popen[str]:
    """`python -m cluster.launch ARGS` (stopped with everything else if still running)."""
    return _services[0].spawn([str(VENV_BIN / "python"), "-m", "cluster.launch", *args], env)


def finish(process: subprocess.Popen[str], what: str) -> dict[str, Any]:
    out, err = process.communicate(timeout=RUN_TIMEOUT_S)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"{what}: no result (exit {process.returncode})\n{err[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    say(f"{what}: run {result['run_id'][:8]} {result['status']} in {result['seconds']} s")
    for failure in result["failures"]:
        say(f"  {failure}")
    return result


def load(name: str, env: Mapping[str, str], base_url: str) -> Load:
    """The nightly job over the range, as one uninterrupted run."""
    reset_sandbox_stats(base_url)
    started = time.monotonic()
    result = finish(launch(env, "run", "--start", START, "--end", END), name)
    measured = Load(name, time.monotonic() - started, runs=[result])
    if not result["success"]:
        raise RuntimeError(f"{name} failed: {result}")
    count_requests(measured, base_url)
    return measured


def count_requests(measured: Load, base_url: str) -> None:
    stats = sandbox_stats(base_url)
    measured.requests = int(stats["total_requests"])
    measured.by_identity = {
        IDENTITIES[int(k) - 1]: v for k, v in stats["requests_by_identity"].items()
    }


def newest_run_id(env: Mapping[str, str], since: float) -> str | None:
    instance = instance_of(env)
    runs = instance.get_run_records(limit=1)
    if runs and runs[0].create_timestamp.timestamp() >= since:
        return str(runs[0].dagster_run.run_id)
    return None


_instances: dict[str, Any] = {}


def instance_of(env: Mapping[str, str]) -> Any:
    """The cluster's Dagster instance, opened here (on PostgreSQL) to watch runs."""
    import dagster as dg

    home = env["DAGSTER_HOME"]
    if home not in _instances:
        os.environ["DAGSTER_PG_URL"] = env["DAGSTER_PG_URL"]
        _instances[home] = dg.DagsterInstance.from_config(home)
    return _instances[home]


def worker_running(env: Mapping[str, str], run_id: str, step: str) -> str | None:
    """The Celery worker (hostname) that started `step` of the run, once it has."""
    instance = instance_of(env)
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or event.step_key != step or not event.is_engine_event:
            continue
        metadata = event.engine_event_data.metadata
        if "Celery worker" in metadata:
            return str(metadata["Celery worker"].value)
    return None


def kill_mid_step(
    env: Mapping[str, str], base_url: str, workers: Mapping[str, Process]
) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """Start the run; once a worker is deep in KILLED_STEP, SIGKILL the process running it."""
    since = time.time() - 1
    process = launch(env, "run", "--start", START, "--end", END)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    run_id = hostname = None
    while time.monotonic() < deadline and process.poll() is None:
        run_id = run_id or newest_run_id(env, since)
        if run_id is not None:
            hostname = hostname or worker_running(env, run_id, KILLED_STEP)
        done = sandbox_stats(base_url)["requests"].get("transactions", {})
        if hostname is not None and sum(done.values()) >= KILL_AFTER_REQUESTS:
            break
        time.sleep(0.2)
    else:
        raise RuntimeError("the run ended (or timed out) before the kill: nothing was killed")
    assert run_id is not None and hostname is not None
    worker = workers[hostname.split("@")[0]]
    children = psutil.Process(worker.pid).children()
    if len(children) != 1:
        raise RuntimeError(f"worker {hostname}: expected one pool process, found {children}")
    victim = children[0].pid
    done = sum(sandbox_stats(base_url)["requests"].get("transactions", {}).values())
    os.kill(victim, signal.SIGKILL)
    say(f"SIGKILL to pid {victim}, {hostname}'s process running {KILLED_STEP} ({done} requests in)")
    return process, {"worker": hostname, "pid": victim, "step_requests_before_kill": done}


def killed_and_retried(
    env: Mapping[str, str], base_url: str, workers: Mapping[str, Process]
) -> tuple[Load, dict[str, Any]]:
    reset_sandbox_stats(base_url)
    started = time.monotonic()
    process, kill = kill_mid_step(env, base_url, workers)
    first = finish(process, "cluster load, worker killed")
    if first["success"]:
        raise RuntimeError("the run succeeded although its step's worker process was killed")
    kill["failed_run_s"] = round(time.monotonic() - started, 1)
    kill["worker_survived"] = workers[kill["worker"].split("@")[0]].alive()
    retried_at = time.monotonic()
    retry = finish(launch(env, "retry", first["run_id"]), "cluster load, retried")
    if not retry["success"]:
        raise RuntimeError(f"the retried run failed: {retry}")
    kill["retry_s"] = round(time.monotonic() - retried_at, 1)
    kill["retried_steps"] = retried_steps(env, retry["run_id"])
    measured = Load("cluster, killed + retried", time.monotonic() - started, runs=[first, retry])
    count_requests(measured, base_url)
    return measured, kill


def retried_steps(env: Mapping[str, str], run_id: str) -> list[str]:
    instance = instance_of(env)
    return sorted(
        {
            record.dagster_event.step_key
            for record in instance.all_logs(run_id)
            if record.dagster_event is not None
            and record.dagster_event.event_type_value == "STEP_SUCCESS"
            and record.dagster_event.step_key
        }
    )


BUDGET_RATE = 20.0
BUDGET_SLOTS = 25


def budget_check(env: Mapping[str, str]) -> dict[str, Any]:
    """Two processes take slots of one identity's budget in Redis at once: every slot is at
    least 1/rate after the one before, whichever process took it (times on the Redis clock)."""
    url = env["ALTEGIO_RATE_BUDGET_URL"]
    probes = [
        _services[0].spawn(
            [str(VENV_BIN / "python"), "-m", "cluster.budget_probe", url, "check", str(BUDGET_RATE),
             str(BUDGET_SLOTS)],
            env,
        )
        for _ in range(2)
    ]  # fmt: skip
    slots = sorted(s for p in probes for s in json.loads(p.communicate(timeout=120)[0]))
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    result = {"slots": len(slots), "min_gap_ms": round(min(gaps) * 1000, 2)}
    # A float's rounding, not a looser rate: the slots are computed, not measured.
    if min(gaps) < (1 / BUDGET_RATE) * (1 - 1e-6):
        raise RuntimeError(f"two processes shared one Redis budget unevenly: {result}")
    return result


def report(
    loads: list[Load], comparisons: dict[str, Any], kill: dict[str, Any], budget: dict[str, Any]
) -> None:
    single = loads[0]
    print()
    print(f"cluster test, range {START}..{END}, rate {RATE_LIMIT} req/s per identity")
    print(f"{'load':<30} {'wall s':>8} {'vs single':>10} {'requests':>9}  per identity")
    for measured in loads:
        ratio = measured.seconds / single.seconds
        split = ", ".join(f"{k} {v}" for k, v in sorted(measured.by_identity.items()))
        print(
            f"{measured.name:<30} {measured.seconds:>8.1f} {ratio:>9.2f}x "
            f"{measured.requests:>9}  {split}"
        )
    for name, comparison in comparisons.items():
        print(
            f"{name}: {comparison.rows_compared} rows compared with the single-machine load, "
            f"{comparison.differences} differences"
            + (f" ({', '.join(comparison.tables_differing)})" if comparison.differences else "")
        )
    print(
        f"Redis budget: {budget['slots']} slots taken by 2 processes at {BUDGET_RATE:.0f}/s, "
        f"closest two {budget['min_gap_ms']} ms apart (1/rate = {1000 / BUDGET_RATE:.0f} ms)"
    )
    clean, killed = loads[1], loads[2]
    print(
        f"the kill: SIGKILL to {kill['worker']}'s pool process (pid {kill['pid']}) after "
        f"{kill['step_requests_before_kill']} transaction requests; the worker "
        f"{'lived on' if kill['worker_survived'] else 'died'}; the run failed after "
        f"{kill['failed_run_s']} s; the retry re-ran {', '.join(kill['retried_steps'])} in "
        f"{kill['retry_s']} s"
    )
    print(
        f"what the killed worker cost against the clean cluster load: "
        f"{killed.seconds - clean.seconds:+.1f} s, {killed.requests - clean.requests:+d} requests"
    )


def main() -> int:
    try:
        import dagster_celery  # noqa: F401
        import redis  # noqa: F401
    except ImportError:
        say("the cluster dependency group is missing: run `make cluster-test` (it syncs it)")
        return 2
    ensure_debian_packages()
    root = Path(tempfile.mkdtemp(prefix="altegio-cluster-"))
    say(f"working in {root}")
    services = Services(root)
    _services.append(services)
    stop_on_sigterm()
    try:
        with services:
            pg_url = start_postgres(services)
            redis_port = start_redis(services)
            base_url = start_sandbox(services, SANDBOX_OPTIONS)
            say(f"PostgreSQL, Redis :{redis_port} and the sandbox {base_url} are up")
            loads = [load("single machine", single_machine_env(root, base_url), base_url)]
            env = cluster_env(root, base_url, pg_url, redis_port)
            instance_of(env)  # creates the instance's tables before any worker opens it
            workers = {name: start_worker(services, name, env) for name in ("w1", "w2")}
            say("two Celery workers are ready")
            lake = Path(env["ALTEGIO_DATA_DIR"])
            single = warehouse_checksums(root / "single")
            loads.append(load("cluster, clean", env, base_url))
            comparisons = {"cluster, clean": compare(single, warehouse_checksums(lake))}
            # The same load again from nothing: an empty lake, the kill, the retry.
            shutil.rmtree(lake)
            killed, kill = killed_and_retried(env, base_url, workers)
            loads.append(killed)
            comparisons["cluster, killed + retried"] = compare(single, warehouse_checksums(lake))
            report(loads, comparisons, kill, budget_check(env))
    except BaseException:
        for process in services.processes:
            say(f"last lines of {process.name} ({process.log}):\n{process.tail()}")
        say(f"FAILED; everything was stopped, the logs and data stay in {root}")
        raise
    finally:
        for instance in _instances.values():
            instance.dispose()
    shutil.rmtree(root, ignore_errors=True)
    differences = sum(c.differences for c in comparisons.values())
    print(f"cluster-test: {'passed' if differences == 0 else 'FAILED'} ({differences} differences)")
    return 0 if differences == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
