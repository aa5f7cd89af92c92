"""The rate-limited regime: a sandbox limiting to R requests/s per client, our client with a
budget of R (does it use the limit fully without a 429?) and of 2R (how fast does it adapt to
the server's 429s, and is anything lost?)."""

import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import Size
from benchmarks.sandbox import GroundTruth, SandboxProcess
from pipelines.altegio.client import AltegioClient, ClientSettings, Credentials
from pipelines.altegio.sandbox.config import PARTNER_TOKEN, USER_TOKEN


class RecordingTransport(httpx.BaseTransport):
    """Keeps (monotonic time, status) of every answer the client receives."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self._lock = threading.Lock()
        self.events: list[tuple[float, int]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        with self._lock:
            self.events.append((time.monotonic(), response.status_code))
        return response

    def close(self) -> None:
        self._inner.close()


@dataclass
class RateRun:
    budget: float
    events: list[tuple[float, int]]
    received_ids: set[int]
    expected_ids: set[int]
    wall_s: float
    client_429: int
    server_requests: int
    minimum: int

    def as_dict(self, limit: float) -> dict[str, Any]:
        t0 = self.events[0][0]
        times_429 = [t - t0 for t, s in self.events if s == 429]
        ok = [t for t, s in self.events if s == 200]
        # Rate over the run, first answer to last (a full run is what a nightly load does).
        span = self.events[-1][0] - t0
        rate = (len(self.events) - 1) / span if span > 0 else 0.0
        last_429 = max(times_429) if times_429 else 0.0
        after = [t for t in ok if t - t0 > last_429]
        steady = (len(after) - 1) / (after[-1] - after[0]) if len(after) > 2 else 0.0
        return {
            "budget_rps": self.budget,
            "limit_rps": limit,
            "requests": len(self.events),
            "server_requests": self.server_requests,
            "minimum_requests": self.minimum,
            "requests_over_minimum": round(len(self.events) / self.minimum, 3),
            "http_429": len(times_429),
            "client_429": self.client_429,
            "achieved_rps": round(rate, 3),
            "achieved_over_limit": round(rate / limit, 3),
            "last_429_after_s": round(last_429, 2),
            "steady_rps_after_last_429": round(steady, 3),
            "rows_expected": len(self.expected_ids),
            "rows_received": len(self.received_ids),
            "rows_lost": len(self.expected_ids - self.received_ids),
            "wall_s": round(self.wall_s, 2),
        }


def _one(size: Size, limit: float, budget: float) -> RateRun:
    truth = GroundTruth(size)
    chain_id = truth.chain_ids()[0]
    days = size.day_list()
    expected = {int(r["id"]) for r in truth.dataset.transactions(chain_id, days[0], days[-1])}
    with SandboxProcess(size, rate_limit=limit) as sandbox, tempfile.TemporaryDirectory() as tmp:
        transport = RecordingTransport()
        settings = ClientSettings(
            base_url=sandbox.base_url,
            credentials=Credentials(partner_token=PARTNER_TOKEN, user_token=USER_TOKEN),
            rate_limit=budget,
            budget_dir=Path(tmp),
            transport=transport,
        )
        # The sandbox's bucket starts full (burst): let it drain so both runs start alike.
        time.sleep(1.0)
        received: set[int] = set()
        t0 = time.perf_counter()
        with AltegioClient(settings) as client:
            client.list_chains()
            for _, pages in client.fetch_transaction_days(chain_id, days):
                for page in pages:
                    received.update(int(r["id"]) for r in page.records)
            client_429 = client.stats.http_429
        wall = time.perf_counter() - t0
        server_requests = sandbox.stats()["total_requests"]
    minimum = 1 + len(days)  # /groups + one page per day (every day < one page here)
    return RateRun(budget, transport.events, received, expected, wall, client_429,
                   server_requests, minimum)  # fmt: skip


def run(limit: float, days_at_r: int, days_above: int) -> dict[str, Any]:
    at_r = _one(Size("rate", 1, days_at_r, 40), limit, limit)
    above = _one(Size("rate", 1, days_above, 40), limit, 2 * limit)
    return {"at_limit": at_r.as_dict(limit), "above_limit": above.as_dict(limit)}
