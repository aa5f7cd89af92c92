"""AltegioClient against an in-memory fake API on httpx.MockTransport: discovery, access
gating, paging stop rules (totals, silent caps, boundary repeats, stuck pages), promotions,
concurrency, progress, and the secret canary."""

import logging
import re
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from pipelines.altegio import endpoints as ep
from pipelines.altegio.client import (
    AccessDenied,
    AltegioClient,
    BadResponse,
    Chain,
    ClientSettings,
    Credentials,
    NotFound,
    Page,
)
from pipelines.altegio.sources.promotions import INCLUDES

BASE = "https://api.example.test/api/v1"
PARTNER = "PARTNER-SECRET-abc123"
USER = "USER-SECRET-def456"
PASSWORD = "PASSWORD-SECRET-ghi789"


def rows(n: int, start: int = 1) -> list[dict[str, Any]]:
    return [{"id": i, "amount": float(i)} for i in range(start, start + n)]


class FakeApi:
    """Serves each endpoint per the shared table, with optional silent caps, boundary
    repeats and a stuck page; records every request."""

    def __init__(
        self,
        data: dict[str, list[dict[str, Any]]] | None = None,
        *,
        cap: int | None = None,
        overlap: bool = False,
        stuck: bool = False,
        groups: list[dict[str, Any]] | None = None,
        search: dict[int, list[dict[str, Any]]] | None = None,
        status: dict[str, int] | None = None,
    ) -> None:
        self.data = data or {}
        self.cap = cap
        self.overlap = overlap
        self.stuck = stuck
        self.groups = groups if groups is not None else [chain_raw(1), chain_raw(2)]
        self.search = search or {}
        self.status = status or {}
        self.requests: list[httpx.Request] = []
        self.lock = threading.Lock()

    def endpoint_for(self, path: str) -> ep.Endpoint:
        for endpoint in ep.ENDPOINTS.values():
            pattern = re.sub(r"\{\w+\}", r"\\d+", endpoint.path) + "$"
            if re.search(pattern, path):
                return endpoint
        raise AssertionError(path)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.requests.append(request)
        path = request.url.path.removeprefix("/api/v1")
        endpoint = self.endpoint_for(path)
        for key, code in self.status.items():
            if key in path:
                return httpx.Response(
                    code, content=orjson.dumps({"success": False, "meta": {"message": "Nope."}})
                )
        if endpoint is ep.ENDPOINTS["groups"]:
            return ok(self.groups)
        if endpoint is ep.ENDPOINTS["promotion_search"]:
            loc = int(path.split("/")[2])
            found = self.search.get(loc, [])
            return ok(found, {"count": len(found)})
        if endpoint is ep.ENDPOINTS["promotion"]:
            pid = int(path.rsplit("/", 1)[1])
            return httpx.Response(
                200, content=orjson.dumps({"id": pid, "include": request.url.params["include"]})
            )
        chain_id = int(path.split("/")[2])
        all_rows = self.data.get(f"{endpoint.name}:{chain_id}", [])
        if endpoint.paging is ep.Paging.NONE:
            return httpx.Response(200, content=orjson.dumps(all_rows))
        page = 1 if self.stuck else int(request.url.params.get("page", "1"))
        size_param = endpoint.paging.size_param or ""
        size = int(request.url.params.get(size_param, endpoint.default_page_size or 25))
        if self.cap is not None:
            size = min(size, self.cap)
        lo = (page - 1) * size
        if self.overlap and page > 1:
            lo -= 1  # the page starts with the last row of the previous page
        chunk = all_rows[lo : lo + size] if lo < len(all_rows) else []
        if endpoint.total is ep.TotalIn.TOTAL_COUNT:
            return ok(chunk, {"total_count": len(all_rows)})
        return ok(chunk, {"count": len(chunk)})

    def paths(self) -> list[str]:
        return [str(r.url) for r in self.requests]


def ok(data: object, meta: object = None) -> httpx.Response:
    return httpx.Response(
        200, content=orjson.dumps({"success": True, "data": data, "meta": meta or []})
    )


def chain_raw(cid: int, access: dict[str, Any] | None = None, locations: int = 2) -> dict[str, Any]:
    return {
        "id": cid,
        "title": f"Chain {cid}",
        "companies": [
            {"id": cid * 100 + i, "title": f"L{i}", "timezone_name": "Europe/Berlin"}
            for i in range(locations)
        ],
        "access": access if access is not None else {"loyalty_access": "1"},
    }


