"""This pipeline end to end through `run_load` (every Dagster asset in-process), in its own
process: extract -> normalize -> Parquet lake -> DuckDB warehouse."""

import argparse
import time
from datetime import date
from pathlib import Path

from benchmarks.common import emit
from pipelines.altegio.sandbox.config import PARTNER_TOKEN, USER_TOKEN


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--start", type=date.fromisoformat, required=True)
    parser.add_argument("--end", type=date.fromisoformat, required=True)
    parser.add_argument("--data-dir", required=True)
    args = parser.parse_args()
    t_import = time.perf_counter()
    from assets.cli import run_load
    from pipelines.storage.warehouse import Warehouse

    t0 = time.perf_counter()
    summary = run_load(
        args.start,
        args.end,
        args.data_dir,
        altegio_overrides={
            "base_url": args.base_url,
            "partner_token": PARTNER_TOKEN,
            "user_token": USER_TOKEN,
            "rate_limit": "unlimited",
        },
    )
    work = time.perf_counter() - t0
    with Warehouse(Path(args.data_dir)).connect_read_only() as con:
        rows = con.execute("SELECT count(*) FROM altegio.loyalty_transactions").fetchone()[0]
    emit(
        {
            "rows": rows,
            "requests_client": summary.requests,
            "http_429": summary.http_429,
            "exit_code": summary.exit_code,
            "failed": summary.failed,
            "errors": summary.errors,
            "work_s": work,
            "import_s": t0 - t_import,
        }
    )


if __name__ == "__main__":
    main()
