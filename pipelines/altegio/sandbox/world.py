"""The sandbox's world: the generated dataset plus everything that happened to it since.

`World` is the `SandboxDataset` the server serves. Its reads return the current state: the
generated records where nothing happened to them, else the latest version. What can change:

* a chain's catalogues (membership types, certificate types, promotions): copied from the
  generated ones the first time anything in that chain changes, then edited in the copy;
  deleted membership types stay in it, marked deleted (a soft delete);
* sold memberships: the current version of every membership that changed is kept by id and
  replaces the generated one wherever that membership is read; a membership type that changed
  is re-embedded in every membership of that type;
* transactions: a chain-day can lose rows, get new ones and see amounts corrected; each change
  bumps that day's revision, so caches of rendered days know when to let go;
* the day clock: data exists for days before `clock.today`.

Nothing here decides *what* happens: the write operations (`writes.py`) and the daily rules
(`evolve.py`) do, through the primitives below. Every change replaces a record with a new dict,
so a record a caller already holds never changes under it. One lock serializes changes and
reads: the HTTP server is threaded.
"""

import copy
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pipelines.altegio.sandbox.clock import DayClock
from pipelines.altegio.sandbox.config import SandboxConfig
from pipelines.altegio.sandbox.data import (
    _EMBEDDED_TYPE_FIELDS,
    MEMBERSHIP_STATUSES,
    DayTransactions,
    Record,
    SandboxDataset,
    _search_item,
    format_timestamp,
    parse_timestamp,
)

UNIT_DAYS = {0: 0, 1: 1, 2: 7, 3: 30, 4: 365}  # E1 unit -> days, as the generator counts them
CREATED, ACTIVE, EXPIRED, WASTED = 1, 2, 3, 4  # E4
LIVE_STATUSES = (CREATED, ACTIVE)


@dataclass
class Catalog:
    """One chain's catalogues, copied from the generated ones when the first of them changes."""

    membership_types: list[Record]
    deleted_types: set[int]
    certificate_types: list[Record]
    promotions: list[Record]
    promotion_locations: dict[int, list[int]]
    # First day a promotion ran (None: before the data starts) and the day it stopped (None:
    # still running); transactions of a day only name promotions that ran on it.
    promotion_days: dict[int, tuple[date | None, date | None]] = field(default_factory=dict)


@dataclass
class DayCorrections:
    """What happened to one chain-day of transactions after it was first generated."""

    removed: set[int] = field(default_factory=set)
    amounts: dict[int, float] = field(default_factory=dict)
    added: list[tuple[Record, int]] = field(default_factory=list)  # (record, hidden location)
    revision: int = 0


@dataclass(frozen=True)
class Change:
    """One thing that happened in the world on a simulated day."""

    day: date
    chain_id: int
    kind: str
    entity_id: int


@dataclass
class _MembershipIndex:
    """Per chain: memberships whose state can still move, and types with a sold membership."""

    live: dict[int, Record]  # id -> latest stored version
    sold_types: set[int]


