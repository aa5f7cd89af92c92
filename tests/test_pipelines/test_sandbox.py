"""The sandbox behaves like the documented Altegio v1 API: envelopes, paging, auth, errors, data."""

import hashlib
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from pipelines.altegio.endpoints import ACCEPT_HEADER, ENDPOINTS
from pipelines.altegio.sandbox import Faults, SandboxConfig, SandboxServer, serve
from pipelines.altegio.sandbox.data import MESSAGE_TYPES, PROMOTION_TYPES, parse_timestamp

SMALL = SandboxConfig(
    seed=7, start=date(2026, 1, 1), end=date(2026, 1, 14), transactions_per_day=30
)


def client(server: SandboxServer, **headers: str) -> httpx.Client:
    """An httpx client with the documented headers (overridable)."""
    creds = server.credentials
    base = {
        "Accept": ACCEPT_HEADER,
        "Authorization": f"Bearer {creds.partner_token}, User {creds.user_token}",
    }
    base.update(headers)
    return httpx.Client(base_url=server.base_url, headers=base, timeout=10)


def path(name: str, **params: int) -> str:
    return ENDPOINTS[name].format_path(**params)


def all_pages(http: httpx.Client, url: str, size_param: str, size: int, **params: Any) -> list[Any]:
    rows: list[Any] = []
    page = 1
    while True:
        body = http.get(url, params={**params, "page": page, size_param: size}).json()
        if isinstance(body, list):  # the array-wrapped memberships quirk
            body = body[0]
        rows.extend(body["data"])
        if len(body["data"]) < size:
            return rows
        page += 1


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with serve(SMALL) as running:
        yield running


@pytest.fixture
def http(server: SandboxServer) -> Iterator[httpx.Client]:
    with client(server) as c:
        yield c


def test_serve_binds_loopback_free_port_and_stops(tmp_path: Path) -> None:
    with serve(SandboxConfig(chains=1, end=date(2026, 1, 2))) as running:
        assert running.base_url.startswith("http://127.0.0.1:")
        assert running.base_url.endswith("/api/v1")
        url = running.base_url
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/groups", timeout=2)


def test_auth_returns_201_user_token_and_401_on_wrong_password(server: SandboxServer) -> None:
    creds = server.credentials
    with client(server, Authorization=f"Bearer {creds.partner_token}") as http:
        ok = http.post("/auth", json={"login": creds.login, "password": creds.password})
        bad = http.post("/auth", json={"login": creds.login, "password": "nope"})
    assert ok.status_code == 201
    assert ok.json()["data"]["user_token"] == creds.user_token
    assert ok.json()["meta"] == []
    assert bad.status_code == 401
    assert bad.json() == {
        "success": False,
        "data": None,
        "meta": {"message": "Authentication needed."},
    }


@pytest.mark.parametrize(
    "headers",
    [
        {"Accept": "application/json"},
        {"Authorization": "Bearer sandbox-partner-token"},
        {"Authorization": "Bearer sandbox-partner-token,User sandbox-user-token"},
        {"Authorization": "Bearer wrong, User sandbox-user-token"},
    ],
)
def test_wrong_headers_answer_401(server: SandboxServer, headers: dict[str, str]) -> None:
    with client(server, **headers) as http:
        r = http.get("/groups")
    assert r.status_code == 401
    assert r.json()["meta"] == {"message": "Authentication needed."}


def test_accept_with_charset_is_tolerated(server: SandboxServer) -> None:
    with client(server, Accept=ACCEPT_HEADER + "; charset=utf-8") as http:
        assert http.get("/groups").status_code == 200


def test_groups_lists_chains_with_locations_timezones_and_string_flags(
    server: SandboxServer, http: httpx.Client
) -> None:
    body = http.get("/groups").json()
    assert body["success"] is True and body["meta"] == []
    assert [g["id"] for g in body["data"]] == server.dataset.chain_ids()
    zones = {g["companies"][0]["timezone_name"] for g in body["data"]}
    assert len(zones) == len(body["data"])
    for group in body["data"]:
        assert len(group["companies"]) == SMALL.locations_per_chain
        assert set(group["access"].values()) <= {"0", "1"}
    # The first chain mirrors the official example: gating flags absent, not "0".
    assert "loyalty_programs_access" not in body["data"][0]["access"]
    assert body["data"] == server.dataset.groups()


