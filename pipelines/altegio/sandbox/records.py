"""Records the world creates: membership types, certificate types and promotions built from a
write body, sold memberships built from their type, and the balance nodes they share.

Both the write operations and the daily rules build through these, so a type created through
the API and one the simulated staff created look alike, field for field and in the generator's
key order (the official schemas of the reads describe them all). Input is already validated.
"""

from datetime import date, datetime, timedelta
from typing import Any

from pipelines.altegio.sandbox.data import (
    CERTIFICATE_ITEM_TYPES,
    EXPIRATION_TYPE_TITLES,
    LOCALES,
    PROMOTION_TYPES,
    Record,
)
from pipelines.altegio.sandbox.world import (
    ACTIVE,
    CREATED,
    World,
    balance_string,
    embedded_type,
    period_days,
    stamp,
    with_status,
)

ON_SALE = 2  # E2 in the backend's reading, the one the generator titles by
DEFAULT_EXPIRATION_TYPE = ON_SALE
# Which of the chain's notification messages a promotion's two templates send.
TEMPLATE_MESSAGES = {
    ("on_changed", False): "loyalty_discount_changed",
    ("on_changed", True): "loyalty_cashback_changed",
    ("on_expiration", False): "loyalty_discount_expiration",
    ("on_expiration", True): "loyalty_cashback_expiration",
}


# ---------------------------------------------------------------- balance nodes


