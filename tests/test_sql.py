"""The warehouse from a shell: `altegio-loyalty sql` for scripts and `make sql` (Harlequin,
driven through a pseudo-terminal: open, run one query, quit), both read-only."""

import csv
import fcntl
import io
import json
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb
import pyte
import pytest

from assets.cli import run_load
from pipelines.altegio.sandbox import SandboxConfig, serve

ROOT = Path(__file__).resolve().parents[1]
CLI = Path(sys.executable).with_name("altegio-loyalty")
COUNT_SQL = "select count(*) as n from altegio.loyalty_transactions"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("sql-data")
    config = SandboxConfig(chains=2, start=date(2026, 1, 1), end=date(2026, 1, 4))
    with serve(config) as server:
        creds = server.credentials
        overrides = {
            "base_url": server.base_url,
            "partner_token": creds.partner_token,
            "user_token": creds.user_token,
            "rate_limit": "unlimited",
        }
        summary = run_load(config.start, config.end, str(path), altegio_overrides=overrides)
    assert summary.exit_code == 0
    yield path


def _count(data_dir: Path) -> int:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        row = con.execute(COUNT_SQL).fetchone()
    assert row is not None
    return int(row[0])


def sql(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None):
    return subprocess.run(
        [str(CLI), "sql", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env or dict(os.environ),
        timeout=120,
        check=False,
    )


def test_sql_prints_the_count_in_every_format(data_dir: Path) -> None:
    expected = _count(data_dir)
    assert expected > 0
    table = sql(COUNT_SQL, "--data-dir", str(data_dir))
    assert table.returncode == 0, table.stderr
    width = len(str(expected))
    assert table.stdout.split() == ["n", "-" * width, str(expected), "(1", "row)"]
    as_csv = sql(COUNT_SQL, "--data-dir", str(data_dir), "--format", "csv")
    assert list(csv.reader(io.StringIO(as_csv.stdout))) == [["n"], [str(expected)]]
    as_json = sql(COUNT_SQL, "--data-dir", str(data_dir), "--format", "json")
    assert json.loads(as_json.stdout) == [{"n": expected}]
    markdown = sql(COUNT_SQL, "--data-dir", str(data_dir), "--format", "markdown")
    assert markdown.stdout.splitlines() == ["| n |", "|---|", f"| {expected} |"]


def test_sql_finds_the_warehouse_from_the_variable_and_from_another_directory(
    data_dir: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "ALTEGIO_DATA_DIR": str(data_dir)}
    done = sql(COUNT_SQL, "--format", "csv", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["n", str(_count(data_dir))]


def test_sql_is_read_only_and_says_why_in_one_line(data_dir: Path, tmp_path: Path) -> None:
    before = (data_dir / "warehouse.duckdb").stat().st_mtime_ns
    refused = sql("drop table altegio.chains", "--data-dir", str(data_dir))
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1 and "read-only" in refused.stderr
    assert (data_dir / "warehouse.duckdb").stat().st_mtime_ns == before
    bad = sql("selec 1", "--data-dir", str(data_dir))
    assert bad.returncode == 1 and bad.stderr.startswith("sql: Parser Error")
    missing = sql("select 1", "--data-dir", str(tmp_path / "none"))
    assert missing.returncode == 2
    assert "no warehouse at" in missing.stderr and "Traceback" not in missing.stderr


class Terminal:
    """A program on a pseudo-terminal, its screen rendered by pyte."""

    COLUMNS, LINES = 140, 45

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.screen = pyte.Screen(self.COLUMNS, self.LINES)
        self.stream = pyte.ByteStream(self.screen)
        master, slave = pty.openpty()
        size = struct.pack("HHHH", self.LINES, self.COLUMNS, 0, 0)
        fcntl.ioctl(slave, termios.TIOCSWINSZ, size)
        self.master = master
        self.proc = subprocess.Popen(
            command,
            cwd=ROOT,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**env, "TERM": "xterm-256color"},
            start_new_session=True,
        )
        os.close(slave)

    def text(self) -> str:
        return "\n".join(self.screen.display)

    def pump(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    self.stream.feed(os.read(self.master, 65536))
                except OSError:  # the program closed the terminal
                    return

    def wait_for(self, text: str, bound_s: float = 180) -> None:
        end = time.monotonic() + bound_s
        while text not in self.text():
            assert self.proc.poll() is None, self.text()
            assert time.monotonic() < end, f"{text!r} never appeared:\n{self.text()}"
            self.pump(0.2)

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        os.close(self.master)


CTRL_J, CTRL_Q = b"\n", b"\x11"


@pytest.mark.xdist_group("make-sql")
def test_make_sql_opens_the_warehouse_read_only_runs_a_query_and_quits(
    data_dir: Path, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "ALTEGIO_DATA_DIR": str(data_dir),
        # Harlequin keeps its buffers and history per user: start from none.
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "XDG_DATA_HOME": str(tmp_path / "share"),
    }
    terminal = Terminal(["make", "-s", "sql"], env)
    try:
        terminal.wait_for("warehouse db")
        terminal.wait_for("Run Query")
        terminal.type(COUNT_SQL.encode())
        terminal.wait_for("loyalty_transactions")
        terminal.type(CTRL_J)
        terminal.wait_for("query executed successfully")
        assert f" {_count(data_dir)} " in terminal.text()
        terminal.type(CTRL_Q)
        terminal.proc.wait(timeout=60)
        assert terminal.proc.returncode == 0
    finally:
        terminal.close()
