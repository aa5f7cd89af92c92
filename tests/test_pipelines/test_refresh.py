"""Sold memberships stay current: the window load and the re-read by id, the month layout that
lets an old membership change without rewriting its neighbours, and what a failed chain keeps."""

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pipelines import load
from pipelines.altegio.http import RetryPolicy
from pipelines.altegio.operations import OPERATIONS
from pipelines.altegio.sandbox import Faults, SandboxConfig, SandboxServer, serve
from pipelines.altegio.sandbox.world import ACTIVE, WASTED
from pipelines.refresh import RefreshMode, fresh_days, refresh_by_ids
from pipelines.storage.parquet import Lake
from pipelines.storage.state import MONTH_COLUMN
from tests.conftest import project_lake, sandbox_altegio_client, sandbox_client

START, END = date(2025, 11, 20), date(2026, 1, 31)
SANDBOX_CONFIG = SandboxConfig(seed=3, chains=2, start=START, end=END, memberships_per_day=4)
EXTRACTED = datetime(2026, 2, 1, 12, tzinfo=UTC)
LATER = EXTRACTED + timedelta(days=1)
NIGHT = [END - timedelta(days=d) for d in range(3, -1, -1)]


def _all_days() -> list[date]:
    return [START + timedelta(days=i) for i in range((END - START).days + 1)]


def _load(server: SandboxServer, lake: Lake, tmp: Path, days: list[date]) -> Any:
    with sandbox_altegio_client(server, tmp / "budget") as client:
        chains = client.list_chains()
        report = load.load_daily(client, lake, chains, "memberships", days, EXTRACTED)
    return chains, report


def _stored(lake: Lake) -> dict[tuple[int, int], dict[str, Any]]:
    return {(r["chain_id"], r["id"]): r for r in lake.read("memberships").to_pylist()}


def _served(server: SandboxServer) -> dict[tuple[int, int], dict[str, Any]]:
    return {
        (c, m["id"]): m
        for c in server.dataset.chain_ids()
        for m in server.dataset.all_memberships(c)
    }


def _freeze(server: SandboxServer, chain: int, member: dict[str, Any]) -> None:
    zone = ZoneInfo(server.dataset.chain_timezone(chain))
    till = datetime.combine(server.dataset.clock.today + timedelta(days=2), time(23, 59), zone)
    op = OPERATIONS["membership_freeze"]
    with sandbox_client(server) as http:
        response = http.post(
            op.path.format(chain_id=chain, membership_id=member["id"]),
            json={"freeze_till": till.isoformat()},
        )
    assert response.status_code == 200, response.text


def _use_up(server: SandboxServer, chain: int, member: dict[str, Any]) -> None:
    op = OPERATIONS["membership_set_balance"]
    with sandbox_client(server) as http:
        response = http.post(
            op.path.format(chain_id=chain, membership_id=member["id"]),
            json={"united_balance_services_count": 0},
        )
    assert response.status_code == 200, response.text


def _old_active(server: SandboxServer, chain: int, **flags: Any) -> dict[str, Any]:
    """An active membership created before the night's window (the window cannot see it)."""
    return next(
        m
        for m in server.dataset.live_memberships(chain)
        if m["status"]["id"] == ACTIVE
        and date.fromisoformat(m["created_date"][:10]) < NIGHT[0] - timedelta(days=30)
        and all(_matches(m, k, v) for k, v in flags.items())
    )


def _matches(member: dict[str, Any], key: str, value: Any) -> bool:
    if key == "freezable":
        kind = member["type"]
        return bool(kind["allow_freeze"] and kind["freeze_limit"] > 0) is value
    if key == "united":
        return (
            member["is_united_balance"] is value
            and not member["is_united_balance_unlimited"]
            and member["type"]["balance_edit_type_id"] != 0
        )
    raise KeyError(key)


@pytest.fixture
def world() -> Any:
    with serve(SANDBOX_CONFIG) as server:
        yield server


