"""`ApiSession`: "call operation E at path P" -> parsed `(data, meta)` or a typed error.

A call passes through layers, each one short:

    call -> auth refresh -> retry loop -> budget -> transport -> parse

* budget (`RateBudget.acquire`): every attempt takes a slot of the run's shared budget;
* transport (`_transport`): one HTTP exchange, its body read with a size limit; no answer
  becomes `ConnectionFailed`;
* parse (`envelope.read_answer`): status and body -> `(data, meta)` or the typed error;
* retry loop (`RetryLoop`): a transient failure (policy: retryable status, no answer, broken
  body) waits and tries again until the policy's time budget is spent; a call not safe to
  repeat is retried only when the attempt provably changed nothing, else `OutcomeUnknown`;
* auth refresh (`_with_auth_refresh`): a 401 logs in again once and repeats the call.

Paging lives one level up, in `client.py`. Secrets travel only in request headers and the auth
body; nothing here puts them in a log record, an exception or a repr.
"""

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import orjson

from pipelines.altegio.endpoints import ACCEPT_HEADER, AUTH, ArrayEncoding, Endpoint
from pipelines.altegio.http.auth import UserTokens
from pipelines.altegio.http.budget import RateBudget
from pipelines.altegio.http.credentials import (
    LOGIN_ENV,
    PARTNER_TOKEN_ENV,
    PASSWORD_ENV,
    USER_TOKEN_ENV,
    Credentials,
)
from pipelines.altegio.http.envelope import read_answer
from pipelines.altegio.http.errors import (
    ApiError,
    AuthError,
    BadResponse,
    BodyTooLarge,
    ConnectionFailed,
    OutcomeUnknown,
    safe_url,
)
from pipelines.altegio.http.policy import MAX_BODY_BYTES, RetryPolicy, Timeouts, never_applied
from pipelines.altegio.http.stats import RequestStats
from pipelines.altegio.http.urls import QueryPairs, QueryValue, check_base_url, encode_params

log = logging.getLogger(__name__)

T = TypeVar("T")

# Transport failures that happen before a byte of the request leaves: a call that is not safe
# to repeat may still be retried after one of these.
NOTHING_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class Request:
    """One call, ready to send as often as the retry policy allows."""

    endpoint: Endpoint
    url: str
    query: QueryPairs
    content: bytes | None = field(repr=False)  # the JSON body (the auth body holds a password)
    safe_to_repeat: bool
    context: dict[str, Any]  # endpoint, chain_id, url: what every error of this call carries


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: httpx.Headers


class RetryLoop:
    """Attempts of one call under a `RetryPolicy`, each after a slot of the shared budget.

    The time budget counts from the first attempt and leaves out the time spent queueing for
    budget slots: that is the run's own pacing, not the server's trouble.
    """

    def __init__(
        self,
        policy: RetryPolicy,
        budget: RateBudget,
        stats: RequestStats,
        *,
        sleep: Callable[[float], None],
        jitter: Callable[[], float],
        clock: Callable[[], float],
    ) -> None:
        self.policy = policy
        self._budget = budget
        self._stats = stats
        self._sleep = sleep
        self._jitter = jitter
        self._clock = clock

    def run(self, request: Request, attempt: Callable[[], T]) -> T:
        started = self._clock()
        queued = 0.0
        number = 0
        while True:
            number += 1
            queued += self._budget.acquire()
            try:
                return attempt()
            except ApiError as exc:
                if not self.policy.is_transient(exc):
                    raise
                failure = exc
            elapsed = self._clock() - started - queued
            self._wait_or_raise(request, failure, number, elapsed)

    def _wait_or_raise(
        self, request: Request, failure: ApiError, number: int, elapsed: float
    ) -> None:
        if failure.status == 429:
            self._budget.penalize()
        if not request.safe_to_repeat and not never_applied(failure):
            raise OutcomeUnknown(
                f"{_describe(failure)}; the server may have applied it",
                status=failure.status,
                **request.context,
            ) from None
        delay = self.policy.next_delay(number, elapsed, self._jitter(), failure.retry_after_s)
        if delay is None:
            raise failure.replaced(attempts=number, elapsed_s=elapsed) from None
        self._stats.record_retry(request.endpoint.name)
        log.info(
            "%s: %s; retry %d in %.2fs (%.1f of %.0f s used)",
            request.endpoint.name,
            _describe(failure),
            number,
            delay,
            elapsed,
            self.policy.max_elapsed_s,
        )
        self._sleep(delay)