class World(SandboxDataset):
    """The dataset the server serves: generated, then changed by writes and simulated days."""

    def __init__(self, config: SandboxConfig) -> None:
        self.clock = DayClock(
            today=config.end + timedelta(days=1),
            moves=config.evolve,
            follows_wall_clock=config.wall_clock,
        )
        self.lock = threading.RLock()
        self._catalogs: dict[int, Catalog] = {}
        self._memberships: dict[int, Record] = {}
        self._embedded_types: dict[int, Record] = {}
        self._indexes: dict[int, _MembershipIndex] = {}
        self._corrections: dict[tuple[int, date], DayCorrections] = {}
        self._next_ids: dict[str, int] = {}
        # Side facts the membership object does not carry.
        self.freeze_till: dict[int, date] = {}
        self.last_used: dict[int, date] = {}
        self.changes: list[Change] = []
        self.new_transactions: Counter[int] = Counter()  # chain id -> rows of simulated days
        super().__init__(config)

    # ---------------------------------------------------------------- the clock

    def last_day(self) -> date:
        """The last day with data: the day before today."""
        return self.clock.today - timedelta(days=1)

    def now(self, chain_id: int) -> datetime:
        """The current moment in the chain's zone (what a write stamps)."""
        return self.clock.now(self.zone(chain_id))

    def zone(self, chain_id: int) -> ZoneInfo:
        return ZoneInfo(self.chain_timezone(chain_id))

    def services(self, chain_id: int) -> list[tuple[int, str]]:
        """(service id, title) of the chain's services."""
        return list(self._chain(chain_id).services)

    def change_counts(self) -> dict[str, int]:
        """How many changes of each kind the simulated days brought, plus new transactions."""
        counts = Counter(c.kind for c in self.changes)
        counts["transaction_added"] = sum(self.new_transactions.values())
        return dict(sorted(counts.items()))

    # ---------------------------------------------------------------- catalogue reads

    def membership_types(self, chain_id: int) -> list[Record]:
        with self.lock:
            catalog = self._catalogs.get(chain_id)
            if catalog is None:
                return super().membership_types(chain_id)
            return [t for t in catalog.membership_types if t["id"] not in catalog.deleted_types]

    def membership_type(self, chain_id: int, type_id: int) -> Record | None:
        """One membership type by id, soft-deleted ones included (as the API reads them)."""
        with self.lock:
            return _by_id(self._types_of(chain_id), type_id)

    def is_deleted_type(self, chain_id: int, type_id: int) -> bool:
        with self.lock:
            catalog = self._catalogs.get(chain_id)
            return catalog is not None and type_id in catalog.deleted_types

    def certificate_types(self, chain_id: int) -> list[Record]:
        with self.lock:
            catalog = self._catalogs.get(chain_id)
            if catalog is None:
                return super().certificate_types(chain_id)
            return list(catalog.certificate_types)

    def certificate_type(self, chain_id: int, type_id: int) -> Record | None:
        return _by_id(self.certificate_types(chain_id), type_id)

    def promotions(self, chain_id: int) -> list[Record]:
        with self.lock:
            catalog = self._catalogs.get(chain_id)
            if catalog is None:
                return super().promotions(chain_id)
            return list(catalog.promotions)

    def promotion(self, chain_id: int, program_id: int) -> Record | None:
        return _by_id(self.promotions(chain_id), program_id)

    def promotion_search(self, location_id: int) -> list[Record]:
        chain_id = self.chain_of_location(location_id)
        with self.lock:
            catalog = None if chain_id is None else self._catalogs.get(chain_id)
            if catalog is None or chain_id is None:
                return super().promotion_search(location_id)
            return [
                _search_item(p, chain_id)
                for p in catalog.promotions
                if location_id in catalog.promotion_locations[p["id"]]
            ]

    def promotion_locations(self, chain_id: int, program_id: int) -> list[int]:
        """Locations where a promotion runs (what the location search finds it by)."""
        with self.lock:
            catalog = self._catalogs.get(chain_id)
            source = (
                self._chain(chain_id).promotion_locations
                if catalog is None
                else catalog.promotion_locations
            )
            return list(source.get(program_id, []))

    # ---------------------------------------------------------------- membership reads

    def iter_memberships(
        self, chain_id: int, created_from: datetime, created_to: datetime
    ) -> Iterator[Record]:
        for record in super().iter_memberships(chain_id, created_from, created_to):
            yield self._current(record)

    def memberships_by_ids(self, chain_id: int, ids: Iterable[int]) -> list[Record]:
        return [self._current(r) for r in super().memberships_by_ids(chain_id, ids)]

    def membership(self, chain_id: int, membership_id: int) -> Record | None:
        """The current version of one sold membership of the chain, or None."""
        found = self.memberships_by_ids(chain_id, [membership_id])
        return found[0] if found else None

    def generated_memberships(self, chain_id: int, day: date) -> list[tuple[Record, datetime]]:
        """The generator's memberships of one chain-day with their creation moments."""
        return self._day_memberships(self._chain(chain_id).index, day)

    def all_memberships(self, chain_id: int) -> Iterator[Record]:
        """Current version of every membership of the chain, oldest day first."""
        day = self.config.start
        while day <= self.last_day():
            for record, _ in self.generated_memberships(chain_id, day):
                yield self._current(record)
            day += timedelta(days=1)

    def live_memberships(self, chain_id: int) -> list[Record]:
        """Current version of every membership still created or active, ascending by id."""
        with self.lock:
            live = self._index(chain_id).live
            return [self._current(live[k]) for k in sorted(live)]

    def is_sold(self, chain_id: int, type_id: int) -> bool:
        """True once a membership of the type was sold (its core terms are then fixed)."""
        with self.lock:
            return type_id in self._index(chain_id).sold_types

    # ---------------------------------------------------------------- transaction reads

    def transactions(
        self,
        chain_id: int,
        day_from: date,
        day_to: date,
        location_ids: Iterable[int] | None = None,
    ) -> list[Record]:
        wanted = None if location_ids is None else set(location_ids)
        rows: list[Record] = []
        day = max(day_from, self.config.start)
        while day <= min(day_to, self.last_day()):
            block = self.day_transactions(chain_id, day)
            for record, location in zip(block.records, block.location_ids, strict=True):
                if wanted is None or location in wanted:
                    rows.append(record)
            day += timedelta(days=1)
        return rows

    def day_transactions(self, chain_id: int, day: date) -> DayTransactions:
        if not self.config.start <= day <= self.last_day():
            return DayTransactions([], [])
        generated = super().day_transactions(chain_id, day)
        with self.lock:
            fix = self._corrections.get((self.chain_index(chain_id), day))
            running = self._promotions_running(chain_id, day)
            if fix is None and running is None:
                return generated
            return _corrected(generated, fix, running)

    def transaction_count(self, chain_id: int, day: date) -> int:
        if not self.config.start <= day <= self.last_day():
            return 0
        with self.lock:
            if (self.chain_index(chain_id), day) not in self._corrections:
                return super().transaction_count(chain_id, day)
        return len(self.day_transactions(chain_id, day).records)

    def transaction_revision(self, chain_id: int, day: date) -> int:
        """Bumped by every correction of that chain-day: a rendered copy of it is stale."""
        with self.lock:
            fix = self._corrections.get((self.chain_index(chain_id), day))
            return 0 if fix is None else fix.revision

    # ---------------------------------------------------------------- changes: catalogues

    def catalog(self, chain_id: int) -> Catalog:
        """The chain's editable catalogues (copied from the generated ones on first use)."""
        with self.lock:
            catalog = self._catalogs.get(chain_id)
            if catalog is None:
                chain = self._chain(chain_id)
                catalog = Catalog(
                    membership_types=copy.deepcopy(chain.membership_types),
                    deleted_types=set(),
                    certificate_types=copy.deepcopy(chain.certificate_types),
                    promotions=copy.deepcopy(chain.promotions),
                    promotion_locations=copy.deepcopy(chain.promotion_locations),
                )
                self._catalogs[chain_id] = catalog
            return catalog

    def next_id(self, kind: str) -> int:
        """A fresh id for a created record: above every id of that kind in any chain."""
        with self.lock:
            if kind not in self._next_ids:
                self._next_ids[kind] = 1 + max(self._existing_ids(kind), default=0)
            new = self._next_ids[kind]
            self._next_ids[kind] = new + 1
            return new

    def put_membership_type(self, chain_id: int, record: Record) -> None:
        """Store a created or changed type (replacing the one with its id)."""
        with self.lock:
            _replace(self.catalog(chain_id).membership_types, record)
            self._embedded_types[record["id"]] = embedded_type(record)

    def delete_membership_type(self, chain_id: int, type_id: int, *, deleted: bool) -> None:
        """Soft-delete (or restore) a type: it leaves (or rejoins) the list, reads by id stay."""
        with self.lock:
            target = self.catalog(chain_id).deleted_types
            if deleted:
                target.add(type_id)
            else:
                target.discard(type_id)

    def put_certificate_type(self, chain_id: int, record: Record) -> None:
        with self.lock:
            _replace(self.catalog(chain_id).certificate_types, record)

    def remove_certificate_type(self, chain_id: int, type_id: int) -> None:
        with self.lock:
            catalog = self.catalog(chain_id)
            catalog.certificate_types = [t for t in catalog.certificate_types if t["id"] != type_id]

    def put_promotion(
        self, chain_id: int, record: Record, locations: list[int], started: date | None = None
    ) -> None:
        """Store a created or edited promotion and where it runs; a new one runs from
        `started` (default: today)."""
        with self.lock:
            catalog = self.catalog(chain_id)
            if record["id"] not in catalog.promotion_locations:
                catalog.promotion_days[record["id"]] = (started or self.clock.today, None)
            _replace(catalog.promotions, record)
            catalog.promotion_locations[record["id"]] = sorted(locations)

    def remove_promotion(self, chain_id: int, program_id: int) -> None:
        """Delete a promotion; it ran until yesterday."""
        with self.lock:
            catalog = self.catalog(chain_id)
            catalog.promotions = [p for p in catalog.promotions if p["id"] != program_id]
            catalog.promotion_locations.pop(program_id, None)
            started, _ = catalog.promotion_days.get(program_id, (None, None))
            catalog.promotion_days[program_id] = (started, self.clock.today)

    # ---------------------------------------------------------------- changes: memberships

    def put_membership(self, chain_id: int, record: Record) -> None:
        """Store the new current version of a sold membership."""
        with self.lock:
            self._memberships[record["id"]] = record
            index = self._indexes.get(chain_id)
            if index is not None:
                _track(index, record)

    # ---------------------------------------------------------------- changes: transactions

    def correct_transaction(
        self, chain_id: int, day: date, transaction_id: int, *, amount: float | None
    ) -> None:
        """Change one transaction's amount, or remove it (amount None)."""
        with self.lock:
            fix = self._day_fix(chain_id, day)
            if amount is None:
                fix.removed.add(transaction_id)
            else:
                fix.amounts[transaction_id] = amount
            fix.revision += 1

    def next_transaction_position(self, chain_id: int, day: date) -> int:
        """Position (within the chain-day's id block) of the next transaction added to it."""
        with self.lock:
            fix = self._corrections.get((self.chain_index(chain_id), day))
            added = 0 if fix is None else len(fix.added)
            return super().transaction_count(chain_id, day) + added

    def add_transaction(self, chain_id: int, day: date, record: Record, location: int) -> None:
        with self.lock:
            fix = self._day_fix(chain_id, day)
            fix.added.append((record, location))
            fix.revision += 1

    def record(self, day: date, chain_id: int, kind: str, entity_id: int) -> None:
        with self.lock:
            self.changes.append(Change(day, chain_id, kind, entity_id))

    # ---------------------------------------------------------------- internals

    def _current(self, record: Record) -> Record:
        current = self._memberships.get(record["id"], record)
        embedded = self._embedded_types.get(current["type"]["id"]) if self._embedded_types else None
        return current if embedded is None else {**current, "type": embedded}

    def _types_of(self, chain_id: int) -> list[Record]:
        catalog = self._catalogs.get(chain_id)
        return super().membership_types(chain_id) if catalog is None else catalog.membership_types

    def _index(self, chain_id: int) -> _MembershipIndex:
        index = self._indexes.get(chain_id)
        if index is None:
            index = _MembershipIndex(live={}, sold_types=set())
            for record in self.all_memberships(chain_id):
                _track(index, record)
            self._indexes[chain_id] = index
        return index

    def _day_fix(self, chain_id: int, day: date) -> DayCorrections:
        return self._corrections.setdefault((self.chain_index(chain_id), day), DayCorrections())

    def _promotions_running(self, chain_id: int, day: date) -> dict[bool, list[int]] | None:
        """Ids of the promotions that ran on `day`, cashback ones under True, when one the
        generator may name had stopped by then; None when the generated ids all stand."""
        catalog = self._catalogs.get(chain_id)
        if catalog is None or not any(
            ended is not None and ended <= day for _, ended in catalog.promotion_days.values()
        ):
            return None
        running: dict[bool, set[int]] = {True: set(), False: set()}
        for promo in self._chain(chain_id).promotions + catalog.promotions:
            started, ended = catalog.promotion_days.get(promo["id"], (None, None))
            if (started is None or started <= day) and (ended is None or ended > day):
                running[promo["type"].startswith("cashback")].add(promo["id"])
        return {family: sorted(ids) for family, ids in running.items()}

    def _existing_ids(self, kind: str) -> Iterator[int]:
        for chain_id in self.chain_ids():
            chain = self._chain(chain_id)
            catalog = self._catalogs.get(chain_id)
            if kind == "membership_type":
                yield from (t["id"] for t in self._types_of(chain_id))
            elif kind == "certificate_type":
                yield from (t["id"] for t in chain.certificate_types)
                if catalog is not None:
                    yield from (t["id"] for t in catalog.certificate_types)
            elif kind == "promotion":
                yield from (p["id"] for p in chain.promotions)
            elif kind == "rule":
                yield from (r["id"] for p in chain.promotions for r in p["rules"])
            elif kind == "template":
                yield from (t["id"] for t in chain.templates)
            else:
                raise KeyError(f"no id kind {kind!r}")


