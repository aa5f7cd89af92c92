"""Every source table of the extract, declared once: `SOURCES` (ordered).

Each module here declares one source table family as a `Source` (see base.py): its endpoints,
load shape, tables, normalize mapping and sandbox serving. Adding a read endpoint is a module
here, its sandbox data and its tests (docs/internals.md, "Adding an endpoint").
"""

from pipelines.altegio.sources import (
    card_types,
    certificate_types,
    chains,
    deposits,
    loyalty_transactions,
    membership_types,
    memberships,
    notification_templates,
    promotions,
)
from pipelines.altegio.sources.base import (
    ListFilter,
    LoadShape,
    Match,
    Served,
    Serving,
    Source,
)

__all__ = [
    "SOURCES",
    "ListFilter",
    "LoadShape",
    "Match",
    "Served",
    "Serving",
    "Source",
    "groups_source",
]

SOURCES: dict[str, Source] = {
    module.SOURCE.name: module.SOURCE
    for module in (
        chains,
        membership_types,
        memberships,
        certificate_types,
        promotions,
        notification_templates,
        card_types,
        loyalty_transactions,
        deposits,
    )
}


def groups_source() -> Source:
    """The source that discovers the chains (GET /groups); every other one is read per chain."""
    return next(s for s in SOURCES.values() if s.shape is LoadShape.GROUPS)
