"""normalize(): raw API records -> typed tables, quarantine, drift and unknown codes."""

import copy
import json
from datetime import UTC, date, datetime
from pathlib import Path

import orjson
import pytest

from pipelines.altegio.enums import ENUMS
from pipelines.altegio.normalize import normalize, normalize_groups
from pipelines.altegio.schema import TABLES

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "altegio_api" / "examples"
NOW = datetime(2026, 1, 6, 3, 0, tzinfo=UTC)
DAY = date(2026, 1, 5)


def example(name):
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


def run(table, records, **kw):
    kw.setdefault("chain_id", 509)
    kw.setdefault("extracted_at", NOW)
    kw.setdefault("chain_timezone", "America/New_York")
    if table == "loyalty_transactions":
        kw.setdefault("transaction_date", DAY)
    return normalize(table, records, **kw)


def assert_schemas(batch):
    for name, table in batch.tables.items():
        assert table.schema == TABLES[name].schema, name
        assert table.schema.equals(TABLES[name].schema, check_metadata=True)
    assert batch.quarantine.schema.equals(TABLES["quarantine"].schema, check_metadata=True)


def rows(batch, table):
    return batch.tables[table].to_pylist()


def reasons(batch):
    return batch.quarantine["reason"].to_pylist()


# --- hand-written records with every documented field --------------------------------------


def membership_type(**over):
    rec = {
        "id": 777,
        "salon_group_id": 509,
        "category_id": None,
        "title": "10-visit subscription",
        "period": 10,
        "period_unit_id": 3,
        "allow_freeze": True,
        "freeze_limit": 30,
        "freeze_limit_unit_id": 1,
        "is_booking_when_frozen_allowed": False,
        "is_allow_empty_code": False,
        "is_united_balance": True,
        "is_united_balance_unlimited": False,
        "is_code_required": False,
        "balance_edit_type_id": 1,
        "cost": 1000,
        "chain_price_min": 1000,
        "chain_price_max": 1500.5,
        "is_chain": True,
        "expiration_type_id": 1,
        "expiration_type_title": "On sale",
        "category": "standard",
        "weight": 0,
        "abonements_count": 3,
        "is_online_sale_enabled": False,
        "online_sale_title": "10-visit subscription",
        "online_sale_description": "Sold online with discount",
        "online_sale_price": 550,
        "online_sale_image": None,
        "service_price_correction": True,
        "united_balance_services_count": 10,
        "autoactivation_time": 10,
        "autoactivation_time_unit_id": 1,
        "attached_location_ids": [1, 2, 3],
        "attached_salon_ids": [1, 2, 3, 4],
        "is_archived": False,
        "date_archived": None,
        "availability": [
            {
                "week_days": [1, 2, 3],
                "intervals": [{"from": 3600, "to": 7200}, {"from": 0, "to": 60}],
            },
            {"week_days": [7], "intervals": []},
        ],
        "balance_container": {
            "links": [
                {
                    "count": 10,
                    "is_unlimited": False,
                    "service": {
                        "id": 11,
                        "is_category": False,
                        "category_id": 5,
                        "title": "Haircut",
                        "online_sale_title": "Haircut online",
                        "is_chain": True,
                        "chain_price_min": 20,
                        "chain_price_max": 30,
                        "category": [],
                    },
                },
                {
                    "count": 0,
                    "is_unlimited": True,
                    "category": {
                        "id": 5,
                        "is_category": True,
                        "category_id": 0,
                        "title": "Hair",
                        "category": {"id": 1, "title": "root"},
                    },
                },
            ]
        },
    }
    rec.update(over)
    return rec


