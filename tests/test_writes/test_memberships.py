"""`altegio-loyalty memberships ...` against the sandbox's write endpoints: the selected
memberships change and no others, a second run does nothing, a killed apply resumes with
every operation reaching the sandbox exactly once, and the journal says so."""

import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from assets.cli import main, run_load
from pipelines.altegio.sandbox import (
    Faults,
    SandboxConfig,
    SandboxCredentials,
    SandboxServer,
    serve,
)
from pipelines.writes.journal import JOURNAL_FILE, Journal
from tests.conftest import python_env, sandbox_altegio_client

START, END = date(2026, 1, 1), date(2026, 1, 14)
CANARIES = ("canary-partner-7f3a", "canary-user-91bc")
SANDBOX_CONFIG = SandboxConfig(
    seed=11,
    chains=2,
    start=START,
    end=END,
    transactions_per_day=5,
    memberships_per_day=10,
    credentials=SandboxCredentials(partner_token=CANARIES[0], user_token=CANARIES[1]),
)
pytestmark = pytest.mark.xdist_group("writes_memberships")


def api_env(server: SandboxServer, data_dir: Path, rate: str = "unlimited") -> dict[str, str]:
    return {
        "ALTEGIO_BASE_URL": server.base_url,
        "ALTEGIO_PARTNER_TOKEN": server.credentials.partner_token,
        "ALTEGIO_USER_TOKEN": server.credentials.user_token,
        "ALTEGIO_RATE_LIMIT": rate,
        "ALTEGIO_DATA_DIR": str(data_dir),
        "ALTEGIO_PHONE_HASH_KEY": "test-writes-phone-hash-key",
    }


