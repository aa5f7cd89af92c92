"""Several API identities: configuration, chain assignment, one budget per identity, routing of
every chain's requests through its identity (and its egress proxy), against a sandbox that
accepts two identities and counts requests per identity."""

import contextlib
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from assets.resources import AltegioResource
from pipelines.altegio.client import AltegioClient, ClientSettings, Credentials
from pipelines.altegio.http import AuthError, ConfigurationError, budget_key
from pipelines.altegio.identities import (
    Identity,
    assign_chains,
    identities_from_environment,
    masked_proxy,
)
from pipelines.altegio.sandbox import SandboxConfig, SandboxServer
from pipelines.altegio.sources import SOURCES

START, END = date(2026, 1, 1), date(2026, 1, 2)
SANDBOX_CONFIG = SandboxConfig(
    seed=5, chains=3, locations_per_chain=2, start=START, end=END, identities=2
)
PROXY_PASSWORD = "cnryPROXYPASS-41d9"


def creds(partner: str = "p", user: str = "u") -> Credentials:
    return Credentials(partner_token=partner, user_token=user)


def sandbox_identity(server: SandboxServer, number: int, name: str, **kw: Any) -> Identity:
    accepted = server.identity_credentials[number - 1]
    return Identity(name, creds(accepted.partner_token, accepted.user_token), **kw)


def client_of(server: SandboxServer, tmp_path: Path, *identities: Identity) -> AltegioClient:
    return AltegioClient(
        ClientSettings(
            base_url=server.base_url,
            credentials=identities[0].credentials,
            identities=identities,
            rate_limit=50.0,
            budget_dir=tmp_path / "budget",
        )
    )


# --------------------------------------------------------------------------- configuration


def test_identities_come_from_their_own_variables() -> None:
    environ = {
        "ALTEGIO_IDENTITIES": "east, west",
        "ALTEGIO_IDENTITY_EAST_PARTNER_TOKEN": "pe",
        "ALTEGIO_IDENTITY_EAST_USER_TOKEN": "ue",
        "ALTEGIO_IDENTITY_EAST_CHAIN_IDS": "7, 9",
        "ALTEGIO_IDENTITY_WEST_PARTNER_TOKEN": "pw",
        "ALTEGIO_IDENTITY_WEST_LOGIN": "west@example.org",
        "ALTEGIO_IDENTITY_WEST_PASSWORD": "pass",
        "ALTEGIO_IDENTITY_WEST_PROXY": f"http://squid:{PROXY_PASSWORD}@127.0.0.1:3128",
    }
    east, west = identities_from_environment(environ)
    assert (east.name, east.credentials.user_token, east.chain_ids, east.proxy) == (
        "east",
        "ue",
        (7, 9),
        None,
    )
    assert west.credentials.can_login and west.chain_ids is None
    assert west.proxy == environ["ALTEGIO_IDENTITY_WEST_PROXY"]
    # Nothing secret in a repr: tokens, password, the proxy's password.
    text = repr((east, west))
    for secret in ("pe", "ue", "pw", "pass", PROXY_PASSWORD, "squid"):
        assert f"'{secret}'" not in text and PROXY_PASSWORD not in text
    assert "127.0.0.1:3128" in text
    assert masked_proxy(west.proxy) == "http://127.0.0.1:3128"


