"""Each fault and quirk knob misbehaves as described, deterministically, and shows in the stats."""

import socket
from datetime import date
from typing import Any

import httpx
import orjson
import pytest

from pipelines.altegio.sandbox import Faults, SandboxConfig, SandboxServer, serve
from pipelines.altegio.sandbox.data import GATING_FLAGS
from tests.conftest import endpoint_path, sandbox_client

BASE = SandboxConfig(
    seed=11, chains=2, start=date(2026, 1, 1), end=date(2026, 1, 7), transactions_per_day=40
)
DAY = {"created_after": "2026-01-01", "created_before": "2026-01-07"}


def running(faults: Faults, **overrides: Any) -> Any:
    fields = {**BASE.__dict__, "faults": faults, **overrides}
    return serve(SandboxConfig(**fields))


def tx_url(server: SandboxServer, index: int = 0) -> str:
    return endpoint_path("transactions", chain_id=server.dataset.chain_ids()[index])


def test_rate_limit_answers_429_with_retry_after_per_client() -> None:
    with (
        running(Faults(), rate_limit=0.001, rate_limit_burst=2) as server,
        sandbox_client(server) as http,
    ):
        codes = [http.get("/groups").status_code for _ in range(3)]
        limited = http.get("/groups")
        stats = server.stats()
    assert codes == [200, 200, 429]
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert stats["faults"]["rate_limited"] == 2
    assert stats["requests"]["groups"] == {"200": 2, "429": 2}


def test_rate_limit_without_retry_after_header() -> None:
    cfg = {"rate_limit": 0.001, "rate_limit_burst": 1, "rate_limit_retry_after": False}
    with running(Faults(), **cfg) as server, sandbox_client(server) as http:
        http.get("/groups")
        limited = http.get("/groups")
    assert limited.status_code == 429 and "Retry-After" not in limited.headers


def test_5xx_bursts_hit_the_last_k_of_every_n_requests() -> None:
    with running(Faults(error_every=4, error_burst=2)) as server, sandbox_client(server) as http:
        codes = [http.get("/groups").status_code for _ in range(8)]
        stats = server.stats()
    assert codes == [200, 200, 502, 503, 200, 200, 502, 503]
    assert stats["faults"]["error"] == 4
    assert stats["requests"]["groups"] == {"200": 4, "502": 2, "503": 2}


def test_slow_every_nth_request_exceeds_the_client_timeout() -> None:
    with running(Faults(slow_every=2, slow_seconds=5.0)) as server, sandbox_client(server) as http:
        assert http.get("/groups").status_code == 200
        with pytest.raises(httpx.ReadTimeout):
            http.get("/groups", timeout=0.2)
        assert server.stats()["faults"]["slow"] == 1


def test_dropped_connection_sends_headers_and_part_of_the_body() -> None:
    with running(Faults(drop_every=2)) as server:
        host, port = server.address
        creds = server.credentials
        request = (
            f"GET /api/v1/groups HTTP/1.1\r\nHost: x\r\nAccept: application/vnd.api.v2+json\r\n"
            f"Authorization: Bearer {creds.partner_token}, User {creds.user_token}\r\n\r\n"
        ).encode()
        received = []
        for _ in range(2):
            with socket.create_connection((host, port), timeout=5) as sock:
                sock.sendall(request)
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
                    if b"\r\n\r\n" in b"".join(chunks):
                        head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
                        length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                        if len(body) >= length:
                            break
                received.append(b"".join(chunks))
        with sandbox_client(server) as http:
            http.get("/groups")  # request 3: fine
            with pytest.raises(httpx.RemoteProtocolError):
                http.get("/groups")  # request 4: dropped
        assert server.stats()["faults"]["drop"] == 2
    _, _, whole = received[0].partition(b"\r\n\r\n")
    cut_head, _, cut = received[1].partition(b"\r\n\r\n")
    assert b"200 OK" in cut_head
    assert 0 < len(cut) < len(whole)
    assert whole.startswith(cut)


def test_truncated_json_is_a_200_with_a_broken_body() -> None:
    with running(Faults(truncate_every=2)) as server, sandbox_client(server) as http:
        ok = http.get("/groups")
        broken = http.get("/groups")
        assert server.stats()["faults"]["truncate"] == 1
    assert broken.status_code == 200
    assert ok.content.startswith(broken.content) and len(broken.content) < len(ok.content)
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(broken.content)


def test_page_size_cap_global_and_per_endpoint() -> None:
    with (
        running(Faults(page_size_cap=7, page_size_caps={"transactions": 5})) as server,
        sandbox_client(server) as http,
    ):
        tx = http.get(tx_url(server), params={**DAY, "count": 1000}).json()
        chain = server.dataset.chain_ids()[0]
        certs = http.get(
            endpoint_path("certificate_types", chain_id=chain), params={"page_size": 100}
        ).json()
        mtypes = http.get(endpoint_path("membership_types", chain_id=chain)).json()
        assert server.stats()["page_sizes"]["transactions"] == {"5": 1}
    assert len(tx["data"]) == 5 and tx["meta"] == {"count": 5}
    assert len(certs["data"]) == 7 and certs["meta"]["total_count"] > 7
    assert len(mtypes["data"]) == min(7, len(server.dataset.membership_types(chain)))


