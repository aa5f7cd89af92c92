"""Every write operation of the sandbox: its answer validates against the official schema (with
only the deviations `pipelines.altegio.operations` declares), its documented refusals happen
with the documented status and body, and the reads after it show the new state."""

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest
from jsonschema import Draft202012Validator

from pipelines.altegio.endpoints import ACCEPT_HEADER
from pipelines.altegio.operations import OPERATIONS, Answer, Operation
from pipelines.altegio.sandbox import (
    Faults,
    SandboxConfig,
    SandboxCredentials,
    SandboxDataset,
    SandboxServer,
    serve,
)
from pipelines.altegio.sandbox.world import ACTIVE, WASTED, period_days
from pipelines.altegio.sandbox.writes import HANDLERS

SCHEMAS = Path(__file__).resolve().parents[1] / "fixtures" / "altegio_api" / "schemas"
EXAMPLES = SCHEMAS.parent / "examples"
CONFIG = SandboxConfig(seed=3, chains=2, start=date(2026, 1, 1), end=date(2026, 1, 20))
CHAIN = 1  # 0-based: a chain with every write flag "1"


# ---------------------------------------------------------------- helpers


@cache
def _validator(name: str, nullable: tuple[str, ...] = ()) -> Draft202012Validator:
    schema = orjson.loads((SCHEMAS / f"{name}.schema.json").read_bytes())
    for dotted in nullable:
        node = schema
        for key in dotted.split("."):
            node = node["properties"][key]
        node["type"] = [node["type"], "null"]
    return Draft202012Validator(schema)


def _errors(name: str, body: Any, nullable: tuple[str, ...] = ()) -> list[str]:
    return [f"{list(e.path)}: {e.message}" for e in _validator(name, nullable).iter_errors(body)]


def check_success(op: Operation, response: httpx.Response) -> Any:
    """The answer is the operation's documented success, deviating only as it declares."""
    statuses = {op.success_status, op.alternative_status} - {None}
    assert response.status_code in statuses, (op.name, response.status_code, response.text)
    if op.answer is Answer.NO_BODY or response.status_code == op.alternative_status:
        assert response.content == b""
        # A schema that gives this status a body makes the empty answer a deviation, which the
        # operation must declare.
        schema = SCHEMAS / f"{op.schema}.{response.status_code}.schema.json"
        if schema.exists():
            assert op.deviation, f"{op.name}: undeclared empty body"
        return None
    body = response.json()
    errors = _errors(f"{op.schema}.{response.status_code}", body, op.nullable_in_answer)
    assert not errors, f"{op.name}: {errors[:5]}"
    if op.answer is Answer.ENVELOPE:
        assert body["success"] is True and body["meta"] == []
    else:
        assert "success" not in body
    return body


def check_refusal(op: Operation, response: httpx.Response, status: int) -> dict[str, Any]:
    """A documented refusal: the status, the error body shape, its schema when one exists."""
    assert response.status_code == status, (op.name, response.status_code, response.text)
    body = response.json()
    assert body["success"] is False and body["data"] is None
    schema = SCHEMAS / f"{op.schema}.{status}.schema.json"
    if schema.exists():
        errors = _errors(f"{op.schema}.{status}", body)
        assert not errors, f"{op.name} {status}: {errors}"
    meta: dict[str, Any] = body["meta"]
    return meta


def request_errors(op: Operation, body: Any) -> list[str]:
    """What the official request schema says about a body the tests send."""
    return _errors(f"{op.schema}.request", body)


def http_client(server: SandboxServer) -> httpx.Client:
    creds = server.credentials
    return httpx.Client(
        base_url=server.base_url,
        headers={
            "Accept": ACCEPT_HEADER,
            "Authorization": f"Bearer {creds.partner_token}, User {creds.user_token}",
        },
        timeout=10,
    )


def url(name: str, **ids: int) -> str:
    return OPERATIONS[name].path.format(**ids)


def call(http: httpx.Client, name: str, body: Any = None, **ids: int) -> httpx.Response:
    op = OPERATIONS[name]
    kwargs: dict[str, Any] = {} if body is None else {"json": body}
    return http.request(op.method, url(name, **ids), **kwargs)


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    with serve(CONFIG) as running:
        yield running


@pytest.fixture
def http(server: SandboxServer) -> Iterator[httpx.Client]:
    with http_client(server) as client:
        yield client


@pytest.fixture
def chain(server: SandboxServer) -> int:
    return server.dataset.chain_ids()[CHAIN]


def type_body(server: SandboxServer, chain: int, **changes: Any) -> dict[str, Any]:
    """A membership-type create body: the six required fields plus a service and a location."""
    (service_id, _), *_ = server.dataset.services(chain)
    body: dict[str, Any] = {
        "title": "Spring 8-visit pass",
        "salon_group_id": chain,
        "cost": 120.0,
        "service_categories": {},
        "services": {str(service_id): 8},
        "is_united_balance": False,
        "united_balance_services_count": 0,
        "location_ids": server.dataset.location_ids(chain)[:1],
        "period": 2,
        "period_unit_id": 3,
        "allow_freeze": True,
        "freeze_limit": 14,
        "freeze_limit_unit_id": 1,
    }
    body.update(changes)
    return body


