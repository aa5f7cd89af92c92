"""Chains and their locations: `GET /groups` (CONTRACT §5.1).

The one source that is not read per chain: it discovers the chains the credentials see, each
with its locations (`companies[]`) and the user's access flags (the strings "1"/"0"), which
gate every other source.
"""

from typing import Any

import pyarrow as pa

from pipelines.altegio.endpoints import Endpoint
from pipelines.altegio.normalize.engine import (
    ChildRows,
    Column,
    Context,
    Entity,
    Src,
    child_row,
    nested_list,
    src,
)
from pipelines.altegio.schema import (
    bool_col,
    chain_id_col,
    col,
    float_col,
    int_col,
    str_col,
    table_spec,
)
from pipelines.altegio.sources.base import History, LoadShape, Served, Serving, Source

# meta is [] or absent; access flags are the strings '1'/'0'.
GROUPS = Endpoint(name="groups", path="/groups")

# The access flags /groups may carry for the API user in a chain (CONTRACT §5.1).
ACCESS_FLAGS = (
    "settings_access",
    "clients_access",
    "deposits_access",
    "deposit_types_access",
    "users_access",
    "loyalty_access",
    "loyalty_abonement_types_access",
    "loyalty_abonement_balance_edit_access",
    "loyalty_abonement_period_edit_access",
    "loyalty_abonement_history_access",
    "loyalty_cards_manual_transactions_access",
    "loyalty_certificate_types_access",
    "loyalty_programs_access",
    "network_services_access",
    "analytics_access",
    "chain_services_access",
)

CHAINS = table_spec(
    "chains",
    "One row per chain (salon group) the API user belongs to, from GET /groups, with the "
    "user's access flags.",
    [
        chain_id_col(),
        str_col("title", "Chain name."),
        str_col("timezone", "IANA time zone of the chain's first location (null when unknown)."),
        int_col("locations_count", "Number of locations listed for the chain."),
        *[
            bool_col(
                f, f"Access flag {f} of the API user in this chain (API sends 1/0 or '1'/'0')."
            )
            for f in ACCESS_FLAGS
        ],
    ],
    primary_key=("chain_id",),
)

LOCATIONS = table_spec(
    "locations",
    "One row per location (company) of a chain, from GET /groups companies[].",
    [
        int_col("id", "Location id (company_id / salon_id)."),
        chain_id_col(),
        str_col("title", "Location name."),
        str_col("public_title", "Public name."),
        int_col("business_group_id", "Business group id."),
        int_col("business_type_id", "Business type id."),
        int_col("country_id", "Country id."),
        str_col("country", "Country name."),
        int_col("city_id", "City id."),
        str_col("city", "City name."),
        float_col("timezone", "UTC offset in hours as the API sends it."),
        str_col("timezone_name", "IANA time zone, e.g. America/New_York."),
        str_col("address", "Street address."),
        str_col("zip", "Postal code."),
        str_col("phone", "Main phone."),
        col("phones", pa.list_(pa.string()), "All phones."),
        str_col("site", "Web site."),
        str_col("logo", "Logo URL."),
        str_col("currency_short_title", "Currency short title, e.g. USD."),
        float_col("coordinate_lat", "Latitude."),
        float_col("coordinate_lon", "Longitude."),
        bool_col("active", "Location has an active licence."),
        bool_col("allow_delete_record", "Appointments may be deleted."),
        bool_col("allow_change_record", "Appointments may be changed."),
    ],
    primary_key=("chain_id", "id"),
    parent="chains",
)


_LOCATION_SPEC: tuple[Src, ...] = (
    src("id", "id"),
    src("title", "str"),
    src("public_title", "str"),
    src("business_group_id", "int"),
    src("business_type_id", "int"),
    src("country_id", "int"),
    src("country", "str"),
    src("city_id", "int"),
    src("city", "str"),
    src("timezone", "float"),
    src("timezone_name", "str"),
    src("address", "str"),
    src("zip", "str"),
    src("phone", "str"),
    src("phones", "strlist"),
    src("site", "str"),
    src("logo", "str"),
    src("currency_short_title", "str"),
    src("coordinate_lat", "float"),
    src("coordinate_lon", "float"),
    src("active", "bool"),
    src("allow_delete_record", "bool"),
    src("allow_change_record", "bool"),
)


def _chain_rows(rec: dict[Any, Any], idx: int, ctx: Context, cols: dict[str, Column]) -> ChildRows:
    cid = cols["chain_id"].values[idx]
    rows: list[tuple[int, dict[str, Any]]] = []
    seen: set[int] = set()
    timezone = None
    for i, company in enumerate(nested_list(rec, "companies")):
        row = child_row(company, _LOCATION_SPEC, f"companies[{i}]", "locations", ctx)
        if row["id"] in seen:
            continue
        seen.add(row["id"])
        if timezone is None and row["timezone_name"]:
            timezone = row["timezone_name"]
        row["chain_id"] = cid
        rows.append((idx, row))
    cols.setdefault("timezone", Column([None] * len(cols["chain_id"].values)))
    cols.setdefault("locations_count", Column([None] * len(cols["chain_id"].values)))
    cols["timezone"].values[idx] = timezone
    cols["locations_count"].values[idx] = len(rows)
    return {"locations": rows}


SOURCE = Source(
    name="chains",
    shape=LoadShape.GROUPS,
    endpoints=(GROUPS,),
    tables=(CHAINS, LOCATIONS),
    entity=Entity(
        key="chain_id",
        sources=(
            src("chain_id", "id", "id"),
            src("title", "str"),
            *(src(f, "bool", "access", f) for f in ACCESS_FLAGS),
        ),
        extra_known=frozenset({"companies", "access"}),
        nested_known={"access": frozenset(ACCESS_FLAGS)},
        row_hook=_chain_rows,
    ),
    served=(Served("groups", Serving.GROUPS),),
    history=History(complete=True),
)
