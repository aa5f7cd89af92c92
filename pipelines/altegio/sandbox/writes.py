"""What each write operation (and read by id) of CONTRACT §5.10 does to the world and answers.

One handler per `pipelines.altegio.operations.OPERATIONS` entry: it validates the body, refuses
with the documented status and body shape, changes the world, and answers as the backend does
(including where that departs from the official schema: the operation says where). Routing,
authentication, rights (the /groups flags) and faults are the server's; a handler sees one
`Call` for a chain the caller may write to.
"""

import copy
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from pipelines.altegio.operations import Answer, Operation
from pipelines.altegio.sandbox import records
from pipelines.altegio.sandbox.data import Record, parse_timestamp, promotion_view
from pipelines.altegio.sandbox.validation import (
    ARCHIVE_VALUES,
    CERTIFICATE_TYPE,
    FREEZE,
    MEMBERSHIP_TYPE_CREATE,
    MEMBERSHIP_TYPE_UPDATE,
    PROMOTION_CREATE,
    PROMOTION_UPDATE,
    RESTORE,
    SET_BALANCE,
    SET_PERIOD,
    UNITS,
    Errors,
    Field,
    lookup,
    parse_moment,
    validate,
)
from pipelines.altegio.sandbox.world import (
    ACTIVE,
    CREATED,
    EXPIRED,
    LIVE_STATUSES,
    WASTED,
    World,
    balance_string,
    extend,
    period_days,
    stamp,
    visits_left,
    with_status,
)

MSG_ERROR = "An error has occurred"
MSG_FORBIDDEN = "Access denied."
MSG_TYPE_NOT_FOUND = "Membership type not found"
MSG_SOURCE_NOT_FOUND = "Source membership type not found"
MSG_TYPE_IN_USE = "Membership type is in use: archive it instead"
MSG_TYPE_NOT_DELETED = "Membership type is not deleted"
MSG_MEMBERSHIP_NOT_FOUND = "Subscription not found"
MSG_CANNOT_FREEZE = "Subscription cannot be frozen"
MSG_FREEZE_LIMIT = "Freeze period exceeds limit"
MSG_NOT_FROZEN = "Subscription is not frozen"
MSG_CANNOT_CHANGE_BALANCE = "Cannot change balance"
MSG_INVALID_SERVICE = "Invalid service ID"
MSG_CANNOT_CHANGE_PERIOD = "Cannot change period"
MSG_INVALID_UNIT = "Invalid period unit"
MSG_CERTIFICATE_NOT_FOUND = "Certificate type not found"
MSG_CERTIFICATE_ISSUED = "Cannot delete certificate type with issued certificates"
MSG_CERTIFICATE_ISSUED_UPDATE = "Cannot update certificate types that have already been issued"
MSG_VALIDATION = "Validation error"
ARCHIVE_ERROR_KEY = "[is_archived]"  # the backend brackets this one key [altegio-mcp]
ARCHIVE_ERROR = "The value you selected is invalid"

# What a PUT keeps once a membership of the type was sold: price, validity, activation,
# sharing and the balance model (§5.10.2 [altegio-mcp]); services are handled apart.
SOLD_TERMS = (
    "cost",
    "chain_price_min",
    "chain_price_max",
    "period",
    "period_unit_id",
    "expiration_type_id",
    "expiration_type_title",
    "autoactivation_time",
    "autoactivation_time_unit_id",
    "is_allow_empty_code",
    "is_code_required",
    "is_united_balance",
    "is_united_balance_unlimited",
    "united_balance_services_count",
)
# What a membership-type write falls back to for a field it leaves out (PUT replaces the whole
# type, §5.10.2): the schema's defaults, else "not set".
TYPE_DEFAULTS: dict[str, Any] = {
    "period": 0,
    "period_unit_id": 0,
    "allow_freeze": False,
    "freeze_limit": 0,
    "freeze_limit_unit_id": 1,
    "service_price_correction": False,
    "expiration_type_id": records.DEFAULT_EXPIRATION_TYPE,
    "is_allow_empty_code": True,
    "balance_edit_type_id": 0,
    "is_online_sale_enabled": False,
    "online_sale_title": "",
    "online_sale_description": "",
    "online_sale_price": 0.0,
    "online_image": None,
    "autoactivation_time": 0,
    "autoactivation_time_unit_id": 1,
    "is_archived": False,
    "category": "standard",
    "availability": [],
    "is_united_balance_unlimited": False,
    "is_booking_when_frozen_allowed": False,
    "category_id": None,
    "location_ids": [],
}


