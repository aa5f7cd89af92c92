"""The Altegio B2B v1 endpoints this extract reads, declared once.

Both the client (to build requests and read pages) and the sandbox (to serve them the same
way the real API does) read this table, so a paging or envelope quirk is written down in
exactly one place. Facts and their confidence come from ../shared/altegio-api/CONTRACT.md;
the section is named next to each entry.
"""

from dataclasses import dataclass, field
from enum import StrEnum


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


class Scope(StrEnum):
    GLOBAL = "global"
    CHAIN = "chain"  # path has {chain_id}
    LOCATION = "location"  # path has {location_id}


# Methods whose repeat leaves the server as one call would (RFC 9110 §9.2.2). A POST or PATCH
# is safe to repeat only where the contract says so (CONTRACT §5.10.7): the endpoint declares it.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


@dataclass(frozen=True)
class Endpoint:
    """One operation of the API, with its paging, envelope and retry conventions."""

    name: str
    method: str
    path: str  # relative to the base URL (which ends in /api/v1), with {placeholders}
    scope: Scope
    paging: Paging
    total: TotalIn
    envelope: Envelope
    # Documented maximum page size, or None when the contract documents none.
    max_page_size: int | None = None
    # Documented server default page size (what is served when no size is asked for).
    default_page_size: int | None = None
    # What the client asks for when nothing is configured. Where no maximum is documented
    # it asks for a large page and learns what the server really serves.
    request_page_size: int | None = None
    # The /groups access flag that gates this endpoint; "0" means a 403 is certain.
    access_flag: str | None = None
    required_params: tuple[str, ...] = ()
    array_params: tuple[str, ...] = ()
    # The statuses a success may come with (CONTRACT §5.10: writes answer 200, 201 or 204,
    # sometimes with no body at all). Any other 2xx/3xx is a BadResponse.
    success_statuses: tuple[int, ...] = (200,)
    # Whether repeating the call is harmless (None: decided by the method). A call that is not
    # is retried only when the request provably never reached the server.
    idempotent: bool | None = None
    contract_section: str = ""
    notes: str = ""
    path_params: tuple[str, ...] = field(default=())

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

AUTH = Endpoint(
    name="auth",
    method="POST",
    path="/auth",
    scope=Scope.GLOBAL,
    paging=Paging.NONE,
    total=TotalIn.NONE,
    envelope=Envelope.STANDARD,
    success_statuses=(201,),
    # Logging in again changes no documented state (CONTRACT §5.10.7).
    idempotent=True,
    contract_section="§4.1",
)

GROUPS = Endpoint(
    name="groups",
    method="GET",
    path="/groups",
    scope=Scope.GLOBAL,
    paging=Paging.NONE,
    total=TotalIn.NONE,
    envelope=Envelope.STANDARD,
    contract_section="§5.1",
    notes="meta is [] or absent; access flags are the strings '1'/'0'",
)

MEMBERSHIP_TYPES = Endpoint(
    name="membership_types",
    method="GET",
    path="/chain/{chain_id}/loyalty/abonement_types",
    scope=Scope.CHAIN,
    paging=Paging.PAGE_LIMIT,
    total=TotalIn.TOTAL_COUNT,
    envelope=Envelope.STANDARD,
    request_page_size=UNDOCUMENTED_REQUEST_PAGE_SIZE,
    access_flag="loyalty_abonement_types_access",
    path_params=("chain_id",),
    contract_section="§5.3.1",
)

MEMBERSHIPS = Endpoint(
    name="memberships",
    method="GET",
    path="/chain/{chain_id}/loyalty/abonements",
    scope=Scope.CHAIN,
    paging=Paging.PAGE_COUNT,
    total=TotalIn.PAGE_COUNT,
    envelope=Envelope.MAYBE_ARRAY_WRAPPED,
    default_page_size=25,
    request_page_size=UNDOCUMENTED_REQUEST_PAGE_SIZE,
    access_flag="loyalty_access",
    # Either created_after+created_before or abonements_ids; neither -> 400.
    array_params=("abonements_ids",),
    path_params=("chain_id",),
    contract_section="§5.4.1",
)