def test_unknown_paths_ids_and_non_integer_ids_answer_404(
    server: SandboxServer, http: httpx.Client
) -> None:
    chain = server.dataset.chain_ids()[0]
    for url in ("/nope", f"/chain/{chain}/loyalty/nothing", "/chain/abc/loyalty/card_types"):
        r = http.get(url)
        assert r.status_code == 404
        assert r.json() == {"success": False, "data": None, "meta": {}}
    r = http.get(path("promotion", chain_id=chain, program_id=1))
    assert r.status_code == 404
    assert r.json() == {"success": False, "data": None, "meta": []}
    assert http.get(f"/chain/{chain}/loyalty/programs/1x").status_code == 404


def test_chain_not_belonging_to_user_answers_403(http: httpx.Client) -> None:
    r = http.get(path("card_types", chain_id=1))
    assert r.status_code == 403
    assert r.json() == {"success": False, "data": None, "meta": {"message": "Access denied."}}


def test_access_flag_zero_answers_403_on_that_endpoint_only() -> None:
    cfg = SandboxConfig(
        chains=2,
        end=date(2026, 1, 3),
        access_overrides={1: {"loyalty_certificate_types_access": "0"}},
    )
    with serve(cfg) as running, client(running) as http:
        chain = running.dataset.chain_ids()[1]
        assert http.get(path("certificate_types", chain_id=chain)).status_code == 403
        assert http.get(path("card_types", chain_id=chain)).status_code == 200
        group = http.get("/groups").json()["data"][1]
        assert group["access"]["loyalty_certificate_types_access"] == "0"


def test_memberships_need_dates_or_ids_else_documented_400(
    server: SandboxServer, http: httpx.Client
) -> None:
    chain = server.dataset.chain_ids()[0]
    r = http.get(path("memberships", chain_id=chain))
    assert r.status_code == 400
    assert r.json()["meta"] == {"message": "Subscription IDs or date range not specified."}
    r = http.get(
        path("memberships", chain_id=chain), params={"created_after": "2026-01-01T00:00:00+00:00"}
    )
    assert r.status_code == 400


def test_memberships_date_bounds_are_inclusive_instants(
    server: SandboxServer, http: httpx.Client
) -> None:
    chain = server.dataset.chain_ids()[1]
    everything = server.dataset.memberships(
        chain,
        datetime.fromisoformat("2020-01-01T00:00:00+00:00"),
        datetime.fromisoformat("2030-01-01T00:00:00+00:00"),
    )
    assert len(everything) > 5
    first, last = everything[1], everything[-2]
    rows = all_pages(
        http,
        path("memberships", chain_id=chain),
        "count",
        2,
        created_after=first["created_date"],
        created_before=last["created_date"],
    )
    assert rows == everything[1:-1]
    # Offsets with and without colon both occur.
    stamps = [m["created_date"] for m in everything]
    assert any(s[-3] == ":" for s in stamps) and any(s[-3] != ":" for s in stamps)
    # The same instant written in another offset selects the same rows.
    moved = parse_timestamp(first["created_date"]).astimezone(
        datetime.fromisoformat("2026-01-01T00:00:00+09:00").tzinfo
    )
    again = http.get(
        path("memberships", chain_id=chain),
        params={
            "created_after": moved.isoformat(),
            "created_before": last["created_date"],
            "count": 1000,
        },
    ).json()
    assert again["data"] == everything[1:-1]
    assert again["meta"] == {"count": len(everything) - 2}


@pytest.mark.parametrize("encoding", ["comma", "brackets"])
def test_memberships_by_ids_in_both_encodings(
    server: SandboxServer, http: httpx.Client, encoding: str
) -> None:
    chain = server.dataset.chain_ids()[2]
    some = server.dataset.memberships(
        chain,
        datetime.fromisoformat("2020-01-01T00:00:00+00:00"),
        datetime.fromisoformat("2030-01-01T00:00:00+00:00"),
    )[::3]
    ids = [m["id"] for m in some]
    params: Any = (
        {"abonements_ids": ",".join(map(str, ids))}
        if encoding == "comma"
        else [("abonements_ids[]", i) for i in ids]
    )
    body = http.get(path("memberships", chain_id=chain), params=params).json()
    assert body["data"] == some[:25]  # documented default page size
    assert server.dataset.memberships_by_ids(chain, ids) == some


def test_transactions_need_y_m_d_dates_else_422_with_errors(
    server: SandboxServer, http: httpx.Client
) -> None:
    chain = server.dataset.chain_ids()[0]
    r = http.get(path("transactions", chain_id=chain))
    assert r.status_code == 422
    assert set(r.json()["meta"]["errors"]) == {"created_after", "created_before"}
    r = http.get(
        path("transactions", chain_id=chain),
        params={"created_after": "2026-01-01T00:00:00", "created_before": "2026-01-02"},
    )
    assert r.status_code == 422
    assert set(r.json()["meta"]["errors"]) == {"created_after"}
    r = http.get(
        path("transactions", chain_id=chain),
        params={"created_after": "2026-01-01", "created_before": "2026-01-01", "types": "1,42"},
    )
    assert r.status_code == 422


