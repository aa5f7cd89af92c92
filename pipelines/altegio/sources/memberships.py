"""Sold memberships (abonements): `GET /chain/{chain_id}/loyalty/abonements` (CONTRACT §5.4.1),
read by creation-time window or re-read by id, with the visits left per service or category.

The API object has no client or location id; `goods_transaction_id` links the sale. Records
carry their creation time, so one window covers many days. The lake holds each membership's
current state in the partition of its chain and creation month (`created_month`, from
`created_day` in the chain's time zone): a window load rewrites its days inside their months,
and a re-read of a two-year-old membership rewrites one month's file, not a day per day since.
"""

from datetime import date
from typing import Any

from pipelines.altegio.endpoints import (
    UNDOCUMENTED_REQUEST_PAGE_SIZE,
    Endpoint,
    Envelope,
    Paging,
    TotalIn,
)
from pipelines.altegio.normalize.engine import ChildRows, Column, Context, Entity, Src, src
from pipelines.altegio.schema import (
    bool_col,
    chain_id_col,
    code_cols,
    date_col,
    int_col,
    money_col,
    str_col,
    table_spec,
    ts_col,
)
from pipelines.altegio.sources.base import LoadShape, Refresh, Served, Serving, Source
from pipelines.altegio.sources.membership_types import balance_link_columns, balance_links

# Either created_after+created_before or abonements_ids; neither -> 400.
MEMBERSHIPS_ENDPOINT = Endpoint(
    name="memberships",
    path="/chain/{chain_id}/loyalty/abonements",
    paging=Paging.PAGE_COUNT,
    total=TotalIn.PAGE_COUNT,
    envelope=Envelope.MAYBE_ARRAY_WRAPPED,
    default_page_size=25,
    request_page_size=UNDOCUMENTED_REQUEST_PAGE_SIZE,
    access_flag="loyalty_access",
    array_params=("abonements_ids",),
    window_params=("created_after", "created_before"),
    ids_param="abonements_ids",
)

MEMBERSHIPS = table_spec(
    "memberships",
    "One row per sold membership (abonement), from GET /chain/{chain_id}/loyalty/abonements. "
    "No client or location id exists in the API object; goods_transaction_id links the sale.",
    [
        int_col("id", "Membership id."),
        chain_id_col(),
        date_col("created_day", "created_date converted to the chain's time zone."),
        date_col(
            "created_month", "First day of created_day's month (the lake partition, with chain)."
        ),
        str_col("number", "Membership code (string; the API sometimes sends an integer)."),
        str_col("balance_string", "Human balance summary, e.g. 'Services (x5)'."),
        bool_col("is_frozen", "Currently frozen."),
        int_col("freeze_period", "Days frozen so far."),
        int_col("period", "Validity length; 0 = not set."),
        *code_cols("period_unit_id", "time_unit", "Unit of period (E1)."),
        ts_col("created_date", "When the membership was created (sold)."),
        ts_col("activated_date", "When activated; null if not yet."),
        ts_col("expiration_date", "When it expires; null if not set."),
        bool_col("is_united_balance", "One shared visit balance."),
        bool_col("is_united_balance_unlimited", "Shared balance is unlimited."),
        int_col("united_balance_services_count", "Visits left in the shared balance."),
        int_col("goods_transaction_id", "Product-sale transaction that sold it (0 becomes null)."),
        str_col("slug", "Type slug."),
        *code_cols("status_id", "membership_status", "Status (E4), from status.id."),
        str_col("status_title", "The API's status title (status.title)."),
        str_col("status_extended_title", "status.extended_title."),
        str_col("status_slug", "status.slug."),
        str_col("status_category", "status.category (string, or JSON when not a string)."),
        int_col("membership_type_id", "Membership type id (type.id)."),
        str_col("membership_type_title", "Membership type title (type.title)."),
        money_col("membership_type_cost", "Membership type cost (type.cost)."),
        *code_cols(
            "membership_type_expiration_type_id",
            "membership_expiration_type",
            "type.expiration_type_id (E2, decoded with type.expiration_type_title).",
        ),
        str_col("membership_type_expiration_type_title", "type.expiration_type_title."),
    ],
    primary_key=("chain_id", "id"),
    partition_by=("chain_id", "created_month"),
)

