"""What a simulated day does to the world: a chain's clients and staff at work.

`advance_to(world, day)` leaves every day before `day` behind, one at a time, in order. Once a
day is behind the clock its generated sales and transactions exist (the generator makes them
for any day); then, chain by chain in /groups order, the rules below run with an RNG seeded by
(seed, chain, day), so the same seed and the same writes and clock steps make the same world,
whether the days pass one by one or a week at once.

Per chain and day:
* sales of that day start as fresh memberships of a type that can be sold (full balance;
  active at once when the type activates on sale, else created);
* created memberships whose auto-activation delay passed become active;
* some live memberships are used: a visit off the balance, a membership-use transaction,
  created -> active on first use, -> wasted at 0 visits;
* freezes that reached their end thaw (and now and then one thaws early); some active
  memberships of freezable types are frozen within their type's limit (expiration moves out);
* live, unfrozen memberships past their expiration date expire;
* now and then: a membership type's price changes, a type is archived or unarchived, a
  promotion ends or a new one starts, certificates of a type are issued;
* transactions of the last few days are corrected: an amount changes or a row goes away.
"""

import random
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any

from pipelines.altegio.sandbox import records
from pipelines.altegio.sandbox.data import (
    EPOCH,
    ITEM_TYPE_POLICIES,
    MAX_CHAINS,
    PROMOTION_TYPES,
    TRANSACTION_TYPES,
    TX_ID_BASE,
    TX_STRIDE,
    Record,
    seeded_rng,
)
from pipelines.altegio.sandbox.world import (
    ACTIVE,
    CREATED,
    EXPIRED,
    WASTED,
    World,
    balance_string,
    period_days,
    stamp,
    visits_left,
    with_status,
)
from pipelines.altegio.sandbox.writes import freeze

MEMBERSHIP_USE = 9  # E15
# Shares and chances per chain and day: enough that a week of three chains shows every kind.
VISIT_SHARE = 0.04  # of the live memberships
FREEZE_CHANCE = 0.6
EARLY_THAW_CHANCE = 0.15  # per frozen membership with no known end
PRICE_CHANGE_CHANCE = 0.3
PRICE_FACTORS = (0.9, 0.95, 1.05, 1.1, 1.15)
ARCHIVE_CHANCE = 0.15
UNARCHIVE_CHANCE = 0.1
MIN_SELLABLE_TYPES = 3  # archiving stops before a chain has fewer types on sale
PROMOTION_END_CHANCE = 0.2
PROMOTION_START_CHANCE = 0.2
MIN_PROMOTIONS = 4
CERTIFICATE_ISSUE_CHANCE = 0.3
CORRECTION_CHANCE = 0.6
CORRECTION_WINDOW_DAYS = 7  # how far back a chain still corrects its transactions
REMOVAL_SHARE = 0.3  # of the corrections


def advance_to(world: World, day: date) -> dict[str, int]:
    """Move the clock to `day`, simulating every day left behind; counts of what changed."""
    with world.lock:
        before = world.change_counts()
        while world.clock.today < day:
            simulated = world.clock.today
            world.clock.today = simulated + timedelta(days=1)
            for chain_id in world.chain_ids():
                simulate_day(world, chain_id, simulated)
        after = world.change_counts()
    return {kind: n - before.get(kind, 0) for kind, n in after.items() if n != before.get(kind)}


def follow_wall_clock(world: World) -> dict[str, int]:
    """On a wall clock that fell behind the real date, simulate up to it ({} otherwise)."""
    due = world.clock.due()
    return {} if due is None else advance_to(world, due)


def simulate_day(world: World, chain_id: int, day: date) -> None:
    """Everything that happens in one chain on one (already elapsed) day."""
    rng = seeded_rng(f"{world.config.seed}/evolve/{world.chain_index(chain_id)}/{day}")
    world.new_transactions[chain_id] += world.transaction_count(chain_id, day)
    rules: tuple[Callable[[World, int, date, random.Random], None], ...] = (
        _sales,
        _autoactivations,
        _visits,
        _thaws,
        _freezes,
        _expiries,
        _price_change,
        _archiving,
        _promotions,
        _certificates,
        _corrections,
    )
    for rule in rules:
        rule(world, chain_id, day, rng)


