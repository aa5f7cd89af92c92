"""`altegio-loyalty sql`: one read-only query for scripts (`make sql` opens the interactive
shell instead). Exit status 0, 1 for a statement DuckDB refuses, 2 when there is no warehouse."""

import argparse
import sys
from typing import Any

import duckdb

from pipelines import sql
from pipelines.notebook import data_dir


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "sql",
        help="run one SQL statement on the warehouse, read-only, and print the result",
        description="Run one SQL statement on <data dir>/warehouse.duckdb, read-only.",
    )
    parser.add_argument("query", help='one statement, e.g. "SELECT * FROM marts.points_liability"')
    parser.add_argument(
        "--data-dir",
        help="default: $ALTEGIO_DATA_DIR, else data/ or data/demo/ (whichever holds a "
        "warehouse; relative paths also from the project's root)",
    )
    parser.add_argument(
        "--format",
        choices=sorted(sql.FORMATS),
        default="table",
        help="output format (default: table)",
    )


def run(args: argparse.Namespace) -> int:
    try:
        result = sql.run_read_only(data_dir(args.data_dir), args.query)
    except FileNotFoundError as exc:
        print(f"sql: {exc}", file=sys.stderr)
        return 2
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"sql: {first}", file=sys.stderr)
        return 1
    print(sql.render(result, args.format))
    return 0
