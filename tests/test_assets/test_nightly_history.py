"""End to end through the CLI: a full load, then the world changes through the sandbox's write
endpoints, then the nightly path; the current tables and the history equal the sandbox's state,
a repeated nightly adds no history row, and a chain the API refuses closes nothing."""

import os
import subprocess
import sys
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import httpx
import orjson
import pytest

from pipelines.altegio.operations import OPERATIONS
from pipelines.altegio.sandbox import (
    Faults,
    SandboxConfig,
    SandboxCredentials,
    SandboxServer,
    serve,
)
from pipelines.altegio.sandbox.world import ACTIVE
from tests.conftest import API_EXAMPLES, sandbox_client

START, END = date(2026, 1, 15), date(2026, 2, 20)
TODAY = END + timedelta(days=1)
CONFIG = SandboxConfig(
    seed=5,
    chains=2,
    start=START,
    end=END,
    transactions_per_day=8,
    memberships_per_day=4,
    credentials=SandboxCredentials(super_user=True),
)
# Five runs of the command, each a Dagster run in its own process: a shared machine needs time.
pytestmark = [pytest.mark.xdist_group("cli"), pytest.mark.timeout(1200)]


def cli(server: SandboxServer, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ALTEGIO_BASE_URL": server.base_url,
        "ALTEGIO_PARTNER_TOKEN": server.credentials.partner_token,
        "ALTEGIO_USER_TOKEN": server.credentials.user_token,
        "ALTEGIO_RATE_LIMIT": "unlimited",
        "ALTEGIO_DATA_DIR": str(data_dir),
        "ALTEGIO_PHONE_HASH_KEY": "test-nightly-history-phone-key",
    }
    done = subprocess.run(
        [str(Path(sys.executable).with_name("altegio-loyalty")), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return done


def query(data_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def history_rows(data_dir: Path) -> int:
    tables = query(
        data_dir,
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'altegio_history'",
    )
    return sum(
        query(data_dir, f"SELECT count(*) FROM altegio_history.{name}")[0][0] for (name,) in tables
    )


def call(http: httpx.Client, name: str, body: Any = None, **ids: int) -> Any:
    op = OPERATIONS[name]
    kwargs: dict[str, Any] = {} if body is None else {"json": body}
    response = http.request(op.method, op.path.format(**ids), **kwargs)
    assert response.status_code < 300, (name, response.status_code, response.text)
    return response.json() if response.content else None


# ---------------------------------------------------------------- the world's state


def served_memberships(server: SandboxServer) -> dict[tuple[int, int], tuple[Any, ...]]:
    return {
        (c, m["id"]): (m["status"]["id"], m["is_frozen"], m["united_balance_services_count"])
        for c in server.dataset.chain_ids()
        for m in server.dataset.all_memberships(c)
    }


def served_types(server: SandboxServer) -> dict[tuple[int, int], tuple[Any, ...]]:
    return {
        (c, t["id"]): (t["title"], float(t["cost"]))
        for c in server.dataset.chain_ids()
        for t in server.dataset.membership_types(c)
    }


def served_ids(server: SandboxServer, kind: str) -> set[tuple[int, int]]:
    return {
        (c, r["id"]) for c in server.dataset.chain_ids() for r in getattr(server.dataset, kind)(c)
    }


MEMBERSHIP_STATE = "status_id, is_frozen, united_balance_services_count"
LIVE = "_valid_to IS NULL AND NOT _is_deleted"


def stored_memberships(data_dir: Path, table: str, where: str = "true") -> dict[Any, Any]:
    rows = query(
        data_dir,
        f"SELECT chain_id, id, {MEMBERSHIP_STATE} FROM {table} WHERE {where}",
    )
    return {(r[0], r[1]): tuple(r[2:]) for r in rows}


def assert_warehouse_is_the_world(server: SandboxServer, data_dir: Path) -> None:
    served = served_memberships(server)
    assert stored_memberships(data_dir, "altegio.memberships") == served
    assert stored_memberships(data_dir, "altegio_history.memberships", LIVE) == served
    types = served_types(server)
    for table, where in (("altegio", "true"), ("altegio_history", LIVE)):
        rows = query(
            data_dir,
            f"SELECT chain_id, id, title, cost FROM {table}.membership_types WHERE {where}",
        )
        assert {(r[0], r[1]): (r[2], r[3]) for r in rows} == types, table
        for kind in ("certificate_types", "promotions"):
            found = query(data_dir, f"SELECT chain_id, id FROM {table}.{kind} WHERE {where}")
            assert set(found) == served_ids(server, kind), (table, kind)


# ---------------------------------------------------------------- the changes


def old_active(server: SandboxServer, chain: int, count: int, **need: bool) -> list[Any]:
    found = [
        m
        for m in server.dataset.live_memberships(chain)
        if m["status"]["id"] == ACTIVE
        and date.fromisoformat(m["created_date"][:10]) < END - timedelta(days=20)
        and not m["is_frozen"]
        and (not need.get("freezable") or (m["type"]["allow_freeze"] and m["type"]["freeze_limit"]))
        and (
            not need.get("united")
            or (
                m["is_united_balance"]
                and not m["is_united_balance_unlimited"]
                and m["type"]["balance_edit_type_id"] != 0
            )
        )
    ]
    assert len(found) >= count
    return found[:count]


def create_types(server: SandboxServer, http: httpx.Client, chain: int, count: int) -> None:
    """New membership types, so some are unsold: a sold type keeps its price and cannot be
    deleted (CONTRACT §5.10.2)."""
    (service_id, _), *_ = server.dataset.services(chain)
    for number in range(count):
        body = {
            "title": f"Spring pass {number}",
            "salon_group_id": chain,
            "cost": 100.0 + number,
            "service_categories": {},
            "services": {str(service_id): 8},
            "is_united_balance": False,
            "united_balance_services_count": 0,
            "location_ids": server.dataset.location_ids(chain)[:1],
            "period": 2,
            "period_unit_id": 3,
        }
        call(http, "membership_type_create", body, chain_id=chain)


def unsold_types(server: SandboxServer, chain: int) -> list[Any]:
    return [
        t
        for t in server.dataset.membership_types(chain)
        if not server.dataset.is_sold(chain, t["id"])
    ]


def change_the_world(server: SandboxServer, http: httpx.Client, chain: int) -> dict[str, Any]:
    """Freeze two old memberships, use one up, reprice a type, delete two, edit, delete and
    create promotions, create a certificate type. Returns what changed."""
    zone = ZoneInfo(server.dataset.chain_timezone(chain))
    till = datetime.combine(TODAY + timedelta(days=2), time(23, 59), zone).isoformat()
    frozen = old_active(server, chain, 2, freezable=True)
    for member in frozen:
        call(
            http,
            "membership_freeze",
            {"freeze_till": till},
            chain_id=chain,
            membership_id=member["id"],
        )
    (used,) = [m for m in old_active(server, chain, 5, united=True) if m not in frozen][:1]
    call(
        http,
        "membership_set_balance",
        {"united_balance_services_count": 0},
        chain_id=chain,
        membership_id=used["id"],
    )
    repriced, *deleted = unsold_types(server, chain)[:3]
    call(
        http,
        "membership_type_update",
        {
            "title": repriced["title"],
            "salon_group_id": chain,
            "cost": float(repriced["cost"]) + 250.0,
            "service_categories": [],
            "is_united_balance": False,
            "united_balance_services_count": 0,
        },
        chain_id=chain,
        membership_type_id=repriced["id"],
    )
    for mtype in deleted:
        call(http, "membership_type_delete", chain_id=chain, membership_type_id=mtype["id"])
    edited, removed = server.dataset.promotions(chain)[:2]
    call(http, "promotion_update", {"usage_limit": 7}, chain_id=chain, program_id=edited["id"])
    call(http, "promotion_delete", chain_id=chain, program_id=removed["id"])
    body = orjson.loads((API_EXAMPLES / "POST_chain_loyalty_programs.request.json").read_bytes())
    body["allowed_service_ids"] = [s for s, _ in server.dataset.services(chain)][:2]
    body["loyalty_card_type_ids"] = [c["id"] for c in server.dataset.card_types(chain)][:2]
    body["company_ids"] = server.dataset.location_ids(chain)[:2]
    created = call(http, "promotion_create", body, chain_id=chain)
    certificate = call(
        http,
        "certificate_type_create",
        {
            "title": "Gift Certificate 75",
            "balance": 75,
            "is_multi": True,
            "item_type_id": 0,
            "is_allow_empty_code": False,
            "balance_edit_type_id": 1,
            "service_ids": [],
            "salon_ids": server.dataset.location_ids(chain),
            "expiration": {"type_id": 2, "timeout": 6, "timeout_unit_id": 3},
            "online_sale": {"is_enabled": True, "title": "Gift 75", "price": 70},
        },
        chain_id=chain,
    )["data"]
    return {
        "frozen": [m["id"] for m in frozen],
        "used": used["id"],
        "repriced": repriced,
        "deleted": [t["id"] for t in deleted],
        "promotions": (edited["id"], removed["id"], created["id"]),
        "certificate": certificate["id"],
    }


# ---------------------------------------------------------------- the test


def test_nightly_loads_keep_current_state_and_history_true(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with serve(CONFIG) as server, sandbox_client(server) as http:
        chain = server.dataset.chain_ids()[1]
        create_types(server, http, chain, 3)
        first = cli(server, data, "load", "--start", str(START), "--end", str(END))
        assert first.returncode == 0, first.stdout + first.stderr
        assert_warehouse_is_the_world(server, data)
        before = served_memberships(server)
        changed = change_the_world(server, http, chain)

        night = cli(server, data, "nightly", "--today", str(TODAY))
        assert night.returncode == 0, night.stdout + night.stderr
        assert f"Nightly: days {END - timedelta(days=3)}..{END}" in night.stdout
        assert_warehouse_is_the_world(server, data)
        now = served_memberships(server)
        moved = {k for k in now if now[k] != before[k]}
        assert {(chain, m) for m in [*changed["frozen"], changed["used"]]} <= moved
        # The repriced type has two price periods, the deleted ones a closing tombstone.
        repriced = changed["repriced"]
        periods = query(
            data,
            "SELECT cost, valid_to IS NULL FROM marts.membership_type_prices "
            f"WHERE chain_id = {chain} AND membership_type_id = {repriced['id']} "
            "ORDER BY valid_from",
        )
        assert periods == [(float(repriced["cost"]), False), (float(repriced["cost"]) + 250, True)]
        for type_id in changed["deleted"]:
            last = query(
                data,
                "SELECT _is_deleted FROM altegio_history.membership_types "
                f"WHERE chain_id = {chain} AND id = {type_id} AND _valid_to IS NULL",
            )
            assert last == [(True,)]
        edited, removed, created = changed["promotions"]
        promo = query(
            data,
            "SELECT promotion_id, valid_to IS NULL FROM marts.promotion_periods "
            f"WHERE chain_id = {chain} AND promotion_id IN ({edited}, {removed}, {created}) "
            "ORDER BY promotion_id",
        )
        assert sorted(promo) == sorted([(edited, True), (removed, False), (created, True)])
        versions = query(
            data,
            f"SELECT count(*) FROM altegio_history.promotions WHERE chain_id = {chain} "
            f"AND id = {edited}",
        )
        assert versions == [(2,)]
        # load_steps: the refresh's own step with its requests and the ids it asked for.
        refresh_steps = query(
            data,
            "SELECT requests, chain_outcomes FROM altegio.load_steps "
            "WHERE step = 'memberships_refresh' ORDER BY started_at",
        )
        # The full load read every membership by its window: nothing to re-read then.
        assert [r[0] > 0 for r in refresh_steps] == [False, True]
        asked = sum(o["requested_ids"] for o in orjson.loads(refresh_steps[-1][1]))
        assert refresh_steps[-1][0] == sum(
            -(-o["requested_ids"] // 100) for o in orjson.loads(refresh_steps[-1][1])
        )
        assert 0 < asked < len(now)
        # Memberships counted by status as of each day: the last day holds today's state.
        (counted,) = query(
            data,
            "SELECT sum(memberships) FROM marts.membership_status_daily "
            "WHERE (chain_id, day) IN "
            "(SELECT (chain_id, max(day)) FROM marts.membership_status_daily GROUP BY chain_id)",
        )[0]
        assert counted == len(now)

        # A deleted type comes back: a new version, live again.
        restored = changed["deleted"][0]
        call(
            http,
            "membership_type_restore",
            {"restore_in_title": "Back again"},
            chain_id=chain,
            membership_type_id=restored,
        )
        again = cli(server, data, "nightly", "--today", str(TODAY))
        assert again.returncode == 0, again.stdout + again.stderr
        assert_warehouse_is_the_world(server, data)
        back = query(
            data,
            "SELECT _is_deleted, title FROM altegio_history.membership_types "
            f"WHERE chain_id = {chain} AND id = {restored} ORDER BY _valid_from",
        )
        assert [d for d, _ in back] == [False, True, False] and back[-1][1] == "Back again"

        rows = history_rows(data)
        repeat = cli(server, data, "nightly", "--today", str(TODAY))
        assert repeat.returncode == 0, repeat.stdout + repeat.stderr
        assert history_rows(data) == rows
        assert_warehouse_is_the_world(server, data)


def test_a_chain_the_api_refuses_closes_nothing_and_is_reported(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with serve(CONFIG) as server:
        first = cli(server, data, "load", "--start", str(END), "--end", str(END))
        assert first.returncode == 0, first.stdout + first.stderr
    refused = SandboxConfig(**{**CONFIG.__dict__, "faults": Faults(forbidden_chain=0)})
    before = query(data, "SELECT count(*) FROM altegio_history.membership_types")
    with serve(refused) as server:
        chain = server.dataset.chain_ids()[0]
        night = cli(server, data, "nightly", "--today", str(TODAY))
    assert night.returncode == 0, night.stdout + night.stderr
    assert f"{chain} (403 access denied" in night.stdout
    # Nothing of the refused chain was closed: its records' current versions are all live.
    assert query(data, "SELECT count(*) FROM altegio_history.membership_types") == before
    assert query(
        data,
        f"SELECT count(*) FROM altegio_history.membership_types WHERE chain_id = {chain} "
        "AND _is_deleted",
    ) == [(0,)]
