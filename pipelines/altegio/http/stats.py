"""What a client did over HTTP: attempts, retries, 429s, 5xx, bytes, pages and rows.

Every HTTP attempt counts as a request (retries included); counters are per client and per
endpoint, safe to update from the worker threads.
"""

import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any


@dataclass
class EndpointStats:
    """One endpoint's counters; `statuses` counts answers per HTTP status."""

    requests: int = 0
    retries: int = 0
    http_429: int = 0
    server_errors_5xx: int = 0
    bytes_received: int = 0
    pages: int = 0
    rows: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


@dataclass
class RequestStats:
    """One client's counters, in total and per endpoint (`by_endpoint`)."""

    requests: int = 0
    retries: int = 0
    http_429: int = 0
    server_errors_5xx: int = 0
    network_errors: int = 0
    bytes_received: int = 0
    pages: int = 0
    rows: int = 0
    by_endpoint: dict[str, EndpointStats] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def _ep(self, endpoint: str) -> EndpointStats:
        return self.by_endpoint.setdefault(endpoint, EndpointStats())

    def record_response(self, endpoint: str, status: int, nbytes: int) -> None:
        with self._lock:
            ep = self._ep(endpoint)
            self.requests += 1
            ep.requests += 1
            self.bytes_received += nbytes
            ep.bytes_received += nbytes
            ep.statuses[status] = ep.statuses.get(status, 0) + 1
            if status == 429:
                self.http_429 += 1
                ep.http_429 += 1
            elif status >= 500:
                self.server_errors_5xx += 1
                ep.server_errors_5xx += 1

    def record_network_error(self, endpoint: str) -> None:
        with self._lock:
            self.requests += 1
            self.network_errors += 1
            self._ep(endpoint).requests += 1

    def record_retry(self, endpoint: str) -> None:
        with self._lock:
            self.retries += 1
            self._ep(endpoint).retries += 1

    def record_page(self, endpoint: str, rows: int) -> None:
        with self._lock:
            ep = self._ep(endpoint)
            self.pages += 1
            ep.pages += 1
            self.rows += rows
            ep.rows += rows

    def _counters(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.type is int}

    def snapshot(self) -> "RequestStats":
        """A consistent copy (for before/after deltas while worker threads keep counting)."""
        with self._lock:
            return replace(
                self,
                by_endpoint={
                    name: replace(ep, statuses=dict(ep.statuses))
                    for name, ep in self.by_endpoint.items()
                },
                _lock=threading.Lock(),
            )

    @classmethod
    def merged(cls, parts: "Iterable[RequestStats]") -> "RequestStats":
        """The sum of several clients' counters (the identities of one load)."""
        total = cls()
        for part in parts:
            snap = part.snapshot()
            for name, value in snap._counters().items():
                setattr(total, name, getattr(total, name) + value)
            for endpoint, ep in snap.by_endpoint.items():
                into = total._ep(endpoint)
                for f in fields(EndpointStats):
                    if f.name != "statuses":
                        setattr(into, f.name, getattr(into, f.name) + getattr(ep, f.name))
                for status, count in ep.statuses.items():
                    into.statuses[status] = into.statuses.get(status, 0) + count
        return total

    def as_dict(self) -> dict[str, Any]:
        """A plain-dict copy, safe to log or put in asset metadata."""
        snap = self.snapshot()
        return {
            **snap._counters(),
            "by_endpoint": {name: asdict(ep) for name, ep in snap.by_endpoint.items()},
        }