def create_type(http: httpx.Client, server: SandboxServer, chain: int, **changes: Any) -> Any:
    response = call(
        http, "membership_type_create", type_body(server, chain, **changes), chain_id=chain
    )
    return check_success(OPERATIONS["membership_type_create"], response)["data"]


def listed_types(http: httpx.Client, chain: int) -> dict[int, Any]:
    body = http.get(f"/chain/{chain}/loyalty/abonement_types", params={"limit": 1000}).json()
    return {t["id"]: t for t in body["data"]}


def read_type(http: httpx.Client, chain: int, type_id: int) -> httpx.Response:
    return call(http, "membership_type", chain_id=chain, membership_type_id=type_id)


def memberships_by_ids(http: httpx.Client, chain: int, *ids: int) -> list[Any]:
    params = {"abonements_ids[]": [str(i) for i in ids]}
    data: list[Any] = http.get(f"/chain/{chain}/loyalty/abonements", params=params).json()["data"]
    return data


def sold_type(server: SandboxServer, chain: int) -> Any:
    return next(
        t for t in server.dataset.membership_types(chain) if server.dataset.is_sold(chain, t["id"])
    )


def freezable(server: SandboxServer, chain: int) -> Any:
    """An active, unfrozen membership whose type allows freezing within a limit."""
    return next(
        m
        for m in server.dataset.live_memberships(chain)
        if m["status"]["id"] == ACTIVE
        and not m["is_frozen"]
        and m["type"]["allow_freeze"]
        and m["type"]["freeze_limit"] > 0
        and m["freeze_period"] == 0
    )


def certificate_body(server: SandboxServer, chain: int, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Gift Certificate 75",
        "balance": 75,
        "is_multi": True,
        "item_type_id": 0,
        "is_allow_empty_code": False,
        "balance_edit_type_id": 1,
        "service_ids": [],
        "salon_ids": server.dataset.location_ids(chain),
        "expiration": {"type_id": 2, "timeout": 6, "timeout_unit_id": 3},
        "online_sale": {"is_enabled": True, "title": "Gift 75", "price": 70},
    }
    body.update(changes)
    return body


def promotion_body(server: SandboxServer, chain: int) -> dict[str, Any]:
    """The official create example with the sandbox chain's ids in place of the example's."""
    body: dict[str, Any] = orjson.loads(
        (EXAMPLES / "POST_chain_loyalty_programs.request.json").read_bytes()
    )
    services = [s for s, _ in server.dataset.services(chain)]
    body["allowed_service_ids"] = services[:2]
    body["loyalty_card_type_ids"] = [c["id"] for c in server.dataset.card_types(chain)][:2]
    body["company_ids"] = server.dataset.location_ids(chain)[:2]
    return body


# ---------------------------------------------------------------- the declarations


def test_every_operation_has_a_handler_a_schema_and_both_spellings(
    server: SandboxServer, http: httpx.Client, chain: int
) -> None:
    assert set(HANDLERS) == set(OPERATIONS)
    for op in OPERATIONS.values():
        assert (SCHEMAS / f"{op.schema}.{op.success_status}.schema.json").exists() or (
            op.answer is Answer.NO_BODY
        ), op.name
        if op.method in ("POST", "PUT", "PATCH"):
            assert (SCHEMAS / f"{op.schema}.request.schema.json").exists(), op.name
    mtype = server.dataset.membership_types(chain)[0]
    for prefix in ("/chain/", "/chains/"):
        r = http.get(f"{prefix}{chain}/loyalty/abonement_types/{mtype['id']}")
        assert r.status_code == 200 and r.json()["data"] == mtype


# ---------------------------------------------------------------- membership types


def test_create_membership_type_answers_the_type_and_reads_show_it(
    server: SandboxServer, http: httpx.Client, chain: int
) -> None:
    op = OPERATIONS["membership_type_create"]
    body = type_body(server, chain)
    assert request_errors(op, body) == []
    created = check_success(op, call(http, op.name, body, chain_id=chain))["data"]
    assert created["title"] == body["title"] and created["cost"] == 120.0
    assert created["attached_location_ids"] == body["location_ids"]
    (link,) = created["balance_container"]["links"]
    assert link["count"] == 8 and link["service"]["id"] == int(next(iter(body["services"])))
    assert listed_types(http, chain)[created["id"]] == created
    assert read_type(http, chain, created["id"]).json()["data"] == created
    assert server.dataset.membership_type(chain, created["id"]) == created
    # Same answers on the later spelling of the path.
    again = http.post(f"/chains/{chain}/loyalty/abonement_types", json=body)
    assert check_success(op, again)["data"]["id"] > created["id"]


