"""pipelines.notebook: where the warehouse is found, what it lists, how it queries, and that it
only ever reads."""

import datetime as dt
import json
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from pipelines.altegio.schema import TABLES
from pipelines.notebook import (
    DATA_DIR_VARIABLE,
    coded_columns,
    data_dir,
    documented_meaning,
    open_warehouse,
)
from pipelines.storage.marts import MART_DOCS
from tests.conftest import project_lake, project_warehouse

EXTRACTED = dt.datetime(2026, 1, 3, tzinfo=dt.UTC)
CHAIN = 160262


def _transaction(tx_id: int, type_id: int, amount: float, **extra: Any) -> dict[str, Any]:
    return {
        "id": tx_id,
        "chain_id": CHAIN,
        "transaction_date": dt.date(2026, 1, 2),
        "amount": amount,
        "type_id": type_id,
        "type": f"unknown:{type_id}" if type_id == 99 else "loyalty programme accrual",
        "extra": json.dumps(extra) if extra else None,
        "_extracted_at": EXTRACTED,
        "_source_endpoint": "loyalty_transactions",
    }


def _publish(root: Path, transactions: list[dict[str, Any]]) -> None:
    lake = project_lake(root / "parquet")
    schema = TABLES["loyalty_transactions"].schema
    lake.replace_partitions(
        "loyalty_transactions",
        pa.Table.from_pylist(transactions, schema=schema),
        [{"chain_id": CHAIN, "transaction_date": dt.date(2026, 1, 2)}],
    )
    project_warehouse(root).publish(lake)


@pytest.fixture
def published(tmp_path: Path) -> Path:
    _publish(
        tmp_path,
        [
            _transaction(1, 2, 10.0),
            _transaction(2, 99, 5.0, new_field=1),
            _transaction(3, 99, 7.5, new_field=2, other=True),
        ],
    )
    return tmp_path


