"""Write verbs over the Altegio B2B v1 API: every write of CONTRACT §5.10, used safely.

`Writer` wraps an `AltegioClient` (same session, rate budget, retry policy and stats) and
offers one method per write operation of `pipelines.altegio.operations.OPERATIONS`. The API's
traps are handled here, once:

* PUT replaces the whole object and resets what is missing: an update is built from a fresh
  read of the object (`*_write_form`), the changes applied on top, and the answer compared
  with what was sent (a type with sold memberships silently keeps its terms: `WriteIgnored`).
* `is_archived` travels as the string "1"/"0"; archive is checked through the checked GET
  first and re-read after (a 204 is not proof).
* set_balance answers without a body, set_period sometimes without an id: both are re-read.
* A call that is not safe to repeat (create, clone, freeze, restore) is retried by the session
  only when the request provably never left; when its outcome is unknown (an answer lost
  after sending, a 5xx) the writer reads back to find out whether it happened, and sends it
  again only when the read-back proves it did not.

Every method returns a `Written`: the object after the write and whether a read-back (not the
answer) established it. Errors are the HTTP layer's typed errors, carrying the API's message
and field errors; bodies are checked first (`write_bodies`), so a bad value never travels.
"""

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pipelines.altegio.client import AltegioClient
from pipelines.altegio.endpoints import Endpoint, Envelope
from pipelines.altegio.http import ApiError, BadResponse, NotFound, OutcomeUnknown
from pipelines.altegio.operations import OPERATIONS, Answer, Operation
from pipelines.altegio.sources import SOURCES
from pipelines.altegio.write_bodies import (
    TIME_UNITS,
    Archive,
    Freeze,
    Restore,
    SetBalance,
    SetPeriod,
    Unfreeze,
    check_entity_body,
    ids_list,
)

log = logging.getLogger(__name__)

# A read-back that proves a call did not happen allows one more send; an outcome that stays
# unknown this many times is reported, not retried for ever.
MAX_UNKNOWN_OUTCOMES = 3


class WriteIgnored(ApiError):
    """The API answered success but the object does not show what was sent."""


@dataclass(frozen=True)
class Written:
    """The object after a write (None when there is none: a delete) and how that is known."""

    record: dict[str, Any] | None
    # True: the answer was lost (or refused a repeat) and a read-back established the outcome.
    # Objects are often re-read anyway (answers without a body); that alone is not a read-back.
    read_back: bool = False


def operation_endpoint(op: Operation) -> Endpoint:
    """The HTTP-layer view of one operation: method, path, envelope, statuses, repeat safety."""
    statuses = {op.success_status}
    if op.alternative_status is not None:
        statuses.add(op.alternative_status)
    if op.method == "POST" and op.success_status in (200, 201) and op.answer is Answer.ENVELOPE:
        statuses |= {200, 201}  # create and clone document "200 or 201" (§5.10.2)
    if op.method == "DELETE":
        statuses |= {200, 204}
    return Endpoint(
        name=op.name,
        path=op.path,
        method=op.method,
        envelope=Envelope.BARE_OBJECT if op.answer is Answer.BARE_OBJECT else Envelope.STANDARD,
        access_flag=op.access_flag,
        success_statuses=tuple(sorted(statuses)),
        idempotent=op.retry_safe,
        one_record=not op.writes,
    )


ENDPOINTS = {name: operation_endpoint(op) for name, op in OPERATIONS.items()}
PROMOTION_DETAIL = SOURCES["promotions"].endpoints[1]


# ---------------------------------------------------------------- read form -> write form


