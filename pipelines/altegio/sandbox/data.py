"""Deterministic synthetic Altegio chain loyalty data: the sandbox's ground truth.

The small catalogues (chains, locations, card types, templates, membership/certificate types,
promotions) are generated once per dataset. Memberships and transactions are generated lazily
per (chain, day) from an RNG seeded by (seed, chain, day), so a dataset of millions of
transactions never sits in memory and any single day can be regenerated on its own. Ids encode
(day, chain, position) so `memberships_by_ids` finds a record without scanning.
"""

import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from pipelines.altegio.endpoints import ENDPOINTS
from pipelines.altegio.sandbox.config import SandboxConfig
from pipelines.altegio.sources.chains import ACCESS_FLAGS

Record = dict[str, Any]

# Ids of day-generated records are positional: (days since EPOCH, chain index, position).
EPOCH = date(2020, 1, 1)
MAX_CHAINS = 64
TX_STRIDE = 50_000  # max transactions per chain-day
TX_ID_BASE = 10_000_000
MEMBERSHIP_STRIDE = 100  # max memberships per chain-day
MEMBERSHIP_ID_BASE = 1_000_000

# (zone, city, _country, country_id, city_id, currency, lat, lon)
LOCALES: tuple[tuple[str, str, str, int, int, str, float, float], ...] = (
    ("Europe/London", "London", "United Kingdom", 1, 101, "GBP", 51.5072, -0.1276),
    ("America/New_York", "New York", "United States", 5, 83, "USD", 40.7306, -73.9352),
    ("Asia/Dubai", "Dubai", "United Arab Emirates", 9, 301, "AED", 25.2048, 55.2708),
    ("Europe/Berlin", "Berlin", "Germany", 3, 201, "EUR", 52.52, 13.405),
    ("Asia/Kolkata", "Mumbai", "India", 11, 401, "INR", 19.076, 72.8777),
    ("America/Los_Angeles", "Los Angeles", "United States", 5, 84, "USD", 34.0522, -118.2437),
    ("Australia/Sydney", "Sydney", "Australia", 13, 501, "AUD", -33.8688, 151.2093),
    ("America/Sao_Paulo", "Sao Paulo", "Brazil", 17, 601, "BRL", -23.5505, -46.6333),
)
KINDS = (
    ("Beauty Salon", 1, ("Haircut", "Colouring", "Manicure", "Pedicure", "Brows")),
    ("Day Spa", 2, ("Massage", "Facial", "Sauna", "Body wrap", "Hammam")),
    ("Fitness Club", 3, ("Personal training", "Yoga", "Pilates", "Spinning", "Swimming")),
)
DISTRICTS = ("Central", "Riverside", "Old Town", "Harbour", "Parkside", "North", "West End")

# Client accounts (deposits): how many per chain, their ids (unique across chains), their types.
DEPOSITS_PER_CHAIN = (200, 400)
DEPOSIT_STRIDE = 100_000
DEPOSIT_ID_BASE = 3_000_000
DEPOSIT_TYPE_ID_BASE = 600
CLIENT_ID_BASE = 70_000_000
DEPOSIT_TYPE_TITLES = ("Prepaid balance", "Gift balance", "Corporate account", "Old wallet")
CLIENT_FIRST_NAMES = ("Ann", "Ben", "Chloe", "Dev", "Elif", "Femi", "Grace", "Hugo", "Ines", "Jon")
CLIENT_LAST_NAMES = ("Lee", "Moreau", "Novak", "Okafor", "Patel", "Quinn", "Rossi", "Sato", "Tan")

# Salons are busiest at the end of the week; Sunday is quiet.
WEEKDAY_FACTOR = (0.7, 0.8, 0.9, 1.0, 1.3, 1.5, 0.5)
ZERO_DAY_PROBABILITY = 0.06

TIME_UNITS = (0, 1, 2, 3, 4)  # E1
EXPIRATION_TYPE_TITLES = {  # E2, titles as the backend sends them (Altegio MCP mapping)
    1: "Activation on first visit",
    2: "Activation on sale",
    3: "From a specific date",
}
MEMBERSHIP_STATUSES = {  # E4: id -> (slug, title)
    1: ("created", "Released"),
    2: ("active", "activated"),
    3: ("expired", "Overdue"),
    4: ("wasted", "Used up"),
}
CERTIFICATE_ITEM_TYPES = {  # E5
    0: "All services and products",
    1: "Any services",
    2: "Any products",
    3: "Specific services",
    4: "Specific services and any products",
}
PROMOTION_TYPES = (  # E8, with the numeric loyalty_type_id the search answer carries (E13)
    # The four codes the contract can tie to a type (E13) are used as documented; the rest
    # are this sandbox's own, as undocumented on the real API as they are here.
    ("discount_static", 1),
    ("discount_accumulative_visits", 13),
    ("discount_accumulative_sold", 4),
    ("discount_accumulative_paid", 3),
    ("cashback_static_sold", 5),
    ("cashback_static_paid", 6),
    ("cashback_accumulative_paid", 7),
    ("cashback_accumulative_sold", 8),
    ("cashback_accumulative_paid_visits", 9),
    ("cashback_accumulative_sold_visits", 10),
    ("cashback_sold_visits", 11),
    ("cashback_paid_visits", 12),
    ("package_discount", 2),
)
ITEM_TYPE_POLICIES = ("any_allowed", "not_allowed", "custom_allowed")  # E9
VALUE_UNITS = {"percent": 1, "amount": 2}  # E10 -> E14
EXPIRATION_UNITS = ("day", "week", "month", "year")  # E11
PARAMS_SOURCES = ("loyalty_card", "active_companies", "chain")  # E12
TRANSACTION_TYPES = {  # E15
    1: "Promotion discount",
    2: "Loyalty program accrual",
    3: "Loyalty card withdrawal",
    4: "Referral program accrual",
    5: "Manual top-up",
    6: "Manual withdrawal",
    7: "Write-off of expired points",
    8: "Gift certificate withdrawal",
    9: "Membership use",
    10: "Membership cost recalculation",
    11: "Client account withdrawal",
}
TRANSACTION_TYPE_WEIGHTS = (30, 22, 12, 3, 3, 2, 3, 6, 12, 2, 5)
TRANSACTION_STATUS_WEIGHTS = (88, 6, 4, 2)  # status_id 1..4
TEMPLATE_TYPES = ("big", "mid", "small", "custom")  # E17
MESSAGE_TYPES = (  # E18
    "loyalty_discount_expiration",
    "loyalty_cashback_expiration",
    "loyalty_discount_increased",
    "loyalty_discount_decreased",
    "loyalty_card_created",
    "loyalty_card_withdraw",
    "loyalty_withdraw_cancelled",
    "loyalty_card_manual",
    "loyalty_card_manual_withdraw",
    "loyalty_card_cashback",
    "loyalty_card_cashback_cancelled",
    "loyalty_card_income",
    "loyalty_discount_changed",
    "loyalty_cashback_changed",
    "loyalty_settings_abonement_notification",
)
# The flag set of the official /groups example (the other flags are simply absent).
EXAMPLE_ACCESS_FLAGS = (
    "settings_access",
    "clients_access",
    "users_access",
    "loyalty_access",
    "loyalty_cards_manual_transactions_access",
    "chain_services_access",
)
GATING_FLAGS = tuple(sorted({e.access_flag for e in ENDPOINTS.values() if e.access_flag}))


