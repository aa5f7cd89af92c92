"""Fixtures and helpers shared by the test modules; a test module never imports another.

Sections: paths (the committed official API fixtures), the project's lake and warehouse, a
sandbox per test module, raw HTTP against a sandbox, hand-written API records, and the storage
tests' own small table specs and rows (the storage layer is tested apart from the project's
tables).
"""

import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pyarrow as pa
import pytest

from pipelines.altegio.client import AltegioClient, ClientSettings, Credentials
from pipelines.altegio.endpoints import ACCEPT_HEADER, ENDPOINTS
from pipelines.altegio.enums import dimension_tables
from pipelines.altegio.sandbox import SandboxConfig, SandboxServer, serve
from pipelines.altegio.schema import TABLES
from pipelines.history import history_tables
from pipelines.storage.history import HISTORY_DIR, HistoryStore
from pipelines.storage.parquet import Lake
from pipelines.storage.warehouse import Warehouse

REPO = Path(__file__).resolve().parents[1]
# Copies of the official examples and schemas (tests/fixtures/altegio_api/README.md).
API_FIXTURES = REPO / "tests" / "fixtures" / "altegio_api"
API_EXAMPLES = API_FIXTURES / "examples"
API_SCHEMAS = API_FIXTURES / "schemas"


# --------------------------------------------------------------------------- project storage


def project_lake(root: Path) -> Lake:
    """A lake holding the project's declared tables."""
    return Lake(root, TABLES)


def project_warehouse(data_dir: Path) -> Warehouse:
    """A warehouse published with the project's enum dimension tables and its history."""
    history = HistoryStore(data_dir / HISTORY_DIR, history_tables())
    return Warehouse(data_dir, dimensions=dimension_tables, history=history)


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    """An empty lake of the project's tables under this test's temporary directory."""
    return project_lake(tmp_path / "data" / "parquet")


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    """The warehouse beside `lake` (same data directory)."""
    return project_warehouse(tmp_path / "data")


# --------------------------------------------------------------------------- sandbox

# A test module that wants another sandbox sets SANDBOX_CONFIG at module level.
DEFAULT_SANDBOX_CONFIG = SandboxConfig(
    seed=7, start=date(2026, 1, 1), end=date(2026, 1, 14), transactions_per_day=30
)


@pytest.fixture(scope="module")
def sandbox(request: pytest.FixtureRequest) -> Iterator[SandboxServer]:
    """A running sandbox for the whole test module (its SANDBOX_CONFIG, else the default)."""
    config = getattr(request.module, "SANDBOX_CONFIG", DEFAULT_SANDBOX_CONFIG)
    with serve(config) as server:
        yield server


def sandbox_client(server: SandboxServer, **headers: str) -> httpx.Client:
    """An httpx client with the documented headers (overridable), for raw requests."""
    creds = server.credentials
    base = {
        "Accept": ACCEPT_HEADER,
        "Authorization": f"Bearer {creds.partner_token}, User {creds.user_token}",
    }
    base.update(headers)
    return httpx.Client(base_url=server.base_url, headers=base, timeout=10)


def sandbox_altegio_client(
    server: SandboxServer, budget_dir: Path, **settings: Any
) -> AltegioClient:
    """An AltegioClient on a sandbox with its credentials and no client-side rate budget."""
    creds = server.credentials
    return AltegioClient(
        ClientSettings(
            base_url=server.base_url,
            credentials=Credentials(partner_token=creds.partner_token, user_token=creds.user_token),
            rate_limit=None,
            budget_dir=budget_dir,
            **settings,
        )
    )


@pytest.fixture
def http(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    """A raw HTTP client to the module's sandbox."""
    with sandbox_client(sandbox) as client:
        yield client


def endpoint_path(name: str, **params: int) -> str:
    """The path of a declared endpoint with its placeholders filled."""
    return ENDPOINTS[name].format_path(**params)


def all_pages(http: httpx.Client, url: str, size_param: str, size: int, **params: Any) -> list[Any]:
    """Every record of a paged list, read page by page until a short page."""
    rows: list[Any] = []
    page = 1
    while True:
        body = http.get(url, params={**params, "page": page, size_param: size}).json()
        if isinstance(body, list):  # the array-wrapped memberships quirk
            body = body[0]
        rows.extend(body["data"])
        if len(body["data"]) < size:
            return rows
        page += 1


# --------------------------------------------------------------------------- API records
# Hand-written records with every documented field; keyword arguments override fields.


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


# --------------------------------------------------------------------------- storage tests
# Hand-built table specs and rows: only the columns the marts rely on (docs/internals.md),
# with the documented partitioning, so the storage layer is tested apart from the project's
# tables.

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
    "chains": _spec(
        "chains",
        [_f("chain_id", I64), _f("title", STR), _f("timezone", STR)],
        ("chain_id",),
        ("chain_id",),
    ),
    "deposits": _spec(
        "deposits",
        [
            _f("id", I64),
            _f("chain_id", I64),
            _f("deposit_type_id", I64),
            _f("deposit_type_title", STR),
            _f("balance", F64),
            _f("reserved_balance", F64),
            _f("blocked", BOOL),
            _f("client_id", I64),
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


def python_env() -> dict[str, str]:
    """Environment for a child Python that imports this checkout's packages."""
    return {**os.environ, "PYTHONPATH": str(REPO)}


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


# Numbered lake states: a reader can tell which one a published warehouse holds, and that it
# holds all of it.
VERSION_DAYS = [dt.date(2026, 1, d) for d in (1, 2, 3)]


def expected_rows(version: int) -> int:
    return 3 * (2 + version)


def write_version(lake: Lake, version: int) -> None:
    """Lake state number ``version``: every transaction has amount == version, and the one
    promotion is titled ``v<version>``; the row count grows with the version."""
    per_day = expected_rows(version) // len(VERSION_DAYS)
    rows = [
        tx(day.day * 1000 + i, 1, day, 2, float(version), visit_id=i, program_id=5)
        for day in VERSION_DAYS
        for i in range(per_day)
    ]
    lake.replace_partitions(
        "loyalty_transactions",
        rows_to_table("loyalty_transactions", rows),
        [{"chain_id": 1, "transaction_date": day} for day in VERSION_DAYS],
    )
    lake.replace_partitions(
        "promotions",
        rows_to_table("promotions", [{"id": 5, "chain_id": 1, "title": f"v{version}"}]),
        [{"chain_id": 1}],
    )


def published_version(con: duckdb.DuckDBPyConnection) -> int:
    """The version a connection sees, after checking it is internally consistent."""
    (title,) = con.execute("SELECT title FROM altegio.promotions").fetchone()  # type: ignore[misc]
    version = int(title[1:])
    count, low, high = con.execute(
        "SELECT count(*), min(amount), max(amount) FROM altegio.loyalty_transactions"
    ).fetchone()  # type: ignore[misc]
    (recorded,) = con.execute(
        "SELECT row_count FROM altegio._publish WHERE table_name = 'altegio.loyalty_transactions'"
    ).fetchone()  # type: ignore[misc]
    (mart_total,) = con.execute(
        "SELECT sum(transaction_count) FROM marts.daily_loyalty_activity"
    ).fetchone()  # type: ignore[misc]
    assert count == recorded == mart_total == expected_rows(version), (version, count, recorded)
    assert low == high == float(version)
    return version