@pytest.fixture(scope="module")
def loaded(sandbox: SandboxServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with the sandbox's range loaded and published."""
    data_dir = tmp_path_factory.mktemp("writes")
    overrides = {k: v for k, v in api_env(sandbox, data_dir).items()}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in overrides.items():
            mp.setenv(key, value)
        summary = run_load(START, END, str(data_dir))
    assert summary.exit_code == 0, summary
    return data_dir


@pytest.fixture
def cli(sandbox: SandboxServer, loaded: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any):
    for key, value in api_env(sandbox, loaded).items():
        monkeypatch.setenv(key, value)

    def run(*argv: str) -> tuple[int, str]:
        code = main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    return run


def chain_id(server: SandboxServer) -> int:
    return server.dataset.chain_ids()[1]


def today(server: SandboxServer) -> date:
    return server.dataset.clock.today


def read_by_ids(server: SandboxServer, tmp_path: Path, ids: list[int]) -> dict[int, Any]:
    with sandbox_altegio_client(server, tmp_path) as client:
        return {
            int(r["id"]): r
            for page in client.list_memberships_by_ids(chain_id(server), ids)
            for r in page.records
        }


def writes_of(server: SandboxServer, operation: str) -> list[dict[str, Any]]:
    return [e for e in server.requests.entries() if e["operation"] == operation]


def warehouse(data_dir: Path, sql: str) -> list[Any]:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def freezable_query(chain: int, limit: int, offset: int = 0, unfrozen: bool = True) -> str:
    """Memberships whose type allows a freeze of 10 days and more. Without `unfrozen` the
    selection does not change when they freeze (a rerun selects the same ones)."""
    frozen = "AND NOT m.is_frozen " if unfrozen else ""
    return (
        f"SELECT m.id FROM altegio.memberships m JOIN altegio.membership_types t "
        f"ON t.chain_id = m.chain_id AND t.id = m.membership_type_id "
        f"WHERE m.chain_id = {chain} AND m.status_id IN (1, 2) {frozen}"
        f"AND t.allow_freeze AND (t.freeze_limit = 0 OR t.freeze_limit_unit_id > 1 "
        f"OR t.freeze_limit >= 10) ORDER BY m.id LIMIT {limit} OFFSET {offset}"
    )


def ids_of(data_dir: Path, sql: str) -> list[int]:
    return [int(row[0]) for row in warehouse(data_dir, sql)]


def no_canary(*texts: str | bytes) -> None:
    for text in texts:
        data = text.encode() if isinstance(text, str) else text
        for canary in CANARIES:
            assert canary.encode() not in data


# ---------------------------------------------------------------- freeze, extend, set-balance


def test_freeze_by_query_freezes_exactly_the_selection_and_a_second_run_does_nothing(
    sandbox, loaded, cli, tmp_path
):
    chain = chain_id(sandbox)
    query = freezable_query(chain, 4, unfrozen=False)
    selected = ids_of(loaded, query)
    unfrozen = [
        i for i, m in read_by_ids(sandbox, tmp_path, selected).items() if not m["is_frozen"]
    ]
    assert len(selected) == 4 and len(unfrozen) >= 3
    others = [m["id"] for m in sandbox.dataset.live_memberships(chain) if m["id"] not in selected]
    frozen_before = {i for i, m in read_by_ids(sandbox, tmp_path, others).items() if m["is_frozen"]}
    till = (today(sandbox) + timedelta(days=5)).isoformat()
    args = ["memberships", "freeze", "--chain", str(chain), "--query", query, "--till", till]
    args += ["--today", today(sandbox).isoformat()]
    sandbox.reset_stats()

    code, dry = cli(*args)
    assert code == 0, dry
    assert "Dry run" in dry and f"{len(unfrozen)} to change" in dry
    assert writes_of(sandbox, "membership_freeze") == []

    code, out = cli(*args, "--apply")
    assert code == 0, out
    after = read_by_ids(sandbox, tmp_path, selected)
    assert all(after[i]["is_frozen"] for i in selected)
    assert {i for i, m in read_by_ids(sandbox, tmp_path, others).items() if m["is_frozen"]} == (
        frozen_before
    )
    freezes = writes_of(sandbox, "membership_freeze")
    assert sorted(int(e["path"].split("/")[-2]) for e in freezes) == sorted(unfrozen)
    # The warehouse shows the change at once, and the journal table says who did what.
    id_list = ",".join(map(str, selected))
    assert warehouse(
        loaded, f"SELECT bool_and(is_frozen) FROM altegio.memberships WHERE id IN ({id_list})"
    ) == [(True,)]
    rows = warehouse(
        loaded,
        "SELECT target_id, status, command FROM altegio.operations_journal "
        "WHERE operation = 'membership_freeze'",
    )
    assert sorted(r[0] for r in rows) == sorted(unfrozen)
    assert {r[1] for r in rows} == {"applied"} and {r[2] for r in rows} == {"memberships freeze"}

    code, again = cli(*args, "--apply")
    assert code == 0, again
    assert "nothing to do" in again or "Nothing to apply" in again
    assert len(writes_of(sandbox, "membership_freeze")) == len(unfrozen)
    no_canary(dry, out, again, (loaded / JOURNAL_FILE).read_bytes())


def test_extend_and_set_balance_change_the_selection_once(sandbox, loaded, cli, tmp_path):
    chain = chain_id(sandbox)
    query = (
        f"SELECT id FROM altegio.memberships WHERE chain_id = {chain} AND period_unit_id = 3 "
        "AND period > 0 ORDER BY id DESC LIMIT 3"
    )
    selected = ids_of(loaded, query)
    assert len(selected) == 3
    before = read_by_ids(sandbox, tmp_path, selected)
    args = ["memberships", "extend", "--chain", str(chain), "--query", query]
    args += ["--period", "2", "--unit", "week", "--apply"]
    sandbox.reset_stats()
    code, out = cli(*args)
    assert code == 0, out
    after = read_by_ids(sandbox, tmp_path, selected)
    for i in selected:
        # 3 months and 2 weeks: months count 30 days, so the period becomes days.
        assert (after[i]["period"], after[i]["period_unit_id"]) == (
            before[i]["period"] * 30 + 14,
            1,
        )
    code, again = cli(*args)
    assert code == 0 and "nothing to do" in again
    assert len(writes_of(sandbox, "membership_set_period")) == 3

    balance_query = (
        f"SELECT m.id FROM altegio.memberships m JOIN altegio.membership_types t "
        f"ON t.chain_id = m.chain_id AND t.id = m.membership_type_id WHERE m.chain_id = {chain} "
        "AND m.is_united_balance AND NOT m.is_united_balance_unlimited "
        "AND t.balance_edit_type_id > 0 AND m.united_balance_services_count <> 3 "
        "ORDER BY m.id LIMIT 3"
    )
    targets = ids_of(loaded, balance_query)
    assert targets
    args = ["memberships", "set-balance", "--chain", str(chain), "--ids"]
    args += [",".join(map(str, targets)), "--visits", "3", "--apply"]
    code, out = cli(*args)
    assert code == 0, out
    assert {
        m["united_balance_services_count"] for m in read_by_ids(sandbox, tmp_path, targets).values()
    } == {3}
    code, again = cli(*args)
    assert code == 0
    assert len(writes_of(sandbox, "membership_set_balance")) == len(targets)
    id_list = ",".join(map(str, targets))
    assert warehouse(
        loaded,
        f"SELECT DISTINCT united_balance_services_count FROM altegio.memberships "
        f"WHERE id IN ({id_list})",
    ) == [(3,)]


def test_a_refusal_stops_the_apply_with_the_api_message(sandbox, loaded, cli, tmp_path):
    chain = chain_id(sandbox)
    targets = ids_of(loaded, freezable_query(chain, 3, offset=10))
    assert len(targets) == 3
    sandbox.reset_stats()
    # Told that today is a day earlier than the API's today, the local check lets a freeze
    # "till today" through; the API refuses it (422) and the apply stops there.
    args = ["memberships", "freeze", "--chain", str(chain), "--ids", ",".join(map(str, targets))]
    args += ["--till", today(sandbox).isoformat()]
    args += ["--today", (today(sandbox) - timedelta(days=1)).isoformat(), "--apply"]
    code, out = cli(*args)
    assert code == 1
    assert "STOPPED at membership_freeze:" in out
    assert "The freeze till must be a date after today." in out
    assert len(writes_of(sandbox, "membership_freeze")) == 1
    assert not any(m["is_frozen"] for m in read_by_ids(sandbox, tmp_path, targets).values())
    refused = [r for r in Journal(loaded).records() if r.get("status") == "refused"]
    assert refused and "The freeze till must be a date after today." in refused[-1]["message"]
    no_canary(out, (loaded / JOURNAL_FILE).read_bytes())


def test_an_unknown_outcome_left_by_a_crash_is_resolved_by_a_read_back(
    sandbox, loaded, cli, tmp_path
):
    """A crash between the request and its outcome record: the rerun reads back, and an
    extension (relative) is not applied a second time."""
    chain = chain_id(sandbox)
    query = (
        f"SELECT id FROM altegio.memberships WHERE chain_id = {chain} AND period > 0 "
        "AND period_unit_id = 1 ORDER BY id LIMIT 2"
    )
    targets = ids_of(loaded, query)
    assert len(targets) == 2
    before = read_by_ids(sandbox, tmp_path, targets)
    args = ["memberships", "extend", "--chain", str(chain), "--ids", ",".join(map(str, targets))]
    args += ["--period", "3", "--unit", "day", "--apply"]
    code, out = cli(*args)
    assert code == 0, out
    journal = loaded / JOURNAL_FILE
    lines = journal.read_bytes().splitlines(keepends=True)
    # Drop the batch's end and its last outcome: what a kill right after sending leaves.
    assert orjson.loads(lines[-1])["type"] == "end"
    assert orjson.loads(lines[-2])["type"] == "outcome"
    journal.write_bytes(b"".join(lines[:-2]))
    sandbox.reset_stats()

    code, out = cli(*args)
    assert code == 0, out
    assert "Resumed the interrupted batch" in out and "resolved by read-back 1" in out
    assert writes_of(sandbox, "membership_set_period") == []
    after = read_by_ids(sandbox, tmp_path, targets)
    assert [after[i]["period"] for i in targets] == [before[i]["period"] + 3 for i in targets]


# ---------------------------------------------------------------- SIGKILL halfway


def test_an_apply_killed_halfway_resumes_and_every_freeze_reaches_the_sandbox_once(
    sandbox, loaded, cli, tmp_path
):
    chain = chain_id(sandbox)
    targets = ids_of(loaded, freezable_query(chain, 12))
    assert len(targets) == 12
    sandbox.reset_stats()
    till = (today(sandbox) + timedelta(days=3)).isoformat()
    argv = ["memberships", "freeze", "--chain", str(chain), "--ids", ",".join(map(str, targets))]
    argv += ["--till", till, "--today", today(sandbox).isoformat(), "--apply"]
    env = {**python_env(), **api_env(sandbox, loaded, rate="4")}
    child = subprocess.Popen([sys.executable, "-m", "assets.cli", *argv], env=env)
    try:
        # Bounded by pytest-timeout, not by a wall-clock assertion.
        while len(writes_of(sandbox, "membership_freeze")) < 5:
            assert child.poll() is None, "the apply finished before it could be killed"
            with __import__("contextlib").suppress(subprocess.TimeoutExpired):
                child.wait(timeout=0.02)
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=60) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    sent_before = len(writes_of(sandbox, "membership_freeze"))
    assert 5 <= sent_before < 12

    code, out = cli(*argv)
    assert code == 0, out
    assert "Resumed the interrupted batch" in out
    freezes = writes_of(sandbox, "membership_freeze")
    per_target = Counter(int(e["path"].split("/")[-2]) for e in freezes)
    assert per_target == Counter({i: 1 for i in targets})
    assert all(e["applied"] and e["status"] == 200 for e in freezes)
    assert all(m["is_frozen"] for m in read_by_ids(sandbox, tmp_path, targets).values())
    # The journal: one batch, every step done, and the batch ended.
    (batch,) = [
        b
        for b in Journal(loaded).batches()
        if {s.target["membership_id"] for s in b.steps} == set(targets)
    ]
    assert batch.ended and all(batch.done(s.key) for s in batch.steps)
    rows = warehouse(
        loaded,
        f"SELECT status, count(*) FROM altegio.operations_journal WHERE batch_id = "
        f"'{batch.batch_id}' GROUP BY status",
    )
    assert sum(n for _, n in rows) == 12 and {s for s, _ in rows} <= {"applied", "read_back"}


