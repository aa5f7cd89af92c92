"""The declared warehouse schemas: names, keys, lineage and the columns other modules rely on."""

import pyarrow as pa
import pytest

from pipelines.altegio.schema import TABLES, TIMESTAMP

EXPECTED_TABLES = {
    "chains",
    "locations",
    "membership_types",
    "membership_type_locations",
    "membership_type_availability",
    "membership_type_balance_links",
    "memberships",
    "membership_balance_links",
    "certificate_types",
    "certificate_type_services",
    "certificate_type_locations",
    "promotions",
    "promotion_rules",
    "promotion_applicable_items",
    "promotion_locations",
    "promotion_card_types",
    "notification_templates",
    "card_types",
    "loyalty_transactions",
    "deposits",
    "quarantine",
    "load_steps",
    "operations_journal",
}

# docs/internals.md "Columns the marts and checks rely on"
PROMISED = {
    "loyalty_transactions": "id chain_id transaction_date visit_id status_id amount type_id type "
    "type_title card_id program_id certificate_id abonement_id salon_group_id item_id "
    "item_type_id item_type item_record_id goods_transaction_id services_transaction_id "
    "is_discount is_loyalty_withdraw extra _extracted_at _source_endpoint",
    "memberships": "id chain_id created_day number balance_string is_frozen freeze_period period "
    "period_unit_id period_unit created_date activated_date expiration_date status_id status "
    "status_title membership_type_id membership_type_title is_united_balance "
    "united_balance_services_count goods_transaction_id",
    "membership_balance_links": "membership_id chain_id created_day link_index item_id "
    "is_category title count is_unlimited",
    "membership_types": "id chain_id title cost period period_unit_id period_unit "
    "expiration_type_id expiration_type expiration_type_title balance_edit_type_id "
    "balance_edit_type is_united_balance united_balance_services_count abonements_count "
    "is_archived",
    "membership_type_balance_links": "membership_type_id chain_id link_index item_id "
    "is_category title count is_unlimited",
    "certificate_types": "id chain_id title balance is_multi item_type_id item_type "
    "expiration_type_id expiration_type released_total is_archived",
    "promotions": "id chain_id title type value_unit service_item_type good_item_type "
    "loyalty_type_id loyalty_type expiration_timeout expiration_timeout_unit",
    "promotion_rules": "id chain_id promotion_id parameter value loyalty_type_id loyalty_type "
    "service_id",
    "quarantine": "source_table chain_id partition_key raw_json reason quarantined_at",
}

TYPES = {
    ("loyalty_transactions", "transaction_date"): pa.date32(),
    ("loyalty_transactions", "amount"): pa.float64(),
    ("loyalty_transactions", "id"): pa.int64(),
    ("loyalty_transactions", "is_discount"): pa.bool_(),
    ("memberships", "created_day"): pa.date32(),
    ("memberships", "created_month"): pa.date32(),
    ("memberships", "number"): pa.string(),
    ("memberships", "created_date"): TIMESTAMP,
    ("memberships", "expiration_date"): TIMESTAMP,
    ("certificate_types", "balance"): pa.float64(),
    ("membership_types", "cost"): pa.float64(),
    ("quarantine", "quarantined_at"): TIMESTAMP,
    ("quarantine", "partition_key"): pa.string(),
}


def test_every_documented_table_is_declared_once():
    assert set(TABLES) == EXPECTED_TABLES
    assert all(spec.name == name for name, spec in TABLES.items())


@pytest.mark.parametrize(
    "name", sorted(EXPECTED_TABLES - {"chains", "load_steps", "operations_journal"})
)
def test_every_table_but_chains_has_int64_id_and_chain_id(name):
    schema = TABLES[name].schema
    assert schema.field("id").type == pa.int64()
    assert schema.field("chain_id").type == pa.int64()


@pytest.mark.parametrize(
    "name", sorted(EXPECTED_TABLES - {"quarantine", "load_steps", "operations_journal"})
)
def test_every_table_ends_with_lineage_columns(name):
    schema = TABLES[name].schema
    assert schema.names[-3:] == ["extra", "_extracted_at", "_source_endpoint"]
    assert schema.field("_extracted_at").type == TIMESTAMP
    assert schema.field("extra").type == pa.string()


@pytest.mark.parametrize("name", sorted(EXPECTED_TABLES))
def test_every_column_and_table_is_documented(name):
    spec = TABLES[name]
    assert spec.description
    assert spec.schema.metadata[b"doc"]
    for f in spec.schema:
        assert f.metadata and f.metadata[b"doc"].strip(), f.name
    assert len(set(spec.schema.names)) == len(spec.schema.names)
    assert set(spec.primary_key) <= set(spec.schema.names)
    assert set(spec.partition_by) <= set(spec.schema.names)


@pytest.mark.parametrize("name", sorted(PROMISED))
def test_columns_promised_to_storage_and_marts_exist(name):
    assert set(PROMISED[name].split()) <= set(TABLES[name].schema.names)


@pytest.mark.parametrize(("table", "column"), sorted(TYPES))
def test_column_types(table, column):
    assert TABLES[table].schema.field(column).type == TYPES[(table, column)]


def test_partitioning_and_parents():
    assert TABLES["loyalty_transactions"].partition_by == ("chain_id", "transaction_date")
    assert TABLES["memberships"].partition_by == ("chain_id", "created_month")
    assert TABLES["membership_balance_links"].partition_by == ("chain_id", "created_month")
    for name in ("membership_types", "certificate_types", "promotions", "card_types", "chains"):
        assert TABLES[name].partition_by == ("chain_id",)
    for child, parent, key in (
        ("membership_type_locations", "membership_types", "membership_type_id"),
        ("membership_type_availability", "membership_types", "membership_type_id"),
        ("membership_type_balance_links", "membership_types", "membership_type_id"),
        ("membership_balance_links", "memberships", "membership_id"),
        ("certificate_type_services", "certificate_types", "certificate_type_id"),
        ("certificate_type_locations", "certificate_types", "certificate_type_id"),
        ("promotion_rules", "promotions", "promotion_id"),
        ("promotion_applicable_items", "promotions", "promotion_id"),
        ("promotion_locations", "promotions", "promotion_id"),
        ("promotion_card_types", "promotions", "promotion_id"),
    ):
        assert TABLES[child].parent == parent
        assert key in TABLES[child].primary_key
        assert "chain_id" in TABLES[child].primary_key


def test_every_code_column_has_its_label_column():
    for spec in TABLES.values():
        names = set(spec.schema.names)
        for f in spec.schema:
            meta = f.metadata or {}
            if b"enum" in meta and pa.types.is_integer(f.type) and f.name != "value_unit_id":
                assert f.name.removesuffix("_id") in names, (spec.name, f.name)
