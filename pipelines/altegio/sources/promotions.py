"""Promotions (loyalty programmes) of a chain, CONTRACT §5.6: there is no chain-level list, so
each location is searched (`GET /company/{location_id}/loyalty/programs/search`, the same
promotion shows up at each of its locations) and each promotion read in full by id
(`GET /chain/{chain_id}/loyalty/programs/{program_id}` with every include block)."""

from typing import Any

import pyarrow as pa

from pipelines.altegio.endpoints import Endpoint, Envelope, TotalIn
from pipelines.altegio.enums import ENUMS
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
    code_cols,
    col,
    date_col,
    float_col,
    int_col,
    str_col,
    str_enum_col,
    table_spec,
)
from pipelines.altegio.sources.base import History, LoadShape, Served, Serving, Source

# The detail blocks asked for on every read by id.
INCLUDES = (
    "rules",
    "applicable_items",
    "companies",
    "loyalty_card_types",
    "on_changed_notification_template",
    "on_expiration_notification_template",
)

# The only way to list promotions; the same promotion appears at several locations.
PROMOTION_SEARCH = Endpoint(
    name="promotion_search",
    path="/company/{location_id}/loyalty/programs/search",
    total=TotalIn.PAGE_COUNT,
    access_flag="loyalty_programs_access",
)

PROMOTION = Endpoint(
    name="promotion",
    path="/chain/{chain_id}/loyalty/programs/{program_id}",
    envelope=Envelope.BARE_OBJECT,
    access_flag="loyalty_programs_access",
    fixed_params=(("include", ",".join(INCLUDES)),),
)

PROMOTIONS = table_spec(
    "promotions",
    "One row per promotion (loyalty programme) of a chain: found per location by "
    "/company/{id}/loyalty/programs/search, read in full by /chain/{id}/loyalty/programs/{id}.",
    [
        int_col("id", "Promotion id."),
        chain_id_col(),
        int_col("group_id", "Owning chain id as the API sends it (search results)."),
        str_col("title", "Promotion name."),
        str_enum_col("type", "promotion_type", "Promotion type (E8)."),
        *code_cols(
            "loyalty_type_id",
            "loyalty_type",
            "Numeric loyalty type (E13, inferred; from search results or the first rule).",
        ),
        int_col("item_type_id", "Undocumented numeric item type of search results (no enum)."),
        str_enum_col("service_item_type", "item_allowance", "Which services qualify (E9)."),
        str_enum_col("good_item_type", "item_allowance", "Which products qualify (E9)."),
        col(
            "value_unit_id",
            pa.int64(),
            "Numeric value unit (E14, inferred; search results).",
            enum="value_unit_code",
        ),
        str_enum_col(
            "value_unit",
            "value_unit",
            "Unit of rule values (E10); the label of value_unit_id when the string is absent.",
        ),
        int_col("usage_limit", "Maximum applications (cashback only)."),
        int_col("visit_multiplicity", "Every-Nth-visit (cashback only)."),
        int_col("sold_items_multiplicity", "Services to pay for before the discount."),
        int_col("current_package_progress", "Package progress (search results)."),
        int_col("allowed_usages_amount", "Allowed usages (search results)."),
        int_col("expiration_timeout", "Bonus/discount lifetime."),
        str_enum_col(
            "expiration_timeout_unit", "expiration_timeout_unit", "Unit of lifetime (E11)."
        ),
        int_col("expiration_notification_timeout", "Days before expiry to notify."),
        str_enum_col("params_source_type", "params_source_type", "History source (E12)."),
        date_col("history_start_date", "Client history counted from this date."),
        date_col("first_transaction_date", "Date of the first transaction (search include)."),
        int_col("on_changed_notification_template_id", "Template id on change (0 becomes null)."),
        int_col(
            "on_expiration_notification_template_id", "Template id on expiry (0 becomes null)."
        ),
    ],
    primary_key=("chain_id", "id"),
)

