"""`altegio-loyalty catalog export|plan|apply` against the sandbox's write endpoints: an export
plans no change; an edit plans exactly the edit, applies, and exports back; the same file
creates the same catalogue on a second chain; lost answers never create twice."""

from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from assets.cli import main
from pipelines.altegio.sandbox import Faults, SandboxConfig, SandboxServer, serve
from pipelines.altegio.writer import Writer, membership_type_write_form
from pipelines.writes import catalog
from tests.conftest import sandbox_altegio_client

SANDBOX_CONFIG = SandboxConfig(
    seed=5, chains=2, start=date(2026, 1, 1), end=date(2026, 1, 10), transactions_per_day=5
)
pytestmark = pytest.mark.xdist_group("writes_catalog")


@pytest.fixture
def cli(sandbox: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any):
    env = {
        "ALTEGIO_BASE_URL": sandbox.base_url,
        "ALTEGIO_PARTNER_TOKEN": sandbox.credentials.partner_token,
        "ALTEGIO_USER_TOKEN": sandbox.credentials.user_token,
        "ALTEGIO_RATE_LIMIT": "unlimited",
        "ALTEGIO_DATA_DIR": str(tmp_path / "data"),
        "ALTEGIO_PHONE_HASH_KEY": "test-catalog-phone-hash-key",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    def run(*argv: str) -> tuple[int, str]:
        code = main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    return run


def chains(server: SandboxServer) -> list[int]:
    return server.dataset.chain_ids()


def export(cli: Any, chain: int, path: Path) -> dict[str, Any]:
    code, out = cli("catalog", "export", "--chain", str(chain), "--out", str(path))
    assert code == 0, out
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


def plan(cli: Any, chain: int, path: Path) -> tuple[int, str]:
    return cli("catalog", "plan", "--chain", str(chain), str(path), "--detailed-exitcode")


def by_title(document: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {e["title"]: {k: v for k, v in e.items() if k != "id"} for e in document[kind]}


def test_export_plan_edit_apply_export_and_a_second_chain(sandbox, cli, tmp_path):
    first, second = chains(sandbox)
    path = tmp_path / "catalog.yaml"
    document = export(cli, first, path)
    assert document["chain"] == first and document["membership_types"]
    code, out = plan(cli, first, path)
    assert code == 0, out
    assert "No changes" in out

    # The edit: two fields of a membership type, its archiving, a promotion's title, and a
    # new certificate type (the chain's own are all issued: a PUT of them is refused).
    mtype = next(t for t in document["membership_types"] if not t["is_archived"])
    mtype["freeze_limit"] = mtype["freeze_limit"] + 7
    mtype["online_sale_title"] = "Renamed online"
    mtype["is_archived"] = True
    promo = document["promotions"][0]
    old_title, promo["title"] = promo["title"], promo["title"] + " (spring)"
    new_certificate = {
        **{k: v for k, v in document["certificate_types"][0].items() if k != "id"},
        "title": "Catalog-as-code voucher",
        "balance": 55.0,
    }
    document["certificate_types"].append(new_certificate)
    path.write_text(catalog.dump(document))

    code, out = plan(cli, first, path)
    assert code == 2, out
    lines = [line.strip() for line in out.splitlines()]
    assert f"update membership type {mtype['title']!r} (id {mtype['id']})" in lines
    assert any(line.startswith("freeze_limit: ") for line in lines)
    assert any(line.startswith('online_sale_title: "') for line in lines)
    assert f"archive membership type {mtype['title']!r} (id {mtype['id']})" in lines
    assert f"update promotion {promo['title']!r} (id {promo['id']})" in lines
    assert f'title: "{old_title}" -> "{promo["title"]}"' in lines
    assert "create certificate type 'Catalog-as-code voucher'" in lines
    assert "1 to create, 2 to update, 1 to archive" in out
    field_lines = [line for line in lines if ": " in line and " -> " in line]
    assert len(field_lines) == 3, field_lines  # exactly the edit, nothing else

    code, out = cli("catalog", "apply", "--chain", str(first), str(path), "--yes")
    assert code == 0, out
    assert "Applied 4 of 4" in out
    exported = export(cli, first, tmp_path / "after.yaml")
    for kind in catalog.KINDS:
        assert by_title(exported, kind) == by_title(document, kind), kind
    assert {k: exported[k] for k in catalog.TABLES} == {k: document[k] for k in catalog.TABLES}
    code, out = plan(cli, first, path)
    assert code == 0, out

    # The same file on the second chain: its ids go into the mapping tables.
    names = _second_chain_names(sandbox, first, second, document)
    for table, rows in names.items():
        for name, chain_id in rows.items():
            document[table][name][second] = chain_id
    path.write_text(catalog.dump(document))
    code, out = plan(cli, second, path)
    assert code == 2, out
    # Titles the second chain already has are updated to the file's fields; the rest created.
    assert "to create" in out
    code, out = cli("catalog", "apply", "--chain", str(second), str(path), "--yes")
    assert code == 0, out
    code, out = plan(cli, second, path)
    assert code == 0, out  # the second chain now holds the file's catalogue, field by field
    on_second = export(cli, second, tmp_path / "second.yaml")
    for kind in catalog.KINDS:
        assert set(by_title(document, kind)) <= set(by_title(on_second, kind))


def _second_chain_names(
    server: SandboxServer, first: int, second: int, document: dict[str, Any]
) -> dict[str, dict[str, int]]:
    """The second chain's ids for the names the file uses: locations and services by
    position (the generator makes both chains alike), card types by title."""
    world = server.dataset
    locations = dict(zip(world.location_ids(first), world.location_ids(second), strict=True))
    services = dict(
        zip(
            (s for s, _ in world.services(first)),
            (s for s, _ in world.services(second)),
            strict=True,
        )
    )
    categories = {a // 100: b // 100 for a, b in services.items()}
    cards = {c["title"]: c["id"] for c in world.card_types(second)}
    return {
        "locations": {n: locations[ids[first]] for n, ids in document["locations"].items()},
        "services": {n: services[ids[first]] for n, ids in document["services"].items()},
        "categories": {n: categories[ids[first]] for n, ids in document["categories"].items()},
        "card_types": {n: cards[n] for n in document["card_types"]},
    }


def test_a_refusal_stops_the_apply_with_the_api_message(sandbox, cli, tmp_path):
    first, _ = chains(sandbox)
    path = tmp_path / "catalog.yaml"
    document = export(cli, first, path)
    # A card type mapped to an id the chain does not have: only the API can tell (422).
    document["card_types"]["Unknown card"] = {first: 999999}
    document["promotions"][0]["card_types"] = ["Unknown card"]
    document["promotions"][-1]["usage_limit"] = 99
    path.write_text(catalog.dump(document))
    code, out = cli("catalog", "apply", "--chain", str(first), str(path), "--yes")
    assert code == 1
    assert "STOPPED at update promotion" in out
    assert "Validation error" in out and "loyalty_card_type_ids" in out
    assert "Applied 0 of 2" in out  # the second update was not sent
    code, out = cli("catalog", "apply", "--chain", str(first), str(path))
    assert code == 1 and "--yes" in out  # no terminal to confirm on


def test_an_update_the_api_always_refuses_is_a_plan_problem(sandbox, cli, tmp_path):
    first, _ = chains(sandbox)
    path = tmp_path / "catalog.yaml"
    document = export(cli, first, path)
    document["certificate_types"][1]["balance"] += 1  # every sandbox type has issued ones
    path.write_text(catalog.dump(document))
    code, out = plan(cli, first, path)
    assert code == 1
    assert "issued certificates: the API refuses any update (balance)" in out


def test_a_plan_names_a_missing_mapping(sandbox, cli, tmp_path):
    first, second = chains(sandbox)
    path = tmp_path / "catalog.yaml"
    export(cli, first, path)
    code, out = plan(cli, second, path)
    assert code == 1
    assert "has no id for chain" in out and "add one to the locations table" in out


def test_creates_whose_answers_are_lost_create_once(tmp_path):
    """Every write's answer dropped after the sandbox applied it: the writer reads back and
    finds each object, never sending a create twice."""
    config = SandboxConfig(seed=5, chains=2, start=date(2026, 1, 1), end=date(2026, 1, 5))
    with serve(config) as clean:
        chain = chains(clean)[0]
        with sandbox_altegio_client(clean, tmp_path) as client:
            live = catalog.read_live(Writer(client), client.list_chains([chain])[0])
    bodies = {
        kind: catalog.KIND[kind].write_form(live.records[kind][0], chain) for kind in catalog.KINDS
    }
    dropping = SandboxConfig(
        seed=5,
        chains=2,
        start=date(2026, 1, 1),
        end=date(2026, 1, 5),
        faults=Faults(write_drop_every=1),
    )
    with serve(dropping) as server, sandbox_altegio_client(server, tmp_path) as client:
        writer = Writer(client)
        created = [
            writer.create_membership_type(chain, {**bodies["membership_types"], "title": "Lost 1"}),
            writer.create_certificate_type(
                chain, {**bodies["certificate_types"], "title": "Lost 2"}
            ),
            writer.create_promotion(chain, {**bodies["promotions"], "title": "Lost 3"}),
        ]
        assert all(w.read_back and w.record is not None for w in created)
        log = server.requests.entries()
        creates = [e for e in log if e["operation"].endswith("_create")]
        assert [e["operation"] for e in creates] == [
            "membership_type_create",
            "certificate_type_create",
            "promotion_create",
        ]
        assert all(e["applied"] and e["fault"] == "drop" for e in creates)
        assert [t["title"] for t in writer.membership_types(chain)].count("Lost 1") == 1
        assert [t["title"] for t in writer.certificate_types(chain)].count("Lost 2") == 1
        assert [p["title"] for p in writer.promotions(chain)].count("Lost 3") == 1


def test_a_chain_that_takes_service_links_gets_its_services(tmp_path):
    """Some chains ignore the service maps (a hidden switch, CONTRACT §5.10.2): the writer
    sees the answer lacks the services and sends them again as service_links."""
    config = SandboxConfig(
        seed=5,
        chains=2,
        start=date(2026, 1, 1),
        end=date(2026, 1, 5),
        service_links_chains=frozenset({0}),
    )
    with serve(config) as server, sandbox_altegio_client(server, tmp_path) as client:
        chain = chains(server)[0]
        writer = Writer(client)
        (service_id, _), *_ = server.dataset.services(chain)
        source = membership_type_write_form(writer.membership_types(chain)[0], chain)
        body = {**source, "title": "Linked", "is_united_balance": False}
        body |= {"services": {str(service_id): 4}, "service_categories": {}}
        written = writer.create_membership_type(chain, body)
        links = written.record["balance_container"]["links"]
        assert [(lnk["service"]["id"], lnk["count"]) for lnk in links] == [(service_id, 4)]
        operations = [e["operation"] for e in server.requests.entries()]
        assert operations == ["membership_type_create", "membership_type_update"]
