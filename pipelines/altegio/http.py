"""HTTP layer of the Altegio extract: credentials, typed errors, rate budget, retries, envelopes.

One `ApiSession` turns "ask endpoint E for path P" into parsed `(data, meta)` or a typed error.
It owns everything the server's behaviour forces on a caller: the shared request budget (the
real limit is per client IP, so every thread and process of a run draws from one budget),
bounded retries with backoff that honour `Retry-After`, one re-login on a 401, and the
envelope quirks of CONTRACT §1.4. Paging lives one level up, in `client.py`.

Secrets (partner token, user token, password) travel only in request headers and the auth
body; nothing here puts them in a log record, an exception or a repr.
"""

import contextlib
import email.utils
import fcntl
import hashlib
import ipaddress
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson

from pipelines.altegio.endpoints import ACCEPT_HEADER, AUTH, ArrayEncoding, Endpoint, Envelope

log = logging.getLogger(__name__)

# Timeouts (seconds). A chain-day page is a few hundred kilobytes; a minute of read time is
# generous, and a hung socket must never hang a nightly run.
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 60.0
WRITE_TIMEOUT_S = 30.0
POOL_TIMEOUT_S = 60.0

# Retries. Six attempts with doubling backoff from 1 s (CONTRACT §3.1: start >= 1 s) span
# roughly a minute of server trouble before a run gives up on one request.
MAX_ATTEMPTS = 6
BACKOFF_BASE_S = 1.0
BACKOFF_MAX_S = 30.0
# A Retry-After larger than this is treated as this: a nightly job waits, it does not stall.
RETRY_AFTER_MAX_S = 120.0
# Waits after a Retry-After are spread over this many extra seconds (see ApiSession._pause).
RETRY_AFTER_SPREAD_S = 1.0
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
# Largest response body read (after content decoding). A chain-day page is a few hundred
# kilobytes; anything near this is a broken or hostile server, refused before it eats memory.
MAX_BODY_BYTES = 32 * 1024 * 1024

# Rate budget. The contract recommends <= 3 req/s sustained (the folklore limit is 5 per IP).
DEFAULT_RATE_LIMIT = 3.0
# After a 429 the shared rate halves, never below this fraction of the configured rate, and
# climbs back linearly at this many "configured rates" per second (0.5 -> 1.0 in 10 s).
MIN_RATE_FACTOR = 1 / 16
RATE_RECOVERY_PER_S = 0.05
# A storm of 429s seen by many threads at once is one signal, not many: halve at most this often.
RATE_CUT_COOLDOWN_S = 1.0

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})

# Names of the environment variables an operator fixes (not secrets themselves).
PARTNER_TOKEN_ENV = "ALTEGIO_PARTNER_TOKEN"  # noqa: S105
USER_TOKEN_ENV = "ALTEGIO_USER_TOKEN"  # noqa: S105
LOGIN_ENV = "ALTEGIO_LOGIN"
PASSWORD_ENV = "ALTEGIO_PASSWORD"  # noqa: S105


# --------------------------------------------------------------------------- credentials


def _mask(value: str | None) -> str | None:
    return None if value is None else "***"


@dataclass(frozen=True, repr=False)
class Credentials:
    """Partner token plus either a user token or a login/password pair (CONTRACT §4).

    The repr masks every secret, so a settings object can be logged or shown in an error.
    """

    partner_token: str
    user_token: str | None = None
    login: str | None = None
    password: str | None = None

    def __post_init__(self) -> None:
        if not self.partner_token:
            raise ValueError(f"partner token is empty: set {PARTNER_TOKEN_ENV}")
        if not self.user_token and not (self.login and self.password):
            raise ValueError(
                f"no user credential: set {USER_TOKEN_ENV}, or {LOGIN_ENV} and {PASSWORD_ENV}"
            )

    @property
    def can_login(self) -> bool:
        return bool(self.login and self.password)

    def __repr__(self) -> str:
        login = None if self.login is None else (self.login[:2] + "***")
        return (
            f"Credentials(partner_token={_mask(self.partner_token)!r}, "
            f"user_token={_mask(self.user_token)!r}, login={login!r}, "
            f"password={_mask(self.password)!r})"
        )

    __str__ = __repr__