class Refusal(Exception):
    """An error answer: `{"success": false, "data": null, "meta": meta}` with `status`."""

    def __init__(self, status: int, meta: dict[str, Any]) -> None:
        super().__init__(status, meta.get("message", ""))
        self.status = status
        self.meta = meta


@dataclass(frozen=True)
class Reply:
    """A success answer: its status and JSON payload (None: no body at all)."""

    status: int
    payload: Any


@dataclass(frozen=True)
class Call:
    """One write (or read by id) as a handler sees it."""

    world: World
    operation: Operation
    chain_id: int
    ids: dict[str, int]
    body: dict[str, Any]
    includes: tuple[str, ...] = ()
    super_user: bool = False
    # The chain takes membership-type services as `service_links[]`, not as maps.
    service_links: bool = False
    certificate_delete_no_content: bool = False


def perform(call: Call) -> Reply:
    """Run one operation; raises Refusal for a documented refusal."""
    if call.operation.super_user_only and not call.super_user:
        raise Refusal(403, {"message": MSG_FORBIDDEN})
    with call.world.lock:
        return HANDLERS[call.operation.name](call)


def envelope(data: Any) -> dict[str, Any]:
    return {"success": True, "data": data, "meta": []}


def _reply(call: Call, data: Any) -> Reply:
    answer = call.operation.answer
    if answer is Answer.NO_BODY:
        return Reply(call.operation.success_status, None)
    if answer is Answer.BARE_OBJECT:
        return Reply(call.operation.success_status, data)
    return Reply(call.operation.success_status, envelope(data))


def _invalid(status: int, errors: Errors, message: str = MSG_ERROR) -> Refusal:
    return Refusal(status, {"message": message, "errors": errors})


def _check(rules: tuple[Field, ...], body: dict[str, Any], status: int = 422) -> None:
    errors = validate(rules, body)
    if errors:
        raise _invalid(status, errors)


def _value(rules: tuple[Field, ...], body: dict[str, Any], name: str, default: Any) -> Any:
    """The body's value for a field (under any of its names), else `default`."""
    rule = next((r for r in rules if r.name == name), None)
    found, value = (None, None) if rule is None else lookup(rule, body)
    return default if found is None else value


# ---------------------------------------------------------------- membership types


def _type_or_404(call: Call, message: str = MSG_TYPE_NOT_FOUND) -> Record:
    found = call.world.membership_type(call.chain_id, call.ids["membership_type_id"])
    if found is None:
        raise Refusal(404, {"message": message})
    return found


def _live_type(call: Call, message: str = MSG_TYPE_NOT_FOUND) -> Record:
    found = _type_or_404(call, message)
    if call.world.is_deleted_type(call.chain_id, found["id"]):
        raise Refusal(404, {"message": message})
    return found


def _type_fields(call: Call, rules: tuple[Field, ...]) -> dict[str, Any]:
    """The written fields with every omitted one at its default (a write states the whole
    type), after the checks no schema can express."""
    body = call.body
    _check(rules, body)
    fields = {name: _value(rules, body, name, default) for name, default in TYPE_DEFAULTS.items()}
    for name in ("title", "cost", "is_united_balance", "united_balance_services_count"):
        fields[name] = body[name]
    errors: Errors = {}
    if int(_value(rules, body, "salon_group_id", 0)) != call.chain_id:
        errors["salon_group_id"] = ["The selected salon group id is invalid."]
    unknown = set(fields["location_ids"]) - set(call.world.location_ids(call.chain_id))
    if unknown:
        errors["location_ids"] = ["The selected location ids is invalid."]
    if fields["is_online_sale_enabled"] and "online_sale_price" not in body:
        errors["online_sale_price"] = [
            "The online sale price field is required when online sale is enabled."
        ]
    if errors:
        raise _invalid(422, errors)
    # The response reports auto-activation as autoactivation_time; the request takes either
    # autoactivation_period or autoactivation_time_in_days (§5.10.2).
    fields["autoactivation_time"] = int(
        body.get("autoactivation_period", body.get("autoactivation_time_in_days", 0))
    )
    fields["location_ids"] = sorted(set(fields["location_ids"]))
    return fields