def _by_id(records: list[Record], record_id: int) -> Record | None:
    for record in records:
        if record["id"] == record_id:
            return record
    return None


def _replace(records: list[Record], record: Record) -> None:
    for position, existing in enumerate(records):
        if existing["id"] == record["id"]:
            records[position] = record
            return
    records.append(record)


def _track(index: _MembershipIndex, record: Record) -> None:
    index.sold_types.add(record["type"]["id"])
    if record["status"]["id"] in LIVE_STATUSES:
        index.live[record["id"]] = record
    else:
        index.live.pop(record["id"], None)


def _corrected(
    generated: DayTransactions,
    fix: DayCorrections | None,
    running: dict[bool, list[int]] | None,
) -> DayTransactions:
    records: list[Record] = []
    locations: list[int] = []
    for record, location in zip(generated.records, generated.location_ids, strict=True):
        if fix is not None and record["id"] in fix.removed:
            continue
        if fix is not None and record["id"] in fix.amounts:
            record = {**record, "amount": fix.amounts[record["id"]]}
        if running is not None and record["program_id"]:
            record = _rerun_promotion(record, running)
        records.append(record)
        locations.append(location)
    if fix is not None:
        for record, location in fix.added:
            if record["id"] not in fix.removed:
                amount = fix.amounts.get(record["id"], record["amount"])
                records.append({**record, "amount": amount})
                locations.append(location)
    return DayTransactions(records, locations)