def test_create_takes_the_chain_id_alias_and_drops_services_that_are_not_the_chains(
    server: SandboxServer, http: httpx.Client, chain: int
) -> None:
    body = type_body(server, chain, services={"1": 5})
    body["chain_id"] = body.pop("salon_group_id")
    created = check_success(
        OPERATIONS["membership_type_create"],
        call(http, "membership_type_create", body, chain_id=chain),
    )["data"]
    assert created["salon_group_id"] == chain
    assert created["balance_container"]["links"] == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"title": None}, "title"),
        ({"cost": "cheap"}, "cost"),
        ({"is_united_balance": "yes"}, "is_united_balance"),
        ({"period_unit_id": 9}, "period_unit_id"),
        ({"location_ids": [1]}, "location_ids"),
        ({"salon_group_id": 1}, "salon_group_id"),
    ],
)
def test_create_refuses_invalid_fields_with_422_and_field_errors(
    server: SandboxServer, http: httpx.Client, chain: int, change: dict[str, Any], field: str
) -> None:
    body = {k: v for k, v in {**type_body(server, chain), **change}.items() if v is not None}
    op = OPERATIONS["membership_type_create"]
    before = listed_types(http, chain)
    meta = check_refusal(op, call(http, op.name, body, chain_id=chain), 422)
    assert field in meta["errors"]
    assert listed_types(http, chain) == before


def test_create_without_a_required_field_is_what_the_schema_refuses_too(
    server: SandboxServer, http: httpx.Client, chain: int
) -> None:
    op = OPERATIONS["membership_type_create"]
    required = orjson.loads((SCHEMAS / f"{op.schema}.request.schema.json").read_bytes())["required"]
    for field in required:
        body = {k: v for k, v in type_body(server, chain).items() if k != field}
        assert request_errors(op, body), field
        meta = check_refusal(op, call(http, op.name, body, chain_id=chain), 422)
        assert field in meta["errors"], field


def test_put_replaces_the_whole_type_missing_fields_fall_back_to_defaults(
    server: SandboxServer, http: httpx.Client, chain: int
) -> None:
    created = create_type(http, server, chain, is_online_sale_enabled=True, online_sale_price=99)
    op = OPERATIONS["membership_type_update"]
    minimal = {
        "title": "Renamed pass",
        "salon_group_id": chain,
        "cost": 150.0,
        "service_categories": [],
        "is_united_balance": False,
        "united_balance_services_count": 0,
    }
    assert request_errors(op, minimal) == []
    updated = check_success(
        op, call(http, op.name, minimal, chain_id=chain, membership_type_id=created["id"])
    )["data"]
    assert updated["title"] == "Renamed pass" and updated["cost"] == 150.0
    # Left out, so reset: freezing, validity, online sale, locations.
    assert updated["allow_freeze"] is False and updated["period"] == 0
    assert updated["is_online_sale_enabled"] is False and updated["attached_location_ids"] == []
    # The integer-array form keeps the services ("pass empty array to preserve").
    assert updated["balance_container"] == created["balance_container"]
    assert read_type(http, chain, created["id"]).json()["data"] == updated
    assert listed_types(http, chain)[created["id"]] == updated


def test_put_on_a_sold_type_keeps_its_terms_silently_and_answers_200(
    server: SandboxServer, http: httpx.Client, chain: int
) -> None:
    sold = sold_type(server, chain)
    body = {
        "title": sold["title"] + " (renamed)",
        "salon_group_id": chain,
        "cost": sold["cost"] + 500,
        "period": sold["period"] + 3,
        "period_unit_id": 4,
        "service_categories": {},
        "services": {},
        "is_united_balance": not sold["is_united_balance"],
        "united_balance_services_count": 99,
        "allow_freeze": not sold["allow_freeze"],
        "category": "standard",
    }
    op = OPERATIONS["membership_type_update"]
    updated = check_success(
        op, call(http, op.name, body, chain_id=chain, membership_type_id=sold["id"])
    )["data"]
    assert updated["title"] == body["title"]
    assert updated["allow_freeze"] is body["allow_freeze"]
    for kept in ("cost", "period", "period_unit_id", "is_united_balance", "expiration_type_id"):
        assert updated[kept] == sold[kept], kept
    assert updated["balance_container"] == sold["balance_container"]
    # Memberships of the type embed the type as it is now.
    member = next(m for m in server.dataset.all_memberships(chain) if m["type"]["id"] == sold["id"])
    (served,) = memberships_by_ids(http, chain, member["id"])
    assert served["type"]["title"] == body["title"] and served["type"]["cost"] == sold["cost"]


def test_delete_is_a_soft_delete_gone_from_the_list_still_read_by_id(
    server: SandboxServer, http: httpx.Client, chain: int
) -> None:
    created = create_type(http, server, chain)
    op = OPERATIONS["membership_type_delete"]
    check_success(op, call(http, op.name, chain_id=chain, membership_type_id=created["id"]))
    assert created["id"] not in listed_types(http, chain)
    assert created["id"] not in {t["id"] for t in server.dataset.membership_types(chain)}
    assert read_type(http, chain, created["id"]).json()["data"] == created
    # A repeat finds nothing to delete.
    check_refusal(op, call(http, op.name, chain_id=chain, membership_type_id=created["id"]), 404)


def test_delete_of_a_sold_type_answers_422_and_keeps_it(
    server: SandboxServer, http: httpx.Client, chain: int
) -> None:
    sold = sold_type(server, chain)
    op = OPERATIONS["membership_type_delete"]
    meta = check_refusal(
        op, call(http, op.name, chain_id=chain, membership_type_id=sold["id"]), 422
    )
    assert "in use" in meta["message"]
    assert sold["id"] in listed_types(http, chain)


