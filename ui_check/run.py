"""`make ui-check`: the report and the Dagster UI, rendered by a real browser.

    python -m ui_check.run [--data-dir D]

1. Debian Chromium and chromedriver, installed with apt-get (as root) when missing.
2. A warehouse in the data directory (default `$ALTEGIO_DATA_DIR`, else `data/demo`); when
   there is none, `altegio-loyalty demo` fills it first.
3. A fresh Dagster home under `<data-dir>/ui-check/`; the warehouse asset is materialized
   into it (the publish writes `<data-dir>/report.html`, and the run's metadata names it).
4. `dagster-webserver` on a loopback port, on the project's workspace.
5. Headless Chromium with a fresh profile: the report opened from disk with every network
   request blocked, then the Dagster asset lineage page and the marts asset page. The checks
   read the rendered DOM (charts drawn by plotly.js, asset names drawn by the UI); screenshots
   go to `<data-dir>/ui-check/`.

Prints one line per check and exits 1 if any failed. Not part of `make test` (it needs apt).
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from ui_check.browser import chromium, ensure_chromium
from ui_check.checks import Checks, check_dagster, check_report

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = "data/demo"
WORK_DIR = "ui-check"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def ensure_warehouse(data_dir: Path) -> None:
    if (data_dir / "warehouse.duckdb").is_file():
        return
    print(f"no warehouse in {data_dir}: running `altegio-loyalty demo --data-dir {data_dir}`")
    subprocess.run([_bin("altegio-loyalty"), "demo", "--data-dir", str(data_dir)], check=True)  # noqa: S603


def materialize_marts(env: dict[str, str], log: Path) -> None:
    """One run of the warehouse asset recorded in the UI's instance (it writes the report)."""
    command = [_bin("dagster"), "asset", "materialize", "-m", "assets.definitions"]
    with log.open("w") as out:
        done = subprocess.run(  # noqa: S603
            [*command, "--select", "group:marts"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if done.returncode != 0:
        raise SystemExit(f"ui-check: materializing the marts failed, see {log}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ui-check", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("ALTEGIO_DATA_DIR") or DEFAULT_DATA_DIR),
        help="data directory holding the warehouse (default: $ALTEGIO_DATA_DIR or data/demo)",
    )
    args = parser.parse_args(argv)
    data_dir: Path = args.data_dir.resolve()

    print(ensure_chromium())
    ensure_warehouse(data_dir)
    work = data_dir / WORK_DIR
    shutil.rmtree(work, ignore_errors=True)
    (work / "dagster-home").mkdir(parents=True)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(work / "dagster-home"),
        "ALTEGIO_DATA_DIR": str(data_dir),
        "ALTEGIO_BASE_URL": os.environ.get("ALTEGIO_BASE_URL") or "sandbox",
    }
    print(f"materializing the marts into a fresh Dagster home ({work / 'dagster-home'})")
    materialize_marts(env, work / "materialize.log")

    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    print(f"starting dagster-webserver on {base_url}")
    webserver = subprocess.Popen(  # noqa: S603
        [_bin("dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO,
        env=env,
        stdout=(work / "webserver.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    checks = Checks()
    try:
        with chromium(work / "chromium-profile") as driver:
            check_report(driver, data_dir, work, checks)
            check_dagster(driver, base_url, webserver, work, checks)
    finally:
        webserver.terminate()
        try:
            webserver.wait(timeout=30)
        except subprocess.TimeoutExpired:
            webserver.kill()
            webserver.wait()
    print(checks.table())
    shots = sorted(path.name for path in work.glob("*.png"))
    print(f"screenshots in {work}: {', '.join(shots)}")
    print(f"ui-check: {checks.passed} of {len(checks.results)} checks passed")
    return 0 if checks.all_passed else 1


if __name__ == "__main__":
    sys.exit(main())
