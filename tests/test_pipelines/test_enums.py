"""Enum tables E1-E18: every documented code decodes to its label, unknown codes are marked."""

import pyarrow as pa
import pytest

from pipelines.altegio.enums import DIRECTIONS, ENUMS, decode, dimension_tables, direction

# CONTRACT §7, restated here independently of enums.py.
DOCUMENTED: dict[str, dict[int | str, str]] = {
    "time_unit": {0: "not set", 1: "day", 2: "week", 3: "month", 4: "year"},
    "membership_expiration_type": {1: "on first visit", 2: "on sale", 3: "from a specific date"},
    "membership_balance_edit_type": {
        0: "prohibited",
        1: "selling location only",
        2: "all locations",
    },
    "membership_status": {1: "created", 2: "active", 3: "expired", 4: "wasted"},
    "certificate_item_type": {
        0: "all services and products",
        1: "any services",
        2: "any products",
        3: "specific services",
        4: "specific services and any products",
    },
    "certificate_expiration_type": {0: "never", 1: "fixed date", 2: "period from sale"},
    "certificate_balance_edit_type": {1: "editable", 2: "not editable"},
    "loyalty_type": {
        1: "discount_static",
        3: "discount_accumulative_paid",
        7: "cashback_accumulative_paid",
        13: "discount_accumulative_visits",
    },
    "value_unit_code": {1: "percent", 2: "amount"},
    "transaction_type": {
        1: "promotion discount",
        2: "loyalty programme accrual",
        3: "loyalty card withdrawal",
        4: "referral programme accrual",
        5: "manual top-up",
        6: "manual withdrawal",
        7: "expired points write-off",
        8: "gift certificate withdrawal",
        9: "membership use",
        10: "membership cost recalculation",
        11: "client account withdrawal",
    },
    "transaction_item_type": {0: "not applicable", 1: "service", 7: "product"},
}
STRING_ENUMS = {
    "promotion_type": 13,
    "item_allowance": 3,
    "value_unit": 2,
    "expiration_timeout_unit": 4,
    "params_source_type": 3,
    "template_type": 5,
    "template_message_type": 15,
}
DIRECTION = {
    1: "discount",
    2: "accrual",
    3: "withdrawal",
    4: "accrual",
    5: "accrual",
    6: "withdrawal",
    7: "expiry",
    8: "certificate",
    9: "membership",
    10: "membership",
    11: "deposit",
}


def test_all_eighteen_contract_enums_are_declared():
    ids = sorted(int(e.contract_id[1:]) for e in ENUMS.values())
    assert ids == list(range(1, 19))
    assert set(DOCUMENTED) | set(STRING_ENUMS) == set(ENUMS)


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_every_documented_code_decodes_to_its_label(name):
    for code, label in DOCUMENTED[name].items():
        assert decode(name, code) == label
    assert set(ENUMS[name].values) == set(DOCUMENTED[name])


@pytest.mark.parametrize("name", sorted(STRING_ENUMS))
def test_string_enums_label_is_the_value(name):
    enum = ENUMS[name]
    assert enum.kind == "str"
    assert len(enum.values) == STRING_ENUMS[name]
    for code in enum.values:
        assert decode(name, code) == code


@pytest.mark.parametrize("name", sorted(ENUMS))
def test_unknown_code_keeps_code_and_is_marked(name):
    code: int | str = 999 if ENUMS[name].kind == "int" else "brand_new"
    assert decode(name, code) == f"unknown:{code}"
    assert not ENUMS[name].is_known(code)
    assert decode(name, None) is None


def test_inferred_enums_are_flagged():
    assert ENUMS["loyalty_type"].inferred and ENUMS["value_unit_code"].inferred
    assert ENUMS["loyalty_type"].contract_id == "E13"
    assert ENUMS["value_unit_code"].contract_id == "E14"
    assert decode("loyalty_type", 5) == "unknown:5"


def test_transaction_type_direction_per_code():
    for code, expected in DIRECTION.items():
        assert direction(code) == expected
    assert direction(12) is None and direction(None) is None
    assert {v.direction for v in ENUMS["transaction_type"].values.values()} == set(DIRECTIONS)


@pytest.mark.parametrize(
    ("code", "title", "label"),
    [
        (1, "On sale", "on sale"),  # spec reading chosen by the title
        (1, "ON FIRST VISIT", "on first visit"),
        (2, "On sale", "on sale"),
        (2, "On first use", "on first visit"),
        (1, None, "on first visit"),  # no title: backend-verified reading
        (2, "", "on sale"),
        (1, "Something else", "on first visit"),
        (3, "From a specific date", "from a specific date"),
        (3, None, "from a specific date"),
        (7, "On sale", "unknown:7"),  # unknown code stays unknown whatever the title
    ],
)
def test_e2_activation_mode_is_decided_by_the_records_title(code, title, label):
    assert ENUMS["membership_expiration_type"].label_from_title(code, title) == label


def test_e3_prefers_the_write_docs_reading():
    enum = ENUMS["membership_balance_edit_type"]
    assert [enum.label(c) for c in (0, 1, 2)] == [
        "prohibited",
        "selling location only",
        "all locations",
    ]
    assert enum.alternative[1].label == "editable"


def test_dimension_tables():
    dims = dimension_tables()
    assert set(dims) == {f"enum_{n}" for n in ENUMS}
    tt = dims["enum_transaction_type"]
    assert tt.schema.names == ["code", "label", "description", "direction"]
    assert tt.schema.field("code").type == pa.int64()
    assert dict(zip(tt["code"].to_pylist(), tt["direction"].to_pylist(), strict=True)) == DIRECTION
    for name, table in dims.items():
        if name != "enum_transaction_type":
            assert table.schema.names == ["code", "label", "description"]
        assert table.num_rows == len(ENUMS[name.removeprefix("enum_")].values)
        assert table["label"].null_count == 0
    assert dims["enum_promotion_type"].schema.field("code").type == pa.string()
