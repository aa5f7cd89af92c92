"""Read verbs over the Altegio B2B v1 API: every record a request covers, exactly once.

`AltegioClient` is the only thing the load steps talk to. It reads a declared source
(`pipelines.altegio.sources`) by the source's load shape, one code path per shape
(`list_source`, `list_day`/`fetch_days`, `list_created`/`list_by_ids`); the named verbs
(`list_transactions`, ...) are one-line entry points over them. Every verb yields `Page`s of
raw records (dicts exactly as the API sent them); normalizing is someone else's job.
Paging follows the endpoint's declaration (`endpoints.Endpoint`): a real `meta.total_count`
ends the walk as soon as it is reached; without one, the client learns the page size the
server really serves (servers cap silently) and stops only on a page shorter than that. Rows
repeated across a page boundary are dropped by id; a server serving the same page forever is
an error, not a loop.
"""

import logging
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx

from pipelines.altegio import endpoints as ep
from pipelines.altegio.endpoints import ArrayEncoding, Endpoint, Paging, TotalIn
from pipelines.altegio.http import (
    DEFAULT_RATE_LIMIT,
    MAX_BODY_BYTES,
    AccessDenied,
    ApiError,
    ApiSession,
    AuthError,
    BadResponse,
    BodyTooLarge,
    ConnectionFailed,
    Credentials,
    InsecureURLError,
    NotFound,
    OutcomeUnknown,
    QueryValue,
    RateBudget,
    RateLimited,
    RequestRefused,
    RequestStats,
    RetryPolicy,
    ServerError,
    Timeouts,
    budget_key,
    check_base_url,
)
from pipelines.altegio.sources import SOURCES, LoadShape, Source, groups_source

__all__ = [
    "AccessDenied",
    "AltegioClient",
    "ApiError",
    "AuthError",
    "BadResponse",
    "BodyTooLarge",
    "Chain",
    "ClientSettings",
    "ConnectionFailed",
    "Credentials",
    "InsecureURLError",
    "NotFound",
    "OutcomeUnknown",
    "Page",
    "RateLimited",
    "RequestRefused",
    "RequestStats",
    "RetryPolicy",
    "ServerError",
    "Timeouts",
]

log = logging.getLogger(__name__)

# A run that needs more pages than this for one request window is a server bug, not data.
MAX_PAGES = 10_000
# Records re-read by id travel this many ids per request (keeps URLs well under 8 KB).
IDS_PER_REQUEST = 100
DEFAULT_WORKERS = 4
# Where the shared rate budget lives when no directory is configured: one machine-wide place,
# so separate processes of a run (and runs on the same host, same IP) share it by default.
DEFAULT_BUDGET_DIRNAME = "altegio-loyalty-rate-budget"

ProgressCallback = Callable[[str, int | None, int, int], None]


@dataclass(frozen=True)
class Page:
    """One API answer's worth of records (after boundary de-duplication).

    `number` is one-based; `reported_total` is `meta.total_count` when the endpoint has one;
    `reported_rows` is how many rows the API sent in this answer (before dropping rows repeated
    from the previous page; defaults to len(records)).
    """

    endpoint: str
    number: int
    records: list[dict[str, Any]]
    reported_total: int | None = None
    reported_rows: int = -1

    def __post_init__(self) -> None:
        if self.reported_rows < 0:
            object.__setattr__(self, "reported_rows", len(self.records))


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip() not in ("", "0", "false", "False")
    return bool(value)


@dataclass(frozen=True)
class Chain:
    """One chain the user can see in GET /groups, with its locations and access rights."""

    id: int
    title: str
    timezone: str
    locations: list[dict[str, Any]]
    access: dict[str, bool]
    raw: dict[str, Any]

    @property
    def location_ids(self) -> list[int]:
        return [int(loc["id"]) for loc in self.locations if "id" in loc]

    def can(self, endpoint_name: str) -> bool:
        """False only when /groups says the gating flag is 0 (the request would be a 403)."""
        flag = ep.ENDPOINTS[endpoint_name].access_flag
        if flag is None or flag not in self.access:
            return True
        return self.access[flag]

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any]) -> "Chain":
        raw_locations = raw.get("companies")
        if not isinstance(raw_locations, list):
            raw_locations = raw.get("locations")
        if not isinstance(raw_locations, list):
            raw_locations = []
        locations = [loc for loc in raw_locations if isinstance(loc, dict)]
        access_raw = raw.get("access")
        access = (
            {str(k): _flag(v) for k, v in access_raw.items() if v is not None}
            if isinstance(access_raw, dict)
            else {}
        )
        timezone = "UTC"
        if locations and isinstance(locations[0].get("timezone_name"), str):
            timezone = locations[0]["timezone_name"] or "UTC"
        return cls(
            id=int(raw["id"]),
            title=str(raw.get("title") or ""),
            timezone=timezone,
            locations=locations,
            access=access,
            raw=dict(raw),
        )


