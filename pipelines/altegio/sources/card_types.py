"""Loyalty card types of a chain: `GET /chain/{chain_id}/loyalty/card_types` (CONTRACT §5.9),
a bare array."""

from pipelines.altegio.endpoints import Endpoint, Envelope
from pipelines.altegio.normalize.engine import Entity, src
from pipelines.altegio.schema import (
    chain_id_col,
    int_col,
    str_col,
    table_spec,
)
from pipelines.altegio.sources.base import History, LoadShape, Served, Serving, Source

CARD_TYPES_ENDPOINT = Endpoint(
    name="card_types",
    path="/chain/{chain_id}/loyalty/card_types",
    envelope=Envelope.BARE_ARRAY,
    access_flag="loyalty_access",
)

CARD_TYPES = table_spec(
    "card_types",
    "One row per loyalty card type of a chain, from GET /chain/{chain_id}/loyalty/card_types.",
    [
        int_col("id", "Card type id."),
        chain_id_col(),
        str_col("title", "Card type title."),
        int_col("salon_group_id", "Chain id as the API sends it (location variant only)."),
    ],
    primary_key=("chain_id", "id"),
)


SOURCE = Source(
    name="card_types",
    shape=LoadShape.REFERENCE,
    endpoints=(CARD_TYPES_ENDPOINT,),
    tables=(CARD_TYPES,),
    entity=Entity(
        sources=(src("id", "id"), src("title", "str"), src("salon_group_id", "int")),
        extra_known=frozenset({"salon_group"}),
    ),
    served=(Served("card_types", Serving.BARE_LIST, rows="card_types"),),
    history=History(complete=True),
)
