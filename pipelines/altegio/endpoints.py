"""How an Altegio B2B v1 endpoint is described: paging, totals, envelope, parameters.

Each read endpoint is declared in its source module (`pipelines.altegio.sources`); `ENDPOINTS`
collects them. Both the client (to build requests and read pages) and the sandbox (to serve
them the same way the real API does) read these declarations, so a paging or envelope quirk is
written down in exactly one place. Facts and their confidence come from the API contract,
docs/altegio_api_contract.md (sections named as §n).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from pipelines.altegio.registry import Registry


class Paging(StrEnum):
    """How an endpoint pages (CONTRACT §6): page number plus which size parameter, or none."""

    NONE = "none"
    PAGE_COUNT = "page/count"
    PAGE_PAGE_SIZE = "page/page_size"
    PAGE_LIMIT = "page/limit"

    @property
    def size_param(self) -> str | None:
        return {
            Paging.NONE: None,
            Paging.PAGE_COUNT: "count",
            Paging.PAGE_PAGE_SIZE: "page_size",
            Paging.PAGE_LIMIT: "limit",
        }[self]


class TotalIn(StrEnum):
    """Where a list answer says how many rows exist.

    TOTAL_COUNT is a real total over all pages. PAGE_COUNT (`meta.count`) is documented as
    "number of items in the response": a page count, never a total, so paging must not stop
    on it alone. NONE: nothing to read (bare arrays, `meta: []`).
    """

    TOTAL_COUNT = "meta.total_count"
    PAGE_COUNT = "meta.count"
    NONE = "none"


class Envelope(StrEnum):
    """Body shape of a 200 answer (CONTRACT §1.4)."""

    STANDARD = "standard"  # {"success": true, "data": ..., "meta": ...}
    BARE_ARRAY = "bare_array"  # [record, ...]
    BARE_OBJECT = "bare_object"  # {record}
    # The documented example wraps the whole envelope in a one-element array; the backend
    # (per Altegio's own client) sends the plain envelope. Readers accept both.
    MAYBE_ARRAY_WRAPPED = "maybe_array_wrapped"


class ArrayEncoding(StrEnum):
    """How array query parameters travel (CONTRACT §1.5); the docs and Altegio's client differ."""

    COMMA = "comma"  # types=1,2,9  (OpenAPI style: form, explode: false)
    BRACKETS = "brackets"  # types[]=1&types[]=2  (Altegio's own client, PHP style)


# Methods whose repeat leaves the server as one call would (RFC 9110 §9.2.2). A POST or PATCH
# is safe to repeat only where the contract says so (CONTRACT §5.10.7): the endpoint declares it.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


@dataclass(frozen=True)
class Endpoint:
    """One operation of the API, with its paging, envelope and retry conventions (GET unless
    `method`)."""

    name: str
    path: str  # relative to the base URL (which ends in /api/v1), with {placeholders}
    paging: Paging = Paging.NONE
    total: TotalIn = TotalIn.NONE
    envelope: Envelope = Envelope.STANDARD
    method: str = "GET"
    # Documented maximum page size, or None when the contract documents none.
    max_page_size: int | None = None
    # Documented server default page size (what is served when no size is asked for).
    default_page_size: int | None = None
    # What the client asks for when nothing is configured. Where no maximum is documented
    # it asks for a large page and learns what the server really serves.
    request_page_size: int | None = None
    # The /groups access flag that gates this endpoint; "0" means a 403 is certain.
    access_flag: str | None = None
    # Query parameters that carry a list (their encoding is a setting, CONTRACT §1.5).
    array_params: tuple[str, ...] = ()
    # The (from, to) query parameters of the endpoint's time-window filter, both inclusive.
    window_params: tuple[str, str] | None = None
    # The query parameter that selects records by id (a re-read), if the endpoint has one.
    ids_param: str | None = None
    # Query parameters sent on every request (e.g. the detail blocks to include).
    fixed_params: tuple[tuple[str, str], ...] = ()
    # Where a record's id is: page-boundary repeats are recognised by it.
    record_id: tuple[str, ...] = ("id",)
    # The statuses a success may come with (CONTRACT §5.10: writes answer 200, 201 or 204,
    # sometimes with no body at all). Any other 2xx/3xx is a BadResponse.
    success_statuses: tuple[int, ...] = (200,)
    # Whether repeating the call is harmless (None: decided by the method). A call that is not
    # is retried only when the request provably never reached the server.
    idempotent: bool | None = None
    # A read of one record by id (`data` is an object, not a list of records).
    one_record: bool = False

    @property
    def safe_to_repeat(self) -> bool:
        """Whether a retry after a lost answer can do no harm."""
        if self.idempotent is not None:
            return self.idempotent
        return self.method in IDEMPOTENT_METHODS

    def format_path(self, **params: int) -> str:
        """The concrete path; every placeholder value must be an int (never raw text)."""
        for key, value in params.items():
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"path parameter {key} must be an int, got {type(value).__name__}")
        return self.path.format(**params)


# Large enough that a chain-day of transactions is one or two pages, small enough that a page
# stays a few hundred kilobytes. The server may serve fewer; the client learns how many.
UNDOCUMENTED_REQUEST_PAGE_SIZE = 1000

# §4.1: the one write every run may make (a login exchanged for a user token); 201 on success.
AUTH = Endpoint(
    name="auth",
    method="POST",
    path="/auth",
    success_statuses=(201,),
    # Logging in again changes no documented state (CONTRACT §5.10.7).
    idempotent=True,
)


def _declared_endpoints() -> dict[str, Endpoint]:
    from pipelines.altegio.sources import SOURCES

    declared = [endpoint for source in SOURCES.values() for endpoint in source.endpoints]
    return {endpoint.name: endpoint for endpoint in (AUTH, *declared)}


ENDPOINTS: Mapping[str, Endpoint] = Registry(_declared_endpoints)
"""Every endpoint by name: AUTH plus each source's read endpoints (pipelines.altegio.sources)."""

ACCEPT_HEADER = "application/vnd.api.v2+json"
DEFAULT_BASE_URL = "https://api.alteg.io/api/v1"
