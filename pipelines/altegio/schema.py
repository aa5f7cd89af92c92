"""Warehouse tables: how one is declared (`TableSpec`, the column helpers), the operational
tables, and `TABLES`, every table by name.

Each source's tables are declared in its module (`pipelines.altegio.sources`); this module
holds the vocabulary they are written in and the tables the pipeline writes about itself
(quarantine, load_steps). One ``pa.schema`` per table. Every column carries its meaning in
field metadata ``b"doc"`` (code columns also name their enum in ``b"enum"``); every table
carries its description in schema metadata ``b"doc"``. ``normalize`` produces exactly these
schemas and the data dictionary (docs/data_dictionary.md) is rendered from them.

Conventions: ids int64; money float64 (the API sends JSON numbers, possibly fractional, in the
chain's currency; no decimal scale is documented); flags bool; timestamps
timestamp[us, UTC] (the API's offset, with or without a colon, is applied); dates date32.
Foreign keys the API sends as 0 for "none" are null. An enum code column ``<x>_id`` is
followed by its decoded label ``<x>``. Nested objects are flattened as ``parent_child``
columns, nested lists become child tables keyed by the parent id. Every table ends with
``extra`` (JSON object of the fields the API sent that this schema does not know, null when
none), ``_extracted_at`` and ``_source_endpoint``.
"""

from collections.abc import Mapping
from dataclasses import dataclass

import pyarrow as pa

from pipelines.altegio.registry import Registry

TIMESTAMP = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class TableSpec:
    """A warehouse table: its schema, what one row is, its key and partitioning."""

    name: str
    schema: pa.Schema
    description: str
    primary_key: tuple[str, ...]
    partition_by: tuple[str, ...]
    parent: str | None


def col(name: str, type_: pa.DataType, doc: str, *, enum: str | None = None) -> pa.Field:
    """A nullable column with its doc (and enum name, for code columns) in field metadata."""
    meta = {b"doc": doc.encode()}
    if enum is not None:
        meta[b"enum"] = enum.encode()
    return pa.field(name, type_, nullable=True, metadata=meta)


def int_col(name: str, doc: str) -> pa.Field:
    return col(name, pa.int64(), doc)


def str_col(name: str, doc: str) -> pa.Field:
    return col(name, pa.string(), doc)


def bool_col(name: str, doc: str) -> pa.Field:
    return col(name, pa.bool_(), doc)


def money_col(name: str, doc: str) -> pa.Field:
    return col(name, pa.float64(), f"{doc} Money, float64 in the chain's currency.")


def float_col(name: str, doc: str) -> pa.Field:
    return col(name, pa.float64(), doc)


def ts_col(name: str, doc: str) -> pa.Field:
    return col(name, TIMESTAMP, f"{doc} UTC (the API's offset applied).")


def date_col(name: str, doc: str) -> pa.Field:
    return col(name, pa.date32(), doc)


def code_cols(name: str, enum: str, doc: str) -> list[pa.Field]:
    """Code column `<x>_id` plus its label column `<x>`."""
    label = name.removesuffix("_id")
    return [
        col(name, pa.int64(), doc, enum=enum),
        col(
            label,
            pa.string(),
            f"Label of {name} (enum {enum}); 'unknown:<code>' for an undocumented code.",
        ),
    ]


def str_enum_col(name: str, enum: str, doc: str) -> pa.Field:
    return col(
        name,
        pa.string(),
        f"{doc} String enum {enum}, kept as sent; undocumented values are reported.",
        enum=enum,
    )


def chain_id_col() -> pa.Field:
    return int_col("chain_id", "Chain id (salon_group_id) the record was read for.")


def _lineage() -> list[pa.Field]:
    return [
        str_col(
            "extra",
            "JSON object of the fields the API sent that this schema does not know "
            "(schema drift); null when none.",
        ),
        col("_extracted_at", TIMESTAMP, "When the extract read this record (UTC)."),
        str_col("_source_endpoint", "Endpoint name (endpoints.ENDPOINTS) the record came from."),
    ]


def _schema(doc: str, fields: list[pa.Field]) -> pa.Schema:
    return pa.schema([*fields, *_lineage()], metadata={b"doc": doc.encode()})


def table_spec(
    name: str,
    doc: str,
    fields: list[pa.Field],
    primary_key: tuple[str, ...],
    partition_by: tuple[str, ...] = ("chain_id",),
    parent: str | None = None,
) -> TableSpec:
    """A source table: its declared columns, then the lineage columns every table ends with."""
    return TableSpec(name, _schema(doc, fields), doc, primary_key, partition_by, parent)


QUARANTINE = TableSpec(
    "quarantine",
    pa.schema(
        [
            str_col("source_table", "Table the record was meant for."),
            int_col("chain_id", "Chain the record was read for (null for /groups records)."),
            str_col(
                "partition_key",
                "Partition of the source table: the day for transactions/memberships "
                "(e.g. '2026-01-05'), 'all' for unpartitioned tables.",
            ),
            int_col("id", "The record's id when it could be read, else null."),
            int_col("record_index", "Position of the record in the batch given to normalize."),
            str_col("raw_json", "The record exactly as received, as JSON."),
            str_col("reason", "Why it could not be typed (field and problem)."),
            col("quarantined_at", TIMESTAMP, "Extraction time of the batch (UTC)."),
            str_col("_source_endpoint", "Endpoint name the record came from."),
        ],
        metadata={
            b"doc": b"One row per raw record that could not be typed (or lost a duplicate-id "
            b"contest); kept verbatim with the reason, never dropped."
        },
    ),
    "One row per raw record that could not be typed (or lost a duplicate-id contest); kept "
    "verbatim with the reason, never dropped.",
    ("source_table", "chain_id", "partition_key", "record_index"),
    ("source_table", "chain_id", "partition_key"),
    None,
)

