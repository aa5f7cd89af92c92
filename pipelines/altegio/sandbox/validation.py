"""Request-body rules of the write operations, declared as data, and the check that applies them.

Each rule restates one property of an official `*.request.schema.json` (type, required, enum),
plus the few the backend takes that no schema lists (CONTRACT §5.10.2: `chain_id` for
`salon_group_id`, `is_united_balance_unlimited`, `is_booking_when_frozen_allowed`,
`category_id`, `service_links`). Messages follow the backend's field-error style
(`{"<field>": ["The <field> field is required."]}`); what a violation answers (400 or 422) is
the operation's business, not this module's.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pipelines.altegio.sandbox.data import (
    EXPIRATION_UNITS,
    ITEM_TYPE_POLICIES,
    PARAMS_SOURCES,
    PROMOTION_TYPES,
    TEMPLATE_TYPES,
    VALUE_UNITS,
)

Errors = dict[str, list[str]]


class Kind(StrEnum):
    INT = "integer"
    NULLABLE_INT = "integer or null"
    NUMBER = "number"
    BOOL = "boolean"
    STRING = "string"
    DATETIME = "date-time"
    DATE_OR_DATETIME = "date or date-time"
    DATE = "date"
    INT_LIST = "integer array"
    COUNT_MAP = "object of id -> count"
    COUNT_MAP_OR_INT_LIST = "object of id -> count, or integer array"
    OBJECT = "object"
    OBJECT_LIST = "array of objects"


@dataclass(frozen=True)
class Field:
    """One body property: its type, whether it is required, allowed values, other names."""

    name: str
    kind: Kind
    required: bool = False
    choices: tuple[Any, ...] = ()
    aliases: tuple[str, ...] = ()
    # Rules of the properties of each object (OBJECT) or of each item (OBJECT_LIST).
    fields: tuple["Field", ...] = ()

    @property
    def label(self) -> str:
        return self.name.replace("_", " ")


def validate(rules: tuple[Field, ...], body: Mapping[str, Any], prefix: str = "") -> Errors:
    """Field errors of `body` against `rules` ({} when it passes). Unknown keys are ignored,
    as the permissive official schemas allow."""
    errors: Errors = {}
    for rule in rules:
        key = prefix + rule.name
        name, value = lookup(rule, body)
        if name is None:
            if rule.required:
                errors[key] = [f"The {rule.label} field is required."]
            continue
        problem = _type_problem(rule, value)
        if problem:
            errors[key] = [problem]
        elif rule.choices and value not in rule.choices:
            errors[key] = [f"The selected {rule.label} is invalid."]
        elif rule.kind is Kind.OBJECT and rule.fields:
            errors.update(validate(rule.fields, value, prefix=f"{key}."))
        elif rule.kind is Kind.OBJECT_LIST and rule.fields:
            for position, item in enumerate(value):
                errors.update(validate(rule.fields, item, prefix=f"{key}.{position}."))
    return errors


def lookup(rule: Field, body: Mapping[str, Any]) -> tuple[str | None, Any]:
    """(the name the body used, its value) for a rule, trying its aliases in order."""
    for name in (rule.name, *rule.aliases):
        if name in body:
            return name, body[name]
    return None, None


def is_int(value: Any) -> bool:
    """JSON Schema's integer: a number with no fraction (never a boolean)."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def parse_moment(text: str) -> datetime | date:
    """A date-time with offset, or a plain date (what Altegio's own client sends)."""
    try:
        return date.fromisoformat(text) if len(text) == 10 else _aware(text)
    except ValueError:
        raise ValueError(text) from None


