"""An analyst's read-only connection in a loop, as a separate process, during loads.

Each iteration opens the published warehouse read-only (one snapshot), checks invariants that
hold only for a complete publish, compares the snapshot with the clean run's checksums when
given, reads every final-named Parquet file of the lake, then closes everything (DuckDB shares
one instance per path inside a process; closing is what lets the next iteration see a newer
publish). It stops when the stop file appears and writes its tallies as JSON.

    python -m reliability.readers DATA_DIR STOP_FILE OUT_JSON [EXPECTED_DIGESTS_JSON]
"""

import json
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq

from pipelines.storage.parquet import PART_FILE
from pipelines.storage.warehouse import WAREHOUSE_FILE, quote_identifier
from reliability.common import table_checksums

POLL_S = 0.05


def snapshot_problems(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Invariants of one complete publish: every table holds the rows `_publish` recorded for
    it, and the activity mart adds up to the transactions table."""
    problems = []
    for table, rows in con.execute("SELECT table_name, row_count FROM altegio._publish").fetchall():
        schema, name = table.split(".", 1)
        target = f"{quote_identifier(schema)}.{quote_identifier(name)}"
        found = con.execute(f"SELECT count(*) FROM {target}").fetchone()  # noqa: S608
        if found is None or found[0] != rows:
            problems.append(f"{table}: {found} rows, _publish says {rows}")
    mart, raw = con.execute(
        "SELECT (SELECT coalesce(sum(transaction_count), 0) FROM marts.daily_loyalty_activity),"
        " (SELECT count(*) FROM altegio.loyalty_transactions)"
    ).fetchone() or (None, None)
    if mart != raw:
        problems.append(f"marts.daily_loyalty_activity counts {mart}, transactions hold {raw}")
    return problems


def read_lake(root: Path) -> tuple[int, list[str]]:
    """(files read, problems): every final-named Parquet file must be a whole file. A file
    that vanished between listing and opening (its partition was emptied) is not a problem."""
    files = 0
    problems = []
    for path in sorted(root.rglob(PART_FILE)):
        try:
            pq.read_table(path)
            files += 1
        except FileNotFoundError:
            continue
        except Exception as exc:  # any unreadable final file is a partial file seen
            problems.append(f"{path.relative_to(root)}: {type(exc).__name__}: {exc}")
    return files, problems


def loop(data_dir: Path, stop_file: Path, expected: dict[str, str] | None) -> dict[str, Any]:
    tallies: dict[str, Any] = {
        "snapshots": 0,
        "lake_files_read": 0,
        "errors": [],
        "partial": [],
        "published_at": [],
    }
    warehouse = data_dir / WAREHOUSE_FILE
    while not stop_file.exists():
        if warehouse.exists():
            try:
                con = duckdb.connect(str(warehouse), read_only=True)
            except duckdb.IOException as exc:
                # Only a missing file is tolerated (there is no publish yet).
                if warehouse.exists():
                    tallies["errors"].append(f"open: {exc}")
                continue
            try:
                problems = snapshot_problems(con)
                published = con.execute("SELECT max(published_at) FROM altegio._publish").fetchone()
                stamp = str(published[0]) if published else ""
                # One publish is one file: its contents are checked once, its invariants always.
                if expected is not None and stamp not in tallies["published_at"]:
                    digests = {n: t.digest for n, t in table_checksums(con).items()}
                    problems += [
                        f"{n} differs from the clean run"
                        for n in expected
                        if digests.get(n) != expected[n]
                    ]
                if stamp not in tallies["published_at"]:
                    tallies["published_at"].append(stamp)
                tallies["snapshots"] += 1
                tallies["partial"].extend(problems)
            except Exception as exc:  # a reader error is what this process exists to catch
                tallies["errors"].append(f"query: {type(exc).__name__}: {exc}")
            finally:
                con.close()
        lake = data_dir / "parquet"
        if lake.exists():
            files, problems = read_lake(lake)
            tallies["lake_files_read"] += files
            tallies["partial"].extend(problems)
        time.sleep(POLL_S)
    return tallies


def main(argv: list[str]) -> int:
    data_dir, stop_file, out = Path(argv[0]), Path(argv[1]), Path(argv[2])
    expected = json.loads(Path(argv[3]).read_text()) if len(argv) > 3 else None
    tallies = loop(data_dir, stop_file, expected)
    out.write_text(json.dumps(tallies))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