_LOAD_STEPS_DOC = (
    "One row per load step (one table family, one run): what it asked the API, what it got "
    "and what it wrote. Operational, not API data: the data-quality notebook reads it."
)
LOAD_STEPS = TableSpec(
    "load_steps",
    pa.schema(
        [
            str_col("step", "Table family the step loaded (its main table's name)."),
            str_col("run_id", "Identifier of the run (the Dagster run id)."),
            ts_col("started_at", "When the step started (UTC)."),
            ts_col("finished_at", "When the step finished (UTC)."),
            date_col("days_from", "First day of the step's window (daily tables), else null."),
            date_col("days_to", "Last day of the step's window (daily tables), else null."),
            int_col("chains_loaded", "Chains loaded."),
            int_col("chains_skipped", "Chains skipped for lack of rights (403 or a flag of 0)."),
            int_col("chains_failed", "Chains that failed (their partitions kept the old state)."),
            int_col("chains_not_ready", "Chains whose requested days had not ended yet."),
            str_col("chain_outcomes", "JSON list: chain id, status, reason, row counts."),
            int_col("api_reported_rows", "Rows the API's pages held (page-boundary repeats too)."),
            int_col("rows_received", "Rows received once page-boundary repeats were removed."),
            int_col("rows_written", "Rows written to the step's main table."),
            int_col("rows_quarantined", "Records refused into the quarantine table."),
            int_col("partitions_written", "Lake partitions replaced."),
            int_col("requests", "HTTP requests made (retries included)."),
            int_col("retries", "Requests that were retries."),
            int_col("http_429", "Answers 429 (rate limited)."),
            int_col("bytes_received", "Response body bytes received."),
            float_col("duration_s", "Wall time of the step, seconds."),
            str_col("schema_drift", "JSON object: table -> field names the schema does not know."),
            str_col(
                "unknown_codes", "JSON object: table.column -> enum codes outside the contract."
            ),
        ],
        metadata={b"doc": _LOAD_STEPS_DOC.encode()},
    ),
    _LOAD_STEPS_DOC,
    ("step", "run_id"),
    ("step", "run_id"),
    None,
)

_OPERATIONS_JOURNAL_DOC = (
    "One row per write operation the project planned against the API (catalog apply, bulk "
    "membership operations): who ran it, the request sent (no secrets), what the API answered "
    "and when. Republished from <data-dir>/operations_journal.jsonl after every apply."
)
OPERATIONS_JOURNAL = TableSpec(
    "operations_journal",
    pa.schema(
        [
            str_col("batch_id", "One apply (a command run, or its resumption)."),
            str_col("step_key", "The step within its batch, e.g. 'membership_freeze:123'."),
            str_col("command", "The command, e.g. 'memberships freeze' or 'catalog apply'."),
            str_col("actor", "Who ran it: OS user@host."),
            ts_col("batch_started_at", "When the batch was planned."),
            int_col("chain_id", "Chain written to."),
            str_col("operation", "Write operation (pipelines.altegio.operations name)."),
            str_col("target_kind", "What the target id names, e.g. 'membership_id'."),
            int_col("target_id", "The entity written (null for a create not answered yet)."),
            str_col("target_title", "Title of a catalogue entity, when it has one."),
            str_col("description", "The change in words, e.g. 'freeze till 2026-02-01'."),
            str_col("request_json", "The request body as sent (JSON; no credentials)."),
            ts_col("sent_at", "When the request was about to be sent (the intent record)."),
            str_col(
                "status",
                "applied | read_back (a read established the outcome) | skipped | refused | "
                "failed | 'sent, outcome unknown' (the process stopped) | planned (not sent).",
            ),
            str_col("message", "The API's message (and field errors) for a refusal."),
            str_col("answer_json", "The object after the write, as the API showed it (JSON)."),
            ts_col("answered_at", "When the outcome was recorded."),
        ],
        metadata={b"doc": _OPERATIONS_JOURNAL_DOC.encode()},
    ),
    _OPERATIONS_JOURNAL_DOC,
    ("batch_id", "step_key"),
    ("batch_id",),
    None,
)

# Tables the pipeline writes about itself rather than from API records.
OPERATIONAL_TABLES = (QUARANTINE.name, LOAD_STEPS.name, OPERATIONS_JOURNAL.name)


def _declared_tables() -> dict[str, TableSpec]:
    from pipelines.altegio.sources import SOURCES

    declared = [spec for source in SOURCES.values() for spec in source.tables]
    return {spec.name: spec for spec in (*declared, QUARANTINE, LOAD_STEPS, OPERATIONS_JOURNAL)}


TABLES: Mapping[str, TableSpec] = Registry(_declared_tables)
"""Every warehouse table by name: each source's tables (main, then children), then the
operational tables."""
