"""The loyalty catalogue as code: export a chain's catalogue to YAML, plan a file against a live
chain, apply the plan.

A catalogue file holds a chain's membership types, certificate types and promotions in their
write form (what a create or a full PUT sends, `pipelines.altegio.writer.*_write_form`), with
every id that differs between chains replaced by a name:

    chain: 607823                 # the chain it was exported from; the `id`s below are its ids
    locations:                    # name -> {chain id: location id}: the explicit mapping table
      Lumen Central: {607823: 30545, 431597: 30556}
    services: {Haircut: {607823: 7000768}}
    categories: {Haircut services: {607823: 70007}}
    card_types: {Gold card: {607823: 250}}
    membership_types: [{id: 1348, title: ..., cost: ..., locations: [...], services: {...}}]
    certificate_types: [...]
    promotions: [...]

Planning maps the file onto the target chain (entities by id on the chain it came from, else
by title; names through the tables, which must name an id for the target chain) and compares
field by field with the live chain's entities in the same form. Entities of the chain the file
does not name are left alone unless `prune` (then deleted). Actions, in the order an apply runs
them (nothing is removed before what replaces it exists): restore, unarchive, create, update,
archive, delete.
"""

import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml

from pipelines.altegio.client import Chain
from pipelines.altegio.http import NotFound
from pipelines.altegio.writer import (
    PROMOTION_CREATE_ONLY,
    Writer,
    Written,
    certificate_type_write_form,
    link_target,
    membership_type_write_form,
    promotion_write_form,
)
from pipelines.writes.apply import BatchResult, run_batch
from pipelines.writes.journal import Journal, Step

log = logging.getLogger(__name__)

KINDS = ("membership_types", "certificate_types", "promotions")
TABLES = ("locations", "services", "categories", "card_types")
ACTION_ORDER = ("restore", "unarchive", "create", "update", "archive", "delete")
SINGULAR = {
    "membership_types": "membership type",
    "certificate_types": "certificate type",
    "promotions": "promotion",
}


class CatalogError(ValueError):
    """A catalogue file that cannot be planned against the chain (one line, names the entry)."""


# ---------------------------------------------------------------- names <-> ids


@dataclass
class Names:
    """The mapping tables of a catalogue: name -> {chain id: id}, per kind of reference."""

    tables: dict[str, dict[str, dict[int, int]]] = field(
        default_factory=lambda: {t: {} for t in TABLES}
    )

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> "Names":
        names = cls()
        for table in TABLES:
            for name, ids in (document.get(table) or {}).items():
                if not isinstance(ids, Mapping):
                    raise CatalogError(f"{table}: {name!r} must map chain ids to ids")
                names.tables[table][str(name)] = {int(c): int(i) for c, i in ids.items()}
        return names

    def add(self, table: str, chain_id: int, item_id: int, title: str) -> str:
        """The name of an id on a chain, registering it (a title taken by another id gets the
        id appended, so every name maps to one id per chain)."""
        rows = self.tables[table]
        for name, ids in rows.items():
            if ids.get(chain_id) == item_id:
                return name
        name = title.strip() or f"{table} {item_id}"
        if name in rows and chain_id in rows[name]:
            name = f"{name} #{item_id}"
        rows.setdefault(name, {})[chain_id] = item_id
        return name

    def name(self, table: str, chain_id: int, item_id: int) -> str:
        for name, ids in self.tables[table].items():
            if ids.get(chain_id) == item_id:
                return name
        return self.add(table, chain_id, item_id, "")

    def id(self, table: str, chain_id: int, name: str) -> int:
        ids = self.tables[table].get(name)
        if ids is None:
            raise CatalogError(f"{table}: {name!r} is not in the file's {table} table")
        if chain_id not in ids:
            raise CatalogError(
                f"{table}: {name!r} has no id for chain {chain_id}; add one to the {table} table"
            )
        return ids[chain_id]

    def any_id(self, tables: Iterable[str], chain_id: int, name: str) -> tuple[str, int]:
        for table in tables:
            if chain_id in self.tables[table].get(name, {}):
                return table, self.tables[table][name][chain_id]
        raise CatalogError(f"{name!r} has no id for chain {chain_id} in {', '.join(tables)}")

    def document(self) -> dict[str, Any]:
        return {
            table: {name: dict(sorted(ids.items())) for name, ids in sorted(rows.items())}
            for table, rows in self.tables.items()
        }


