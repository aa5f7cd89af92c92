"""What one source table is, declared as data: `Source`.

A source is one API list (one table family): the endpoints that read it, how a load walks it
(`LoadShape`), the warehouse tables it fills (main table first, then its child tables), how
normalize maps a record onto them (`Entity`), and what the sandbox serves for it (`Served`).
The client, the load steps, normalize, the Dagster assets, the sandbox and the data dictionary
iterate over these declarations; none of them names a table. Modelled on dlt's rest_api
resource declaration (`dlt/sources/rest_api/typing.py`): data, not code paths.
"""

from dataclasses import dataclass
from enum import StrEnum

from pipelines.altegio.endpoints import Endpoint
from pipelines.altegio.normalize.engine import Entity
from pipelines.altegio.schema import TableSpec


class LoadShape(StrEnum):
    """How a load walks a source; the client and the load steps hold one code path per shape."""

    # GET /groups: the chains the credentials see, with their locations (discovers the chains).
    GROUPS = "groups"
    # The whole list of a chain as of now, one lake partition per chain.
    REFERENCE = "reference"
    # No chain-level list: search every location, keep each id once, read each by id.
    LOCATION_SEARCH_THEN_DETAIL = "location_search_then_detail"
    # One request window per calendar day, each day stamped on its rows (a day partition).
    DAILY = "daily"
    # One creation-time window over all the days (records carry their creation time), split
    # into day partitions; records can also be re-read by id.
    CREATED_WINDOW = "created_window"

    @property
    def by_day(self) -> bool:
        """Loaded for a range of days (a partitioned asset) rather than as of now."""
        return self in (LoadShape.DAILY, LoadShape.CREATED_WINDOW)


class Serving(StrEnum):
    """How the sandbox answers an endpoint."""

    # The dataset's rows for the chain, narrowed by `Served.filters`, paged per the endpoint.
    PAGED_LIST = "paged_list"
    # The dataset's rows for the chain as one bare JSON array.
    BARE_LIST = "bare_list"
    # Handlers of their own (the endpoint's rules do not fit a plain list).
    GROUPS = "groups"
    TRANSACTIONS = "transactions"
    MEMBERSHIPS = "memberships"
    PROMOTION_SEARCH = "promotion_search"
    PROMOTION = "promotion"


class Match(StrEnum):
    """How a list filter of the sandbox compares a query value with a record field."""

    CONTAINS = "contains"  # case-insensitive substring of a text field
    FLAG = "flag"  # "1"/"0" against a boolean field (other values: no filter)
    AT_LEAST = "at_least"  # a number field >= the value
    AT_MOST = "at_most"  # a number field <= the value


@dataclass(frozen=True)
class ListFilter:
    """One documented query filter of a list endpoint, as the sandbox applies it."""

    param: str
    field: tuple[str, ...]  # path of the compared value in a record
    match: Match


@dataclass(frozen=True)
class Served:
    """What the sandbox serves for one endpoint of a source."""

    endpoint: str  # the endpoint's name
    serving: Serving
    # SandboxDataset method giving a chain's records (the list styles; handlers of their own
    # know their dataset methods).
    rows: str | None = None
    filters: tuple[ListFilter, ...] = ()
    # Fault "unknown enum codes": fields (paths) overwritten with undocumented values.
    unknown_codes: tuple[tuple[tuple[str, ...], object], ...] = ()
    # Fault "extra fields": id-like fields it adds besides the common ones (external_id, ...).
    undocumented_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Refresh:
    """How the stored records of a source re-read by id (CREATED_WINDOW) are kept current:
    every night the records whose `status_column` is not one of `final_codes` are re-read
    (an unknown code is not known to be final, so it is re-read too); a full refresh re-reads
    all of them."""

    status_column: str
    final_codes: frozenset[int]


@dataclass(frozen=True)
class Source:
    """One source table family. Later fields (history policy, write endpoints) get defaults."""

    name: str  # the main table's name, the asset's name and the load step's name
    shape: LoadShape
    # Read endpoints in request order; the first one's access flag decides whether a chain is
    # asked at all, the last one's records are what normalize receives.
    endpoints: tuple[Endpoint, ...]
    tables: tuple[TableSpec, ...]  # the main table first, then its child tables
    entity: Entity
    served: tuple[Served, ...]
    refresh: Refresh | None = None

    def __post_init__(self) -> None:
        main = self.tables[0]
        if main.name != self.name or main.parent is not None:
            raise ValueError(f"source {self.name}: the first table must be its own main table")
        for child in self.tables[1:]:
            if child.parent != self.name:
                raise ValueError(f"source {self.name}: {child.name} is not its child table")
        if {s.endpoint for s in self.served} != {e.name for e in self.endpoints}:
            raise ValueError(f"source {self.name}: the sandbox must serve each of its endpoints")

    @property
    def main(self) -> TableSpec:
        return self.tables[0]

    @property
    def family(self) -> tuple[str, ...]:
        """The tables one load step of this source writes together: main, then children."""
        return tuple(t.name for t in self.tables)

    @property
    def gate(self) -> Endpoint:
        """The endpoint whose access flag decides whether a chain is asked for this source."""
        return self.endpoints[0]

    @property
    def record_endpoint(self) -> Endpoint:
        """The endpoint whose records become the rows (`_source_endpoint`)."""
        return self.endpoints[-1]