def test_transactions_default_page_size_is_25_and_meta_count_is_page_rows(
    server: SandboxServer, http: httpx.Client
) -> None:
    chain = server.dataset.chain_ids()[0]
    truth = server.dataset.transactions(chain, date(2026, 1, 1), date(2026, 1, 14))
    body = http.get(
        path("transactions", chain_id=chain),
        params={"created_after": "2026-01-01", "created_before": "2026-01-14"},
    ).json()
    assert len(body["data"]) == 25 and body["meta"] == {"count": 25}
    assert body["data"] == truth[:25]


def test_transactions_bounds_are_inclusive_days_and_paging_is_exact(
    server: SandboxServer, http: httpx.Client
) -> None:
    chain = server.dataset.chain_ids()[1]
    for first, last in ((date(2026, 1, 3), date(2026, 1, 3)), (date(2026, 1, 2), date(2026, 1, 9))):
        rows = all_pages(
            http,
            path("transactions", chain_id=chain),
            "count",
            7,
            created_after=first.isoformat(),
            created_before=last.isoformat(),
        )
        assert rows == server.dataset.transactions(chain, first, last)


@pytest.mark.parametrize("encoding", ["comma", "brackets"])
def test_transactions_filters_by_location_type_and_visit(
    server: SandboxServer, http: httpx.Client, encoding: str
) -> None:
    chain = server.dataset.chain_ids()[2]
    locations = server.dataset.location_ids(chain)[:2]
    truth = server.dataset.transactions(
        chain, date(2026, 1, 1), date(2026, 1, 14), location_ids=locations
    )
    everything = server.dataset.transactions(chain, date(2026, 1, 1), date(2026, 1, 14))
    assert 0 < len(truth) < len(everything)

    def encode(name: str, values: list[int]) -> list[tuple[str, Any]]:
        if encoding == "comma":
            return [(name, ",".join(map(str, values)))]
        return [(name + "[]", v) for v in values]

    base = [("created_after", "2026-01-01"), ("created_before", "2026-01-14"), ("count", 100000)]
    got = http.get(
        path("transactions", chain_id=chain), params=base + encode("company_ids", locations)
    ).json()
    assert got["data"] == truth
    got = http.get(
        path("transactions", chain_id=chain), params=base + encode("types", [9, 10])
    ).json()
    assert got["data"] == [t for t in everything if t["type_id"] in (9, 10)]
    visits = [everything[0]["visit_id"] or everything[1]["visit_id"]]
    got = http.get(
        path("transactions", chain_id=chain), params=base + encode("visit_ids", visits)
    ).json()
    assert got["data"] == [t for t in everything if t["visit_id"] in visits]


def test_certificate_types_page_size_defaults_to_10_and_caps_at_100(
    server: SandboxServer, http: httpx.Client
) -> None:
    chain = server.dataset.chain_ids()[0]
    truth = server.dataset.certificate_types(chain)
    first = http.get(path("certificate_types", chain_id=chain)).json()
    assert first["data"] == truth[:10] and first["meta"] == {"total_count": len(truth)}
    second = http.get(path("certificate_types", chain_id=chain), params={"page": 2}).json()
    assert second["data"] == truth[10:20]
    cfg = SandboxConfig(chains=1, end=date(2026, 1, 2))
    with serve(cfg) as running, client(running) as other:
        running_chain = running.dataset.chain_ids()[0]
        # Fewer than 100 rows exist, so the clamp shows in the served page-size stats only.
        other.get(path("certificate_types", chain_id=running_chain), params={"page_size": 500})
        assert running.stats()["page_sizes"]["certificate_types"] == {
            str(len(running.dataset.certificate_types(running_chain))): 1
        }


def test_membership_types_page_limit_with_total_count(
    server: SandboxServer, http: httpx.Client
) -> None:
    chain = server.dataset.chain_ids()[0]
    truth = server.dataset.membership_types(chain)
    rows = all_pages(http, path("membership_types", chain_id=chain), "limit", 2)
    assert rows == truth
    body = http.get(path("membership_types", chain_id=chain), params={"limit": 2}).json()
    assert body["meta"] == {"total_count": len(truth)}
    assert truth[0]["category"] is not None  # object, null and "standard" all occur
    assert {type(m["category"]).__name__ for m in truth} == {"dict", "NoneType", "str"}
    assert "standard" in [m["category"] for m in truth]