CERTIFICATE_TYPES = Endpoint(
    name="certificate_types",
    method="GET",
    path="/chain/{chain_id}/loyalty/certificate_types",
    scope=Scope.CHAIN,
    paging=Paging.PAGE_PAGE_SIZE,
    total=TotalIn.TOTAL_COUNT,
    envelope=Envelope.STANDARD,
    max_page_size=100,
    default_page_size=10,
    request_page_size=100,
    access_flag="loyalty_certificate_types_access",
    path_params=("chain_id",),
    contract_section="§5.5.1",
)

TRANSACTIONS = Endpoint(
    name="transactions",
    method="GET",
    path="/chain/{chain_id}/loyalty/transactions",
    scope=Scope.CHAIN,
    paging=Paging.PAGE_COUNT,
    total=TotalIn.PAGE_COUNT,
    envelope=Envelope.STANDARD,
    default_page_size=25,
    request_page_size=UNDOCUMENTED_REQUEST_PAGE_SIZE,
    access_flag="loyalty_access",
    required_params=("created_after", "created_before"),
    array_params=("types", "company_ids", "visit_ids"),
    path_params=("chain_id",),
    contract_section="§5.7",
    notes="dates are Y-m-d, both bounds inclusive calendar days; 422 without them",
)

NOTIFICATION_TEMPLATES = Endpoint(
    name="notification_templates",
    method="GET",
    path="/chain/{chain_id}/loyalty/notification_message_templates/programs",
    scope=Scope.CHAIN,
    paging=Paging.NONE,
    total=TotalIn.NONE,
    envelope=Envelope.BARE_ARRAY,
    access_flag="loyalty_access",
    path_params=("chain_id",),
    contract_section="§5.8",
)

CARD_TYPES = Endpoint(
    name="card_types",
    method="GET",
    path="/chain/{chain_id}/loyalty/card_types",
    scope=Scope.CHAIN,
    paging=Paging.NONE,
    total=TotalIn.NONE,
    envelope=Envelope.BARE_ARRAY,
    access_flag="loyalty_access",
    path_params=("chain_id",),
    contract_section="§5.9",
)

PROMOTION_SEARCH = Endpoint(
    name="promotion_search",
    method="GET",
    path="/company/{location_id}/loyalty/programs/search",
    scope=Scope.LOCATION,
    paging=Paging.NONE,
    total=TotalIn.PAGE_COUNT,
    envelope=Envelope.STANDARD,
    access_flag="loyalty_programs_access",
    path_params=("location_id",),
    contract_section="§5.6",
    notes="the only way to list promotions; the same promotion appears at several locations",
)

PROMOTION = Endpoint(
    name="promotion",
    method="GET",
    path="/chain/{chain_id}/loyalty/programs/{program_id}",
    scope=Scope.CHAIN,
    paging=Paging.NONE,
    total=TotalIn.NONE,
    envelope=Envelope.BARE_OBJECT,
    access_flag="loyalty_programs_access",
    path_params=("chain_id", "program_id"),
    contract_section="§5.6",
    notes="include= applicable_items, rules, companies, loyalty_card_types, *_template",
)

PROMOTION_INCLUDES = (
    "rules",
    "applicable_items",
    "companies",
    "loyalty_card_types",
    "on_changed_notification_template",
    "on_expiration_notification_template",
)

ENDPOINTS: dict[str, Endpoint] = {
    e.name: e
    for e in (
        AUTH,
        GROUPS,
        MEMBERSHIP_TYPES,
        MEMBERSHIPS,
        CERTIFICATE_TYPES,
        TRANSACTIONS,
        NOTIFICATION_TEMPLATES,
        CARD_TYPES,
        PROMOTION_SEARCH,
        PROMOTION,
    )
}

ACCEPT_HEADER = "application/vnd.api.v2+json"
DEFAULT_BASE_URL = "https://api.alteg.io/api/v1"
