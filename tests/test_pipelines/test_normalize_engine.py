"""The normalize engine on an entity of its own (no source declaration): personal objects are
redacted wherever a raw record is kept, and a stamped day column needs its day."""

from datetime import UTC, date, datetime

from pipelines.altegio.normalize.engine import REDACTED, Context, Entity, run, src
from pipelines.altegio.schema import date_col, int_col, str_col, table_spec

NOW = datetime(2026, 1, 6, 3, 0, tzinfo=UTC)
PEOPLE = table_spec(
    "people",
    "One row per person.",
    [int_col("id", "Id."), int_col("chain_id", "Chain."), str_col("city", "City.")],
    primary_key=("chain_id", "id"),
)
ENTITY = Entity(
    sources=(src("id", "id", "person", "id"), src("city", "str", "person", "city")),
    extra_known=frozenset({"person"}),
    nested_known={"person": frozenset({"id", "city", "name", "phone"})},
    personal={"person": frozenset({"id", "city"})},
)


def _run(records: list[object]):
    ctx = Context(table="people", chain_id=1, extracted_at=NOW, tz=UTC, tz_name="UTC", endpoint="x")
    return run(ENTITY, (PEOPLE,), records, ctx)


def test_quarantined_records_keep_their_shape_but_not_the_personal_values():
    batch = _run(
        [
            {"person": {"id": "not an id", "city": "Leeds", "name": "Ann Lee", "phone": "+44 1"}},
            {"person": "Ann Lee, +44 1"},
            "Ann Lee +44 1",
        ]
    )
    raw = batch.quarantine["raw_json"].to_pylist()
    assert len(raw) == 3 and batch.tables["people"].num_rows == 0
    assert all("Ann" not in text and "+44" not in text for text in raw)
    assert '"city":"Leeds"' in raw[0] and '"id":"not an id"' in raw[0]
    assert f'"name":"{REDACTED}"' in raw[0]


def test_unknown_fields_of_a_personal_object_are_named_in_extra_with_their_values_redacted():
    batch = _run([{"person": {"id": 5, "city": "York", "email": "ann@example.org"}}])
    (row,) = batch.tables["people"].to_pylist()
    assert row["extra"] == f'{{"person.email":"{REDACTED}"}}'
    assert batch.drift == {"people": {"person.email"}}


def test_a_stamped_day_column_takes_the_requested_day():
    spec = table_spec(
        "days",
        "One row per thing of a day.",
        [
            int_col("id", "Id."),
            int_col("chain_id", "Chain."),
            date_col("day", "The requested day."),
        ],
        primary_key=("chain_id", "id"),
    )
    entity = Entity(sources=(src("id", "id"),), day_column="day")
    ctx = Context(
        table="days",
        chain_id=1,
        extracted_at=NOW,
        tz=UTC,
        tz_name="UTC",
        endpoint="x",
        day=date(2026, 1, 5),
    )
    batch = run(entity, (spec,), [{"id": 1}, {"id": 2}], ctx)
    assert batch.tables["days"]["day"].to_pylist() == [date(2026, 1, 5)] * 2