def membership(**over):
    rec = {
        "id": 123,
        "number": 123456,
        "balance_string": "Services (x5)",
        "is_frozen": False,
        "freeze_period": 0,
        "period": 30,
        "period_unit_id": 1,
        "expiration_date": "2026-02-04T23:59:59-0500",
        "created_date": "2026-01-05T23:30:00.000-05:00",
        "activated_date": None,
        "is_united_balance": False,
        "is_united_balance_unlimited": False,
        "united_balance_services_count": 0,
        "goods_transaction_id": 0,
        "slug": "sub",
        "status": {"id": 1, "title": "Released", "extended_title": "Released", "slug": "created"},
        "balance_container": {
            "links": [{"count": 5, "category": {"id": 7, "category_id": 1, "title": "Services"}}]
        },
        "type": {
            "id": 777,
            "title": "10-visit subscription",
            "cost": "1000.50",
            "expiration_type_id": 2,
            "expiration_type_title": "On first use",
        },
    }
    rec.update(over)
    return rec


def certificate_type(**over):
    rec = {
        "id": 289056,
        "title": "Gift Certificate 1000",
        "balance": 1000,
        "is_multi": True,
        "company_group_id": 509,
        "category_id": None,
        "weight": 1,
        "item_type_id": 0,
        "expiration_type_id": 2,
        "expiration_date": None,
        "expiration_timeout": 6,
        "expiration_timeout_unit_id": 3,
        "balance_edit_type_id": 1,
        "is_allow_empty_code": False,
        "is_serial_number_limited": False,
        "is_archived": False,
        "date_archived": None,
        "online_sale_is_enabled": False,
        "online_sale_title": "Gift Certificate 1000",
        "online_sale_description": "",
        "online_sale_price": 0,
        "online_sale_image": None,
        "released_total": 0,
        "item_type": {"id": 0, "title": "All services and products"},
        "service_ids": [5, 6, 5],
        "salon_ids": [720441],
    }
    rec.update(over)
    return rec


def transaction(**over):
    rec = {
        "id": 22989715,
        "visit_id": 0,
        "status_id": 1,
        "amount": 100,
        "type_id": 1,
        "card_id": 0,
        "program_id": 34,
        "certificate_id": 0,
        "abonement_id": 0,
        "salon_group_id": 509,
        "item_id": 0,
        "item_type_id": 0,
        "item_record_id": 0,
        "goods_transaction_id": 0,
        "services_transaction_id": 0,
        "is_discount": True,
        "is_loyalty_withdraw": False,
        "type": {"id": 1, "title": "Promotion discount"},
    }
    rec.update(over)
    return rec


# --- official examples ------------------------------------------------------------------------


def test_memberships_example_normalizes_exactly_to_schema():
    records = example("GET_chain_loyalty_abonements.200.json")[0]["data"]
    batch = run("memberships", records, chain_id=279982)
    assert_schemas(batch)
    assert set(batch.tables) == {"memberships", "membership_balance_links"}
    first, second = rows(batch, "memberships")
    assert first["number"] == "123456"
    assert first["created_date"] == datetime(2026, 9, 22, 4, 0, tzinfo=UTC)
    # 23:00 -05:00 is 00:00 EDT (-04:00) in New York: the next calendar day there
    assert first["created_day"] == date(2026, 9, 22)
    assert (first["status_id"], first["status"], first["status_title"]) == (
        2,
        "active",
        "activated",
    )
    assert second["status"] == "expired" and second["activated_date"] is None
    assert first["membership_type_id"] == 896
    links = rows(batch, "membership_balance_links")
    assert [(r["membership_id"], r["item_id"], r["count"], r["is_category"]) for r in links] == [
        (123, 7182839, 9, True),
        (720, 7182839, 10, True),
    ]
    assert all(r["created_day"] == date(2026, 9, 22) for r in links)
    assert batch.quarantine.num_rows == 0 and batch.drift == {} and batch.unknown_codes == {}


