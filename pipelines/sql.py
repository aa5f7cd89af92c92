"""One SQL statement against the published warehouse, read-only, rendered for a script.

`altegio-loyalty sql "SELECT ..." [--format table|csv|json|markdown]` runs this. The
connection is read-only (DuckDB refuses any write) and reads the snapshot that was live when it
opened, so a load publishing meanwhile never disturbs it.
"""

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from pipelines.notebook import WarehouseReader


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]


def run_read_only(data_dir: Path, sql: str) -> QueryResult:
    """The columns and rows of `sql` on `<data_dir>/warehouse.duckdb` (FileNotFoundError with
    a hint when nothing was published there; duckdb.Error for a bad or writing statement)."""
    with WarehouseReader(data_dir).connect() as con:
        relation = con.sql(sql)
        if relation is None:  # a statement without a result (SET, PRAGMA, ...)
            return QueryResult([], [])
        return QueryResult(list(relation.columns), relation.fetchall())


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _table(result: QueryResult) -> str:
    """Aligned columns, numbers to the right, NULL as empty; the row count below."""
    cells = [[_text(v) for v in row] for row in result.rows]
    widths = [
        max([len(name), *(len(row[i]) for row in cells)]) for i, name in enumerate(result.columns)
    ]
    numeric = [
        bool(result.rows)
        and all(isinstance(row[i], int | float | Decimal) or row[i] is None for row in result.rows)
        for i in range(len(result.columns))
    ]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    lines = [line(result.columns), "  ".join("-" * w for w in widths)]
    lines += [line(row) for row in cells]
    lines.append(f"({len(result.rows)} row{'s' if len(result.rows) != 1 else ''})")
    return "\n".join(lines)


def _csv(result: QueryResult) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(result.columns)
    writer.writerows([[_text(v) for v in row] for row in result.rows])
    return out.getvalue().rstrip("\n")


def _json_default(value: Any) -> Any:
    # Exact amounts stay exact: a DECIMAL travels as its text, never as a binary float (and
    # any other type orjson does not know, as its text too).
    return str(value)


def _json(result: QueryResult) -> str:
    records = [dict(zip(result.columns, row, strict=True)) for row in result.rows]
    return orjson.dumps(records, default=_json_default, option=orjson.OPT_INDENT_2).decode()


def _markdown(result: QueryResult) -> str:
    def row(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.replace("|", "\\|").replace("\n", " ") for v in values) + " |"

    lines = [row(result.columns), "|" + "---|" * len(result.columns)]
    lines += [row([_text(v) for v in values]) for values in result.rows]
    return "\n".join(lines)


FORMATS: dict[str, Callable[[QueryResult], str]] = {
    "table": _table,
    "csv": _csv,
    "json": _json,
    "markdown": _markdown,
}


def render(result: QueryResult, fmt: str) -> str:
    return FORMATS[fmt](result)
