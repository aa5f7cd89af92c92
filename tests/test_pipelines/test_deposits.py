"""Client accounts (deposits), GET /deposits/chain/{chain_id}: normalized one row per account
with the client as id + keyed phone hash only, served by the sandbox as the contract says
(page/limit, meta.count, balance filters, the deposits_access flag), and loaded whole with no
client name or phone anywhere in the data directory."""

import copy
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipelines import load
from pipelines.altegio.client import AltegioClient
from pipelines.altegio.normalize import normalize
from pipelines.altegio.personal import phone_hash
from pipelines.altegio.sandbox import Faults, SandboxConfig, SandboxServer, serve
from pipelines.altegio.schema import TABLES
from tests.conftest import endpoint_path, project_lake, sandbox_altegio_client, sandbox_client

KEY = b"test key of thirty-two bytes...."
NOW = datetime(2026, 2, 1, 3, 0, tzinfo=UTC)
SANDBOX_CONFIG = SandboxConfig(
    seed=3, chains=3, locations_per_chain=1, start=date(2026, 1, 1), end=date(2026, 1, 3)
)


def deposit(**over: object) -> dict[str, object]:
    """One record as the contract documents it (CONTRACT §5.9)."""
    record: dict[str, object] = {
        "deposit": {
            "id": 1201,
            "salon_group_id": 509,
            "deposit_type_id": 77,
            "initial_balance": 500,
            "balance": "120.50",
            "reserved_balance": 20,
            "blocked": 0,
            "date_create": "2025-11-02T10:15:00-0500",
        },
        "deposit_type": {
            "id": 77,
            "salon_group_id": 509,
            "title": "Prepaid balance",
            "date_create": "2024-01-01T09:00:00+00:00",
            "deleted": False,
        },
        "client": {"id": 4400, "name": "Ann Lee", "phone": "+1 (315) 555-0175"},
    }
    for path, value in over.items():
        *parents, last = path.split("__")
        target = record
        for key in parents:
            target = target[key]  # type: ignore[assignment]
        target[last] = value
    return record


def run(records: list[object], **kw: object):
    kw.setdefault("personal_key", KEY)
    return normalize(
        "deposits",
        records,
        chain_id=509,
        extracted_at=NOW,
        chain_timezone="America/New_York",
        **kw,  # type: ignore[arg-type]
    )


def test_one_row_per_account_with_its_type_and_the_client_as_id_and_phone_hash():
    batch = run([deposit()])
    table = batch.tables["deposits"]
    assert table.schema.equals(TABLES["deposits"].schema, check_metadata=True)
    (row,) = table.to_pylist()
    assert row["id"] == 1201 and row["chain_id"] == 509 and row["salon_group_id"] == 509
    assert row["deposit_type_id"] == 77 and row["deposit_type_title"] == "Prepaid balance"
    assert row["deposit_type_deleted"] is False
    assert row["deposit_type_date_create"] == datetime(2024, 1, 1, 9, 0, tzinfo=UTC)
    assert (row["initial_balance"], row["balance"], row["reserved_balance"]) == (500.0, 120.5, 20.0)
    assert row["blocked"] is False
    assert row["date_create"] == datetime(2025, 11, 2, 15, 15, tzinfo=UTC)
    assert row["client_id"] == 4400
    assert row["client_phone_hash"] == phone_hash(KEY, "13155550175")
    assert row["extra"] is None and row["_source_endpoint"] == "deposits"
    assert batch.quarantine.num_rows == 0 and batch.drift == {}
    text = repr(table.to_pylist())
    assert "Ann Lee" not in text and "13155550175" not in text and "555-0175" not in text


def test_the_type_id_falls_back_to_the_type_object_and_zero_ids_are_null():
    batch = run([deposit(deposit__deposit_type_id=None, client__id=0, client__phone="")])
    (row,) = batch.tables["deposits"].to_pylist()
    assert row["deposit_type_id"] == 77
    assert row["client_id"] is None and row["client_phone_hash"] is None


def test_the_same_phone_written_differently_hashes_alike_and_another_key_differs():
    one = run([deposit(), deposit(deposit__id=1202, client__phone="13155550175")])
    hashes = one.tables["deposits"]["client_phone_hash"].to_pylist()
    assert hashes[0] == hashes[1]
    other = run([deposit()], personal_key=b"another key, another warehouse..")
    assert other.tables["deposits"]["client_phone_hash"].to_pylist()[0] != hashes[0]


def test_without_a_hash_key_the_batch_is_refused():
    with pytest.raises(ValueError, match="personal data"):
        run([deposit()], personal_key=None)


def test_new_fields_are_kept_in_extra_but_a_clients_new_fields_only_by_name():
    record = deposit(deposit__card_number="A-77", client__email="ann@example.org")
    batch = run([record])
    (row,) = batch.tables["deposits"].to_pylist()
    assert row["extra"] == '{"deposit.card_number":"A-77","client.email":"<redacted>"}'
    assert batch.drift == {"deposits": {"deposit.card_number", "client.email"}}