def test_promotion_detail_and_search_examples():
    detail = example("GET_chain_loyalty_programs_id.200.json")
    search = example("GET_company_loyalty_programs_search.200.json")["data"]
    batch = run("promotions", [detail, *search])
    assert_schemas(batch)
    promo = {r["id"]: r for r in rows(batch, "promotions")}
    assert promo[34]["type"] == "discount_accumulative_paid"
    assert promo[34]["loyalty_type_id"] == 3  # from its rules
    assert promo[34]["loyalty_type"] == "discount_accumulative_paid"
    assert promo[34]["history_start_date"] == date(2026, 9, 21)
    assert promo[53591]["value_unit_id"] == 2 and promo[53591]["value_unit"] == "amount"
    assert promo[53591]["loyalty_type"] == "discount_static"
    assert promo[53591]["on_changed_notification_template_id"] is None  # 0 -> null
    rules = rows(batch, "promotion_rules")
    assert [(r["id"], r["parameter"], r["value"], r["service_id"]) for r in rules] == [
        (94, 10.0, 2.5, None),
        (74, 30.0, 7.5, None),
    ]
    assert batch.tables["promotion_applicable_items"].num_rows == 2
    assert rows(batch, "promotion_locations")[0]["timezone"] == "America/New_York"
    assert [r["id"] for r in rows(batch, "promotion_card_types")] == [51, 29]
    assert batch.quarantine.num_rows == 0


def test_groups_example_gives_chains_and_locations_with_string_flags():
    batch = normalize_groups(example("GET_groups.200.json")["data"], NOW)
    assert_schemas(batch)
    chains = rows(batch, "chains")
    assert [c["chain_id"] for c in chains] == [509, 508]
    assert chains[0]["loyalty_access"] is True and chains[0]["chain_services_access"] is True
    assert chains[0]["loyalty_programs_access"] is None
    locations = rows(batch, "locations")
    assert [(loc["chain_id"], loc["id"]) for loc in locations] == [
        (509, 38726),
        (509, 39287),
        (508, 38545),
        (508, 38704),
    ]


def test_groups_timezone_and_unknown_access_flag():
    rec = {
        "id": 1,
        "title": "C",
        "companies": [
            {
                "id": 2,
                "title": "L",
                "timezone_name": "Europe/London",
                "timezone": "0",
                "phones": ["+1", "+2"],
                "active": 1,
                "brand_new": True,
            },
        ],
        "access": {"loyalty_access": "0", "new_flag": "1"},
    }
    batch = normalize_groups([rec], NOW)
    assert_schemas(batch)
    chain = rows(batch, "chains")[0]
    assert chain["timezone"] == "Europe/London" and chain["loyalty_access"] is False
    assert orjson.loads(chain["extra"]) == {"access.new_flag": "1"}
    loc = rows(batch, "locations")[0]
    assert loc["phones"] == ["+1", "+2"] and loc["active"] is True
    assert orjson.loads(loc["extra"]) == {"brand_new": True}
    assert batch.drift == {"chains": {"access.new_flag"}, "locations": {"brand_new"}}


# --- every entity from hand-written records ------------------------------------------------------


def test_membership_types_with_children():
    batch = run("membership_types", [membership_type()])
    assert_schemas(batch)
    row = rows(batch, "membership_types")[0]
    assert row["chain_id"] == 509 and row["cost"] == 1000.0 and row["category"] == "standard"
    assert (row["period_unit_id"], row["period_unit"]) == (3, "month")
    assert row["freeze_limit_unit"] == "day" and row["autoactivation_time_unit"] == "day"
    assert row["expiration_type"] == "on sale"  # title picks the spec reading of code 1
    assert row["balance_edit_type"] == "selling location only"
    assert row["extra"] is None
    locs = rows(batch, "membership_type_locations")
    assert [r["location_id"] for r in locs] == [1, 2, 3, 4]
    assert all(r["id"] == r["location_id"] and r["membership_type_id"] == 777 for r in locs)
    avail = rows(batch, "membership_type_availability")
    assert len(avail) == 3 * 2 + 1
    assert {
        (r["week_day"], r["from_seconds"], r["to_seconds"]) for r in avail if r["rule_index"] == 0
    } == {(d, f, t) for d in (1, 2, 3) for f, t in ((3600, 7200), (0, 60))}
    assert [(r["week_day"], r["from_seconds"]) for r in avail if r["rule_index"] == 1] == [
        (7, None)
    ]
    links = rows(batch, "membership_type_balance_links")
    assert [
        (r["link_index"], r["item_id"], r["is_category"], r["count"], r["is_unlimited"])
        for r in links
    ] == [
        (0, 11, False, 10, False),
        (1, 5, True, 0, True),
    ]
    assert links[1]["category_id"] is None  # category_id 0 -> null
    assert links[0]["chain_price_max"] == 30.0