@dataclass(frozen=True)
class ClientSettings:
    """Everything an `AltegioClient` needs; secrets stay masked in the repr (see Credentials).

    `rate_limit` is requests per second for this API identity across every thread and process
    sharing `budget_dir` (None or 0: unlimited). `retry` bounds each request's attempts by time,
    `timeouts` each attempt. `page_sizes` overrides the table's `request_page_size` per
    endpoint name.
    """

    base_url: str
    credentials: Credentials
    rate_limit: float | None = DEFAULT_RATE_LIMIT
    budget_dir: Path | None = None
    chain_ids: tuple[int, ...] | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeouts: Timeouts = field(default_factory=Timeouts)
    max_pages: int = MAX_PAGES
    max_body_bytes: int = MAX_BODY_BYTES
    workers: int = DEFAULT_WORKERS
    page_sizes: Mapping[str, int] = field(default_factory=dict)
    array_encoding: ArrayEncoding = ArrayEncoding.BRACKETS
    progress: ProgressCallback | None = None
    sleep: Callable[[float], None] = time.sleep
    transport: httpx.BaseTransport | None = field(default=None, repr=False)


@dataclass
class _ServedSize:
    """What the server showed about its page size for one (endpoint, requested size)."""

    largest_seen: int = 0  # cap >= this
    confirmed: int | None = None  # a page of this size was followed by more rows: cap == this


