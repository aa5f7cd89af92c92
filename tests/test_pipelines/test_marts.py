"""Every mart on a small hand-made data set, against numbers worked out by hand below."""

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from pipelines.storage.marts import HISTORY_MART_DOCS, MART_DOCS
from pipelines.storage.parquet import Lake
from pipelines.storage.warehouse import Warehouse
from tests.conftest import TEST_TABLES, dimension_stub, tx, write_all

D1, D2, D3, D5 = (dt.date(2026, 1, d) for d in (1, 2, 3, 5))
CREATED = dt.datetime(2025, 12, 1, 10, tzinfo=dt.UTC)

TRANSACTIONS = [
    # chain 1
    tx(1, 1, D1, 2, 100.0, program_id=10, visit_id=1000),  # accrual
    tx(2, 1, D1, 2, 50.0, program_id=10, visit_id=1001),  # accrual
    tx(3, 1, D1, 1, 30.0, program_id=11, visit_id=1000),  # discount
    tx(4, 1, D2, 3, 40.0, visit_id=1002),  # withdrawal
    tx(5, 1, D2, 7, 10.0),  # expiry
    tx(6, 1, D2, 8, 500.0, certificate_id=70, visit_id=1003),  # certificate
    tx(7, 1, D3, 8, 200.0, certificate_id=70, visit_id=1004),  # certificate
    tx(8, 1, D3, 8, 300.0, certificate_id=71, visit_id=1005),  # certificate
    tx(9, 1, D3, 9, 1.0, abonement_id=501, visit_id=1006),  # membership use
    tx(10, 1, D3, 9, 1.0, abonement_id=501, visit_id=1006),  # membership use
    # (no transactions on D4)
    tx(11, 1, D5, 9, 1.0, abonement_id=502),  # membership use
    tx(12, 1, D5, 5, 20.0),  # manual top-up: accrual
    tx(13, 1, D5, 6, 15.0),  # manual withdrawal
    tx(14, 1, D5, 1, 25.0, program_id=11, visit_id=1007),  # discount
    tx(15, 1, D5, 99, 5.0),  # code unknown to the enum
    tx(16, 1, D5, 4, 60.0, program_id=12),  # referral accrual, undeclared promotion
    tx(17, 1, D5, 10, 3.0, abonement_id=501),  # membership recalculation (not a use)
    # chain 2 (withdrawal sent with a negative sign)
    tx(101, 2, D1, 2, 70.0, program_id=20, visit_id=2000),
    tx(102, 2, D2, 3, -70.0, visit_id=2001),
]

MEMBERSHIP_TYPES = [
    {"id": 300, "chain_id": 1, "title": "10 visits", "is_united_balance": False},
    {"id": 301, "chain_id": 1, "title": "Shared 5", "is_united_balance": True,
     "united_balance_services_count": 5},
    {"id": 302, "chain_id": 1, "title": "Never sold", "is_united_balance": False},
]  # fmt: skip
MEMBERSHIP_TYPE_LINKS = [
    {"id": 1, "membership_type_id": 300, "chain_id": 1, "link_index": 0, "count": 10,
     "is_unlimited": False},
    {"id": 2, "membership_type_id": 300, "chain_id": 1, "link_index": 1, "count": 0,
     "is_unlimited": True},
    {"id": 3, "membership_type_id": 302, "chain_id": 1, "link_index": 0, "count": 4,
     "is_unlimited": False},
]  # fmt: skip


def _membership(mid: int, type_id: int, status_id: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": mid, "chain_id": 1, "created_day": dt.date(2025, 12, 1), "number": str(mid),
        "status_id": status_id, "membership_type_id": type_id, "is_united_balance": False,
        "created_date": CREATED, **extra,
    }  # fmt: skip


MEMBERSHIPS = [
    _membership(501, 300, 2),  # active
    _membership(502, 300, 4),  # used up
    _membership(503, 300, 3),  # expired
    _membership(504, 301, 2, is_united_balance=True, united_balance_services_count=2),
    _membership(505, 303, 1, membership_type_title="Legacy"),  # type not declared any more
]