def _moment(world: World, chain_id: int, day: date, rng: random.Random) -> datetime:
    second = rng.randint(8 * 3600, 21 * 3600)
    return datetime.combine(day, time(), world.zone(chain_id)) + timedelta(seconds=second)


def _day_end(world: World, chain_id: int, day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(), world.zone(chain_id))


def _sellable(world: World, chain_id: int) -> list[Record]:
    return [t for t in world.membership_types(chain_id) if not t["is_archived"]]


# ---------------------------------------------------------------- memberships


def _sales(world: World, chain_id: int, day: date, rng: random.Random) -> None:
    sellable = _sellable(world, chain_id)
    for record, created in world.generated_memberships(chain_id, day):
        mtype = world.membership_type(chain_id, record["type"]["id"])
        if sellable and (mtype is None or mtype not in sellable):
            mtype = sellable[record["id"] % len(sellable)]
        assert mtype is not None
        sold = records.fresh_sale(record, record["created_date"], mtype, created)
        world.put_membership(chain_id, sold)
        world.record(day, chain_id, "membership_sold", record["id"])


def _autoactivations(world: World, chain_id: int, day: date, rng: random.Random) -> None:
    end = _day_end(world, chain_id, day)
    for member in world.live_memberships(chain_id):
        membership_id = member["id"]
        if member["status"]["id"] != CREATED:
            continue
        mtype = member["type"]
        delay = period_days(mtype["autoactivation_time"], mtype["autoactivation_time_unit_id"])
        if not delay:
            continue
        due = datetime.fromisoformat(member["created_date"]) + timedelta(days=delay)
        if due < end:
            start = end - timedelta(days=1)
            world.put_membership(chain_id, records.activated(member, max(due, start)))
            world.record(day, chain_id, "membership_activated", membership_id)


def _visits(world: World, chain_id: int, day: date, rng: random.Random) -> None:
    usable = [
        m for m in world.live_memberships(chain_id) if not m["is_frozen"] and visits_left(m) != 0
    ]
    if not usable:
        return
    count = max(1, round(len(usable) * VISIT_SHARE))
    for member in rng.sample(usable, min(count, len(usable))):
        _visit(world, chain_id, day, rng, member)


def _visit(world: World, chain_id: int, day: date, rng: random.Random, member: Record) -> None:
    moment = _moment(world, chain_id, day, rng)
    if member["status"]["id"] == CREATED:
        member = records.activated(member, moment)
        world.record(day, chain_id, "membership_activated", member["id"])
    links = [dict(lnk) for lnk in member["balance_container"]["links"]]
    used = rng.choice([lnk for lnk in links if lnk["is_unlimited"] or lnk["count"] > 0] or links)
    if member["is_united_balance"]:
        if not member["is_united_balance_unlimited"]:
            member = {
                **member,
                "united_balance_services_count": member["united_balance_services_count"] - 1,
            }
    elif not used["is_unlimited"]:
        used["count"] -= 1
    member = {
        **member,
        "balance_string": balance_string(links),
        "balance_container": {"links": links},
    }
    world.last_used[member["id"]] = day
    world.record(day, chain_id, "membership_used", member["id"])
    if visits_left(member) == 0:
        member = with_status(member, WASTED)
        world.record(day, chain_id, "membership_used_up", member["id"])
    world.put_membership(chain_id, member)
    _use_transaction(world, chain_id, day, rng, member, used)


