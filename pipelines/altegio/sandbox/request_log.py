"""Every write request the sandbox received, in arrival order (`GET /_sandbox/requests`).

A test of a client's exactly-once behaviour reads it to prove that each operation reached the
sandbox once, and whether it was applied: a 5xx fault answers before anything is applied, a
dropped connection loses the answer of a write that was. Bodies of write operations carry no
credentials; headers are not kept.
"""

import threading
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class LoggedRequest:
    """One write request: what was asked, whether it changed the world, what was answered."""

    sequence: int
    operation: str
    method: str
    path: str
    body: Any  # the parsed JSON body, the raw text when it was not JSON, None when empty
    applied: bool
    status: int  # the status answered (or that would have been, when the connection dropped)
    fault: str | None = None  # "error" (5xx before applying) or "drop" (answer never sent)


class RequestLog:
    """Thread-safe append-only list of LoggedRequest."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[LoggedRequest] = []

    def add(
        self,
        operation: str,
        method: str,
        path: str,
        body: Any,
        *,
        applied: bool,
        status: int,
        fault: str | None,
    ) -> None:
        with self._lock:
            entry = LoggedRequest(
                len(self._entries) + 1, operation, method, path, body, applied, status, fault
            )
            self._entries.append(entry)

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(e) for e in self._entries]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