def _link(membership_id: int, index: int, count: int, unlimited: bool = False) -> dict[str, Any]:
    return {
        "id": membership_id * 10 + index, "membership_id": membership_id, "chain_id": 1,
        "created_day": dt.date(2025, 12, 1), "link_index": index, "count": count,
        "is_unlimited": unlimited,
    }  # fmt: skip


MEMBERSHIP_LINKS = [_link(501, 0, 7), _link(501, 1, 0, True), _link(502, 0, 0), _link(503, 0, 4)]

CERTIFICATE_TYPES = [
    {"id": 60, "chain_id": 1, "title": "Gift 1000", "balance": 1000.0, "is_multi": True,
     "released_total": 3, "is_archived": False},
    {"id": 61, "chain_id": 1, "title": "Gift 500", "balance": 500.0, "is_multi": False,
     "released_total": 0, "is_archived": True},
]  # fmt: skip

PROMOTIONS = [
    {"id": 10, "chain_id": 1, "title": "Cashback 5%", "type": "cashback_static_paid",
     "value_unit": "percent"},
    {"id": 11, "chain_id": 1, "title": "Discount 10%", "type": "discount_static",
     "value_unit": "percent"},
    {"id": 13, "chain_id": 1, "title": "Unused", "type": "discount_static", "value_unit": "amount"},
]  # fmt: skip


# Read at 02:30 UTC on 2026-02-01: still 2026-01-31 in New York, already 2026-02-01 in Dubai.
READ_AT = dt.datetime(2026, 2, 1, 2, 30, tzinfo=dt.UTC)
CHAINS = [
    {"chain_id": 1, "title": "NY chain", "timezone": "America/New_York"},
    {"chain_id": 2, "title": "Dubai chain", "timezone": "Asia/Dubai"},
]
DEPOSITS = [
    {"id": 1, "chain_id": 1, "deposit_type_id": 600, "deposit_type_title": "Prepaid",
     "balance": 10.0, "reserved_balance": 1.0, "blocked": False, "_extracted_at": READ_AT},
    {"id": 2, "chain_id": 1, "deposit_type_id": 600, "deposit_type_title": "Prepaid",
     "balance": 15.5, "reserved_balance": 0.0, "blocked": True, "_extracted_at": READ_AT},
    {"id": 3, "chain_id": 1, "deposit_type_id": 601, "deposit_type_title": "Gift",
     "balance": 0.0, "reserved_balance": 0.0, "blocked": False, "_extracted_at": READ_AT},
    {"id": 4, "chain_id": 2, "deposit_type_id": 700, "deposit_type_title": "Prepaid",
     "balance": 99.0, "reserved_balance": None, "blocked": None, "_extracted_at": READ_AT},
]  # fmt: skip


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    data_dir: Path = tmp_path_factory.mktemp("marts") / "data"
    lake = Lake(data_dir / "parquet", TEST_TABLES)
    write_all(
        lake,
        {
            "loyalty_transactions": TRANSACTIONS,
            "membership_types": MEMBERSHIP_TYPES,
            "membership_type_balance_links": MEMBERSHIP_TYPE_LINKS,
            "memberships": MEMBERSHIPS,
            "membership_balance_links": MEMBERSHIP_LINKS,
            "certificate_types": CERTIFICATE_TYPES,
            "promotions": PROMOTIONS,
            "chains": CHAINS,
            "deposits": DEPOSITS,
        },
    )
    wh = Warehouse(data_dir, dimensions=dimension_stub)
    wh.publish(lake)
    with wh.connect_read_only() as connection:
        yield connection


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in con.execute(sql).fetchall()]