def _use_transaction(
    world: World, chain_id: int, day: date, rng: random.Random, member: Record, used: Record
) -> None:
    """The membership-use transaction of a visit, after the day's generated ones."""
    position = world.next_transaction_position(chain_id, day)
    if position >= TX_STRIDE:
        return
    slot = ((day - EPOCH).days * MAX_CHAINS + world.chain_index(chain_id)) * TX_STRIDE
    mtype = member["type"]
    included = [lnk["count"] for lnk in mtype["balance_container"]["links"]]
    visits = max(
        1, mtype["united_balance_services_count"] if mtype["is_united_balance"] else sum(included)
    )
    item = used.get("service") or used.get("category") or {}
    locations = world.location_ids(chain_id)
    record: Record = {
        "id": TX_ID_BASE + slot + position,
        "visit_id": rng.randint(300_000_000, 399_999_999),
        "status_id": 1,
        "amount": round(float(mtype["cost"]) / visits, 2),
        "type_id": MEMBERSHIP_USE,
        "card_id": 0,
        "program_id": 0,
        "certificate_id": 0,
        "abonement_id": member["id"],
        "salon_group_id": chain_id,
        "item_id": int(item.get("id", 0)),
        "item_type_id": 1,
        "item_record_id": rng.randint(500_000_000, 599_999_999),
        "goods_transaction_id": 0,
        "services_transaction_id": rng.randint(60_000_000, 69_999_999),
        "is_discount": False,
        "is_loyalty_withdraw": False,
        "type": {"id": MEMBERSHIP_USE, "title": TRANSACTION_TYPES[MEMBERSHIP_USE]},
    }
    world.add_transaction(chain_id, day, record, rng.choice(locations))


def _thaws(world: World, chain_id: int, day: date, rng: random.Random) -> None:
    for member in world.live_memberships(chain_id):
        membership_id = member["id"]
        if not member["is_frozen"]:
            continue
        till = world.freeze_till.get(membership_id)
        ends = till is not None and till <= day + timedelta(days=1)
        if ends or (till is None and rng.random() < EARLY_THAW_CHANCE):
            world.put_membership(chain_id, {**member, "is_frozen": False})
            world.freeze_till.pop(membership_id, None)
            world.record(day, chain_id, "membership_unfrozen", membership_id)


def _freezes(world: World, chain_id: int, day: date, rng: random.Random) -> None:
    if rng.random() >= FREEZE_CHANCE:
        return
    candidates = []
    for member in world.live_memberships(chain_id):
        if member["is_frozen"] or member["status"]["id"] != ACTIVE:
            continue
        mtype = member["type"]
        if not mtype["allow_freeze"]:
            continue
        limit = period_days(mtype["freeze_limit"], mtype["freeze_limit_unit_id"])
        room = 14 if not limit else limit - int(member["freeze_period"])
        if room >= 3:
            candidates.append((member, room))
    if not candidates:
        return
    member, room = rng.choice(candidates)
    days = rng.randint(3, min(14, room))
    world.put_membership(chain_id, freeze(member, days))
    world.freeze_till[member["id"]] = day + timedelta(days=days)
    world.record(day, chain_id, "membership_frozen", member["id"])


def _expiries(world: World, chain_id: int, day: date, rng: random.Random) -> None:
    end = _day_end(world, chain_id, day)
    for member in world.live_memberships(chain_id):
        if member["is_frozen"] or member["expiration_date"] is None:
            continue
        if datetime.fromisoformat(member["expiration_date"]) < end:
            world.put_membership(chain_id, with_status(member, EXPIRED))
            world.record(day, chain_id, "membership_expired", member["id"])


# ---------------------------------------------------------------- catalogues


def _price_change(world: World, chain_id: int, day: date, rng: random.Random) -> None:
    if rng.random() >= PRICE_CHANGE_CHANCE:
        return
    mtype = rng.choice(world.membership_types(chain_id))
    cost = round(float(mtype["cost"]) * rng.choice(PRICE_FACTORS), 2)
    changed = {
        **mtype,
        "cost": cost,
        "chain_price_min": cost,
        "chain_price_max": round(cost * 1.2, 2),
        "online_sale_price": round(cost * 0.95, 2),
    }
    world.put_membership_type(chain_id, changed)
    world.record(day, chain_id, "price_changed", mtype["id"])


def _archiving(world: World, chain_id: int, day: date, rng: random.Random) -> None:
    sellable = _sellable(world, chain_id)
    if rng.random() < ARCHIVE_CHANCE and len(sellable) > MIN_SELLABLE_TYPES:
        mtype = rng.choice(sellable)
        stamped = stamp(_moment(world, chain_id, day, rng), None)
        world.put_membership_type(
            chain_id, {**mtype, "is_archived": True, "date_archived": stamped}
        )
        world.record(day, chain_id, "type_archived", mtype["id"])
    archived = [t for t in world.membership_types(chain_id) if t["is_archived"]]
    if archived and rng.random() < UNARCHIVE_CHANCE:
        mtype = rng.choice(archived)
        world.put_membership_type(chain_id, {**mtype, "is_archived": False, "date_archived": None})
        world.record(day, chain_id, "type_unarchived", mtype["id"])