# --------------------------------------------------------------------------- errors


def _safe_url(url: str | httpx.URL | None) -> str | None:
    """The URL without any userinfo part (tokens never travel in URLs, but be sure)."""
    if url is None:
        return None
    parts = urlsplit(str(url))
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


class ApiError(Exception):
    """An Altegio request that failed for good; carries the API's own message and field errors."""

    default_hint = ""

    def __init__(
        self,
        message: str | None,
        *,
        status: int | None = None,
        errors: Mapping[str, list[str]] | None = None,
        url: str | httpx.URL | None = None,
        endpoint: str | None = None,
        chain_id: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.status = status
        self.errors: dict[str, list[str]] = dict(errors or {})
        self.url = _safe_url(url)
        self.endpoint = endpoint
        self.chain_id = chain_id
        self.hint = hint if hint is not None else self.default_hint
        super().__init__(self._render())

    def _render(self) -> str:
        head = type(self).__name__
        where = " ".join(
            p
            for p in (
                self.endpoint and f"endpoint={self.endpoint}",
                self.chain_id is not None and f"chain_id={self.chain_id}",
                self.status is not None and f"status={self.status}",
            )
            if p
        )
        text = f"{head} [{where}]: {self.message or 'no message from the API'}"
        if self.errors:
            text += f"; errors: {self.errors}"
        if self.url:
            text += f" ({self.url})"
        if self.hint:
            text += f". {self.hint}"
        return text


class AuthError(ApiError):
    """401: a credential is wrong; the text names the environment variable to fix."""


class AccessDenied(ApiError):
    """403: the user lacks the chain right for this endpoint (skip the chain, keep the others)."""


class NotFound(ApiError):
    """404: nothing at the requested path (a wrong chain/location/program id)."""


class ValidationError(ApiError):
    """400/422: the API refused the parameters; `errors` maps field -> messages."""


class RateLimited(ApiError):
    """429 persisted through every retry."""


class ServerError(ApiError):
    """5xx persisted through every retry."""


class NetworkError(ApiError):
    """Timeouts or dropped connections persisted through every retry."""


class BadResponse(ApiError):
    """The body was not what the endpoint sends (broken JSON after retries, wrong shape, a
    server repeating the same page forever)."""


class BodyTooLarge(BadResponse):
    """A response body over the configured maximum (`MAX_BODY_BYTES`); never retried."""


class InsecureURLError(ApiError):
    """A base URL that would send tokens in clear text to a non-loopback host."""


def check_base_url(base_url: str) -> str:
    """The base URL without a trailing slash; https unless the host is loopback."""
    parts = urlsplit(base_url)
    host = (parts.hostname or "").lower()
    if parts.scheme == "https" and host:
        return base_url.rstrip("/")
    if parts.scheme == "http" and _is_loopback(host):
        return base_url.rstrip("/")
    raise InsecureURLError(
        f"refusing base URL {_safe_url(base_url)!r}: tokens may only travel over https "
        "(plain http is allowed for loopback hosts only)"
    )


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _normalize_error_key(key: str) -> str:
    # Altegio sends bracketed keys such as "[is_archived]" (CONTRACT §2.1).
    return key.strip().strip("[]").replace("][", ".")


def parse_error_body(body: Any) -> tuple[str | None, dict[str, list[str]]]:
    """`(message, field errors)` from any documented error body shape, else `(None, {})`."""
    if isinstance(body, list) and len(body) == 1 and isinstance(body[0], dict):
        body = body[0]  # the array-wrapped envelope (CONTRACT §1.4 / the 400 example)
    if not isinstance(body, dict):
        return None, {}
    message: str | None = None
    errors: dict[str, list[str]] = {}
    meta = body.get("meta")
    if isinstance(meta, dict):
        if isinstance(meta.get("message"), str) and meta["message"]:
            message = meta["message"]
        raw_errors = meta.get("errors")
        if isinstance(raw_errors, dict):
            for key, value in raw_errors.items():
                msgs = value if isinstance(value, list) else [value]
                errors[_normalize_error_key(str(key))] = [str(m) for m in msgs]
        elif isinstance(raw_errors, list) and raw_errors:
            errors[""] = [str(m) for m in raw_errors]
    legacy = body.get("errors")
    if isinstance(legacy, dict) and message is None and isinstance(legacy.get("message"), str):
        message = legacy["message"]
    if message is None and isinstance(body.get("message"), str):
        message = body["message"]
    return message, errors


# --------------------------------------------------------------------------- envelopes


def _is_true(value: Any) -> bool:
    return value is True or value == 1 or value in ("1", "true", "True")


def unwrap(body: Any) -> tuple[Any, dict[str, Any]]:
    """`(data, meta)` of a 2xx body; unwraps `data` only for a `{"success": ...}` object.

    Accepts the array-wrapped envelope; `success: false` is a failure whatever the status.
    Anything without a `success` key (bare arrays and bare objects) is the payload itself.
    """
    if (
        isinstance(body, list)
        and len(body) == 1
        and isinstance(body[0], dict)
        and "success" in body[0]
    ):
        body = body[0]
    if isinstance(body, dict) and "success" in body:
        if not _is_true(body["success"]):
            message, errors = parse_error_body(body)
            raise ApiError(message or "success: false in a 2xx answer", errors=errors)
        meta = body.get("meta")
        return body.get("data"), meta if isinstance(meta, dict) else {}
    return body, {}


def expected_shape(endpoint: Endpoint) -> type | None:
    """The Python type of `data` for an endpoint's 200 answer."""
    if endpoint.envelope is Envelope.BARE_OBJECT:
        return dict
    if endpoint.name == AUTH.name:
        return dict
    return list


# --------------------------------------------------------------------------- stats


@dataclass
class EndpointStats:
    requests: int = 0
    retries: int = 0
    rate_limited_429: int = 0
    server_errors_5xx: int = 0
    bytes_received: int = 0
    pages: int = 0
    rows: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


@dataclass
class RequestStats:
    """What a client did: every HTTP attempt counts as a request (retries included)."""

    requests: int = 0
    retries: int = 0
    rate_limited_429: int = 0
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
                self.rate_limited_429 += 1
                ep.rate_limited_429 += 1
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

    def snapshot(self) -> "RequestStats":
        """A consistent copy (for before/after deltas while worker threads keep counting)."""
        with self._lock:
            return RequestStats(
                requests=self.requests,
                retries=self.retries,
                rate_limited_429=self.rate_limited_429,
                server_errors_5xx=self.server_errors_5xx,
                network_errors=self.network_errors,
                bytes_received=self.bytes_received,
                pages=self.pages,
                rows=self.rows,
                by_endpoint={
                    name: EndpointStats(**{**ep.__dict__, "statuses": dict(ep.statuses)})
                    for name, ep in self.by_endpoint.items()
                },
            )

    def as_dict(self) -> dict[str, Any]:
        """A plain-dict copy, safe to log or put in asset metadata."""
        snap = self.snapshot()
        out: dict[str, Any] = {
            k: getattr(snap, k)
            for k in (
                "requests",
                "retries",
                "rate_limited_429",
                "server_errors_5xx",
                "network_errors",
                "bytes_received",
                "pages",
                "rows",
            )
        }
        out["by_endpoint"] = {name: dict(ep.__dict__) for name, ep in snap.by_endpoint.items()}
        return out


# --------------------------------------------------------------------------- rate budget


def budget_key(base_url: str, partner_token: str) -> str:
    """A file-name-safe identity of (API, partner); a hash, so the token never hits the disk."""
    digest = hashlib.sha256(f"{base_url.rstrip('/')}\0{partner_token}".encode()).hexdigest()
    return digest[:24]


class RateBudget:
    """A GCRA request budget shared by every thread and process that opens the same state file.

    Each `acquire()` reserves the next free slot (theoretical arrival time, "tat") under an
    exclusive `flock`, then sleeps outside the lock until its slot: callers queue fairly, the
    budget is used fully while work is queued, and it never exceeds the current rate. The
    state is three floats of wall-clock time, so separate processes agree on it.

    On a 429 the shared rate halves (floor `MIN_RATE_FACTOR`) and recovers linearly.
    `rate=None` or `0` means unlimited (benchmarks): acquire() returns at once.
    """

    def __init__(
        self,
        rate: float | None,
        state_file: Path | None = None,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = float(rate) if rate else None
        self.state_file = state_file
        self._clock = clock
        self._sleep = sleep
        self._thread_lock = threading.Lock()
        self._mem: dict[str, float] = {"tat": 0.0, "factor": 1.0, "cut_at": 0.0}
        if state_file is not None:
            # Owner-only, like the data directory it lives in (the state is timing, but a
            # world-readable directory under the data dir would be the only one).
            state_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)

    @property
    def unlimited(self) -> bool:
        return self.rate is None

    @contextlib.contextmanager
    def _state(self) -> Iterator[dict[str, float]]:
        with self._thread_lock:
            if self.state_file is None:
                yield self._mem
                return
            fd = os.open(self.state_file, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                raw = os.read(fd, 4096)
                try:
                    loaded = orjson.loads(raw) if raw else {}
                    state = {k: float(loaded[k]) for k in ("tat", "factor", "cut_at")}
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                    state = {"tat": 0.0, "factor": 1.0, "cut_at": 0.0}
                yield state
                data = orjson.dumps(state)
                os.lseek(fd, 0, os.SEEK_SET)
                os.ftruncate(fd, 0)
                os.write(fd, data)
            finally:
                os.close(fd)  # closing releases the flock

    def _factor(self, state: Mapping[str, float], now: float) -> float:
        recovered = state["factor"] + max(0.0, now - state["cut_at"]) * RATE_RECOVERY_PER_S
        return min(1.0, max(MIN_RATE_FACTOR, recovered))

    def current_rate(self) -> float | None:
        """The rate in force right now (after any 429 cut), or None when unlimited."""
        if self.rate is None:
            return None
        with self._state() as state:
            return self.rate * self._factor(state, self._clock())

    def acquire(self) -> float:
        """Wait for this caller's slot; returns the seconds waited."""
        if self.rate is None:
            return 0.0
        with self._state() as state:
            now = self._clock()
            interval = 1.0 / (self.rate * self._factor(state, now))
            slot = max(state["tat"], now)
            state["tat"] = slot + interval
        wait = slot - now
        if wait > 0:
            self._sleep(wait)
        return max(wait, 0.0)

    def penalize(self) -> None:
        """A 429 came back: halve the shared rate (once per cooldown) so every caller slows."""
        if self.rate is None:
            return
        with self._state() as state:
            now = self._clock()
            if now - state["cut_at"] < RATE_CUT_COOLDOWN_S:
                return
            factor = max(MIN_RATE_FACTOR, self._factor(state, now) / 2)
            state["factor"] = factor
            state["cut_at"] = now
            # Push the queue back by one new interval so the next slot respects the lower rate.
            state["tat"] = max(state["tat"], now) + 1.0 / (self.rate * factor)
        log.warning("429 from the API: shared rate cut to %.2f req/s", self.rate * factor)


# --------------------------------------------------------------------------- session


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), capped."""
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
    return min(max(seconds, 0.0), RETRY_AFTER_MAX_S)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = MAX_ATTEMPTS
    backoff_base_s: float = BACKOFF_BASE_S
    backoff_max_s: float = BACKOFF_MAX_S

    def backoff(self, attempt: int, jitter: float) -> float:
        """Delay before attempt `attempt + 1`: exponential with "equal jitter" (half random)."""
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2.0 ** (attempt - 1))
        return float(ceiling / 2 + ceiling / 2 * jitter)


QueryValue = str | int | float | Sequence[int | str] | None


def encode_params(
    params: Mapping[str, QueryValue], array_params: Sequence[str], encoding: ArrayEncoding
) -> list[tuple[str, str | int | float | bool | None]]:
    """Query pairs; array parameters as `k=1,2` or `k[]=1&k[]=2` (CONTRACT §1.5)."""
    pairs: list[tuple[str, str | int | float | bool | None]] = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, list | tuple):
            if key not in array_params:
                raise ValueError(f"{key} is not an array parameter of this endpoint")
            if encoding is ArrayEncoding.COMMA:
                pairs.append((key, ",".join(str(v) for v in value)))
            else:
                pairs.extend((f"{key}[]", str(v)) for v in value)
        else:
            pairs.append((key, str(value)))
    return pairs


class ApiSession:
    """Authenticated, budgeted, retrying access to one Altegio API identity.

    Thread-safe: one session is shared by the client's worker threads.
    """

    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        *,
        budget: RateBudget,
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout | None = None,
        stats: RequestStats | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        array_encoding: ArrayEncoding = ArrayEncoding.BRACKETS,
        transport: httpx.BaseTransport | None = None,
        max_connections: int = 8,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.base_url = check_base_url(base_url)
        self.max_body_bytes = max_body_bytes
        self._credentials = credentials
        self.budget = budget
        self.retry = retry or RetryPolicy()
        self.stats = stats or RequestStats()
        self.array_encoding = array_encoding
        self._sleep = sleep
        self._jitter = jitter
        self._user_token: str | None = credentials.user_token
        self._user_token_from_login = False
        self._auth_lock = threading.Lock()
        self._client = httpx.Client(
            timeout=timeout
            or httpx.Timeout(
                connect=CONNECT_TIMEOUT_S,
                read=READ_TIMEOUT_S,
                write=WRITE_TIMEOUT_S,
                pool=POOL_TIMEOUT_S,
            ),
            transport=transport,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"ApiSession(base_url={self.base_url!r}, credentials={self._credentials!r})"

    def close(self) -> None:
        self._client.close()

    # -- auth

    def _auth_hint(self) -> str:
        if self._user_token_from_login or not self._credentials.user_token:
            return f"check {PARTNER_TOKEN_ENV} and {LOGIN_ENV}/{PASSWORD_ENV}"
        if self._credentials.can_login:
            return (
                f"check {PARTNER_TOKEN_ENV}; {USER_TOKEN_ENV} was refused and re-login with "
                f"{LOGIN_ENV}/{PASSWORD_ENV} did not help"
            )
        return (
            f"check {USER_TOKEN_ENV} (expired or revoked? a password change regenerates it) and "
            f"{PARTNER_TOKEN_ENV}, or set {LOGIN_ENV}/{PASSWORD_ENV} to log in instead"
        )

    def _current_user_token(self) -> str:
        with self._auth_lock:
            if self._user_token is None:
                self._login_locked()
            assert self._user_token is not None
            return self._user_token

    def _relogin(self, failed_token: str) -> None:
        """After a 401: log in again, unless another thread already replaced the token."""
        with self._auth_lock:
            if self._user_token == failed_token:
                self._login_locked()

    def _login_locked(self) -> None:
        creds = self._credentials
        if not creds.can_login:
            raise AuthError(
                "no user token and no login/password to obtain one",
                endpoint=AUTH.name,
                hint=f"set {USER_TOKEN_ENV}, or {LOGIN_ENV} and {PASSWORD_ENV}",
            )
        log.info("logging in to %s (POST %s)", self.base_url, AUTH.path)
        try:
            data, _ = self._send(
                AUTH,
                AUTH.path,
                json_body={"login": creds.login, "password": creds.password},
                user_token=None,
                allow_reauth=False,
            )
        except AuthError as exc:
            raise AuthError(
                exc.message,
                status=exc.status,
                errors=exc.errors,
                url=exc.url,
                endpoint=AUTH.name,
                hint=f"login refused: check {LOGIN_ENV}/{PASSWORD_ENV} and {PARTNER_TOKEN_ENV}",
            ) from None
        token = data.get("user_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise BadResponse("POST /auth answered without a user_token", endpoint=AUTH.name)
        self._user_token = token
        self._user_token_from_login = True

    def _headers(self, user_token: str | None) -> dict[str, str]:
        auth = f"Bearer {self._credentials.partner_token}"
        if user_token:
            auth += f", User {user_token}"
        return {
            "Authorization": auth,
            "Accept": ACCEPT_HEADER,
            "Content-Type": "application/json",
        }

    # -- requests

    def call(
        self,
        endpoint: Endpoint,
        path: str,
        *,
        params: Mapping[str, QueryValue] | None = None,
        chain_id: int | None = None,
    ) -> tuple[Any, dict[str, Any]]:
        """`(data, meta)` of one successful request, after retries; typed error otherwise."""
        return self._send(
            endpoint,
            path,
            params=params,
            chain_id=chain_id,
            user_token=self._current_user_token(),
            allow_reauth=self._credentials.can_login,
        )

    def _send(
        self,
        endpoint: Endpoint,
        path: str,
        *,
        params: Mapping[str, QueryValue] | None = None,
        json_body: Mapping[str, Any] | None = None,
        chain_id: int | None = None,
        user_token: str | None,
        allow_reauth: bool,
    ) -> tuple[Any, dict[str, Any]]:
        url = self.base_url + path
        query = encode_params(params or {}, endpoint.array_params, self.array_encoding)
        content = orjson.dumps(json_body) if json_body is not None else None
        shape = expected_shape(endpoint)
        attempt = 0
        reauthed = False
        last_problem = ""
        while True:
            attempt += 1
            self.budget.acquire()
            delay: float | None = None
            try:
                response, body_bytes = self._fetch(
                    endpoint.method, url, query, content, self._headers(user_token)
                )
            except _TooLarge as exc:
                self.stats.record_response(endpoint.name, exc.status, exc.size)
                raise BodyTooLarge(
                    f"response body exceeds the {self.max_body_bytes:,}-byte limit "
                    f"(MAX_BODY_BYTES; {exc.size:,}+ bytes); refused without reading it all",
                    status=exc.status,
                    url=_safe_url(response_url(url, query)),
                    endpoint=endpoint.name,
                    chain_id=chain_id,
                ) from None
            except httpx.TransportError as exc:
                # Timeouts, refused/dropped connections, truncated bodies (incomplete
                # Content-Length) all land here; none says anything about the data.
                self.stats.record_network_error(endpoint.name)
                last_problem = f"{type(exc).__name__}: {exc}"
                if attempt >= self.retry.max_attempts:
                    raise NetworkError(
                        f"gave up after {attempt} attempts; last: {last_problem}",
                        url=_safe_url(response_url(url, query)),
                        endpoint=endpoint.name,
                        chain_id=chain_id,
                    ) from None
                self._pause(endpoint, attempt, None, last_problem)
                continue

            status = response.status_code
            self.stats.record_response(endpoint.name, status, len(body_bytes))
            safe = _safe_url(response.url)

            if status in RETRYABLE_STATUSES:
                if status == 429:
                    self.budget.penalize()
                message, errors = parse_error_body(_loads_or_none(body_bytes))
                last_problem = f"HTTP {status}" + (f" {message}" if message else "")
                if attempt >= self.retry.max_attempts:
                    cls: type[ApiError] = RateLimited if status == 429 else ServerError
                    raise cls(
                        message or f"HTTP {status} after {attempt} attempts",
                        status=status,
                        errors=errors,
                        url=safe,
                        endpoint=endpoint.name,
                        chain_id=chain_id,
                    )
                delay = parse_retry_after(response.headers.get("Retry-After"))
                self._pause(endpoint, attempt, delay, last_problem)
                continue

            if status == 401 and allow_reauth and not reauthed and user_token is not None:
                reauthed = True
                log.info("401 from %s: logging in again once", endpoint.name)
                self._relogin(user_token)
                user_token = self._current_user_token()
                continue

            if status >= 400:
                raise self._error(endpoint, status, body_bytes, safe, chain_id)

            if not body_bytes.strip():
                data_meta: tuple[Any, dict[str, Any]] = (None, {})
                if shape is list:
                    data_meta = ([], {})
                return data_meta
            try:
                body = orjson.loads(body_bytes)
                data, meta = unwrap(body)
                if data is None and shape is list:
                    data = []
                if shape is not None and not isinstance(data, shape):
                    raise BadResponse(
                        f"expected a JSON {shape.__name__} of records, got {type(data).__name__}"
                    )
            except ApiError as exc:
                if not isinstance(exc, BadResponse):
                    # success:false inside a 2xx: the API said no; retrying will not change it.
                    raise type(exc)(
                        exc.message,
                        status=status,
                        errors=exc.errors,
                        url=safe,
                        endpoint=endpoint.name,
                        chain_id=chain_id,
                    ) from None
                last_problem = exc.message or "bad body"
            except orjson.JSONDecodeError as exc:
                content_type = response.headers.get("Content-Type", "none")
                last_problem = f"body is not valid JSON (content-type {content_type}: {exc})"
            else:
                return data, meta
            if attempt >= self.retry.max_attempts:
                raise BadResponse(
                    f"gave up after {attempt} attempts; last: {last_problem}",
                    status=status,
                    url=safe,
                    endpoint=endpoint.name,
                    chain_id=chain_id,
                )
            self._pause(endpoint, attempt, None, last_problem)

    def _fetch(
        self,
        method: str,
        url: str,
        query: list[tuple[str, str | int | float | bool | None]],
        content: bytes | None,
        headers: dict[str, str],
    ) -> tuple[httpx.Response, bytes]:
        """One response and its body, read in chunks and refused past `max_body_bytes`."""
        request = self._client.build_request(
            method, url, params=query, content=content, headers=headers
        )
        response = self._client.send(request, stream=True)
        try:
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > self.max_body_bytes:
                raise _TooLarge(response.status_code, int(declared))
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > self.max_body_bytes:
                    raise _TooLarge(response.status_code, size)
                chunks.append(chunk)
        finally:
            response.close()
        return response, b"".join(chunks)

    def _pause(self, endpoint: Endpoint, attempt: int, retry_after: float | None, why: str) -> None:
        self.stats.record_retry(endpoint.name)
        jitter = self._jitter()
        delay = self.retry.backoff(attempt, jitter)
        if retry_after is not None:
            # Retry-After is the earliest moment, and every thread refused together is told the
            # same one: each waits a random part of a second more, so they do not all come back
            # at once and lose again (seen in the reliability run's 429 storm: six losses in a
            # row for one request among threads that slept exactly the same second).
            delay = max(delay, retry_after + jitter * RETRY_AFTER_SPREAD_S)
        log.info(
            "%s: %s; retry %d/%d in %.2fs",
            endpoint.name,
            why,
            attempt,
            self.retry.max_attempts - 1,
            delay,
        )
        self._sleep(delay)

    def _error(
        self, endpoint: Endpoint, status: int, body: bytes, url: str | None, chain_id: int | None
    ) -> ApiError:
        message, errors = parse_error_body(_loads_or_none(body))
        kwargs: dict[str, Any] = {
            "status": status,
            "errors": errors,
            "url": url,
            "endpoint": endpoint.name,
            "chain_id": chain_id,
        }
        if status == 401:
            return AuthError(message, hint=self._auth_hint(), **kwargs)
        if status == 403:
            return AccessDenied(
                message,
                hint="the user lacks this chain right; other chains are unaffected",
                **kwargs,
            )
        if status == 404:
            return NotFound(message, **kwargs)
        if status in (400, 422):
            return ValidationError(message, **kwargs)
        return ApiError(message, **kwargs)


class _TooLarge(Exception):
    def __init__(self, status: int, size: int) -> None:
        super().__init__(status, size)
        self.status = status
        self.size = size


def response_url(url: str, query: list[tuple[str, str | int | float | bool | None]]) -> str:
    return str(httpx.URL(url, params=query))


def _loads_or_none(body: bytes) -> Any:
    try:
        return orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return None
