"""Hostile and bad input: every case ends in a clear error or a quarantine row with its reason,
and the counts reconcile (rows in = rows kept + rows quarantined)."""

from datetime import UTC, date, datetime

import httpx
import orjson
import pytest

from pipelines.altegio import endpoints as ep
from pipelines.altegio.client import (
    AltegioClient,
    AuthError,
    BadResponse,
    BodyTooLarge,
    ClientSettings,
    Credentials,
    RetryPolicy,
)
from pipelines.altegio.normalize import normalize

BASE = "http://127.0.0.1:9/api/v1"
NOW = datetime(2026, 1, 6, tzinfo=UTC)
DAY = date(2026, 1, 5)


def client_for(tmp_path, handler, **settings):
    return AltegioClient(
        ClientSettings(
            base_url=BASE,
            credentials=Credentials(partner_token="p", user_token="u"),
            rate_limit=None,
            budget_dir=tmp_path,
            sleep=lambda s: None,
            transport=httpx.MockTransport(handler),
            **settings,
        )
    )


def counting(body: bytes, content_type: str = "application/json", status: int = 200):
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(status, content=body, headers={"Content-Type": content_type})

    return handler, calls


def test_a_body_over_the_limit_is_refused_once_with_a_clear_error(tmp_path):
    handler, calls = counting(b"[" + b"1," * 5000 + b"1]")
    with (
        client_for(tmp_path, handler, max_body_bytes=1024) as client,
        pytest.raises(BodyTooLarge, match="MAX_BODY_BYTES"),
    ):
        list(client.list_card_types(1))
    assert len(calls) == 1  # never retried: a bigger answer will not shrink


def test_deeply_nested_json_is_a_bad_response_not_a_crash(tmp_path):
    handler, calls = counting(b"[" * 5000 + b"]" * 5000)
    with (
        client_for(tmp_path, handler, retry=RetryPolicy(max_attempts=2)) as client,
        pytest.raises(BadResponse, match="not valid JSON"),
    ):
        list(client.list_card_types(1))
    assert len(calls) == 2


def test_a_non_json_content_type_is_named_in_the_error(tmp_path):
    handler, _ = counting(b"<html>maintenance</html>", content_type="text/html")
    with (
        client_for(tmp_path, handler, retry=RetryPolicy(max_attempts=2)) as client,
        pytest.raises(BadResponse, match="text/html"),
    ):
        list(client.list_card_types(1))


@pytest.mark.parametrize("bad", ["1/../../admin", "1 OR 1=1", 1.5, True, None])
def test_path_ids_must_be_ints_never_text(bad):
    with pytest.raises(TypeError, match="must be an int"):
        ep.ENDPOINTS["promotion"].format_path(chain_id=bad, program_id=1)


def test_a_401_is_not_retried_forever_and_names_the_variable(tmp_path):
    handler, calls = counting(
        orjson.dumps({"success": False, "meta": {"message": "expired"}}), status=401
    )
    with (
        client_for(tmp_path, handler) as client,
        pytest.raises(AuthError, match="ALTEGIO_USER_TOKEN"),
    ):
        list(client.list_card_types(1))
    assert len(calls) == 1


def tx(id_, amount, **extra):
    return {"id": id_, "amount": amount, "type": {"id": 1, "title": "accrual"}, **extra}


def test_amounts_bad_ids_and_duplicates_reconcile_with_quarantine_reasons():
    records = [
        tx(1, 10.0),
        tx(2, -5.5),  # a negative amount is kept as sent (withdrawals are negative)
        tx(3, "abc"),  # not a number
        tx(4, float("inf")),  # not finite
        tx("x7", 1.0),  # id not an integer
        tx(-8, 1.0),  # id not positive
        tx(9, 1.0, visit_id=1),
        tx(9, 2.0, visit_id=2),  # duplicate id: the last occurrence wins
        "not an object",
    ]
    batch = normalize(
        "loyalty_transactions",
        records,
        chain_id=1,
        extracted_at=NOW,
        chain_timezone="UTC",
        transaction_date=DAY,
    )
    kept = batch.tables["loyalty_transactions"]
    quarantine = batch.quarantine.to_pylist()
    assert kept.num_rows + len(quarantine) == len(records)
    by_id = {row["id"]: row for row in kept.to_pylist()}
    assert by_id[2]["amount"] == -5.5
    assert by_id[9]["amount"] == 2.0
    reasons = " | ".join(row["reason"] for row in quarantine)
    assert "duplicate id 9" in reasons
    assert all(row["reason"] for row in quarantine)
    assert set(by_id) == {1, 2, 9}


def test_memberships_created_outside_the_window_are_quarantined_with_the_reason():
    inside = {"id": 1, "number": "A1", "created_date": "2026-01-05T10:00:00+00:00"}
    outside = {"id": 2, "number": "A2", "created_date": "2025-06-01T10:00:00+00:00"}
    batch = normalize(
        "memberships",
        [inside, outside],
        chain_id=1,
        extracted_at=NOW,
        chain_timezone="UTC",
        window_days=[DAY],
    )
    assert batch.tables["memberships"].column("id").to_pylist() == [1]
    (row,) = batch.quarantine.to_pylist()
    assert "outside the requested window" in row["reason"]