def test_clone_appends_2_to_the_title_with_a_new_id_and_the_same_settings(
    server: SandboxServer, http: httpx.Client, chain: int
) -> None:
    source = sold_type(server, chain)
    op = OPERATIONS["membership_type_clone"]
    assert request_errors(op, {}) == []
    copy = check_success(
        op, call(http, op.name, {}, chain_id=chain, membership_type_id=source["id"])
    )["data"]
    assert copy["id"] != source["id"] and copy["title"] == source["title"] + " (2)"
    same = {k for k in source if k not in ("id", "title", "abonements_count", "weight")}
    assert {k: copy[k] for k in same} == {k: source[k] for k in same}
    assert listed_types(http, chain)[copy["id"]] == copy
    # Not sold yet, so it can go.
    assert (
        call(
            http, "membership_type_delete", chain_id=chain, membership_type_id=copy["id"]
        ).status_code
        == 204
    )
    missing = call(http, op.name, {}, chain_id=chain, membership_type_id=1)
    assert check_refusal(op, missing, 404)["message"] == "Source membership type not found"


def test_restore_needs_restore_in_title_and_a_super_user() -> None:
    for super_user in (False, True):
        creds = SandboxCredentials(super_user=super_user)
        config = SandboxConfig(**{**CONFIG.__dict__, "credentials": creds})
        with serve(config) as server, http_client(server) as http:
            chain = server.dataset.chain_ids()[CHAIN]
            created = create_type(http, server, chain)
            ids = {"chain_id": chain, "membership_type_id": created["id"]}
            call(http, "membership_type_delete", **ids)
            op = OPERATIONS["membership_type_restore"]
            body = {"restore_in_title": "Spring pass, again"}
            assert request_errors(op, body) == []
            if not super_user:
                check_refusal(op, call(http, op.name, body, **ids), 403)
                assert created["id"] not in listed_types(http, chain)
                continue
            meta = check_refusal(op, call(http, op.name, {}, **ids), 422)
            assert "restore_in_title" in meta["errors"]
            check_success(op, call(http, op.name, body, **ids))
            restored = listed_types(http, chain)[created["id"]]
            assert restored["title"] == "Spring pass, again"
            # A type that is not deleted has nothing to restore.
            check_refusal(op, call(http, op.name, body, **ids), 422)


@pytest.mark.parametrize("flag", [True, False, 1, 0, "true", None])
def test_archive_takes_only_the_strings_1_and_0(
    server: SandboxServer, http: httpx.Client, chain: int, flag: Any
) -> None:
    mtype = server.dataset.membership_types(chain)[0]
    op = OPERATIONS["membership_type_archive"]
    body = {} if flag is None else {"is_archived": flag}
    meta = check_refusal(
        op, call(http, op.name, body, chain_id=chain, membership_type_id=mtype["id"]), 422
    )
    assert meta["errors"] == {"[is_archived]": ["The value you selected is invalid"]}
    assert listed_types(http, chain)[mtype["id"]]["is_archived"] is mtype["is_archived"]


def test_archive_and_unarchive_change_the_flag_and_the_list_filter(
    server: SandboxServer, http: httpx.Client, chain: int
) -> None:
    mtype = next(t for t in server.dataset.membership_types(chain) if not t["is_archived"])
    op = OPERATIONS["membership_type_archive"]
    ids = {"chain_id": chain, "membership_type_id": mtype["id"]}
    check_success(op, call(http, op.name, {"is_archived": "1"}, **ids))
    archived = read_type(http, chain, mtype["id"]).json()["data"]
    assert archived["is_archived"] is True and archived["date_archived"]
    only_archived = http.get(f"/chain/{chain}/loyalty/abonement_types", params={"is_archived": "1"})
    assert mtype["id"] in {t["id"] for t in only_archived.json()["data"]}
    check_success(op, call(http, op.name, {"is_archived": "0"}, **ids))
    back = read_type(http, chain, mtype["id"]).json()["data"]
    assert back["is_archived"] is False and back["date_archived"] is None


def test_archive_is_not_access_checked_but_the_other_writes_are() -> None:
    flag = "loyalty_abonement_types_access"
    config = SandboxConfig(**{**CONFIG.__dict__, "access_overrides": {CHAIN: {flag: "0"}}})
    with serve(config) as server, http_client(server) as http:
        chain = server.dataset.chain_ids()[CHAIN]
        mtype = server.dataset.membership_types(chain)[0]
        ids = {"chain_id": chain, "membership_type_id": mtype["id"]}
        for name, body in (
            ("membership_type", None),
            ("membership_type_create", type_body(server, chain)),
            ("membership_type_update", type_body(server, chain)),
            ("membership_type_delete", None),
            ("membership_type_clone", {}),
        ):
            op = OPERATIONS[name]
            target = {"chain_id": chain} if name.endswith("create") else ids
            assert check_refusal(op, call(http, name, body, **target), 403) == {
                "message": "Access denied."
            }
        archive = call(http, "membership_type_archive", {"is_archived": "1"}, **ids)
        assert archive.status_code == 204
        assert server.dataset.membership_type(chain, mtype["id"])["is_archived"] is True
        # Nor the type's chain: the path may name any chain.
        other = server.dataset.chain_ids()[0]
        stray = call(
            http,
            "membership_type_archive",
            {"is_archived": "0"},
            chain_id=other,
            membership_type_id=mtype["id"],
        )
        assert stray.status_code == 204
        assert server.dataset.membership_type(chain, mtype["id"])["is_archived"] is False