def test_overlap_pages_repeat_the_last_row_of_the_previous_page() -> None:
    with running(Faults(overlap_pages=True)) as server, sandbox_client(server) as http:
        one = http.get(tx_url(server), params={**DAY, "count": 10, "page": 1}).json()["data"]
        two = http.get(tx_url(server), params={**DAY, "count": 10, "page": 2}).json()["data"]
    truth = server.dataset.transactions(
        server.dataset.chain_ids()[0], date(2026, 1, 1), date(2026, 1, 7)
    )
    assert one == truth[:10]
    assert two[0] == one[-1] and two == truth[9:19]


def test_stuck_server_serves_page_one_for_every_page() -> None:
    with running(Faults(stuck_pages=True)) as server, sandbox_client(server) as http:
        pages = [
            http.get(tx_url(server), params={**DAY, "count": 10, "page": p}).content
            for p in (1, 2, 3)
        ]
    assert pages[0] == pages[1] == pages[2]


def test_unknown_enum_codes_are_injected_into_some_records() -> None:
    with running(Faults(unknown_enum_every=3)) as server, sandbox_client(server) as http:
        chain = server.dataset.chain_ids()[0]
        rows = http.get(tx_url(server), params={**DAY, "count": 1000}).json()["data"]
        mtypes = http.get(endpoint_path("membership_types", chain_id=chain)).json()["data"]
    odd = [r for r in rows if r["type_id"] == 99]
    assert odd and len(odd) < len(rows)
    assert all(
        r["id"] % 3 == 0 and r["type"] == {"id": 99, "title": "Unknown operation"} for r in odd
    )
    truth = server.dataset.membership_types(chain)
    assert [m["expiration_type_id"] == 7 for m in mtypes] == [m["id"] % 3 == 0 for m in truth]
    # Ground truth stays clean.
    assert {
        t["type_id"] for t in server.dataset.transactions(chain, date(2026, 1, 1), date(2026, 1, 7))
    } <= set(range(1, 12))


def test_extra_undocumented_fields() -> None:
    with running(Faults(extra_fields=True)) as server, sandbox_client(server) as http:
        rows = http.get(tx_url(server), params={**DAY, "count": 3}).json()["data"]
        chain = server.dataset.chain_ids()[1]
        cards = http.get(endpoint_path("card_types", chain_id=chain)).json()
    assert {"external_id", "sync_revision", "client_id"} <= set(rows[0])
    assert "external_id" in cards[0]


def test_ids_and_flags_as_numeric_strings() -> None:
    with running(Faults(numeric_strings=True)) as server, sandbox_client(server) as http:
        row = http.get(tx_url(server), params={**DAY, "count": 1}).json()["data"][0]
        group = http.get("/groups").json()["data"][0]
    truth = server.dataset.transactions(
        server.dataset.chain_ids()[0], date(2026, 1, 1), date(2026, 1, 1)
    )[0]
    assert row["id"] == str(truth["id"]) and row["type_id"] == str(truth["type_id"])
    assert row["is_discount"] in ("0", "1") and row["amount"] == truth["amount"]
    assert row["type"]["id"] == str(truth["type"]["id"])
    assert isinstance(group["id"], str)


def test_memberships_wrapped_in_a_one_element_array() -> None:
    with running(Faults(wrap_memberships=True)) as server, sandbox_client(server) as http:
        chain = server.dataset.chain_ids()[0]
        body = http.get(
            endpoint_path("memberships", chain_id=chain),
            params={
                "created_after": "2026-01-01T00:00:00+00:00",
                "created_before": "2026-01-08T00:00:00+00:00",
            },
        ).json()
    assert isinstance(body, list) and len(body) == 1 and body[0]["success"] is True
    assert body[0]["meta"] == {"count": len(body[0]["data"])}


def test_forbidden_chain_answers_403_although_its_flags_are_absent() -> None:
    with running(Faults(forbidden_chain=1)) as server, sandbox_client(server) as http:
        groups = http.get("/groups").json()["data"]
        chain = server.dataset.chain_ids()[1]
        location = server.dataset.location_ids(chain)[0]
        assert not set(GATING_FLAGS) & set(groups[1]["access"])
        assert http.get(endpoint_path("card_types", chain_id=chain)).status_code == 403
        assert http.get(endpoint_path("promotion_search", location_id=location)).status_code == 403
        assert http.get(tx_url(server, 0), params=DAY).status_code == 200


def test_faults_never_touch_the_control_endpoints() -> None:
    faults = Faults(error_every=1, drop_every=1, truncate_every=1, slow_every=1, slow_seconds=5)
    with running(faults) as server, sandbox_client(server) as http:
        for _ in range(3):
            assert http.get("/_sandbox/stats").status_code == 200
        assert http.post("/_sandbox/reset").json() == {"success": True}


def test_faults_repeat_identically_after_reset() -> None:
    faults = Faults(error_every=3, truncate_every=5)

    def run(server: SandboxServer) -> list[tuple[int, int]]:
        with sandbox_client(server) as http:
            return [
                (r.status_code, len(r.content)) for r in (http.get("/groups") for _ in range(10))
            ]

    with running(faults) as server:
        first = run(server)
        server.reset_stats()
        assert run(server) == first
    with running(faults) as server:
        assert run(server) == first