class AltegioClient:
    """Altegio read client (writes: `pipelines.altegio.writer.Writer` over it). Thread-safe; use
    as a context manager or call `close()`."""

    def __init__(self, settings: ClientSettings, progress: ProgressCallback | None = None) -> None:
        if progress is not None:
            settings = replace(settings, progress=progress)
        self.settings = settings
        base_url = check_base_url(settings.base_url)
        budget_file = None
        if settings.rate_limit:
            directory = settings.budget_dir or Path(tempfile.gettempdir()) / DEFAULT_BUDGET_DIRNAME
            budget_file = directory / (
                budget_key(base_url, settings.credentials.partner_token) + ".budget"
            )
        self.budget = RateBudget(settings.rate_limit, budget_file, sleep=settings.sleep)
        self.stats = RequestStats()
        self._session = ApiSession(
            base_url,
            settings.credentials,
            budget=self.budget,
            retry=settings.retry,
            timeouts=settings.timeouts,
            stats=self.stats,
            sleep=settings.sleep,
            array_encoding=settings.array_encoding,
            transport=settings.transport,
            max_connections=max(settings.workers, 1) + 2,
            max_body_bytes=settings.max_body_bytes,
        )
        self._chains: dict[int, Chain] = {}
        self._served_sizes: dict[tuple[str, int | None], _ServedSize] = {}
        self._served_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"AltegioClient({self.settings!r})"

    def __enter__(self) -> "AltegioClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    @property
    def session(self) -> ApiSession:
        """The authenticated, budgeted, retrying session (the write verbs share it:
        `pipelines.altegio.writer`)."""
        return self._session

    # ------------------------------------------------------------------ chains

    def list_chains(self, chain_ids: Iterable[int] | None = None) -> list[Chain]:
        """The chains this user sees (GET /groups), narrowed to `chain_ids` (or the configured
        ids). A requested id the user cannot see is an error naming it."""
        groups = groups_source().endpoints[0]
        data, _ = self._session.call(groups, groups.path)
        chains = [Chain.from_raw(raw) for raw in data if isinstance(raw, dict) and "id" in raw]
        for chain in chains:
            self._chains[chain.id] = chain
        wanted = list(chain_ids) if chain_ids is not None else self.settings.chain_ids
        self.stats.record_page(groups.name, len(chains))
        if wanted is None:
            return chains
        by_id = {c.id: c for c in chains}
        missing = [i for i in wanted if i not in by_id]
        if missing:
            raise NotFound(
                f"chain ids {missing} are not among the chains this user can see ({sorted(by_id)})",
                endpoint=groups.name,
            )
        return [by_id[i] for i in wanted]

    def _chain(self, chain: Chain | int) -> Chain:
        if isinstance(chain, Chain):
            return chain
        known = self._chains.get(chain)
        return known if known is not None else self.list_chains([chain])[0]

    def _check_access(self, endpoint: Endpoint, chain_id: int) -> None:
        """Refuse locally what /groups already told us would be a 403."""
        chain = self._chains.get(chain_id)
        if chain is not None and not chain.can(endpoint.name):
            raise AccessDenied(
                f"access flag {endpoint.access_flag} is 0 for this chain in /groups; not asked",
                status=403,
                endpoint=endpoint.name,
                chain_id=chain_id,
            )

    # ------------------------------------------------------------------ one path per load shape

    def list_source(self, source: Source, chain: Chain | int) -> Iterator[Page]:
        """Every record of `source` for a chain as of now (REFERENCE or
        LOCATION_SEARCH_THEN_DETAIL), page by page."""
        if source.shape is LoadShape.REFERENCE:
            chain_id = chain.id if isinstance(chain, Chain) else chain
            endpoint = source.endpoints[0]
            return self._pages(endpoint, chain_id, dict(endpoint.fixed_params))
        if source.shape is LoadShape.LOCATION_SEARCH_THEN_DETAIL:
            return self._search_then_detail(source, self._chain(chain))
        raise ValueError(f"{source.name} is read by {source.shape}, not as a whole list")

    def list_day(
        self,
        source: Source,
        chain_id: int,
        day: date,
        filters: Mapping[str, QueryValue] | None = None,
    ) -> Iterator[Page]:
        """The records of one calendar day of a DAILY source: both window bounds are the day
        (the contract documents them as inclusive days)."""
        _expect(source, LoadShape.DAILY)
        if isinstance(day, datetime):
            raise TypeError("day must be a date, not a datetime")
        endpoint = source.endpoints[0]
        after, before = _window_params(endpoint)
        params: dict[str, QueryValue] = {after: day.isoformat(), before: day.isoformat()}
        return self._pages(endpoint, chain_id, {**params, **(filters or {})})

    def fetch_days(
        self,
        source: Source,
        chain_id: int,
        days: Iterable[date],
        workers: int | None = None,
        filters: Mapping[str, QueryValue] | None = None,
    ) -> Iterator[tuple[date, list[Page]]]:
        """`(day, every page of that day)` of a DAILY source for many days, in completion order.

        Pages of one day are sequential; days run on `workers` threads, all drawing from the
        one rate budget, so more workers never means more than the budget. The first failure
        cancels the days not yet started and is raised. Pages (not bare rows) are returned so
        the caller can reconcile what the API reported with what it received.
        """
        _expect(source, LoadShape.DAILY)

        def one_day(day: date) -> tuple[date, list[Page]]:
            return day, list(self.list_day(source, chain_id, day, filters))

        yield from self._run_parallel(one_day, list(dict.fromkeys(days)), workers)

    def list_created(
        self, source: Source, chain_id: int, created_after: datetime, created_before: datetime
    ) -> Iterator[Page]:
        """The records of a CREATED_WINDOW source created in a time window (bounds time-zone
        aware, as the API filters by instant; both sent ISO-8601 with offset)."""
        _expect(source, LoadShape.CREATED_WINDOW)
        for name, value in (("created_after", created_after), ("created_before", created_before)):
            if value.tzinfo is None or value.utcoffset() is None:
                raise ValueError(f"{name} must be time-zone aware, got {value!r}")
        endpoint = source.endpoints[0]
        after, before = _window_params(endpoint)
        params: dict[str, QueryValue] = {
            after: created_after.isoformat(timespec="seconds"),
            before: created_before.isoformat(timespec="seconds"),
        }
        return self._pages(endpoint, chain_id, params)

    def list_by_ids(self, source: Source, chain_id: int, ids: Iterable[int]) -> Iterator[Page]:
        """Records of a CREATED_WINDOW source re-read by id (the only way to refresh their
        state: there is no changed-since filter). Ids travel `IDS_PER_REQUEST` at a time."""
        _expect(source, LoadShape.CREATED_WINDOW)
        endpoint = source.endpoints[0]
        if endpoint.ids_param is None:
            raise ValueError(f"{endpoint.name} has no filter by ids")
        unique = list(dict.fromkeys(int(i) for i in ids))
        number = 0
        seen: set[Any] = set()
        for start in range(0, len(unique), IDS_PER_REQUEST):
            batch = unique[start : start + IDS_PER_REQUEST]
            params: dict[str, QueryValue] = {endpoint.ids_param: batch}
            asked = set(batch)
            for page in self._pages(endpoint, chain_id, params, report=False):
                keys = _row_keys(page.records, endpoint.record_id)
                records = [r for r, k in zip(page.records, keys, strict=True) if k not in seen]
                seen.update(keys)
                number += 1
                self._report(endpoint.name, chain_id, number, len(seen))
                yield Page(endpoint.name, number, records, None)
                # Every id asked for is back: no page can hold more (saves the probe for an
                # empty next page, one request per batch).
                if asked <= seen:
                    break

    def _search_then_detail(self, source: Source, chain: Chain) -> Iterator[Page]:
        """Search every location of the chain, keep each id once (a record shows up at each of
        its locations), then GET each by id at chain level."""
        search, detail = source.endpoints
        self._check_access(search, chain.id)
        ids: dict[int, None] = {}
        for location_id in chain.location_ids:
            data, _ = self._session.call(
                search, search.format_path(location_id=location_id), chain_id=chain.id
            )
            self.stats.record_page(search.name, len(data))
            for row in data:
                if not isinstance(row, dict) or "id" not in row:
                    raise BadResponse(
                        f"{search.name} row without id at location {location_id}",
                        endpoint=search.name,
                        chain_id=chain.id,
                    )
                group = row.get("group_id")
                if group not in (None, 0, "0") and int(group) != chain.id:
                    # A location can list another chain's record; its detail lives there.
                    log.debug("%s %s belongs to chain %s, skipped", search.name, row["id"], group)
                    continue
                ids.setdefault(int(row["id"]), None)
        params = dict(detail.fixed_params)
        chain_id = chain.id

        def read_one(record_id: int) -> dict[str, Any]:
            data, _ = self._session.call(
                detail,
                detail.format_path(chain_id=chain_id, program_id=record_id),
                params=params,
                chain_id=chain_id,
            )
            self.stats.record_page(detail.name, 1)
            return dict(data)

        # One GET per record: run them on the worker threads (the shared budget still bounds
        # the rate), and yield in search order.
        workers = max(1, min(self.settings.workers, len(ids)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="altegio") as pool:
            for number, record in enumerate(pool.map(read_one, ids), start=1):
                self._report(detail.name, chain_id, number, number)
                yield Page(detail.name, number, [record], len(ids))

    # ------------------------------------------------------------------ named verbs

    def list_membership_types(self, chain_id: int) -> Iterator[Page]:
        """Membership types of a chain (one record per type, archived ones included)."""
        return self.list_source(SOURCES["membership_types"], chain_id)

    def list_memberships(
        self, chain_id: int, created_after: datetime, created_before: datetime
    ) -> Iterator[Page]:
        """Memberships sold in a creation-time window."""
        return self.list_created(SOURCES["memberships"], chain_id, created_after, created_before)

    def list_memberships_by_ids(self, chain_id: int, ids: Iterable[int]) -> Iterator[Page]:
        """Memberships re-read by id."""
        return self.list_by_ids(SOURCES["memberships"], chain_id, ids)

    def list_certificate_types(self, chain_id: int) -> Iterator[Page]:
        """Certificate types of a chain (one record per type)."""
        return self.list_source(SOURCES["certificate_types"], chain_id)

    def list_transactions(
        self,
        chain_id: int,
        day: date,
        location_ids: Sequence[int] | None = None,
        types: Sequence[int] | None = None,
    ) -> Iterator[Page]:
        """Loyalty transactions of one calendar day, optionally of some locations or types."""
        return self.list_day(
            SOURCES["loyalty_transactions"],
            chain_id,
            day,
            _transaction_filters(location_ids, types),
        )

    def fetch_transaction_days(
        self,
        chain_id: int,
        days: Iterable[date],
        workers: int | None = None,
        location_ids: Sequence[int] | None = None,
    ) -> Iterator[tuple[date, list[Page]]]:
        """`(day, every page of that day)` of loyalty transactions, days in parallel."""
        source = SOURCES["loyalty_transactions"]
        return self.fetch_days(
            source, chain_id, days, workers, _transaction_filters(location_ids, None)
        )

    def list_notification_templates(self, chain_id: int) -> Iterator[Page]:
        """Loyalty notification templates of a chain (bare array, one page)."""
        return self.list_source(SOURCES["notification_templates"], chain_id)

    def list_card_types(self, chain_id: int) -> Iterator[Page]:
        """Loyalty card types of a chain (bare array, one page)."""
        return self.list_source(SOURCES["card_types"], chain_id)

    def list_promotions(self, chain: Chain | int) -> Iterator[Page]:
        """Promotions of a chain, full detail with every include, one record per promotion."""
        return self.list_source(SOURCES["promotions"], chain)

    # ------------------------------------------------------------------ concurrency

    def _run_parallel(
        self,
        fn: Callable[[date], tuple[date, list[Page]]],
        items: list[date],
        workers: int | None,
    ) -> Iterator[tuple[date, list[Page]]]:
        n = max(1, workers or self.settings.workers)
        pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="altegio")
        pending: set[Future[tuple[date, list[Page]]]] = set()
        queue = iter(items)
        try:
            # Keep at most 2 x workers in flight so a long day list does not pin memory.
            for item in queue:
                pending.add(pool.submit(fn, item))
                if len(pending) >= 2 * n:
                    break
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
                    nxt = next(queue, None)
                    if nxt is not None:
                        pending.add(pool.submit(fn, nxt))
        finally:
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)

    # ------------------------------------------------------------------ paging

    def _report(self, endpoint: str, chain_id: int | None, pages: int, rows: int) -> None:
        if self.settings.progress is not None:
            self.settings.progress(endpoint, chain_id, pages, rows)

    def _page_size(self, endpoint: Endpoint) -> int | None:
        size = self.settings.page_sizes.get(endpoint.name, endpoint.request_page_size)
        if size is not None and endpoint.max_page_size is not None:
            size = min(size, endpoint.max_page_size)
        return size

    def _served(self, endpoint: Endpoint, requested: int | None) -> _ServedSize:
        with self._served_lock:
            return self._served_sizes.setdefault((endpoint.name, requested), _ServedSize())

    def _pages(
        self,
        endpoint: Endpoint,
        chain_id: int,
        params: Mapping[str, QueryValue],
        *,
        report: bool = True,
    ) -> Iterator[Page]:
        """Every record of one request window, page by page, each row once."""
        self._check_access(endpoint, chain_id)
        path = endpoint.format_path(chain_id=chain_id)
        size_param = endpoint.paging.size_param
        if endpoint.paging is Paging.NONE:
            data, meta = self._session.call(endpoint, path, params=params, chain_id=chain_id)
            self.stats.record_page(endpoint.name, len(data))
            if report:
                self._report(endpoint.name, chain_id, 1, len(data))
            yield Page(endpoint.name, 1, data, _total(meta) if _has_total(endpoint) else None)
            return

        requested = self._page_size(endpoint)
        served = self._served(endpoint, requested)
        seen: set[Any] = set()
        previous_ids: list[Any] | None = None
        prev_n: int | None = None
        total: int | None = None
        number = 0
        while True:
            number += 1
            if number > self.settings.max_pages:
                raise BadResponse(
                    f"more than {self.settings.max_pages} pages for one request window; "
                    "refusing to page on (raise ClientSettings.max_pages if this is real)",
                    endpoint=endpoint.name,
                    chain_id=chain_id,
                )
            query: dict[str, QueryValue] = {**params, "page": number}
            if size_param is not None and requested is not None:
                query[size_param] = requested
            data, meta = self._session.call(endpoint, path, params=query, chain_id=chain_id)
            if (
                data
                and prev_n is not None
                and requested is not None
                and prev_n < requested
                and total is None
            ):
                self._learn_cap(endpoint, served, prev_n)
            prev_n = len(data)
            if _has_total(endpoint):
                total = _total(meta)
            ids = _row_keys(data, endpoint.record_id)
            if previous_ids is not None and ids and ids == previous_ids:
                raise BadResponse(
                    f"page {number} repeats page {number - 1} exactly ({len(ids)} rows, first id "
                    f"{ids[0]!r}): the server ignores the page parameter",
                    endpoint=endpoint.name,
                    chain_id=chain_id,
                )
            previous_ids = ids
            unique = set(ids)
            if len(unique) == len(ids) and seen.isdisjoint(unique):
                fresh = list(data)  # the normal page: no repeats at all
                seen |= unique
            else:
                fresh = []
                for row, key in zip(data, ids, strict=True):
                    if key not in seen:
                        seen.add(key)
                        fresh.append(row)
            self.stats.record_page(endpoint.name, len(fresh))
            if report:
                self._report(endpoint.name, chain_id, number, len(seen))
            if fresh or number == 1:
                yield Page(endpoint.name, number, fresh, total, len(data))
            if self._is_last(endpoint, served, requested, len(data), len(seen), total, number):
                return

    def _is_last(
        self,
        endpoint: Endpoint,
        served: _ServedSize,
        requested: int | None,
        n: int,
        seen: int,
        total: int | None,
        number: int,
    ) -> bool:
        """Whether the page just read (n raw rows) ends the window."""
        if n == 0:
            if total is not None and seen < total:
                log.warning(
                    "%s: empty page %d after %d of %d rows (rows deleted meanwhile?)",
                    endpoint.name,
                    number,
                    seen,
                    total,
                )
            return True
        if total is not None:
            # A real total proves the end; no empty-page probe.
            return seen >= total
        with self._served_lock:
            if requested is not None and n >= requested:
                served.largest_seen = max(served.largest_seen, n)
                return False
            if served.confirmed is not None:
                return n < served.confirmed
            if n < served.largest_seen:
                # The server already served a bigger page, so it would have filled this one.
                return True
            # n is the biggest page seen yet but below what we asked for: the server may cap
            # at n (silently) or the window may end here. Only the next page can tell.
            served.largest_seen = n
            return False

    def _learn_cap(self, endpoint: Endpoint, served: _ServedSize, size: int) -> None:
        """A page of `size` rows (< requested) was followed by more rows: the server caps."""
        with self._served_lock:
            if served.confirmed == size:
                return
            if served.confirmed is not None:
                log.warning(
                    "%s: server page cap changed from %d to %d rows",
                    endpoint.name,
                    served.confirmed,
                    size,
                )
                size = min(size, served.confirmed)
            else:
                log.info("%s: server serves at most %d rows per page", endpoint.name, size)
            served.confirmed = size
            served.largest_seen = max(served.largest_seen, size)