def _aware(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(text)
    return moment


def _type_problem(rule: Field, value: Any) -> str | None:
    label = rule.label
    kind = rule.kind
    if kind is Kind.INT or (kind is Kind.NULLABLE_INT and value is not None):
        return None if is_int(value) else f"The {label} must be an integer."
    if kind is Kind.NUMBER:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else f"The {label} must be a number."
    if kind is Kind.BOOL:
        return None if isinstance(value, bool) else f"The {label} field must be true or false."
    if kind is Kind.STRING:
        return None if isinstance(value, str) else f"The {label} must be a string."
    if kind in (Kind.DATETIME, Kind.DATE_OR_DATETIME, Kind.DATE):
        return None if _moment_ok(kind, value) else f"The {label} is not a valid date."
    if kind is Kind.INT_LIST:
        ok = isinstance(value, list) and all(is_int(v) for v in value)
        return None if ok else f"The {label} must be an array of integers."
    if kind is Kind.COUNT_MAP:
        return None if _count_map(value) else f"The {label} must be an object of counts."
    if kind is Kind.COUNT_MAP_OR_INT_LIST:
        ok = _count_map(value) or (isinstance(value, list) and all(is_int(v) for v in value))
        return None if ok else f"The {label} must be an object of counts or an array."
    if kind is Kind.OBJECT:
        return None if isinstance(value, dict) else f"The {label} must be an object."
    if kind is Kind.OBJECT_LIST:
        ok = isinstance(value, list) and all(isinstance(v, dict) for v in value)
        return None if ok else f"The {label} must be an array of objects."
    return None


def _moment_ok(kind: Kind, value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        moment = parse_moment(value)
    except ValueError:
        return False
    if kind is Kind.DATE:
        return len(value) == 10
    if kind is Kind.DATETIME:
        return isinstance(moment, datetime)
    return True


def _count_map(value: Any) -> bool:
    return isinstance(value, dict) and all(k.isdigit() and is_int(v) for k, v in value.items())


# ---------------------------------------------------------------- the operations' rules

UNITS = (1, 2, 3, 4)  # E1 without 0

_AVAILABILITY = Field(
    "availability",
    Kind.OBJECT_LIST,
    fields=(
        Field("week_days", Kind.INT_LIST),
        Field(
            "intervals", Kind.OBJECT_LIST, fields=(Field("from", Kind.INT), Field("to", Kind.INT))
        ),
    ),
)
_SERVICE_LINKS = Field(
    "service_links",
    Kind.OBJECT_LIST,
    fields=(
        Field("service_id", Kind.NULLABLE_INT),
        Field("service_category_id", Kind.NULLABLE_INT),
        Field("is_unlimited", Kind.BOOL),
        Field("count", Kind.INT),
    ),
)
# The create fields every membership-type write shares (§5.10.2), then the per-verb ones.
_TYPE_COMMON = (
    Field("title", Kind.STRING, required=True),
    # V1 takes any name of the chain family (§1.3); Altegio's client sends chain_id.
    Field("salon_group_id", Kind.INT, required=True, aliases=("chain_id", "company_group_id")),
    Field("cost", Kind.NUMBER, required=True),
    Field("is_united_balance", Kind.BOOL, required=True),
    Field("united_balance_services_count", Kind.INT, required=True),
    Field("period", Kind.INT),
    Field("period_unit_id", Kind.INT, choices=UNITS),
    Field("allow_freeze", Kind.BOOL),
    Field("freeze_limit", Kind.INT),
    Field("freeze_limit_unit_id", Kind.INT, choices=UNITS),
    Field("service_price_correction", Kind.BOOL),
    Field("expiration_type_id", Kind.INT, choices=(1, 2, 3)),
    Field("is_allow_empty_code", Kind.BOOL),
    Field("balance_edit_type_id", Kind.INT, choices=(0, 1, 2)),
    Field("is_online_sale_enabled", Kind.BOOL),
    Field("online_sale_title", Kind.STRING),
    Field("online_sale_description", Kind.STRING),
    Field("online_sale_price", Kind.NUMBER),
    Field("online_image", Kind.STRING),
    Field("autoactivation_period", Kind.INT),
    Field("autoactivation_time_in_days", Kind.INT),
    Field("autoactivation_time_unit_id", Kind.INT, choices=UNITS),
    Field("is_archived", Kind.BOOL),
    _AVAILABILITY,
    # Sent by Altegio's client, in no schema.
    Field("is_united_balance_unlimited", Kind.BOOL),
    Field("is_booking_when_frozen_allowed", Kind.BOOL),
    Field("category_id", Kind.NULLABLE_INT),
    _SERVICE_LINKS,
)
MEMBERSHIP_TYPE_CREATE = (
    *_TYPE_COMMON,
    Field("service_categories", Kind.COUNT_MAP, required=True),
    Field("services", Kind.COUNT_MAP),
    Field("location_ids", Kind.INT_LIST, aliases=("salon_ids",)),
    Field("category", Kind.STRING),
    Field("delete_online_image", Kind.BOOL),
)
# PUT types the service fields as integer arrays; the backend takes the POST maps [altegio-mcp].
MEMBERSHIP_TYPE_UPDATE = (
    *_TYPE_COMMON,
    Field("service_categories", Kind.COUNT_MAP_OR_INT_LIST, required=True),
    Field("services", Kind.COUNT_MAP_OR_INT_LIST),
    Field("location_ids", Kind.INT_LIST),
    # In no PUT schema, yet a PUT resets it unless sent back (Altegio's client does).
    Field("category", Kind.STRING),
)
RESTORE = (Field("restore_in_title", Kind.STRING, required=True),)
# The spec's archive flag is a boolean; the backend takes only the strings "1"/"0".
ARCHIVE_VALUES = ("1", "0")
# The schema says date-time; Altegio's client sends a plain date (§5.10.3).
FREEZE = (Field("freeze_till", Kind.DATE_OR_DATETIME, required=True),)
SET_BALANCE = (
    Field("united_balance_services_count", Kind.INT),
    Field(
        "services_balance_count",
        Kind.OBJECT_LIST,
        fields=(
            Field("service_id", Kind.INT, required=True),
            Field("balance", Kind.INT, required=True),
        ),
    ),
)
SET_PERIOD = (
    Field("period", Kind.INT, required=True),
    Field("period_unit_id", Kind.INT, required=True),
)
CERTIFICATE_TYPE = (
    Field("title", Kind.STRING, required=True),
    Field("balance", Kind.NUMBER, required=True),
    Field("is_multi", Kind.BOOL, required=True),
    Field("item_type_id", Kind.INT, required=True, choices=(0, 1, 2, 3, 4)),
    Field("is_allow_empty_code", Kind.BOOL, required=True),
    Field("balance_edit_type_id", Kind.INT, required=True, choices=(1, 2)),
    Field("service_ids", Kind.INT_LIST, required=True),
    Field("salon_ids", Kind.INT_LIST, required=True),
    Field(
        "expiration",
        Kind.OBJECT,
        required=True,
        fields=(
            Field("type_id", Kind.INT, required=True, choices=(0, 1, 2)),
            Field("date", Kind.DATETIME),
            Field("timeout", Kind.INT),
            Field("timeout_unit_id", Kind.INT, choices=UNITS),
        ),
    ),
    Field(
        "online_sale",
        Kind.OBJECT,
        required=True,
        fields=(
            Field("is_enabled", Kind.BOOL, required=True),
            Field("title", Kind.STRING),
            Field("description", Kind.STRING),
            Field("price", Kind.NUMBER),
        ),
    ),
    Field("category_id", Kind.NULLABLE_INT),
)
_TEMPLATE = (
    Field("type", Kind.STRING, choices=("none", *TEMPLATE_TYPES)),
    Field("body", Kind.STRING),
)
_PROMOTION_COMMON = (
    Field("title", Kind.STRING),
    Field("usage_limit", Kind.INT),
    Field("expiration_timeout", Kind.INT),
    Field("expiration_timeout_unit", Kind.STRING, choices=EXPIRATION_UNITS),
    Field("expiration_notification_timeout", Kind.INT),
    Field("loyalty_card_type_ids", Kind.INT_LIST),
    Field("on_changed_notification_template", Kind.OBJECT, fields=_TEMPLATE),
    Field("on_expiration_notification_template", Kind.OBJECT, fields=_TEMPLATE),
    Field(
        "rules",
        Kind.OBJECT_LIST,
        fields=(
            Field("parameter", Kind.INT),
            Field("value", Kind.NUMBER),
            Field("service_id", Kind.INT),
        ),
    ),
    Field("company_ids", Kind.INT_LIST),
    Field("allowed_service_ids", Kind.INT_LIST),
    Field("allowed_good_ids", Kind.INT_LIST),
    Field("allowed_good_category_ids", Kind.INT_LIST),
)
PROMOTION_UPDATE = _PROMOTION_COMMON
PROMOTION_CREATE = (
    *(
        Field(f.name, f.kind, required=True, choices=f.choices, fields=f.fields)
        if f.name in ("title", "rules", "company_ids")
        else f
        for f in _PROMOTION_COMMON
    ),
    Field("type", Kind.STRING, required=True, choices=tuple(t for t, _ in PROMOTION_TYPES)),
    Field("service_item_type", Kind.STRING, required=True, choices=ITEM_TYPE_POLICIES),
    Field("good_item_type", Kind.STRING, required=True, choices=ITEM_TYPE_POLICIES),
    Field("value_unit", Kind.STRING, required=True, choices=tuple(VALUE_UNITS)),
    Field("visit_multiplicity", Kind.INT),
    Field("sold_items_multiplicity", Kind.INT),
    Field("params_source_type", Kind.STRING, choices=PARAMS_SOURCES),
    Field("history_start_date", Kind.DATE),
)
