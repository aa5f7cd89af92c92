"""Loyalty notification templates of a chain:
`GET /chain/{chain_id}/loyalty/notification_message_templates/programs` (CONTRACT §5.8), a
bare array."""

from pipelines.altegio.endpoints import Endpoint, Envelope
from pipelines.altegio.normalize.engine import Entity, src
from pipelines.altegio.schema import (
    chain_id_col,
    int_col,
    str_col,
    str_enum_col,
    table_spec,
)
from pipelines.altegio.sources.base import History, LoadShape, Served, Serving, Source

NOTIFICATION_TEMPLATES_ENDPOINT = Endpoint(
    name="notification_templates",
    path="/chain/{chain_id}/loyalty/notification_message_templates/programs",
    envelope=Envelope.BARE_ARRAY,
    access_flag="loyalty_access",
)

NOTIFICATION_TEMPLATES = table_spec(
    "notification_templates",
    "One row per loyalty notification template of a chain, from GET "
    "/chain/{chain_id}/loyalty/notification_message_templates/programs.",
    [
        int_col("id", "Template id."),
        chain_id_col(),
        str_enum_col("type", "template_type", "Template size/kind (E17)."),
        str_enum_col("message_type", "template_message_type", "Event the template is for (E18)."),
        str_col("body", "Message text."),
    ],
    primary_key=("chain_id", "id"),
)


SOURCE = Source(
    name="notification_templates",
    shape=LoadShape.REFERENCE,
    endpoints=(NOTIFICATION_TEMPLATES_ENDPOINT,),
    tables=(NOTIFICATION_TEMPLATES,),
    entity=Entity(
        sources=(
            src("id", "id"),
            src("type", "str"),
            src("message_type", "str"),
            src("body", "str"),
        ),
    ),
    served=(
        Served(
            "notification_templates",
            Serving.BARE_LIST,
            rows="notification_templates",
            unknown_codes=((("message_type",), "loyalty_new_message_kind"),),
        ),
    ),
    history=History(complete=True),
)
