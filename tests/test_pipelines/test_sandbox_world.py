"""The sandbox's day clock and the world it moves: static unless asked, deterministic by seed,
every kind of change within a week, and reads (ground truth and HTTP) that follow."""

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from pipelines.altegio.endpoints import ACCEPT_HEADER
from pipelines.altegio.sandbox import SandboxConfig, SandboxDataset, SandboxServer, serve
from pipelines.altegio.sandbox import clock as clock_module
from pipelines.altegio.sandbox.data import EPOCH, MAX_CHAINS, TX_ID_BASE, TX_STRIDE
from pipelines.altegio.sandbox.evolve import advance_to
from pipelines.altegio.sandbox.world import EXPIRED, WASTED, World, visits_left

CONFIG = SandboxConfig(seed=5, chains=3, start=date(2026, 1, 1), end=date(2026, 1, 31), evolve=True)
WEEK = CONFIG.end + timedelta(days=8)  # today after seven simulated days
# Every kind of change a week must bring (issue 14: sales, transactions, visits, freezes,
# expiries, used up, price changes, promotions ending and starting, archiving, corrections).
KINDS = (
    "transaction_added",
    "membership_sold",
    "membership_activated",
    "membership_used",
    "membership_used_up",
    "membership_frozen",
    "membership_unfrozen",
    "membership_expired",
    "price_changed",
    "promotion_ended",
    "promotion_started",
    "type_archived",
    "transaction_corrected",
    "transaction_removed",
)
WIDE = (datetime(2020, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC))


def snapshot(world: SandboxDataset) -> dict[str, Any]:
    """Everything the ground truth answers, per chain."""
    out: dict[str, Any] = {}
    last = world.last_day()
    for chain in world.chain_ids():
        out[str(chain)] = {
            "types": world.membership_types(chain),
            "certificates": world.certificate_types(chain),
            "promotions": world.promotions(chain),
            "search": [world.promotion_search(loc) for loc in world.location_ids(chain)],
            "memberships": world.memberships(chain, *WIDE),
            "transactions": world.transactions(chain, world.config.start, last),
            "counts": [
                world.transaction_count(chain, world.config.start + timedelta(days=n))
                for n in range((last - world.config.start).days + 1)
            ],
        }
    return out


def http_client(server: SandboxServer) -> httpx.Client:
    creds = server.credentials
    return httpx.Client(
        base_url=server.base_url,
        headers={
            "Accept": ACCEPT_HEADER,
            "Authorization": f"Bearer {creds.partner_token}, User {creds.user_token}",
        },
        timeout=30,
    )


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    with serve(CONFIG) as running:
        yield running


def test_a_world_nobody_moves_reads_exactly_what_the_generator_generates() -> None:
    static = SandboxConfig(seed=5, chains=3, end=date(2026, 1, 20))
    world = World(static)
    assert world.clock.today == static.end + timedelta(days=1)
    assert world.last_day() == static.end
    assert snapshot(world) == snapshot(SandboxDataset(static))


def test_the_clock_of_a_static_sandbox_does_not_move() -> None:
    static = SandboxConfig(chains=1, end=date(2026, 1, 5))
    with serve(static) as server, http_client(server) as http:
        state = http.get("/_sandbox/clock").json()
        assert state["today"] == "2026-01-06" and state["moves"] is False
        assert state["last_day_with_data"] == "2026-01-05"
        refused = http.post("/_sandbox/clock", json={"days": 1})
        assert refused.status_code == 409 and "--evolve" in refused.json()["message"]
        assert http.get("/_sandbox/clock").json()["today"] == "2026-01-06"


def test_a_week_brings_every_kind_of_change() -> None:
    world = World(CONFIG)
    counts = advance_to(world, WEEK)
    missing = [kind for kind in KINDS if counts.get(kind, 0) == 0]
    assert not missing, f"a week brought no {missing}: {counts}"
    assert world.clock.today == WEEK and world.last_day() == WEEK - timedelta(days=1)
    assert counts == world.change_counts()


def test_the_same_seed_and_steps_give_the_same_world_day_by_day_or_at_once() -> None:
    at_once, day_by_day, other_seed = (
        World(CONFIG),
        World(CONFIG),
        World(SandboxConfig(**{**CONFIG.__dict__, "seed": 6})),
    )
    advance_to(at_once, WEEK)
    for n in range(1, 8):
        advance_to(day_by_day, CONFIG.end + timedelta(days=1 + n))
    advance_to(other_seed, WEEK)
    assert at_once.changes == day_by_day.changes
    assert snapshot(at_once) == snapshot(day_by_day)
    assert snapshot(at_once) != snapshot(other_seed)