def test_every_mart_is_documented_and_commented(con: duckdb.DuckDBPyConnection) -> None:
    comments = dict(
        _rows(con, "SELECT table_name, comment FROM duckdb_tables() WHERE schema_name = 'marts'")
    )
    # These marts are published without a history: the marts built on it are left out.
    assert comments == {k: v for k, v in MART_DOCS.items() if k not in HISTORY_MART_DOCS}
    assert {
        "daily_loyalty_activity",
        "points_liability",
        "membership_type_sales",
        "certificate_activity",
        "certificate_redemptions",
        "promotion_effect",
    } <= set(MART_DOCS)
    assert all(doc.startswith("One row per") for doc in MART_DOCS.values())


def test_daily_loyalty_activity(con: duckdb.DuckDBPyConnection) -> None:
    got = _rows(
        con,
        "SELECT chain_id, transaction_date, type_id, direction, transaction_count, amount_total,"
        " distinct_visits FROM marts.daily_loyalty_activity",
    )
    assert got == [
        (1, D1, 1, "discount", 1, 30.0, 1),
        (1, D1, 2, "accrual", 2, 150.0, 2),  # 100 + 50, visits 1000, 1001
        (1, D2, 3, "withdrawal", 1, 40.0, 1),
        (1, D2, 7, "expiry", 1, 10.0, 0),
        (1, D2, 8, "certificate", 1, 500.0, 1),
        (1, D3, 8, "certificate", 2, 500.0, 2),  # 200 + 300
        (1, D3, 9, "membership", 2, 2.0, 1),  # both on visit 1006
        (1, D5, 1, "discount", 1, 25.0, 1),
        (1, D5, 4, "accrual", 1, 60.0, 0),
        (1, D5, 5, "accrual", 1, 20.0, 0),
        (1, D5, 6, "withdrawal", 1, 15.0, 0),
        (1, D5, 9, "membership", 1, 1.0, 0),
        (1, D5, 10, "membership", 1, 3.0, 0),
        (1, D5, 99, "unknown", 1, 5.0, 0),
        (2, D1, 2, "accrual", 1, 70.0, 1),
        (2, D2, 3, "withdrawal", 1, -70.0, 1),  # amount as sent
    ]


def test_points_liability(con: duckdb.DuckDBPyConnection) -> None:
    got = _rows(
        con,
        "SELECT chain_id, transaction_date, accrued, withdrawn, expired, net_change,"
        " cumulative_liability FROM marts.points_liability",
    )
    d4 = dt.date(2026, 1, 4)
    assert got == [
        # day: accrued 100+50; nothing out
        (1, D1, 150.0, 0.0, 0.0, 150.0, 150.0),
        # withdrawn 40, expired 10 -> net -50, liability 150 - 50
        (1, D2, 0.0, 40.0, 10.0, -50.0, 100.0),
        # certificates and membership uses do not move points
        (1, D3, 0.0, 0.0, 0.0, 0.0, 100.0),
        # a day without transactions still has a row; the liability carries over
        (1, d4, 0.0, 0.0, 0.0, 0.0, 100.0),
        # accrued 20 (top-up) + 60 (referral), withdrawn 15 -> net 65, liability 165
        (1, D5, 80.0, 15.0, 0.0, 65.0, 165.0),
        (2, D1, 70.0, 0.0, 0.0, 70.0, 70.0),
        # the -70 withdrawal counts as 70 out whatever its sign
        (2, D2, 0.0, 70.0, 0.0, -70.0, 0.0),
    ]


def test_membership_type_sales(con: duckdb.DuckDBPyConnection) -> None:
    got = _rows(
        con,
        "SELECT chain_id, membership_type_id, membership_type_title, memberships_sold,"
        " issued_count, active_count, expired_count, used_up_count, visits_per_membership,"
        " visits_included, visits_remaining, visits_used, utilization,"
        " membership_use_transactions FROM marts.membership_type_sales",
    )
    assert got == [
        # 3 sold x 10 visits (unlimited link excluded) = 30 included; remaining 7 + 0 + 4 = 11;
        # used 19; uses: tx 9, 10 (membership 501) and 11 (502); tx 17 is a recalculation.
        (1, 300, "10 visits", 3, 0, 1, 1, 1, 10, 30, 11, 19, pytest.approx(19 / 30), 3),
        # shared balance: 1 sold x 5 = 5 included, 2 left, 3 used
        (1, 301, "Shared 5", 1, 0, 1, 0, 0, 5, 5, 2, 3, pytest.approx(0.6), 0),
        # declared but never sold: nothing included, utilization undefined
        (1, 302, "Never sold", 0, 0, 0, 0, 0, 4, 0, 0, 0, None, 0),
        # sold under a type that is no longer declared: title from the membership
        (1, 303, "Legacy", 1, 1, 0, 0, 0, 0, 0, 0, 0, None, 0),
    ]


