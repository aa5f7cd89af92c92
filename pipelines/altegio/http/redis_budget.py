"""A rate budget's state in Redis, for an identity whose workers run on several machines.

Same state and same algorithm as the file store (`budget.RateBudget`); only the lock and the
clock move: the read-modify-write runs under a Redis lock (`redis.lock.Lock`, which expires on
its own if its holder dies mid-update, so a killed worker cannot wedge the budget), and the time
is the Redis server's (`TIME`), so machines whose clocks disagree still agree on the slots.

`redis` is in the `cluster` dependency group: it is imported only when a Redis URL is set.
"""

import contextlib
from collections.abc import Iterator
from typing import Any

import orjson

from pipelines.altegio.http.budget import decode_state
from pipelines.altegio.http.errors import ConfigurationError, safe_url

KEY_PREFIX = "altegio-loyalty:budget:"
# A holder that has not released the lock after this long is presumed dead.
LOCK_TIMEOUT_S = 5.0
# How long a caller waits for the lock before the budget counts as unreachable.
LOCK_WAIT_S = 30.0
# The state outlives any pause between runs that matters for pacing, then goes away.
STATE_TTL_S = 24 * 3600


class RedisStore:
    """The state of one budget under `KEY_PREFIX + key` in the Redis at `url`."""

    def __init__(self, url: str, key: str, client: Any = None) -> None:
        if client is None:
            try:
                import redis
            except ImportError:
                raise ConfigurationError(
                    "ALTEGIO_RATE_BUDGET_URL is a Redis URL but the redis package is missing: "
                    "install the cluster dependency group (uv sync --group cluster)"
                ) from None
            client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=10)
        self._redis = client
        self.key = KEY_PREFIX + key
        self.url = safe_url(url)

    def __repr__(self) -> str:
        # The URL may carry a Redis password: its userinfo is dropped.
        return f"RedisStore(url={self.url!r}, key={self.key!r})"

    @contextlib.contextmanager
    def locked(self) -> Iterator[dict[str, float]]:
        lock = self._redis.lock(
            self.key + ":lock", timeout=LOCK_TIMEOUT_S, blocking_timeout=LOCK_WAIT_S
        )
        if not lock.acquire():
            raise ConfigurationError(
                f"rate budget {self.key} at {self.url}: lock not obtained in {LOCK_WAIT_S:.0f} s"
            )
        try:
            state = decode_state(self._redis.get(self.key))
            yield state
            self._redis.set(self.key, orjson.dumps(state), ex=int(STATE_TTL_S))
        finally:
            with contextlib.suppress(Exception):  # an expired lock is not ours to release
                lock.release()

    def now(self) -> float | None:
        seconds, micros = self._redis.time()
        return float(seconds) + float(micros) / 1e6
