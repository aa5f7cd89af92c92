"""Warehouse tables of the Altegio chain-loyalty extract, declared once.

One ``pa.schema`` per table. Every column carries its meaning in field metadata ``b"doc"``
(code columns also name their enum in ``b"enum"``); every table carries its description in
schema metadata ``b"doc"``. ``normalize`` produces exactly these schemas and the data
dictionary (docs/data_dictionary.md) is rendered from them.

Conventions: ids int64; money float64 (the API sends JSON numbers, possibly fractional, in the
chain's currency; no decimal scale is documented); flags bool; timestamps
timestamp[us, UTC] (the API's offset, with or without a colon, is applied); dates date32.
Foreign keys the API sends as 0 for "none" are null. An enum code column ``<x>_id`` is
followed by its decoded label ``<x>``. Nested objects are flattened as ``parent_child``
columns, nested lists become child tables keyed by the parent id. Every table ends with
``extra`` (JSON object of the fields the API sent that this schema does not know, null when
none), ``_extracted_at`` and ``_source_endpoint``.
"""

from dataclasses import dataclass

import pyarrow as pa

TIMESTAMP = pa.timestamp("us", tz="UTC")

LINEAGE_COLUMNS = ("extra", "_extracted_at", "_source_endpoint")


@dataclass(frozen=True)
class TableSpec:
    """A warehouse table: its schema, what one row is, its key and partitioning."""

    name: str
    schema: pa.Schema
    description: str
    primary_key: tuple[str, ...]
    partition_by: tuple[str, ...]
    parent: str | None


def col(name: str, type_: pa.DataType, doc: str, *, enum: str | None = None) -> pa.Field:
    """A nullable column with its doc (and enum name, for code columns) in field metadata."""
    meta = {b"doc": doc.encode()}
    if enum is not None:
        meta[b"enum"] = enum.encode()
    return pa.field(name, type_, nullable=True, metadata=meta)


def _int(name: str, doc: str) -> pa.Field:
    return col(name, pa.int64(), doc)


def _str(name: str, doc: str) -> pa.Field:
    return col(name, pa.string(), doc)


def _bool(name: str, doc: str) -> pa.Field:
    return col(name, pa.bool_(), doc)


def _money(name: str, doc: str) -> pa.Field:
    return col(name, pa.float64(), f"{doc} Money, float64 in the chain's currency.")


def _float(name: str, doc: str) -> pa.Field:
    return col(name, pa.float64(), doc)


def _ts(name: str, doc: str) -> pa.Field:
    return col(name, TIMESTAMP, f"{doc} UTC (the API's offset applied).")


def _date(name: str, doc: str) -> pa.Field:
    return col(name, pa.date32(), doc)


def _code(name: str, enum: str, doc: str) -> list[pa.Field]:
    """Code column `<x>_id` plus its label column `<x>`."""
    label = name.removesuffix("_id")
    return [
        col(name, pa.int64(), doc, enum=enum),
        col(
            label,
            pa.string(),
            f"Label of {name} (enum {enum}); 'unknown:<code>' for an undocumented code.",
        ),
    ]


def _str_enum(name: str, enum: str, doc: str) -> pa.Field:
    return col(
        name,
        pa.string(),
        f"{doc} String enum {enum}, kept as sent; undocumented values are reported.",
        enum=enum,
    )


def _chain_id() -> pa.Field:
    return _int("chain_id", "Chain id (salon_group_id) the record was read for.")


def _lineage() -> list[pa.Field]:
    return [
        _str(
            "extra",
            "JSON object of the fields the API sent that this schema does not know "
            "(schema drift); null when none.",
        ),
        col("_extracted_at", TIMESTAMP, "When the extract read this record (UTC)."),
        _str("_source_endpoint", "Endpoint name (endpoints.ENDPOINTS) the record came from."),
    ]


def _schema(doc: str, fields: list[pa.Field]) -> pa.Schema:
    return pa.schema([*fields, *_lineage()], metadata={b"doc": doc.encode()})


def _spec(
    name: str,
    doc: str,
    fields: list[pa.Field],
    primary_key: tuple[str, ...],
    partition_by: tuple[str, ...] = ("chain_id",),
    parent: str | None = None,
) -> TableSpec:
    return TableSpec(name, _schema(doc, fields), doc, primary_key, partition_by, parent)


