"""The write verbs on their own: the API's traps handled inside the client."""

import contextlib
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from pipelines.altegio.http import AccessDenied, RequestRefused
from pipelines.altegio.sandbox import (
    Faults,
    SandboxConfig,
    SandboxCredentials,
    SandboxServer,
    serve,
)
from pipelines.altegio.write_bodies import InvalidRequest, SetBalance, SetPeriod
from pipelines.altegio.writer import WriteIgnored, Writer, membership_type_write_form
from tests.conftest import sandbox_altegio_client

CONFIG = SandboxConfig(seed=3, chains=2, start=date(2026, 1, 1), end=date(2026, 1, 8))


@contextlib.contextmanager
def writer_on(config: SandboxConfig, tmp_path: Path) -> Iterator[tuple[SandboxServer, Writer]]:
    with serve(config) as server, sandbox_altegio_client(server, tmp_path) as client:
        yield server, Writer(client)


def sold_and_unsold(server: SandboxServer, writer: Writer, chain: int) -> tuple[int, int]:
    """A sold membership type, and a fresh unsold copy of it."""
    sold = next(t for t in writer.membership_types(chain) if server.dataset.is_sold(chain, t["id"]))
    body = {**membership_type_write_form(sold, chain), "title": "Unsold copy"}
    fresh = writer.create_membership_type(chain, body).record
    assert fresh is not None
    return int(sold["id"]), int(fresh["id"])


def test_archive_sends_the_string_flag_and_reads_back(tmp_path):
    with writer_on(CONFIG, tmp_path) as (server, writer):
        chain = server.dataset.chain_ids()[1]
        type_id = writer.membership_types(chain)[0]["id"]
        assert writer.archive_membership_type(chain, type_id, True).record["is_archived"] is True
        assert writer.archive_membership_type(chain, type_id, False).record["is_archived"] is False
        bodies = [e["body"] for e in server.requests.entries()]
        assert bodies == [{"is_archived": "1"}, {"is_archived": "0"}]


def test_a_put_keeps_every_field_it_does_not_change(tmp_path):
    with writer_on(CONFIG, tmp_path) as (server, writer):
        chain = server.dataset.chain_ids()[1]
        _, fresh = sold_and_unsold(server, writer, chain)
        before = membership_type_write_form(writer.membership_type(chain, fresh), chain)
        after = writer.update_membership_type(chain, fresh, {"cost": 77.5}).record
        assert membership_type_write_form(after or {}, chain) == {**before, "cost": 77.5}


def test_a_sold_type_keeping_its_price_is_reported_and_deleting_it_is_refused(tmp_path):
    with writer_on(CONFIG, tmp_path) as (server, writer):
        chain = server.dataset.chain_ids()[1]
        sold, _ = sold_and_unsold(server, writer, chain)
        with pytest.raises(WriteIgnored, match="kept cost stays"):
            writer.update_membership_type(chain, sold, {"cost": 1.0})
        with pytest.raises(RequestRefused) as refused:
            writer.delete_membership_type(chain, sold)
        assert refused.value.status == 422
        assert "in use: archive it instead" in str(refused.value)


def test_clone_with_a_lost_answer_makes_one_copy(tmp_path):
    config = SandboxConfig(
        seed=3,
        chains=2,
        start=date(2026, 1, 1),
        end=date(2026, 1, 8),
        faults=Faults(write_drop_every=1),
    )
    with writer_on(config, tmp_path) as (server, writer):
        chain = server.dataset.chain_ids()[1]
        source = writer.membership_types(chain)[0]
        copy = writer.clone_membership_type(chain, source["id"])
        assert copy.read_back and copy.record["title"] == f"{source['title']} (2)"
        titles = [t["title"] for t in writer.membership_types(chain)]
        assert titles.count(f"{source['title']} (2)") == 1
        assert [e["operation"] for e in server.requests.entries()] == ["membership_type_clone"]


def test_restore_is_for_super_users_and_delete_then_restore_works_for_them(tmp_path):
    with writer_on(CONFIG, tmp_path) as (server, writer):
        chain = server.dataset.chain_ids()[1]
        _, fresh = sold_and_unsold(server, writer, chain)
        writer.delete_membership_type(chain, fresh)
        assert fresh not in {t["id"] for t in writer.membership_types(chain)}
        with pytest.raises(AccessDenied):
            writer.restore_membership_type(chain, fresh, "Back again")
    super_user = replace(CONFIG, credentials=SandboxCredentials(super_user=True))
    with writer_on(super_user, tmp_path) as (server, writer):
        chain = server.dataset.chain_ids()[1]
        _, fresh = sold_and_unsold(server, writer, chain)
        writer.delete_membership_type(chain, fresh)
        restored = writer.restore_membership_type(chain, fresh, "Back again").record
        assert restored is not None and restored["title"] == "Back again"
        assert fresh in {t["id"] for t in writer.membership_types(chain)}


def test_bad_bodies_are_refused_before_anything_is_sent(tmp_path):
    with pytest.raises(InvalidRequest, match="period_unit_id"):
        SetPeriod(3, 7)
    with pytest.raises(InvalidRequest, match="either"):
        SetBalance()
    with writer_on(CONFIG, tmp_path) as (server, writer):
        chain = server.dataset.chain_ids()[1]
        with pytest.raises(InvalidRequest, match="title: required"):
            writer.create_certificate_type(chain, {"balance": 5})
        assert server.requests.entries() == []