def service_node(world: World, chain_id: int, service_id: int) -> Record | None:
    """A service of the chain as a balance link names it, or None when it is not the chain's."""
    titles = dict(world.services(chain_id))
    if service_id not in titles:
        return None
    category = category_node(world, chain_id, service_id // 100)
    return {
        "id": service_id,
        "is_category": False,
        "category_id": service_id // 100,
        "title": titles[service_id],
        "online_sale_title": titles[service_id],
        "is_chain": True,
        "chain_price_min": float(20 + service_id % 40),
        "chain_price_max": float(60 + service_id % 60),
        "category": None if category is None else _bare_category(category),
    }


def category_node(world: World, chain_id: int, category_id: int) -> Record | None:
    """A service category of the chain (the generator derives them from service ids)."""
    for service_id, title in world.services(chain_id):
        if service_id // 100 == category_id:
            return {
                "id": category_id,
                "category_id": 1,
                "is_category": True,
                "title": f"{title} services",
                "online_sale_title": f"{title} services",
                "is_chain": True,
                "chain_price_min": float(20 + category_id % 40),
                "chain_price_max": float(60 + category_id % 60),
                "category": [],
            }
    return None


def _bare_category(node: Record) -> Record:
    keys = ("id", "category_id", "is_category", "title", "online_sale_title")
    return {k: node[k] for k in keys}


def link(node: Record, count: int, *, unlimited: bool = False) -> Record:
    """One balance link: visits of a service or of a category."""
    kind = "category" if node["is_category"] else "service"
    return {"count": 0 if unlimited else count, "is_unlimited": unlimited, kind: node}


def link_key(item: Record) -> tuple[str, int]:
    """('service'|'category', id) of a balance link."""
    kind = "service" if "service" in item else "category"
    return kind, int(item[kind]["id"])


# ---------------------------------------------------------------- membership types


def membership_type(
    world: World,
    chain_id: int,
    type_id: int,
    fields: dict[str, Any],
    links: list[Record],
    *,
    weight: int,
) -> Record:
    """A membership type from validated write fields (defaults already applied)."""
    cost = float(fields["cost"])
    expiration_type = int(fields["expiration_type_id"])
    archived = bool(fields["is_archived"])
    locations = list(fields["location_ids"])
    united = bool(fields["is_united_balance"])
    return {
        "id": type_id,
        "salon_group_id": chain_id,
        "category_id": fields["category_id"],
        "title": fields["title"],
        "period": int(fields["period"]),
        "period_unit_id": int(fields["period_unit_id"]),
        "allow_freeze": bool(fields["allow_freeze"]),
        "freeze_limit": int(fields["freeze_limit"]),
        "freeze_limit_unit_id": int(fields["freeze_limit_unit_id"]),
        "is_booking_when_frozen_allowed": bool(fields["is_booking_when_frozen_allowed"]),
        "is_allow_empty_code": bool(fields["is_allow_empty_code"]),
        "is_united_balance": united,
        "is_united_balance_unlimited": bool(fields["is_united_balance_unlimited"]),
        "is_code_required": not bool(fields["is_allow_empty_code"]),
        "balance_edit_type_id": int(fields["balance_edit_type_id"]),
        "cost": cost,
        "chain_price_min": cost,
        "chain_price_max": cost,
        "is_chain": True,
        "expiration_type_id": expiration_type,
        "expiration_type_title": EXPIRATION_TYPE_TITLES[expiration_type],
        "category": fields["category"],
        "weight": weight,
        "abonements_count": 0,
        "is_online_sale_enabled": bool(fields["is_online_sale_enabled"]),
        "online_sale_title": fields["online_sale_title"],
        "online_sale_description": fields["online_sale_description"],
        "online_sale_price": float(fields["online_sale_price"]),
        "online_sale_image": fields["online_image"],
        "service_price_correction": bool(fields["service_price_correction"]),
        "united_balance_services_count": int(fields["united_balance_services_count"])
        if united
        else 0,
        "autoactivation_time": int(fields["autoactivation_time"]),
        "autoactivation_time_unit_id": int(fields["autoactivation_time_unit_id"]),
        "attached_location_ids": locations,
        "attached_salon_ids": list(locations),
        "is_archived": archived,
        "date_archived": stamp(world.now(chain_id), None) if archived else None,
        "availability": fields["availability"],
        "balance_container": {"links": links},
    }


# ---------------------------------------------------------------- sold memberships


def fresh_sale(record: Record, created_text: str, mtype: Record, created: datetime) -> Record:
    """A membership as sold a moment ago: the type's full balance, activated when the type
    activates on sale, nothing frozen. `record` gives the id, number and sale references."""
    links = [dict(lnk) for lnk in mtype["balance_container"]["links"]]
    activated = created if mtype["expiration_type_id"] == ON_SALE else None
    validity = period_days(mtype["period"], mtype["period_unit_id"])
    sold = {
        **record,
        "balance_string": balance_string(links),
        "activated_date": None if activated is None else created_text,
        "expiration_date": stamp(activated + timedelta(days=validity), created_text)
        if activated is not None and validity
        else None,
        "is_frozen": False,
        "freeze_period": 0,
        "period": mtype["period"],
        "period_unit_id": mtype["period_unit_id"],
        "is_united_balance": mtype["is_united_balance"],
        "is_united_balance_unlimited": mtype["is_united_balance_unlimited"],
        "united_balance_services_count": mtype["united_balance_services_count"],
        "balance_container": {"links": links},
        "type": embedded_type(mtype),
    }
    return with_status(sold, ACTIVE if activated is not None else CREATED)


def activated(record: Record, moment: datetime) -> Record:
    """A created membership activated at `moment`: active, its validity counted from then."""
    like = record["created_date"]
    validity = period_days(record["period"], record["period_unit_id"])
    extra = int(record["freeze_period"])
    out = {
        **record,
        "activated_date": stamp(moment, like),
        "expiration_date": stamp(moment + timedelta(days=validity + extra), like)
        if validity
        else None,
    }
    return with_status(out, ACTIVE)


# ---------------------------------------------------------------- certificate types


def certificate_type(
    chain_id: int, type_id: int, body: dict[str, Any], *, weight: int, previous: Record | None
) -> Record:
    """A certificate type (flat read form) from a validated write body (nested form)."""
    expiration = body["expiration"]
    sale = body["online_sale"]
    balance = float(body["balance"])
    expiration_type = int(expiration["type_id"])
    item_type = int(body["item_type_id"])
    return {
        "id": type_id,
        "title": body["title"],
        "balance": balance,
        "is_multi": bool(body["is_multi"]),
        "company_group_id": chain_id,
        "category_id": body.get("category_id"),
        "weight": weight if previous is None else previous["weight"],
        "item_type_id": item_type,
        "expiration_type_id": expiration_type,
        "expiration_date": expiration.get("date") if expiration_type == 1 else None,
        "expiration_timeout": int(expiration.get("timeout") or 0) if expiration_type == 2 else 0,
        "expiration_timeout_unit_id": int(expiration.get("timeout_unit_id") or 1),
        "balance_edit_type_id": int(body["balance_edit_type_id"]),
        "is_allow_empty_code": bool(body["is_allow_empty_code"]),
        "is_serial_number_limited": False
        if previous is None
        else previous["is_serial_number_limited"],
        "is_archived": False if previous is None else previous["is_archived"],
        "date_archived": None if previous is None else previous["date_archived"],
        "online_sale_is_enabled": bool(sale["is_enabled"]),
        "online_sale_title": sale.get("title") or "",
        "online_sale_description": sale.get("description") or "",
        "online_sale_price": float(sale.get("price", balance)),
        "online_sale_image": None if previous is None else previous["online_sale_image"],
        "released_total": 0 if previous is None else previous["released_total"],
        "item_type": {"id": item_type, "title": CERTIFICATE_ITEM_TYPES[item_type]},
        "service_ids": list(body["service_ids"]),
        "salon_ids": list(body["salon_ids"]),
    }


# ---------------------------------------------------------------- promotions


def company(world: World, chain_id: int, location_id: int) -> Record:
    """A location as a promotion's `companies` block shows it."""
    group = next(g for g in world.groups() if g["id"] == chain_id)
    place = next(c for c in group["companies"] if c["id"] == location_id)
    zone, city, country, country_id, city_id, *_ = next(
        locale for locale in LOCALES if locale[0] == place["timezone_name"]
    )
    return {
        "id": location_id,
        "title": place["title"],
        "country": country,
        "country_id": country_id,
        "city": city,
        "city_id": city_id,
        "phone": place["phone"],
        "timezone": zone,
        "address": place["address"],
        "coordinate_lat": place["coordinate_lat"],
        "coordinate_lng": place["coordinate_lon"],
    }


def applicable_items(world: World, chain_id: int, body: dict[str, Any]) -> list[Record]:
    """The `applicable_items` block from the write form's `allowed_*_ids`."""
    items: list[Record] = []
    titles = dict(world.services(chain_id))
    for item_id in body.get("allowed_service_ids", []):
        if item_id in titles:
            items.append(
                {"id": item_id, "title": titles[item_id], "is_service": True, "is_category": False}
            )
        else:
            node = category_node(world, chain_id, item_id)
            title = "" if node is None else node["title"]
            items.append({"id": item_id, "title": title, "is_service": True, "is_category": True})
    for item_id in body.get("allowed_good_ids", []):
        title = f"Product {item_id}"
        items.append({"id": item_id, "title": title, "is_service": False, "is_category": False})
    for item_id in body.get("allowed_good_category_ids", []):
        title = f"Product category {item_id}"
        items.append({"id": item_id, "title": title, "is_service": False, "is_category": True})
    return items


def template(
    world: World,
    chain_id: int,
    slot: str,
    cashback: bool,
    request: dict[str, Any] | None,
    current: Record | None,
) -> Record | None:
    """A promotion's notification template from its write form `{type, body}`; None = none.

    The same type and body keep the current template (and its id); anything else is a new one.
    """
    if request is None or request.get("type", "none") == "none":
        return None
    message = TEMPLATE_MESSAGES[(slot, cashback)]
    shared = next(t for t in world.notification_templates(chain_id) if t["message_type"] == message)
    text = request.get("body") if request["type"] == "custom" else shared["body"]
    if current is not None and current["type"] == request["type"] and current["body"] == text:
        return current
    return {
        "id": world.next_id("template"),
        "type": request["type"],
        "body": text or "",
        "message_type": message,
    }


def promotion(
    world: World,
    chain_id: int,
    program_id: int,
    body: dict[str, Any],
    previous: Record | None,
    today: date,
) -> Record:
    """A promotion with every include block, from a validated create body (previous None) or
    an edit body on top of `previous` (what the edit leaves out is kept)."""
    form = {**_promotion_write_form(previous), **body}
    promo_type = form["type"]
    cashback = promo_type.startswith("cashback")
    if previous is None or "rules" in body:
        rules = [
            {
                "id": world.next_id("rule"),
                "parameter": int(rule.get("parameter", 0)),
                "value": float(rule.get("value", 0)),
                "loyalty_program_id": program_id,
                "loyalty_type_id": dict(PROMOTION_TYPES)[promo_type],
                "service_id": int(rule.get("service_id", 0)),
            }
            for rule in body["rules"]
        ]
    else:
        rules = previous["rules"]
    templates = {
        slot: template(
            world,
            chain_id,
            slot,
            cashback,
            form.get(f"{slot}_notification_template"),
            None if previous is None else previous.get(f"{slot}_notification_template"),
        )
        for slot in ("on_changed", "on_expiration")
    }
    cards = {c["id"]: c for c in world.card_types(chain_id)}
    if previous is None or any(k in body for k in ALLOWED_ITEMS):
        items = applicable_items(world, chain_id, form)
    else:
        items = previous["applicable_items"]
    record: Record = {
        "id": program_id,
        "title": form["title"],
        "type": promo_type,
        "service_item_type": form["service_item_type"],
        "good_item_type": form["good_item_type"],
        "value_unit": form["value_unit"],
        "usage_limit": int(form.get("usage_limit", 0)),
        "visit_multiplicity": int(form.get("visit_multiplicity", 0)),
        "sold_items_multiplicity": int(form.get("sold_items_multiplicity", 0)),
        "expiration_timeout": int(form.get("expiration_timeout", 0)),
        "expiration_timeout_unit": form.get("expiration_timeout_unit", "month"),
        "expiration_notification_timeout": int(form.get("expiration_notification_timeout", 0)),
        "params_source_type": form.get("params_source_type", "chain"),
        "history_start_date": form.get("history_start_date", today.isoformat()),
        "on_changed_notification_template_id": _template_id(templates["on_changed"]),
        "on_expiration_notification_template_id": _template_id(templates["on_expiration"]),
        "loyalty_card_types": [
            dict(cards[i]) for i in sorted(set(form.get("loyalty_card_type_ids", [])))
        ],
        "rules": rules,
        "companies": [company(world, chain_id, loc) for loc in sorted(set(form["company_ids"]))],
        "applicable_items": items,
    }
    for slot, block in templates.items():
        if block is not None:
            record[f"{slot}_notification_template"] = block
    return record


def _template_id(block: Record | None) -> int:
    return 0 if block is None else int(block["id"])


ALLOWED_ITEMS = ("allowed_service_ids", "allowed_good_ids", "allowed_good_category_ids")


def _promotion_write_form(promo: Record | None) -> dict[str, Any]:
    """The fields of a stored promotion under their write-form names."""
    if promo is None:
        return {}
    form: dict[str, Any] = {k: v for k, v in promo.items() if not isinstance(v, list | dict)}
    form["company_ids"] = [c["id"] for c in promo["companies"]]
    form["loyalty_card_type_ids"] = [c["id"] for c in promo["loyalty_card_types"]]
    for slot in ("on_changed", "on_expiration"):
        block = promo.get(f"{slot}_notification_template")
        form[f"{slot}_notification_template"] = (
            {"type": "none"} if block is None else {"type": block["type"], "body": block["body"]}
        )
    return form
