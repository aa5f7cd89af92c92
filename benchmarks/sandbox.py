"""The sandbox as a separate process, plus its ground truth computed in this process."""

import subprocess
import time
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from benchmarks.common import PAGE_SIZE, PYTHON, SEED, Size
from pipelines.altegio.endpoints import ENDPOINTS
from pipelines.altegio.sandbox import SandboxConfig
from pipelines.altegio.sandbox.data import SandboxDataset


class SandboxProcess:
    """`python -m benchmarks.sandbox_proc` (the sandbox CLI) on a free port."""

    def __init__(self, size: Size, rate_limit: float | None = None) -> None:
        self.size = size
        self.rate_limit = rate_limit
        self.proc: subprocess.Popen[str] | None = None
        self.base_url = ""

    def __enter__(self) -> "SandboxProcess":
        cache_rows = self.size.chains * self.size.days * self.size.per_day * 2 + 10_000
        self.proc = subprocess.Popen(
            [
                PYTHON, "-m", "benchmarks.sandbox_proc", "--port", "0",
                "--cache-rows", str(cache_rows), *self.size.sandbox_args(self.rate_limit),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 60
        for line in self.proc.stdout:
            if "serving at" in line:
                self.base_url = line.split("serving at", 1)[1].strip()
                break
            if time.monotonic() > deadline:
                break
        if not self.base_url:
            self.proc.kill()
            raise RuntimeError("sandbox process did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def stats(self) -> dict[str, Any]:
        return httpx.get(self.base_url + "/_sandbox/stats", timeout=30).json()  # type: ignore[no-any-return]

    def reset(self) -> None:
        httpx.post(self.base_url + "/_sandbox/reset", timeout=30).raise_for_status()


class GroundTruth:
    """What the sandbox serves for a size, computed from the same seed in this process."""

    def __init__(self, size: Size) -> None:
        self.size = size
        self.dataset = SandboxDataset(
            SandboxConfig(
                seed=SEED,
                chains=size.chains,
                start=size.day_list()[0],
                end=size.end,
                transactions_per_day=size.per_day,
                memberships_per_day=size.memberships_per_day,
            )
        )

    def chain_ids(self) -> list[int]:
        return list(self.dataset.chain_ids())

    def tx_plan(self) -> list[list[Any]]:
        """[chain_id, day, pages a stop-on-short-page client needs] per chain-day."""
        return [
            [c, d.isoformat(), self.dataset.transaction_count(c, d) // PAGE_SIZE + 1]
            for c in self.chain_ids()
            for d in self.size.day_list()
        ]

    def transactions(self) -> int:
        return sum(
            self.dataset.transaction_count(c, d)
            for c in self.chain_ids()
            for d in self.size.day_list()
        )

    def minimum_requests(self) -> dict[str, int]:
        """The fewest requests per endpoint a client can make for a full load of the range,
        given the page sizes served: a window without a total needs rows // size + 1 pages
        (the last, short page proves the end), one with a total needs ceil(rows / size)."""

        def pages(rows: int, endpoint: str) -> int:
            spec = ENDPOINTS[endpoint]
            size = min(PAGE_SIZE, spec.max_page_size or PAGE_SIZE)
            if spec.paging.size_param is None:
                return 1
            if spec.total.name == "TOTAL_COUNT":
                return max(1, -(-rows // size))
            return rows // size + 1

        ds = self.dataset
        mins = {"groups": 1, "transactions": sum(p for _, _, p in self.tx_plan())}
        for key in (
            "memberships",
            "membership_types",
            "certificate_types",
            "notification_templates",
            "card_types",
            "promotion_search",
            "promotion",
        ):
            mins[key] = 0  # fmt: skip
        for c in self.chain_ids():
            tz = ZoneInfo(ds.chain_timezone(c))
            start = datetime.combine(self.size.day_list()[0], datetime.min.time(), tzinfo=tz)
            end = datetime.combine(self.size.end, datetime.min.time(), tzinfo=tz) + timedelta(
                days=1, microseconds=-1
            )
            mins["memberships"] += pages(len(ds.memberships(c, start, end)), "memberships")
            mins["membership_types"] += pages(len(ds.membership_types(c)), "membership_types")
            mins["certificate_types"] += pages(len(ds.certificate_types(c)), "certificate_types")
            mins["notification_templates"] += 1
            mins["card_types"] += 1
            group = next(g for g in ds.groups() if g["id"] == c)
            locations = group.get("companies") or group.get("locations") or []
            mins["promotion_search"] += len(locations)
            mins["promotion"] += len(ds.promotions(c))
        return mins