def test_data_dir_prefers_the_explicit_path_then_the_variable_then_data(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(DATA_DIR_VARIABLE, raising=False)
    assert data_dir(bases=[tmp_path]) == Path("data")
    monkeypatch.setenv(DATA_DIR_VARIABLE, str(tmp_path / "env"))
    assert data_dir() == tmp_path / "env"
    assert data_dir(tmp_path / "explicit") == tmp_path / "explicit"


def _fake_warehouse(directory: Path) -> None:
    directory.mkdir(parents=True)
    (directory / "warehouse.duckdb").write_bytes(b"")


def test_data_dir_finds_the_demo_warehouse_from_a_subdirectory_of_the_project(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A notebook kernel runs in notebooks/: relative paths are also tried from the root.
    project, kernel_dir = tmp_path / "project", tmp_path / "project" / "notebooks"
    kernel_dir.mkdir(parents=True)
    monkeypatch.chdir(kernel_dir)
    monkeypatch.delenv(DATA_DIR_VARIABLE, raising=False)
    _fake_warehouse(project / "data" / "demo")
    assert data_dir(bases=[kernel_dir, project]) == project / "data" / "demo"
    # data/ holding a warehouse wins over the demo's; the variable and a path are looked up too.
    _fake_warehouse(project / "data" / "prod")
    monkeypatch.setenv(DATA_DIR_VARIABLE, "data/prod")
    assert data_dir(bases=[kernel_dir, project]) == project / "data" / "prod"
    assert data_dir("data/demo", bases=[kernel_dir, project]) == project / "data" / "demo"
    monkeypatch.delenv(DATA_DIR_VARIABLE)
    (project / "data" / "warehouse.duckdb").write_bytes(b"")
    assert data_dir(bases=[kernel_dir, project]) == project / "data"


def test_data_dir_accepts_the_warehouse_file_itself(tmp_path: Path) -> None:
    assert data_dir(tmp_path / "warehouse.duckdb") == tmp_path


def test_open_warehouse_without_a_publish_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="altegio-loyalty demo"):
        open_warehouse(tmp_path)


def test_open_warehouse_reads_the_data_dir_from_the_environment(
    published: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DATA_DIR_VARIABLE, str(published))
    assert open_warehouse().path == published / "warehouse.duckdb"


def test_tables_list_every_table_and_mart_with_rows_and_meaning(published: Path) -> None:
    tables = open_warehouse(published).tables()
    listed = set(zip(tables["schema"], tables["table"], strict=True))
    assert {("altegio", name) for name in TABLES} <= listed
    assert {("marts", name) for name in MART_DOCS} <= listed
    assert tables["meaning"].notna().all()
    marts = tables[tables["schema"] == "marts"].set_index("table")
    assert marts.loc["points_liability", "meaning"] == MART_DOCS["points_liability"]
    raw = tables[tables["schema"] == "altegio"].set_index("table")
    assert raw.loc["loyalty_transactions", "rows"] == 3


def test_tables_can_be_limited_to_one_schema(published: Path) -> None:
    assert set(open_warehouse(published).tables("marts")["schema"]) == {"marts"}


def test_columns_carry_their_documented_meaning(published: Path) -> None:
    columns = open_warehouse(published).columns("loyalty_transactions").set_index("column")
    assert columns.loc["amount", "type"] == "DOUBLE"
    assert "chain's currency" in columns.loc["amount", "meaning"]


def test_query_binds_parameters_and_returns_arrow_dtypes(published: Path) -> None:
    wh = open_warehouse(published)
    by_position = wh.query(
        "SELECT id, amount, transaction_date FROM altegio.loyalty_transactions "
        "WHERE type_id = ? ORDER BY id",
        [99],
    )
    assert by_position["id"].tolist() == [2, 3]
    assert all(isinstance(dtype, pd.ArrowDtype) for dtype in by_position.dtypes)
    by_name = wh.query(
        "SELECT count(*) AS n FROM altegio.loyalty_transactions WHERE amount > $floor",
        {"floor": 6.0},
    )
    assert by_name["n"].tolist() == [2]


def test_query_cannot_write(published: Path) -> None:
    with pytest.raises(duckdb.Error, match="read-only"):
        open_warehouse(published).query("DELETE FROM altegio.loyalty_transactions")


def test_each_call_sees_the_latest_publish(published: Path) -> None:
    wh = open_warehouse(published)
    first = wh.published_at()
    assert wh.query("SELECT count(*) AS n FROM altegio.loyalty_transactions")["n"][0] == 3
    _publish(published, [_transaction(1, 2, 10.0)])
    assert wh.query("SELECT count(*) AS n FROM altegio.loyalty_transactions")["n"][0] == 1
    second = wh.published_at()
    assert first is not None and second is not None and second > first


def test_unknown_codes_count_rows_per_table_column_and_code(published: Path) -> None:
    unknown = open_warehouse(published).unknown_codes()
    assert unknown[["table", "column", "code", "rows"]].values.tolist() == [
        ["loyalty_transactions", "type_id", 99, 2]
    ]


def test_drift_fields_count_rows_per_undeclared_field(published: Path) -> None:
    drift = open_warehouse(published).drift_fields()
    assert drift.values.tolist() == [
        ["loyalty_transactions", "new_field", 2],
        ["loyalty_transactions", "other", 1],
    ]


def test_coded_columns_pair_every_integer_enum_code_with_its_label() -> None:
    columns = coded_columns()
    assert ("loyalty_transactions", "type_id", "type") in columns
    assert ("memberships", "status_id", "status") in columns
    for table, code, label in columns:
        assert code.endswith("_id") and label == code.removesuffix("_id")
        assert label in TABLES[table].schema.names


def test_documented_meaning_comes_from_the_declarations() -> None:
    assert documented_meaning("marts", "promotion_effect") == MART_DOCS["promotion_effect"]
    assert documented_meaning("altegio", "load_steps") == TABLES["load_steps"].description
    assert documented_meaning("altegio", "no_such_table") is None