def seeded_rng(key: str) -> random.Random:
    """An RNG fully determined by `key` (string seeds hash with SHA-512: stable across runs)."""
    # Synthetic test data, not secrets: a reproducible PRNG is the point.
    return random.Random(key)  # noqa: S311


def format_timestamp(moment: datetime, *, colon: bool, millis: bool) -> str:
    """ISO-8601 with the offset written as Altegio does: `-05:00` or `-0500`."""
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if millis:
        text += ".000"
    offset = moment.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return f"{text}{sign}{hours:02d}{':' if colon else ''}{mins:02d}"


def parse_timestamp(text: str) -> datetime:
    """Aware datetime from an ISO-8601 string; raises ValueError without an offset."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("timestamp without offset")
    return moment


class _Ids:
    """Increasing ids per kind with irregular gaps, unique across chains."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._next: dict[str, int] = {}

    def take(self, kind: str, base: int) -> int:
        current = self._next.get(kind, base + self._rng.randint(0, 900))
        self._next[kind] = current + self._rng.randint(1, 13)
        return current


@dataclass
class SandboxChain:
    """One chain and its small, eagerly generated catalogues."""

    index: int
    id: int
    title: str
    timezone: str
    group: Record
    location_ids: list[int]
    location_weights: list[int]
    services: list[tuple[int, str]]
    card_types: list[Record] = field(default_factory=list)
    templates: list[Record] = field(default_factory=list)
    membership_types: list[Record] = field(default_factory=list)
    certificate_types: list[Record] = field(default_factory=list)
    promotions: list[Record] = field(default_factory=list)  # full detail, all includes
    promotion_locations: dict[int, list[int]] = field(default_factory=dict)
    card_id_base: int = 0
    certificate_id_base: int = 0


@dataclass(frozen=True)
class DayTransactions:
    """The transactions of one chain-day with their hidden location, in served order."""

    records: list[Record]
    location_ids: list[int]