# ---------------------------------------------------------------- entry <-> write body


def _names(names: Names, table: str, chain_id: int, ids: Iterable[int]) -> list[str]:
    return sorted(names.name(table, chain_id, int(i)) for i in ids)


def _ids(names: Names, table: str, chain_id: int, entry_names: Iterable[str]) -> list[int]:
    return sorted(names.id(table, chain_id, n) for n in entry_names)


def membership_type_entry(body: Mapping[str, Any], names: Names, chain_id: int) -> dict[str, Any]:
    entry = {k: v for k, v in body.items() if k not in ("salon_group_id", "location_ids")}
    entry["locations"] = _names(names, "locations", chain_id, body.get("location_ids", []))
    entry["services"] = {
        names.name("services", chain_id, int(k)): v for k, v in body.get("services", {}).items()
    }
    entry["service_categories"] = {
        names.name("categories", chain_id, int(k)): v
        for k, v in body.get("service_categories", {}).items()
    }
    return entry


def membership_type_body(entry: Mapping[str, Any], names: Names, chain_id: int) -> dict[str, Any]:
    body = {k: v for k, v in entry.items() if k not in ("id", "locations")}
    body["salon_group_id"] = chain_id
    body["location_ids"] = _ids(names, "locations", chain_id, entry.get("locations", []))
    body["services"] = {
        str(names.id("services", chain_id, n)): v for n, v in (entry.get("services") or {}).items()
    }
    body["service_categories"] = {
        str(names.id("categories", chain_id, n)): v
        for n, v in (entry.get("service_categories") or {}).items()
    }
    return body


def certificate_type_entry(body: Mapping[str, Any], names: Names, chain_id: int) -> dict[str, Any]:
    entry = {k: v for k, v in body.items() if k not in ("salon_ids", "service_ids")}
    entry["locations"] = _names(names, "locations", chain_id, body.get("salon_ids", []))
    entry["services"] = _names(names, "services", chain_id, body.get("service_ids", []))
    return entry


def certificate_type_body(entry: Mapping[str, Any], names: Names, chain_id: int) -> dict[str, Any]:
    body = {k: v for k, v in entry.items() if k not in ("id", "locations", "services")}
    body["salon_ids"] = _ids(names, "locations", chain_id, entry.get("locations", []))
    body["service_ids"] = _ids(names, "services", chain_id, entry.get("services", []))
    return body


_PROMOTION_REFS = ("company_ids", "loyalty_card_type_ids", "allowed_service_ids", "rules")


def promotion_entry(body: Mapping[str, Any], names: Names, chain_id: int) -> dict[str, Any]:
    entry = {k: v for k, v in body.items() if k not in _PROMOTION_REFS}
    entry["locations"] = _names(names, "locations", chain_id, body.get("company_ids", []))
    entry["card_types"] = _names(
        names, "card_types", chain_id, body.get("loyalty_card_type_ids", [])
    )
    entry["allowed_services"] = [
        _service_or_category(names, chain_id, int(i)) for i in body.get("allowed_service_ids", [])
    ]
    entry["rules"] = [
        {
            "parameter": rule["parameter"],
            "value": rule["value"],
            "service": None
            if not rule.get("service_id")
            else names.name("services", chain_id, int(rule["service_id"])),
        }
        for rule in body.get("rules", [])
    ]
    return entry


def _service_or_category(names: Names, chain_id: int, item_id: int) -> str:
    for table in ("services", "categories"):
        for name, ids in names.tables[table].items():
            if ids.get(chain_id) == item_id:
                return name
    return names.name("services", chain_id, item_id)