# ---------------------------------------------------------------- sold memberships


def test_freeze_moves_the_expiration_out_and_a_repeat_is_refused(
    server: SandboxServer, http: httpx.Client, chain: int
) -> None:
    member = freezable(server, chain)
    today = server.dataset.clock.today
    op = OPERATIONS["membership_freeze"]
    ids = {"chain_id": chain, "membership_id": member["id"]}
    # The end of a day in the chain's own zone (the sandbox reads the moment there).
    zone = ZoneInfo(server.dataset.chain_timezone(chain))
    till = datetime.combine(today + timedelta(days=3), time(23, 59, 59), zone).isoformat()
    assert request_errors(op, {"freeze_till": till}) == []
    answer = check_success(op, call(http, op.name, {"freeze_till": till}, **ids))["data"]
    assert answer["id"] == member["id"] and answer["is_frozen"] is True
    assert answer["number"] == str(member["number"]) and answer["freeze_period"] == 3
    (frozen,) = memberships_by_ids(http, chain, member["id"])
    assert frozen["is_frozen"] is True and frozen["freeze_period"] == 3
    if member["expiration_date"]:
        moved = date.fromisoformat(frozen["expiration_date"][:10]) - date.fromisoformat(
            member["expiration_date"][:10]
        )
        assert moved == timedelta(days=3)
    repeat = call(http, op.name, {"freeze_till": till}, **ids)
    assert check_refusal(op, repeat, 400)["message"] == "Subscription cannot be frozen"
    assert server.dataset.membership(chain, member["id"]) == frozen


def test_freeze_beyond_the_limit_answers_422_and_a_plain_date_is_taken(
    server: SandboxServer, http: httpx.Client, chain: int
) -> None:
    member = freezable(server, chain)
    limit = period_days(member["type"]["freeze_limit"], member["type"]["freeze_limit_unit_id"])
    today = server.dataset.clock.today
    op = OPERATIONS["membership_freeze"]
    ids = {"chain_id": chain, "membership_id": member["id"]}
    too_long = {"freeze_till": (today + timedelta(days=limit + 1)).isoformat()}
    meta = check_refusal(op, call(http, op.name, too_long, **ids), 422)
    assert meta["message"] == "Freeze period exceeds limit" and "freeze_till" in meta["errors"]
    assert memberships_by_ids(http, chain, member["id"])[0]["is_frozen"] is False
    check_refusal(op, call(http, op.name, {}, **ids), 422)
    exactly = {"freeze_till": (today + timedelta(days=limit)).isoformat()}
    assert check_success(op, call(http, op.name, exactly, **ids))["data"]["freeze_period"] == limit


def test_freeze_refused_with_400_when_the_type_does_not_allow_it(
    server: SandboxServer, http: httpx.Client, chain: int
) -> None:
    member = next(
        m for m in server.dataset.live_memberships(chain) if not m["type"]["allow_freeze"]
    )
    op = OPERATIONS["membership_freeze"]
    till = {"freeze_till": (server.dataset.clock.today + timedelta(days=2)).isoformat()}
    response = call(http, op.name, till, chain_id=chain, membership_id=member["id"])
    assert check_refusal(op, response, 400)["message"] == "Subscription cannot be frozen"
    missing = call(http, op.name, till, chain_id=chain, membership_id=1)
    assert check_refusal(op, missing, 404)["message"] == "Subscription not found"


def test_unfreeze_thaws_once_keeps_the_extension_and_a_repeat_answers_400(
    server: SandboxServer, http: httpx.Client, chain: int
) -> None:
    member = freezable(server, chain)
    ids = {"chain_id": chain, "membership_id": member["id"]}
    till = (server.dataset.clock.today + timedelta(days=5)).isoformat()
    call(http, "membership_freeze", {"freeze_till": till}, **ids)
    frozen = server.dataset.membership(chain, member["id"])
    op = OPERATIONS["membership_unfreeze"]
    assert request_errors(op, {}) == []
    answer = check_success(op, call(http, op.name, {}, **ids))["data"]
    assert answer == {
        "id": member["id"],
        "number": str(member["number"]),
        "is_frozen": False,
        "freeze_period": 5,
    }
    (thawed,) = memberships_by_ids(http, chain, member["id"])
    assert thawed["is_frozen"] is False and thawed["expiration_date"] == frozen["expiration_date"]
    repeat = check_refusal(op, call(http, op.name, {}, **ids), 400)
    assert repeat["message"] == "Subscription is not frozen"


def _editable(server: SandboxServer, chain: int, united: bool) -> Any:
    return next(
        m
        for m in server.dataset.live_memberships(chain)
        if m["is_united_balance"] is united
        and m["type"]["balance_edit_type_id"] != 0
        and not m["is_united_balance_unlimited"]
        and (united or any(not lnk["is_unlimited"] for lnk in m["balance_container"]["links"]))
    )


