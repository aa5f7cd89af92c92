"""After an apply: the touched entities re-read into the lake, the warehouse republished.

The nightly load would show a write only the next night (memberships are read by creation
day, so a freeze of an old membership would not show at all until it is re-read by id). Here
the records the writes re-read are written straight into the lake's current tables:

* memberships: each re-read record replaces its own row (and balance links) inside its
  creation-day partition, every other row of that partition kept as it was;
* catalogue tables: the chain's partition is re-read whole (`load_reference`), as a load does;
* the journal: `altegio.operations_journal` rebuilt from the JSONL file;

then the warehouse is republished under the data directory's load lock (a nightly load and
an apply never publish at once).
"""

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.altegio.client import AltegioClient, Chain
from pipelines.altegio.normalize import normalize
from pipelines.altegio.schema import TABLES
from pipelines.load import StepReport, load_reference
from pipelines.storage.parquet import Lake, Partition
from pipelines.storage.warehouse import PublishResult, Warehouse
from pipelines.writes.journal import Journal, journal_rows

log = logging.getLogger(__name__)

CATALOG_TABLES = ("membership_types", "certificate_types", "promotions")
# The quarantine partition of re-read records that cannot be typed.
REFRESH_PARTITION_KEY = "re-read after write"


def refresh_memberships(
    lake: Lake,
    chain: Chain,
    records: Iterable[Mapping[str, Any]],
    personal_key: bytes | None = None,
) -> int:
    """Replace the rows of these re-read memberships in their partitions; rows written."""
    rows = [dict(r) for r in records]
    if not rows:
        return 0
    batch = normalize(
        "memberships",
        rows,
        chain_id=chain.id,
        extracted_at=datetime.now(UTC),
        chain_timezone=chain.timezone,
        personal_key=personal_key,
    )
    main = batch.tables["memberships"]
    ids = pa.array(main["id"].to_pylist(), pa.int64())
    days = sorted(set(main["created_day"].to_pylist()))
    for name, id_column in (("memberships", "id"), ("membership_balance_links", "membership_id")):
        _upsert(lake, name, batch.tables[name], id_column, ids, chain.id, days)
    if batch.quarantine.num_rows:
        log.warning("%d re-read memberships could not be typed", batch.quarantine.num_rows)
        lake.replace_partitions(
            "quarantine",
            batch.quarantine.set_column(
                batch.quarantine.schema.get_field_index("partition_key"),
                "partition_key",
                pa.array([REFRESH_PARTITION_KEY] * batch.quarantine.num_rows, pa.string()),
            ),
            [
                {
                    "source_table": "memberships",
                    "chain_id": chain.id,
                    "partition_key": REFRESH_PARTITION_KEY,
                }
            ],
        )
    return int(main.num_rows)


def _upsert(
    lake: Lake,
    name: str,
    fresh: pa.Table,
    id_column: str,
    ids: pa.Array,
    chain_id: int,
    days: Sequence[date],
) -> None:
    partitions: list[Partition] = [{"chain_id": chain_id, "created_day": day} for day in days]
    kept = []
    for partition in partitions:
        current = lake.read_partition(name, partition)
        kept.append(current.filter(pc.invert(pc.is_in(current[id_column], value_set=ids))))
    schema = TABLES[name].schema
    lake.replace_partitions(name, pa.concat_tables([*kept, fresh.cast(schema)]), partitions)


def refresh_catalog(
    client: AltegioClient, lake: Lake, chain: Chain, personal_key: bytes | None = None
) -> list[StepReport]:
    """Re-read the chain's catalogue tables whole, as the nightly load does."""
    now = datetime.now(UTC)
    return [
        load_reference(client, lake, [chain], table, now, personal_key) for table in CATALOG_TABLES
    ]


def write_journal_table(lake: Lake, journal: Journal) -> int:
    """Rebuild `operations_journal` in the lake from the JSONL file; rows written."""
    schema = TABLES["operations_journal"].schema
    table = pa.Table.from_pylist(journal_rows(journal), schema=schema)
    batches = sorted(set(table["batch_id"].to_pylist()))
    stale = {str(p.values["batch_id"]) for p in lake.partitions("operations_journal")}
    partitions = [{"batch_id": b} for b in sorted(stale | set(batches))]
    lake.replace_partitions("operations_journal", table, partitions)
    return int(table.num_rows)


def republish(lake: Lake, warehouse: Warehouse, journal: Journal) -> PublishResult:
    """The journal table rewritten, then the warehouse published under the load lock."""
    with warehouse.load_lock():
        write_journal_table(lake, journal)
        return warehouse.publish(lake)
