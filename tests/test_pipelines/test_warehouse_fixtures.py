"""Hand-built table specs and rows shared by the storage tests (no tests in this module).

The specs carry only the columns the marts rely on (docs/internals.md), with the documented
partitioning, so the storage layer is tested independently of pipelines.altegio.schema.
"""

import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipelines.storage.parquet import Lake

UTC_TS = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class Spec:
    name: str
    schema: Any
    description: str
    primary_key: tuple[str, ...]
    partition_by: tuple[str, ...]
    parent: str | None = None


def _f(name: str, type_: Any, doc: str | None = None) -> pa.Field:
    return pa.field(name, type_, metadata={b"doc": (doc or f"the {name}").encode()})


def _common() -> list[pa.Field]:
    return [
        _f("_extracted_at", UTC_TS),
        _f("_source_endpoint", pa.string()),
        _f("extra", pa.string()),
    ]


def _spec(
    name: str, fields: list[pa.Field], partition_by: tuple[str, ...], pk: tuple[str, ...]
) -> Spec:
    schema = pa.schema(fields + _common(), metadata={b"doc": f"test table {name}".encode()})
    return Spec(name, schema, f"Test table {name}: one row per {pk}.", pk, partition_by)


I64, F64, STR, BOOL, DATE = pa.int64(), pa.float64(), pa.string(), pa.bool_(), pa.date32()

TEST_TABLES: dict[str, Spec] = {
    "loyalty_transactions": _spec(
        "loyalty_transactions",
        [
            _f("id", I64, "transaction id; it's the API's id"),
            _f("chain_id", I64),
            _f("transaction_date", DATE),
            _f("visit_id", I64),
            _f("status_id", I64),
            _f("amount", F64),
            _f("type_id", I64),
            _f("type", STR),
            _f("type_title", STR),
            _f("card_id", I64),
            _f("program_id", I64),
            _f("certificate_id", I64),
            _f("abonement_id", I64),
            _f("salon_group_id", I64),
            _f("item_id", I64),
            _f("item_type_id", I64),
            _f("item_type", STR),
            _f("item_record_id", I64),
            _f("goods_transaction_id", I64),
            _f("services_transaction_id", I64),
            _f("is_discount", BOOL),
            _f("is_loyalty_withdraw", BOOL),
        ],
        ("chain_id", "transaction_date"),
        ("chain_id", "id"),
    ),
    "memberships": _spec(
        "memberships",
        [
            _f("id", I64),
            _f("chain_id", I64),
            _f("created_day", DATE),
            _f("number", STR),
            _f("status_id", I64),
            _f("status", STR),
            _f("membership_type_id", I64),
            _f("membership_type_title", STR),
            _f("is_united_balance", BOOL),
            _f("united_balance_services_count", I64),
            _f("created_date", UTC_TS),
        ],
        ("chain_id", "created_day"),
        ("chain_id", "id"),
    ),
    "membership_balance_links": _spec(
        "membership_balance_links",
        [
            _f("id", I64),
            _f("membership_id", I64),
            _f("chain_id", I64),
            _f("created_day", DATE),
            _f("link_index", I64),
            _f("item_id", I64),
            _f("title", STR),
            _f("count", I64),
            _f("is_unlimited", BOOL),
        ],
        ("chain_id", "created_day"),
        ("chain_id", "membership_id", "link_index"),
    ),
    "membership_types": _spec(
        "membership_types",
        [
            _f("id", I64),
            _f("chain_id", I64),
            _f("title", STR),
            _f("cost", F64),
            _f("is_united_balance", BOOL),
            _f("united_balance_services_count", I64),
        ],
        ("chain_id",),
        ("chain_id", "id"),
    ),
    "membership_type_balance_links": _spec(
        "membership_type_balance_links",
        [
            _f("id", I64),
            _f("membership_type_id", I64),
            _f("chain_id", I64),
            _f("link_index", I64),
            _f("title", STR),
            _f("count", I64),
            _f("is_unlimited", BOOL),
        ],
        ("chain_id",),
        ("chain_id", "membership_type_id", "link_index"),
    ),
    "certificate_types": _spec(
        "certificate_types",
        [
            _f("id", I64),
            _f("chain_id", I64),
            _f("title", STR),
            _f("balance", F64),
            _f("is_multi", BOOL),
            _f("released_total", I64),
            _f("is_archived", BOOL),
        ],
        ("chain_id",),
        ("chain_id", "id"),
    ),
    "promotions": _spec(
        "promotions",
        [
            _f("id", I64),
            _f("chain_id", I64),
            _f("title", STR),
            _f("type", STR),
            _f("value_unit", STR),
        ],
        ("chain_id",),
        ("chain_id", "id"),
    ),
    "quarantine": _spec(
        "quarantine",
        [
            _f("id", I64),
            _f("source_table", STR),
            _f("chain_id", I64),
            _f("partition_key", STR),
            _f("raw_json", STR),
            _f("reason", STR),
            _f("quarantined_at", UTC_TS),
        ],
        ("source_table", "chain_id", "partition_key"),
        ("source_table", "chain_id", "partition_key", "id"),
    ),
}