def _describe(failure: ApiError) -> str:
    if isinstance(failure, ConnectionFailed):
        return str(failure.message)
    head = f"HTTP {failure.status}" if failure.status is not None else type(failure).__name__
    return f"{head}: {failure.message}" if failure.message else head


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
        timeouts: Timeouts | None = None,
        stats: RequestStats | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
        array_encoding: ArrayEncoding = ArrayEncoding.BRACKETS,
        transport: httpx.BaseTransport | None = None,
        max_connections: int = 8,
        max_body_bytes: int = MAX_BODY_BYTES,
        proxy: str | None = None,
    ) -> None:
        self.base_url = check_base_url(base_url)
        self.max_body_bytes = max_body_bytes
        self._credentials = credentials
        self.budget = budget
        self.stats = stats or RequestStats()
        self.array_encoding = array_encoding
        self.retry_loop = RetryLoop(
            retry or RetryPolicy(), budget, self.stats, sleep=sleep, jitter=jitter, clock=clock
        )
        self._tokens = UserTokens(credentials, self._login)
        self._client = httpx.Client(
            timeout=(timeouts or Timeouts()).as_httpx(),
            transport=transport,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            follow_redirects=False,
            # The identity's egress proxy (it may carry a password: it is never rendered).
            proxy=proxy,
        )

    def __repr__(self) -> str:
        return f"ApiSession(base_url={self.base_url!r}, credentials={self._credentials!r})"

    def close(self) -> None:
        self._client.close()

    def call(
        self,
        endpoint: Endpoint,
        path: str,
        *,
        params: Mapping[str, QueryValue] | None = None,
        json: Mapping[str, Any] | None = None,
        chain_id: int | None = None,
        idempotent: bool | None = None,
    ) -> tuple[Any, dict[str, Any]]:
        """`(data, meta)` of one successful call, after retries; typed error otherwise.

        The method is the endpoint's, `json` the body of a write. `idempotent` overrides the
        endpoint's `safe_to_repeat` for this call (a PUT with only some fields is not).
        """
        return self._with_auth_refresh(
            self._request(endpoint, path, params, json, chain_id, idempotent)
        )

    def _request(
        self,
        endpoint: Endpoint,
        path: str,
        params: Mapping[str, QueryValue] | None,
        json: Mapping[str, Any] | None,
        chain_id: int | None,
        idempotent: bool | None,
    ) -> Request:
        url = self.base_url + path
        query = encode_params(params or {}, endpoint.array_params, self.array_encoding)
        return Request(
            endpoint=endpoint,
            url=url,
            query=query,
            content=None if json is None else orjson.dumps(json),
            safe_to_repeat=endpoint.safe_to_repeat if idempotent is None else idempotent,
            context={
                "endpoint": endpoint.name,
                "chain_id": chain_id,
                "url": safe_url(httpx.URL(url, params=query)),
            },
        )

    # -- layer: auth refresh

    def _with_auth_refresh(self, request: Request) -> tuple[Any, dict[str, Any]]:
        token = self._tokens.current()
        try:
            return self._send(request, token)
        except AuthError as exc:
            if not self._tokens.can_refresh:
                raise exc.replaced(hint=self._tokens.hint()) from None
        log.info("401 from %s: logging in again once", request.endpoint.name)
        token = self._tokens.refresh(token)
        try:
            return self._send(request, token)
        except AuthError as exc:
            raise exc.replaced(hint=self._tokens.hint()) from None

    def _login(self) -> str:
        creds = self._credentials
        if not creds.can_login:
            raise AuthError(
                "no user token and no login/password to obtain one",
                endpoint=AUTH.name,
                hint=f"set {USER_TOKEN_ENV}, or {LOGIN_ENV} and {PASSWORD_ENV}",
            )
        log.info("logging in to %s (POST %s)", self.base_url, AUTH.path)
        body = {"login": creds.login, "password": creds.password}
        try:
            data, _ = self._send(self._request(AUTH, AUTH.path, None, body, None, None), None)
        except AuthError as exc:
            raise exc.replaced(
                hint=f"login refused: check {LOGIN_ENV}/{PASSWORD_ENV} and {PARTNER_TOKEN_ENV}"
            ) from None
        token = data.get("user_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise BadResponse("POST /auth answered without a user_token", endpoint=AUTH.name)
        return token

    # -- layers: retry loop, then budget -> transport -> parse per attempt

    def _send(self, request: Request, user_token: str | None) -> tuple[Any, dict[str, Any]]:
        def attempt() -> tuple[Any, dict[str, Any]]:
            answer = self._transport(request, user_token)
            return read_answer(
                request.endpoint, answer.status, answer.body, answer.headers, request.context
            )

        return self.retry_loop.run(request, attempt)

    def _transport(self, request: Request, user_token: str | None) -> Answer:
        """One HTTP exchange; no answer (timeout, refused or dropped connection, a body cut
        short) becomes `ConnectionFailed`."""
        http_request = self._client.build_request(
            request.endpoint.method,
            request.url,
            params=request.query,
            content=request.content,
            headers=self._headers(user_token),
        )
        try:
            response = self._client.send(http_request, stream=True)
            try:
                body = self._read_body(request, response)
            finally:
                response.close()
        except httpx.TransportError as exc:
            self.stats.record_network_error(request.endpoint.name)
            raise ConnectionFailed(
                f"{type(exc).__name__}: {exc}",
                request_sent=not isinstance(exc, NOTHING_SENT),
                **request.context,
            ) from None
        self.stats.record_response(request.endpoint.name, response.status_code, len(body))
        return Answer(response.status_code, body, response.headers)

    def _read_body(self, request: Request, response: httpx.Response) -> bytes:
        """The body, read in chunks and refused past `max_body_bytes` (never retried: a bigger
        answer will not shrink)."""
        declared = response.headers.get("Content-Length", "")
        size = int(declared) if declared.isdigit() else 0
        chunks: list[bytes] = []
        if size <= self.max_body_bytes:
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > self.max_body_bytes:
                    break
                chunks.append(chunk)
        if size > self.max_body_bytes:
            self.stats.record_response(request.endpoint.name, response.status_code, size)
            raise BodyTooLarge(
                f"response body exceeds the {self.max_body_bytes:,}-byte limit "
                f"(MAX_BODY_BYTES; {size:,}+ bytes); refused without reading it all",
                status=response.status_code,
                **request.context,
            )
        return b"".join(chunks)

    def _headers(self, user_token: str | None) -> dict[str, str]:
        auth = f"Bearer {self._credentials.partner_token}"
        if user_token:
            auth += f", User {user_token}"
        return {
            "Authorization": auth,
            "Accept": ACCEPT_HEADER,
            "Content-Type": "application/json",
        }