MEMBERSHIP_BALANCE_LINKS = table_spec(
    "membership_balance_links",
    "One row per line of a sold membership's balance_container.links: the remaining visits "
    "per service or category.",
    balance_link_columns(
        int_col("membership_id", "Parent membership id."),
        [
            date_col("created_day", "Parent membership's created_day."),
            date_col("created_month", "Parent membership's created_month (partition)."),
        ],
        "Remaining visits for this service/category.",
    ),
    primary_key=("chain_id", "membership_id", "link_index"),
    partition_by=("chain_id", "created_month"),
    parent="memberships",
)


def _memberships_columns(cols: dict[str, Column], bad: dict[int, str], ctx: Context) -> None:
    tz = ctx.tz
    days: list[date | None] = []
    for i, created in enumerate(cols["created_date"].values):
        if created is None:
            days.append(None)
            bad.setdefault(i, "created_date: missing (needed for the created_day partition)")
        else:
            day = created.astimezone(tz).date()
            days.append(day)
            if ctx.window_days is not None and day not in ctx.window_days:
                bad.setdefault(
                    i,
                    f"created_date {created.isoformat()} is {day} in {ctx.tz_name}, outside "
                    f"the requested window {ctx.window_label}",
                )
    cols["created_day"] = Column(days)
    cols["created_month"] = Column([None if d is None else d.replace(day=1) for d in days])


def _membership_rows(
    rec: dict[Any, Any], idx: int, ctx: Context, cols: dict[str, Column]
) -> ChildRows:
    mid = cols["id"].values[idx]
    links = balance_links(
        rec.get("balance_container"),
        "balance_container",
        "membership_balance_links",
        "membership_id",
        mid,
        ctx,
    )
    return {"membership_balance_links": [(idx, r) for r in links]}


_MEMBERSHIP_SOURCES: tuple[Src, ...] = (
    src("id", "id"),
    src("number", "str"),
    src("balance_string", "str"),
    src("is_frozen", "bool"),
    src("freeze_period", "int"),
    src("period", "int"),
    src("period_unit_id", "int"),
    src("created_date", "ts"),
    src("activated_date", "ts"),
    src("expiration_date", "ts"),
    src("is_united_balance", "bool"),
    src("is_united_balance_unlimited", "bool"),
    src("united_balance_services_count", "int"),
    src("goods_transaction_id", "fk"),
    src("slug", "str"),
    src("status_id", "int", "status", "id"),
    src("status_title", "str", "status", "title"),
    src("status_extended_title", "str", "status", "extended_title"),
    src("status_slug", "str", "status", "slug"),
    src("status_category", "json", "status", "category"),
    src("membership_type_id", "int", "type", "id"),
    src("membership_type_title", "str", "type", "title"),
    src("membership_type_cost", "float", "type", "cost"),
    src("membership_type_expiration_type_id", "int", "type", "expiration_type_id"),
    src("membership_type_expiration_type_title", "str", "type", "expiration_type_title"),
)

# E4 (CONTRACT §7): 3 expired and 4 used up ("wasted") are final as far as time and visits go;
# 1 issued and 2 active still move (activation, use, expiry, freezing). Only a set_period or a
# set_balance can move a final one again, which the weekly full refresh catches.
FINAL_STATUS_IDS = frozenset({3, 4})

SOURCE = Source(
    name="memberships",
    shape=LoadShape.CREATED_WINDOW,
    endpoints=(MEMBERSHIPS_ENDPOINT,),
    tables=(MEMBERSHIPS, MEMBERSHIP_BALANCE_LINKS),
    entity=Entity(
        sources=_MEMBERSHIP_SOURCES,
        extra_known=frozenset({"balance_container", "status", "type"}),
        nested_known={"status": frozenset({"id", "title", "extended_title", "slug", "category"})},
        columns_hook=_memberships_columns,
        row_hook=_membership_rows,
        inherit={
            "membership_balance_links": {
                "created_day": "created_day",
                "created_month": "created_month",
            }
        },
        partition_day="created_day",
    ),
    served=(
        Served(
            "memberships",
            Serving.MEMBERSHIPS,
            unknown_codes=(
                (("status", "id"), 9),
                (("status", "slug"), "suspended"),
                (("status", "title"), "Suspended"),
            ),
        ),
    ),
    refresh=Refresh(status_column="status_id", final_codes=FINAL_STATUS_IDS),
)