def test_bare_arrays_and_bare_program_object_with_includes(
    server: SandboxServer, http: httpx.Client
) -> None:
    chain = server.dataset.chain_ids()[1]
    assert http.get(path("card_types", chain_id=chain)).json() == server.dataset.card_types(chain)
    templates = http.get(path("notification_templates", chain_id=chain)).json()
    assert templates == server.dataset.notification_templates(chain)
    promo = server.dataset.promotions(chain)[0]
    url = path("promotion", chain_id=chain, program_id=promo["id"])
    bare = http.get(url).json()
    assert "rules" not in bare and "companies" not in bare and "success" not in bare
    comma = http.get(url, params={"include": "rules,companies"}).json()
    brackets = http.get(url, params=[("include[]", "rules"), ("include[]", "companies")]).json()
    assert comma == brackets
    assert comma["rules"] == promo["rules"] and comma["companies"] == promo["companies"]
    everything = http.get(
        url, params={"include": ",".join(k for k in promo if isinstance(promo[k], list | dict))}
    ).json()
    assert everything == promo


def test_promotions_are_listed_per_location_and_shared_between_locations(
    server: SandboxServer, http: httpx.Client
) -> None:
    chain = server.dataset.chain_ids()[0]
    seen: dict[int, int] = {}
    for location in server.dataset.location_ids(chain):
        body = http.get(path("promotion_search", location_id=location)).json()
        assert body["meta"] == {"count": len(body["data"])}
        assert body["data"] == server.dataset.promotion_search(location)
        for item in body["data"]:
            assert item["group_id"] == chain
            seen[item["id"]] = seen.get(item["id"], 0) + 1
    assert max(seen.values()) > 1
    assert set(seen) == {p["id"] for p in server.dataset.promotions(chain)}
    assert http.get(path("promotion_search", location_id=1)).status_code == 403


def test_references_point_at_records_that_exist(server: SandboxServer) -> None:
    ds = server.dataset
    for chain in ds.chain_ids():
        templates = {t["id"] for t in ds.notification_templates(chain)}
        cards = {c["id"] for c in ds.card_types(chain)}
        promos = {p["id"] for p in ds.promotions(chain)}
        mtypes = {m["id"] for m in ds.membership_types(chain)}
        for promo in ds.promotions(chain):
            for key in (
                "on_changed_notification_template_id",
                "on_expiration_notification_template_id",
            ):
                assert promo[key] == 0 or promo[key] in templates
            assert {c["id"] for c in promo["loyalty_card_types"]} <= cards
        memberships = ds.memberships(
            chain,
            datetime.fromisoformat("2020-01-01T00:00+00:00"),
            datetime.fromisoformat("2030-01-01T00:00+00:00"),
        )
        assert {m["type"]["id"] for m in memberships} <= mtypes
        membership_ids = {m["id"] for m in memberships}
        for tx in ds.transactions(chain, SMALL.start, SMALL.end):
            assert tx["program_id"] == 0 or tx["program_id"] in promos
            assert tx["abonement_id"] == 0 or tx["abonement_id"] in membership_ids
            assert tx["salon_group_id"] == chain


def test_data_uses_every_enum_code_and_has_busy_and_empty_days() -> None:
    cfg = SandboxConfig(seed=3, end=date(2026, 3, 31), transactions_per_day=30)
    from pipelines.altegio.sandbox import SandboxDataset

    ds = SandboxDataset(cfg)
    txs, mtypes, certs, promos, templates, statuses = [], [], [], [], [], set()
    day_sizes = []
    for chain in ds.chain_ids():
        per_day = [
            len(ds.transactions(chain, d, d)) for d in (cfg.start + timedelta(n) for n in range(90))
        ]
        day_sizes += per_day
        txs += ds.transactions(chain, cfg.start, cfg.end)
        mtypes += ds.membership_types(chain)
        certs += ds.certificate_types(chain)
        promos += ds.promotions(chain)
        templates += ds.notification_templates(chain)
        statuses |= {
            m["status"]["id"]
            for m in ds.memberships(
                chain,
                datetime.fromisoformat("2020-01-01T00:00+00:00"),
                datetime.fromisoformat("2030-01-01T00:00+00:00"),
            )
        }
    assert 0 in day_sizes and max(day_sizes) > 2 * cfg.transactions_per_day * 0.6
    assert len({t["id"] for t in txs}) == len(txs)
    assert {t["type_id"] for t in txs} == set(range(1, 12))
    assert {t["item_type_id"] for t in txs} == {0, 1, 7}
    assert {t["status_id"] for t in txs} == {1, 2, 3, 4}
    assert all(isinstance(t["amount"], float) and t["amount"] > 0 for t in txs)
    assert {m["period_unit_id"] for m in mtypes} == {0, 1, 2, 3, 4}
    assert {m["expiration_type_id"] for m in mtypes} == {1, 2, 3}
    assert {m["balance_edit_type_id"] for m in mtypes} == {0, 1, 2}
    assert statuses == {1, 2, 3, 4}
    assert {c["item_type_id"] for c in certs} == {0, 1, 2, 3, 4}
    assert {c["expiration_type_id"] for c in certs} == {0, 1, 2}
    assert {c["balance_edit_type_id"] for c in certs} == {1, 2}
    assert {p["type"] for p in promos} == {t for t, _ in PROMOTION_TYPES}
    assert {p["service_item_type"] for p in promos} == {
        "any_allowed",
        "not_allowed",
        "custom_allowed",
    }
    assert {p["value_unit"] for p in promos} == {"percent", "amount"}
    assert {p["expiration_timeout_unit"] for p in promos} == {"day", "week", "month", "year"}
    assert {p["params_source_type"] for p in promos} == {
        "loyalty_card",
        "active_companies",
        "chain",
    }
    assert {t["message_type"] for t in templates} == set(MESSAGE_TYPES)
    assert {t["type"] for t in templates} == {"big", "mid", "small", "custom"}


