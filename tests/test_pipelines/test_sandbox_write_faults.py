"""Faults on write operations and the write log: a 5xx before the write was applied, a lost
answer after it was, and a log that shows which writes reached the sandbox and what they did."""

from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
import pytest

from pipelines.altegio.endpoints import ACCEPT_HEADER
from pipelines.altegio.sandbox import Faults, SandboxConfig, SandboxServer, serve

BASE = SandboxConfig(seed=9, chains=2, start=date(2026, 1, 1), end=date(2026, 1, 10))


def running(faults: Faults) -> Any:
    return serve(SandboxConfig(**{**BASE.__dict__, "faults": faults}))


@pytest.fixture
def plain() -> Iterator[SandboxServer]:
    with running(Faults()) as server:
        yield server


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


def clone(http: httpx.Client, server: SandboxServer) -> httpx.Response:
    chain = server.dataset.chain_ids()[1]
    type_id = server.dataset.membership_types(chain)[0]["id"]
    return http.post(f"/chain/{chain}/loyalty/abonement_types/{type_id}/clone", json={})


def type_count(server: SandboxServer) -> int:
    return len(server.dataset.membership_types(server.dataset.chain_ids()[1]))


def test_a_5xx_burst_answers_before_anything_is_applied() -> None:
    with (
        running(Faults(write_error_every=3, write_error_burst=1)) as server,
        http_client(server) as http,
    ):
        before = type_count(server)
        codes = [clone(http, server).status_code for _ in range(6)]
        log = http.get("/_sandbox/requests").json()["requests"]
        assert codes == [201, 201, 503, 201, 201, 503]
        assert type_count(server) == before + 4
        assert [(e["applied"], e["status"], e["fault"]) for e in log] == [
            (True, 201, None),
            (True, 201, None),
            (False, 503, "error"),
            (True, 201, None),
            (True, 201, None),
            (False, 503, "error"),
        ]
        assert server.stats()["faults"]["write_error"] == 2


def test_a_dropped_connection_loses_the_answer_of_an_applied_write() -> None:
    with running(Faults(write_drop_every=2)) as server, http_client(server) as http:
        before = type_count(server)
        assert clone(http, server).status_code == 201
        with pytest.raises(httpx.RemoteProtocolError):
            clone(http, server)
        log = http.get("/_sandbox/requests").json()["requests"]
        assert type_count(server) == before + 2
        assert [(e["applied"], e["status"], e["fault"]) for e in log] == [
            (True, 201, None),
            (True, 201, "drop"),
        ]
        assert server.stats()["faults"]["write_drop"] == 1


def test_write_faults_leave_reads_alone_and_read_faults_leave_writes_alone() -> None:
    with running(Faults(write_error_every=1, error_every=2)) as server, http_client(server) as http:
        reads = [http.get("/groups").status_code for _ in range(4)]
        writes = [clone(http, server).status_code for _ in range(2)]
    # The GET counter never saw the writes; every write hit its own knob.
    assert reads == [200, 503, 200, 503]
    assert writes == [503, 503]


def test_the_log_keeps_every_write_with_its_body_and_refusals_as_not_applied(
    plain: SandboxServer,
) -> None:
    chain = plain.dataset.chain_ids()[1]
    type_id = plain.dataset.membership_types(chain)[0]["id"]
    archive = f"/chain/{chain}/loyalty/abonement_types/{type_id}/archive"
    with http_client(plain) as http:
        http.patch(archive, json={"is_archived": True})
        http.patch(archive, json={"is_archived": "1"})
        http.get(f"/chain/{chain}/loyalty/abonement_types/{type_id}")  # a read: not logged
        http.post(f"/chain/{chain}/loyalty/abonement_types", content=b"{oops")
        log = http.get("/_sandbox/requests").json()["requests"]
        assert [e["sequence"] for e in log] == [1, 2, 3]
        assert log[0] | {"path": None} == {
            "sequence": 1,
            "operation": "membership_type_archive",
            "method": "PATCH",
            "path": None,
            "body": {"is_archived": True},
            "applied": False,
            "status": 422,
            "fault": None,
        }
        assert log[0]["path"] == "/api/v1" + archive
        assert (log[1]["applied"], log[1]["status"]) == (True, 204)
        assert (log[2]["body"], log[2]["applied"], log[2]["status"]) == ("{oops", False, 400)
        assert http.post("/_sandbox/reset").status_code == 200
        assert http.get("/_sandbox/requests").json()["requests"] == []
    assert plain.stats()["requests"] == {}


def test_writes_are_counted_in_the_stats_by_operation(plain: SandboxServer) -> None:
    with http_client(plain) as http:
        clone(http, plain)
        clone(http, plain)
    assert plain.stats()["requests"]["membership_type_clone"] == {"201": 2}


def test_writes_without_credentials_answer_401_and_are_not_applied(plain: SandboxServer) -> None:
    before = type_count(plain)
    with httpx.Client(base_url=plain.base_url, timeout=10) as anonymous:
        response = clone(anonymous, plain)
    assert response.status_code == 401
    assert response.json()["meta"] == {"message": "Authentication needed."}
    assert type_count(plain) == before