def _link_columns(
    parent_col: pa.Field, extra_keys: list[pa.Field], count_doc: str
) -> list[pa.Field]:
    return [
        _int(
            "id",
            "Id of the service or service category this balance line covers "
            "(= item_id; unique only together with the parent id and link_index).",
        ),
        _chain_id(),
        parent_col,
        *extra_keys,
        _int("link_index", "Position of the line in balance_container.links (0-based)."),
        _int("item_id", "Service or service-category id the line covers."),
        _bool("is_category", "True when the line covers a whole service category."),
        _int("category_id", "Category id of the covered node (0 becomes null)."),
        _str("title", "Title of the covered service or category."),
        _str("online_sale_title", "Online-sale title of the covered node."),
        _bool("is_chain", "Covered node is a chain-level service/category."),
        _money("chain_price_min", "Lowest price of the covered node across locations."),
        _money("chain_price_max", "Highest price of the covered node across locations."),
        _int("count", count_doc),
        _bool("is_unlimited", "True when the line has no visit limit."),
    ]


CHAINS = _spec(
    "chains",
    "One row per chain (salon group) the API user belongs to, from GET /groups, with the "
    "user's access flags.",
    [
        _chain_id(),
        _str("title", "Chain name."),
        _str("timezone", "IANA time zone of the chain's first location (null when unknown)."),
        _int("locations_count", "Number of locations listed for the chain."),
        *[
            _bool(f, f"Access flag {f} of the API user in this chain (API sends 1/0 or '1'/'0').")
            for f in (
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
        ],
    ],
    primary_key=("chain_id",),
)

LOCATIONS = _spec(
    "locations",
    "One row per location (company) of a chain, from GET /groups companies[].",
    [
        _int("id", "Location id (company_id / salon_id)."),
        _chain_id(),
        _str("title", "Location name."),
        _str("public_title", "Public name."),
        _int("business_group_id", "Business group id."),
        _int("business_type_id", "Business type id."),
        _int("country_id", "Country id."),
        _str("country", "Country name."),
        _int("city_id", "City id."),
        _str("city", "City name."),
        _float("timezone", "UTC offset in hours as the API sends it."),
        _str("timezone_name", "IANA time zone, e.g. America/New_York."),
        _str("address", "Street address."),
        _str("zip", "Postal code."),
        _str("phone", "Main phone."),
        col("phones", pa.list_(pa.string()), "All phones."),
        _str("site", "Web site."),
        _str("logo", "Logo URL."),
        _str("currency_short_title", "Currency short title, e.g. USD."),
        _float("coordinate_lat", "Latitude."),
        _float("coordinate_lon", "Longitude."),
        _bool("active", "Location has an active licence."),
        _bool("allow_delete_record", "Appointments may be deleted."),
        _bool("allow_change_record", "Appointments may be changed."),
    ],
    primary_key=("chain_id", "id"),
    parent="chains",
)

MEMBERSHIP_TYPES = _spec(
    "membership_types",
    "One row per membership (abonement) type of a chain, from GET "
    "/chain/{chain_id}/loyalty/abonement_types.",
    [
        _int("id", "Membership type id."),
        _chain_id(),
        _int("salon_group_id", "Chain id as the API sends it on the record."),
        _str("title", "Type name."),
        _int("category_id", "Category restriction id; null = none (0 becomes null)."),
        _str(
            "category",
            "The API's category: the string as sent (e.g. 'standard'), or the JSON of the "
            "object; null when null.",
        ),
        _money("cost", "Price of the type."),
        _money("chain_price_min", "Lowest price across locations."),
        _money("chain_price_max", "Highest price across locations."),
        _int("period", "Validity length; 0 = not set."),
        *_code("period_unit_id", "time_unit", "Unit of period (E1)."),
        _bool("allow_freeze", "Memberships of this type may be frozen."),
        _int("freeze_limit", "Maximum total freeze length."),
        *_code("freeze_limit_unit_id", "time_unit", "Unit of freeze_limit (E1)."),
        _bool("is_booking_when_frozen_allowed", "Booking allowed while frozen."),
        _bool("is_allow_empty_code", "Sale without a code allowed."),
        _bool("is_united_balance", "One shared visit balance (false = per service/category)."),
        _bool("is_united_balance_unlimited", "Shared balance is unlimited."),
        _int("united_balance_services_count", "Visits in the shared balance."),
        _bool("is_code_required", "A code is required."),
        *_code(
            "balance_edit_type_id",
            "membership_balance_edit_type",
            "Who may edit the balance (E3, conflicting docs: the 0/1/2 write-docs reading is "
            "used).",
        ),
        *_code(
            "expiration_type_id",
            "membership_expiration_type",
            "Activation mode (E2, conflicting docs: decoded from expiration_type_title when it "
            "matches a reading, else the backend-verified reading).",
        ),
        _str("expiration_type_title", "The API's own label of the activation mode."),
        _bool("is_chain", "Chain-level type."),
        _int("weight", "Sort order."),
        _int("abonements_count", "Number of active memberships of this type."),
        _bool("is_online_sale_enabled", "Sold online."),
        _str("online_sale_title", "Online-sale title."),
        _str("online_sale_description", "Online-sale description."),
        _money("online_sale_price", "Online-sale price."),
        _str("online_sale_image", "Online-sale image URL."),
        _bool("service_price_correction", "Service price may be adjusted on use."),
        _int("autoactivation_time", "Auto-activation delay length."),
        *_code("autoactivation_time_unit_id", "time_unit", "Unit of autoactivation_time (E1)."),
        _bool("is_archived", "Archived."),
        _ts("date_archived", "When archived."),
        _str("slug", "Type slug."),
    ],
    primary_key=("chain_id", "id"),
)

MEMBERSHIP_TYPE_LOCATIONS = _spec(
    "membership_type_locations",
    "One row per (membership type, location where it is sold): attached_location_ids and its "
    "old name attached_salon_ids merged and de-duplicated.",
    [
        _int("id", "Location id (= location_id)."),
        _chain_id(),
        _int("membership_type_id", "Parent membership type id."),
        _int("location_id", "Location id."),
    ],
    primary_key=("chain_id", "membership_type_id", "id"),
    parent="membership_types",
)

MEMBERSHIP_TYPE_AVAILABILITY = _spec(
    "membership_type_availability",
    "One row per (membership type, availability rule, week day, interval): availability[] "
    "expanded as week_days x intervals. A rule without intervals gives one row per week day "
    "with null bounds (whole day). No rows = usable any time.",
    [
        _int("id", "Position of the availability rule in availability[] (= rule_index)."),
        _chain_id(),
        _int("membership_type_id", "Parent membership type id."),
        _int("rule_index", "Position of the rule in availability[] (0-based)."),
        _int("week_day", "1 = Monday ... 7 = Sunday."),
        _int(
            "interval_index",
            "Position of the interval in the rule (0-based; 0 when the rule has none).",
        ),
        _int("from_seconds", "Interval start, seconds after midnight."),
        _int("to_seconds", "Interval end, seconds after midnight."),
    ],
    primary_key=("chain_id", "membership_type_id", "rule_index", "week_day", "interval_index"),
    parent="membership_types",
)

MEMBERSHIP_TYPE_BALANCE_LINKS = _spec(
    "membership_type_balance_links",
    "One row per line of a membership type's balance_container.links: a service or category "
    "the type covers and how many visits it includes.",
    _link_columns(
        _int("membership_type_id", "Parent membership type id."),
        [],
        "Visits included for this service/category.",
    ),
    primary_key=("chain_id", "membership_type_id", "link_index"),
    parent="membership_types",
)

MEMBERSHIPS = _spec(
    "memberships",
    "One row per sold membership (abonement), from GET /chain/{chain_id}/loyalty/abonements. "
    "No client or location id exists in the API object; goods_transaction_id links the sale.",
    [
        _int("id", "Membership id."),
        _chain_id(),
        _date("created_day", "created_date converted to the chain's time zone (partition)."),
        _str("number", "Membership code (string; the API sometimes sends an integer)."),
        _str("balance_string", "Human balance summary, e.g. 'Services (x5)'."),
        _bool("is_frozen", "Currently frozen."),
        _int("freeze_period", "Days frozen so far."),
        _int("period", "Validity length; 0 = not set."),
        *_code("period_unit_id", "time_unit", "Unit of period (E1)."),
        _ts("created_date", "When the membership was created (sold)."),
        _ts("activated_date", "When activated; null if not yet."),
        _ts("expiration_date", "When it expires; null if not set."),
        _bool("is_united_balance", "One shared visit balance."),
        _bool("is_united_balance_unlimited", "Shared balance is unlimited."),
        _int("united_balance_services_count", "Visits left in the shared balance."),
        _int("goods_transaction_id", "Product-sale transaction that sold it (0 becomes null)."),
        _str("slug", "Type slug."),
        *_code("status_id", "membership_status", "Status (E4), from status.id."),
        _str("status_title", "The API's status title (status.title)."),
        _str("status_extended_title", "status.extended_title."),
        _str("status_slug", "status.slug."),
        _str("status_category", "status.category (string, or JSON when not a string)."),
        _int("membership_type_id", "Membership type id (type.id)."),
        _str("membership_type_title", "Membership type title (type.title)."),
        _money("membership_type_cost", "Membership type cost (type.cost)."),
        *_code(
            "membership_type_expiration_type_id",
            "membership_expiration_type",
            "type.expiration_type_id (E2, decoded with type.expiration_type_title).",
        ),
        _str("membership_type_expiration_type_title", "type.expiration_type_title."),
    ],
    primary_key=("chain_id", "id"),
    partition_by=("chain_id", "created_day"),
)

MEMBERSHIP_BALANCE_LINKS = _spec(
    "membership_balance_links",
    "One row per line of a sold membership's balance_container.links: the remaining visits "
    "per service or category.",
    _link_columns(
        _int("membership_id", "Parent membership id."),
        [_date("created_day", "Parent membership's created_day (partition).")],
        "Remaining visits for this service/category.",
    ),
    primary_key=("chain_id", "membership_id", "link_index"),
    partition_by=("chain_id", "created_day"),
    parent="memberships",
)

CERTIFICATE_TYPES = _spec(
    "certificate_types",
    "One row per gift-certificate type of a chain, from GET "
    "/chain/{chain_id}/loyalty/certificate_types.",
    [
        _int("id", "Certificate type id."),
        _chain_id(),
        _int("company_group_id", "Chain id as the API sends it on the record."),
        _str("title", "Type name."),
        _money("balance", "Face value."),
        _bool("is_multi", "Can be spent in several goes."),
        _int("category_id", "Category id (0 becomes null)."),
        _int("weight", "Sort order."),
        *_code("item_type_id", "certificate_item_type", "What it can pay for (E5)."),
        _str("item_type_title", "The API's own item type title (item_type.title)."),
        *_code("expiration_type_id", "certificate_expiration_type", "Expiry mode (E6)."),
        _ts("expiration_date", "Fixed expiry date (expiration_type_id = 1)."),
        _int("expiration_timeout", "Validity length from sale (expiration_type_id = 2)."),
        *_code("expiration_timeout_unit_id", "time_unit", "Unit of expiration_timeout (E1)."),
        *_code("balance_edit_type_id", "certificate_balance_edit_type", "Balance editing (E7)."),
        _bool("is_allow_empty_code", "Sale without a code allowed."),
        _bool("is_serial_number_limited", "Serial numbers limited."),
        _bool("is_archived", "Archived."),
        _ts("date_archived", "When archived."),
        _bool("online_sale_is_enabled", "Sold online."),
        _str("online_sale_title", "Online-sale title."),
        _str("online_sale_description", "Online-sale description."),
        _money("online_sale_price", "Online-sale price."),
        _str("online_sale_image", "Online-sale image URL."),
        _int("released_total", "Certificates issued so far."),
    ],
    primary_key=("chain_id", "id"),
)

CERTIFICATE_TYPE_SERVICES = _spec(
    "certificate_type_services",
    "One row per (certificate type, service it is restricted to) from service_ids; no rows = "
    "unrestricted.",
    [
        _int("id", "Service id (= service_id)."),
        _chain_id(),
        _int("certificate_type_id", "Parent certificate type id."),
        _int("service_id", "Service id."),
    ],
    primary_key=("chain_id", "certificate_type_id", "id"),
    parent="certificate_types",
)

CERTIFICATE_TYPE_LOCATIONS = _spec(
    "certificate_type_locations",
    "One row per (certificate type, location) from salon_ids.",
    [
        _int("id", "Location id (= location_id)."),
        _chain_id(),
        _int("certificate_type_id", "Parent certificate type id."),
        _int("location_id", "Location id."),
    ],
    primary_key=("chain_id", "certificate_type_id", "id"),
    parent="certificate_types",
)

PROMOTIONS = _spec(
    "promotions",
    "One row per promotion (loyalty programme) of a chain: found per location by "
    "/company/{id}/loyalty/programs/search, read in full by /chain/{id}/loyalty/programs/{id}.",
    [
        _int("id", "Promotion id."),
        _chain_id(),
        _int("group_id", "Owning chain id as the API sends it (search results)."),
        _str("title", "Promotion name."),
        _str_enum("type", "promotion_type", "Promotion type (E8)."),
        *_code(
            "loyalty_type_id",
            "loyalty_type",
            "Numeric loyalty type (E13, inferred; from search results or the first rule).",
        ),
        _int("item_type_id", "Undocumented numeric item type of search results (no enum)."),
        _str_enum("service_item_type", "item_allowance", "Which services qualify (E9)."),
        _str_enum("good_item_type", "item_allowance", "Which products qualify (E9)."),
        col(
            "value_unit_id",
            pa.int64(),
            "Numeric value unit (E14, inferred; search results).",
            enum="value_unit_code",
        ),
        _str_enum(
            "value_unit",
            "value_unit",
            "Unit of rule values (E10); the label of value_unit_id when the string is absent.",
        ),
        _int("usage_limit", "Maximum applications (cashback only)."),
        _int("visit_multiplicity", "Every-Nth-visit (cashback only)."),
        _int("sold_items_multiplicity", "Services to pay for before the discount."),
        _int("current_package_progress", "Package progress (search results)."),
        _int("allowed_usages_amount", "Allowed usages (search results)."),
        _int("expiration_timeout", "Bonus/discount lifetime."),
        _str_enum("expiration_timeout_unit", "expiration_timeout_unit", "Unit of lifetime (E11)."),
        _int("expiration_notification_timeout", "Days before expiry to notify."),
        _str_enum("params_source_type", "params_source_type", "History source (E12)."),
        _date("history_start_date", "Client history counted from this date."),
        _date("first_transaction_date", "Date of the first transaction (search include)."),
        _int("on_changed_notification_template_id", "Template id on change (0 becomes null)."),
        _int("on_expiration_notification_template_id", "Template id on expiry (0 becomes null)."),
    ],
    primary_key=("chain_id", "id"),
)

PROMOTION_RULES = _spec(
    "promotion_rules",
    "One row per promotion rule (rules[], include=rules): threshold -> value.",
    [
        _int("id", "Rule id."),
        _chain_id(),
        _int("promotion_id", "Parent promotion id."),
        _float("parameter", "Threshold (0 for fixed types)."),
        _float("value", "Discount/cashback value in the promotion's value_unit."),
        _int("loyalty_program_id", "Promotion id as the rule carries it."),
        *_code("loyalty_type_id", "loyalty_type", "Numeric loyalty type (E13, inferred)."),
        _int("service_id", "Service for 'discount by condition' (0 becomes null)."),
    ],
    primary_key=("chain_id", "promotion_id", "id"),
    parent="promotions",
)

PROMOTION_APPLICABLE_ITEMS = _spec(
    "promotion_applicable_items",
    "One row per service/product (or category) a promotion applies to (applicable_items[]).",
    [
        _int("id", "Service, product or category id."),
        _chain_id(),
        _int("promotion_id", "Parent promotion id."),
        _str("title", "Item title."),
        _bool("is_service", "True = service, false = product."),
        _bool("is_category", "True = a whole category."),
    ],
    primary_key=("chain_id", "promotion_id", "id", "is_service", "is_category"),
    parent="promotions",
)

PROMOTION_LOCATIONS = _spec(
    "promotion_locations",
    "One row per (promotion, location where it runs) from companies[].",
    [
        _int("id", "Location id."),
        _chain_id(),
        _int("promotion_id", "Parent promotion id."),
        _str("title", "Location name."),
        _str("country", "Country."),
        _int("country_id", "Country id."),
        _str("city", "City."),
        _int("city_id", "City id."),
        _str("phone", "Phone."),
        _str("timezone", "Time zone as sent (a name here, e.g. America/New_York)."),
        _str("address", "Address."),
        _float("coordinate_lat", "Latitude."),
        _float("coordinate_lng", "Longitude."),
    ],
    primary_key=("chain_id", "promotion_id", "id"),
    parent="promotions",
)

PROMOTION_CARD_TYPES = _spec(
    "promotion_card_types",
    "One row per (promotion, loyalty card type it applies to) from loyalty_card_types[].",
    [
        _int("id", "Loyalty card type id."),
        _chain_id(),
        _int("promotion_id", "Parent promotion id."),
        _str("title", "Card type title."),
    ],
    primary_key=("chain_id", "promotion_id", "id"),
    parent="promotions",
)

NOTIFICATION_TEMPLATES = _spec(
    "notification_templates",
    "One row per loyalty notification template of a chain, from GET "
    "/chain/{chain_id}/loyalty/notification_message_templates/programs.",
    [
        _int("id", "Template id."),
        _chain_id(),
        _str_enum("type", "template_type", "Template size/kind (E17)."),
        _str_enum("message_type", "template_message_type", "Event the template is for (E18)."),
        _str("body", "Message text."),
    ],
    primary_key=("chain_id", "id"),
)

CARD_TYPES = _spec(
    "card_types",
    "One row per loyalty card type of a chain, from GET /chain/{chain_id}/loyalty/card_types.",
    [
        _int("id", "Card type id."),
        _chain_id(),
        _str("title", "Card type title."),
        _int("salon_group_id", "Chain id as the API sends it (location variant only)."),
    ],
    primary_key=("chain_id", "id"),
)

LOYALTY_TRANSACTIONS = _spec(
    "loyalty_transactions",
    "One row per loyalty transaction, from GET /chain/{chain_id}/loyalty/transactions read one "
    "calendar day per request. The API object has no timestamp, client or location: "
    "transaction_date is the requested day.",
    [
        _int("id", "Transaction id."),
        _chain_id(),
        _date("transaction_date", "The day requested (created_after = created_before)."),
        _int("visit_id", "Visit (0 becomes null)."),
        _int("status_id", "Status code; values not documented by Altegio (examples: 1)."),
        _money("amount", "Loyalty amount."),
        *_code(
            "type_id",
            "transaction_type",
            "Transaction type (E15), from type_id (or type.id when absent).",
        ),
        _str("type_title", "The API's own type title (type.title)."),
        _str(
            "direction",
            "E15 direction of type_id: accrual | withdrawal | expiry | discount | certificate "
            "| membership | deposit; null for an unknown code.",
        ),
        _int("card_id", "Loyalty card (0 becomes null)."),
        _int("program_id", "Promotion (0 becomes null)."),
        _int("certificate_id", "Certificate (0 becomes null)."),
        _int("abonement_id", "Membership (0 becomes null)."),
        _int("salon_group_id", "Chain whose loyalty produced it."),
        _int("item_id", "Order position (service/product) if related to a sale (0 -> null)."),
        *_code("item_type_id", "transaction_item_type", "Kind of order position (E16)."),
        _int("item_record_id", "Appointment owning the position (0 becomes null)."),
        _int("goods_transaction_id", "Product-sale transaction (0 becomes null)."),
        _int("services_transaction_id", "Service transaction (0 becomes null)."),
        _bool("is_discount", "Transaction is a discount."),
        _bool("is_loyalty_withdraw", "Loyalty application cancelled / withdrawal flag."),
    ],
    primary_key=("chain_id", "id"),
    partition_by=("chain_id", "transaction_date"),
)

QUARANTINE = TableSpec(
    "quarantine",
    pa.schema(
        [
            _str("source_table", "Table the record was meant for."),
            _int("chain_id", "Chain the record was read for (null for /groups records)."),
            _str(
                "partition_key",
                "Partition of the source table: the day for transactions/memberships "
                "(e.g. '2026-01-05'), 'all' for unpartitioned tables.",
            ),
            _int("id", "The record's id when it could be read, else null."),
            _int("record_index", "Position of the record in the batch given to normalize."),
            _str("raw_json", "The record exactly as received, as JSON."),
            _str("reason", "Why it could not be typed (field and problem)."),
            col("quarantined_at", TIMESTAMP, "Extraction time of the batch (UTC)."),
            _str("_source_endpoint", "Endpoint name the record came from."),
        ],
        metadata={
            b"doc": b"One row per raw record that could not be typed (or lost a duplicate-id "
            b"contest); kept verbatim with the reason, never dropped."
        },
    ),
    "One row per raw record that could not be typed (or lost a duplicate-id contest); kept "
    "verbatim with the reason, never dropped.",
    ("source_table", "chain_id", "partition_key", "record_index"),
    ("source_table", "chain_id", "partition_key"),
    None,
)

_LOAD_STEPS_DOC = (
    "One row per load step (one table family, one run): what it asked the API, what it got "
    "and what it wrote. Operational, not API data: the data-quality notebook reads it."
)
LOAD_STEPS = TableSpec(
    "load_steps",
    pa.schema(
        [
            _str("step", "Table family the step loaded (its main table's name)."),
            _str("run_id", "Identifier of the run (the Dagster run id)."),
            _ts("started_at", "When the step started (UTC)."),
            _ts("finished_at", "When the step finished (UTC)."),
            _date("days_from", "First day of the step's window (daily tables), else null."),
            _date("days_to", "Last day of the step's window (daily tables), else null."),
            _int("chains_loaded", "Chains loaded."),
            _int("chains_skipped", "Chains skipped for lack of rights (403 or a flag of 0)."),
            _int("chains_failed", "Chains that failed (their partitions kept the old state)."),
            _int("chains_not_ready", "Chains whose requested days had not ended yet."),
            _str("chain_outcomes", "JSON list: chain id, status, reason, row counts."),
            _int("api_reported_rows", "Rows the API's pages held (page-boundary repeats too)."),
            _int("rows_received", "Rows received once page-boundary repeats were removed."),
            _int("rows_written", "Rows written to the step's main table."),
            _int("rows_quarantined", "Records refused into the quarantine table."),
            _int("partitions_written", "Lake partitions replaced."),
            _int("requests", "HTTP requests made (retries included)."),
            _int("retries", "Requests that were retries."),
            _int("http_429", "Answers 429 (rate limited)."),
            _int("bytes_received", "Response body bytes received."),
            _float("duration_s", "Wall time of the step, seconds."),
            _str("schema_drift", "JSON object: table -> field names the schema does not know."),
            _str("unknown_codes", "JSON object: table.column -> enum codes outside the contract."),
        ],
        metadata={b"doc": _LOAD_STEPS_DOC.encode()},
    ),
    _LOAD_STEPS_DOC,
    ("step", "run_id"),
    ("step", "run_id"),
    None,
)

TABLES: dict[str, TableSpec] = {
    t.name: t
    for t in (
        CHAINS,
        LOCATIONS,
        MEMBERSHIP_TYPES,
        MEMBERSHIP_TYPE_LOCATIONS,
        MEMBERSHIP_TYPE_AVAILABILITY,
        MEMBERSHIP_TYPE_BALANCE_LINKS,
        MEMBERSHIPS,
        MEMBERSHIP_BALANCE_LINKS,
        CERTIFICATE_TYPES,
        CERTIFICATE_TYPE_SERVICES,
        CERTIFICATE_TYPE_LOCATIONS,
        PROMOTIONS,
        PROMOTION_RULES,
        PROMOTION_APPLICABLE_ITEMS,
        PROMOTION_LOCATIONS,
        PROMOTION_CARD_TYPES,
        NOTIFICATION_TEMPLATES,
        CARD_TYPES,
        LOYALTY_TRANSACTIONS,
        QUARANTINE,
        LOAD_STEPS,
    )
}
# Tables the pipeline writes about itself rather than from API records.
OPERATIONAL_TABLES = ("quarantine", "load_steps")

CHILDREN: dict[str, tuple[str, ...]] = {
    name: tuple(t.name for t in TABLES.values() if t.parent == name and name != "chains")
    for name in TABLES
}
"""Child tables each main table produces in the same NormalizedBatch (locations come from
normalize_groups together with chains)."""