def test_writes_between_clock_steps_replay_to_the_same_world() -> None:
    def run() -> dict[str, Any]:
        world = World(CONFIG)
        chain = world.chain_ids()[1]
        advance_to(world, CONFIG.end + timedelta(days=3))
        mtype = world.membership_types(chain)[0]
        world.put_membership_type(chain, {**mtype, "cost": 1.0})
        world.remove_promotion(chain, world.promotions(chain)[0]["id"])
        advance_to(world, WEEK)
        return snapshot(world)

    assert run() == run()


def test_evolved_memberships_follow_the_status_rules() -> None:
    world = World(CONFIG)
    advance_to(world, WEEK)
    by_kind: dict[str, set[int]] = {}
    for change in world.changes:
        by_kind.setdefault(change.kind, set()).add(change.entity_id)
    for chain in world.chain_ids():
        end_of_yesterday = datetime.combine(
            world.clock.today, datetime.min.time(), world.zone(chain)
        )
        for member in world.all_memberships(chain):
            status = member["status"]["id"]
            if member["id"] in by_kind.get("membership_expired", ()) and status == EXPIRED:
                assert datetime.fromisoformat(member["expiration_date"]) < end_of_yesterday
            if member["id"] in by_kind.get("membership_used_up", ()):
                assert status == WASTED and visits_left(member) == 0
            if member["id"] in by_kind.get("membership_frozen", ()) and member["is_frozen"]:
                assert world.freeze_till[member["id"]] >= world.clock.today
    # Sold today means created on a simulated day, with the type's full balance when unused.
    sold = next(iter(sorted(by_kind["membership_sold"])))
    chain = next(c for c in world.chain_ids() if world.membership(c, sold) is not None)
    member = world.membership(chain, sold)
    assert member is not None and member["created_date"][:10] > CONFIG.end.isoformat()