def _promotions(world: World, chain_id: int, day: date, rng: random.Random) -> None:
    running = world.promotions(chain_id)
    if rng.random() < PROMOTION_END_CHANCE and len(running) > MIN_PROMOTIONS:
        ended = rng.choice(running)
        world.remove_promotion(chain_id, ended["id"])
        world.record(day, chain_id, "promotion_ended", ended["id"])
    if rng.random() < PROMOTION_START_CHANCE:
        started = _new_promotion(world, chain_id, day, rng)
        world.record(day, chain_id, "promotion_started", started["id"])


def _new_promotion(world: World, chain_id: int, day: date, rng: random.Random) -> Record:
    """A promotion the staff set up, as a create body through the same builder as the API."""
    promo_type, _ = rng.choice(PROMOTION_TYPES)
    locations = world.location_ids(chain_id)
    services = [s for s, _ in world.services(chain_id)]
    policy = rng.choice(ITEM_TYPE_POLICIES)
    where = sorted(rng.sample(locations, rng.randint(1, len(locations))))
    body: dict[str, Any] = {
        "title": f"{promo_type.replace('_', ' ').capitalize()} from {day.isoformat()}",
        "type": promo_type,
        "service_item_type": policy,
        "good_item_type": rng.choice(ITEM_TYPE_POLICIES),
        "value_unit": rng.choice(("percent", "amount")),
        "expiration_timeout": rng.choice((0, 3, 6)),
        "expiration_timeout_unit": "month",
        "history_start_date": day.isoformat(),
        "loyalty_card_type_ids": [rng.choice(world.card_types(chain_id))["id"]],
        "on_changed_notification_template": {"type": rng.choice(("none", "small"))},
        "on_expiration_notification_template": {"type": "none"},
        "rules": [{"parameter": 0, "value": float(rng.choice((5, 10, 15))), "service_id": 0}],
        "company_ids": where,
        "allowed_service_ids": rng.sample(services, 2) if policy == "custom_allowed" else [],
    }
    record = records.promotion(world, chain_id, world.next_id("promotion"), body, None, day)
    # It runs from the day it was set up, which is already behind the clock.
    world.put_promotion(chain_id, record, where, started=day)
    return record


def _certificates(world: World, chain_id: int, day: date, rng: random.Random) -> None:
    on_sale = [t for t in world.certificate_types(chain_id) if not t["is_archived"]]
    if on_sale and rng.random() < CERTIFICATE_ISSUE_CHANCE:
        ctype = rng.choice(on_sale)
        issued = {**ctype, "released_total": ctype["released_total"] + rng.randint(1, 5)}
        world.put_certificate_type(chain_id, issued)
        world.record(day, chain_id, "certificates_issued", ctype["id"])


# ---------------------------------------------------------------- transactions


def _corrections(world: World, chain_id: int, day: date, rng: random.Random) -> None:
    if rng.random() >= CORRECTION_CHANCE:
        return
    first = max(world.config.start, day - timedelta(days=CORRECTION_WINDOW_DAYS))
    recent = [first + timedelta(days=n) for n in range((day - first).days)]
    if not recent:
        return
    corrected = rng.choice(recent)
    rows = world.day_transactions(chain_id, corrected).records
    if not rows:
        return
    row = rng.choice(rows)
    if rng.random() < REMOVAL_SHARE:
        world.correct_transaction(chain_id, corrected, row["id"], amount=None)
        world.record(day, chain_id, "transaction_removed", row["id"])
        return
    amount = round(float(row["amount"]) * rng.uniform(0.5, 1.5), 2)
    if amount == row["amount"]:
        amount = round(amount + 0.01, 2)
    world.correct_transaction(chain_id, corrected, row["id"], amount=amount)
    world.record(day, chain_id, "transaction_corrected", row["id"])
