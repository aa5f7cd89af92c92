"""The download floor: every transactions page with plain httpx, bytes discarded.

The plan (chain, day, pages) comes from the sandbox's ground truth, so this process parses
nothing: `pages` is what a stop-on-short-page client must ask for (rows // page size + 1).
Same page size, same number of concurrent connections as the pipeline's client.
"""

import argparse
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from benchmarks.common import PAGE_SIZE, auth_header, emit
from pipelines.altegio.sandbox.config import PARTNER_TOKEN, USER_TOKEN


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument(
        "--plan", required=True, help="JSON file: [[chain_id, 'YYYY-MM-DD', pages]]"
    )
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    plan = json.loads(Path(args.plan).read_text())
    t0 = time.perf_counter()
    client = httpx.Client(
        base_url=args.base_url,
        headers=auth_header(PARTNER_TOKEN, USER_TOKEN),
        timeout=httpx.Timeout(30.0),
        limits=httpx.Limits(max_connections=args.workers, max_keepalive_connections=args.workers),
    )
    lock = threading.Lock()
    totals = {"requests": 0, "bytes": 0}

    def one(item: list) -> None:
        chain_id, day, pages = item
        n_bytes = 0
        for page in range(1, pages + 1):
            response = client.get(
                f"/chain/{chain_id}/loyalty/transactions",
                params={
                    "created_after": day,
                    "created_before": day,
                    "page": page,
                    "count": PAGE_SIZE,
                },
            )
            response.raise_for_status()
            n_bytes += len(response.content)
        with lock:
            totals["requests"] += pages
            totals["bytes"] += n_bytes

    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        list(pool.map(one, plan))
    client.close()
    emit({**totals, "work_s": time.perf_counter() - t0})


if __name__ == "__main__":
    main()
