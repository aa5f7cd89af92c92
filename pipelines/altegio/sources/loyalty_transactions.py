"""Loyalty transactions of a chain: `GET /chain/{chain_id}/loyalty/transactions` (CONTRACT §5.7).

The API object has no timestamp, client or location: each is read in a one-day window
(created_after = created_before = the day; both bounds inclusive Y-m-d, 422 without them) and
stamped with that day (`transaction_date`).
"""

from pipelines.altegio.endpoints import UNDOCUMENTED_REQUEST_PAGE_SIZE, Endpoint, Paging, TotalIn
from pipelines.altegio.enums import TRANSACTION_TYPE
from pipelines.altegio.normalize.engine import Column, Context, Entity, Src, src
from pipelines.altegio.schema import (
    bool_col,
    chain_id_col,
    code_cols,
    date_col,
    int_col,
    money_col,
    str_col,
    table_spec,
)
from pipelines.altegio.sources.base import LoadShape, Served, Serving, Source

TRANSACTIONS = Endpoint(
    name="transactions",
    path="/chain/{chain_id}/loyalty/transactions",
    paging=Paging.PAGE_COUNT,
    total=TotalIn.PAGE_COUNT,
    default_page_size=25,
    request_page_size=UNDOCUMENTED_REQUEST_PAGE_SIZE,
    access_flag="loyalty_access",
    array_params=("types", "company_ids", "visit_ids"),
    window_params=("created_after", "created_before"),
)

LOYALTY_TRANSACTIONS = table_spec(
    "loyalty_transactions",
    "One row per loyalty transaction, from GET /chain/{chain_id}/loyalty/transactions read one "
    "calendar day per request. The API object has no timestamp, client or location: "
    "transaction_date is the requested day.",
    [
        int_col("id", "Transaction id."),
        chain_id_col(),
        date_col("transaction_date", "The day requested (created_after = created_before)."),
        int_col("visit_id", "Visit (0 becomes null)."),
        int_col("status_id", "Status code; values not documented by Altegio (examples: 1)."),
        money_col("amount", "Loyalty amount."),
        *code_cols(
            "type_id",
            "transaction_type",
            "Transaction type (E15), from type_id (or type.id when absent).",
        ),
        str_col("type_title", "The API's own type title (type.title)."),
        str_col(
            "direction",
            "E15 direction of type_id: accrual | withdrawal | expiry | discount | certificate "
            "| membership | deposit; null for an unknown code.",
        ),
        int_col("card_id", "Loyalty card (0 becomes null)."),
        int_col("program_id", "Promotion (0 becomes null)."),
        int_col("certificate_id", "Certificate (0 becomes null)."),
        int_col("abonement_id", "Membership (0 becomes null)."),
        int_col("salon_group_id", "Chain whose loyalty produced it."),
        int_col("item_id", "Order position (service/product) if related to a sale (0 -> null)."),
        *code_cols("item_type_id", "transaction_item_type", "Kind of order position (E16)."),
        int_col("item_record_id", "Appointment owning the position (0 becomes null)."),
        int_col("goods_transaction_id", "Product-sale transaction (0 becomes null)."),
        int_col("services_transaction_id", "Service transaction (0 becomes null)."),
        bool_col("is_discount", "Transaction is a discount."),
        bool_col("is_loyalty_withdraw", "Loyalty application cancelled / withdrawal flag."),
    ],
    primary_key=("chain_id", "id"),
    partition_by=("chain_id", "transaction_date"),
)


def _transaction_columns(cols: dict[str, Column], bad: dict[int, str], ctx: Context) -> None:
    top = cols["type_id"]
    nested = cols.pop("_type_obj_id")
    if any(v is None for v in top.values):
        cols["type_id"] = Column(
            [a if a is not None else b for a, b in zip(top.values, nested.values, strict=False)]
        )
    codes = cols["type_id"].values
    mapping = {c: _direction(c) for c in set(codes)}
    cols["direction"] = Column([mapping[c] for c in codes])


def _direction(code: int | None) -> str | None:
    value = None if code is None else TRANSACTION_TYPE.values.get(code)
    return None if value is None else value.direction


_TRANSACTION_SOURCES: tuple[Src, ...] = (
    src("id", "id"),
    src("visit_id", "fk"),
    src("status_id", "int"),
    src("amount", "float"),
    src("type_id", "int"),
    src("_type_obj_id", "int", "type", "id"),
    src("type_title", "str", "type", "title"),
    src("card_id", "fk"),
    src("program_id", "fk"),
    src("certificate_id", "fk"),
    src("abonement_id", "fk"),
    src("salon_group_id", "int"),
    src("item_id", "fk"),
    src("item_type_id", "int"),
    src("item_record_id", "fk"),
    src("goods_transaction_id", "fk"),
    src("services_transaction_id", "fk"),
    src("is_discount", "bool"),
    src("is_loyalty_withdraw", "bool"),
)

SOURCE = Source(
    name="loyalty_transactions",
    shape=LoadShape.DAILY,
    endpoints=(TRANSACTIONS,),
    tables=(LOYALTY_TRANSACTIONS,),
    entity=Entity(
        sources=_TRANSACTION_SOURCES,
        extra_known=frozenset({"type"}),
        nested_known={"type": frozenset({"id", "title"})},
        columns_hook=_transaction_columns,
        day_column="transaction_date",
    ),
    served=(
        Served(
            "transactions",
            Serving.TRANSACTIONS,
            unknown_codes=(
                (("type_id",), 99),
                (("type",), {"id": 99, "title": "Unknown operation"}),
                (("item_type_id",), 3),
            ),
            undocumented_ids=("client_id",),
        ),
    ),
)