class SandboxDataset:
    """Ground truth: exactly the raw records the sandbox serves (before faults)."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self._chains: list[SandboxChain] = []
        self._by_id: dict[int, SandboxChain] = {}
        self._location_chain: dict[int, SandboxChain] = {}
        self._build()
        # Caches are per instance (bound methods), sized so a long date range stays bounded;
        # the server keeps its own cache of rendered transaction rows.
        self._day_transactions = lru_cache(maxsize=4)(self._generate_day_transactions)
        self._day_memberships = lru_cache(maxsize=2048)(self._generate_day_memberships)
        self._day_count = lru_cache(maxsize=65536)(self._generate_day_count)
        self._deposits = lru_cache(maxsize=64)(self._generate_deposits)

    # ---------------------------------------------------------------- public API

    def last_day(self) -> date:
        """The last day with data: the config's end here; the day before "today" in a World."""
        return self.config.end

    def chain_ids(self) -> list[int]:
        """Ids of every chain the sandbox user belongs to, in /groups order."""
        return [c.id for c in self._chains]

    def chain_timezone(self, chain_id: int) -> str:
        """IANA time zone of the chain (that of its first location)."""
        return self._chain(chain_id).timezone

    def groups(self) -> list[Record]:
        """The `/groups` data array: one object per chain with companies and access flags."""
        return [self._group_with_access(c) for c in self._chains]

    def location_ids(self, chain_id: int) -> list[int]:
        """Location ids of one chain, in /groups order."""
        return list(self._chain(chain_id).location_ids)

    def membership_types(self, chain_id: int) -> list[Record]:
        """Membership types (abonement_types) of the chain, in served order."""
        return self._chain(chain_id).membership_types

    def memberships(
        self, chain_id: int, created_from: datetime, created_to: datetime
    ) -> list[Record]:
        """Memberships created in [created_from, created_to] (both inclusive, aware datetimes)."""
        return list(self.iter_memberships(chain_id, created_from, created_to))

    def iter_memberships(
        self, chain_id: int, created_from: datetime, created_to: datetime
    ) -> Iterator[Record]:
        """Lazy form of `memberships`."""
        chain = self._chain(chain_id)
        zone = ZoneInfo(chain.timezone)
        first = max(created_from.astimezone(zone).date(), self.config.start)
        last = min(created_to.astimezone(zone).date(), self.last_day())
        day = first
        while day <= last:
            for record, moment in self._day_memberships(chain.index, day):
                if created_from <= moment <= created_to:
                    yield record
            day += timedelta(days=1)

    def memberships_by_ids(self, chain_id: int, ids: Iterable[int]) -> list[Record]:
        """Memberships of the chain with these ids, ascending by id; unknown ids are skipped."""
        chain = self._chain(chain_id)
        found: list[Record] = []
        for membership_id in sorted(set(ids)):
            slot, position = divmod(membership_id - MEMBERSHIP_ID_BASE, MEMBERSHIP_STRIDE)
            day_number, chain_index = divmod(slot, MAX_CHAINS)
            if membership_id < MEMBERSHIP_ID_BASE or chain_index != chain.index:
                continue
            day = EPOCH + timedelta(days=day_number)
            if not self.config.start <= day <= self.last_day():
                continue
            rows = self._day_memberships(chain.index, day)
            if position < len(rows):
                found.append(rows[position][0])
        return found

    def certificate_types(self, chain_id: int) -> list[Record]:
        """Certificate types of the chain, in served order."""
        return self._chain(chain_id).certificate_types

    def transactions(
        self,
        chain_id: int,
        day_from: date,
        day_to: date,
        location_ids: Iterable[int] | None = None,
    ) -> list[Record]:
        """Transactions of chain-local days day_from..day_to (inclusive), optionally by location."""
        wanted = None if location_ids is None else set(location_ids)
        chain = self._chain(chain_id)
        rows: list[Record] = []
        for day in _days(max(day_from, self.config.start), min(day_to, self.last_day())):
            block = self._day_transactions(chain.index, day)
            for record, location in zip(block.records, block.location_ids, strict=True):
                if wanted is None or location in wanted:
                    rows.append(record)
        return rows

    def day_transactions(self, chain_id: int, day: date) -> DayTransactions:
        """One chain-day of transactions with each row's hidden location id."""
        chain = self._chain(chain_id)
        if not self.config.start <= day <= self.last_day():
            return DayTransactions([], [])
        return self._day_transactions(chain.index, day)

    def transaction_count(self, chain_id: int, day: date) -> int:
        """How many transactions the chain has on that day (cheap; no rows generated)."""
        return self._day_count(self._chain(chain_id).index, day)

    def promotion_search(self, location_id: int) -> list[Record]:
        """The `/company/{location_id}/loyalty/programs/search` data array for one location."""
        chain = self._location_chain[location_id]
        return [
            _search_item(p, chain.id)
            for p in chain.promotions
            if location_id in chain.promotion_locations[p["id"]]
        ]

    def promotion(self, chain_id: int, program_id: int) -> Record | None:
        """One promotion with every include block, or None if the chain has no such id."""
        for promo in self._chain(chain_id).promotions:
            if promo["id"] == program_id:
                return promo
        return None

    def promotions(self, chain_id: int) -> list[Record]:
        """Every promotion of the chain, full detail with all include blocks."""
        return self._chain(chain_id).promotions

    def notification_templates(self, chain_id: int) -> list[Record]:
        """Loyalty notification templates of the chain."""
        return self._chain(chain_id).templates

    def card_types(self, chain_id: int) -> list[Record]:
        """Loyalty card types of the chain."""
        return self._chain(chain_id).card_types

    def deposits(self, chain_id: int) -> list[Record]:
        """Client accounts (deposits) of the chain with their type and client, in served order."""
        return self._deposits(self._chain(chain_id).index)

    def has_chain(self, chain_id: int) -> bool:
        """True when the sandbox user belongs to that chain."""
        return chain_id in self._by_id

    def chain_of_location(self, location_id: int) -> int | None:
        """Chain id owning a location, or None."""
        chain = self._location_chain.get(location_id)
        return None if chain is None else chain.id

    def chain_index(self, chain_id: int) -> int:
        """0-based position of the chain in /groups (what fault/access knobs refer to)."""
        return self._chain(chain_id).index

    # ---------------------------------------------------------------- catalogues

    def _chain(self, chain_id: int) -> SandboxChain:
        try:
            return self._by_id[chain_id]
        except KeyError:
            raise KeyError(f"no chain {chain_id} in the sandbox") from None

    def _group_with_access(self, chain: SandboxChain) -> Record:
        group = dict(chain.group)
        access = dict(group["access"])
        for flag, value in self.config.access_overrides.get(chain.index, {}).items():
            if value is None:
                access.pop(flag, None)
            else:
                access[flag] = value
        if self.config.faults.forbidden_chain == chain.index:
            for flag in GATING_FLAGS:
                access.pop(flag, None)
        group["access"] = access
        return group

    def _build(self) -> None:
        cfg = self.config
        rng = seeded_rng(f"{cfg.seed}/catalog")
        ids = _Ids(seeded_rng(f"{cfg.seed}/ids"))
        chain_ids = sorted(rng.sample(range(100_000, 999_999), cfg.chains))
        for index, chain_id in enumerate(chain_ids):
            locale = LOCALES[(cfg.seed + index) % len(LOCALES)]
            kind_title, business_type, services = KINDS[(cfg.seed + index) % len(KINDS)]
            zone, city, _country, country_id, city_id, currency, lat, lon = locale
            brand = rng.choice(("Aurora", "Lumen", "Nordic", "Velvet", "Zen", "Pulse", "Iris"))
            title = f"{brand} {kind_title} {city}"
            companies: list[Record] = []
            location_ids: list[int] = []
            offset = ZoneInfo(zone).utcoffset(datetime.combine(cfg.start, time(12))) or timedelta()
            hours = offset.total_seconds() / 3600
            for n in range(cfg.locations_per_chain):
                location_id = ids.take("location", 30_000)
                location_ids.append(location_id)
                district = DISTRICTS[(n + index) % len(DISTRICTS)]
                company: Record = {
                    "id": location_id,
                    "title": f"{brand} {district}",
                    "public_title": f"{brand} {kind_title} {district}",
                    "business_group_id": business_type,
                    "business_type_id": business_type * 10 + 1,
                    "country_id": country_id,
                    "city_id": city_id,
                    "timezone": int(hours) if hours == int(hours) else hours,
                    "timezone_name": zone,
                    "address": f"{rng.randint(1, 250)} {district} Street, {city}",
                    "zip": f"{rng.randint(10000, 99999)}",
                    "phone": f"+1315555{rng.randint(1000, 9999)}",
                    "phones": [f"+1315555{rng.randint(1000, 9999)}"],
                    "site": f"https://{brand.lower()}-{district.lower().replace(' ', '')}.example",
                    "logo": f"https://assets.example/logo/{location_id}.png",
                    "currency_short_title": currency,
                    "coordinate_lat": round(lat + rng.uniform(-0.05, 0.05), 6),
                    "coordinate_lon": round(lon + rng.uniform(-0.05, 0.05), 6),
                    "allow_delete_record": rng.random() < 0.5,
                    "allow_change_record": True,
                }
                companies.append(company)
            if index == 0:
                access = dict.fromkeys(EXAMPLE_ACCESS_FLAGS, "1")
            else:
                access = dict.fromkeys(ACCESS_FLAGS, "1")
                access["deposits_access"] = "0"
                access["analytics_access"] = "0"
            chain = SandboxChain(
                index=index,
                id=chain_id,
                title=title,
                timezone=zone,
                group={"id": chain_id, "title": title, "companies": companies, "access": access},
                location_ids=location_ids,
                location_weights=[rng.randint(1, 5) for _ in location_ids],
                services=[(ids.take("service", 7_000_000), s) for s in services],
            )
            chain.card_id_base = 5_000_000 + index * 100_000
            chain.certificate_id_base = 8_000_000 + index * 100_000
            self._chains.append(chain)
            self._by_id[chain_id] = chain
            for location_id in location_ids:
                self._location_chain[location_id] = chain
            self._build_card_types(chain, rng, ids)
            self._build_templates(chain, rng, ids)
            self._build_membership_types(chain, rng, ids)
            self._build_certificate_types(chain, rng, ids)
            self._build_promotions(chain, rng, ids, companies, locale)

    def _build_card_types(self, chain: SandboxChain, rng: random.Random, ids: _Ids) -> None:
        names = ("Silver card", "Gold card", "Platinum card", "Friends card")
        count = rng.randint(2, 4)
        chain.card_types = [{"id": ids.take("card_type", 100), "title": t} for t in names[:count]]

    def _build_templates(self, chain: SandboxChain, rng: random.Random, ids: _Ids) -> None:
        start = rng.randrange(len(TEMPLATE_TYPES))
        chain.templates = [
            {
                "id": ids.take("template", 10),
                "type": TEMPLATE_TYPES[(start + n) % len(TEMPLATE_TYPES)],
                "body": f"{message.replace('_', ' ').capitalize()}: {{client_name}}",
                "message_type": message,
            }
            for n, message in enumerate(MESSAGE_TYPES)
        ]

    def _link(self, chain: SandboxChain, rng: random.Random, count: int, n: int) -> Record:
        service_id, service_title = chain.services[n % len(chain.services)]
        category_node: Record = {
            "id": service_id // 100,
            "category_id": 1,
            "is_category": True,
            "title": f"{service_title} services",
            "online_sale_title": f"{service_title} services",
        }
        unlimited = count == 0
        if n % 2 == 0:
            return {
                "count": count,
                "is_unlimited": unlimited,
                "service": {
                    "id": service_id,
                    "is_category": False,
                    "category_id": category_node["id"],
                    "title": service_title,
                    "online_sale_title": service_title,
                    "is_chain": True,
                    "chain_price_min": float(rng.randint(20, 60)),
                    "chain_price_max": float(rng.randint(60, 120)),
                    "category": category_node,
                },
            }
        return {
            "count": count,
            "is_unlimited": unlimited,
            "category": {
                **category_node,
                "is_chain": True,
                "chain_price_min": float(rng.randint(20, 60)),
                "chain_price_max": float(rng.randint(60, 120)),
                "category": [],
            },
        }

    def _build_membership_types(self, chain: SandboxChain, rng: random.Random, ids: _Ids) -> None:
        cfg = self.config
        count = 6 + rng.randint(0, 4)
        for n in range(count):
            unit = TIME_UNITS[n % len(TIME_UNITS)]
            period = 0 if unit == 0 else rng.choice((1, 3, 6, 10, 12, 30))
            visits = rng.choice((5, 8, 10, 12, 20))
            united = n % 4 == 1
            cost = round(rng.uniform(40, 900), 2)
            archived = n % 7 == 6
            expiration_type = 1 + n % 3
            category: Any = (
                {"id": 1 + n % 3, "title": "Memberships"},
                None,
                "standard",
            )[n % 3]
            links = [self._link(chain, rng, visits, k) for k in range(1 + n % 3)]
            if n % 5 == 4:
                links[0]["count"] = 0
                links[0]["is_unlimited"] = True
            chain.membership_types.append(
                {
                    "id": ids.take("membership_type", 800),
                    "salon_group_id": chain.id,
                    "category_id": None if n % 2 else 1 + n % 3,
                    "title": f"{visits}-visit {chain.services[n % len(chain.services)][1]} pass",
                    "period": period,
                    "period_unit_id": unit,
                    "allow_freeze": n % 2 == 0,
                    "freeze_limit": rng.choice((0, 7, 14, 30)),
                    "freeze_limit_unit_id": 1 + n % 4,
                    "is_booking_when_frozen_allowed": n % 3 == 0,
                    "is_allow_empty_code": n % 2 == 1,
                    "is_united_balance": united,
                    "is_united_balance_unlimited": False,
                    "is_code_required": n % 3 == 2,
                    "balance_edit_type_id": n % 3,
                    "cost": cost,
                    "chain_price_min": cost,
                    "chain_price_max": round(cost * 1.2, 2),
                    "is_chain": True,
                    "expiration_type_id": expiration_type,
                    "expiration_type_title": EXPIRATION_TYPE_TITLES[expiration_type],
                    "category": category,
                    "weight": n,
                    "abonements_count": rng.randint(0, 400),
                    "is_online_sale_enabled": n % 2 == 0,
                    "online_sale_title": f"Online {visits}-visit pass" if n % 2 == 0 else "",
                    "online_sale_description": "Buy online and save" if n % 2 == 0 else "",
                    "online_sale_price": round(cost * 0.95, 2),
                    "online_sale_image": None
                    if n % 2
                    else f"https://assets.example/abonement/{n}.png",
                    "service_price_correction": n % 2 == 1,
                    "united_balance_services_count": visits if united else 0,
                    "autoactivation_time": rng.choice((0, 10, 30)),
                    "autoactivation_time_unit_id": 1 + (n + 1) % 4,
                    "attached_location_ids": list(chain.location_ids[: 1 + n % 3]),
                    "attached_salon_ids": list(chain.location_ids[: 1 + n % 3]),
                    "is_archived": archived,
                    "date_archived": format_timestamp(
                        datetime.combine(cfg.start, time(9), ZoneInfo(chain.timezone)),
                        colon=True,
                        millis=False,
                    )
                    if archived
                    else None,
                    "availability": []
                    if n % 2
                    else [
                        {"week_days": [1, 2, 3, 4, 5], "intervals": [{"from": 32400, "to": 64800}]}
                    ],
                    "balance_container": {"links": links},
                }
            )

    def _build_certificate_types(self, chain: SandboxChain, rng: random.Random, ids: _Ids) -> None:
        cfg = self.config
        count = 12 + rng.randint(0, 3)
        zone = ZoneInfo(chain.timezone)
        for n in range(count):
            item_type = n % 5
            expiration_type = n % 3
            balance = float(rng.choice((25, 50, 100, 150, 200, 500)))
            archived = n % 6 == 5
            chain.certificate_types.append(
                {
                    "id": ids.take("certificate_type", 289_000),
                    "title": f"Gift Certificate {int(balance)}",
                    "balance": balance,
                    "is_multi": n % 2 == 0,
                    "company_group_id": chain.id,
                    "category_id": None if n % 3 else 10 + n,
                    "weight": n,
                    "item_type_id": item_type,
                    "expiration_type_id": expiration_type,
                    "expiration_date": format_timestamp(
                        datetime.combine(cfg.end + timedelta(days=180), time(23, 59), zone),
                        colon=n % 2 == 0,
                        millis=False,
                    )
                    if expiration_type == 1
                    else None,
                    "expiration_timeout": rng.choice((3, 6, 12)) if expiration_type == 2 else 0,
                    "expiration_timeout_unit_id": 1 + n % 4,
                    "balance_edit_type_id": 1 + n % 2,
                    "is_allow_empty_code": n % 3 == 0,
                    "is_serial_number_limited": n % 4 == 0,
                    "is_archived": archived,
                    "date_archived": format_timestamp(
                        datetime.combine(cfg.start, time(10), zone), colon=True, millis=False
                    )
                    if archived
                    else None,
                    "online_sale_is_enabled": n % 2 == 1,
                    "online_sale_title": f"Gift {int(balance)}" if n % 2 else "",
                    "online_sale_description": "A gift they will love" if n % 2 else "",
                    "online_sale_price": balance,
                    "online_sale_image": f"https://assets.example/cert/{n}.png" if n % 2 else None,
                    "released_total": rng.randint(0, 300),
                    "item_type": {"id": item_type, "title": CERTIFICATE_ITEM_TYPES[item_type]},
                    "service_ids": [s for s, _ in chain.services[: 1 + n % 3]]
                    if item_type in (3, 4)
                    else [],
                    "salon_ids": list(chain.location_ids[: 1 + n % len(chain.location_ids)]),
                }
            )

    def _build_promotions(
        self,
        chain: SandboxChain,
        rng: random.Random,
        ids: _Ids,
        companies: list[Record],
        locale: tuple[str, str, str, int, int, str, float, float],
    ) -> None:
        count = len(PROMOTION_TYPES) + rng.randint(0, 3)
        templates_by_message = {t["message_type"]: t for t in chain.templates}
        by_location = {c["id"]: c for c in companies}
        for n in range(count):
            promo_type, _ = PROMOTION_TYPES[(n + chain.index) % len(PROMOTION_TYPES)]
            value_unit = ("percent", "amount")[n % 2]
            service_policy = ITEM_TYPE_POLICIES[n % 3]
            good_policy = ITEM_TYPE_POLICIES[(n + 1) % 3]
            promo_id = ids.take("promotion", 50_000)
            accumulative = "accumulative" in promo_type or promo_type.endswith("_visits")
            rules: list[Record] = []
            thresholds = (10, 30, 60) if accumulative else (0,)
            for k, threshold in enumerate(thresholds[: 1 + rng.randint(0, len(thresholds) - 1)]):
                rules.append(
                    {
                        "id": ids.take("rule", 90),
                        "parameter": threshold,
                        "value": 2.5 * (k + 1) if value_unit == "percent" else float(5 * (k + 1)),
                        "loyalty_program_id": promo_id,
                        "loyalty_type_id": dict(PROMOTION_TYPES)[promo_type],
                        "service_id": chain.services[k][0] if n % 5 == 3 else 0,
                    }
                )
            # Promotions usually run at several locations; a few at one only.
            size = len(chain.location_ids) if n % 3 == 0 else 1 + rng.randrange(len(companies))
            locations = sorted(rng.sample(chain.location_ids, size))
            chain.promotion_locations[promo_id] = locations
            cashback = promo_type.startswith("cashback")
            changed = templates_by_message[
                "loyalty_cashback_changed" if cashback else "loyalty_discount_changed"
            ]
            expiring = templates_by_message[
                "loyalty_cashback_expiration" if cashback else "loyalty_discount_expiration"
            ]
            changed_id = 0 if n % 4 == 3 else changed["id"]
            expiring_id = 0 if n % 5 == 4 else expiring["id"]
            card_types = rng.sample(chain.card_types, 1 + n % 2)
            promo: Record = {
                "id": promo_id,
                "title": f"{promo_type.replace('_', ' ').capitalize()} #{n + 1}",
                "type": promo_type,
                "service_item_type": service_policy,
                "good_item_type": good_policy,
                "value_unit": value_unit,
                "usage_limit": rng.choice((0, 0, 5, 10)) if cashback else 0,
                "visit_multiplicity": rng.choice((0, 1, 2)) if cashback else 0,
                "sold_items_multiplicity": rng.choice((0, 1, 3)),
                "expiration_timeout": rng.choice((0, 3, 6, 12)),
                "expiration_timeout_unit": EXPIRATION_UNITS[n % 4],
                "expiration_notification_timeout": rng.choice((0, 3, 7)),
                "params_source_type": PARAMS_SOURCES[n % 3],
                "history_start_date": (
                    self.config.start - timedelta(days=rng.randint(0, 365))
                ).isoformat(),
                "on_changed_notification_template_id": changed_id,
                "on_expiration_notification_template_id": expiring_id,
                "loyalty_card_types": [dict(c) for c in sorted(card_types, key=lambda c: c["id"])],
                "rules": rules,
                "companies": [
                    {
                        "id": loc,
                        "title": by_location[loc]["title"],
                        "country": locale[2],
                        "country_id": locale[3],
                        "city": locale[1],
                        "city_id": locale[4],
                        "phone": by_location[loc]["phone"],
                        "timezone": locale[0],
                        "address": by_location[loc]["address"],
                        "coordinate_lat": by_location[loc]["coordinate_lat"],
                        "coordinate_lng": by_location[loc]["coordinate_lon"],
                    }
                    for loc in locations
                ],
                "applicable_items": [
                    {
                        "id": service_id,
                        "title": title,
                        "is_service": True,
                        "is_category": k % 2 == 1,
                    }
                    for k, (service_id, title) in enumerate(chain.services[: 1 + n % 3])
                ]
                if service_policy == "custom_allowed"
                else [],
            }
            # A block whose template id is 0 (none) is left out even when included.
            if changed_id:
                promo["on_changed_notification_template"] = dict(changed)
            if expiring_id:
                promo["on_expiration_notification_template"] = dict(expiring)
            chain.promotions.append(promo)

    # ---------------------------------------------------------------- per-day records

    def _generate_deposits(self, chain_index: int) -> list[Record]:
        # An RNG of its own: generating deposits changes no other record of the dataset.
        chain = self._chains[chain_index]
        rng = seeded_rng(f"{self.config.seed}/deposits/{chain_index}")
        zone = ZoneInfo(chain.timezone)
        opened_from = datetime.combine(self.config.start - timedelta(days=720), time(9), zone)
        span_s = int(
            (datetime.combine(self.config.end, time(21), zone) - opened_from).total_seconds()
        )
        types = [
            {
                "id": DEPOSIT_TYPE_ID_BASE + chain_index * 100 + k,
                "salon_group_id": chain.id,
                "title": title,
                "date_create": format_timestamp(
                    opened_from - timedelta(days=30 * (k + 1)), colon=True, millis=False
                ),
                "deleted": k == 3,
            }
            for k, title in enumerate(
                DEPOSIT_TYPE_TITLES[: rng.randint(2, len(DEPOSIT_TYPE_TITLES))]
            )
        ]
        weights = [6, 3, 2, 1][: len(types)]
        records: list[Record] = []
        deposit_id = DEPOSIT_ID_BASE + chain_index * DEPOSIT_STRIDE + rng.randint(0, 900)
        client_id = CLIENT_ID_BASE + chain_index * DEPOSIT_STRIDE + rng.randint(0, 900)
        for _ in range(rng.randint(*DEPOSITS_PER_CHAIN)):
            deposit_id += rng.randint(1, 9)
            client_id += rng.randint(1, 40)
            kind = rng.choices(types, weights)[0]
            initial = float(rng.choice((50, 100, 200, 250, 500, 1000)))
            balance = round(rng.uniform(0, initial), 2) if rng.random() < 0.85 else initial
            reserved = round(rng.uniform(0, balance) * 0.3, 2) if rng.random() < 0.2 else 0.0
            opened = opened_from + timedelta(seconds=rng.randint(0, span_s))
            first, last = rng.choice(CLIENT_FIRST_NAMES), rng.choice(CLIENT_LAST_NAMES)
            records.append(
                {
                    "deposit": {
                        "id": deposit_id,
                        "salon_group_id": chain.id,
                        "deposit_type_id": kind["id"],
                        "initial_balance": initial,
                        "balance": balance,
                        "reserved_balance": reserved,
                        "blocked": rng.random() < 0.04,
                        "date_create": format_timestamp(
                            opened, colon=rng.random() < 0.5, millis=False
                        ),
                    },
                    "deposit_type": dict(kind),
                    "client": {
                        "id": client_id,
                        "name": f"{first} {last}",
                        "phone": _phone(rng),
                    },
                }
            )
        return records

    def _rng(self, kind: str, chain_index: int, day: date) -> random.Random:
        return seeded_rng(f"{self.config.seed}/{kind}/{chain_index}/{day.isoformat()}")

    def _generate_day_count(self, chain_index: int, day: date) -> int:
        if not self.config.start <= day <= self.last_day():
            return 0
        rng = self._rng("tx-count", chain_index, day)
        if rng.random() < ZERO_DAY_PROBABILITY:
            return 0
        mean = self.config.transactions_per_day * WEEKDAY_FACTOR[day.weekday()]
        return min(TX_STRIDE - 1, max(0, round(mean * rng.uniform(0.75, 1.25))))

    def _generate_day_memberships(
        self, chain_index: int, day: date
    ) -> list[tuple[Record, datetime]]:
        chain = self._chains[chain_index]
        rng = self._rng("memberships", chain_index, day)
        mean = self.config.memberships_per_day
        count = min(MEMBERSHIP_STRIDE - 1, rng.randint(0, 2 * mean)) if mean else 0
        zone = ZoneInfo(chain.timezone)
        seconds = sorted(rng.randint(8 * 3600, 21 * 3600) for _ in range(count))
        slot = ((day - EPOCH).days * MAX_CHAINS + chain_index) * MEMBERSHIP_STRIDE
        rows: list[tuple[Record, datetime]] = []
        for position, second in enumerate(seconds):
            created = datetime.combine(day, time(), zone) + timedelta(seconds=second)
            created = created.astimezone(zone)
            mtype = rng.choice(chain.membership_types)
            status_id = rng.choices((1, 2, 3, 4), (15, 55, 20, 10))[0]
            slug, status_title = MEMBERSHIP_STATUSES[status_id]
            colon = rng.random() < 0.5
            millis = colon and rng.random() < 0.5
            unit_days = {0: 0, 1: 1, 2: 7, 3: 30, 4: 365}[mtype["period_unit_id"]]
            expires = created + timedelta(days=mtype["period"] * unit_days) if unit_days else None
            if status_id == 3 and expires is None:
                expires = created + timedelta(days=rng.randint(1, 20))
            activated = (
                None if status_id == 1 else created + timedelta(minutes=rng.randint(0, 3000))
            )
            links = []
            for link in mtype["balance_container"]["links"]:
                remaining = dict(link)
                if not link["is_unlimited"]:
                    remaining["count"] = 0 if status_id == 4 else rng.randint(0, link["count"])
                links.append(remaining)
            united_left = (
                0 if status_id == 4 else rng.randint(0, mtype["united_balance_services_count"])
            )
            number: int | str = rng.randint(100_000, 999_999)
            # Like the official example, some chains send the code as an integer.
            if chain_index % 2 == 0:
                number = str(number)
            record: Record = {
                "id": MEMBERSHIP_ID_BASE + slot + position,
                "number": number,
                "balance_string": ", ".join(
                    f"{(lnk.get('service') or lnk.get('category') or {}).get('title', '')}"
                    f" (x{lnk['count']})"
                    for lnk in links
                ),
                "created_date": format_timestamp(created, colon=colon, millis=millis),
                "activated_date": None
                if activated is None
                else format_timestamp(activated, colon=colon, millis=millis),
                "expiration_date": None
                if expires is None
                else format_timestamp(expires, colon=colon, millis=millis),
                "is_frozen": status_id == 2 and rng.random() < 0.1,
                "freeze_period": rng.choice((0, 0, 0, 7)),
                "period": mtype["period"],
                "period_unit_id": mtype["period_unit_id"],
                "status": {
                    "id": status_id,
                    "title": status_title,
                    "extended_title": status_title,
                    "slug": slug,
                    "category": "standard",
                },
                "is_united_balance": mtype["is_united_balance"],
                "is_united_balance_unlimited": mtype["is_united_balance_unlimited"],
                "united_balance_services_count": united_left,
                "goods_transaction_id": rng.randint(40_000_000, 49_999_999)
                if rng.random() < 0.8
                else 0,
                "slug": "standard",
                "balance_container": {"links": links},
                "type": {k: mtype[k] for k in _EMBEDDED_TYPE_FIELDS},
            }
            rows.append((record, created))
        return rows

    def _generate_day_transactions(self, chain_index: int, day: date) -> DayTransactions:
        chain = self._chains[chain_index]
        count = self._day_count(chain_index, day)
        rng = self._rng("transactions", chain_index, day)
        promos = chain.promotions
        discounts = [p["id"] for p in promos if not p["type"].startswith("cashback")]
        cashbacks = [p["id"] for p in promos if p["type"].startswith("cashback")]
        slot = ((day - EPOCH).days * MAX_CHAINS + chain_index) * TX_STRIDE
        span = (day - self.config.start).days
        records: list[Record] = []
        locations = rng.choices(chain.location_ids, chain.location_weights, k=count)
        type_ids = rng.choices(range(1, 12), TRANSACTION_TYPE_WEIGHTS, k=count)
        statuses = rng.choices((1, 2, 3, 4), TRANSACTION_STATUS_WEIGHTS, k=count)
        for position in range(count):
            type_id = type_ids[position]
            abonement_id = 0
            if type_id in (9, 10):
                earlier = self.config.start + timedelta(days=rng.randint(0, span))
                sold = self._day_memberships(chain_index, earlier)
                if sold:
                    abonement_id = sold[rng.randrange(len(sold))][0]["id"]
                else:
                    type_id = 2
            program_id = 0
            if type_id == 1:
                program_id = rng.choice(discounts)
            elif type_id in (2, 3, 4, 7):
                program_id = rng.choice(cashbacks)
            card_id = (
                chain.card_id_base + rng.randint(1, 99_999)
                if type_id in (1, 2, 3, 4, 5, 6, 7) and (type_id != 1 or rng.random() < 0.6)
                else 0
            )
            certificate_id = (
                chain.certificate_id_base + rng.randint(1, 99_999) if type_id == 8 else 0
            )
            if type_id in (5, 6, 7):
                item_type = 0
            elif type_id == 10:
                item_type = rng.choice((0, 1))
            elif type_id == 9:
                item_type = 1
            else:
                item_type = rng.choices((1, 7, 0), (70, 25, 5))[0]
            visit_id = 0 if type_id in (5, 6, 7) else rng.randint(300_000_000, 399_999_999)
            record_id = rng.randint(500_000_000, 599_999_999) if item_type and visit_id else 0
            amount = round(rng.uniform(0.5, 250.0), 2)
            if type_id == 7:
                amount = round(rng.uniform(1.0, 60.0), 2)
            records.append(
                {
                    "id": TX_ID_BASE + slot + position,
                    "visit_id": visit_id,
                    "status_id": statuses[position],
                    "amount": amount,
                    "type_id": type_id,
                    "card_id": card_id,
                    "program_id": program_id,
                    "certificate_id": certificate_id,
                    "abonement_id": abonement_id,
                    "salon_group_id": chain.id,
                    "item_id": rng.randint(1_000_000, 9_999_999) if item_type else 0,
                    "item_type_id": item_type,
                    "item_record_id": record_id,
                    "goods_transaction_id": rng.randint(40_000_000, 49_999_999)
                    if item_type == 7
                    else 0,
                    "services_transaction_id": rng.randint(60_000_000, 69_999_999)
                    if item_type == 1
                    else 0,
                    "is_discount": type_id == 1,
                    "is_loyalty_withdraw": type_id in (3, 6) and rng.random() < 0.05,
                    "type": {"id": type_id, "title": TRANSACTION_TYPES[type_id]},
                }
            )
        return DayTransactions(records, locations)