def _requested_links(call: Call, fields: dict[str, Any]) -> list[Record] | None:
    """Balance links a write asks for; None when it asks to keep the current ones (the PUT
    schema's integer arrays: "pass empty array to preserve"). Ids that are not the chain's
    are dropped without an error, as the backend does (§5.10.2)."""
    world, chain_id, body = call.world, call.chain_id, call.body
    united = bool(fields["is_united_balance"])
    shared = int(fields["united_balance_services_count"])
    links: list[Record] = []
    if call.service_links:
        for item in body.get("service_links", []):
            service_id, category_id = item.get("service_id"), item.get("service_category_id")
            node = (
                records.service_node(world, chain_id, int(service_id))
                if service_id
                else records.category_node(world, chain_id, int(category_id or 0))
            )
            if node is not None:
                count = shared if united else int(item.get("count", 0))
                links.append(records.link(node, count, unlimited=bool(item.get("is_unlimited"))))
        return links
    maps = [body.get("services", {}), body.get("service_categories", {})]
    if any(isinstance(m, list) for m in maps):
        return None
    for kind, counts in zip(("service", "category"), maps, strict=True):
        for key, count in counts.items():
            finder = records.service_node if kind == "service" else records.category_node
            node = finder(world, chain_id, int(key))
            if node is not None:
                links.append(records.link(node, shared if united else int(count)))
    return links


def membership_type_read(call: Call) -> Reply:
    return _reply(call, _type_or_404(call))


def membership_type_create(call: Call) -> Reply:
    fields = _type_fields(call, MEMBERSHIP_TYPE_CREATE)
    links = _requested_links(call, fields) or []
    world = call.world
    record = records.membership_type(
        world,
        call.chain_id,
        world.next_id("membership_type"),
        fields,
        links,
        weight=len(world.membership_types(call.chain_id)),
    )
    world.put_membership_type(call.chain_id, record)
    return _reply(call, record)


def membership_type_update(call: Call) -> Reply:
    current = _live_type(call)
    fields = _type_fields(call, MEMBERSHIP_TYPE_UPDATE)
    requested = _requested_links(call, fields)
    links = current["balance_container"]["links"] if requested is None else requested
    world = call.world
    record = records.membership_type(
        world, call.chain_id, current["id"], fields, links, weight=current["weight"]
    )
    record["abonements_count"] = current["abonements_count"]
    if record["is_archived"] and current["is_archived"]:
        record["date_archived"] = current["date_archived"]
    if world.is_sold(call.chain_id, current["id"]):
        # Silently kept, still 200: the client must compare the answer with what it sent.
        for name in SOLD_TERMS:
            record[name] = current[name]
        record["balance_container"] = {"links": _sold_links(current, links)}
    world.put_membership_type(call.chain_id, record)
    return _reply(call, record)


def _sold_links(current: Record, requested: list[Record]) -> list[Record]:
    """A sold type keeps what it covers; a shared balance may only gain services."""
    kept = list(current["balance_container"]["links"])
    if not current["is_united_balance"]:
        return kept
    have = {records.link_key(item) for item in kept}
    return kept + [item for item in requested if records.link_key(item) not in have]


def membership_type_delete(call: Call) -> Reply:
    current = _live_type(call)
    if call.world.is_sold(call.chain_id, current["id"]):
        raise Refusal(422, {"message": MSG_TYPE_IN_USE})
    call.world.delete_membership_type(call.chain_id, current["id"], deleted=True)
    return _reply(call, None)


def membership_type_clone(call: Call) -> Reply:
    source = _live_type(call, MSG_SOURCE_NOT_FOUND)
    world = call.world
    record = copy.deepcopy(source)
    record["id"] = world.next_id("membership_type")
    record["title"] = f"{source['title']} (2)"
    record["abonements_count"] = 0
    record["weight"] = len(world.membership_types(call.chain_id))
    world.put_membership_type(call.chain_id, record)
    return _reply(call, record)


def membership_type_restore(call: Call) -> Reply:
    _check(RESTORE, call.body)
    current = _type_or_404(call)
    if not call.world.is_deleted_type(call.chain_id, current["id"]):
        raise Refusal(422, {"message": MSG_TYPE_NOT_DELETED})
    call.world.put_membership_type(
        call.chain_id, {**current, "title": call.body["restore_in_title"]}
    )
    call.world.delete_membership_type(call.chain_id, current["id"], deleted=False)
    return _reply(call, None)


