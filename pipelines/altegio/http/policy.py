"""How long one request may take and how long its retries may ride out server trouble.

Two frozen objects with named defaults, built once (by the client settings or the Dagster
resource) and passed whole: `Timeouts` for one attempt, `RetryPolicy` for a request's
attempts. Retries are bounded by time: a request keeps trying through an incident for up to
`max_elapsed_s`, with exponential backoff (jittered, capped at `backoff_max_s`), waiting at
least what a `Retry-After` asks (capped); `max_attempts` is only a safety net.
"""

import email.utils
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from pipelines.altegio.http.errors import ApiError, ConnectionFailed, UnreadableBody

# One attempt. A chain-day page is a few hundred kilobytes; a minute of read time is generous,
# and a hung socket must never hang a nightly run.
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 60.0
WRITE_TIMEOUT_S = 30.0
POOL_TIMEOUT_S = 60.0
# Largest response body read (after content decoding): anything near this is a broken or
# hostile server, refused before it eats memory.
MAX_BODY_BYTES = 32 * 1024 * 1024

# A request's attempts. A nightly job can afford to wait out a few minutes of server trouble
# on one request rather than lose a chain's day; it must not stall for an hour.
MAX_ELAPSED_S = 300.0
BACKOFF_BASE_S = 1.0  # CONTRACT §3.1: start >= 1 s
BACKOFF_MAX_S = 30.0
# A Retry-After larger than this is treated as this: a nightly job waits, it does not stall.
RETRY_AFTER_MAX_S = 120.0
# Waits after a Retry-After get up to this much extra, so threads refused together do not all
# come back at the same instant and lose again.
RETRY_AFTER_SPREAD_S = 1.0
# The time budget is what bounds retries; this only stops a policy with tiny delays (tests,
# the reliability suite's tuning) from looping for ever.
MAX_ATTEMPTS = 50
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Timeouts:
    """Seconds one attempt may spend connecting, reading, writing and waiting for a connection."""

    connect_s: float = CONNECT_TIMEOUT_S
    read_s: float = READ_TIMEOUT_S
    write_s: float = WRITE_TIMEOUT_S
    pool_s: float = POOL_TIMEOUT_S

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not value > 0:
                raise ValueError(f"Timeouts.{name} must be greater than 0, got {value!r}")

    def as_httpx(self) -> httpx.Timeout:
        return httpx.Timeout(
            connect=self.connect_s, read=self.read_s, write=self.write_s, pool=self.pool_s
        )


@dataclass(frozen=True)
class RetryPolicy:
    """When a failed attempt is tried again, and after how long."""

    max_elapsed_s: float = MAX_ELAPSED_S
    backoff_base_s: float = BACKOFF_BASE_S
    backoff_max_s: float = BACKOFF_MAX_S
    retry_after_max_s: float = RETRY_AFTER_MAX_S
    retry_after_spread_s: float = RETRY_AFTER_SPREAD_S
    max_attempts: int = MAX_ATTEMPTS
    retryable_statuses: frozenset[int] = RETRYABLE_STATUSES

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"RetryPolicy.max_attempts must be 1 or more, got {self.max_attempts}")
        for name in ("max_elapsed_s", "backoff_base_s", "backoff_max_s", "retry_after_max_s"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"RetryPolicy.{name} must be 0 or more")

    def is_transient(self, exc: ApiError) -> bool:
        """Whether another attempt may succeed: a retryable status, no answer, a broken body."""
        if isinstance(exc, ConnectionFailed | UnreadableBody):
            return True
        return exc.status in self.retryable_statuses

    def backoff(self, attempt: int, jitter: float) -> float:
        """Delay after failed attempt `attempt` (1-based): exponential, capped, "equal jitter"
        (half fixed, half random with `jitter` in [0, 1)), so retries never bunch at zero."""
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2.0 ** (attempt - 1))
        return float(ceiling / 2 + ceiling / 2 * jitter)

    def delay(self, attempt: int, jitter: float, retry_after: float | None = None) -> float:
        """The backoff, or the server's Retry-After (capped, spread by jitter) when longer."""
        delay = self.backoff(attempt, jitter)
        if retry_after is not None:
            wait = min(max(retry_after, 0.0), self.retry_after_max_s)
            delay = max(delay, wait + jitter * self.retry_after_spread_s)
        return delay

    def next_delay(
        self, attempt: int, elapsed_s: float, jitter: float, retry_after: float | None = None
    ) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None: give up, because the next
        attempt would start past `max_elapsed_s` (or past the attempt cap)."""
        if attempt >= self.max_attempts:
            return None
        delay = self.delay(attempt, jitter, retry_after)
        if elapsed_s + delay > self.max_elapsed_s:
            return None
        return delay


def never_applied(exc: ApiError) -> bool:
    """Whether a failed attempt provably changed nothing on the server: the request never left
    (connect error, connect or pool timeout), or the rate limiter refused it (429)."""
    if isinstance(exc, ConnectionFailed):
        return not exc.request_sent
    return exc.status == 429


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or HTTP date), >= 0; None if
    absent or unreadable. The policy caps it."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(seconds, 0.0)
