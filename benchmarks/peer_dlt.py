"""The peer: dlt's rest_api source for the dominant table (transactions per chain per day)
into DuckDB, in the best configuration found (see docs/performance.md):

- one dependent resource per chain-day resolved from a parent resource, `parallelized=True`
  (each chain-day's pages run on dlt's extract thread pool, `extract.workers` threads);
- a paginator that stops on the first page shorter than the page size, like ours (dlt's stock
  PageNumberPaginator would need `stop_after_empty_page`, one extra request per chain-day:
  there is no total in the transactions answer);
- Parquet as the loader file format (DuckDB ingests it natively).
"""

import argparse
import os
import time
from pathlib import Path
from typing import Any

from benchmarks.common import PAGE_SIZE, auth_header, emit
from pipelines.altegio.sandbox.config import PARTNER_TOKEN, USER_TOKEN


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--chains", required=True, help="comma list of chain ids")
    parser.add_argument("--days", required=True, help="comma list of YYYY-MM-DD")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--file-format", default="parquet")
    parser.add_argument("--paginator", choices=["short", "empty"], default="short")
    args = parser.parse_args()
    # dlt reads its settings from the environment (config providers); set before import.
    os.environ.setdefault("EXTRACT__WORKERS", str(args.workers))
    os.environ.setdefault("NORMALIZE__WORKERS", "1")
    os.environ.setdefault("LOAD__WORKERS", "2")
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
    os.environ.setdefault("DLT_DATA_DIR", str(Path(args.data_dir) / "dlt_home"))
    t_import = time.perf_counter()
    import dlt
    from dlt.sources.helpers.rest_client.paginators import BasePaginator, PageNumberPaginator
    from dlt.sources.rest_api import rest_api_source

    class ShortPagePaginator(BasePaginator):  # type: ignore[misc]
        """page/count paging that ends on a page shorter than `count`."""

        def __init__(self, page_size: int) -> None:
            super().__init__()
            self.page_size = page_size
            self.page = 1

        def init_request(self, request: Any) -> None:
            self.page = 1
            request.params["page"] = self.page
            request.params["count"] = self.page_size

        def update_state(self, response: Any, data: list[Any] | None = None) -> None:
            if data is None or len(data) < self.page_size:
                self._has_next_page = False
            else:
                self.page += 1

        def update_request(self, request: Any) -> None:
            request.params["page"] = self.page

    chain_ids = [int(c) for c in args.chains.split(",")]
    days = args.days.split(",")

    @dlt.resource(name="chain_days", selected=False)
    def chain_days() -> Any:
        yield [{"chain_id": c, "day": d} for c in chain_ids for d in days]

    if args.paginator == "short":
        paginator: Any = ShortPagePaginator(PAGE_SIZE)
        params: dict[str, Any] = {}
    else:
        paginator = PageNumberPaginator(
            base_page=1, page_param="page", total_path=None, stop_after_empty_page=True
        )
        params = {"count": PAGE_SIZE}
    source = rest_api_source(
        {
            "client": {
                "base_url": args.base_url.rstrip("/") + "/",
                "headers": auth_header(PARTNER_TOKEN, USER_TOKEN),
            },
            "resources": [
                chain_days,
                {
                    "name": "loyalty_transactions",
                    "parallelized": True,
                    "write_disposition": "replace",
                    "endpoint": {
                        "path": "chain/{resources.chain_days.chain_id}/loyalty/transactions",
                        "params": {
                            **params,
                            "created_after": "{resources.chain_days.day}",
                            "created_before": "{resources.chain_days.day}",
                        },
                        "data_selector": "data",
                        "paginator": paginator,
                    },
                },
            ],
        }
    )
    t0 = time.perf_counter()
    pipeline = dlt.pipeline(
        pipeline_name="bench_dlt",
        destination=dlt.destinations.duckdb(str(Path(args.data_dir) / "dlt.duckdb")),
        dataset_name="altegio",
        pipelines_dir=str(Path(args.data_dir) / "dlt_pipelines"),
    )
    pipeline.run(source, loader_file_format=args.file_format)
    work = time.perf_counter() - t0
    with pipeline.sql_client() as sql:
        rows = sql.execute_sql("SELECT count(*) FROM loyalty_transactions")[0][0]
    emit({"rows": rows, "work_s": work, "import_s": t0 - t_import})


if __name__ == "__main__":
    main()