def _fingerprint(server: SandboxServer) -> str:
    digest = hashlib.sha256()
    with client(server) as http:
        groups = http.get("/groups")
        digest.update(groups.content)
        for chain in server.dataset.chain_ids():
            for name, params in (
                (
                    "transactions",
                    {"created_after": "2026-01-01", "created_before": "2026-01-14", "count": 1000},
                ),
                (
                    "memberships",
                    {
                        "created_after": "2025-12-31T00:00:00+00:00",
                        "created_before": "2026-01-15T00:00:00+00:00",
                        "count": 1000,
                    },
                ),
                ("membership_types", {}),
                ("certificate_types", {"page_size": 100}),
                ("card_types", {}),
                ("notification_templates", {}),
            ):
                digest.update(http.get(path(name, chain_id=chain), params=params).content)
            for promo in server.dataset.promotions(chain):
                digest.update(
                    http.get(
                        path("promotion", chain_id=chain, program_id=promo["id"]),
                        params={"include": "rules,companies"},
                    ).content
                )
            for location in server.dataset.location_ids(chain):
                digest.update(http.get(path("promotion_search", location_id=location)).content)
    return digest.hexdigest()


def test_same_seed_gives_byte_identical_bodies_and_other_seed_differs() -> None:
    with serve(SMALL) as a:
        first = _fingerprint(a)
    with serve(SMALL) as b:
        second = _fingerprint(b)
    with serve(
        SandboxConfig(seed=8, start=SMALL.start, end=SMALL.end, transactions_per_day=30)
    ) as c:
        third = _fingerprint(c)
    assert first == second
    assert first != third


def test_stats_count_requests_by_endpoint_and_status_and_reset(server: SandboxServer) -> None:
    with client(server) as http:
        http.post("/_sandbox/reset")
        http.get("/groups")
        http.get(path("card_types", chain_id=1))
        over_http = http.get("/_sandbox/stats").json()
    assert over_http == server.stats()
    assert over_http["requests"] == {"groups": {"200": 1}, "card_types": {"403": 1}}
    assert over_http["page_sizes"] == {"groups": {"3": 1}}
    server.reset_stats()
    assert server.stats()["total_requests"] == 0


def test_cli_parses_options_into_a_config() -> None:
    import argparse

    from pipelines.altegio.sandbox import cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(
        [
            "--port",
            "0",
            "--seed",
            "9",
            "--chains",
            "2",
            "--start",
            "2026-02-01",
            "--end",
            "2026-02-03",
            "--transactions-per-day",
            "5",
            "--drop-every",
            "4",
            "--rate-limit",
            "2",
        ]
    )
    cfg = cli.config_from_args(args)
    assert (cfg.seed, cfg.chains, cfg.start, cfg.end, cfg.transactions_per_day) == (
        9,
        2,
        date(2026, 2, 1),
        date(2026, 2, 3),
        5,
    )
    assert cfg.faults == Faults(drop_every=4) and cfg.rate_limit == 2.0


def test_body_is_json_with_orjson(server: SandboxServer, http: httpx.Client) -> None:
    r = http.get("/groups")
    assert r.headers["content-type"].startswith("application/json")
    assert orjson.loads(r.content)["success"] is True