def promotion_body(entry: Mapping[str, Any], names: Names, chain_id: int) -> dict[str, Any]:
    refs = ("id", "locations", "card_types", "allowed_services", "rules")
    body = {k: v for k, v in entry.items() if k not in refs}
    body["company_ids"] = _ids(names, "locations", chain_id, entry.get("locations", []))
    body["loyalty_card_type_ids"] = _ids(names, "card_types", chain_id, entry.get("card_types", []))
    body["allowed_service_ids"] = [
        names.any_id(("services", "categories"), chain_id, n)[1]
        for n in entry.get("allowed_services", [])
    ]
    body["rules"] = [
        {
            "parameter": rule["parameter"],
            "value": rule["value"],
            "service_id": 0
            if not rule.get("service")
            else names.id("services", chain_id, rule["service"]),
        }
        for rule in entry.get("rules", [])
    ]
    return body


@dataclass(frozen=True)
class Kind:
    """How one kind of catalogue entity is read, named, written."""

    name: str
    write_form: Callable[[Mapping[str, Any], int], dict[str, Any]]
    to_entry: Callable[[Mapping[str, Any], Names, int], dict[str, Any]]
    to_body: Callable[[Mapping[str, Any], Names, int], dict[str, Any]]
    read: Callable[[Writer, int], list[dict[str, Any]]]


KIND = {
    "membership_types": Kind(
        "membership_types",
        membership_type_write_form,
        membership_type_entry,
        membership_type_body,
        lambda w, c: w.membership_types(c),
    ),
    "certificate_types": Kind(
        "certificate_types",
        lambda r, _c: certificate_type_write_form(r),
        certificate_type_entry,
        certificate_type_body,
        lambda w, c: w.certificate_types(c),
    ),
    "promotions": Kind(
        "promotions",
        lambda r, _c: promotion_write_form(r),
        promotion_entry,
        promotion_body,
        lambda w, c: w.promotions(c),
    ),
}


# ---------------------------------------------------------------- live chain


@dataclass
class Live:
    """A chain's catalogue as read now: records by kind, and the names its records show."""

    chain: Chain
    records: dict[str, list[dict[str, Any]]]
    names: Names


def read_live(writer: Writer, chain: Chain, names: Names | None = None) -> Live:
    """Every membership type, certificate type and promotion of the chain, and the names of
    the locations, services, categories and card types they refer to (added to `names`)."""
    names = names or Names()
    for location in chain.locations:
        names.add("locations", chain.id, int(location["id"]), str(location.get("title") or ""))
    records = {kind: KIND[kind].read(writer, chain.id) for kind in KINDS}
    for record in records["membership_types"]:
        for link in (record.get("balance_container") or {}).get("links") or []:
            kind, item_id, title = link_target(link)
            names.add("services" if kind == "service" else "categories", chain.id, item_id, title)
    for page in writer.client.list_card_types(chain.id):
        for card in page.records:
            names.add("card_types", chain.id, int(card["id"]), str(card.get("title") or ""))
    for record in records["promotions"]:
        for item in record.get("applicable_items") or []:
            if item.get("is_service"):
                table = "categories" if item.get("is_category") else "services"
                names.add(table, chain.id, int(item["id"]), str(item.get("title") or ""))
    return Live(chain, records, names)


def export_document(live: Live) -> dict[str, Any]:
    """The catalogue file of a live chain (only the names it uses, with its ids)."""
    chain_id = live.chain.id
    entities = {
        kind: [
            {
                "id": int(r["id"]),
                **KIND[kind].to_entry(KIND[kind].write_form(r, chain_id), live.names, chain_id),
            }
            for r in sorted(live.records[kind], key=lambda r: (str(r["title"]), int(r["id"])))
        ]
        for kind in KINDS
    }
    used = _used_names(entities)
    tables = {
        table: {
            name: {chain_id: ids[chain_id]}
            for name, ids in sorted(live.names.tables[table].items())
            if chain_id in ids and name in used[table]
        }
        for table in TABLES
    }
    return {"chain": chain_id, **tables, **entities}