EXTRACTED_AT = dt.datetime(2026, 2, 1, 3, 0, tzinfo=dt.UTC)

# E15 with the directions of enums.dimension_tables() (contract section 7).
TRANSACTION_TYPES: list[tuple[int, str, str]] = [
    (1, "promotion_discount", "discount"),
    (2, "loyalty_accrual", "accrual"),
    (3, "card_withdrawal", "withdrawal"),
    (4, "referral_accrual", "accrual"),
    (5, "manual_top_up", "accrual"),
    (6, "manual_withdrawal", "withdrawal"),
    (7, "points_expired", "expiry"),
    (8, "certificate_withdrawal", "certificate"),
    (9, "membership_use", "membership"),
    (10, "membership_recalculation", "membership"),
    (11, "deposit_withdrawal", "deposit"),
]


def dimension_stub() -> dict[str, pa.Table]:
    """Stand-in for enums.dimension_tables(): only the transaction-type dimension."""
    return {
        "enum_transaction_type": pa.table(
            {
                "code": pa.array([c for c, _, _ in TRANSACTION_TYPES], pa.int64()),
                "label": [label for _, label, _ in TRANSACTION_TYPES],
                "description": [f"E15 {label}" for _, label, _ in TRANSACTION_TYPES],
                "direction": [d for _, _, d in TRANSACTION_TYPES],
            }
        )
    }


def rows_to_table(
    name: str, rows: list[Mapping[str, Any]], tables: Mapping[str, Spec] | None = None
) -> pa.Table:
    """Rows (missing columns null, stamping columns filled) as a table of the spec's schema."""
    spec = (tables or TEST_TABLES)[name]
    full = []
    for row in rows:
        record = {field.name: None for field in spec.schema}
        record["_extracted_at"] = EXTRACTED_AT
        record["_source_endpoint"] = name
        record.update(row)
        full.append(record)
    return pa.Table.from_pylist(full, schema=spec.schema)


def tx(
    id: int,
    chain_id: int,
    day: dt.date,
    type_id: int,
    amount: float,
    **extra: Any,
) -> dict[str, Any]:
    label = {c: label for c, label, _ in TRANSACTION_TYPES}.get(type_id, f"unknown_{type_id}")
    return {
        "id": id,
        "chain_id": chain_id,
        "transaction_date": day,
        "type_id": type_id,
        "type": label,
        "type_title": label.replace("_", " "),
        "amount": amount,
        "status_id": 1,
        **extra,
    }


def write_by_partition(lake: Lake, name: str, table: pa.Table) -> None:
    """Replace every partition that ``table`` has rows for (the way a loader would)."""
    spec = lake.spec(name)
    keys = table.select(list(spec.partition_by)).to_pylist()
    unique = [dict(t) for t in {tuple(k.items()) for k in keys}]
    lake.replace_partitions(name, table, unique)


def write_all(lake: Lake, tables: Mapping[str, list[Mapping[str, Any]]]) -> None:
    for name, rows in tables.items():
        write_by_partition(lake, name, rows_to_table(name, rows, lake.tables))  # type: ignore[arg-type]


REPO_ROOT = Path(__file__).resolve().parents[2]


def python_env() -> dict[str, str]:
    """Environment for a child Python that imports this checkout's packages."""
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT)}


def run_and_kill_at_marker(script: str, marker: Path, cwd: Path) -> None:
    """Run ``script`` in a child Python and SIGKILL it as soon as it creates ``marker``.

    The child is expected to create the marker at the crash point and then stall there.
    """
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=cwd, env=python_env())
    try:
        # Bounded by pytest-timeout, not by a wall-clock assertion.
        while not marker.exists():
            if proc.poll() is not None:
                raise AssertionError(f"child exited with {proc.returncode} before the crash point")
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.05)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