def test_set_balance_answers_200_with_no_body_and_0_visits_means_used_up() -> None:
    config = SandboxConfig(**{**CONFIG.__dict__, "chains": 3, "memberships_per_day": 8})
    with serve(config) as server, http_client(server) as http:
        op = OPERATIONS["membership_set_balance"]
        checked = 0
        for chain in server.dataset.chain_ids()[1:]:
            for united in (True, False):
                member = _editable(server, chain, united)
                ids = {"chain_id": chain, "membership_id": member["id"]}
                if united:
                    bodies = [
                        {"united_balance_services_count": 3},
                        {"united_balance_services_count": 0},
                    ]
                else:
                    link = next(
                        lnk
                        for lnk in member["balance_container"]["links"]
                        if not lnk["is_unlimited"]
                    )
                    node = link.get("service") or link["category"]
                    others = [
                        {"service_id": (x.get("service") or x["category"])["id"], "balance": 0}
                        for x in member["balance_container"]["links"]
                        if not x["is_unlimited"] and x is not link
                    ]
                    bodies = [
                        {"services_balance_count": [{"service_id": node["id"], "balance": 3}]},
                        {
                            "services_balance_count": [
                                {"service_id": node["id"], "balance": 0},
                                *others,
                            ]
                        },
                    ]
                for body, left in zip(bodies, (3, 0), strict=True):
                    assert request_errors(op, body) == []
                    check_success(op, call(http, op.name, body, **ids))
                    (now,) = memberships_by_ids(http, chain, member["id"])
                    if united:
                        assert now["united_balance_services_count"] == left
                    else:
                        counts = [
                            lnk["count"]
                            for lnk in now["balance_container"]["links"]
                            if (lnk.get("service") or lnk["category"])["id"] == node["id"]
                        ]
                        assert counts == [left]
                    has_unlimited = any(
                        lnk["is_unlimited"] for lnk in now["balance_container"]["links"]
                    )
                    if left == 0 and not (has_unlimited and not united):
                        assert now["status"]["id"] == WASTED
                    elif left:
                        assert now["status"]["id"] != WASTED
                checked += 1
        assert checked == 4


def test_set_balance_refusals(server: SandboxServer, http: httpx.Client, chain: int) -> None:
    op = OPERATIONS["membership_set_balance"]
    member = _editable(server, chain, united=False)
    ids = {"chain_id": chain, "membership_id": member["id"]}
    wrong = {"services_balance_count": [{"service_id": 1, "balance": 1}]}
    assert (
        check_refusal(op, call(http, op.name, wrong, **ids), 422)["message"] == "Invalid service ID"
    )
    shared = {"united_balance_services_count": 2}
    assert (
        check_refusal(op, call(http, op.name, shared, **ids), 422)["message"]
        == "Invalid service ID"
    )
    prohibited = next(
        m for m in server.dataset.live_memberships(chain) if m["type"]["balance_edit_type_id"] == 0
    )
    response = call(http, op.name, shared, chain_id=chain, membership_id=prohibited["id"])
    assert check_refusal(op, response, 400)["message"] == "Cannot change balance"
    assert server.dataset.membership(chain, member["id"]) == member


def test_set_period_recounts_the_expiration_from_activation(
    server: SandboxServer, http: httpx.Client, chain: int
) -> None:
    op = OPERATIONS["membership_set_period"]
    member = next(m for m in server.dataset.live_memberships(chain) if m["activated_date"])
    body = {"period": 90, "period_unit_id": 1}
    assert request_errors(op, body) == []
    answer = check_success(
        op, call(http, op.name, body, chain_id=chain, membership_id=member["id"])
    )
    activated = date.fromisoformat(member["activated_date"][:10])
    expected = activated + timedelta(days=90 + member["freeze_period"])
    assert answer["data"]["expiration_date"][:10] == expected.isoformat()
    (now,) = memberships_by_ids(http, chain, member["id"])
    assert (now["period"], now["period_unit_id"]) == (90, 1)
    assert now["expiration_date"] == answer["data"]["expiration_date"]
    # Not activated yet: no expiration (the declared deviation).
    waiting = next(
        (m for m in server.dataset.live_memberships(chain) if not m["activated_date"]), None
    )
    if waiting is not None:
        ids = {"chain_id": chain, "membership_id": waiting["id"]}
        assert (
            check_success(op, call(http, op.name, body, **ids))["data"]["expiration_date"] is None
        )
    bad_unit = call(
        http,
        op.name,
        {"period": 3, "period_unit_id": 7},
        chain_id=chain,
        membership_id=member["id"],
    )
    assert check_refusal(op, bad_unit, 422)["message"] == "Invalid period unit"


def test_set_period_short_enough_expires_an_active_membership(
    server: SandboxServer, http: httpx.Client, chain: int
) -> None:
    member = next(
        m
        for m in server.dataset.live_memberships(chain)
        if m["status"]["id"] == ACTIVE and m["activated_date"] and m["freeze_period"] == 0
    )
    call(
        http,
        "membership_set_period",
        {"period": 1, "period_unit_id": 1},
        chain_id=chain,
        membership_id=member["id"],
    )
    (now,) = memberships_by_ids(http, chain, member["id"])
    assert now["status"]["slug"] == "expired"