@pytest.mark.parametrize(
    ("category", "expected"),
    [(None, None), ("standard", "standard"), ({"id": 3, "title": "VIP"}, '{"id":3,"title":"VIP"}')],
)
def test_membership_type_category_forms(category, expected):
    batch = run("membership_types", [membership_type(category=category)])
    assert rows(batch, "membership_types")[0]["category"] == expected


def test_memberships_hand_written():
    batch = run("memberships", [membership()])
    assert_schemas(batch)
    row = rows(batch, "memberships")[0]
    assert row["created_day"] == date(2026, 1, 5)  # 23:30 -05:00 is Jan 6 UTC
    assert row["created_date"] == datetime(2026, 1, 6, 4, 30, tzinfo=UTC)
    assert row["expiration_date"] == datetime(2026, 2, 5, 4, 59, 59, tzinfo=UTC)
    assert row["goods_transaction_id"] is None
    assert row["membership_type_cost"] == 1000.5
    assert row["status"] == "created" and row["status_slug"] == "created"
    assert row["membership_type_expiration_type"] == "on first visit"


def test_memberships_created_day_uses_the_chain_time_zone():
    rec = membership(created_date="2026-01-06T02:00:00+00:00")
    assert rows(run("memberships", [rec], chain_timezone="UTC"), "memberships")[0][
        "created_day"
    ] == date(2026, 1, 6)
    assert rows(run("memberships", [rec], chain_timezone="America/Los_Angeles"), "memberships")[0][
        "created_day"
    ] == date(2026, 1, 5)


def test_certificate_types_with_children():
    batch = run("certificate_types", [certificate_type()])
    assert_schemas(batch)
    row = rows(batch, "certificate_types")[0]
    assert row["item_type"] == "all services and products"
    assert row["item_type_title"] == "All services and products"
    assert row["expiration_type"] == "period from sale"
    assert row["expiration_timeout_unit"] == "month" and row["balance_edit_type"] == "editable"
    assert [r["service_id"] for r in rows(batch, "certificate_type_services")] == [5, 6]
    assert [r["location_id"] for r in rows(batch, "certificate_type_locations")] == [720441]


def test_certificate_item_type_falls_back_to_the_nested_object():
    rec = certificate_type(item_type={"id": 3, "title": "Specific services"})
    del rec["item_type_id"]
    row = rows(run("certificate_types", [rec]), "certificate_types")[0]
    assert (row["item_type_id"], row["item_type"]) == (3, "specific services")


def test_notification_templates_and_card_types():
    templates = [
        {"id": 12, "type": "small", "message_type": "loyalty_discount_expiration", "body": "Bye"},
        {"id": 13, "type": "huge", "message_type": "loyalty_new_thing", "body": "x"},
    ]
    batch = run("notification_templates", templates)
    assert_schemas(batch)
    assert [r["type"] for r in rows(batch, "notification_templates")] == ["small", "huge"]
    assert batch.unknown_codes == {}
    assert batch.unknown_values == {
        "notification_templates.type": {"huge"},
        "notification_templates.message_type": {"loyalty_new_thing"},
    }
    cards = run("card_types", [{"id": 123, "title": "Loyalty card type"}])
    assert_schemas(cards)
    assert rows(cards, "card_types")[0]["title"] == "Loyalty card type"


def test_transactions_fk_zero_becomes_null_and_labels_decode():
    batch = run("loyalty_transactions", [transaction()])
    assert_schemas(batch)
    row = rows(batch, "loyalty_transactions")[0]
    for fk in (
        "visit_id",
        "card_id",
        "certificate_id",
        "abonement_id",
        "item_id",
        "item_record_id",
        "goods_transaction_id",
        "services_transaction_id",
    ):
        assert row[fk] is None, fk
    assert row["program_id"] == 34 and row["amount"] == 100.0
    assert (row["type_id"], row["type"], row["type_title"]) == (
        1,
        "promotion discount",
        "Promotion discount",
    )
    assert row["direction"] == "discount" and row["item_type"] == "not applicable"
    assert row["transaction_date"] == DAY and row["chain_id"] == 509
    assert row["_extracted_at"] == NOW and row["_source_endpoint"] == "transactions"


