"""Client accounts (deposits) of a chain: `GET /deposits/chain/{chain_id}` (CONTRACT §5.9), each
with its deposit type and its client; `page`/`limit` paging with a `meta.count` (a page count,
not a total, CONTRACT §6), filters `balance_from`/`balance_to`, gated by `deposits_access`.

One row per client account, its type flattened as `deposit_type_*`. The client's name and phone
are personal data: the client is kept as its id and a keyed hash of its phone
(`client_phone_hash`, pipelines.altegio.personal); the name and the phone themselves are never
stored, not in the table, not in `extra`, not in the quarantine.
"""

from pipelines.altegio.endpoints import UNDOCUMENTED_REQUEST_PAGE_SIZE, Endpoint, Paging, TotalIn
from pipelines.altegio.normalize.engine import Column, Context, Entity, src
from pipelines.altegio.personal import phone_hash
from pipelines.altegio.schema import (
    bool_col,
    chain_id_col,
    int_col,
    money_col,
    str_col,
    table_spec,
    ts_col,
)
from pipelines.altegio.sources.base import ListFilter, LoadShape, Match, Served, Serving, Source

DEPOSITS_ENDPOINT = Endpoint(
    name="deposits",
    path="/deposits/chain/{chain_id}",
    paging=Paging.PAGE_LIMIT,
    total=TotalIn.PAGE_COUNT,
    request_page_size=UNDOCUMENTED_REQUEST_PAGE_SIZE,
    access_flag="deposits_access",
    record_id=("deposit", "id"),
)

DEPOSITS = table_spec(
    "deposits",
    "One row per client account (deposit) of a chain, from GET /deposits/chain/{chain_id}, with "
    "its deposit type. The client is kept as its id and a keyed hash of its phone, never its "
    "name or phone.",
    [
        int_col("id", "Client account id (deposit.id)."),
        chain_id_col(),
        int_col("salon_group_id", "Chain id as the API sends it on the account."),
        int_col(
            "deposit_type_id",
            "Deposit type id (deposit.deposit_type_id, else deposit_type.id; 0 becomes null).",
        ),
        int_col("deposit_type_salon_group_id", "Chain id of the deposit type (deposit_type)."),
        str_col("deposit_type_title", "Deposit type name (deposit_type.title)."),
        ts_col("deposit_type_date_create", "When the deposit type was created."),
        bool_col("deposit_type_deleted", "The deposit type is deleted."),
        money_col("initial_balance", "Balance the account was opened with."),
        money_col("balance", "Balance now."),
        money_col("reserved_balance", "Part of the balance reserved, not yet spent."),
        bool_col("blocked", "The account is blocked."),
        ts_col("date_create", "When the account was opened."),
        int_col("client_id", "Client id (client.id; 0 becomes null)."),
        str_col(
            "client_phone_hash",
            "Keyed hash of the client's phone: hex HMAC-SHA256 of its digits under "
            "ALTEGIO_PHONE_HASH_KEY (else the data directory's own key); equal phones hash "
            "alike within a warehouse. Null without a phone. The phone is never stored.",
        ),
    ],
    primary_key=("chain_id", "id"),
)

_SOURCES = (
    src("id", "id", "deposit", "id"),
    src("salon_group_id", "int", "deposit", "salon_group_id"),
    src("deposit_type_id", "fk", "deposit", "deposit_type_id"),
    src("_deposit_type_obj_id", "fk", "deposit_type", "id"),
    src("deposit_type_salon_group_id", "int", "deposit_type", "salon_group_id"),
    src("deposit_type_title", "str", "deposit_type", "title"),
    src("deposit_type_date_create", "ts", "deposit_type", "date_create"),
    src("deposit_type_deleted", "bool", "deposit_type", "deleted"),
    src("initial_balance", "float", "deposit", "initial_balance"),
    src("balance", "float", "deposit", "balance"),
    src("reserved_balance", "float", "deposit", "reserved_balance"),
    src("blocked", "bool", "deposit", "blocked"),
    src("date_create", "ts", "deposit", "date_create"),
    src("client_id", "fk", "client", "id"),
    src("_client_phone", "str", "client", "phone"),
)


def _deposit_columns(cols: dict[str, Column], bad: dict[int, str], ctx: Context) -> None:
    nested = cols.pop("_deposit_type_obj_id").values
    top = cols["deposit_type_id"].values
    if any(v is None for v in top):
        cols["deposit_type_id"] = Column(
            [a if a is not None else b for a, b in zip(top, nested, strict=True)]
        )
    # The phone leaves here as its keyed hash, and only so.
    if ctx.personal_key is None:
        raise ValueError("deposits hold personal data: a hash key is required")
    phones = cols.pop("_client_phone").values
    cols["client_phone_hash"] = Column([phone_hash(ctx.personal_key, p) for p in phones])


SOURCE = Source(
    name="deposits",
    shape=LoadShape.REFERENCE,
    endpoints=(DEPOSITS_ENDPOINT,),
    tables=(DEPOSITS,),
    entity=Entity(
        sources=_SOURCES,
        nested_known={
            "deposit": frozenset(
                {
                    "id",
                    "salon_group_id",
                    "deposit_type_id",
                    "initial_balance",
                    "balance",
                    "reserved_balance",
                    "blocked",
                    "date_create",
                }
            ),
            "deposit_type": frozenset({"id", "salon_group_id", "title", "date_create", "deleted"}),
            "client": frozenset({"id", "name", "phone"}),
        },
        columns_hook=_deposit_columns,
        personal={"client": frozenset({"id"})},
        needs_personal_key=True,
    ),
    served=(
        Served(
            "deposits",
            Serving.PAGED_LIST,
            rows="deposits",
            filters=(
                ListFilter("balance_from", ("deposit", "balance"), Match.AT_LEAST),
                ListFilter("balance_to", ("deposit", "balance"), Match.AT_MOST),
            ),
        ),
    ),
)
