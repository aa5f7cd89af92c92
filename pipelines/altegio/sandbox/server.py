"""A loopback HTTP server that behaves like the Altegio B2B v1 API for the loyalty extract.

Paths, paging styles, envelopes and access flags come from the endpoint declarations (lists:
which handler serves an endpoint with which of the dataset's records is its source's `Served`
declaration, `pipelines.altegio.sources`) and `pipelines.altegio.operations` (reads by id and
writes, answered by `writes.py`); the data comes from the `World` (the generated dataset and what
happened since); misbehaviour comes from `Faults`. Control paths under `/_sandbox/`: stats,
reset, the day clock, the write log.
Transactions pages are assembled from per-(chain, day) pre-rendered JSON fragments so the
sandbox is never the bottleneck of a benchmark.
"""

import contextlib
import copy
import logging
import math
import re
import socket
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import islice
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from pipelines.altegio.endpoints import ACCEPT_HEADER, AUTH, ENDPOINTS, Endpoint, TotalIn
from pipelines.altegio.operations import OPERATIONS, Operation
from pipelines.altegio.sandbox import writes
from pipelines.altegio.sandbox.config import Faults, SandboxConfig
from pipelines.altegio.sandbox.data import (
    TRANSACTION_TYPES,
    Record,
    first_transaction_date,
    parse_timestamp,
    promotion_view,
)
from pipelines.altegio.sandbox.evolve import advance_to, follow_wall_clock
from pipelines.altegio.sandbox.request_log import RequestLog
from pipelines.altegio.sandbox.world import World
from pipelines.altegio.sources import SOURCES, ListFilter, Match, Served, Serving

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
UNKNOWN_ENDPOINT = "unknown"
MSG_AUTH = "Authentication needed."
MSG_FORBIDDEN = "Access denied."
MSG_MEMBERSHIP_FILTER = "Subscription IDs or date range not specified."
MSG_VALIDATION = "An error has occurred"
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
INT_RE = re.compile(r"^\d{1,15}$")
# Rendered transaction rows kept across requests (bounds the cache's memory), oldest chain-days
# evicted first.
TX_CACHE_ROWS = 400_000
IDLE_CONNECTION_TIMEOUT_S = 30.0
# What a peer closing its end mid-request raises while we read or write.
DROPPED_CONNECTION_ERRORS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)

# The later "canonical" spellings the backend also routes (CONTRACT §1.1).
PATH_ALIASES = (("/groups", "/chains"), ("/chain/", "/chains/"), ("/company/", "/locations/"))
# A clock step longer than this is a typo, not a simulation anyone waits for.
MAX_CLOCK_STEP_DAYS = 3660


@dataclass
class Response:
    """One answer before transport faults are applied."""

    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "application/json; charset=utf-8"
    rows: int | None = None  # rows in a served page, for the page-size stats