_EMBEDDED_TYPE_FIELDS = (
    "id",
    "salon_group_id",
    "title",
    "period",
    "period_unit_id",
    "allow_freeze",
    "freeze_limit",
    "freeze_limit_unit_id",
    "is_booking_when_frozen_allowed",
    "category_id",
    "is_allow_empty_code",
    "is_united_balance",
    "united_balance_services_count",
    "is_united_balance_unlimited",
    "is_code_required",
    "balance_edit_type_id",
    "cost",
    "is_archived",
    "date_archived",
    "expiration_type_id",
    "expiration_type_title",
    "service_price_correction",
    "is_online_sale_enabled",
    "online_sale_title",
    "online_sale_description",
    "online_sale_price",
    "autoactivation_time",
    "autoactivation_time_unit_id",
    "weight",
    "category",
    "balance_container",
)


def _phone(rng: random.Random) -> str:
    """A (fictional, 555) phone number written one of the ways clients' numbers are."""
    line = f"{rng.randint(0, 9999):04d}"
    area = rng.choice(("315", "212", "415"))
    return rng.choice(
        (
            f"+1 {area} 555-{line}",
            f"1{area}555{line}",
            f"+1 ({area}) 555 {line}",
            f"+1{area}555{line}",
        )
    )


def _search_item(promo: Record, chain_id: int) -> Record:
    service_policy = promo["service_item_type"]
    good_policy = promo["good_item_type"]
    # Numeric item_type_id mirrors the certificate E5 reading of the two policies.
    if service_policy == "any_allowed" and good_policy == "any_allowed":
        item_type = 0
    elif good_policy == "not_allowed":
        item_type = 1 if service_policy == "any_allowed" else 3
    elif service_policy == "not_allowed":
        item_type = 2
    else:
        item_type = 4
    return {
        "id": promo["id"],
        "title": promo["title"],
        "type": promo["type"],
        "loyalty_type_id": dict(PROMOTION_TYPES)[promo["type"]],
        "item_type_id": item_type,
        "service_item_type": service_policy,
        "good_item_type": good_policy,
        "value_unit_id": VALUE_UNITS[promo["value_unit"]],
        "value_unit": promo["value_unit"],
        "group_id": chain_id,
        "usage_limit": promo["usage_limit"],
        "visit_multiplicity": promo["visit_multiplicity"],
        "sold_items_multiplicity": promo["sold_items_multiplicity"],
        "current_package_progress": 0,
        "allowed_usages_amount": promo["usage_limit"],
        "expiration_timeout": promo["expiration_timeout"],
        "expiration_timeout_unit": promo["expiration_timeout_unit"],
        "expiration_notification_timeout": promo["expiration_notification_timeout"],
        "params_source_type": promo["params_source_type"],
        "history_start_date": promo["history_start_date"],
        "on_changed_notification_template_id": promo["on_changed_notification_template_id"],
        "on_expiration_notification_template_id": promo["on_expiration_notification_template_id"],
    }


PROMOTION_BASE_FIELDS = (
    "id",
    "title",
    "type",
    "service_item_type",
    "good_item_type",
    "value_unit",
    "usage_limit",
    "visit_multiplicity",
    "sold_items_multiplicity",
    "expiration_timeout",
    "expiration_timeout_unit",
    "expiration_notification_timeout",
    "params_source_type",
    "history_start_date",
    "on_changed_notification_template_id",
    "on_expiration_notification_template_id",
)


def promotion_view(promo: Record, includes: Sequence[str]) -> Record:
    """The promotion object as served for a given `include` list (blocks only when asked)."""
    view = {k: promo[k] for k in PROMOTION_BASE_FIELDS}
    for block in ENDPOINT_INCLUDE_ORDER:
        if block in includes and block in promo:
            view[block] = promo[block]
    return view


ENDPOINT_INCLUDE_ORDER = (
    "loyalty_card_types",
    "on_changed_notification_template",
    "on_expiration_notification_template",
    "rules",
    "companies",
    "applicable_items",
)


def first_transaction_date(promo: Record, start: date) -> str:
    """Date of a promotion's first transaction (the search `include=first_transaction_date`)."""
    return max(start, date.fromisoformat(promo["history_start_date"])).isoformat()


def _days(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)