def test_certificate_activity(con: duckdb.DuckDBPyConnection) -> None:
    got = _rows(
        con,
        "SELECT chain_id, certificate_type_id, certificate_type_title, face_value,"
        " released_total, face_value_issued FROM marts.certificate_activity",
    )
    assert got == [
        (1, 60, "Gift 1000", 1000.0, 3, 3000.0),  # 3 issued x 1000
        (1, 61, "Gift 500", 500.0, 0, 0.0),
    ]


def test_certificate_redemptions(con: duckdb.DuckDBPyConnection) -> None:
    got = _rows(
        con,
        "SELECT chain_id, transaction_date, redemption_count, redemption_amount,"
        " distinct_certificates FROM marts.certificate_redemptions",
    )
    assert got == [
        (1, D2, 1, 500.0, 1),
        (1, D3, 2, 500.0, 2),  # 200 (certificate 70) + 300 (certificate 71)
    ]


def test_promotion_effect(con: duckdb.DuckDBPyConnection) -> None:
    got = _rows(
        con,
        "SELECT chain_id, promotion_id, promotion_title, promotion_type, transaction_count,"
        " distinct_visits, discount_given, accruals_attributed FROM marts.promotion_effect",
    )
    assert got == [
        # tx 1 + 2: accruals 150 on visits 1000, 1001
        (1, 10, "Cashback 5%", "cashback_static_paid", 2, 2, 0.0, 150.0),
        # tx 3 + 14: discounts 30 + 25 on visits 1000, 1007
        (1, 11, "Discount 10%", "discount_static", 2, 2, 55.0, 0.0),
        # referenced by tx 16 only, not declared: no title, no visit
        (1, 12, None, None, 1, 0, 0.0, 60.0),
        # declared, never used
        (1, 13, "Unused", "discount_static", 0, 0, 0.0, 0.0),
        (2, 20, None, None, 1, 1, 0.0, 70.0),
    ]


def test_deposit_balances_per_chain_type_and_day_read_in_the_chains_time_zone(
    con: duckdb.DuckDBPyConnection,
) -> None:
    assert _rows(con, "SELECT * FROM marts.deposit_balances") == [
        (1, dt.date(2026, 1, 31), 600, "Prepaid", 2, 25.5, 1.0, 1),
        (1, dt.date(2026, 1, 31), 601, "Gift", 1, 0.0, 0.0, 0),
        (2, dt.date(2026, 2, 1), 700, "Prepaid", 1, 99.0, 0.0, 0),
    ]


def test_direction_comes_from_the_enum_dimension(tmp_path: Path) -> None:
    """Re-labelling a code in the dimension changes the marts without touching SQL."""
    data_dir = tmp_path / "data"
    lake = Lake(data_dir / "parquet", TEST_TABLES)
    write_all(lake, {"loyalty_transactions": [tx(1, 1, D1, 99, 5.0)]})

    def dims() -> dict[str, Any]:
        table = dimension_stub()["enum_transaction_type"]
        extra = pa.table(
            {"code": pa.array([99], pa.int64()), "label": ["new"], "description": ["x"],
             "direction": ["accrual"]}
        )  # fmt: skip
        return {"enum_transaction_type": pa.concat_tables([table, extra])}

    wh = Warehouse(data_dir, dimensions=dims)
    wh.publish(lake)
    with wh.connect_read_only() as c:
        assert _rows(c, "SELECT accrued, cumulative_liability FROM marts.points_liability") == [
            (5.0, 5.0)
        ]