def membership_type_archive(call: Call) -> Reply:
    flag = call.body.get("is_archived")
    if flag not in ARCHIVE_VALUES:
        raise _invalid(422, {ARCHIVE_ERROR_KEY: [ARCHIVE_ERROR]})
    # The backend checks neither rights nor that the type belongs to the chain in the path.
    world = call.world
    type_id = call.ids["membership_type_id"]
    owner = next(
        (c for c in world.chain_ids() if world.membership_type(c, type_id) is not None), None
    )
    if owner is None:
        raise Refusal(404, {"message": MSG_TYPE_NOT_FOUND})
    current = world.membership_type(owner, type_id)
    assert current is not None
    archived = flag == "1"
    if current["is_archived"] != archived:
        stamped = stamp(world.now(owner), None) if archived else None
        world.put_membership_type(
            owner, {**current, "is_archived": archived, "date_archived": stamped}
        )
    return _reply(call, None)


# ---------------------------------------------------------------- sold memberships


def _membership_or_404(call: Call) -> Record:
    found = call.world.membership(call.chain_id, call.ids["membership_id"])
    if found is None:
        raise Refusal(404, {"message": MSG_MEMBERSHIP_NOT_FOUND})
    return found


def _end_of(day: date, call: Call) -> datetime:
    return datetime.combine(day, time(23, 59, 59), call.world.zone(call.chain_id))


def membership_freeze(call: Call) -> Reply:
    member = _membership_or_404(call)
    _check(FREEZE, call.body)
    mtype = member["type"]
    if not mtype["allow_freeze"] or member["status"]["id"] not in LIVE_STATUSES:
        raise Refusal(400, {"message": MSG_CANNOT_FREEZE})
    if member["is_frozen"]:
        raise Refusal(
            400,
            {"message": MSG_CANNOT_FREEZE, "errors": {"is_frozen": ["Already frozen."]}},
        )
    world = call.world
    till = _till_day(parse_moment(call.body["freeze_till"]), call)
    days = (till - world.clock.today).days
    if days < 1:
        raise _invalid(422, {"freeze_till": ["The freeze till must be a date after today."]})
    limit = period_days(mtype["freeze_limit"], mtype["freeze_limit_unit_id"])
    left = limit - int(member["freeze_period"])
    # A limit of 0 is "not set": freezing is then unlimited.
    if limit and days > left:
        left_text = f"At most {max(0, left)} more days of freezing are left."
        raise _invalid(422, {"freeze_till": [left_text]}, MSG_FREEZE_LIMIT)
    frozen = freeze(member, days)
    world.put_membership(call.chain_id, frozen)
    world.freeze_till[member["id"]] = till
    return _reply(
        call,
        {
            "id": member["id"],
            "number": str(member["number"]),
            "is_frozen": True,
            "freeze_period": frozen["freeze_period"],
            "freeze_till": stamp(_end_of(till, call), member["created_date"]),
        },
    )


def freeze(member: Record, days: int) -> Record:
    """The membership frozen for `days` more days: its expiration moves out by as many."""
    return {
        **member,
        "is_frozen": True,
        "freeze_period": int(member["freeze_period"]) + days,
        "expiration_date": extend(member["expiration_date"], days, member["created_date"]),
    }


def _till_day(moment: datetime | date, call: Call) -> date:
    if isinstance(moment, datetime):
        return moment.astimezone(call.world.zone(call.chain_id)).date()
    return moment


def membership_unfreeze(call: Call) -> Reply:
    member = _membership_or_404(call)
    if not member["is_frozen"]:
        raise Refusal(400, {"message": MSG_NOT_FROZEN})
    # The expiration stays extended by the freeze already applied.
    thawed = {**member, "is_frozen": False}
    call.world.put_membership(call.chain_id, thawed)
    call.world.freeze_till.pop(member["id"], None)
    return _reply(
        call,
        {
            "id": member["id"],
            "number": str(member["number"]),
            "is_frozen": False,
            "freeze_period": thawed["freeze_period"],
        },
    )


def membership_set_balance(call: Call) -> Reply:
    member = _membership_or_404(call)
    _check(SET_BALANCE, call.body)
    if member["type"]["balance_edit_type_id"] == 0:
        raise Refusal(400, {"message": MSG_CANNOT_CHANGE_BALANCE})
    body = call.body
    if member["is_united_balance"]:
        if "united_balance_services_count" not in body:
            raise _invalid(
                422,
                {"united_balance_services_count": ["This membership has a shared balance."]},
                MSG_INVALID_SERVICE,
            )
        if member["is_united_balance_unlimited"]:
            raise Refusal(400, {"message": MSG_CANNOT_CHANGE_BALANCE})
        count = int(body["united_balance_services_count"])
        if count < 0:
            raise _invalid(422, {"united_balance_services_count": ["Must be 0 or more."]})
        changed = {**member, "united_balance_services_count": count}
    else:
        changed = _per_service_balance(member, body.get("services_balance_count"))
    call.world.put_membership(call.chain_id, _status_after_balance(changed))
    return _reply(call, None)