def test_every_enum_code_decodes_through_normalize():
    codes = list(ENUMS["transaction_type"].values)
    item_codes = list(ENUMS["transaction_item_type"].values)
    records = [
        transaction(
            id=i + 1, type_id=c, type={"id": c, "title": "t"}, item_type_id=item_codes[i % 3]
        )
        for i, c in enumerate(codes)
    ]
    out = rows(run("loyalty_transactions", records), "loyalty_transactions")
    for row in out:
        assert row["type"] == ENUMS["transaction_type"].values[row["type_id"]].label
        assert row["item_type"] == ENUMS["transaction_item_type"].values[row["item_type_id"]].label
    statuses = [membership(id=10 + c, status={"id": c, "title": "x"}) for c in range(1, 5)]
    out = rows(run("memberships", statuses), "memberships")
    assert [r["status"] for r in out] == ["created", "active", "expired", "wasted"]
    for code, value in ENUMS["certificate_expiration_type"].values.items():
        row = rows(
            run("certificate_types", [certificate_type(expiration_type_id=code)]),
            "certificate_types",
        )[0]
        assert row["expiration_type"] == value.label
    for code, value in ENUMS["certificate_item_type"].values.items():
        row = rows(
            run("certificate_types", [certificate_type(item_type_id=code)]), "certificate_types"
        )[0]
        assert row["item_type"] == value.label
    for code, value in ENUMS["membership_balance_edit_type"].values.items():
        row = rows(
            run("membership_types", [membership_type(balance_edit_type_id=code)]),
            "membership_types",
        )[0]
        assert row["balance_edit_type"] == value.label
    for code, value in ENUMS["time_unit"].values.items():
        row = rows(
            run("membership_types", [membership_type(period_unit_id=code)]), "membership_types"
        )[0]
        assert row["period_unit"] == value.label


def test_type_id_falls_back_to_the_type_object():
    rec = transaction(type={"id": 9, "title": "Membership"})
    del rec["type_id"]
    row = rows(run("loyalty_transactions", [rec]), "loyalty_transactions")[0]
    assert (row["type_id"], row["type"], row["direction"]) == (9, "membership use", "membership")


# --- forgiving: what the API really sends --------------------------------------------------------


def test_numeric_strings_and_string_flags_coerce():
    rec = transaction(
        id="22989716",
        amount="12.50",
        type_id="2",
        card_id="0",
        program_id="7",
        is_discount="1",
        is_loyalty_withdraw="0",
        salon_group_id=509.0,
    )
    batch = run("loyalty_transactions", [rec])
    assert batch.quarantine.num_rows == 0
    row = rows(batch, "loyalty_transactions")[0]
    assert (row["id"], row["amount"], row["type_id"], row["card_id"], row["program_id"]) == (
        22989716,
        12.5,
        2,
        None,
        7,
    )
    assert row["is_discount"] is True and row["is_loyalty_withdraw"] is False
    assert row["salon_group_id"] == 509 and row["direction"] == "accrual"


def test_both_offset_spellings_parse_to_the_same_instant():
    a = membership(id=1, created_date="2026-09-21T23:00:00.000-05:00")
    b = membership(id=2, created_date="2026-09-21T23:00:00-0500")
    out = rows(run("memberships", [a, b]), "memberships")
    assert out[0]["created_date"] == out[1]["created_date"] == datetime(2026, 9, 22, 4, tzinfo=UTC)


