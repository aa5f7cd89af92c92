"""After an apply: the touched entities re-read into the lake, the warehouse republished.

The nightly load would show a write only the next night (memberships are read by creation
day, so a freeze of an old membership would not show at all until it is re-read by id). Here
the records the writes re-read are written straight into the lake's current tables:

* memberships: each re-read record replaces its own row (and balance links) inside its
  creation-month partition, every other row kept as it was (`pipelines.storage.state`, the
  path the nightly re-read by id takes);
* catalogue tables: the chain's partition is re-read whole (`load_reference`), as a load does;
* the journal: `altegio.operations_journal` rebuilt from the JSONL file;

then the warehouse is republished under the data directory's load lock (a nightly load and
an apply never publish at once).
"""

import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.altegio.client import AltegioClient, Chain
from pipelines.altegio.normalize import normalize
from pipelines.altegio.schema import TABLES
from pipelines.altegio.sources import SOURCES
from pipelines.load import StepReport, load_reference, monthly_state
from pipelines.storage.parquet import Lake, Partition
from pipelines.storage.state import MONTH_COLUMN
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
    """Replace the stored rows of these re-read memberships (and their balance links) in
    their month partitions, through the same current-state path as the nightly re-read
    (`pipelines.storage.state`); a record that cannot be typed is quarantined and its stored
    row kept. Returns the rows written."""
    rows = [dict(r) for r in records]
    if not rows:
        return 0
    source = SOURCES["memberships"]
    batch = normalize(
        source.name,
        rows,
        chain_id=chain.id,
        extracted_at=datetime.now(UTC),
        chain_timezone=chain.timezone,
        personal_key=personal_key,
    )
    state = monthly_state(lake, source)
    ids = batch.tables[source.name][source.entity.key].to_pylist()
    stored = state.known(chain.id, [source.entity.key, MONTH_COLUMN])
    wanted = pa.array(sorted(set(ids)), pa.int64())
    months = stored.filter(pc.is_in(stored[source.entity.key], value_set=wanted))
    state.upsert(chain.id, ids, set(months[MONTH_COLUMN].to_pylist()), batch.tables)
    if batch.quarantine.num_rows:
        log.warning("%d re-read memberships could not be typed", batch.quarantine.num_rows)
        quarantine = batch.quarantine
        index = quarantine.schema.get_field_index("partition_key")
        quarantine = quarantine.set_column(
            index,
            quarantine.schema.field(index),
            pa.array([REFRESH_PARTITION_KEY] * quarantine.num_rows, pa.string()),
        )
        partition: Partition = {
            "source_table": source.name,
            "chain_id": chain.id,
            "partition_key": REFRESH_PARTITION_KEY,
        }
        lake.replace_partitions("quarantine", quarantine, [partition])
    return len(ids)


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
