"""Every enum of the Altegio chain-loyalty API (CONTRACT §7, E1-E18), declared once.

A code column `<x>_id` always travels with a label column `<x>`; `decode()` turns a code into
its label. Rules that hold for every enum:

* An unknown code keeps its code and gets the label ``unknown:<code>`` - never a known label,
  never null, never dropped - and normalize reports it in ``NormalizedBatch.unknown_codes``.
  A null code gives a null label.
* String enums (E8-E12, E17, E18) stay strings: the API's value is the label itself. A value
  outside the documented list is kept as sent and reported the same way.
* E13 (numeric ``loyalty_type_id``) and E14 (numeric ``value_unit_id``) are not enumerated by
  Altegio; the labels here are *inferred* from the examples (see each table's ``source``).

Two enums are documented with conflicting meanings (CONTRACT §7):

* **E2, membership type ``expiration_type_id`` (activation mode).** The 2026-07 spec reads
  1 = on sale, 2 = on first use, 3 = from a specific date; Altegio's MCP server (verified against
  the backend, 2026-09-30) reads 1 = on first visit, 2 = on sale. Rule: when the record has its
  own ``expiration_type_title`` (e.g. "On sale", "On first visit"), the title is matched
  case-insensitively against the labels (and synonyms) of *both* readings for that code and the
  matching reading's label wins. Without a title, or when the title matches neither reading,
  the preferred reading is used: the backend-verified MCP reading (code 3 exists only in the
  spec reading, so it keeps "from a specific date").
* **E3, membership type ``balance_edit_type_id``.** The spec response schema reads
  1 = editable, 2 = not editable; the write docs and Altegio's MCP agree on
  0 = prohibited, 1 = editable only at the selling location, 2 = editable at all locations.
  The record has no title field for it, so the preferred 0/1/2 reading always applies.

E15 (transaction ``type_id``) also carries a ``direction`` per code, the sign/meaning class the
marts use: accrual (2 programme accrual, 4 referral accrual, 5 manual top-up), withdrawal
(3 card withdrawal, 6 manual withdrawal), expiry (7 expired points written off), discount
(1 promotion discount), certificate (8 gift-certificate withdrawal), membership (9 membership
use, 10 membership cost recalculation), deposit (11 client-account withdrawal).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

import pyarrow as pa

UNKNOWN_PREFIX = "unknown:"

DIRECTIONS = (
    "accrual",
    "withdrawal",
    "expiry",
    "discount",
    "certificate",
    "membership",
    "deposit",
)


@dataclass(frozen=True)
class EnumValue:
    """One documented code: its label (what we store) and what it means."""

    label: str
    description: str
    direction: str | None = None


@dataclass(frozen=True)
class EnumTable:
    """One enum of CONTRACT §7.

    `values` is the reading we store; `alternative` is the competing reading of a documented
    conflict (E2, E3) and `title_synonyms` the API titles that mean each label.
    """

    name: str
    contract_id: str
    description: str
    values: Mapping[int | str, EnumValue]
    kind: str = "int"  # "int" codes or "str" codes
    inferred: bool = False
    source: str = ""
    alternative: Mapping[int | str, EnumValue] = field(default_factory=dict)
    title_synonyms: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def label(self, code: int | str | None) -> str | None:
        """Label of `code` in the preferred reading; ``unknown:<code>`` when undocumented."""
        if code is None:
            return None
        value = self.values.get(code)
        if value is None:
            return f"{UNKNOWN_PREFIX}{code}"
        return value.label

    def is_known(self, code: int | str | None) -> bool:
        return code is None or code in self.values

    def label_from_title(self, code: int | str | None, title: str | None) -> str | None:
        """Label of `code`, letting the record's own title pick between conflicting readings.

        The title only chooses among the labels the code has in either reading; an unknown
        code stays ``unknown:<code>`` whatever the title says.
        """
        if code is None:
            return None
        preferred = self.values.get(code)
        other = self.alternative.get(code)
        if preferred is None and other is None:
            return f"{UNKNOWN_PREFIX}{code}"
        if isinstance(title, str) and title.strip():
            wanted = " ".join(title.strip().casefold().split())
            for candidate in (preferred, other):
                if candidate is not None and wanted in self._names(candidate.label):
                    return candidate.label
        if preferred is not None:
            return preferred.label
        assert other is not None
        return other.label

    def _names(self, label: str) -> tuple[str, ...]:
        return (label.casefold(), *(s.casefold() for s in self.title_synonyms.get(label, ())))


def _v(label: str, description: str, direction: str | None = None) -> EnumValue:
    return EnumValue(label, description, direction)


def _strings(*labels: str) -> dict[int | str, EnumValue]:
    return {label: _v(label, label.replace("_", " ")) for label in labels}


TIME_UNIT = EnumTable(
    name="time_unit",
    contract_id="E1",
    description=(
        "Time unit ids: period_unit_id, freeze_limit_unit_id, autoactivation_time_unit_id, "
        "certificate expiration_timeout_unit_id."
    ),
    values={
        0: _v("not set", "no period (only period_unit_id / expiration_timeout_unit_id)"),
        1: _v("day", "days"),
        2: _v("week", "weeks"),
        3: _v("month", "months"),
        4: _v("year", "years"),
    },
    source="CONTRACT §7 E1 [spec]",
)

MEMBERSHIP_EXPIRATION_TYPE = EnumTable(
    name="membership_expiration_type",
    contract_id="E2",
    description=(
        "Membership type expiration_type_id (activation mode). CONFLICT: decoded from the "
        "record's expiration_type_title when it matches either reading, else the "
        "backend-verified Altegio MCP reading (1 first visit, 2 sale)."
    ),
    values={
        1: _v("on first visit", "activates on the first visit [altegio-mcp, backend-verified]"),
        2: _v("on sale", "activates when sold [altegio-mcp, backend-verified]"),
        3: _v("from a specific date", "activates from a specific date [spec only]"),
    },
    alternative={
        1: _v("on sale", "activates when sold [spec 2026-07]"),
        2: _v("on first visit", "activates on first use [spec 2026-07]"),
    },
    title_synonyms={
        "on sale": ("sale", "activates on sale", "on purchase", "from sale", "from the sale date"),
        "on first visit": (
            "first visit",
            "on first use",
            "first use",
            "activates on first use",
            "activates on first visit",
            "from first visit",
            "from the first visit",
        ),
        "from a specific date": ("from specific date", "specific date", "from date"),
    },
    source="CONTRACT §7 E2 (spec vs altegio-mcp)",
)

MEMBERSHIP_BALANCE_EDIT_TYPE = EnumTable(
    name="membership_balance_edit_type",
    contract_id="E3",
    description=(
        "Membership type balance_edit_type_id. CONFLICT: the 0/1/2 reading of the write docs "
        "and Altegio MCP is always used (the record carries no title for it); the spec "
        "response schema's 1 = editable, 2 = not editable is recorded as the alternative."
    ),
    values={
        0: _v("prohibited", "balance editing prohibited"),
        1: _v("selling location only", "balance editable only at the selling location"),
        2: _v("all locations", "balance editable at all locations"),
    },
    alternative={
        1: _v("editable", "balance editable [spec response schema]"),
        2: _v("not editable", "balance not editable [spec response schema]"),
    },
    source="CONTRACT §7 E3 (write docs + altegio-mcp preferred over the response schema)",
)

MEMBERSHIP_STATUS = EnumTable(
    name="membership_status",
    contract_id="E4",
    description="Membership status.id (status.slug in parentheses); freezing is is_frozen.",
    values={
        1: _v("created", "issued, not yet active (API title e.g. 'Released')"),
        2: _v("active", "active (API title e.g. 'activated')"),
        3: _v("expired", "expired (API title e.g. 'Overdue')"),
        4: _v("wasted", "balance used up"),
    },
    source="CONTRACT §7 E4 (examples + altegio-mcp; not enumerated in the spec)",
)

CERTIFICATE_ITEM_TYPE = EnumTable(
    name="certificate_item_type",
    contract_id="E5",
    description="Certificate type item_type_id: what the certificate can pay for.",
    values={
        0: _v("all services and products", "no restriction"),
        1: _v("any services", "any services, no products"),
        2: _v("any products", "any products, no services"),
        3: _v("specific services", "specific services only, no products"),
        4: _v("specific services and any products", "specific services plus any products"),
    },
    source="CONTRACT §7 E5 (chain endpoints; the /loyalty/certificates list is ignored)",
)

CERTIFICATE_EXPIRATION_TYPE = EnumTable(
    name="certificate_expiration_type",
    contract_id="E6",
    description="Certificate type expiration_type_id.",
    values={
        0: _v("never", "never expires"),
        1: _v("fixed date", "fixed date for all certificates (expiration_date)"),
        2: _v("period from sale", "fixed period from sale (expiration_timeout + unit)"),
    },
    source="CONTRACT §7 E6 [spec]",
)

CERTIFICATE_BALANCE_EDIT_TYPE = EnumTable(
    name="certificate_balance_edit_type",
    contract_id="E7",
    description="Certificate type balance_edit_type_id.",
    values={1: _v("editable", "balance editable"), 2: _v("not editable", "balance not editable")},
    source="CONTRACT §7 E7 [spec]",
)

PROMOTION_TYPE = EnumTable(
    name="promotion_type",
    contract_id="E8",
    description="Promotion type (string enum).",
    kind="str",
    values=_strings(
        "discount_static",
        "discount_accumulative_visits",
        "discount_accumulative_sold",
        "discount_accumulative_paid",
        "cashback_static_sold",
        "cashback_static_paid",
        "cashback_accumulative_paid",
        "cashback_accumulative_sold",
        "cashback_accumulative_paid_visits",
        "cashback_accumulative_sold_visits",
        "cashback_sold_visits",
        "cashback_paid_visits",
        "package_discount",
    ),
    source="CONTRACT §7 E8 [spec]",
)

ITEM_ALLOWANCE = EnumTable(
    name="item_allowance",
    contract_id="E9",
    description="Promotion service_item_type / good_item_type (string enum).",
    kind="str",
    values={
        "any_allowed": _v("any_allowed", "all services/products qualify"),
        "not_allowed": _v("not_allowed", "no services/products qualify"),
        "custom_allowed": _v("custom_allowed", "only the listed applicable items qualify"),
    },
    source="CONTRACT §7 E9 [spec]",
)

VALUE_UNIT = EnumTable(
    name="value_unit",
    contract_id="E10",
    description="Promotion value_unit (string enum).",
    kind="str",
    values={"percent": _v("percent", "value is a percentage"), "amount": _v("amount", "money")},
    source="CONTRACT §7 E10 [spec]",
)

EXPIRATION_TIMEOUT_UNIT = EnumTable(
    name="expiration_timeout_unit",
    contract_id="E11",
    description="Promotion expiration_timeout_unit (string enum).",
    kind="str",
    values=_strings("day", "week", "month", "year"),
    source="CONTRACT §7 E11 [spec]",
)

PARAMS_SOURCE_TYPE = EnumTable(
    name="params_source_type",
    contract_id="E12",
    description="Promotion params_source_type: where client history is read from (string enum).",
    kind="str",
    values=_strings("loyalty_card", "active_companies", "chain"),
    source="CONTRACT §7 E12 [spec]",
)

LOYALTY_TYPE = EnumTable(
    name="loyalty_type",
    contract_id="E13",
    description=(
        "Numeric loyalty_type_id (promotion search, rules, cards). INFERRED: not enumerated by "
        "Altegio; labels come from the examples (1 location-search example of type "
        "discount_static; 3 rules of a discount_accumulative_paid promotion; 7 and 13 titled "
        "in examples). 5 and 6 appear unlabelled and decode as unknown."
    ),
    inferred=True,
    values={
        1: _v("discount_static", "inferred: fixed discount (location search example)"),
        3: _v("discount_accumulative_paid", "inferred: cumulative discount by amount paid"),
        7: _v("cashback_accumulative_paid", "inferred: 'Cumulative cashback (paid)'"),
        13: _v(
            "discount_accumulative_visits",
            "inferred: 'Discount for a given number of accumulated services'",
        ),
    },
    source="CONTRACT §7 E13 (inferred from examples, unverified)",
)

VALUE_UNIT_CODE = EnumTable(
    name="value_unit_code",
    contract_id="E14",
    description=(
        "Numeric value_unit_id. INFERRED: the search example pairs 2 with 'amount', so 1 is "
        "presumed 'percent'. When the record also carries the string value_unit, that wins."
    ),
    inferred=True,
    values={1: _v("percent", "inferred: percentage"), 2: _v("amount", "inferred: money amount")},
    source="CONTRACT §7 E14 (inferred from one example)",
)

TRANSACTION_TYPE = EnumTable(
    name="transaction_type",
    contract_id="E15",
    description=(
        "Loyalty transaction type_id, with a direction per code: accrual (2, 4, 5), withdrawal "
        "(3, 6), expiry (7), discount (1), certificate (8), membership (9, 10), deposit (11)."
    ),
    values={
        1: _v("promotion discount", "discount given by a promotion", "discount"),
        2: _v("loyalty programme accrual", "points/cashback accrued by a programme", "accrual"),
        3: _v("loyalty card withdrawal", "points spent from a loyalty card", "withdrawal"),
        4: _v("referral programme accrual", "accrual from the referral programme", "accrual"),
        5: _v("manual top-up", "manual card top-up", "accrual"),
        6: _v("manual withdrawal", "manual card withdrawal", "withdrawal"),
        7: _v("expired points write-off", "write-off of expired points", "expiry"),
        8: _v("gift certificate withdrawal", "paid with a gift certificate", "certificate"),
        9: _v("membership use", "a visit paid by a membership", "membership"),
        10: _v("membership cost recalculation", "membership cost recalculated", "membership"),
        11: _v("client account withdrawal", "paid from a client account (deposit)", "deposit"),
    },
    source="CONTRACT §7 E15 [spec]",
)

TRANSACTION_ITEM_TYPE = EnumTable(
    name="transaction_item_type",
    contract_id="E16",
    description="Loyalty transaction item_type_id: what the order position is.",
    values={
        0: _v("not applicable", "not related to an order position"),
        1: _v("service", "service provided"),
        7: _v("product", "product sold"),
    },
    source="CONTRACT §7 E16 [spec + example]; other values undocumented",
)

TEMPLATE_TYPE = EnumTable(
    name="template_type",
    contract_id="E17",
    description="Notification template type (string enum); requests also accept 'none'.",
    kind="str",
    values=_strings("big", "mid", "small", "custom", "none"),
    source="CONTRACT §7 E17 [spec]",
)

TEMPLATE_MESSAGE_TYPE = EnumTable(
    name="template_message_type",
    contract_id="E18",
    description="Notification template message_type (string enum).",
    kind="str",
    values=_strings(
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
    ),
    source="CONTRACT §7 E18 [spec]",
)

ENUMS: dict[str, EnumTable] = {
    e.name: e
    for e in (
        TIME_UNIT,
        MEMBERSHIP_EXPIRATION_TYPE,
        MEMBERSHIP_BALANCE_EDIT_TYPE,
        MEMBERSHIP_STATUS,
        CERTIFICATE_ITEM_TYPE,
        CERTIFICATE_EXPIRATION_TYPE,
        CERTIFICATE_BALANCE_EDIT_TYPE,
        PROMOTION_TYPE,
        ITEM_ALLOWANCE,
        VALUE_UNIT,
        EXPIRATION_TIMEOUT_UNIT,
        PARAMS_SOURCE_TYPE,
        LOYALTY_TYPE,
        VALUE_UNIT_CODE,
        TRANSACTION_TYPE,
        TRANSACTION_ITEM_TYPE,
        TEMPLATE_TYPE,
        TEMPLATE_MESSAGE_TYPE,
    )
}


def decode(enum_name: str, code: int | str | None) -> str | None:
    """Label of `code` in enum `enum_name` (``unknown:<code>`` when undocumented)."""
    return ENUMS[enum_name].label(code)


def direction(type_id: int | None) -> str | None:
    """E15 direction of a transaction type code; None for a null or unknown code."""
    if type_id is None:
        return None
    value = TRANSACTION_TYPE.values.get(type_id)
    return None if value is None else value.direction


def dimension_tables() -> dict[str, pa.Table]:
    """One table per enum, named ``enum_<name>``; one row = one documented code.

    Columns: code (int64, or string for string enums), label, description; the transaction
    type table adds direction. Conflicting enums list the preferred reading.
    """
    out: dict[str, pa.Table] = {}
    for name, enum in ENUMS.items():
        codes = list(enum.values)
        code_type = pa.int64() if enum.kind == "int" else pa.string()
        columns: dict[str, pa.Array] = {
            "code": pa.array(codes, type=code_type),
            "label": pa.array([enum.values[c].label for c in codes], type=pa.string()),
            "description": pa.array([enum.values[c].description for c in codes], type=pa.string()),
        }
        if enum is TRANSACTION_TYPE:
            columns["direction"] = pa.array(
                [enum.values[c].direction for c in codes], type=pa.string()
            )
        out[f"enum_{name}"] = pa.table(columns).replace_schema_metadata(
            {b"doc": f"{enum.contract_id}: {enum.description}".encode()}
        )
    return out