def test_membership_writes_are_gated_by_their_flags() -> None:
    overrides = {
        CHAIN: {
            "loyalty_abonement_period_edit_access": "0",
            "loyalty_abonement_balance_edit_access": "0",
        }
    }
    config = SandboxConfig(**{**CONFIG.__dict__, "access_overrides": overrides})
    with serve(config) as server, http_client(server) as http:
        chain = server.dataset.chain_ids()[CHAIN]
        member = freezable(server, chain)
        ids = {"chain_id": chain, "membership_id": member["id"]}
        till = {"freeze_till": (server.dataset.clock.today + timedelta(days=2)).isoformat()}
        for name, body in (
            ("membership_freeze", till),
            ("membership_unfreeze", {}),
            ("membership_set_balance", {"united_balance_services_count": 1}),
            ("membership_set_period", {"period": 3, "period_unit_id": 3}),
        ):
            check_refusal(OPERATIONS[name], call(http, name, body, **ids), 403)
        assert server.dataset.membership(chain, member["id"]) == member


# ---------------------------------------------------------------- certificate types


def test_certificate_type_create_update_delete_and_the_reads(
    server: SandboxServer, http: httpx.Client, chain: int
) -> None:
    create, update, delete = (
        OPERATIONS[f"certificate_type_{verb}"] for verb in ("create", "update", "delete")
    )
    body = certificate_body(server, chain)
    assert request_errors(create, body) == []
    created = check_success(create, call(http, create.name, body, chain_id=chain))["data"]
    assert created["balance"] == 75.0 and created["released_total"] == 0
    assert created["expiration_type_id"] == 2 and created["expiration_timeout"] == 6
    assert created["online_sale_is_enabled"] is True and created["online_sale_price"] == 70.0
    listed = http.get(f"/chain/{chain}/loyalty/certificate_types", params={"page_size": 100})
    assert created in listed.json()["data"]
    ids = {"chain_id": chain, "certificate_type_id": created["id"]}
    read = check_success(OPERATIONS["certificate_type"], call(http, "certificate_type", **ids))
    assert read["data"] == created
    changed = certificate_body(server, chain, title="Gift Certificate 80", balance=80)
    assert request_errors(update, changed) == []
    updated = check_success(update, call(http, update.name, changed, **ids))["data"]
    assert updated["title"] == "Gift Certificate 80" and updated["id"] == created["id"]
    assert server.dataset.certificate_type(chain, created["id"]) == updated
    assert check_success(delete, call(http, delete.name, **ids))["data"] is None
    assert created["id"] not in {t["id"] for t in server.dataset.certificate_types(chain)}
    check_refusal(OPERATIONS["certificate_type"], call(http, "certificate_type", **ids), 404)
    check_refusal(delete, call(http, delete.name, **ids), 404)


def test_certificate_type_with_issued_certificates_refuses_update_and_delete_with_400(
    server: SandboxServer, http: httpx.Client, chain: int
) -> None:
    issued = next(t for t in server.dataset.certificate_types(chain) if t["released_total"] > 0)
    ids = {"chain_id": chain, "certificate_type_id": issued["id"]}
    delete = OPERATIONS["certificate_type_delete"]
    meta = check_refusal(delete, call(http, delete.name, **ids), 400)
    assert meta["message"] == "Cannot delete certificate type with issued certificates"
    update = OPERATIONS["certificate_type_update"]
    check_refusal(update, call(http, update.name, certificate_body(server, chain), **ids), 400)
    assert server.dataset.certificate_type(chain, issued["id"]) == issued


def test_certificate_type_validation_answers_400_with_field_errors(
    server: SandboxServer, http: httpx.Client, chain: int
) -> None:
    op = OPERATIONS["certificate_type_create"]
    for body, field in (
        ({**certificate_body(server, chain), "expiration": {"type_id": 1}}, "expiration.date"),
        (
            {k: v for k, v in certificate_body(server, chain).items() if k != "online_sale"},
            "online_sale",
        ),
        (certificate_body(server, chain, item_type_id=9), "item_type_id"),
    ):
        assert field in check_refusal(op, call(http, op.name, body, chain_id=chain), 400)["errors"]


def test_certificate_delete_may_answer_204_without_a_body() -> None:
    faults = Faults(certificate_type_delete_no_content=True)
    config = SandboxConfig(**{**CONFIG.__dict__, "faults": faults})
    with serve(config) as server, http_client(server) as http:
        chain = server.dataset.chain_ids()[CHAIN]
        created = call(
            http, "certificate_type_create", certificate_body(server, chain), chain_id=chain
        )
        ids = {"chain_id": chain, "certificate_type_id": created.json()["data"]["id"]}
        op = OPERATIONS["certificate_type_delete"]
        response = call(http, op.name, **ids)
        assert response.status_code == 204
        check_success(op, response)


# ---------------------------------------------------------------- promotions