def _per_service_balance(member: Record, items: list[dict[str, Any]] | None) -> Record:
    if not items:
        raise _invalid(
            422,
            {"services_balance_count": ["This membership has a per-service balance."]},
            MSG_INVALID_SERVICE,
        )
    links = [dict(lnk) for lnk in member["balance_container"]["links"]]
    by_id = {records.link_key(lnk)[1]: lnk for lnk in links}
    for position, item in enumerate(items):
        target = by_id.get(int(item["service_id"]))
        if target is None:
            raise _invalid(
                422,
                {f"services_balance_count.{position}.service_id": ["Not on this membership."]},
                MSG_INVALID_SERVICE,
            )
        if target["is_unlimited"]:
            raise Refusal(400, {"message": MSG_CANNOT_CHANGE_BALANCE})
        if int(item["balance"]) < 0:
            raise _invalid(
                422, {f"services_balance_count.{position}.balance": ["Must be 0 or more."]}
            )
        target["count"] = int(item["balance"])
    return {
        **member,
        "balance_string": balance_string(links),
        "balance_container": {"links": links},
    }


def _status_after_balance(member: Record) -> Record:
    """Used up at 0 (§5.10.3); a used-up membership given visits back is live again."""
    left = visits_left(member)
    status = member["status"]["id"]
    if left == 0 and status in LIVE_STATUSES:
        return with_status(member, WASTED)
    if left != 0 and status == WASTED:
        return with_status(member, ACTIVE if member["activated_date"] else CREATED)
    return member


def membership_set_period(call: Call) -> Reply:
    member = _membership_or_404(call)
    _check(SET_PERIOD, call.body)
    period, unit = call.body["period"], call.body["period_unit_id"]
    if unit not in UNITS:
        raise _invalid(
            422, {"period_unit_id": ["The selected period unit id is invalid."]}, MSG_INVALID_UNIT
        )
    if int(period) < 1:
        raise _invalid(422, {"period": ["The period must be at least 1."]})
    world = call.world
    # Validity counts from activation (and keeps what freezing added); a membership not
    # activated yet has no expiration until it is.
    ends: datetime | None = None
    if member["activated_date"] is not None:
        days = period_days(int(period), int(unit)) + int(member["freeze_period"])
        ends = parse_timestamp(member["activated_date"]) + timedelta(days=days)
        last_used = world.last_used.get(member["id"])
        if last_used is not None and ends.date() < last_used:
            raise Refusal(400, {"message": MSG_CANNOT_CHANGE_PERIOD})
    expiration = None if ends is None else stamp(ends, member["created_date"])
    changed = {
        **member,
        "period": int(period),
        "period_unit_id": int(unit),
        "expiration_date": expiration,
    }
    status = member["status"]["id"]
    over = ends is not None and ends < world.now(call.chain_id)
    if status == ACTIVE and over:
        changed = with_status(changed, EXPIRED)
    elif status == EXPIRED and not over:
        changed = with_status(changed, ACTIVE if member["activated_date"] else CREATED)
    world.put_membership(call.chain_id, changed)
    return _reply(
        call,
        {
            "id": member["id"],
            "period": changed["period"],
            "period_unit_id": changed["period_unit_id"],
            "expiration_date": expiration,
        },
    )


# ---------------------------------------------------------------- certificate types


def _certificate_or_404(call: Call) -> Record:
    found = call.world.certificate_type(call.chain_id, call.ids["certificate_type_id"])
    if found is None:
        raise Refusal(404, {"message": MSG_CERTIFICATE_NOT_FOUND})
    return found


def _certificate_body(call: Call) -> dict[str, Any]:
    body = call.body
    _check(CERTIFICATE_TYPE, body, status=400)
    errors: Errors = {}
    expiration = body["expiration"]
    if expiration["type_id"] == 1 and "date" not in expiration:
        errors["expiration.date"] = ["The expiration date is required for a fixed date."]
    if expiration["type_id"] == 2:
        for name in ("timeout", "timeout_unit_id"):
            if name not in expiration:
                errors[f"expiration.{name}"] = [f"The expiration {name} is required."]
    if set(body["salon_ids"]) - set(call.world.location_ids(call.chain_id)):
        errors["salon_ids"] = ["The selected salon ids is invalid."]
    if set(body["service_ids"]) - {s for s, _ in call.world.services(call.chain_id)}:
        errors["service_ids"] = ["The selected service ids is invalid."]
    if errors:
        raise _invalid(400, errors)
    return body