def test_unknown_codes_are_kept_and_marked():
    batch = run(
        "loyalty_transactions",
        [transaction(type_id=42, type={"id": 42, "title": "New"}, item_type_id=3)],
    )
    row = rows(batch, "loyalty_transactions")[0]
    assert (row["type_id"], row["type"], row["direction"]) == (42, "unknown:42", None)
    assert row["item_type"] == "unknown:3"
    assert batch.unknown_codes == {
        "loyalty_transactions.type_id": {42},
        "loyalty_transactions.item_type_id": {3},
    }
    mt = run("membership_types", [membership_type(expiration_type_id=9, balance_edit_type_id=5)])
    row = rows(mt, "membership_types")[0]
    assert row["expiration_type"] == "unknown:9" and row["balance_edit_type"] == "unknown:5"
    assert mt.unknown_codes["membership_types.expiration_type_id"] == {9}


def test_drift_fields_survive_in_extra():
    rec = transaction(new_field={"a": 1}, other="x", type={"id": 1, "title": "t", "color": "red"})
    batch = run("loyalty_transactions", [rec, transaction(id=5)])
    out = rows(batch, "loyalty_transactions")
    assert orjson.loads(out[0]["extra"]) == {
        "new_field": {"a": 1},
        "other": "x",
        "type.color": "red",
    }
    assert out[1]["extra"] is None
    assert batch.drift == {"loyalty_transactions": {"new_field", "other", "type.color"}}
    links = membership_type()
    links["balance_container"]["links"][0]["bonus"] = 1
    batch = run("membership_types", [links])
    assert batch.drift["membership_type_balance_links"] == {"bonus"}
    assert orjson.loads(rows(batch, "membership_type_balance_links")[0]["extra"]) == {
        "link.bonus": 1
    }


# --- refusing: quarantine ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (transaction(id=None), "id: missing id"),
        (transaction(id="abc"), "id: not an integer"),
        (transaction(id=-4), "id: invalid id"),
        (transaction(id=1.5), "id: not an integer"),
        (transaction(id=True), "id: bool where an integer"),
        (transaction(amount="lots"), "amount: not a number"),
        (transaction(amount=True), "amount: bool where a number"),
        (transaction(amount=float("nan")), "amount: non-finite"),
        (transaction(card_id=2**70), "card_id: integer out of int64 range"),
        (transaction(type_id=[1]), "type_id: list where an integer"),
        (transaction(is_discount="maybe"), "is_discount: not a flag"),
        (transaction(type="discount"), "parent is not an object"),
        ([1, 2, 3], "record is list, not a JSON object"),
        ("x", "record is str, not a JSON object"),
    ],
)
def test_untypable_records_go_to_quarantine_with_a_reason(record, reason):
    batch = run("loyalty_transactions", [transaction(id=1), record])
    assert_schemas(batch)
    assert batch.tables["loyalty_transactions"]["id"].to_pylist() == [1]
    q = batch.quarantine.to_pylist()
    assert len(q) == 1
    assert reason in q[0]["reason"]
    assert q[0]["source_table"] == "loyalty_transactions" and q[0]["chain_id"] == 509
    assert q[0]["partition_key"] == "2026-01-05" and q[0]["record_index"] == 1
    assert q[0]["quarantined_at"] == NOW
    assert q[0]["raw_json"]


def test_quarantined_raw_json_is_the_record():
    bad = transaction(amount="n/a")
    batch = run("loyalty_transactions", [bad])
    assert json.loads(batch.quarantine["raw_json"][0].as_py()) == bad
    assert batch.quarantine["id"][0].as_py() == bad["id"]


def test_duplicate_ids_last_occurrence_wins():
    first, second, third = transaction(amount=1), transaction(amount=2), transaction(amount=3)
    batch = run("loyalty_transactions", [first, transaction(id=9), second, third])
    out = rows(batch, "loyalty_transactions")
    assert [(r["id"], r["amount"]) for r in out] == [(9, 100.0), (22989715, 3.0)]
    assert batch.quarantine["record_index"].to_pylist() == [0, 2]
    assert all(r.startswith("duplicate id 22989715") for r in reasons(batch))