def _links(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    container = record.get("balance_container") or {}
    return [lnk for lnk in container.get("links", []) if isinstance(lnk, dict)]


def link_target(link: Mapping[str, Any]) -> tuple[str, int, str]:
    """('service'|'category', id, title) of one balance link."""
    kind = "service" if isinstance(link.get("service"), dict) else "category"
    node = link.get(kind) or {}
    return kind, int(node.get("id", 0)), str(node.get("title", ""))


def membership_type_write_form(record: Mapping[str, Any], chain_id: int) -> dict[str, Any]:
    """Every writable field of a membership type, from its read form, as a PUT must send it
    (PUT replaces the type: a field left out falls back to its default, §5.10.2)."""
    body: dict[str, Any] = {
        "title": record["title"],
        "salon_group_id": chain_id,
        "cost": float(record["cost"]),
        "is_united_balance": bool(record["is_united_balance"]),
        "united_balance_services_count": int(record.get("united_balance_services_count") or 0),
        "period": int(record.get("period") or 0),
        "allow_freeze": bool(record.get("allow_freeze")),
        "freeze_limit": int(record.get("freeze_limit") or 0),
        "service_price_correction": bool(record.get("service_price_correction")),
        "is_allow_empty_code": bool(record.get("is_allow_empty_code", True)),
        "balance_edit_type_id": int(record.get("balance_edit_type_id") or 0),
        "is_online_sale_enabled": bool(record.get("is_online_sale_enabled")),
        "online_sale_title": record.get("online_sale_title") or "",
        "online_sale_description": record.get("online_sale_description") or "",
        "online_sale_price": float(record.get("online_sale_price") or 0),
        "autoactivation_period": int(record.get("autoactivation_time") or 0),
        "is_archived": bool(record.get("is_archived")),
        "availability": list(record.get("availability") or []),
        "is_united_balance_unlimited": bool(record.get("is_united_balance_unlimited")),
        "is_booking_when_frozen_allowed": bool(record.get("is_booking_when_frozen_allowed")),
        "category_id": record.get("category_id"),
        "location_ids": ids_list(record.get("attached_location_ids") or []),
        "category": record["category"] if isinstance(record.get("category"), str) else "standard",
    }
    # Unit 0 ("not set") and unknown activation codes are read-only: leaving them out keeps
    # the default the API would store anyway.
    for name in ("period_unit_id", "freeze_limit_unit_id", "autoactivation_time_unit_id"):
        if record.get(name) in TIME_UNITS:
            body[name] = int(record[name])
    if record.get("expiration_type_id") in (1, 2, 3):
        body["expiration_type_id"] = int(record["expiration_type_id"])
    if record.get("online_sale_image"):
        body["online_image"] = record["online_sale_image"]
    body.update(service_maps(_links(record), body["is_united_balance"]))
    return body


def service_maps(links: Iterable[Mapping[str, Any]], united: bool) -> dict[str, Any]:
    """`services` / `service_categories` maps ({"<id>": visits}) of balance links."""
    maps: dict[str, dict[str, int]] = {"services": {}, "service_categories": {}}
    for link in links:
        kind, target, _ = link_target(link)
        key = "services" if kind == "service" else "service_categories"
        maps[key][str(target)] = 0 if united else int(link.get("count") or 0)
    return maps


def service_links(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The same services as `service_links[]` (the other form some chains take, §5.10.2)."""
    out = [
        {"service_id": int(k), "service_category_id": None, "is_unlimited": False, "count": v}
        for k, v in body.get("services", {}).items()
    ]
    out += [
        {"service_id": None, "service_category_id": int(k), "is_unlimited": False, "count": v}
        for k, v in body.get("service_categories", {}).items()
    ]
    return out


def certificate_type_write_form(record: Mapping[str, Any]) -> dict[str, Any]:
    """A certificate type's write body from its flat read form (the write form nests
    `expiration` and `online_sale`, §5.10.4)."""
    expiration: dict[str, Any] = {"type_id": int(record.get("expiration_type_id") or 0)}
    if expiration["type_id"] == 1 and record.get("expiration_date"):
        expiration["date"] = record["expiration_date"]
    if expiration["type_id"] == 2:
        expiration["timeout"] = int(record.get("expiration_timeout") or 0)
        expiration["timeout_unit_id"] = int(record.get("expiration_timeout_unit_id") or 1)
    return {
        "title": record["title"],
        "balance": float(record["balance"]),
        "is_multi": bool(record["is_multi"]),
        "item_type_id": int(record.get("item_type_id") or 0),
        "is_allow_empty_code": bool(record.get("is_allow_empty_code")),
        "balance_edit_type_id": int(record.get("balance_edit_type_id") or 1),
        "service_ids": ids_list(record.get("service_ids") or []),
        "salon_ids": ids_list(record.get("salon_ids") or []),
        "expiration": expiration,
        "online_sale": {
            "is_enabled": bool(record.get("online_sale_is_enabled")),
            "title": record.get("online_sale_title") or "",
            "description": record.get("online_sale_description") or "",
            "price": float(record.get("online_sale_price") or 0),
        },
        "category_id": record.get("category_id"),
    }


# Fixed at creation: not in the promotion update body (§5.10.5).
PROMOTION_CREATE_ONLY = (
    "type",
    "service_item_type",
    "good_item_type",
    "value_unit",
    "visit_multiplicity",
    "sold_items_multiplicity",
    "params_source_type",
    "history_start_date",
)


def _template_form(block: Any) -> dict[str, Any]:
    if not isinstance(block, dict):
        return {"type": "none"}
    if block.get("type") == "custom":
        return {"type": "custom", "body": block.get("body") or ""}
    return {"type": block.get("type", "none")}


def promotion_write_form(record: Mapping[str, Any]) -> dict[str, Any]:
    """A promotion's create body from its read form with every include block (the write form
    names ids where the read form has objects, §5.10.5)."""
    items = [i for i in record.get("applicable_items") or [] if isinstance(i, dict)]
    body: dict[str, Any] = {
        "title": record["title"],
        "usage_limit": int(record.get("usage_limit") or 0),
        "expiration_timeout": int(record.get("expiration_timeout") or 0),
        "expiration_timeout_unit": record.get("expiration_timeout_unit") or "month",
        "expiration_notification_timeout": int(record.get("expiration_notification_timeout") or 0),
        "loyalty_card_type_ids": ids_list(c["id"] for c in record.get("loyalty_card_types") or []),
        "on_changed_notification_template": _template_form(
            record.get("on_changed_notification_template")
        ),
        "on_expiration_notification_template": _template_form(
            record.get("on_expiration_notification_template")
        ),
        "rules": [
            {
                "parameter": int(rule.get("parameter") or 0),
                "value": float(rule.get("value") or 0),
                "service_id": int(rule.get("service_id") or 0),
            }
            for rule in record.get("rules") or []
        ],
        "company_ids": ids_list(c["id"] for c in record.get("companies") or []),
        "allowed_service_ids": [int(i["id"]) for i in items if i.get("is_service")],
        "allowed_good_ids": [
            int(i["id"]) for i in items if not i.get("is_service") and not i.get("is_category")
        ],
        "allowed_good_category_ids": [
            int(i["id"]) for i in items if not i.get("is_service") and i.get("is_category")
        ],
    }
    for name in PROMOTION_CREATE_ONLY:
        if record.get(name) is not None:
            body[name] = record[name]
    return body


def promotion_update_form(create_form: Mapping[str, Any]) -> dict[str, Any]:
    """The update body of a promotion: its create form without the fields fixed at creation."""
    return {k: v for k, v in create_form.items() if k not in PROMOTION_CREATE_ONLY}


# ---------------------------------------------------------------- the writer


class Writer:
    """Every write operation of one API identity, through an `AltegioClient`'s session."""

    def __init__(self, client: AltegioClient) -> None:
        self.client = client

    # -- plumbing

    def call(
        self,
        name: str,
        chain_id: int,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        **ids: int,
    ) -> Any:
        """One call of operation `name` (data of the answer; None for no body)."""
        endpoint = ENDPOINTS[name]
        path = endpoint.format_path(chain_id=chain_id, **ids)
        data, _ = self.client.session.call(
            endpoint,
            path,
            params=params,
            json=None if body is None else dict(body),
            chain_id=chain_id,
        )
        return data

    def _once(
        self,
        send: Callable[[], Any],
        happened: Callable[[], dict[str, Any] | None],
        what: str,
    ) -> Written:
        """A call not safe to repeat: when its outcome is unknown, `happened()` reads back;
        the call is sent again only when that read proves it did not take effect."""
        for _ in range(MAX_UNKNOWN_OUTCOMES):
            try:
                return Written(send())
            except OutcomeUnknown as exc:
                found = happened()
                if found is not None:
                    log.info("%s: answer lost (%s); a read-back shows it took effect", what, exc)
                    return Written(found, read_back=True)
                log.info(
                    "%s: answer lost (%s); a read-back shows it did not: sending again", what, exc
                )
        raise OutcomeUnknown(
            f"{what}: outcome still unknown after {MAX_UNKNOWN_OUTCOMES} attempts and read-backs",
            endpoint=what,
        )

    # -- reads the writes need

    def membership_types(self, chain_id: int) -> list[dict[str, Any]]:
        return [r for page in self.client.list_membership_types(chain_id) for r in page.records]

    def membership_type(self, chain_id: int, type_id: int) -> dict[str, Any]:
        data = self.call("membership_type", chain_id, membership_type_id=type_id)
        return dict(data)

    def certificate_types(self, chain_id: int) -> list[dict[str, Any]]:
        return [r for page in self.client.list_certificate_types(chain_id) for r in page.records]

    def certificate_type(self, chain_id: int, type_id: int) -> dict[str, Any]:
        return dict(self.call("certificate_type", chain_id, certificate_type_id=type_id))

    def promotions(self, chain_id: int) -> list[dict[str, Any]]:
        return [r for page in self.client.list_promotions(chain_id) for r in page.records]

    def promotion(self, chain_id: int, program_id: int) -> dict[str, Any]:
        data, _ = self.client.session.call(
            PROMOTION_DETAIL,
            PROMOTION_DETAIL.format_path(chain_id=chain_id, program_id=program_id),
            params=dict(PROMOTION_DETAIL.fixed_params),
            chain_id=chain_id,
        )
        return dict(data)

    def memberships(self, chain_id: int, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """Sold memberships by id (there is no read-one endpoint, §5.10.3)."""
        found: dict[int, dict[str, Any]] = {}
        for page in self.client.list_memberships_by_ids(chain_id, ids):
            for record in page.records:
                found[int(record["id"])] = record
        return found

    def membership(self, chain_id: int, membership_id: int) -> dict[str, Any]:
        found = self.memberships(chain_id, [membership_id]).get(membership_id)
        if found is None:
            raise NotFound(f"membership {membership_id} not found", chain_id=chain_id)
        return found

    # -- membership types (§5.10.2)

    def create_membership_type(self, chain_id: int, body: Mapping[str, Any]) -> Written:
        """Create a type; its services are checked against the answer and, when the chain
        ignored the maps, sent again as `service_links` (an idempotent PUT)."""
        sent = check_entity_body("membership_type", {**body, "salon_group_id": chain_id})
        title = sent["title"]
        before = {t["id"] for t in self.membership_types(chain_id) if t["title"] == title}
        written = self._once(
            lambda: self.call("membership_type_create", chain_id, sent),
            lambda: self._new_type_titled(chain_id, title, before),
            f"membership_type_create {title!r}",
        )
        assert written.record is not None
        return self._ensure_services(chain_id, written, sent)

    def _new_type_titled(
        self, chain_id: int, title: str, before: set[int]
    ) -> dict[str, Any] | None:
        return next(
            (
                t
                for t in self.membership_types(chain_id)
                if t["title"] == title and t["id"] not in before
            ),
            None,
        )

    def _ensure_services(self, chain_id: int, written: Written, sent: Mapping[str, Any]) -> Written:
        record = written.record or {}
        wanted = {
            (k, int(i))
            for k, m in (
                ("service", sent.get("services", {})),
                ("category", sent.get("service_categories", {})),
            )
            for i in m
        }
        have = {link_target(lnk)[:2] for lnk in _links(record)}
        if wanted <= have:
            return written
        log.info(
            "membership type %s: the chain ignored the service maps; sending service_links",
            record.get("id"),
        )
        body = {**sent, "service_links": service_links(sent)}
        data = self.call(
            "membership_type_update", chain_id, body, membership_type_id=int(record["id"])
        )
        return Written(dict(data), written.read_back)

    def update_membership_type(
        self, chain_id: int, type_id: int, changes: Mapping[str, Any]
    ) -> Written:
        """PUT the type's full current form with `changes` on top; `WriteIgnored` when the
        answer does not show a change (a sold type keeps its terms, §5.10.2)."""
        current = self.membership_type(chain_id, type_id)
        body = {**membership_type_write_form(current, chain_id), **changes}
        check_entity_body("membership_type", body)
        if "services" in changes or "service_categories" in changes:
            body.setdefault("services", {})
            body.setdefault("service_categories", {})
        data = dict(self.call("membership_type_update", chain_id, body, membership_type_id=type_id))
        written = self._ensure_services(chain_id, Written(data), body)
        answered = membership_type_write_form(written.record or {}, chain_id)
        kept = {
            name: (answered.get(name), value)
            for name, value in changes.items()
            if name in answered and answered.get(name) != value
        }
        if kept:
            detail = ", ".join(f"{k} stays {a!r} (sent {s!r})" for k, (a, s) in kept.items())
            raise WriteIgnored(
                f"the API answered 200 but kept {detail}; a type with sold memberships keeps "
                "its price, validity, activation and balance terms",
                endpoint="membership_type_update",
                chain_id=chain_id,
            )
        return written

    def delete_membership_type(self, chain_id: int, type_id: int) -> Written:
        """Delete (soft) a type; the API refuses (422) a type with sold memberships."""
        try:
            self.call("membership_type_delete", chain_id, membership_type_id=type_id)
        except NotFound:
            if any(t["id"] == type_id for t in self.membership_types(chain_id)):
                raise
            return Written(None, read_back=True)  # a repeat after a lost answer: gone = done
        return Written(None)

    def clone_membership_type(self, chain_id: int, type_id: int) -> Written:
        source = self.membership_type(chain_id, type_id)
        title = f"{source['title']} (2)"
        before = {t["id"] for t in self.membership_types(chain_id) if t["title"] == title}
        return self._once(
            lambda: self.call("membership_type_clone", chain_id, {}, membership_type_id=type_id),
            lambda: self._new_type_titled(chain_id, title, before),
            f"membership_type_clone {type_id}",
        )

    def restore_membership_type(self, chain_id: int, type_id: int, title: str) -> Written:
        """Restore a deleted type (Altegio super users only: a partner gets 403)."""
        request = Restore(title)

        def listed() -> dict[str, Any] | None:
            return next((t for t in self.membership_types(chain_id) if t["id"] == type_id), None)

        sent = self._once(
            lambda: self.call(
                "membership_type_restore", chain_id, request.body(), membership_type_id=type_id
            ),
            listed,
            f"membership_type_restore {type_id}",
        )
        return Written(self.membership_type(chain_id, type_id), sent.read_back)

    def archive_membership_type(self, chain_id: int, type_id: int, archived: bool) -> Written:
        """Archive or unarchive; the checked GET first (archive itself checks no rights nor
        the chain), a re-read after (a 204 is not proof)."""
        self.membership_type(chain_id, type_id)
        self.call(
            "membership_type_archive",
            chain_id,
            Archive(archived).body(),
            membership_type_id=type_id,
        )
        after = self.membership_type(chain_id, type_id)
        if bool(after.get("is_archived")) != archived:
            raise WriteIgnored(
                f"archive answered success but is_archived is still {after.get('is_archived')}",
                endpoint="membership_type_archive",
                chain_id=chain_id,
            )
        return Written(after)

    # -- sold memberships (§5.10.3)

    # Each membership verb re-reads the membership after writing (`confirm`), as Altegio's own
    # client does. A bulk apply passes confirm=False and re-reads its targets 100 per request
    # at the end instead (`pipelines.writes.memberships`): one request per write, not two.

    def _after(self, chain_id: int, membership_id: int, answer: Any, confirm: bool) -> Any:
        if confirm:
            return self.membership(chain_id, membership_id)
        return dict(answer) if isinstance(answer, dict) else None

    def freeze(
        self, chain_id: int, membership_id: int, request: Freeze, *, confirm: bool = True
    ) -> Written:
        """Freeze; not safe to repeat (a frozen membership refuses): a lost answer is
        resolved by re-reading `is_frozen`."""

        def frozen() -> dict[str, Any] | None:
            record = self.membership(chain_id, membership_id)
            return record if record.get("is_frozen") else None

        sent = self._once(
            lambda: self.call(
                "membership_freeze", chain_id, request.body(), membership_id=membership_id
            ),
            frozen,
            f"membership_freeze {membership_id}",
        )
        if sent.read_back:
            return sent
        return Written(self._after(chain_id, membership_id, sent.record, confirm))

    def unfreeze(self, chain_id: int, membership_id: int, *, confirm: bool = True) -> Written:
        try:
            answer = self.call(
                "membership_unfreeze", chain_id, Unfreeze().body(), membership_id=membership_id
            )
        except ApiError as exc:
            # A repeat after a lost answer gets 400 "not frozen": done if the read agrees.
            record = self.membership(chain_id, membership_id)
            if exc.status == 400 and not record.get("is_frozen"):
                return Written(record, read_back=True)
            raise
        return Written(self._after(chain_id, membership_id, answer, confirm))

    def set_balance(
        self, chain_id: int, membership_id: int, request: SetBalance, *, confirm: bool = True
    ) -> Written:
        """Set the visits left (absolute, safe to repeat); the answer has no body."""
        self.call("membership_set_balance", chain_id, request.body(), membership_id=membership_id)
        return Written(self._after(chain_id, membership_id, None, confirm))

    def set_period(
        self, chain_id: int, membership_id: int, request: SetPeriod, *, confirm: bool = True
    ) -> Written:
        """Set the validity (absolute, safe to repeat); confirmed on a re-read."""
        answer = self.call(
            "membership_set_period", chain_id, request.body(), membership_id=membership_id
        )
        if not confirm:
            return Written(self._after(chain_id, membership_id, answer, confirm))
        after = self.membership(chain_id, membership_id)
        if (after.get("period"), after.get("period_unit_id")) != (request.period, request.unit):
            raise WriteIgnored(
                f"set_period answered success but the membership shows period "
                f"{after.get('period')} unit {after.get('period_unit_id')}",
                endpoint="membership_set_period",
                chain_id=chain_id,
            )
        return Written(after)

    # -- certificate types (§5.10.4)

    def create_certificate_type(self, chain_id: int, body: Mapping[str, Any]) -> Written:
        sent = check_entity_body("certificate_type", body)
        title = sent["title"]
        before = {t["id"] for t in self.certificate_types(chain_id) if t["title"] == title}
        return self._once(
            lambda: self.call("certificate_type_create", chain_id, sent),
            lambda: next(
                (
                    t
                    for t in self.certificate_types(chain_id)
                    if t["title"] == title and t["id"] not in before
                ),
                None,
            ),
            f"certificate_type_create {title!r}",
        )

    def update_certificate_type(
        self, chain_id: int, type_id: int, changes: Mapping[str, Any]
    ) -> Written:
        """PUT the full current form with `changes` on top ("all fields are required")."""
        current = self.certificate_type(chain_id, type_id)
        body = check_entity_body(
            "certificate_type", {**certificate_type_write_form(current), **changes}
        )
        data = self.call("certificate_type_update", chain_id, body, certificate_type_id=type_id)
        return Written(dict(data))

    def delete_certificate_type(self, chain_id: int, type_id: int) -> Written:
        try:
            self.call("certificate_type_delete", chain_id, certificate_type_id=type_id)
        except NotFound:
            if any(t["id"] == type_id for t in self.certificate_types(chain_id)):
                raise
            return Written(None, read_back=True)
        return Written(None)

    # -- promotions (§5.10.5)

    def create_promotion(self, chain_id: int, body: Mapping[str, Any]) -> Written:
        """Create; not safe to repeat. A lost answer is resolved through the location search
        (there is no chain-level list)."""
        sent = check_entity_body("promotion_create", body)
        title = sent["title"]
        before = {p["id"] for p in self.promotions(chain_id) if p["title"] == title}
        includes = {"include": PROMOTION_DETAIL.fixed_params[0][1]}
        return self._once(
            lambda: self.call("promotion_create", chain_id, sent, params=includes),
            lambda: next(
                (
                    p
                    for p in self.promotions(chain_id)
                    if p["title"] == title and p["id"] not in before
                ),
                None,
            ),
            f"promotion_create {title!r}",
        )

    def update_promotion(
        self, chain_id: int, program_id: int, changes: Mapping[str, Any]
    ) -> Written:
        """PUT the whole update set (built from a fresh read with every include) with
        `changes` on top: whether omitted fields reset is undocumented (§5.10.5)."""
        fixed = sorted(set(changes) & set(PROMOTION_CREATE_ONLY))
        if fixed:
            raise BadResponse(
                f"promotion fields {fixed} are fixed at creation; delete and create instead",
                endpoint="promotion_update",
                chain_id=chain_id,
            )
        current = promotion_update_form(promotion_write_form(self.promotion(chain_id, program_id)))
        body = check_entity_body("promotion_update", {**current, **changes})
        includes = {"include": PROMOTION_DETAIL.fixed_params[0][1]}
        data = self.call("promotion_update", chain_id, body, params=includes, program_id=program_id)
        return Written(dict(data))

    def delete_promotion(self, chain_id: int, program_id: int) -> Written:
        try:
            self.call("promotion_delete", chain_id, program_id=program_id)
        except NotFound:
            return Written(None, read_back=True)
        return Written(None)
