"""Property: malformed and adversarial records never crash normalize, and every record is either
a row of the main table or a row of quarantine (rows in = rows out + rows quarantined)."""

from datetime import UTC, date, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.altegio.normalize import normalize, normalize_groups
from pipelines.altegio.schema import TABLES
from tests.conftest import (
    certificate_type,
    membership,
    membership_type,
    transaction,
)

NOW = datetime(2026, 1, 6, tzinfo=UTC)

PROMOTION = {
    "id": 34,
    "title": "P",
    "type": "discount_accumulative_paid",
    "value_unit": "percent",
    "history_start_date": "2026-09-21",
    "on_changed_notification_template_id": 55,
    "rules": [{"id": 94, "parameter": 10, "value": 2.5, "loyalty_type_id": 3, "service_id": 0}],
    "companies": [{"id": 49, "title": "L", "coordinate_lat": 40.7}],
    "applicable_items": [{"id": 53, "title": "S", "is_service": True, "is_category": True}],
    "loyalty_card_types": [{"id": 51, "title": "Card"}],
}
GROUP = {
    "id": 509,
    "title": "Chain",
    "companies": [{"id": 1, "title": "L", "timezone_name": "UTC", "phones": ["1"]}],
    "access": {"loyalty_access": "1"},
}
BASES = {
    "membership_types": membership_type(),
    "memberships": membership(),
    "certificate_types": certificate_type(),
    "promotions": PROMOTION,
    "notification_templates": {"id": 1, "type": "big", "message_type": "x", "body": "b"},
    "card_types": {"id": 1, "title": "Card"},
    "loyalty_transactions": transaction(),
    "chains": GROUP,
}

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(["0", "1", "12.5", "abc", "", "0000-00-00 00:00:00", "\ud800", "2026-01-05"]),
    st.sampled_from(["2026-09-21T23:00:00.000-05:00", "2026-09-08T13:33:39-0500", "9999-99-99"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def adversarial(draw, base):
    """A documented record with some fields broken, dropped or added - or not a dict at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(values)
    rec = dict(base)
    keys = sorted(rec)
    for key in draw(st.lists(st.sampled_from(keys), max_size=4, unique=True)):
        action = draw(st.integers(0, 2))
        if action == 0:
            del rec[key]
        else:
            rec[key] = draw(values)
    for key, value in draw(st.dictionaries(st.text(max_size=6), values, max_size=2)).items():
        rec[key] = value
    if draw(st.booleans()):
        rec["id"] = draw(st.one_of(st.integers(1, 5), scalars))
    return rec


@pytest.mark.parametrize("table", sorted(BASES))
def test_adversarial_records_never_raise_and_are_all_accounted_for(table):
    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.lists(adversarial(BASES[table]), max_size=6))
    def check(records):
        if table == "chains":
            batch = normalize_groups(records, NOW)
        else:
            batch = normalize(
                table,
                records,
                chain_id=7,
                extracted_at=NOW,
                chain_timezone="Europe/London",
                transaction_date=date(2026, 1, 5),
            )
        assert batch.tables[table].num_rows + batch.quarantine.num_rows == len(records)
        for name, out in batch.tables.items():
            assert out.schema.equals(TABLES[name].schema, check_metadata=True)
        assert batch.quarantine.schema.equals(TABLES["quarantine"].schema, check_metadata=True)
        assert batch.quarantine["reason"].null_count == 0
        assert batch.quarantine["raw_json"].null_count == 0
        ids = batch.tables[table]["chain_id" if table == "chains" else "id"].to_pylist()
        assert len(ids) == len(set(ids)) and None not in ids

    check()
