"""Read-only access to the published warehouse for notebooks and ad-hoc analysis.

Notebooks should hold analysis, not plumbing::

    from pipelines.notebook import open_warehouse

    wh = open_warehouse()  # <ALTEGIO_DATA_DIR, else data/ or data/demo/>/warehouse.duckdb
    wh.tables()  # every table and mart with its row count and what one row means
    wh.query("SELECT * FROM marts.points_liability WHERE chain_id = ?", [160262])

Every call opens its own read-only connection and closes it before returning. DuckDB shares one
database instance per path inside a process and a connection keeps reading the file that was
live when it opened (see ``Warehouse.connect_read_only``), so short-lived connections are what
lets a re-run cell see the latest publish. ``connect()`` gives a connection for longer work;
close it (use ``with``) so later calls see newer publishes.
"""

import contextlib
import datetime as dt
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from pipelines.altegio.enums import UNKNOWN_PREFIX
from pipelines.altegio.schema import TABLES
from pipelines.storage.marts import MART_DOCS
from pipelines.storage.warehouse import (
    MARTS_SCHEMA,
    RAW_SCHEMA,
    WAREHOUSE_FILE,
    Warehouse,
    quote_identifier,
)

DATA_DIR_VARIABLE = "ALTEGIO_DATA_DIR"
DEFAULT_DATA_DIR = "data"
# Without a path or the variable: the nightly load's directory, else the demo's.
DEFAULT_CANDIDATES = (DEFAULT_DATA_DIR, "data/demo")
# The checkout this package lives in (a notebook's kernel runs in notebooks/, a script anywhere).
PROJECT_ROOT = Path(__file__).resolve().parents[1]

Params = Sequence[Any] | Mapping[str, Any] | None

# SQL assembled here holds only identifiers declared in pipelines.altegio.schema, validated by
# ``quote_identifier``; values always travel as parameters (lines marked ``noqa: S608``).

# Lists the published tables with their COMMENT and the row count the publish recorded; the
# schemas are bound as parameters, never formatted into the text.
_TABLES_SQL = """
    SELECT
        t.schema_name AS "schema",
        t.table_name AS "table",
        p.row_count AS "rows",
        t.comment AS meaning
    FROM duckdb_tables() AS t
    LEFT JOIN altegio._publish AS p
        ON p.table_name = t.schema_name || '.' || t.table_name
    WHERE t.database_name = current_database() AND t.schema_name IN (?, ?)
    ORDER BY t.schema_name DESC, t.table_name
"""

_COLUMNS_SQL = """
    SELECT column_name AS "column", data_type AS "type", comment AS meaning
    FROM duckdb_columns()
    WHERE database_name = current_database() AND schema_name = ? AND table_name = ?
    ORDER BY column_index
"""


def data_dir(
    path: str | os.PathLike[str] | None = None, bases: Sequence[Path] | None = None
) -> Path:
    """The data directory: ``path`` if given, else ``$ALTEGIO_DATA_DIR``, else ``data`` or
    ``data/demo``, whichever holds a warehouse first.

    A relative path is looked up from the current directory, then from the project's root
    (``bases``, for tests): the first place holding a warehouse wins, so a notebook kernel in
    ``notebooks/`` finds ``data/demo`` as a shell in the checkout does. When none holds one, the
    first candidate as given (the error then names it). ``path`` may also name the warehouse
    file itself (``.../warehouse.duckdb``).
    """
    if path is not None:
        candidates = [Path(path)]
    elif os.environ.get(DATA_DIR_VARIABLE):
        candidates = [Path(os.environ[DATA_DIR_VARIABLE])]
    else:
        candidates = [Path(name) for name in DEFAULT_CANDIDATES]
    candidates = [c.parent if c.name == WAREHOUSE_FILE else c for c in candidates]
    search = list(bases) if bases is not None else [Path.cwd(), PROJECT_ROOT]
    for candidate in candidates:
        for base in [Path()] if candidate.is_absolute() else search:
            if (base / candidate / WAREHOUSE_FILE).is_file():
                return base / candidate if base != Path.cwd() else candidate
    return candidates[0]


def _sql_text(name: str) -> str:
    """A SQL string literal of a declared identifier (validated, so it needs no escaping)."""
    return "'" + quote_identifier(name)[1:-1] + "'"


def _missing(path: Path) -> FileNotFoundError:
    return FileNotFoundError(
        f"no warehouse at {path}: run a load first (e.g. `altegio-loyalty demo --data-dir "
        f"{path.parent}`) or point {DATA_DIR_VARIABLE} at a data directory"
    )


def coded_columns() -> list[tuple[str, str, str]]:
    """``(table, code column, label column)`` for every integer enum code column declared in
    ``pipelines.altegio.schema`` (string enums keep their value as the label)."""
    found = []
    for spec in TABLES.values():
        names = set(spec.schema.names)
        for field in spec.schema:
            label = field.name.removesuffix("_id")
            if (
                field.metadata
                and b"enum" in field.metadata
                and pa.types.is_integer(field.type)
                and label != field.name
                and label in names
            ):
                found.append((spec.name, field.name, label))
    return found


def documented_meaning(schema: str, table: str) -> str | None:
    """What one row of ``schema.table`` means, from the code that declares it (or None)."""
    if schema == MARTS_SCHEMA:
        return MART_DOCS.get(table)
    if schema == RAW_SCHEMA and table in TABLES:
        return TABLES[table].description
    return None