def _transaction_day(transaction_id: int) -> date:
    """The chain-day a transaction id belongs to (ids are positional, see sandbox/data.py)."""
    slot = (transaction_id - TX_ID_BASE) // TX_STRIDE
    return EPOCH + timedelta(days=slot // MAX_CHAINS)


def test_visits_and_corrections_show_in_the_transactions() -> None:
    world = World(CONFIG)
    advance_to(world, WEEK)
    # The generator's rows for the same days, before anything happened to them.
    generated = SandboxDataset(SandboxConfig(**{**CONFIG.__dict__, "end": world.last_day()}))
    rows: dict[int, Any] = {}
    before: dict[int, Any] = {}
    for chain in world.chain_ids():
        rows.update((r["id"], r) for r in world.transactions(chain, CONFIG.start, world.last_day()))
        before.update(
            (r["id"], r) for r in generated.transactions(chain, CONFIG.start, world.last_day())
        )
    checked = {"membership_used": 0, "transaction_removed": 0, "transaction_corrected": 0}
    for change in world.changes:
        if change.kind == "membership_used":
            assert any(
                r["abonement_id"] == change.entity_id and r["type_id"] == 9
                for r in rows.values()
                if _transaction_day(r["id"]) == change.day
            ), change
        elif change.kind == "transaction_removed":
            assert change.entity_id not in rows
        elif change.kind == "transaction_corrected" and change.entity_id in before:
            if change.entity_id in rows:
                assert rows[change.entity_id]["amount"] != before[change.entity_id]["amount"]
        else:
            continue
        checked[change.kind] += 1
        if change.kind.startswith("transaction_"):
            # Only days already behind, and only the last few of them, are corrected.
            corrected = _transaction_day(change.entity_id)
            assert change.day - timedelta(days=7) <= corrected < change.day
    assert all(checked.values()), checked
    # Everything else is the generator's, untouched.
    touched = {c.entity_id for c in world.changes if c.kind.startswith("transaction_")}
    for tx_id, row in before.items():
        if tx_id not in touched and tx_id in rows and _transaction_day(tx_id) <= CONFIG.end:
            assert rows[tx_id] == row


def test_the_clock_endpoint_moves_days_and_the_new_days_are_served(server: SandboxServer) -> None:
    with http_client(server) as http:
        chain = server.dataset.chain_ids()[1]
        moved = http.post("/_sandbox/clock", json={"days": 2})
        assert moved.status_code == 200
        body = moved.json()
        assert body["today"] == "2026-02-03" and body["last_day_with_data"] == "2026-02-02"
        assert body["step"]["membership_sold"] > 0
        new_day = {"created_after": "2026-02-01", "created_before": "2026-02-01", "count": 1000}
        served = http.get(f"/chain/{chain}/loyalty/transactions", params=new_day).json()["data"]
        assert served == server.dataset.transactions(chain, date(2026, 2, 1), date(2026, 2, 1))
        assert served
        future = {"created_after": "2026-02-03", "created_before": "2026-02-09"}
        assert http.get(f"/chain/{chain}/loyalty/transactions", params=future).json()["data"] == []
        window = {
            "created_after": "2026-02-01T00:00:00+00:00",
            "created_before": "2026-02-03T00:00:00+00:00",
        }
        sold = http.get(f"/chain/{chain}/loyalty/abonements", params=window).json()["data"]
        assert sold and all(m["created_date"] >= "2026-01-31" for m in sold)
        to_date = http.post("/_sandbox/clock", json={"date": "2026-02-05"}).json()
        assert to_date["today"] == "2026-02-05"
        for bad in ({"date": "2026-02-01"}, {"days": -1}, {"days": "x"}, {"date": "soon"}):
            assert http.post("/_sandbox/clock", json=bad).status_code == 400, bad
        assert http.get("/_sandbox/clock").json()["changes"] == server.dataset.change_counts()


def test_a_corrected_day_is_served_afresh(server: SandboxServer) -> None:
    chain = server.dataset.chain_ids()[0]
    day = next(
        d
        for d in (CONFIG.end - timedelta(days=n) for n in range(30))
        if server.dataset.transaction_count(chain, d) >= 2
    )
    params = {"created_after": day.isoformat(), "created_before": day.isoformat(), "count": 1000}
    with http_client(server) as http:
        first = http.get(f"/chain/{chain}/loyalty/transactions", params=params).json()["data"]
        gone, changed = first[0]["id"], first[1]["id"]
        server.dataset.correct_transaction(chain, day, gone, amount=None)
        server.dataset.correct_transaction(chain, day, changed, amount=1234.5)
        again = http.get(f"/chain/{chain}/loyalty/transactions", params=params).json()["data"]
    assert [r["id"] for r in again] == [r["id"] for r in first[1:]]
    assert again[0]["amount"] == 1234.5
    assert again == server.dataset.transactions(chain, day, day)


def test_a_wall_clock_follows_the_real_date(monkeypatch: pytest.MonkeyPatch) -> None:
    real = [CONFIG.end + timedelta(days=4)]
    monkeypatch.setattr(clock_module, "wall_date", lambda: real[0])
    config = SandboxConfig(**{**CONFIG.__dict__, "wall_clock": True})
    with serve(config) as server, http_client(server) as http:
        # Started on the real date: the days since the data's end were simulated at start.
        assert server.dataset.clock.today == real[0]
        real[0] += timedelta(days=2)
        state = http.get("/groups")
        assert state.status_code == 200
        assert server.dataset.clock.today == real[0]
        assert http.get("/_sandbox/clock").json()["follows_wall_clock"] is True
    with pytest.raises(ValueError, match="wall_clock needs evolve"):
        SandboxConfig(wall_clock=True)


def test_the_sandbox_command_takes_the_world_options() -> None:
    import argparse

    from pipelines.altegio.sandbox import cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(
        [
            "--evolve",
            "--wall-clock",
            "--super-user",
            "--service-links-chain",
            "1",
            "--write-error-every",
            "5",
            "--write-drop-every",
            "7",
            "--certificate-delete-no-content",
        ]
    )
    cfg = cli.config_from_args(args)
    assert cfg.evolve and cfg.wall_clock and cfg.credentials.super_user
    assert cfg.service_links_chains == frozenset({1})
    assert (cfg.faults.write_error_every, cfg.faults.write_drop_every) == (5, 7)
    assert cfg.faults.certificate_type_delete_no_content
    plain = cli.config_from_args(parser.parse_args([]))
    assert not plain.evolve and not plain.credentials.super_user
    assert plain.credentials == SandboxConfig().credentials
    bad = parser.parse_args(["--wall-clock"])
    with pytest.raises(ValueError, match="wall_clock needs evolve"):
        cli.config_from_args(bad)