def _used_names(entities: Mapping[str, list[dict[str, Any]]]) -> dict[str, set[str]]:
    used: dict[str, set[str]] = {t: set() for t in TABLES}
    for entries in entities.values():
        for entry in entries:
            used["locations"].update(entry.get("locations", []))
            used["card_types"].update(entry.get("card_types", []))
            services = entry.get("services", [])
            used["services"].update(services if isinstance(services, list) else list(services))
            used["categories"].update(entry.get("service_categories", {}))
            used["services"].update(
                r["service"] for r in entry.get("rules", []) if r.get("service")
            )
            for name in entry.get("allowed_services", []):
                used["services"].add(name)
                used["categories"].add(name)
    return used


def dump(document: Mapping[str, Any]) -> str:
    header = (
        "# altegio-loyalty catalog. Ids are those of the chain named below; on another chain\n"
        "# entities match by title and names resolve through the tables (add that chain's ids).\n"
    )
    return header + str(
        yaml.safe_dump(
            dict(document), sort_keys=False, allow_unicode=True, default_flow_style=False, width=100
        )
    )


def load(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(document, dict) or "chain" not in document:
        raise CatalogError(f"{path}: not a catalog file (no 'chain' key)")
    for kind in KINDS:
        for position, entry in enumerate(document.get(kind) or []):
            if not isinstance(entry, dict) or not str(entry.get("title") or "").strip():
                raise CatalogError(f"{path}: {kind}[{position}] needs a title")
    return document


# ---------------------------------------------------------------- plan


@dataclass
class Action:
    """One change the plan makes to one entity."""

    verb: str  # ACTION_ORDER
    kind: str
    title: str
    entity_id: int | None = None
    body: dict[str, Any] = field(default_factory=dict)  # create: the whole body
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # update: field -> (now, new)
    position: int = 0  # of the entry in its list: keeps two creates of one title apart

    def step(self, chain_id: int) -> Step:
        target: dict[str, Any] = {"title": self.title}
        if self.entity_id is not None:
            target = {f"{SINGULAR[self.kind].replace(' ', '_')}_id": self.entity_id, **target}
        request = (
            self.body if self.verb == "create" else {k: v for k, (_, v) in self.changes.items()}
        )
        return Step(
            key=f"{self.verb}:{self.kind}:{self.entity_id or f'{self.position}:{self.title}'}",
            operation=f"{self.verb} {SINGULAR[self.kind]}",
            chain_id=chain_id,
            target=target,
            request=request,
            description=self.describe(),
        )

    def describe(self) -> str:
        what = f"{SINGULAR[self.kind]} {self.title!r}" + (
            f" (id {self.entity_id})" if self.entity_id is not None else ""
        )
        return f"{self.verb} {what}"


@dataclass
class Plan:
    chain: Chain
    actions: list[Action]
    problems: list[str] = field(default_factory=list)  # what cannot be applied as written
    unmanaged: list[str] = field(default_factory=list)  # live entities the file does not name

    @property
    def changes(self) -> bool:
        return bool(self.actions)

    def lines(self) -> list[str]:
        out = []
        for action in self.actions:
            out.append(f"  {action.describe()}")
            for name, (now, new) in action.changes.items():
                out.append(f"      {name}: {_show(now)} -> {_show(new)}")
        for problem in self.problems:
            out.append(f"  ! {problem}")
        return out


def _show(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def plan_catalog(
    writer: Writer, chain: Chain, document: Mapping[str, Any], *, prune: bool = False
) -> Plan:
    """What applying `document` to `chain` would change; nothing is written."""
    names = Names.from_document(document)
    live = read_live(writer, chain, names)
    same_chain = int(document["chain"]) == chain.id
    actions: list[Action] = []
    problems: list[str] = []
    unmanaged: list[str] = []
    for kind in KINDS:
        spec = KIND[kind]
        current = {int(r["id"]): r for r in live.records[kind]}
        matched: set[int] = set()
        titles = Counter(str(e["title"]) for e in document.get(kind) or [])
        for position, entry in enumerate(document.get(kind) or []):
            title = str(entry["title"])
            try:
                wanted = spec.to_body(entry, names, chain.id)
            except CatalogError as exc:
                problems.append(f"{SINGULAR[kind]} {title!r}: {exc}")
                continue
            record = _match(kind, entry, wanted, current, same_chain, matched, titles[title] > 1)
            if record is None and kind == "membership_types" and same_chain and entry.get("id"):
                deleted = _deleted_type(writer, chain.id, int(entry["id"]))
                if deleted is not None:
                    actions.append(Action("restore", kind, title, int(entry["id"])))
                    record = deleted
            if record is None:
                actions.append(Action("create", kind, title, body=wanted, position=position))
                continue
            matched.add(int(record["id"]))
            actions.extend(_differences(kind, title, record, wanted, chain.id, problems))
        for type_id, record in current.items():
            if type_id in matched:
                continue
            if prune:
                actions.append(Action("delete", kind, str(record["title"]), type_id))
            else:
                unmanaged.append(f"{SINGULAR[kind]} {record['title']!r} (id {type_id})")
    actions.sort(key=lambda a: ACTION_ORDER.index(a.verb))
    return Plan(chain, actions, problems, unmanaged)


def _match(
    kind: str,
    entry: Mapping[str, Any],
    wanted: Mapping[str, Any],
    current: Mapping[int, dict[str, Any]],
    same_chain: bool,
    matched: set[int],
    shared_title: bool = False,
) -> dict[str, Any] | None:
    """The live entity an entry means: by id on the chain the file came from, else the live
    entity with its title. When several share the title (live, or entries of the file:
    `shared_title`), or the one that has it can take no
    update (an issued certificate type), only an entity already equal to the entry matches;
    otherwise none does and the plan creates the entry rather than guess or hit a refusal."""
    if same_chain and entry.get("id") is not None:
        found = current.get(int(entry["id"]))
        if found is not None:
            return found
    titled = [r for i, r in current.items() if r["title"] == entry["title"] and i not in matched]
    if len(titled) == 1 and not shared_title and not _fixed(kind, titled[0]):
        return titled[0]
    chain_id = int(wanted.get("salon_group_id") or 0)
    for record in titled:
        now = KIND[kind].write_form(record, chain_id)
        if all(now.get(k) == v for k, v in wanted.items()):
            return record
    return None


def _fixed(kind: str, record: Mapping[str, Any]) -> bool:
    """Whether the API refuses every update of this entity: a certificate type with issued
    certificates (§5.10.4)."""
    return kind == "certificate_types" and int(record.get("released_total") or 0) > 0


def _deleted_type(writer: Writer, chain_id: int, type_id: int) -> dict[str, Any] | None:
    """A soft-deleted membership type: gone from the list, still read by id (§5.10.2)."""
    try:
        return writer.membership_type(chain_id, type_id)
    except NotFound:
        return None


def _differences(
    kind: str,
    title: str,
    record: Mapping[str, Any],
    wanted: Mapping[str, Any],
    chain_id: int,
    problems: list[str],
) -> list[Action]:
    now = KIND[kind].write_form(record, chain_id)
    entity_id = int(record["id"])
    changes = {
        name: (now.get(name), value)
        for name, value in wanted.items()
        if name != "is_archived" and now.get(name) != value
    }
    actions: list[Action] = []
    if kind == "promotions":
        fixed = sorted(set(changes) & set(PROMOTION_CREATE_ONLY))
        for name in fixed:
            problems.append(
                f"promotion {title!r}: {name} is fixed at creation ({_show(changes[name][0])} -> "
                f"{_show(changes[name][1])}); delete the promotion and create it anew"
            )
            del changes[name]
    if changes and _fixed(kind, record):
        problems.append(
            f"certificate type {title!r} (id {entity_id}) has {record.get('released_total')} "
            f"issued certificates: the API refuses any update ({', '.join(changes)}); create a "
            "new type instead"
        )
        changes = {}
    if changes:
        actions.append(Action("update", kind, title, entity_id, changes=changes))
    if kind == "membership_types" and "is_archived" in wanted:
        archived = bool(wanted["is_archived"])
        if archived != bool(now.get("is_archived")):
            actions.append(Action("archive" if archived else "unarchive", kind, title, entity_id))
    return actions


# ---------------------------------------------------------------- apply


def file_digest(document: Mapping[str, Any]) -> str:
    options = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
    return hashlib.sha256(orjson.dumps(document, option=options)).hexdigest()[:16]


def _performer(writer: Writer, chain: Chain, plan: Plan) -> Callable[[Step], Written]:
    actions = {a.step(chain.id).key: a for a in plan.actions}
    chain_id = chain.id

    def perform(step: Step) -> Written:
        action = actions[step.key]
        kind, entity_id = action.kind, action.entity_id
        if action.verb == "create":
            create = {
                "membership_types": writer.create_membership_type,
                "certificate_types": writer.create_certificate_type,
                "promotions": writer.create_promotion,
            }[kind]
            return create(chain_id, action.body)
        assert entity_id is not None
        if action.verb == "update":
            changes = {k: v for k, (_, v) in action.changes.items()}
            if kind == "membership_types":
                return _update_type(writer, chain_id, entity_id, changes)
            if kind == "certificate_types":
                return writer.update_certificate_type(chain_id, entity_id, changes)
            return writer.update_promotion(chain_id, entity_id, changes)
        if action.verb in ("archive", "unarchive"):
            return writer.archive_membership_type(chain_id, entity_id, action.verb == "archive")
        if action.verb == "restore":
            return writer.restore_membership_type(chain_id, entity_id, action.title)
        delete = {
            "membership_types": writer.delete_membership_type,
            "certificate_types": writer.delete_certificate_type,
            "promotions": writer.delete_promotion,
        }[kind]
        return delete(chain_id, entity_id)

    return perform


def _update_type(
    writer: Writer, chain_id: int, type_id: int, changes: Mapping[str, Any]
) -> Written:
    """Altegio's own client will not update an archived type: unarchive, update, archive."""
    archived = bool(writer.membership_type(chain_id, type_id).get("is_archived"))
    if archived:
        writer.archive_membership_type(chain_id, type_id, False)
    try:
        return writer.update_membership_type(chain_id, type_id, changes)
    finally:
        if archived:
            writer.archive_membership_type(chain_id, type_id, True)


def _verifier(writer: Writer, chain: Chain) -> Callable[[Step], dict[str, Any] | None]:
    def verify(step: Step) -> dict[str, Any] | None:
        # A create sent by an interrupted run: done if an entity with its title and exactly
        # its fields now exists. Everything else sets absolute values (PUT, archive) or is
        # done when gone (delete): sending it again is safe.
        if not step.key.startswith("create:"):
            return None
        kind = KIND[step.key.split(":")[1]]
        for record in kind.read(writer, chain.id):
            now = kind.write_form(record, chain.id)
            if record["title"] == step.target["title"] and all(
                now.get(k) == v for k, v in step.request.items()
            ):
                return record
        return None

    return verify


def apply_plan(
    writer: Writer,
    journal: Journal,
    plan: Plan,
    document: Mapping[str, Any],
    *,
    progress: bool | None = None,
) -> BatchResult | None:
    """Run the plan's actions in order through the journal; None when there is nothing to do.
    An interrupted apply is simply planned and applied again: what it did shows as done."""
    if plan.problems:
        raise CatalogError("; ".join(plan.problems))
    if not plan.actions:
        return None
    command = {"command": "catalog apply", "chain_id": plan.chain.id, "file": file_digest(document)}
    batch = journal.start(command, [a.step(plan.chain.id) for a in plan.actions])
    return run_batch(
        journal,
        batch,
        _performer(writer, plan.chain, plan),
        _verifier(writer, plan.chain),
        progress=progress,
    )
