"""The request budget every thread and process of a run shares (GCRA through a state file).

The real limit is per client IP, so a budget is keyed by (API, identity) and kept where the
processes using it can lock and update it: in memory (one process), in a file (the processes
of one machine) or in Redis (`pipelines.altegio.http.redis_budget`: processes on several
machines). `rate=None` means unlimited (benchmarks).
"""

import contextlib
import fcntl
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Protocol

import orjson

log = logging.getLogger(__name__)

# The contract recommends <= 3 req/s sustained (the folklore limit is 5 per IP).
DEFAULT_RATE_LIMIT = 3.0
# After a 429 the shared rate halves, never below this fraction of the configured rate, and
# climbs back linearly at this many "configured rates" per second (0.5 -> 1.0 in 10 s).
MIN_RATE_FACTOR = 1 / 16
RATE_RECOVERY_PER_S = 0.05
# A storm of 429s seen by many threads at once is one signal, not many: halve at most this often.
RATE_CUT_COOLDOWN_S = 1.0


def budget_key(base_url: str, partner_token: str) -> str:
    """A file-name-safe identity of (API, partner); a hash, so the token never hits the disk."""
    digest = hashlib.sha256(f"{base_url.rstrip('/')}\0{partner_token}".encode()).hexdigest()
    return digest[:24]


def fresh_state() -> dict[str, float]:
    """The state of a budget nobody has used: no slot taken, the full rate, never cut."""
    return {"tat": 0.0, "factor": 1.0, "cut_at": 0.0}


def decode_state(raw: bytes | None) -> dict[str, float]:
    """A stored state; anything unreadable (a torn or foreign write) starts fresh."""
    try:
        loaded = orjson.loads(raw) if raw else {}
        return {k: float(loaded[k]) for k in ("tat", "factor", "cut_at")}
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return fresh_state()


class BudgetStore(Protocol):
    """Where a budget's state lives: `locked()` yields it for one read-modify-write that no
    other user of the store interleaves with; changes to the yielded dict are saved."""

    def locked(self) -> contextlib.AbstractContextManager[dict[str, float]]: ...

    def now(self) -> float | None:
        """The store's own clock when its users may be on different machines, else None."""
        ...


class MemoryStore:
    """The state of one process."""

    def __init__(self) -> None:
        self._state = fresh_state()

    @contextlib.contextmanager
    def locked(self) -> Iterator[dict[str, float]]:
        yield self._state

    def now(self) -> float | None:
        return None


class FileStore:
    """The state in a file every process of one machine locks with `flock` (same IP)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # Owner-only, like the data directory it lives in (the state is timing, but a
        # world-readable directory under the data dir would be the only one).
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)

    @contextlib.contextmanager
    def locked(self) -> Iterator[dict[str, float]]:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            state = decode_state(os.read(fd, 4096))
            yield state
            data = orjson.dumps(state)
            os.lseek(fd, 0, os.SEEK_SET)
            os.ftruncate(fd, 0)
            os.write(fd, data)
        finally:
            os.close(fd)  # closing releases the flock

    def now(self) -> float | None:
        return None


class RateBudget:
    """A GCRA request budget shared by every thread and process that opens the same store.

    Each `acquire()` reserves the next free slot (theoretical arrival time, "tat") under the
    store's lock, then sleeps outside the lock until its slot: callers queue fairly, the
    budget is used fully while work is queued, and it never exceeds the current rate. The
    state is three floats of wall-clock time, so separate processes agree on it (across
    machines the store's clock is used).

    On a 429 the shared rate halves (floor `MIN_RATE_FACTOR`) and recovers linearly.
    `rate=None` or `0` means unlimited (benchmarks): acquire() returns at once.
    `state_file` is the one-machine store; `store` any other (it wins).
    """

    def __init__(
        self,
        rate: float | None,
        state_file: Path | None = None,
        *,
        store: BudgetStore | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = float(rate) if rate else None
        self.state_file = state_file
        if store is None:
            store = FileStore(state_file) if state_file is not None else MemoryStore()
        self.store = store
        self._clock = clock
        self._sleep = sleep
        self._thread_lock = threading.Lock()

    @property
    def unlimited(self) -> bool:
        return self.rate is None

    @contextlib.contextmanager
    def _state(self) -> Iterator[tuple[dict[str, float], float]]:
        """The state under the store's lock, and the time now on the store's clock."""
        with self._thread_lock, self.store.locked() as state:
            now = self.store.now()
            yield state, self._clock() if now is None else now

    def _factor(self, state: Mapping[str, float], now: float) -> float:
        recovered = state["factor"] + max(0.0, now - state["cut_at"]) * RATE_RECOVERY_PER_S
        return min(1.0, max(MIN_RATE_FACTOR, recovered))

    def current_rate(self) -> float | None:
        """The rate in force right now (after any 429 cut), or None when unlimited."""
        if self.rate is None:
            return None
        with self._state() as (state, now):
            return self.rate * self._factor(state, now)

    def reserve(self) -> tuple[float, float]:
        """Take the next free slot without waiting for it: (the slot, on the store's clock;
        the seconds until it)."""
        if self.rate is None:
            return self._clock(), 0.0
        with self._state() as (state, now):
            interval = 1.0 / (self.rate * self._factor(state, now))
            slot = max(state["tat"], now)
            state["tat"] = slot + interval
        return slot, max(slot - now, 0.0)

    def acquire(self) -> float:
        """Wait for this caller's slot; returns the seconds waited."""
        _, wait = self.reserve()
        if wait > 0:
            self._sleep(wait)
        return wait

    def penalize(self) -> None:
        """A 429 came back: halve the shared rate (once per cooldown) so every caller slows."""
        if self.rate is None:
            return
        with self._state() as (state, now):
            if now - state["cut_at"] < RATE_CUT_COOLDOWN_S:
                return
            factor = max(MIN_RATE_FACTOR, self._factor(state, now) / 2)
            state["factor"] = factor
            state["cut_at"] = now
            # Push the queue back by one new interval so the next slot respects the lower rate.
            state["tat"] = max(state["tat"], now) + 1.0 / (self.rate * factor)
        log.warning("429 from the API: shared rate cut to %.2f req/s", self.rate * factor)
