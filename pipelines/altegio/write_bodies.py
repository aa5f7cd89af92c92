"""Typed request bodies of the write operations, checked before anything is sent.

Each class states one operation's body with the contract's field rules (CONTRACT §5.10): a
value the API would refuse is refused here, with the same field-error shape
(`InvalidRequest.errors`), so a bulk apply stops before its first request instead of at its
hundredth. `body()` is what travels, in the spelling the backend takes (the archive flag as
the string "1"/"0", a plain `{}` for unfreeze).
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

# E1 time units a write takes (0, "not set", is read-only).
TIME_UNITS = {1: "day", 2: "week", 3: "month", 4: "year"}
UNIT_IDS = {name: unit for unit, name in TIME_UNITS.items()}


class InvalidRequest(ValueError):
    """A body the API would refuse: field -> messages, as the API's `meta.errors`."""

    def __init__(self, operation: str, errors: Mapping[str, list[str]]) -> None:
        self.operation = operation
        self.errors = {k: list(v) for k, v in errors.items()}
        detail = "; ".join(f"{k}: {', '.join(v)}" for k, v in self.errors.items())
        super().__init__(f"{operation}: invalid request: {detail}")


def _check(operation: str, problems: Mapping[str, str | None]) -> None:
    errors = {name: [text] for name, text in problems.items() if text}
    if errors:
        raise InvalidRequest(operation, errors)


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Freeze:
    """POST …/freeze: frozen until the end of `till` in the chain's time zone (§5.10.3)."""

    till: date
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        _check("freeze", {"freeze_till": None if isinstance(self.till, date) else "a date"})

    def body(self) -> dict[str, Any]:
        # The schema wants a date-time; the end of the day keeps the whole day frozen.
        moment = datetime.combine(self.till, time(23, 59, 59), ZoneInfo(self.timezone))
        return {"freeze_till": moment.isoformat()}


@dataclass(frozen=True)
class Unfreeze:
    """POST …/unfreeze: no body (`{}`)."""

    def body(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True)
class SetBalance:
    """POST …/set_balance: the new visit count of a shared balance, or per service/category
    id (absolute values, never increments)."""

    visits: int | None = None
    per_service: Mapping[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        both = (self.visits is None) == (not self.per_service)
        counts = [self.visits] if self.visits is not None else list(self.per_service.values())
        _check(
            "set_balance",
            {
                "united_balance_services_count": (
                    "give either a shared visit count or per-service counts" if both else None
                ),
                "balance": (
                    "visit counts must be integers of 0 or more"
                    if any(not _int(c) or c < 0 for c in counts if c is not None)
                    else None
                ),
            },
        )

    def body(self) -> dict[str, Any]:
        if self.visits is not None:
            return {"united_balance_services_count": self.visits}
        return {
            "services_balance_count": [
                {"service_id": int(k), "balance": int(v)}
                for k, v in sorted(self.per_service.items())
            ]
        }


@dataclass(frozen=True)
class SetPeriod:
    """POST …/set_period: the membership's validity, `period` units of E1 (1-4)."""

    period: int
    unit: int

    def __post_init__(self) -> None:
        _check(
            "set_period",
            {
                "period": None if _int(self.period) and self.period >= 1 else "1 or more",
                "period_unit_id": None if self.unit in TIME_UNITS else "one of 1, 2, 3, 4 (E1)",
            },
        )

    def body(self) -> dict[str, Any]:
        return {"period": self.period, "period_unit_id": self.unit}


@dataclass(frozen=True)
class Archive:
    """PATCH …/archive: the backend takes only the strings "1"/"0" (§5.10.2)."""

    archived: bool

    def body(self) -> dict[str, Any]:
        return {"is_archived": "1" if self.archived else "0"}


@dataclass(frozen=True)
class Restore:
    """POST …/restore: the restored type's title (required)."""

    title: str

    def __post_init__(self) -> None:
        _check("restore", {"restore_in_title": None if self.title.strip() else "required"})

    def body(self) -> dict[str, Any]:
        return {"restore_in_title": self.title}


# ---------------------------------------------------------------- catalogue entity bodies

# (field, python types, required) per entity write body: the contract's required fields and
# their types. Optional fields are type-checked when present.
_NUMBER = (int, float)
_RULES: dict[str, tuple[tuple[str, tuple[type, ...], bool], ...]] = {
    "membership_type": (
        ("title", (str,), True),
        ("salon_group_id", (int,), True),
        ("cost", _NUMBER, True),
        ("service_categories", (dict,), True),
        ("is_united_balance", (bool,), True),
        ("united_balance_services_count", (int,), True),
        ("services", (dict,), False),
        ("location_ids", (list,), False),
        ("period", (int,), False),
        ("period_unit_id", (int,), False),
        ("freeze_limit", (int,), False),
        ("freeze_limit_unit_id", (int,), False),
        ("availability", (list,), False),
    ),
    "certificate_type": (
        ("title", (str,), True),
        ("balance", _NUMBER, True),
        ("is_multi", (bool,), True),
        ("item_type_id", (int,), True),
        ("is_allow_empty_code", (bool,), True),
        ("balance_edit_type_id", (int,), True),
        ("service_ids", (list,), True),
        ("salon_ids", (list,), True),
        ("expiration", (dict,), True),
        ("online_sale", (dict,), True),
    ),
    "promotion_create": (
        ("title", (str,), True),
        ("type", (str,), True),
        ("service_item_type", (str,), True),
        ("good_item_type", (str,), True),
        ("value_unit", (str,), True),
        ("rules", (list,), True),
        ("company_ids", (list,), True),
    ),
    "promotion_update": (
        ("title", (str,), False),
        ("rules", (list,), False),
        ("company_ids", (list,), False),
    ),
}


def check_entity_body(kind: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """`body` if it has every required field of `kind` with the right type; else
    InvalidRequest naming each problem."""
    problems: dict[str, str | None] = {}
    for name, types, required in _RULES[kind]:
        if name not in body:
            problems[name] = "required" if required else None
            continue
        value = body[name]
        wrong = not isinstance(value, types) or (isinstance(value, bool) and bool not in types)
        problems[name] = f"must be {' or '.join(t.__name__ for t in types)}" if wrong else None
    if kind == "membership_type" and body.get("period_unit_id") not in (None, 0, *TIME_UNITS):
        problems["period_unit_id"] = "one of 1, 2, 3, 4 (E1)"
    if kind == "certificate_type" and isinstance(body.get("expiration"), dict):
        expiration = body["expiration"]
        if expiration.get("type_id") == 2 and not {"timeout", "timeout_unit_id"} <= set(expiration):
            problems["expiration"] = "timeout and timeout_unit_id are required for type_id 2"
    if kind.startswith("promotion") and not body.get("company_ids", [1]):
        problems["company_ids"] = "at least one location"
    _check(kind, problems)
    return dict(body)


def ids_list(values: Iterable[Any]) -> list[int]:
    """Distinct integer ids, sorted (what the list fields of a write body carry)."""
    return sorted({int(v) for v in values})