def _rerun_promotion(record: Record, running: dict[bool, list[int]]) -> Record:
    """A generated transaction naming a promotion that did not run that day names one of the
    same family that did (chosen by the transaction id, so every read agrees)."""
    family = running[record["type_id"] in (2, 3, 4, 7)]
    if not family or record["program_id"] in family:
        return record
    return {**record, "program_id": family[record["id"] % len(family)]}


# ---------------------------------------------------------------- membership record helpers


def with_status(record: Record, status_id: int) -> Record:
    """A copy of the membership with another E4 status."""
    slug, title = MEMBERSHIP_STATUSES[status_id]
    status = {**record["status"], "id": status_id, "title": title, "extended_title": title}
    return {**record, "status": {**status, "slug": slug}}


def balance_string(links: list[Record]) -> str:
    """The membership's human balance summary, as the generator writes it."""
    return ", ".join(
        f"{(lnk.get('service') or lnk.get('category') or {}).get('title', '')} (x{lnk['count']})"
        for lnk in links
    )


def visits_left(record: Record) -> int | None:
    """Visits left on a membership; None when its balance is unlimited."""
    if record["is_united_balance"]:
        if record["is_united_balance_unlimited"]:
            return None
        return int(record["united_balance_services_count"])
    links = record["balance_container"]["links"]
    counted = [int(lnk["count"]) for lnk in links if not lnk["is_unlimited"]]
    if not counted and links:
        return None
    return sum(counted)


def stamp(moment: datetime, like: str | None) -> str:
    """`moment` written the way `like` (another timestamp of the same record) is written."""
    colon = like is None or like[-3] == ":"
    millis = like is not None and ".000" in like
    return format_timestamp(moment, colon=colon, millis=millis)


def extend(moment_text: str | None, days: int, like: str | None) -> str | None:
    """A timestamp moved `days` later (None stays None)."""
    if moment_text is None:
        return None
    return stamp(parse_timestamp(moment_text) + timedelta(days=days), like)


def period_days(period: int, unit_id: int) -> int:
    return int(period) * UNIT_DAYS.get(int(unit_id), 0)


def embedded_type(record: Record) -> dict[str, Any]:
    """The subset of a membership type a sold membership embeds."""
    return {k: record[k] for k in _EMBEDDED_TYPE_FIELDS}
