"""Membership (abonement) types of a chain: `GET /chain/{chain_id}/loyalty/abonement_types`
(CONTRACT §5.3.1), with where each is sold, when it may be used and what its balance covers.

The balance lines (`balance_container.links`) have the same shape on a sold membership, so
their columns and mapping are shared with `memberships`.
"""

from typing import Any

import orjson
import pyarrow as pa

from pipelines.altegio.endpoints import UNDOCUMENTED_REQUEST_PAGE_SIZE, Endpoint, Paging, TotalIn
from pipelines.altegio.normalize.engine import (
    Bad,
    ChildRows,
    Column,
    Context,
    Entity,
    Src,
    check_text,
    child_row,
    coerce_value,
    describe,
    id_rows,
    nested_list,
    src,
    to_json,
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

MEMBERSHIP_TYPES_ENDPOINT = Endpoint(
    name="membership_types",
    path="/chain/{chain_id}/loyalty/abonement_types",
    paging=Paging.PAGE_LIMIT,
    total=TotalIn.TOTAL_COUNT,
    request_page_size=UNDOCUMENTED_REQUEST_PAGE_SIZE,
    access_flag="loyalty_abonement_types_access",
)


def balance_link_columns(
    parent_col: pa.Field, extra_keys: list[pa.Field], count_doc: str
) -> list[pa.Field]:
    """Columns of one balance line (a service or category and its visits) under a parent."""
    return [
        int_col(
            "id",
            "Id of the service or service category this balance line covers "
            "(= item_id; unique only together with the parent id and link_index).",
        ),
        chain_id_col(),
        parent_col,
        *extra_keys,
        int_col("link_index", "Position of the line in balance_container.links (0-based)."),
        int_col("item_id", "Service or service-category id the line covers."),
        bool_col("is_category", "True when the line covers a whole service category."),
        int_col("category_id", "Category id of the covered node (0 becomes null)."),
        str_col("title", "Title of the covered service or category."),
        str_col("online_sale_title", "Online-sale title of the covered node."),
        bool_col("is_chain", "Covered node is a chain-level service/category."),
        money_col("chain_price_min", "Lowest price of the covered node across locations."),
        money_col("chain_price_max", "Highest price of the covered node across locations."),
        int_col("count", count_doc),
        bool_col("is_unlimited", "True when the line has no visit limit."),
    ]


MEMBERSHIP_TYPES = table_spec(
    "membership_types",
    "One row per membership (abonement) type of a chain, from GET "
    "/chain/{chain_id}/loyalty/abonement_types.",
    [
        int_col("id", "Membership type id."),
        chain_id_col(),
        int_col("salon_group_id", "Chain id as the API sends it on the record."),
        str_col("title", "Type name."),
        int_col("category_id", "Category restriction id; null = none (0 becomes null)."),
        str_col(
            "category",
            "The API's category: the string as sent (e.g. 'standard'), or the JSON of the "
            "object; null when null.",
        ),
        money_col("cost", "Price of the type."),
        money_col("chain_price_min", "Lowest price across locations."),
        money_col("chain_price_max", "Highest price across locations."),
        int_col("period", "Validity length; 0 = not set."),
        *code_cols("period_unit_id", "time_unit", "Unit of period (E1)."),
        bool_col("allow_freeze", "Memberships of this type may be frozen."),
        int_col("freeze_limit", "Maximum total freeze length."),
        *code_cols("freeze_limit_unit_id", "time_unit", "Unit of freeze_limit (E1)."),
        bool_col("is_booking_when_frozen_allowed", "Booking allowed while frozen."),
        bool_col("is_allow_empty_code", "Sale without a code allowed."),
        bool_col("is_united_balance", "One shared visit balance (false = per service/category)."),
        bool_col("is_united_balance_unlimited", "Shared balance is unlimited."),
        int_col("united_balance_services_count", "Visits in the shared balance."),
        bool_col("is_code_required", "A code is required."),
        *code_cols(
            "balance_edit_type_id",
            "membership_balance_edit_type",
            "Who may edit the balance (E3, conflicting docs: the 0/1/2 write-docs reading is "
            "used).",
        ),
        *code_cols(
            "expiration_type_id",
            "membership_expiration_type",
            "Activation mode (E2, conflicting docs: decoded from expiration_type_title when it "
            "matches a reading, else the backend-verified reading).",
        ),
        str_col("expiration_type_title", "The API's own label of the activation mode."),
        bool_col("is_chain", "Chain-level type."),
        int_col("weight", "Sort order."),
        int_col("abonements_count", "Number of active memberships of this type."),
        bool_col("is_online_sale_enabled", "Sold online."),
        str_col("online_sale_title", "Online-sale title."),
        str_col("online_sale_description", "Online-sale description."),
        money_col("online_sale_price", "Online-sale price."),
        str_col("online_sale_image", "Online-sale image URL."),
        bool_col("service_price_correction", "Service price may be adjusted on use."),
        int_col("autoactivation_time", "Auto-activation delay length."),
        *code_cols("autoactivation_time_unit_id", "time_unit", "Unit of autoactivation_time (E1)."),
        bool_col("is_archived", "Archived."),
        ts_col("date_archived", "When archived."),
        str_col("slug", "Type slug."),
    ],
    primary_key=("chain_id", "id"),
)

MEMBERSHIP_TYPE_LOCATIONS = table_spec(
    "membership_type_locations",
    "One row per (membership type, location where it is sold): attached_location_ids and its "
    "old name attached_salon_ids merged and de-duplicated.",
    [
        int_col("id", "Location id (= location_id)."),
        chain_id_col(),
        int_col("membership_type_id", "Parent membership type id."),
        int_col("location_id", "Location id."),
    ],
    primary_key=("chain_id", "membership_type_id", "id"),
    parent="membership_types",
)

MEMBERSHIP_TYPE_AVAILABILITY = table_spec(
    "membership_type_availability",
    "One row per (membership type, availability rule, week day, interval): availability[] "
    "expanded as week_days x intervals. A rule without intervals gives one row per week day "
    "with null bounds (whole day). No rows = usable any time.",
    [
        int_col("id", "Position of the availability rule in availability[] (= rule_index)."),
        chain_id_col(),
        int_col("membership_type_id", "Parent membership type id."),
        int_col("rule_index", "Position of the rule in availability[] (0-based)."),
        int_col("week_day", "1 = Monday ... 7 = Sunday."),
        int_col(
            "interval_index",
            "Position of the interval in the rule (0-based; 0 when the rule has none).",
        ),
        int_col("from_seconds", "Interval start, seconds after midnight."),
        int_col("to_seconds", "Interval end, seconds after midnight."),
    ],
    primary_key=("chain_id", "membership_type_id", "rule_index", "week_day", "interval_index"),
    parent="membership_types",
)

MEMBERSHIP_TYPE_BALANCE_LINKS = table_spec(
    "membership_type_balance_links",
    "One row per line of a membership type's balance_container.links: a service or category "
    "the type covers and how many visits it includes.",
    balance_link_columns(
        int_col("membership_type_id", "Parent membership type id."),
        [],
        "Visits included for this service/category.",
    ),
    primary_key=("chain_id", "membership_type_id", "link_index"),
    parent="membership_types",
)


NODE_SPEC: tuple[Src, ...] = (
    src("item_id", "id", "id"),
    src("is_category", "bool"),
    src("category_id", "fk"),
    src("title", "str"),
    src("online_sale_title", "str"),
    src("is_chain", "bool"),
    src("chain_price_min", "float"),
    src("chain_price_max", "float"),
)
NODE_KNOWN = frozenset(
    {"category", "service_id", "category_ids", "price_min", "price_max", "salon_group_id"}
)


def balance_links(
    container: object, where: str, table: str, parent_col: str, parent_id: Any, ctx: Context
) -> list[dict[str, Any]]:
    if container is None:
        return []
    if isinstance(container, list) and not container:
        return []  # PHP serialises an empty object as []
    if not isinstance(container, dict):
        raise Bad(f"{where}: {type(container).__name__} where an object is expected")
    rows = []
    for i, link in enumerate(nested_list(container, "links", f"{where}.links")):
        lw = f"{where}.links[{i}]"
        if not isinstance(link, dict):
            raise Bad(f"{lw}: {type(link).__name__} where an object is expected")
        node_key = "service" if isinstance(link.get("service"), dict) else "category"
        node = link.get(node_key)
        if not isinstance(node, dict):
            raise Bad(f"{lw}: neither a service nor a category object")
        row = child_row(node, NODE_SPEC, f"{lw}.{node_key}", table, ctx, NODE_KNOWN)
        if row["is_category"] is None:
            row["is_category"] = node_key == "category"
        row["count"] = coerce_value(link.get("count"), "int", ctx.tz, f"{lw}.count")
        row["is_unlimited"] = coerce_value(
            link.get("is_unlimited"), "bool", ctx.tz, f"{lw}.is_unlimited"
        )
        unknown = [k for k in link if k not in ("count", "is_unlimited", "service", "category")]
        if unknown:
            ctx.drift.setdefault(table, set()).update(str(k) for k in unknown)
            extra = orjson.loads(row["extra"]) if row.get("extra") else {}
            extra.update({f"link.{k}": link[k] for k in unknown})
            row["extra"] = check_text(to_json(extra))
        row["id"] = row["item_id"]
        row["link_index"] = i
        row[parent_col] = parent_id
        rows.append(row)
    return rows


def _membership_type_rows(
    rec: dict[Any, Any], idx: int, ctx: Context, cols: dict[str, Column]
) -> ChildRows:
    tid = cols["id"].values[idx]
    locations = nested_list(rec, "attached_location_ids") + nested_list(rec, "attached_salon_ids")
    out: ChildRows = {
        "membership_type_locations": [
            (idx, r)
            for r in id_rows(
                locations, "attached_location_ids", "membership_type_id", tid, "location_id", ctx
            )
        ],
        "membership_type_balance_links": [
            (idx, r)
            for r in balance_links(
                rec.get("balance_container"),
                "balance_container",
                "membership_type_balance_links",
                "membership_type_id",
                tid,
                ctx,
            )
        ],
        "membership_type_availability": [],
    }
    avail = out["membership_type_availability"]
    for ri, rule in enumerate(nested_list(rec, "availability")):
        w = f"availability[{ri}]"
        if not isinstance(rule, dict):
            raise Bad(f"{w}: {type(rule).__name__} where an object is expected")
        unknown = [k for k in rule if k not in ("week_days", "intervals")]
        if unknown:
            ctx.drift.setdefault("membership_type_availability", set()).update(map(str, unknown))
        intervals: list[tuple[int, int | None, int | None]] = []
        for ii, iv in enumerate(nested_list(rule, "intervals", f"{w}.intervals")):
            iw = f"{w}.intervals[{ii}]"
            if not isinstance(iv, dict):
                raise Bad(f"{iw}: {type(iv).__name__} where an object is expected")
            start = coerce_value(iv.get("from"), "int", ctx.tz, f"{iw}.from")
            end = coerce_value(iv.get("to"), "int", ctx.tz, f"{iw}.to")
            intervals.append((ii, start, end))
        days = []
        for di, d in enumerate(nested_list(rule, "week_days", f"{w}.week_days")):
            day = coerce_value(d, "int", ctx.tz, f"{w}.week_days[{di}]")
            if day is None or not 1 <= day <= 7:
                raise Bad(f"{w}.week_days[{di}]: not a week day 1-7 ({describe(d)})")
            if day not in days:
                days.append(day)
        extra = to_json({str(k): rule[k] for k in unknown}) if unknown else None
        for day in days:
            for ii, start, end in intervals or [(0, None, None)]:
                avail.append(
                    (
                        idx,
                        {
                            "id": ri,
                            "membership_type_id": tid,
                            "rule_index": ri,
                            "week_day": day,
                            "interval_index": ii,
                            "from_seconds": start,
                            "to_seconds": end,
                            "extra": extra,
                        },
                    )
                )
    return out


_MEMBERSHIP_TYPE_SOURCES: tuple[Src, ...] = (
    src("id", "id"),
    src("salon_group_id", "int"),
    src("title", "str"),
    src("category_id", "fk"),
    src("category", "json"),
    src("cost", "float"),
    src("chain_price_min", "float"),
    src("chain_price_max", "float"),
    src("period", "int"),
    src("period_unit_id", "int"),
    src("allow_freeze", "bool"),
    src("freeze_limit", "int"),
    src("freeze_limit_unit_id", "int"),
    src("is_booking_when_frozen_allowed", "bool"),
    src("is_allow_empty_code", "bool"),
    src("is_united_balance", "bool"),
    src("is_united_balance_unlimited", "bool"),
    src("united_balance_services_count", "int"),
    src("is_code_required", "bool"),
    src("balance_edit_type_id", "int"),
    src("expiration_type_id", "int"),
    src("expiration_type_title", "str"),
    src("is_chain", "bool"),
    src("weight", "int"),
    src("abonements_count", "int"),
    src("is_online_sale_enabled", "bool"),
    src("online_sale_title", "str"),
    src("online_sale_description", "str"),
    src("online_sale_price", "float"),
    src("online_sale_image", "str"),
    src("service_price_correction", "bool"),
    src("autoactivation_time", "int"),
    src("autoactivation_time_unit_id", "int"),
    src("is_archived", "bool"),
    src("date_archived", "ts"),
    src("slug", "str"),
)

# abonements_count moves with every sale: kept in each version, never a version by itself.

SOURCE = Source(
    name="membership_types",
    shape=LoadShape.REFERENCE,
    endpoints=(MEMBERSHIP_TYPES_ENDPOINT,),
    tables=(
        MEMBERSHIP_TYPES,
        MEMBERSHIP_TYPE_LOCATIONS,
        MEMBERSHIP_TYPE_AVAILABILITY,
        MEMBERSHIP_TYPE_BALANCE_LINKS,
    ),
    entity=Entity(
        sources=_MEMBERSHIP_TYPE_SOURCES,
        extra_known=frozenset(
            {"attached_location_ids", "attached_salon_ids", "availability", "balance_container"}
        ),
        row_hook=_membership_type_rows,
    ),
    served=(
        Served(
            "membership_types",
            Serving.PAGED_LIST,
            rows="membership_types",
            filters=(
                ListFilter("title", ("title",), Match.CONTAINS),
                ListFilter("is_archived", ("is_archived",), Match.FLAG),
            ),
            unknown_codes=((("expiration_type_id",), 7), (("balance_edit_type_id",), 5)),
        ),
    ),
    history=History(complete=True, ignore=frozenset({"abonements_count"})),
)