def make_client(
    api: FakeApi,
    tmp_path: Path,
    *,
    page_sizes: dict[str, int] | None = None,
    progress: Callable[[str, int | None, int, int], None] | None = None,
    credentials: Credentials | None = None,
    max_pages: int = 10_000,
) -> AltegioClient:
    return AltegioClient(
        ClientSettings(
            base_url=BASE,
            credentials=credentials or Credentials(partner_token=PARTNER, user_token=USER),
            rate_limit=None,
            budget_dir=tmp_path,
            page_sizes=page_sizes or {},
            progress=progress,
            sleep=lambda s: None,
            transport=httpx.MockTransport(api),
            max_pages=max_pages,
        )
    )


def collect(pages: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for page in pages:
        assert isinstance(page, Page)
        out.extend(page.records)
    return out


def ids(records: list[dict[str, Any]]) -> list[int]:
    return [r["id"] for r in records]


DAY = date(2026, 1, 5)


# --------------------------------------------------------------------------- chains


def test_chains_parse_flags_timezone_and_locations(tmp_path: Path) -> None:
    groups = [
        chain_raw(1, {"loyalty_access": "1", "loyalty_programs_access": "0"}),
        chain_raw(2, {"loyalty_access": 0, "loyalty_certificate_types_access": 1}),
        {"id": "3", "title": "No locations"},
    ]
    client = make_client(FakeApi(groups=groups), tmp_path)
    c1, c2, c3 = client.list_chains()
    assert (c1.id, c1.timezone, c1.location_ids) == (1, "Europe/Berlin", [100, 101])
    assert c1.can("transactions") and not c1.can("promotion_search")
    assert c1.can("certificate_types")  # absent flag: ask
    assert not c2.can("transactions") and c2.can("certificate_types")
    assert (c3.id, c3.timezone, c3.locations, c3.access) == (3, "UTC", [], {})
    assert c3.can("transactions")


def test_chains_narrow_to_configured_ids_and_name_missing_ones(tmp_path: Path) -> None:
    client = make_client(FakeApi(), tmp_path)
    assert [c.id for c in client.list_chains([2])] == [2]
    with pytest.raises(NotFound, match=r"\[9\]"):
        client.list_chains([1, 9])


def test_a_zero_access_flag_means_the_endpoint_is_never_asked(tmp_path: Path) -> None:
    api = FakeApi(groups=[chain_raw(1, {"loyalty_access": "0"}), chain_raw(2)])
    api.data["transactions:2"] = rows(3)
    client = make_client(api, tmp_path)
    client.list_chains()
    with pytest.raises(AccessDenied, match="loyalty_access"):
        collect(client.list_transactions(1, DAY))
    assert len(api.requests) == 1  # only /groups
    assert len(collect(client.list_transactions(2, DAY))) == 3


def test_a_403_for_one_chain_does_not_stop_the_next(tmp_path: Path) -> None:
    api = FakeApi(status={"/chain/1/": 403})
    api.data["card_types:2"] = rows(2)
    client = make_client(api, tmp_path)
    got: dict[int, Any] = {}
    for chain in client.list_chains():
        try:
            got[chain.id] = collect(client.list_card_types(chain.id))
        except AccessDenied as exc:
            got[chain.id] = exc
    assert isinstance(got[1], AccessDenied) and got[1].message == "Nope."
    assert got[1].chain_id == 1 and got[1].endpoint == "card_types"
    assert ids(got[2]) == [1, 2]


# --------------------------------------------------------------------------- paging


def test_total_count_ends_paging_without_an_empty_probe(tmp_path: Path) -> None:
    api = FakeApi({"certificate_types:1": rows(250)})
    client = make_client(api, tmp_path)
    got = collect(client.list_certificate_types(1))
    assert ids(got) == list(range(1, 251))
    assert len(api.requests) == 3  # 100 + 100 + 50, no 4th
    assert "page_size=100" in api.paths()[0]


def test_total_count_with_a_silent_cap_and_exact_multiple(tmp_path: Path) -> None:
    api = FakeApi({"membership_types:1": rows(60)}, cap=20)
    got = collect(make_client(api, tmp_path).list_membership_types(1))
    assert ids(got) == list(range(1, 61))
    assert len(api.requests) == 3


@pytest.mark.parametrize("cap", [7, 25, 1000, None])
def test_no_total_paging_learns_a_silent_cap(cap: int | None, tmp_path: Path) -> None:
    api = FakeApi({"transactions:1": rows(53)}, cap=cap)
    client = make_client(api, tmp_path, page_sizes={"transactions": 25})
    got = collect(client.list_transactions(1, DAY))
    assert sorted(ids(got)) == list(range(1, 54)) and len(got) == 53
    served = min(cap or 25, 25)
    assert len(api.requests) == -(-53 // served)  # the short last page ends it


def test_a_short_first_page_is_not_trusted_until_the_cap_is_known(tmp_path: Path) -> None:
    api = FakeApi({"transactions:1": rows(30), "transactions:2": rows(8)}, cap=10)
    client = make_client(api, tmp_path)
    client.list_chains()
    # Chain 2 first: 8 rows < 1000 asked, nothing known yet -> one probe page.
    assert len(collect(client.list_transactions(2, DAY))) == 8
    assert len(api.requests) == 1 + 2
    # Chain 1: 10, 10, 10 then empty; this proves the cap is 10.
    assert len(collect(client.list_transactions(1, DAY))) == 30
    assert len(api.requests) == 3 + 4
    # Now a short page (8 < 10) ends the window with no probe.
    assert len(collect(client.list_transactions(2, DAY + timedelta(days=1)))) == 8
    assert len(api.requests) == 7 + 1


def test_rows_repeated_across_a_page_boundary_are_yielded_once(tmp_path: Path) -> None:
    api = FakeApi({"transactions:1": rows(40), "membership_types:1": rows(40)}, overlap=True)
    client = make_client(api, tmp_path, page_sizes={"transactions": 10, "membership_types": 10})
    pages = list(client.list_transactions(1, DAY))
    # page p starts one row early, so the last answer is only the repeated row
    assert [p.reported_rows for p in pages] == [10, 10, 10, 10, 1]
    tx = collect(pages)
    assert ids(tx) == list(range(1, 41))
    mt = collect(client.list_membership_types(1))
    assert ids(mt) == list(range(1, 41))


def test_a_server_stuck_on_one_page_is_an_error(tmp_path: Path) -> None:
    api = FakeApi({"transactions:1": rows(30)}, stuck=True)
    client = make_client(api, tmp_path, page_sizes={"transactions": 10})
    with pytest.raises(BadResponse, match="repeats page 1"):
        collect(client.list_transactions(1, DAY))
    assert len(api.requests) == 2


def test_max_pages_bounds_a_walk(tmp_path: Path) -> None:
    api = FakeApi({"transactions:1": rows(100)})
    client = make_client(api, tmp_path, page_sizes={"transactions": 10}, max_pages=3)
    with pytest.raises(BadResponse, match="more than 3 pages"):
        collect(client.list_transactions(1, DAY))


def test_transactions_params_are_one_day_and_bracketed_locations(tmp_path: Path) -> None:
    api = FakeApi()
    collect(make_client(api, tmp_path).list_transactions(1, DAY, location_ids=[5, 6]))
    params = api.requests[0].url.params
    assert params["created_after"] == params["created_before"] == "2026-01-05"
    assert params.get_list("company_ids[]") == ["5", "6"]
    assert params["page"] == "1" and params["count"] == "1000"


def test_memberships_need_aware_bounds_and_send_iso_with_offset(tmp_path: Path) -> None:
    api = FakeApi({"memberships:1": rows(3)})
    client = make_client(api, tmp_path)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    got = collect(client.list_memberships(1, start, start + timedelta(days=1)))
    assert len(got) == 3
    assert api.requests[0].url.params["created_after"] == "2026-01-01T00:00:00+00:00"
    with pytest.raises(ValueError, match="time-zone aware"):
        collect(client.list_memberships(1, datetime(2026, 1, 1), start))


def test_memberships_by_ids_batches_and_dedups(tmp_path: Path) -> None:
    api = FakeApi({"memberships:1": rows(5)})
    client = make_client(api, tmp_path)
    got = collect(client.list_memberships_by_ids(1, [*range(1, 151), 3]))
    assert ids(got) == [1, 2, 3, 4, 5]  # the fake ignores the filter; dedup across batches
    first = api.requests[0].url.params.get_list("abonements_ids[]")
    assert len(first) == 100 and first[0] == "1"


def test_bare_array_endpoints_are_one_request(tmp_path: Path) -> None:
    api = FakeApi({"notification_templates:1": rows(4), "card_types:1": rows(2)})
    client = make_client(api, tmp_path)
    assert len(collect(client.list_notification_templates(1))) == 4
    assert len(collect(client.list_card_types(1))) == 2
    assert len(api.requests) == 2


def test_promotions_search_each_location_dedup_then_detail_with_includes(
    tmp_path: Path,
) -> None:
    search = {
        100: [{"id": 7, "group_id": 1}, {"id": 8, "group_id": 1}],
        101: [{"id": 8, "group_id": 1}, {"id": 9, "group_id": 1}, {"id": 99, "group_id": 5}],
    }
    api = FakeApi(search=search)
    client = make_client(api, tmp_path)
    chain = client.list_chains()[0]
    got = collect(client.list_promotions(chain))
    assert ids(got) == [7, 8, 9]
    assert got[0]["include"] == ",".join(INCLUDES)
    assert len(api.requests) == 1 + 2 + 3


def test_promotions_gated_by_their_flag(tmp_path: Path) -> None:
    api = FakeApi(groups=[chain_raw(1, {"loyalty_programs_access": "0"})])
    client = make_client(api, tmp_path)
    with pytest.raises(AccessDenied):
        collect(client.list_promotions(1))
    assert len(api.requests) == 1


# --------------------------------------------------------------------------- concurrency


def test_fetch_transaction_days_returns_every_day_once(tmp_path: Path) -> None:
    api = FakeApi({"transactions:1": rows(23)}, cap=10)
    client = make_client(api, tmp_path)
    days = [DAY + timedelta(days=i) for i in range(12)]
    got = {
        day: [r for page in pages for r in page.records]
        for day, pages in client.fetch_transaction_days(1, days, workers=4)
    }
    assert sorted(got) == days
    assert all(sorted(ids(v)) == list(range(1, 24)) for v in got.values())


def test_fetch_transaction_days_raises_the_first_failure(tmp_path: Path) -> None:
    api = FakeApi(status={"/chain/1/": 422})
    client = make_client(api, tmp_path)
    with pytest.raises(Exception, match="Nope"):
        list(client.fetch_transaction_days(1, [DAY, DAY + timedelta(days=1)], workers=2))


def test_progress_and_stats_count_pages_and_rows(tmp_path: Path) -> None:
    seen: list[tuple[str, int | None, int, int]] = []
    api = FakeApi({"transactions:1": rows(25)})
    client = make_client(
        api,
        tmp_path,
        page_sizes={"transactions": 10},
        progress=lambda *a: seen.append(a),
    )
    collect(client.list_transactions(1, DAY))
    assert seen == [
        ("transactions", 1, 1, 10),
        ("transactions", 1, 2, 20),
        ("transactions", 1, 3, 25),
    ]
    stats = client.stats
    assert stats.requests == 3 and stats.pages == 3 and stats.rows == 25
    assert stats.by_endpoint["transactions"].requests == 3
    assert stats.bytes_received > 0
    assert client.stats.as_dict()["by_endpoint"]["transactions"]["rows"] == 25
    before = client.stats.snapshot()
    collect(client.list_transactions(1, DAY))
    assert client.stats.requests - before.requests == 3 and before.requests == 3


# --------------------------------------------------------------------------- secrets canary


def test_no_secret_in_logs_errors_or_reprs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tokens = iter(["LOGIN-TOKEN-1", "LOGIN-TOKEN-2"])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/auth"):
            return httpx.Response(
                201, content=orjson.dumps({"success": True, "data": {"user_token": next(tokens)}})
            )
        if "/chain/" in request.url.path:
            return httpx.Response(401, content=b'{"meta": {"message": "Authentication needed."}}')
        return ok([chain_raw(1)])

    creds = Credentials(partner_token=PARTNER, user_token=USER, login="who", password=PASSWORD)
    client = AltegioClient(
        ClientSettings(
            base_url=BASE,
            credentials=creds,
            rate_limit=2.0,
            budget_dir=tmp_path,
            sleep=lambda s: None,
            transport=httpx.MockTransport(handler),
        )
    )
    client.list_chains()
    with pytest.raises(Exception) as info:
        collect(client.list_transactions(1, DAY))
    texts = [
        str(info.value),
        repr(info.value),
        repr(client),
        repr(client.settings),
        repr(creds),
        caplog.text,
        *(str(a) for r in caplog.records for a in (r.args or ())),
        *(p.name for p in tmp_path.iterdir()),
        *(p.read_text() for p in tmp_path.iterdir()),
    ]
    for secret in (PARTNER, USER, PASSWORD, "LOGIN-TOKEN-1", "LOGIN-TOKEN-2"):
        for text in texts:
            assert secret not in text
    assert "ALTEGIO_LOGIN" in str(info.value)


def test_chain_from_raw_accepts_locations_spelling() -> None:
    chain = Chain.from_raw({"id": 4, "locations": [{"id": 1}], "access": {"x": None}})
    assert chain.location_ids == [1] and chain.access == {} and chain.timezone == "UTC"