def test_promotion_create_edit_delete_answer_bare_objects_and_the_reads_follow(
    server: SandboxServer, http: httpx.Client, chain: int
) -> None:
    create, update, delete = (
        OPERATIONS[f"promotion_{verb}"] for verb in ("create", "update", "delete")
    )
    body = promotion_body(server, chain)
    assert request_errors(create, body) == []
    includes = {"include": "rules,companies,loyalty_card_types,applicable_items"}
    created = check_success(
        create, http.post(f"/chain/{chain}/loyalty/programs", json=body, params=includes)
    )
    assert created["title"] == body["title"] and [r["value"] for r in created["rules"]] == [
        2.5,
        7.5,
    ]
    assert [c["id"] for c in created["companies"]] == body["company_ids"]
    bare = check_success(create, call(http, create.name, body, chain_id=chain))
    assert "rules" not in bare
    ids = {"chain_id": chain, "program_id": created["id"]}
    read = http.get(f"/chain/{chain}/loyalty/programs/{created['id']}", params=includes).json()
    assert read == created
    for location in body["company_ids"]:
        found = http.get(f"/company/{location}/loyalty/programs/search").json()["data"]
        assert created["id"] in {p["id"] for p in found}
    edit = orjson.loads((EXAMPLES / "PUT_chain_loyalty_programs_id.request.json").read_bytes())
    edit.update({k: body[k] for k in ("allowed_service_ids", "loyalty_card_type_ids")})
    edit["title"] = "Edited title"
    edit["company_ids"] = body["company_ids"][:1]
    assert request_errors(update, edit) == []
    edited = check_success(update, http.put(url(update.name, **ids), json=edit, params=includes))
    assert edited["title"] == "Edited title" and edited["type"] == body["type"]
    assert [c["id"] for c in edited["companies"]] == edit["company_ids"]
    dropped = body["company_ids"][1]
    found = http.get(f"/company/{dropped}/loyalty/programs/search").json()["data"]
    assert created["id"] not in {p["id"] for p in found}
    # What an edit leaves out is kept.
    kept = check_success(update, call(http, update.name, {"usage_limit": 3}, **ids))
    assert kept["title"] == "Edited title" and kept["usage_limit"] == 3
    check_success(delete, call(http, delete.name, **ids))
    assert http.get(url("promotion_update", **ids)).status_code == 404
    assert server.dataset.promotion(chain, created["id"]) is None
    check_refusal(delete, call(http, delete.name, **ids), 404)


def test_promotion_create_refuses_what_the_chain_does_not_have(
    server: SandboxServer, http: httpx.Client, chain: int
) -> None:
    op = OPERATIONS["promotion_create"]
    for change, field in (
        ({"company_ids": [1]}, "company_ids"),
        ({"loyalty_card_type_ids": [1]}, "loyalty_card_type_ids"),
        ({"type": "cashback_mystery"}, "type"),
        ({"rules": None}, "rules"),
    ):
        body = {
            k: v for k, v in {**promotion_body(server, chain), **change}.items() if v is not None
        }
        meta = check_refusal(op, call(http, op.name, body, chain_id=chain), 422)
        assert field in meta["errors"]
    assert server.dataset.promotions(chain) == SandboxDataset(CONFIG).promotions(chain)


def test_promotion_writes_are_gated_by_the_programs_flag() -> None:
    overrides = {CHAIN: {"loyalty_programs_access": "0", "loyalty_certificate_types_access": "0"}}
    config = SandboxConfig(**{**CONFIG.__dict__, "access_overrides": overrides})
    with serve(config) as server, http_client(server) as http:
        chain = server.dataset.chain_ids()[CHAIN]
        promo = server.dataset.promotions(chain)[0]
        for name, body, ids in (
            ("promotion_create", promotion_body(server, chain), {}),
            ("promotion_update", {"title": "x"}, {"program_id": promo["id"]}),
            ("promotion_delete", None, {"program_id": promo["id"]}),
            ("certificate_type_create", certificate_body(server, chain), {}),
        ):
            response = call(http, name, body, chain_id=chain, **ids)
            assert response.status_code == 403, name
        assert server.dataset.promotion(chain, promo["id"]) == promo


def test_a_malformed_body_answers_400_and_changes_nothing(
    server: SandboxServer, http: httpx.Client, chain: int
) -> None:
    before = listed_types(http, chain)
    for content in (b"{not json", b"[1, 2]"):
        r = http.post(f"/chain/{chain}/loyalty/abonement_types", content=content)
        assert r.status_code == 400 and r.json()["success"] is False
    assert listed_types(http, chain) == before


def test_a_service_links_chain_ignores_the_maps_and_takes_service_links() -> None:
    config = SandboxConfig(**{**CONFIG.__dict__, "service_links_chains": frozenset({CHAIN})})
    with serve(config) as server, http_client(server) as http:
        chain = server.dataset.chain_ids()[CHAIN]
        (service_id, _), (other_id, _), *_ = server.dataset.services(chain)
        by_maps = create_type(http, server, chain)
        assert by_maps["balance_container"]["links"] == []
        links = [
            {"service_id": service_id, "is_unlimited": False, "count": 4},
            {"service_id": other_id, "is_unlimited": True, "count": 0},
        ]
        by_links = create_type(http, server, chain, services={}, service_links=links)
        got = [
            (lnk["service"]["id"], lnk["count"], lnk["is_unlimited"])
            for lnk in by_links["balance_container"]["links"]
        ]
        assert got == [(service_id, 4, False), (other_id, 0, True)]
        # The other chain takes the maps and ignores service_links.
        plain_chain = server.dataset.chain_ids()[0]
        plain = create_type(http, server, plain_chain, service_links=links)
        assert [lnk["count"] for lnk in plain["balance_container"]["links"]] == [8]