def test_the_nightly_refresh_brings_old_memberships_to_their_current_state(
    world: SandboxServer, tmp_path: Path
) -> None:
    lake = project_lake(tmp_path / "lake")
    chains, first = _load(world, lake, tmp_path, _all_days())
    assert not first.failed
    chain = world.dataset.chain_ids()[1]
    frozen, used = _old_active(world, chain, freezable=True), _old_active(world, chain, united=True)
    _freeze(world, chain, frozen)
    _use_up(world, chain, used)
    # The window alone leaves them stale (CONTRACT §5.4.1: the filter is the creation date).
    with sandbox_altegio_client(world, tmp_path / "budget") as client:
        night = load.load_daily(client, lake, chains, "memberships", NIGHT, LATER)
        before = _stored(lake)
        assert before[(chain, frozen["id"])]["is_frozen"] is False
        report = refresh_by_ids(
            client,
            lake,
            chains,
            "memberships",
            RefreshMode.ACTIVE,
            LATER,
            skip_days=fresh_days(night, chains, NIGHT, LATER),
        )
    assert not report.failed and report.step_name == "memberships_refresh"
    stored = _stored(lake)
    assert stored[(chain, frozen["id"])]["is_frozen"] is True
    assert stored[(chain, used["id"])]["status_id"] == WASTED
    assert stored[(chain, used["id"])]["united_balance_services_count"] == 0
    # Every membership equals the sandbox's current state; none is lost or doubled.
    served = _served(world)
    assert set(stored) == set(served)
    for key, member in served.items():
        row = stored[key]
        assert (row["status_id"], row["is_frozen"], row["freeze_period"]) == (
            member["status"]["id"],
            member["is_frozen"],
            member["freeze_period"],
        ), key
    # Only non-final memberships outside the night's window were asked for, 100 per request.
    asked = sum(c.requested_ids for c in report.chains)
    assert (
        0
        < asked
        == sum(
            1
            for r in before.values()
            if r["status_id"] not in (3, 4) and r["created_day"] not in NIGHT
        )
    )
    assert asked < len(before)
    per_chain = {c.chain_id: c.requested_ids for c in report.chains}
    assert report.requests == sum(-(-n // 100) for n in per_chain.values())


def test_a_refresh_rewrites_only_the_month_files_of_the_ids_it_read(
    world: SandboxServer, tmp_path: Path
) -> None:
    lake = project_lake(tmp_path / "lake")
    chains, _ = _load(world, lake, tmp_path, _all_days())
    files = {str(i.path): i.path.stat().st_mtime_ns for i in lake.partitions("memberships")}
    months = {i.values[MONTH_COLUMN] for i in lake.partitions("memberships")}
    assert months == {date(2025, 11, 1), date(2025, 12, 1), date(2026, 1, 1)}
    chain = world.dataset.chain_ids()[0]
    member = _old_active(world, chain, freezable=True)
    _freeze(world, chain, member)
    month = date.fromisoformat(member["created_date"][:10]).replace(day=1)
    # Re-read just that membership's month: only its file changes.
    stored = lake.read_columns("memberships", ["id", "created_month", "status_id"])
    ids = [r["id"] for r in stored.to_pylist() if r["created_month"] != month]
    with sandbox_altegio_client(world, tmp_path / "budget") as client:
        days = [d for d in _all_days() if d.replace(day=1) != month]
        report = refresh_by_ids(
            client,
            lake,
            [c for c in chains if c.id == chain],
            "memberships",
            RefreshMode.ALL,
            LATER,
            skip_days={chain: days},
        )
    assert report.partitions_written == 1 and ids
    changed = {
        p for p, mtime in files.items() if Path(p).exists() and Path(p).stat().st_mtime_ns != mtime
    }
    assert changed == {
        str(lake.partition_path("memberships", {"chain_id": chain, MONTH_COLUMN: month}))
    }
    assert _stored(lake)[(chain, member["id"])]["is_frozen"] is True


def test_a_chain_that_fails_during_the_refresh_keeps_its_rows_and_is_reported(
    world: SandboxServer, tmp_path: Path
) -> None:
    lake = project_lake(tmp_path / "lake")
    chains, _ = _load(world, lake, tmp_path, _all_days())
    before = lake.read("memberships")
    broken = SandboxConfig(**{**SANDBOX_CONFIG.__dict__, "faults": Faults(error_every=1)})
    with (
        serve(broken) as failing,
        sandbox_altegio_client(
            failing, tmp_path / "budget", retry=RetryPolicy(max_attempts=1)
        ) as client,
    ):
        report = refresh_by_ids(client, lake, chains, "memberships", RefreshMode.ALL, LATER)
    assert {c.chain_id for c in report.failed} == {c.id for c in chains}
    assert all("502" in c.reason or "503" in c.reason for c in report.failed)
    assert lake.read("memberships").equals(before)


def test_refresh_mode_none_asks_nothing(world: SandboxServer, tmp_path: Path) -> None:
    lake = project_lake(tmp_path / "lake")
    chains, _ = _load(world, lake, tmp_path, NIGHT)
    with sandbox_altegio_client(world, tmp_path / "budget") as client:
        report = refresh_by_ids(client, lake, chains, "memberships", RefreshMode.NONE, LATER)
    assert report.requests == 0 and report.chains == []


def test_the_day_layout_of_earlier_loads_moves_into_months(
    world: SandboxServer, tmp_path: Path
) -> None:
    lake = project_lake(tmp_path / "lake")
    _load(world, lake, tmp_path, NIGHT)
    expected = lake.read("memberships").sort_by("id")
    # The earlier layout: one file per chain and created_day, without created_month.
    for info in lake.partitions("memberships"):
        rows = pq.read_table(info.path).drop_columns([MONTH_COLUMN])
        for day in set(rows["created_day"].to_pylist()):
            target = info.path.parents[1] / f"created_day={day.isoformat()}" / "part-0.parquet"
            target.parent.mkdir()
            same_day = pc.equal(rows["created_day"], pa.scalar(day, pa.date32()))
            pq.write_table(rows.filter(same_day), target)
        info.path.unlink()
        info.path.parent.rmdir()
    _chains, report = _load(world, lake, tmp_path, NIGHT[:1])
    assert not report.failed
    assert (
        lake.read("memberships")
        .sort_by("id")
        .drop_columns(["_extracted_at"])
        .equals(expected.drop_columns(["_extracted_at"]))
    )
    assert not list(lake.table_dir("memberships").glob("*/created_day=*"))