PROMOTION_RULES = table_spec(
    "promotion_rules",
    "One row per promotion rule (rules[], include=rules): threshold -> value.",
    [
        int_col("id", "Rule id."),
        chain_id_col(),
        int_col("promotion_id", "Parent promotion id."),
        float_col("parameter", "Threshold (0 for fixed types)."),
        float_col("value", "Discount/cashback value in the promotion's value_unit."),
        int_col("loyalty_program_id", "Promotion id as the rule carries it."),
        *code_cols("loyalty_type_id", "loyalty_type", "Numeric loyalty type (E13, inferred)."),
        int_col("service_id", "Service for 'discount by condition' (0 becomes null)."),
    ],
    primary_key=("chain_id", "promotion_id", "id"),
    parent="promotions",
)

PROMOTION_APPLICABLE_ITEMS = table_spec(
    "promotion_applicable_items",
    "One row per service/product (or category) a promotion applies to (applicable_items[]).",
    [
        int_col("id", "Service, product or category id."),
        chain_id_col(),
        int_col("promotion_id", "Parent promotion id."),
        str_col("title", "Item title."),
        bool_col("is_service", "True = service, false = product."),
        bool_col("is_category", "True = a whole category."),
    ],
    primary_key=("chain_id", "promotion_id", "id", "is_service", "is_category"),
    parent="promotions",
)

PROMOTION_LOCATIONS = table_spec(
    "promotion_locations",
    "One row per (promotion, location where it runs) from companies[].",
    [
        int_col("id", "Location id."),
        chain_id_col(),
        int_col("promotion_id", "Parent promotion id."),
        str_col("title", "Location name."),
        str_col("country", "Country."),
        int_col("country_id", "Country id."),
        str_col("city", "City."),
        int_col("city_id", "City id."),
        str_col("phone", "Phone."),
        str_col("timezone", "Time zone as sent (a name here, e.g. America/New_York)."),
        str_col("address", "Address."),
        float_col("coordinate_lat", "Latitude."),
        float_col("coordinate_lng", "Longitude."),
    ],
    primary_key=("chain_id", "promotion_id", "id"),
    parent="promotions",
)

PROMOTION_CARD_TYPES = table_spec(
    "promotion_card_types",
    "One row per (promotion, loyalty card type it applies to) from loyalty_card_types[].",
    [
        int_col("id", "Loyalty card type id."),
        chain_id_col(),
        int_col("promotion_id", "Parent promotion id."),
        str_col("title", "Card type title."),
    ],
    primary_key=("chain_id", "promotion_id", "id"),
    parent="promotions",
)


_RULE_SPEC: tuple[Src, ...] = (
    src("id", "id"),
    src("parameter", "float"),
    src("value", "float"),
    src("loyalty_program_id", "int"),
    src("loyalty_type_id", "int"),
    src("service_id", "fk"),
)
_ITEM_SPEC: tuple[Src, ...] = (
    src("id", "id"),
    src("title", "str"),
    src("is_service", "bool"),
    src("is_category", "bool"),
)
_COMPANY_SPEC: tuple[Src, ...] = (
    src("id", "id"),
    src("title", "str"),
    src("country", "str"),
    src("country_id", "int"),
    src("city", "str"),
    src("city_id", "int"),
    src("phone", "str"),
    src("timezone", "str"),
    src("address", "str"),
    src("coordinate_lat", "float"),
    src("coordinate_lng", "float"),
)
_CARD_TYPE_SPEC: tuple[Src, ...] = (src("id", "id"), src("title", "str"))


