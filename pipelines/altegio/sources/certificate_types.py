"""Gift-certificate types of a chain: `GET /chain/{chain_id}/loyalty/certificate_types`
(CONTRACT §5.5.1), with the services each is restricted to and the locations that sell it."""

from typing import Any

from pipelines.altegio.endpoints import Endpoint, Paging, TotalIn
from pipelines.altegio.normalize.engine import (
    ChildRows,
    Column,
    Context,
    Entity,
    Src,
    id_rows,
    nested_list,
    src,
)
from pipelines.altegio.schema import (
    bool_col,
    chain_id_col,
    code_cols,
    int_col,
    money_col,
    str_col,
    table_spec,
    ts_col,
)
from pipelines.altegio.sources.base import (
    History,
    ListFilter,
    LoadShape,
    Match,
    Served,
    Serving,
    Source,
)

CERTIFICATE_TYPES_ENDPOINT = Endpoint(
    name="certificate_types",
    path="/chain/{chain_id}/loyalty/certificate_types",
    paging=Paging.PAGE_PAGE_SIZE,
    total=TotalIn.TOTAL_COUNT,
    max_page_size=100,
    default_page_size=10,
    request_page_size=100,
    access_flag="loyalty_certificate_types_access",
)

CERTIFICATE_TYPES = table_spec(
    "certificate_types",
    "One row per gift-certificate type of a chain, from GET "
    "/chain/{chain_id}/loyalty/certificate_types.",
    [
        int_col("id", "Certificate type id."),
        chain_id_col(),
        int_col("company_group_id", "Chain id as the API sends it on the record."),
        str_col("title", "Type name."),
        money_col("balance", "Face value."),
        bool_col("is_multi", "Can be spent in several goes."),
        int_col("category_id", "Category id (0 becomes null)."),
        int_col("weight", "Sort order."),
        *code_cols("item_type_id", "certificate_item_type", "What it can pay for (E5)."),
        str_col("item_type_title", "The API's own item type title (item_type.title)."),
        *code_cols("expiration_type_id", "certificate_expiration_type", "Expiry mode (E6)."),
        ts_col("expiration_date", "Fixed expiry date (expiration_type_id = 1)."),
        int_col("expiration_timeout", "Validity length from sale (expiration_type_id = 2)."),
        *code_cols("expiration_timeout_unit_id", "time_unit", "Unit of expiration_timeout (E1)."),
        *code_cols(
            "balance_edit_type_id", "certificate_balance_edit_type", "Balance editing (E7)."
        ),
        bool_col("is_allow_empty_code", "Sale without a code allowed."),
        bool_col("is_serial_number_limited", "Serial numbers limited."),
        bool_col("is_archived", "Archived."),
        ts_col("date_archived", "When archived."),
        bool_col("online_sale_is_enabled", "Sold online."),
        str_col("online_sale_title", "Online-sale title."),
        str_col("online_sale_description", "Online-sale description."),
        money_col("online_sale_price", "Online-sale price."),
        str_col("online_sale_image", "Online-sale image URL."),
        int_col("released_total", "Certificates issued so far."),
    ],
    primary_key=("chain_id", "id"),
)

CERTIFICATE_TYPE_SERVICES = table_spec(
    "certificate_type_services",
    "One row per (certificate type, service it is restricted to) from service_ids; no rows = "
    "unrestricted.",
    [
        int_col("id", "Service id (= service_id)."),
        chain_id_col(),
        int_col("certificate_type_id", "Parent certificate type id."),
        int_col("service_id", "Service id."),
    ],
    primary_key=("chain_id", "certificate_type_id", "id"),
    parent="certificate_types",
)

CERTIFICATE_TYPE_LOCATIONS = table_spec(
    "certificate_type_locations",
    "One row per (certificate type, location) from salon_ids.",
    [
        int_col("id", "Location id (= location_id)."),
        chain_id_col(),
        int_col("certificate_type_id", "Parent certificate type id."),
        int_col("location_id", "Location id."),
    ],
    primary_key=("chain_id", "certificate_type_id", "id"),
    parent="certificate_types",
)


def _certificate_columns(cols: dict[str, Column], bad: dict[int, str], ctx: Context) -> None:
    top = cols["item_type_id"].values
    nested = cols.pop("_item_type_obj_id").values
    cols["item_type_id"] = Column(
        [a if a is not None else b for a, b in zip(top, nested, strict=False)]
    )


def _certificate_rows(
    rec: dict[Any, Any], idx: int, ctx: Context, cols: dict[str, Column]
) -> ChildRows:
    cid = cols["id"].values[idx]
    return {
        "certificate_type_services": [
            (idx, r)
            for r in id_rows(
                nested_list(rec, "service_ids"),
                "service_ids",
                "certificate_type_id",
                cid,
                "service_id",
                ctx,
            )
        ],
        "certificate_type_locations": [
            (idx, r)
            for r in id_rows(
                nested_list(rec, "salon_ids"),
                "salon_ids",
                "certificate_type_id",
                cid,
                "location_id",
                ctx,
            )
        ],
    }


_CERTIFICATE_SOURCES: tuple[Src, ...] = (
    src("id", "id"),
    src("company_group_id", "int"),
    src("title", "str"),
    src("balance", "float"),
    src("is_multi", "bool"),
    src("category_id", "fk"),
    src("weight", "int"),
    src("item_type_id", "int"),
    src("_item_type_obj_id", "int", "item_type", "id"),
    src("item_type_title", "str", "item_type", "title"),
    src("expiration_type_id", "int"),
    src("expiration_date", "ts"),
    src("expiration_timeout", "int"),
    src("expiration_timeout_unit_id", "int"),
    src("balance_edit_type_id", "int"),
    src("is_allow_empty_code", "bool"),
    src("is_serial_number_limited", "bool"),
    src("is_archived", "bool"),
    src("date_archived", "ts"),
    src("online_sale_is_enabled", "bool"),
    src("online_sale_title", "str"),
    src("online_sale_description", "str"),
    src("online_sale_price", "float"),
    src("online_sale_image", "str"),
    src("released_total", "int"),
)

# released_total moves with every certificate sold: kept in each version, never a version by
# itself.

SOURCE = Source(
    name="certificate_types",
    shape=LoadShape.REFERENCE,
    endpoints=(CERTIFICATE_TYPES_ENDPOINT,),
    tables=(CERTIFICATE_TYPES, CERTIFICATE_TYPE_SERVICES, CERTIFICATE_TYPE_LOCATIONS),
    entity=Entity(
        sources=_CERTIFICATE_SOURCES,
        extra_known=frozenset({"item_type", "service_ids", "salon_ids"}),
        nested_known={"item_type": frozenset({"id", "title"})},
        columns_hook=_certificate_columns,
        row_hook=_certificate_rows,
    ),
    served=(
        Served(
            "certificate_types",
            Serving.PAGED_LIST,
            rows="certificate_types",
            filters=(ListFilter("title", ("title",), Match.CONTAINS),),
            unknown_codes=(
                (("item_type_id",), 8),
                (("item_type",), {"id": 8, "title": "Unknown item type"}),
            ),
        ),
    ),
    history=History(complete=True, ignore=frozenset({"released_total"})),
)