def to_pandas(table: pa.Table) -> pd.DataFrame:
    """``table`` as a DataFrame with Arrow-backed dtypes (nullable ints, exact dates)."""
    frame: pd.DataFrame = table.to_pandas(types_mapper=pd.ArrowDtype)
    return frame


class WarehouseReader:
    """Read-only view of the warehouse of one data directory (``<data_dir>/warehouse.duckdb``)."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self._warehouse = Warehouse(Path(data_dir))

    def __repr__(self) -> str:
        return f"WarehouseReader({str(self.path)!r})"

    @property
    def path(self) -> Path:
        """The warehouse file."""
        return self._warehouse.path

    @contextlib.contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection for the ``with`` block, closed afterwards."""
        if not self.path.exists():
            raise _missing(self.path)
        con = self._warehouse.connect_read_only()
        try:
            yield con
        finally:
            con.close()

    def query(self, sql: str, params: Params = None) -> pd.DataFrame:
        """The result of one SQL statement, one DataFrame row per result row.

        Values travel as ``params`` (``?`` with a list, ``$name`` with a mapping), never
        formatted into ``sql``. Columns have Arrow dtypes; a statement without a result gives
        an empty DataFrame.
        """
        with self.connect() as con:
            relation = con.sql(sql, params=params)
            if relation is None:
                return pd.DataFrame()
            return to_pandas(relation.to_arrow_table())

    def tables(self, schema: str | None = None) -> pd.DataFrame:
        """One row per published table (``altegio``) and mart (``marts``): its schema, name,
        rows at publish time and what one row means (its COMMENT, else the declared doc).

        ``schema`` restricts the list to ``"altegio"`` or ``"marts"``.
        """
        schemas = (schema, schema) if schema else (RAW_SCHEMA, MARTS_SCHEMA)
        frame = self.query(_TABLES_SQL, list(schemas))
        frame["meaning"] = [
            meaning if isinstance(meaning, str) and meaning else documented_meaning(s, t)
            for s, t, meaning in zip(frame["schema"], frame["table"], frame["meaning"], strict=True)
        ]
        return frame

    def columns(self, table: str) -> pd.DataFrame:
        """One row per column of ``table`` (``schema.table``, schema ``altegio`` by default):
        its name, DuckDB type and documented meaning."""
        schema, _, name = table.rpartition(".")
        return self.query(_COLUMNS_SQL, [schema or RAW_SCHEMA, name])

    def unknown_codes(self) -> pd.DataFrame:
        """One row per table, code column and code outside the documented enum: how many rows
        of the published table carry it (their label reads ``unknown:<code>``)."""
        selects = [
            f'SELECT {_sql_text(table)} AS "table", {_sql_text(code)} AS "column", '  # noqa: S608
            f'{quote_identifier(code)} AS code, count(*) AS "rows" '
            f"FROM {quote_identifier(RAW_SCHEMA)}.{quote_identifier(table)} "
            f"WHERE starts_with({quote_identifier(label)}, $prefix) GROUP BY ALL"
            for table, code, label in coded_columns()
        ]
        sql = " UNION ALL ".join(selects) + ' ORDER BY "table", "column", code'
        return self.query(sql, {"prefix": UNKNOWN_PREFIX})

    def drift_fields(self) -> pd.DataFrame:
        """One row per table and field the API sent that the schema does not declare (schema
        drift, kept in each row's ``extra`` JSON): how many rows of the table carry it."""
        selects = [
            f'SELECT {_sql_text(name)} AS "table", unnest(json_keys(extra)) AS field '  # noqa: S608
            f"FROM {quote_identifier(RAW_SCHEMA)}.{quote_identifier(name)} "
            "WHERE extra IS NOT NULL"
            for name, spec in TABLES.items()
            if "extra" in spec.schema.names
        ]
        sql = (
            'SELECT "table", field, count(*) AS "rows" FROM ('  # noqa: S608
            + " UNION ALL ".join(selects)
            + ') GROUP BY ALL ORDER BY "table", field'
        )
        return self.query(sql)

    def published_at(self) -> dt.datetime | None:
        """When the warehouse file being read was published (UTC), None if never recorded."""
        with self.connect() as con:
            row = con.execute("SELECT max(published_at) FROM altegio._publish").fetchone()
        value = row[0] if row else None
        return value.astimezone(dt.UTC) if isinstance(value, dt.datetime) else None


def open_warehouse(path: str | os.PathLike[str] | None = None) -> WarehouseReader:
    """The read-only warehouse of ``path`` (a data directory), else as ``data_dir`` finds it.

    Fails at once with a hint when no warehouse has been published there yet.
    """
    reader = WarehouseReader(data_dir(path))
    if not reader.path.exists():
        raise _missing(reader.path)
    return reader


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m pipelines.notebook [DATA_DIR]`: print the warehouse file `data_dir` finds
    (what `make sql` opens), or say why there is none (exit 2)."""
    args = list(sys.argv[1:] if argv is None else argv)
    found = data_dir(args[0] if args else None) / WAREHOUSE_FILE
    if not found.is_file():
        print(_missing(found), file=sys.stderr)
        return 2
    print(found)
    return 0


if __name__ == "__main__":
    sys.exit(main())