def test_no_identities_variable_means_none() -> None:
    assert identities_from_environment({"ALTEGIO_PARTNER_TOKEN": "p"}) == ()


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"ALTEGIO_IDENTITIES": "a"}, "set ALTEGIO_IDENTITY_A_PARTNER_TOKEN"),
        (
            {"ALTEGIO_IDENTITIES": "a", "ALTEGIO_IDENTITY_A_PARTNER_TOKEN": "p"},
            "set ALTEGIO_IDENTITY_A_USER_TOKEN or both ALTEGIO_IDENTITY_A_LOGIN",
        ),
        ({"ALTEGIO_IDENTITIES": "a,A"}, "names 'A' twice"),
        ({"ALTEGIO_IDENTITIES": "a-b"}, "'a-b' is not a name"),
        (
            {
                "ALTEGIO_IDENTITIES": "a",
                "ALTEGIO_IDENTITY_A_PARTNER_TOKEN": "p",
                "ALTEGIO_IDENTITY_A_USER_TOKEN": "u",
                "ALTEGIO_IDENTITY_A_CHAIN_IDS": "1,x",
            },
            "ALTEGIO_IDENTITY_A_CHAIN_IDS must be a comma list of integers",
        ),
    ],
)
def test_bad_identity_configuration_is_one_clear_line(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        identities_from_environment(environ)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_chains_are_assigned_explicitly_then_balanced() -> None:
    a = Identity("a", creds(), chain_ids=(5,))
    b, c = Identity("b", creds()), Identity("c", creds())
    visible = {"a": [1, 2, 5], "b": [1, 2, 3, 4], "c": [2, 3, 4, 6]}
    owner = assign_chains([a, b, c], visible)
    # a reads its listed chain only; the others alternate by load, first declared on ties;
    # chain 6 only c sees.
    assert owner == {5: "a", 1: "b", 2: "c", 3: "b", 4: "c", 6: "c"}


def test_a_chain_only_listed_identities_see_is_still_loaded() -> None:
    a = Identity("a", creds(), chain_ids=(1,))
    b = Identity("b", creds())
    assert assign_chains([a, b], {"a": [1, 2], "b": [3]}) == {1: "a", 2: "a", 3: "b"}


@pytest.mark.parametrize(
    ("listed", "message"),
    [
        (((9,), None), "lists chain 9, which identity a does not see"),
        (((1,), (1,)), "chain 1 is listed by identities a and b"),
    ],
)
def test_impossible_assignments_are_refused(listed: tuple[Any, Any], message: str) -> None:
    a = Identity("a", creds(), chain_ids=listed[0])
    b = Identity("b", creds(), chain_ids=listed[1])
    with pytest.raises(ConfigurationError, match=message):
        assign_chains([a, b], {"a": [1, 2], "b": [1, 2]})


def test_resource_reads_identities_and_refuses_both_ways_at_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in {
        "ALTEGIO_IDENTITY_A_PARTNER_TOKEN": "cnryPA-1",
        "ALTEGIO_IDENTITY_A_USER_TOKEN": "cnryUA-2",
        "ALTEGIO_IDENTITY_B_PARTNER_TOKEN": "cnryPB-3",
        "ALTEGIO_IDENTITY_B_USER_TOKEN": "cnryUB-4",
    }.items():
        monkeypatch.setenv(name, value)
    settings = AltegioResource(identities="a,b").settings(tmp_path)
    assert [i.name for i in settings.identities] == ["a", "b"]
    assert "cnry" not in repr(settings)
    with pytest.raises(ConfigurationError, match="set one or the other"):
        AltegioResource(identities="a,b", partner_token="p", user_token="u").settings(tmp_path)
    # Without ALTEGIO_IDENTITIES: the single identity, as before.
    single = AltegioResource(partner_token="p", user_token="u").settings(tmp_path)
    assert single.identities == () and single.credentials.partner_token == "p"


# --------------------------------------------------------------------------- against a sandbox


def test_each_chain_is_read_through_its_identity(sandbox: SandboxServer, tmp_path: Path) -> None:
    one, two = sandbox_identity(sandbox, 1, "one"), sandbox_identity(sandbox, 2, "two")
    source = SOURCES["loyalty_transactions"]
    sandbox.reset_stats()
    with client_of(sandbox, tmp_path, one, two) as client:
        chains = client.list_chains()
        owners = {c.id: client.identity_of(c.id) for c in chains}
        rows = {
            c.id: sorted(
                r["id"]
                for _, pages in client.fetch_days(source, c.id, [START, END])
                for p in pages
                for r in p.records
            )
            for c in chains
        }
        by_identity = client.requests_by_identity()
        total = client.stats.requests
    # Three chains over two identities: 2 + 1, each chain as the sandbox has it.
    assert sorted(owners.values()) == ["one", "one", "two"]
    for chain in chains:
        expected = sandbox.dataset.transactions(chain.id, START, END)
        assert rows[chain.id] == sorted(int(t["id"]) for t in expected)
    served = sandbox.stats()["requests_by_identity"]
    assert {"one": served["1"], "two": served["2"]} == by_identity
    assert sum(by_identity.values()) == total == sandbox.stats()["total_requests"]
    # One budget file per identity, the default identity's name unchanged.
    files = sorted(p.name for p in (tmp_path / "budget").iterdir())
    expected_files = sorted(
        budget_key(sandbox.base_url, i.credentials.partner_token) + ".budget" for i in (one, two)
    )
    assert files == expected_files


def test_a_refused_identity_names_its_own_variables(sandbox: SandboxServer, tmp_path: Path) -> None:
    one = sandbox_identity(sandbox, 1, "one")
    accepted = sandbox.identity_credentials[1]
    wrong = Identity("two", creds(accepted.partner_token, "not-the-token"))
    with client_of(sandbox, tmp_path, one, wrong) as client, pytest.raises(AuthError) as caught:
        client.list_chains()
    text = str(caught.value)
    assert "identity two" in text and "ALTEGIO_IDENTITY_TWO_USER_TOKEN" in text
    assert "not-the-token" not in text


class _Proxy(BaseHTTPRequestHandler):
    """A forward proxy for plain http: records what it forwarded and the Proxy-Authorization
    it was sent."""

    seen: list[tuple[str, str]]

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Proxy-Authorization", "")))
        headers = {k: v for k, v in self.headers.items() if not k.lower().startswith("proxy-")}
        answer = httpx.get(self.path, headers=headers, timeout=10)
        self.send_response(answer.status_code)
        for key in ("Content-Type",):
            if key in answer.headers:
                self.send_header(key, answer.headers[key])
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def forward_proxy() -> Iterator[tuple[str, list[tuple[str, str]]]]:
    seen: list[tuple[str, str]] = []
    handler = type("Proxy", (_Proxy,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://squid:{PROXY_PASSWORD}@127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def test_an_identity_with_a_proxy_sends_every_request_through_it(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    with forward_proxy() as (proxy, seen):
        one = sandbox_identity(sandbox, 1, "one")
        two = sandbox_identity(sandbox, 2, "two", proxy=proxy)
        source = SOURCES["loyalty_transactions"]
        with client_of(sandbox, tmp_path, one, two) as client:
            chains = client.list_chains()
            proxied = [c.id for c in chains if client.identity_of(c.id) == "two"]
            for chain in chains:
                list(client.fetch_days(source, chain.id, [START]))
            requests = client.requests_by_identity()
            text = repr(client) + repr(client.settings)
    # Identity two's requests, and only those: its /groups and its chain's days.
    assert len(seen) == requests["two"] > 0
    paths = [httpx.URL(url).path for url, _ in seen]
    assert paths[0].endswith("/groups")
    assert all(f"/chain/{proxied[0]}/" in p for p in paths[1:])
    # The proxy got its credentials; the repr never shows them.
    assert all(auth.startswith("Basic ") for _, auth in seen)
    assert PROXY_PASSWORD not in text


def test_one_identity_configured_as_a_list_reads_like_the_single_one(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    only = sandbox_identity(sandbox, 1, "only")
    source = SOURCES["loyalty_transactions"]
    with client_of(sandbox, tmp_path, only) as client:
        chains = client.list_chains()
        listed = {
            c.id: sum(len(p.records) for p in client.list_day(source, c.id, START)) for c in chains
        }
    assert list(listed) == sandbox.dataset.chain_ids()
    for chain_id, rows in listed.items():
        assert rows == len(sandbox.dataset.transactions(chain_id, START, START))