# ---------------------------------------------------------------- lost answers


def test_a_freeze_whose_answer_is_lost_is_not_sent_twice(tmp_path):
    config = SandboxConfig(
        seed=11, chains=2, start=START, end=END, faults=Faults(write_drop_every=2)
    )
    with serve(config) as server:
        chain = server.dataset.chain_ids()[1]
        targets = [
            m["id"]
            for m in server.dataset.live_memberships(chain)
            if m["status"]["id"] == 2
            and not m["is_frozen"]
            and m["type"]["allow_freeze"]
            and (m["type"]["freeze_limit"] == 0 or m["type"]["freeze_limit_unit_id"] > 1)
        ][:4]
        from pipelines.altegio.write_bodies import Freeze
        from pipelines.altegio.writer import Writer

        with sandbox_altegio_client(server, tmp_path) as client:
            writer = Writer(client)
            till = server.dataset.clock.today + timedelta(days=2)
            results = [writer.freeze(chain, i, Freeze(till)) for i in targets]
        assert all(r.record and r.record["is_frozen"] for r in results)
        freezes = writes_of(server, "membership_freeze")
        assert Counter(int(e["path"].split("/")[-2]) for e in freezes) == Counter(targets)
        assert [e["fault"] for e in freezes].count("drop") == 2
