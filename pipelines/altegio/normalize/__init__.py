"""Raw Altegio records (dicts, as the client yields them) -> typed pyarrow tables.

One call of ``normalize(table, records, ...)`` turns one batch of one source into its main
table plus its child tables, each exactly ``schema.TABLES[name].schema``, and quarantine rows.
``normalize_groups(records, extracted_at)`` does the same for ``GET /groups`` (chains +
locations). The rules (what is forgiven, what is refused, duplicates, drift, unknown codes)
are the engine's (`pipelines.altegio.normalize.engine`); what each source's records mean is
its declaration's (`pipelines.altegio.sources`).
"""

from collections.abc import Collection, Iterable
from datetime import UTC, date, datetime

from pipelines.altegio.normalize.engine import Context, NormalizedBatch, run, timezone, to_json

__all__ = ["NormalizedBatch", "normalize", "normalize_groups", "to_json"]


def normalize(
    table: str,
    records: Iterable[object],
    *,
    chain_id: int,
    extracted_at: datetime,
    chain_timezone: str,
    transaction_date: date | None = None,
    source_endpoint: str | None = None,
    window_day: date | None = None,
    window_days: Collection[date] | None = None,
    personal_key: bytes | None = None,
) -> NormalizedBatch:
    """Type one batch of raw records of one source; one output row = one API record.

    `table` is a source's main table (every source but chains: use normalize_groups). The
    result holds that table and its child tables; every record is either a row of the main
    table or a row of the quarantine table (never both, never neither). `transaction_date`
    is the requested day of a daily source (stamped on every row; required there).
    `window_day` (optional) is the day window the records were read for; it names the
    quarantine partition of a record whose own partition day cannot be read. `window_days`
    (memberships) are the days a created-date window covered: a record created on another day
    is quarantined (its partition would belong to another window), under the partition key
    "<first>..<last>". `personal_key` keys the hashes of personal data (deposits need one).
    """
    # Imported here: the declarations import the engine this package holds.
    from pipelines.altegio.sources import SOURCES, LoadShape

    source = SOURCES.get(table)
    if source is None or source.shape is LoadShape.GROUPS:
        raise ValueError(
            f"normalize() cannot build {table!r}; use one of "
            f"{sorted(s.name for s in SOURCES.values() if s.shape is not LoadShape.GROUPS)} "
            "(chains: normalize_groups)"
        )
    entity = source.entity
    if entity.day_column is not None and transaction_date is None:
        raise ValueError(f"{table} needs transaction_date (the requested day)")
    if entity.needs_personal_key and not personal_key:
        raise ValueError(f"{table} holds personal data: pass personal_key (the hash key)")
    if extracted_at.tzinfo is None:
        raise ValueError("extracted_at must be timezone-aware")
    ctx = Context(
        table=table,
        chain_id=chain_id,
        extracted_at=extracted_at.astimezone(UTC),
        tz=timezone(chain_timezone),
        tz_name=chain_timezone,
        endpoint=source_endpoint or source.record_endpoint.name,
        day=transaction_date if entity.day_column is not None else None,
        window_day=window_day,
        window_days=frozenset(window_days) if window_days is not None else None,
        personal_key=personal_key,
    )
    return run(entity, source.tables, list(records), ctx)


def normalize_groups(
    records: Iterable[object], extracted_at: datetime, *, source_endpoint: str | None = None
) -> NormalizedBatch:
    """Type the `GET /groups` records: one `chains` row per chain, one `locations` row per
    location in its `companies[]`. Quarantined records carry chain_id null."""
    from pipelines.altegio.sources import groups_source

    if extracted_at.tzinfo is None:
        raise ValueError("extracted_at must be timezone-aware")
    source = groups_source()
    ctx = Context(
        table=source.name,
        chain_id=None,
        extracted_at=extracted_at.astimezone(UTC),
        tz=UTC,
        tz_name="UTC",
        endpoint=source_endpoint or source.record_endpoint.name,
    )
    return run(source.entity, source.tables, list(records), ctx)