def test_malformed_child_list_quarantines_the_parent_and_its_children():
    good = membership_type(id=1)
    bad = membership_type(id=2, attached_location_ids=["x"])
    bad_link = membership_type(id=3, balance_container={"links": [{"count": 1}]})
    batch = run("membership_types", [good, bad, bad_link])
    assert batch.tables["membership_types"]["id"].to_pylist() == [1]
    assert set(batch.tables["membership_type_locations"]["membership_type_id"].to_pylist()) == {1}
    assert set(batch.tables["membership_type_balance_links"]["membership_type_id"].to_pylist()) == {
        1
    }
    assert "attached_location_ids[0]" in reasons(batch)[0]
    assert "neither a service nor a category" in reasons(batch)[1]


def test_membership_without_created_date_is_quarantined():
    rec = membership()
    del rec["created_date"]
    batch = run("memberships", [rec, membership(id=5)])
    assert batch.tables["memberships"]["id"].to_pylist() == [5]
    q = batch.quarantine.to_pylist()[0]
    assert "created_date" in q["reason"] and q["partition_key"] == "unknown"
    assert batch.tables["membership_balance_links"]["membership_id"].to_pylist() == [5]


def test_empty_batch_gives_empty_tables_of_the_declared_schemas():
    batch = run("promotions", [])
    assert_schemas(batch)
    assert set(batch.tables) == {
        "promotions",
        "promotion_rules",
        "promotion_applicable_items",
        "promotion_locations",
        "promotion_card_types",
    }
    assert all(t.num_rows == 0 for t in batch.tables.values())


def test_bad_arguments_are_refused_clearly():
    with pytest.raises(ValueError, match="transaction_date"):
        normalize("loyalty_transactions", [], chain_id=1, extracted_at=NOW, chain_timezone="UTC")
    with pytest.raises(ValueError, match="normalize_groups"):
        normalize("chains", [], chain_id=1, extracted_at=NOW, chain_timezone="UTC")
    with pytest.raises(ValueError, match="time zone"):
        normalize("card_types", [], chain_id=1, extracted_at=NOW, chain_timezone="Mars/Base")


def test_input_records_are_not_mutated():
    rec = membership_type()
    before = copy.deepcopy(rec)
    run("membership_types", [rec])
    assert rec == before


def test_window_day_names_the_quarantine_partition_of_an_undatable_membership():
    rec = membership(created_date="not a date")
    batch = run("memberships", [rec], window_day=date(2026, 1, 5))
    assert batch.quarantine["partition_key"].to_pylist() == ["2026-01-05"]


def test_membership_created_outside_its_window_is_quarantined_under_the_window_label():
    from datetime import date as _date

    inside = {"id": 1, "created_date": "2026-01-02T10:00:00+00:00", "number": "1"}
    outside = {"id": 2, "created_date": "2026-02-20T10:00:00+00:00", "number": "2"}
    window = [_date(2026, 1, 1), _date(2026, 1, 2), _date(2026, 1, 3)]
    batch = normalize(
        "memberships",
        [inside, outside],
        chain_id=5,
        extracted_at=datetime(2026, 3, 1, tzinfo=UTC),
        chain_timezone="UTC",
        window_days=window,
    )
    assert batch.tables["memberships"]["id"].to_pylist() == [1]
    assert batch.quarantine["id"].to_pylist() == [2]
    assert batch.quarantine["partition_key"].to_pylist() == ["2026-01-01..2026-01-03"]
    assert "outside the requested window" in batch.quarantine["reason"][0].as_py()


def test_undocumented_loyalty_type_code_is_labelled_from_the_promotion_type_string():
    promotion = {
        "id": 9,
        "title": "Cashback",
        "type": "cashback_static_sold",
        "rules": [{"id": 1, "parameter": 0, "value": 5, "loyalty_type_id": 5}],
    }
    batch = normalize(
        "promotions",
        [promotion],
        chain_id=1,
        extracted_at=datetime(2026, 3, 1, tzinfo=UTC),
        chain_timezone="UTC",
    )
    assert batch.tables["promotions"]["loyalty_type"].to_pylist() == ["cashback_static_sold"]
    assert batch.tables["promotion_rules"]["loyalty_type"].to_pylist() == ["cashback_static_sold"]
    assert not batch.unknown_codes