def _has_total(endpoint: Endpoint) -> bool:
    return endpoint.total is TotalIn.TOTAL_COUNT


def _total(meta: Mapping[str, Any]) -> int | None:
    value = meta.get("total_count")
    if isinstance(value, bool):
        return None
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _row_keys(rows: list[Any], path: tuple[str, ...] = ("id",)) -> list[Any]:
    """`_row_key` of every row; a whole-list fast path for the usual page of objects with
    top-level integer ids (a per-row call is measurable at millions of rows)."""
    if path != ("id",):
        return [_row_key(row, path) for row in rows]
    try:
        ids = [row["id"] for row in rows]
    except (KeyError, TypeError, IndexError):
        return [_row_key(row, path) for row in rows]
    if set(map(type, rows)) == {dict} and set(map(type, ids)) <= {int}:
        return ids
    return [_row_key(row, path) for row in rows]


def _row_key(row: Any, path: tuple[str, ...] = ("id",)) -> Any:
    """Identity of a row for boundary de-duplication: its id (numeric strings compare equal)."""
    value: Any = row
    for key in path:
        if not isinstance(value, dict) or key not in value:
            # A row without an id cannot be matched across pages; keep it (never silently
            # drop data).
            return ("noid", id(row))
        value = value[key]
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def _expect(source: Source, shape: LoadShape) -> None:
    if source.shape is not shape:
        raise ValueError(f"{source.name} is read by {source.shape}, not {shape}")


def _window_params(endpoint: Endpoint) -> tuple[str, str]:
    if endpoint.window_params is None:
        raise ValueError(f"{endpoint.name} has no time-window filter")
    return endpoint.window_params


def _transaction_filters(
    location_ids: Sequence[int] | None, types: Sequence[int] | None
) -> dict[str, QueryValue]:
    return {
        "company_ids": list(location_ids) if location_ids else None,
        "types": [str(t) for t in types] if types else None,
    }