class _HttpError(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def _json(status: int, payload: Any, *, rows: int | None = None) -> Response:
    return Response(status, orjson.dumps(payload), rows=rows)


def _error(status: int, meta: Any, *, with_data: bool = True) -> _HttpError:
    payload: dict[str, Any] = {"success": False}
    if with_data:
        payload["data"] = None
    payload["meta"] = meta
    return _HttpError(_json(status, payload))


def _not_found(meta: Any) -> _HttpError:
    return _error(404, meta)


def _validation(status: int, errors: dict[str, list[str]], message: str) -> _HttpError:
    return _error(status, {"message": message, "errors": errors})


def _envelope(data: bytes, meta: Any) -> bytes:
    return b'{"success":true,"data":' + data + b',"meta":' + orjson.dumps(meta) + b"}"


def _array(fragments: list[bytes]) -> bytes:
    return b"[" + b",".join(fragments) + b"]"


@dataclass(frozen=True)
class _Request:
    """One routed API request: its endpoint, what the endpoint serves, for which chain, with
    which path parameters and query."""

    endpoint: Endpoint
    served: Served
    chain_id: int
    params: dict[str, int]
    query: dict[str, list[str]]


_Answer = Callable[[_Request], Response]


@dataclass(frozen=True)
class _Route:
    endpoint: Endpoint
    pattern: re.Pattern[str]


def _routes() -> list[_Route]:
    return [_Route(e, pattern) for e in ENDPOINTS.values() for pattern in _patterns(e.path)]


def _patterns(path: str) -> list[re.Pattern[str]]:
    """One pattern per spelling the backend routes for a declared path."""
    spellings = {path}
    for old, new in PATH_ALIASES:
        if path.startswith(old):
            spellings.add(new + path[len(old) :])
    patterns = []
    for spelling in sorted(spellings):
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", spelling)
        patterns.append(re.compile(f"^{regex}/?$"))
    return patterns


@dataclass(frozen=True)
class _OperationRoute:
    operation: Operation
    pattern: re.Pattern[str]


def _operation_routes() -> list[_OperationRoute]:
    return [
        _OperationRoute(op, pattern) for op in OPERATIONS.values() for pattern in _patterns(op.path)
    ]


@dataclass(frozen=True)
class _TxDay:
    """Rendered transactions of one chain-day plus the columns the filters need."""

    fragments: list[bytes]
    location_ids: list[int]
    type_ids: list[int]
    visit_ids: list[int]


class _Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.requests: dict[str, dict[str, int]] = {}
            self.faults: dict[str, int] = {}
            self.page_sizes: dict[str, dict[str, int]] = {}
            self.by_identity: dict[str, int] = {}
            self.total = 0

    def record(self, endpoint: str, status: int, rows: int | None) -> None:
        with self._lock:
            self.total += 1
            by_status = self.requests.setdefault(endpoint, {})
            by_status[str(status)] = by_status.get(str(status), 0) + 1
            if rows is not None:
                sizes = self.page_sizes.setdefault(endpoint, {})
                sizes[str(rows)] = sizes.get(str(rows), 0) + 1

    def fault(self, name: str) -> None:
        with self._lock:
            self.faults[name] = self.faults.get(name, 0) + 1

    def identity(self, number: int) -> None:
        with self._lock:
            self.by_identity[str(number)] = self.by_identity.get(str(number), 0) + 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(
                {
                    "requests": self.requests,
                    "faults": self.faults,
                    "page_sizes": self.page_sizes,
                    "requests_by_identity": self.by_identity,
                    "total_requests": self.total,
                }
            )


class _RateLimiter:
    """Token bucket per client IP."""

    def __init__(self, rate: float, burst: int) -> None:
        self._rate = rate
        self._burst = float(max(1, burst))
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, client: str) -> float:
        """0 when admitted, else seconds until a token is available."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(client, (self._burst, now))
            tokens = min(self._burst, tokens + (now - last) * self._rate)
            if tokens >= 1.0:
                self._buckets[client] = (tokens - 1.0, now)
                return 0.0
            self._buckets[client] = (tokens, now)
            return (1.0 - tokens) / self._rate


class SandboxServer:
    """The sandbox application plus its HTTP listener; use `serve(cfg)` to run one."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.faults: Faults = config.faults
        self.credentials = config.credentials
        self.dataset = World(config)
        self._stats = _Stats()
        self._routes = _routes()
        self._operation_routes = _operation_routes()
        self.requests = RequestLog()
        self._write_counter = 0
        self._counter_lock = threading.Lock()
        self._api_counter = 0
        self._limiter = (
            _RateLimiter(config.rate_limit, config.rate_limit_burst) if config.rate_limit else None
        )
        self._tx_lock = threading.Lock()
        # Keyed by (chain, day, revision): a corrected day renders afresh.
        self._tx_cache: OrderedDict[tuple[int, date, int], _TxDay] = OrderedDict()
        self._tx_cached_rows = 0
        self._stop = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._access = {g["id"]: g["access"] for g in self.dataset.groups()}
        # What each endpoint serves comes from its source's declaration.
        self._served = {s.endpoint: s for src in SOURCES.values() for s in src.served}
        self._answers: dict[Serving, _Answer] = {
            Serving.PAGED_LIST: self._paged_list,
            Serving.BARE_LIST: self._bare_list,
            Serving.TRANSACTIONS: self._transactions,
            Serving.MEMBERSHIPS: self._memberships,
            Serving.PROMOTION_SEARCH: self._promotion_search,
            Serving.PROMOTION: self._promotion,
        }
        # Identity k's credentials are identity_credentials[k - 1] (SandboxConfig.identities).
        self.identity_credentials = [
            config.credentials.numbered(k) for k in range(1, config.identities + 1)
        ]
        self._expected_auth = {
            f"Bearer {c.partner_token}, User {c.user_token}": k
            for k, c in enumerate(self.identity_credentials, start=1)
        }
        self._login_auth = {
            f"Bearer {c.partner_token}": k for k, c in enumerate(self.identity_credentials, start=1)
        }

    # ---------------------------------------------------------------- lifecycle

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT/api/v1` once started."""
        host, port = self.address
        return f"http://{host}:{port}{API_PREFIX}"

    @property
    def address(self) -> tuple[str, int]:
        if self._httpd is None:
            raise RuntimeError("sandbox server is not running")
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        """Bind (free port unless configured) and serve from a daemon thread."""
        # A wall clock starts on the real date (days since the data's end are simulated now,
        # not during the first request).
        follow_wall_clock(self.dataset)
        self._httpd = _HTTPServer((self.config.host, self.config.port), _Handler, self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"altegio-sandbox-{self.address[1]}",
            daemon=True,
        )
        self._thread.start()
        logger.info("altegio sandbox listening on %s", self.base_url)

    def stop(self) -> None:
        """Stop accepting, close open keep-alive connections, join the serving thread."""
        self._stop.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            with self._connections_lock:
                for conn in list(self._connections):
                    with contextlib.suppress(OSError):
                        conn.shutdown(socket.SHUT_RDWR)
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        logger.info("altegio sandbox stopped")

    def stats(self) -> dict[str, Any]:
        """Counters: requests by endpoint name and status, faults by knob, served page sizes."""
        return self._stats.snapshot()

    def reset_stats(self) -> None:
        """Zero the counters, the fault request counters and the write log."""
        self._stats.reset()
        self.requests.clear()
        with self._counter_lock:
            self._api_counter = 0
            self._write_counter = 0

    # ---------------------------------------------------------------- dispatch

    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes, client: str
    ) -> tuple[str, Response, list[str]]:
        """Answer one request: (endpoint name, response, transport faults to apply)."""
        parts = urlsplit(raw_path)
        path = parts.path
        query = parse_qs(parts.query, keep_blank_values=True)
        # Control paths answer both at the root and under the API prefix.
        if path.startswith(API_PREFIX + "/_sandbox/"):
            path = path[len(API_PREFIX) :]
        if path.startswith("/_sandbox/"):
            return "_sandbox", self._control(method, path, body), []
        if self.dataset.clock.follows_wall_clock:
            follow_wall_clock(self.dataset)
        operation, op_params = self._match_operation(method, path)
        if operation is not None:
            return self._operate(operation, op_params, path, query, headers, body, client)
        route, params = self._match(path)
        if route is None or route.endpoint.method != method:
            response = _error(404, {}).response
            self._stats.record(UNKNOWN_ENDPOINT, 404, None)
            return UNKNOWN_ENDPOINT, response, []
        endpoint = route.endpoint
        transport: list[str] = []
        try:
            self._rate_limit(client)
            if endpoint.method == "GET":
                transport, n = self._transport_faults()
                if "error" in transport:
                    raise _HttpError(self._gateway_error(n))
            response = self._dispatch(endpoint, params, query, headers, body)
        except _HttpError as exc:
            response = exc.response
        if response.status != 200:
            transport = [t for t in transport if t in ("slow", "drop")]
        for name in transport:
            self._stats.fault(name)
        self._stats.record(endpoint.name, response.status, response.rows)
        return endpoint.name, response, transport

    def _rate_limit(self, client: str) -> None:
        if self._limiter is None:
            return
        wait = self._limiter.take(client)
        if wait > 0:
            self._stats.fault("rate_limited")
            limited = _json(429, {"success": False, "data": None, "meta": {}})
            if self.config.rate_limit_retry_after:
                limited.headers.append(("Retry-After", str(max(1, math.ceil(wait)))))
            raise _HttpError(limited)

    def _match_operation(self, method: str, path: str) -> tuple[Operation | None, dict[str, int]]:
        if not path.startswith(API_PREFIX + "/"):
            return None, {}
        rel = path[len(API_PREFIX) :]
        for route in self._operation_routes:
            if route.operation.method != method:
                continue
            found = route.pattern.match(rel)
            if found is None:
                continue
            values = found.groupdict()
            if not all(INT_RE.match(v) for v in values.values()):
                return None, {}
            return route.operation, {k: int(v) for k, v in values.items()}
        return None, {}

    def _operate(
        self,
        operation: Operation,
        params: dict[str, int],
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
        client: str,
    ) -> tuple[str, Response, list[str]]:
        """Answer a read by id or a write; writes have their own faults and are logged."""
        transport: list[str] = []
        fault: str | None = None
        applied = False
        payload: Any = None
        try:
            self._rate_limit(client)
            self._check_headers(headers, self._expected_auth)
            chain_id = params["chain_id"]
            # Archive checks neither rights nor the chain (CONTRACT §5.10.2).
            if operation.access_flag is not None:
                self._check_flag(operation.access_flag, chain_id)
            if operation.writes:
                fault = self._write_fault()
                if fault == "error":
                    raise _HttpError(_write_gateway_error(self.faults.write_error_status))
            else:
                transport, n = self._transport_faults()
                if "error" in transport:
                    raise _HttpError(self._gateway_error(n))
            payload = _write_body(body)
            reply = writes.perform(
                writes.Call(
                    world=self.dataset,
                    operation=operation,
                    chain_id=chain_id,
                    ids={k: v for k, v in params.items() if k != "chain_id"},
                    body=payload if isinstance(payload, dict) else {},
                    includes=tuple(_list_param(query, "include")),
                    super_user=self.credentials.super_user,
                    service_links=self.dataset.chain_index(chain_id)
                    in self.config.service_links_chains
                    if self.dataset.has_chain(chain_id)
                    else False,
                    certificate_delete_no_content=self.faults.certificate_type_delete_no_content,
                )
            )
            applied = operation.writes
            response = (
                Response(reply.status, b"")
                if reply.payload is None
                else _json(reply.status, reply.payload)
            )
        except writes.Refusal as refusal:
            response = _error(refusal.status, refusal.meta).response
        except _HttpError as exc:
            response = exc.response
        if operation.writes:
            if fault == "drop":
                self._stats.fault("write_drop")
                transport = ["lose_answer"]
            self.requests.add(
                operation.name,
                operation.method,
                path,
                _loggable(payload, body),
                applied=applied,
                status=response.status,
                fault=fault,
            )
        elif response.status != 200:
            transport = [t for t in transport if t in ("slow", "drop")]
        for name in transport:
            if name != "lose_answer":
                self._stats.fault(name)
        self._stats.record(operation.name, response.status, None)
        return operation.name, response, transport

    def _write_fault(self) -> str | None:
        """'error' (5xx, nothing applied), 'drop' (applied, answer lost) or None."""
        with self._counter_lock:
            self._write_counter += 1
            n = self._write_counter
        f = self.faults
        if f.write_error_every and (n - 1) % f.write_error_every >= (
            f.write_error_every - f.write_error_burst
        ):
            self._stats.fault("write_error")
            return "error"
        if f.write_drop_every and n % f.write_drop_every == 0:
            return "drop"
        return None

    def _match(self, path: str) -> tuple[_Route | None, dict[str, int]]:
        if not path.startswith(API_PREFIX + "/"):
            return None, {}
        rel = path[len(API_PREFIX) :]
        for route in self._routes:
            found = route.pattern.match(rel)
            if found is None:
                continue
            params: dict[str, int] = {}
            for key, value in found.groupdict().items():
                if not INT_RE.match(value):
                    return None, {}
                params[key] = int(value)
            return route, params
        return None, {}

    def _transport_faults(self) -> tuple[list[str], int]:
        with self._counter_lock:
            self._api_counter += 1
            n = self._api_counter
        f = self.faults
        out: list[str] = []
        cycle_position = (n - 1) % f.error_every if f.error_every else -1
        if f.error_every and cycle_position >= f.error_every - f.error_burst:
            out.append("error")
        if f.slow_every and n % f.slow_every == 0:
            out.append("slow")
        if f.drop_every and n % f.drop_every == 0:
            out.append("drop")
        elif f.truncate_every and n % f.truncate_every == 0:
            out.append("truncate")
        return out, n

    def _gateway_error(self, n: int) -> Response:
        f = self.faults
        statuses = f.error_statuses or (502,)
        status = statuses[(n - 1) % len(statuses)]
        self._stats.fault("error")
        text = f"<html><body><h1>{status} Bad Gateway</h1></body></html>".encode()
        if status != 502:
            text = f"<html><body><h1>{status} Service Unavailable</h1></body></html>".encode()
        return Response(status, text, content_type="text/html; charset=utf-8")

    def _control(self, method: str, path: str, body: bytes) -> Response:
        where = path.rstrip("/")
        if method == "GET" and where == "/_sandbox/stats":
            return _json(200, self.stats())
        if method == "POST" and where == "/_sandbox/reset":
            self.reset_stats()
            return _json(200, {"success": True})
        if method == "GET" and where == "/_sandbox/requests":
            return _json(200, {"requests": self.requests.entries()})
        if method == "GET" and where == "/_sandbox/clock":
            return _json(200, self._clock_state({}))
        if method == "POST" and where == "/_sandbox/clock":
            return self._move_clock(body)
        return _json(404, {"success": False, "data": None, "meta": {}})

    def _clock_state(self, step: dict[str, int]) -> dict[str, Any]:
        world = self.dataset
        return {
            **world.clock.snapshot(),
            "last_day_with_data": world.last_day().isoformat(),
            "changes": world.change_counts(),
            "step": step,
        }

    def _move_clock(self, body: bytes) -> Response:
        """`{"days": N}` or `{"date": "YYYY-MM-DD"}`: simulate the days up to the new today."""
        world = self.dataset
        if not world.clock.moves:
            return _json(409, {"message": "the world is static: start the sandbox with --evolve"})
        try:
            request = orjson.loads(body) if body else {}
            if not isinstance(request, dict):
                raise ValueError("a JSON object")
            if "date" in request:
                target = date.fromisoformat(str(request["date"]))
            else:
                days = request.get("days", 1)
                if not isinstance(days, int) or isinstance(days, bool) or days < 0:
                    raise ValueError("days: a whole number of days, 0 or more")
                target = world.clock.today + timedelta(days=days)
        except (ValueError, orjson.JSONDecodeError) as exc:
            return _json(
                400, {"message": f"expected {{'days': N}} or {{'date': 'YYYY-MM-DD'}}: {exc}"}
            )
        if target < world.clock.today:
            return _json(400, {"message": "the clock never moves back"})
        if (target - world.clock.today).days > MAX_CLOCK_STEP_DAYS:
            return _json(400, {"message": f"at most {MAX_CLOCK_STEP_DAYS} days per step"})
        step = advance_to(world, target)
        return _json(200, self._clock_state(step))

    def _check_headers(self, headers: dict[str, str], accepted: Mapping[str, int]) -> int:
        """The number of the identity whose Authorization header this is (401 otherwise)."""
        accept = headers.get("accept", "")
        media, *accept_params = (p.strip() for p in accept.split(";"))
        params_ok = all(p.lower().startswith("charset=") for p in accept_params if p)
        if media.lower() != ACCEPT_HEADER or not params_ok:
            raise _error(401, {"message": MSG_AUTH})
        identity = accepted.get(headers.get("authorization", ""))
        if identity is None:
            raise _error(401, {"message": MSG_AUTH})
        self._stats.identity(identity)
        return identity

    def _dispatch(
        self,
        endpoint: Endpoint,
        params: dict[str, int],
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
    ) -> Response:
        if endpoint.name == AUTH.name:
            return self._auth(headers, body)
        self._check_headers(headers, self._expected_auth)
        served = self._served[endpoint.name]
        if served.serving is Serving.GROUPS:
            data = [self._quirk(endpoint.name, g) for g in self.dataset.groups()]
            return Response(200, _envelope(orjson.dumps(data), []), rows=len(data))
        if "location_id" in params:
            chain_id = self.dataset.chain_of_location(params["location_id"])
            if chain_id is None:
                raise _error(403, {"message": MSG_FORBIDDEN})
        else:
            chain_id = params["chain_id"]
        self._check_access(endpoint, chain_id)
        answer = self._answers[served.serving]
        return answer(_Request(endpoint, served, chain_id, params, query))

    def _auth(self, headers: dict[str, str], body: bytes) -> Response:
        credentials = self.identity_credentials[self._check_headers(headers, self._login_auth) - 1]
        try:
            payload = orjson.loads(body) if body else {}
        except orjson.JSONDecodeError:
            payload = {}
        if (
            not isinstance(payload, dict)
            or payload.get("login") != credentials.login
            or payload.get("password") != credentials.password
        ):
            raise _error(401, {"message": MSG_AUTH})
        user = {
            "id": 123456,
            "user_token": credentials.user_token,
            "name": "Sandbox User",
            "phone": "+13155550175",
            "login": "sandbox",
            "email": credentials.login,
            "avatar": "https://assets.example/avatar/123456.png",
            "is_approved": True,
            "is_email_confirmed": False,
        }
        return _json(201, {"success": True, "data": user, "meta": []})

    def _check_access(self, endpoint: Endpoint, chain_id: int) -> None:
        self._check_flag(endpoint.access_flag, chain_id)

    def _check_flag(self, access_flag: str | None, chain_id: int) -> None:
        """403 unless the chain is the user's and `access_flag` is not "0" there."""
        if not self.dataset.has_chain(chain_id):
            raise _error(403, {"message": MSG_FORBIDDEN})
        if self.faults.forbidden_chain == self.dataset.chain_index(chain_id):
            raise _error(403, {"message": MSG_FORBIDDEN})
        access = self._access[chain_id]
        if access_flag and access.get(access_flag) == "0":
            raise _error(403, {"message": MSG_FORBIDDEN})

    # ---------------------------------------------------------------- paging

    def _page_params(
        self, endpoint: Endpoint, query: dict[str, list[str]]
    ) -> tuple[int, int | None]:
        errors: dict[str, list[str]] = {}
        page = 1
        raw_page = _first(query, "page")
        if raw_page is not None:
            if INT_RE.match(raw_page) and int(raw_page) >= 1:
                page = int(raw_page)
            else:
                errors["page"] = ["The page must be an integer greater than 0."]
        size = endpoint.default_page_size
        size_param = endpoint.paging.size_param
        if size_param is not None:
            raw_size = _first(query, size_param)
            if raw_size is not None:
                if INT_RE.match(raw_size) and int(raw_size) >= 1:
                    size = int(raw_size)
                else:
                    errors[size_param] = [f"The {size_param} must be an integer greater than 0."]
        if errors:
            raise _validation(422, errors, MSG_VALIDATION)
        if size is not None and endpoint.max_page_size is not None:
            size = min(size, endpoint.max_page_size)
        cap = self.faults.page_size_caps.get(endpoint.name, self.faults.page_size_cap)
        if cap is not None:
            size = cap if size is None else min(size, cap)
        if self.faults.stuck_pages:
            page = 1
        return page, size

    def _window(self, page: int, size: int | None) -> tuple[int, int | None]:
        """[start, stop) row offsets of a page (stop None = to the end)."""
        if size is None:
            return (0, None) if page == 1 else (0, 0)
        start = (page - 1) * size
        if self.faults.overlap_pages and page > 1:
            start -= 1
        return start, start + size

    def _paged(
        self,
        endpoint: Endpoint,
        rows: list[Record],
        query: dict[str, list[str]],
    ) -> Response:
        page, size = self._page_params(endpoint, query)
        start, stop = self._window(page, size)
        chunk = rows[start:stop]
        fragments = [orjson.dumps(self._quirk(endpoint.name, r)) for r in chunk]
        meta = (
            {"total_count": len(rows)}
            if endpoint.total is TotalIn.TOTAL_COUNT
            else {"count": len(chunk)}
        )
        return Response(200, _envelope(_array(fragments), meta), rows=len(chunk))

    # ---------------------------------------------------------------- endpoints

    def _rows(self, served: Served, chain_id: int) -> list[Record]:
        if served.rows is None:
            raise ValueError(f"{served.endpoint}: a list style needs the dataset method (rows)")
        rows: list[Record] = getattr(self.dataset, served.rows)(chain_id)
        return rows

    def _paged_list(self, request: _Request) -> Response:
        endpoint, served, chain_id, query = (
            request.endpoint,
            request.served,
            request.chain_id,
            request.query,
        )
        rows = self._rows(served, chain_id)
        for list_filter in served.filters:
            value = _first(query, list_filter.param)
            if value:
                rows = [r for r in rows if _matches(r, list_filter, value)]
        return self._paged(endpoint, rows, query)

    def _bare_list(self, request: _Request) -> Response:
        endpoint, served, chain_id = request.endpoint, request.served, request.chain_id
        data = [self._quirk(endpoint.name, r) for r in self._rows(served, chain_id)]
        return Response(200, orjson.dumps(data), rows=len(data))

    def _promotion(self, request: _Request) -> Response:
        endpoint, chain_id, params, query = (
            request.endpoint,
            request.chain_id,
            request.params,
            request.query,
        )
        promo = self.dataset.promotion(chain_id, params["program_id"])
        if promo is None:
            raise _not_found([])
        includes = _list_param(query, "include")
        view = self._quirk(endpoint.name, promotion_view(promo, includes))
        return Response(200, orjson.dumps(view), rows=1)

    def _promotion_search(self, request: _Request) -> Response:
        endpoint, chain_id, params, query = (
            request.endpoint,
            request.chain_id,
            request.params,
            request.query,
        )
        rows = self.dataset.promotion_search(params["location_id"])
        wanted_type = _first(query, "type")
        if wanted_type:
            rows = [r for r in rows if r["type"] == wanted_type]
        includes = _list_param(query, "include")
        if "first_transaction_date" in includes:
            full = {p["id"]: p for p in self.dataset.promotions(chain_id)}
            rows = [
                {
                    **r,
                    "first_transaction_date": first_transaction_date(
                        full[r["id"]], self.config.start
                    ),
                }
                for r in rows
            ]
        data = [self._quirk(endpoint.name, r) for r in rows]
        return Response(200, _envelope(orjson.dumps(data), {"count": len(data)}), rows=len(data))

    def _memberships(self, request: _Request) -> Response:
        endpoint, chain_id, query = request.endpoint, request.chain_id, request.query
        wrap = self.faults.wrap_memberships
        try:
            ids = _int_list(query, "abonements_ids")
        except ValueError:
            raise self._membership_error(
                {"message": MSG_VALIDATION, "errors": {"abonements_ids": ["Invalid ids."]}}
            ) from None
        after, before = _first(query, "created_after"), _first(query, "created_before")
        page, size = self._page_params(endpoint, query)
        start, stop = self._window(page, size)
        if ids:
            rows: Iterator[Record] = iter(self.dataset.memberships_by_ids(chain_id, ids))
        elif after and before:
            errors: dict[str, list[str]] = {}
            bounds: list[datetime] = []
            for name, text in (("created_after", after), ("created_before", before)):
                try:
                    bounds.append(parse_timestamp(text))
                except ValueError:
                    errors[name] = [f"The {name.replace('_', ' ')} is not a valid ISO-8601 date."]
            if errors:
                raise self._membership_error({"message": MSG_VALIDATION, "errors": errors})
            rows = self.dataset.iter_memberships(chain_id, bounds[0], bounds[1])
        else:
            raise self._membership_error({"message": MSG_MEMBERSHIP_FILTER})
        chunk = list(islice(rows, start, stop))
        data = _array([orjson.dumps(self._quirk(endpoint.name, r)) for r in chunk])
        body = _envelope(data, {"count": len(chunk)})
        if wrap:
            body = b"[" + body + b"]"
        return Response(200, body, rows=len(chunk))

    def _membership_error(self, meta: dict[str, Any]) -> _HttpError:
        if not self.faults.wrap_memberships:
            return _error(400, meta)
        # The official 400 example: array-wrapped, and without a data key.
        return _HttpError(_json(400, [{"success": False, "meta": meta}]))

    def _transactions(self, request: _Request) -> Response:
        endpoint, chain_id, query = request.endpoint, request.chain_id, request.query
        errors: dict[str, list[str]] = {}
        days: list[date] = []
        # Both window bounds are required here (422 without them, CONTRACT §5.7).
        for name in endpoint.window_params or ():
            text = _first(query, name)
            label = name.replace("_", " ")
            if not text:
                errors[name] = [f"The {label} field is required."]
                continue
            try:
                if not DATE_RE.match(text):
                    raise ValueError(text)
                days.append(date.fromisoformat(text))
            except ValueError:
                errors[name] = [f"The {label} does not match the format Y-m-d."]
        filters: dict[str, set[int]] = {}
        for name in endpoint.array_params:
            try:
                values = _int_list(query, name)
            except ValueError:
                errors[name] = [f"The selected {name} is invalid."]
                continue
            if name == "types" and any(v not in TRANSACTION_TYPES for v in values):
                errors[name] = [f"The selected {name} is invalid."]
            if values:
                filters[name] = set(values)
        page, size = self._page_params(endpoint, query)
        if errors:
            raise _validation(422, errors, MSG_VALIDATION)
        start, stop = self._window(page, size)
        fragments = self._tx_rows(chain_id, days[0], days[1], filters, start, stop)
        body = _envelope(_array(fragments), {"count": len(fragments)})
        return Response(200, body, rows=len(fragments))

    def _tx_rows(
        self,
        chain_id: int,
        first: date,
        last: date,
        filters: dict[str, set[int]],
        start: int,
        stop: int | None,
    ) -> list[bytes]:
        first = max(first, self.config.start)
        last = min(last, self.dataset.last_day())
        out: list[bytes] = []
        skip = start
        want = None if stop is None else stop - start
        day = first
        while day <= last and (want is None or len(out) < want):
            if not filters:
                count = self.dataset.transaction_count(chain_id, day)
                if skip >= count:
                    skip -= count
                    day += timedelta(days=1)
                    continue
            block = self._tx_day(chain_id, day)
            if filters:
                picked = [
                    frag
                    for frag, loc, typ, visit in zip(
                        block.fragments,
                        block.location_ids,
                        block.type_ids,
                        block.visit_ids,
                        strict=True,
                    )
                    if loc in filters.get("company_ids", (loc,))
                    and typ in filters.get("types", (typ,))
                    and visit in filters.get("visit_ids", (visit,))
                ]
            else:
                picked = block.fragments
            if skip >= len(picked):
                skip -= len(picked)
            else:
                end = None if want is None else skip + want - len(out)
                out.extend(picked[skip:end])
                skip = 0
            day += timedelta(days=1)
        return out

    def _tx_day(self, chain_id: int, day: date) -> _TxDay:
        key = (chain_id, day, self.dataset.transaction_revision(chain_id, day))
        with self._tx_lock:
            cached = self._tx_cache.get(key)
            if cached is not None:
                self._tx_cache.move_to_end(key)
                return cached
        block = self.dataset.day_transactions(chain_id, day)
        rendered = _TxDay(
            fragments=[orjson.dumps(self._quirk("transactions", r)) for r in block.records],
            location_ids=block.location_ids,
            type_ids=[r["type_id"] for r in block.records],
            visit_ids=[r["visit_id"] for r in block.records],
        )
        with self._tx_lock:
            if key not in self._tx_cache:
                self._tx_cache[key] = rendered
                self._tx_cached_rows += len(rendered.fragments)
            while self._tx_cached_rows > TX_CACHE_ROWS and len(self._tx_cache) > 1:
                _, evicted = self._tx_cache.popitem(last=False)
                self._tx_cached_rows -= len(evicted.fragments)
        return rendered

    # ---------------------------------------------------------------- record quirks

    def _quirk(self, endpoint: str, record: Record) -> Record:
        f = self.faults
        if not (f.unknown_enum_every or f.extra_fields or f.numeric_strings):
            return record
        served = self._served[endpoint]
        out = copy.deepcopy(record)
        rid = _dig(record, ENDPOINTS[endpoint].record_id)
        if f.unknown_enum_every and isinstance(rid, int) and rid % f.unknown_enum_every == 0:
            for path, value in served.unknown_codes:
                _put(out, path, copy.deepcopy(value))
        if f.extra_fields:
            out["external_id"] = f"ext-{rid}"
            out["sync_revision"] = 3
            for name in served.undocumented_ids:
                out[name] = (rid or 0) % 900_000 + 100_000
        if f.numeric_strings:
            out = _stringify(out)
        return out


def _dig(record: Record, path: tuple[str, ...]) -> Any:
    value: Any = record
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _put(record: Record, path: tuple[str, ...], value: Any) -> None:
    """Set the field at `path` (its parent objects exist in every served record)."""
    target = record
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


def _matches(record: Record, list_filter: ListFilter, value: str) -> bool:
    """Whether a record passes one list filter of the sandbox (see sources.base.Match)."""
    field = _dig(record, list_filter.field)
    if list_filter.match is Match.CONTAINS:
        return isinstance(field, str) and value.lower() in field.lower()
    if list_filter.match is Match.FLAG:
        return value not in ("0", "1") or bool(field) == (value == "1")
    try:
        bound = float(value)
    except ValueError:
        return True  # an unreadable bound filters nothing
    if not isinstance(field, int | float):
        return False
    return field >= bound if list_filter.match is Match.AT_LEAST else field <= bound


def _stringify(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _stringify(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_stringify(v, key) for v in value]
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int) and (key == "id" or key.endswith("_id") or key.endswith("_ids")):
        return str(value)
    return value


def _write_gateway_error(status: int) -> Response:
    text = f"<html><body><h1>{status} Service Unavailable</h1></body></html>".encode()
    return Response(status, text, content_type="text/html; charset=utf-8")


def _write_body(body: bytes) -> Any:
    """The JSON body of a write ({} when empty); 400 when it is not a JSON object."""
    if not body.strip():
        return {}
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _error(400, {"message": writes.MSG_ERROR}) from None
    if not isinstance(payload, dict):
        raise _error(400, {"message": writes.MSG_ERROR})
    return payload


def _loggable(payload: Any, body: bytes) -> Any:
    if payload is not None:
        return payload
    return body.decode("utf-8", "replace") if body else None


def _first(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _list_param(query: dict[str, list[str]], name: str) -> list[str]:
    """Both array encodings: `name=a,b` and repeated `name[]=a&name[]=b` (also `name=a&name=b`)."""
    out: list[str] = []
    for raw in query.get(name, []) + query.get(name + "[]", []):
        out.extend(v.strip() for v in raw.split(",") if v.strip())
    return out


def _int_list(query: dict[str, list[str]], name: str) -> list[int]:
    values = _list_param(query, name)
    if any(not INT_RE.match(v) for v in values):
        raise ValueError(name)
    return [int(v) for v in values]


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], app: SandboxServer
    ) -> None:
        self.app = app
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up (a timeout, a killed load) or a connection the sandbox dropped
        # on purpose: one DEBUG line, not a traceback on stderr.
        error = sys.exc_info()[1]
        if isinstance(error, DROPPED_CONNECTION_ERRORS):
            logger.debug("connection from %s dropped: %r", client_address, error)
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "AltegioSandbox/1.0"
    sys_version = ""
    timeout = IDLE_CONNECTION_TIMEOUT_S
    # Headers and body go out in two writes; with Nagle on, small bodies wait for the client's
    # delayed ACK.
    disable_nagle_algorithm = True
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        app = self.server.app
        with app._connections_lock:
            app._connections.add(self.connection)

    def finish(self) -> None:
        app = self.server.app
        with app._connections_lock:
            app._connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        app = self.server.app
        _, response, transport = app.handle(
            method, self.path, headers, body, self.client_address[0]
        )
        if "lose_answer" in transport:
            # Applied, then gone: the client sees the connection close with no answer at all.
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if "slow" in transport:
            app._stop.wait(app.faults.slow_seconds)
        payload = response.body
        if "truncate" in transport:
            payload = payload[: max(1, len(payload) * 2 // 3)]
        self.send_response(response.status)
        # A 204 has no body, so no body headers either (RFC 9110 §8.6).
        if response.status != 204:
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(payload)))
        for name, value in response.headers:
            self.send_header(name, value)
        self.end_headers()
        if "drop" in transport:
            self.wfile.write(payload[: len(payload) // 2])
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(payload)


@contextlib.contextmanager
def serve(config: SandboxConfig | None = None) -> Iterator[SandboxServer]:
    """Run a sandbox on 127.0.0.1 (free port) for the duration of the block."""
    server = SandboxServer(config or SandboxConfig())
    server.start()
    try:
        yield server
    finally:
        server.stop()