def certificate_type_read(call: Call) -> Reply:
    return _reply(call, _certificate_or_404(call))


def certificate_type_create(call: Call) -> Reply:
    body = _certificate_body(call)
    world = call.world
    record = records.certificate_type(
        call.chain_id,
        world.next_id("certificate_type"),
        body,
        weight=len(world.certificate_types(call.chain_id)),
        previous=None,
    )
    world.put_certificate_type(call.chain_id, record)
    return _reply(call, record)


def certificate_type_update(call: Call) -> Reply:
    current = _certificate_or_404(call)
    if current["released_total"] > 0:
        raise _invalid(400, {"released_total": [MSG_CERTIFICATE_ISSUED_UPDATE]})
    body = _certificate_body(call)
    record = records.certificate_type(
        call.chain_id, current["id"], body, weight=current["weight"], previous=current
    )
    call.world.put_certificate_type(call.chain_id, record)
    return _reply(call, record)


def certificate_type_delete(call: Call) -> Reply:
    current = _certificate_or_404(call)
    if current["released_total"] > 0:
        raise Refusal(400, {"message": MSG_CERTIFICATE_ISSUED})
    call.world.remove_certificate_type(call.chain_id, current["id"])
    if call.certificate_delete_no_content:
        return Reply(204, None)
    return _reply(call, None)


# ---------------------------------------------------------------- promotions


def _promotion_or_404(call: Call) -> Record:
    found = call.world.promotion(call.chain_id, call.ids["program_id"])
    if found is None:
        raise Refusal(404, {})
    return found


def _promotion_body(call: Call, rules: tuple[Field, ...]) -> dict[str, Any]:
    """The body once it passes the schema rules and names only the chain's locations, card
    types and services."""
    body = call.body
    errors = validate(rules, body)
    world, chain_id = call.world, call.chain_id
    services = {s for s, _ in world.services(chain_id)}
    known = {
        "company_ids": set(world.location_ids(chain_id)),
        "loyalty_card_type_ids": {c["id"] for c in world.card_types(chain_id)},
        "allowed_service_ids": services | {s // 100 for s in services},
    }
    for name, allowed in known.items():
        given = body.get(name)
        if name in errors or given is None:
            continue
        if set(given) - allowed or (name == "company_ids" and not given):
            errors[name] = [f"The selected {name.replace('_', ' ')} is invalid."]
    if errors:
        raise _invalid(422, errors, MSG_VALIDATION)
    return body


def promotion_create(call: Call) -> Reply:
    body = _promotion_body(call, PROMOTION_CREATE)
    world = call.world
    record = records.promotion(
        world, call.chain_id, world.next_id("promotion"), body, None, world.clock.today
    )
    world.put_promotion(call.chain_id, record, body["company_ids"])
    return _reply(call, promotion_view(record, call.includes))


def promotion_update(call: Call) -> Reply:
    current = _promotion_or_404(call)
    body = _promotion_body(call, PROMOTION_UPDATE)
    world = call.world
    record = records.promotion(
        world, call.chain_id, current["id"], body, current, world.clock.today
    )
    locations = body.get("company_ids") or world.promotion_locations(call.chain_id, current["id"])
    world.put_promotion(call.chain_id, record, locations)
    return _reply(call, promotion_view(record, call.includes))


def promotion_delete(call: Call) -> Reply:
    current = _promotion_or_404(call)
    call.world.remove_promotion(call.chain_id, current["id"])
    return _reply(call, None)


HANDLERS: dict[str, Callable[[Call], Reply]] = {
    "membership_type": membership_type_read,
    "membership_type_create": membership_type_create,
    "membership_type_update": membership_type_update,
    "membership_type_delete": membership_type_delete,
    "membership_type_clone": membership_type_clone,
    "membership_type_restore": membership_type_restore,
    "membership_type_archive": membership_type_archive,
    "membership_freeze": membership_freeze,
    "membership_unfreeze": membership_unfreeze,
    "membership_set_balance": membership_set_balance,
    "membership_set_period": membership_set_period,
    "certificate_type": certificate_type_read,
    "certificate_type_create": certificate_type_create,
    "certificate_type_update": certificate_type_update,
    "certificate_type_delete": certificate_type_delete,
    "promotion_create": promotion_create,
    "promotion_update": promotion_update,
    "promotion_delete": promotion_delete,
}