def _promotion_rows(
    rec: dict[Any, Any], idx: int, ctx: Context, cols: dict[str, Column]
) -> ChildRows:
    pid = cols["id"].values[idx]
    out: ChildRows = {}
    for table, key, spec in (
        ("promotion_rules", "rules", _RULE_SPEC),
        ("promotion_applicable_items", "applicable_items", _ITEM_SPEC),
        ("promotion_locations", "companies", _COMPANY_SPEC),
        ("promotion_card_types", "loyalty_card_types", _CARD_TYPE_SPEC),
    ):
        rows = out.setdefault(table, [])
        seen: set[tuple[Any, ...]] = set()
        for i, obj in enumerate(nested_list(rec, key)):
            row = child_row(obj, spec, f"{key}[{i}]", table, ctx)
            row["promotion_id"] = pid
            dedupe = (row["id"], row.get("is_service"), row.get("is_category"))
            if dedupe in seen:
                continue
            seen.add(dedupe)
            rows.append((idx, row))
    # E13: the detail object has no loyalty_type_id; its rules carry it.
    if cols["loyalty_type_id"].values[idx] is None:
        for _, rule in out["promotion_rules"]:
            if rule.get("loyalty_type_id") is not None:
                cols["loyalty_type_id"].values[idx] = rule["loyalty_type_id"]
                cols["loyalty_type_id"].array = None
                break
    promotion_type = rec.get("type")
    if isinstance(promotion_type, str) and ENUMS["promotion_type"].is_known(promotion_type):
        learned = ctx.learned_labels.setdefault("loyalty_type", {})
        codes = [cols["loyalty_type_id"].values[idx]]
        codes += [rule.get("loyalty_type_id") for _, rule in out["promotion_rules"]]
        for code in codes:
            if isinstance(code, int):
                learned.setdefault(code, promotion_type)
    return out


def _promotion_columns(cols: dict[str, Column], bad: dict[int, str], ctx: Context) -> None:
    # E14: value_unit_id is only a fallback for the documented string value_unit.
    unit = cols["value_unit"]
    if any(v is None for v in unit.values):
        codes = cols["value_unit_id"].values
        enum = ENUMS["value_unit_code"]
        unit.values = [
            v if v is not None or c is None else enum.label(c)
            for v, c in zip(unit.values, codes, strict=False)
        ]
        unit.array = None


_PROMOTION_SOURCES: tuple[Src, ...] = (
    src("id", "id"),
    src("group_id", "int"),
    src("title", "str"),
    src("type", "str"),
    src("loyalty_type_id", "int"),
    src("item_type_id", "int"),
    src("service_item_type", "str"),
    src("good_item_type", "str"),
    src("value_unit_id", "int"),
    src("value_unit", "str"),
    src("usage_limit", "int"),
    src("visit_multiplicity", "int"),
    src("sold_items_multiplicity", "int"),
    src("current_package_progress", "int"),
    src("allowed_usages_amount", "int"),
    src("expiration_timeout", "int"),
    src("expiration_timeout_unit", "str"),
    src("expiration_notification_timeout", "int"),
    src("params_source_type", "str"),
    src("history_start_date", "date"),
    src("first_transaction_date", "date"),
    src("on_changed_notification_template_id", "fk"),
    src("on_expiration_notification_template_id", "fk"),
)

_UNKNOWN_TYPE = ((("type",), "cashback_mystery"),)

SOURCE = Source(
    name="promotions",
    shape=LoadShape.LOCATION_SEARCH_THEN_DETAIL,
    endpoints=(PROMOTION_SEARCH, PROMOTION),
    tables=(
        PROMOTIONS,
        PROMOTION_RULES,
        PROMOTION_APPLICABLE_ITEMS,
        PROMOTION_LOCATIONS,
        PROMOTION_CARD_TYPES,
    ),
    entity=Entity(
        sources=_PROMOTION_SOURCES,
        extra_known=frozenset(INCLUDES),
        columns_hook=_promotion_columns,
        row_hook=_promotion_rows,
    ),
    served=(
        Served(
            "promotion_search",
            Serving.PROMOTION_SEARCH,
            unknown_codes=_UNKNOWN_TYPE,
        ),
        Served("promotion", Serving.PROMOTION, unknown_codes=_UNKNOWN_TYPE),
    ),
    history=History(complete=True),
)