def test_a_refused_record_is_quarantined_without_the_clients_name_or_phone():
    bad_amount = deposit(deposit__balance="a lot")
    bad_phone = deposit(deposit__id=1202, client__phone={"number": "+1 315 555 0175"})
    not_a_record = ["Ann Lee", "+1 315 555 0175"]
    duplicate = [deposit(deposit__id=1300), deposit(deposit__id=1300, client__name="Ann B. Lee")]
    batch = run([bad_amount, bad_phone, not_a_record, *duplicate])
    assert batch.tables["deposits"]["id"].to_pylist() == [1300]
    quarantine = batch.quarantine.to_pylist()
    assert len(quarantine) == 4
    for row in quarantine:
        text = row["raw_json"] + row["reason"]
        assert "Ann" not in text and "555" not in text, row
    reasons = [row["reason"] for row in quarantine]
    assert reasons[0].startswith("balance: not a number")
    assert reasons[1] == "_client_phone: not a valid str (<redacted>)"
    assert '"deposit":{"id":1201' in quarantine[0]["raw_json"]  # the rest is kept verbatim
    assert (
        '"client":{"id":4400,"name":"<redacted>","phone":"<redacted>"}'
        in (quarantine[0]["raw_json"])
    )


def test_input_records_are_not_mutated():
    records = [deposit(), deposit(deposit__balance="x")]
    before = copy.deepcopy(records)
    run(records)
    assert records == before


# --------------------------------------------------------------------------- the sandbox


def test_the_sandbox_pages_by_page_and_limit_with_a_page_count(sandbox: SandboxServer):
    chain = sandbox.dataset.chain_ids()[0]  # the example flag set: no deposits_access flag
    truth = sandbox.dataset.deposits(chain)
    assert 200 <= len(truth) <= 400
    url = endpoint_path("deposits", chain_id=chain)
    with sandbox_client(sandbox) as http:
        rows, page = [], 1
        while True:
            body = http.get(url, params={"page": page, "limit": 50}).json()
            assert body["success"] is True and body["meta"] == {"count": len(body["data"])}
            rows += body["data"]
            if len(body["data"]) < 50:
                break
            page += 1
        assert rows == truth
        whole = http.get(url).json()["data"]
        assert whole == truth  # no limit asked: the whole list
        rich = http.get(url, params={"balance_from": "100", "balance_to": "200.5"}).json()
    assert rich["data"] == [r for r in truth if 100 <= r["deposit"]["balance"] <= 200.5]
    assert rich["data"]
    record = truth[0]
    assert set(record) == {"deposit", "deposit_type", "client"}
    assert set(record["client"]) == {"id", "name", "phone"}
    assert record["deposit_type"]["id"] == record["deposit"]["deposit_type_id"]


def test_a_chain_whose_deposits_flag_is_zero_gets_403(sandbox: SandboxServer):
    groups = {g["id"]: g for g in sandbox.dataset.groups()}
    denied = [c for c, g in groups.items() if g["access"].get("deposits_access") == "0"]
    assert denied
    with sandbox_client(sandbox) as http:
        assert http.get(endpoint_path("deposits", chain_id=denied[0])).status_code == 403


# --------------------------------------------------------------------------- the load


def _client(server: SandboxServer, tmp_path: Path) -> AltegioClient:
    return sandbox_altegio_client(server, tmp_path / "budget", page_sizes={"deposits": 60})


def test_the_load_writes_every_account_once_despite_page_repeats_and_leaks_no_client(tmp_path):
    # Rows repeated across page boundaries are recognised by deposit.id (no top-level id).
    config = SandboxConfig(
        seed=3,
        chains=3,
        locations_per_chain=1,
        start=date(2026, 1, 1),
        end=date(2026, 1, 3),
        faults=Faults(overlap_pages=True),
    )
    lake = project_lake(tmp_path / "data" / "parquet")
    with serve(config) as server, _client(server, tmp_path) as client:
        chains = client.list_chains()
        report = load.load_reference(client, lake, chains, "deposits", NOW, KEY)
        truth = {c: server.dataset.deposits(c) for c in server.dataset.chain_ids()}
    loaded = [c for c in report.chains if c.status == load.ChainStatus.LOADED]
    skipped = [c for c in report.chains if c.status == load.ChainStatus.SKIPPED]
    assert [c.chain_id for c in loaded] == [chains[0].id]
    assert {c.chain_id for c in skipped} == {c.id for c in chains[1:]}
    assert all("deposits_access" in c.reason for c in skipped)
    (outcome,) = loaded
    assert outcome.written == len(truth[chains[0].id]) and outcome.quarantined == 0
    assert outcome.duplicates > 0 and outcome.api_rows == outcome.rows + outcome.duplicates
    table = lake.read("deposits")
    assert sorted(table["id"].to_pylist()) == sorted(
        r["deposit"]["id"] for r in truth[chains[0].id]
    )
    people = {r["client"]["name"] for rows in truth.values() for r in rows}
    phones = {r["client"]["phone"] for rows in truth.values() for r in rows}
    for path in (tmp_path / "data").rglob("*.parquet"):
        text = repr(pq.read_table(path).to_pylist())
        assert not any(name in text for name in people), path
        assert not any(phone in text for phone in phones), path
