"""The HTTP layer against httpx.MockTransport: auth, errors, envelopes, retries, writes, budget.

No test here sleeps for real: every session gets a fake clock whose `sleep` records the wait
and moves the clock on.
"""

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import orjson
import pytest

from pipelines.altegio import endpoints as ep
from pipelines.altegio import http as altegio_http
from pipelines.altegio.endpoints import ArrayEncoding, Endpoint, Envelope, Paging, TotalIn
from pipelines.altegio.http import (
    RETRY_AFTER_MAX_S,
    RETRY_AFTER_SPREAD_S,
    AccessDenied,
    ApiError,
    ApiSession,
    AuthError,
    BadResponse,
    ConnectionFailed,
    Credentials,
    InsecureURLError,
    NotFound,
    OutcomeUnknown,
    RateBudget,
    RateLimited,
    RequestRefused,
    RetryPolicy,
    ServerError,
    budget_key,
    check_base_url,
    encode_params,
    errors,
    parse_error_body,
    parse_retry_after,
    unwrap,
)

BASE = "https://api.example.test/api/v1"
PARTNER = "PARTNER-SECRET-abc123"
USER = "USER-SECRET-def456"
PASSWORD = "PASSWORD-SECRET-ghi789"

Handler = Callable[[httpx.Request], httpx.Response]


def envelope(data: object, meta: object = None, status: int = 200) -> httpx.Response:
    return httpx.Response(
        status, content=orjson.dumps({"success": True, "data": data, "meta": meta or []})
    )


def error(status: int, message: str | None = None, errors: object = None) -> httpx.Response:
    meta: dict[str, object] = {}
    if message:
        meta["message"] = message
    if errors is not None:
        meta["errors"] = errors
    return httpx.Response(
        status, content=orjson.dumps({"success": False, "data": None, "meta": meta})
    )


class FakeClock:
    """A clock for the session and its budget: `sleep` records the wait and moves time on."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make_session(
    handler: Handler,
    *,
    credentials: Credentials | None = None,
    clock: FakeClock | None = None,
    rate: float | None = None,
    retry: RetryPolicy | None = None,
    max_attempts: int | None = None,
) -> ApiSession:
    clock = clock if clock is not None else FakeClock()
    if retry is None:
        retry = RetryPolicy() if max_attempts is None else RetryPolicy(max_attempts=max_attempts)
    return ApiSession(
        BASE,
        credentials or Credentials(partner_token=PARTNER, user_token=USER),
        budget=RateBudget(rate, None, clock=clock, sleep=clock.sleep),
        retry=retry,
        sleep=clock.sleep,
        clock=clock,
        jitter=lambda: 0.5,
        transport=httpx.MockTransport(handler),
    )


GROUPS = ep.ENDPOINTS["groups"]
TX = ep.ENDPOINTS["transactions"]


# --------------------------------------------------------------------------- credentials/URLs


def test_credentials_repr_masks_every_secret() -> None:
    creds = Credentials(partner_token=PARTNER, user_token=USER, login="j.smith", password=PASSWORD)
    for text in (repr(creds), str(creds), f"{creds}"):
        assert PARTNER not in text and USER not in text and PASSWORD not in text
        assert "***" in text


def test_credentials_need_a_user_credential() -> None:
    with pytest.raises(ValueError, match="ALTEGIO_USER_TOKEN"):
        Credentials(partner_token=PARTNER)
    with pytest.raises(ValueError, match="ALTEGIO_PARTNER_TOKEN"):
        Credentials(partner_token="", user_token=USER)


@pytest.mark.parametrize(
    "url",
    [
        "https://api.alteg.io/api/v1",
        "http://127.0.0.1:8080/api/v1",
        "http://127.5.6.7/api/v1",
        "http://localhost:1/api/v1",
        "http://[::1]:9/api/v1",
    ],
)
def test_https_or_loopback_urls_are_accepted(url: str) -> None:
    assert check_base_url(url + "/") == url


@pytest.mark.parametrize(
    "url", ["http://api.alteg.io/api/v1", "http://10.0.0.1/api/v1", "ftp://localhost/x"]
)
def test_plain_http_to_another_host_is_refused(url: str) -> None:
    with pytest.raises(InsecureURLError, match="https"):
        check_base_url(url)


def test_budget_key_is_a_hash_not_the_token() -> None:
    key = budget_key(BASE, PARTNER)
    assert PARTNER not in key and "SECRET" not in key
    assert key == budget_key(BASE + "/", PARTNER)
    assert key != budget_key(BASE, PARTNER + "x")


# --------------------------------------------------------------------------- envelopes/errors


def test_unwrap_standard_array_wrapped_and_bare_bodies() -> None:
    assert unwrap({"success": True, "data": [1], "meta": {"count": 1}}) == ([1], {"count": 1})
    assert unwrap([{"success": True, "data": [2], "meta": []}]) == ([2], {})
    assert unwrap([{"id": 1}]) == ([{"id": 1}], {})
    assert unwrap({"id": 5, "title": "x"}) == ({"id": 5, "title": "x"}, {})


def test_success_false_in_a_2xx_is_a_failure() -> None:
    with pytest.raises(ApiError, match="nope"):
        unwrap({"success": False, "data": None, "meta": {"message": "nope"}})


def test_error_bodies_bracketed_keys_and_legacy_shape() -> None:
    msg, errs = parse_error_body(
        {"meta": {"message": "An error has occurred", "errors": {"[is_archived]": ["bad"]}}}
    )
    assert msg == "An error has occurred" and errs == {"is_archived": ["bad"]}
    msg, _ = parse_error_body({"errors": {"code": 401, "message": "Authentication needed"}})
    assert msg == "Authentication needed"
    msg, _ = parse_error_body([{"success": False, "meta": {"message": "Subscription IDs"}}])
    assert msg == "Subscription IDs"
    assert parse_error_body({"success": False, "data": None, "meta": []}) == (None, {})


def test_the_error_tree_in_the_docstring_is_the_class_tree() -> None:
    """Each line of errors.py's tree names a class whose direct base is the line above it."""
    parents: dict[int, str] = {}
    documented: dict[str, str | None] = {}
    for line in (errors.__doc__ or "").splitlines():
        match = re.match(r"^( *)[*x+-] (\w+)", line)
        if match:
            depth = len(match.group(1)) // 2
            parents[depth] = match.group(2)
            documented[match.group(2)] = parents.get(depth - 1) if depth else None
    defined = {
        name: cls
        for name, cls in vars(errors).items()
        if isinstance(cls, type) and issubclass(cls, errors.AltegioError)
    }
    assert set(documented) == set(defined)
    for name, parent in documented.items():
        base = defined[name].__bases__[0].__name__
        assert base == (parent or "Exception"), name


def test_error_names_shadow_neither_pydantic_nor_httpx() -> None:
    exported = set(altegio_http.__all__)
    assert not exported & {"ValidationError", "NetworkError", "TransportError", "HTTPError"}
    assert issubclass(InsecureURLError, altegio_http.ConfigurationError)
    assert not issubclass(InsecureURLError, ApiError)


def test_errors_render_on_one_line_with_the_api_message_and_field_errors() -> None:
    exc = RequestRefused(
        "An error has\noccurred",
        status=422,
        errors={"is_archived": ["The value you selected is invalid"], "title": ["a", "b"]},
        endpoint="membership_types",
        chain_id=5,
        url="https://user:pw@api.example.test/api/v1/x?page=1",
    )
    assert str(exc) == (
        "RequestRefused [endpoint=membership_types chain_id=5 status=422]: An error has "
        "occurred; is_archived: The value you selected is invalid; title: a, b "
        "(https://api.example.test/api/v1/x?page=1)"
    )
    assert str(ApiError("plain")) == "ApiError: plain"
    insecure = InsecureURLError("refusing base URL 'http://x'")
    assert str(insecure) == "InsecureURLError: refusing base URL 'http://x'"
    assert (
        str(altegio_http.ConfigurationError("set ALTEGIO_PARTNER_TOKEN"))
        == "set ALTEGIO_PARTNER_TOKEN"
    )


def test_replaced_keeps_every_other_field() -> None:
    exc = ConnectionFailed("ReadTimeout: t", request_sent=False, endpoint="groups", chain_id=1)
    again = exc.replaced(attempts=3, elapsed_s=2.0)
    assert type(again) is ConnectionFailed and again.request_sent is False
    assert (again.endpoint, again.chain_id, again.attempts) == ("groups", 1, 3)
    assert str(again).endswith("(gave up after 3 attempts in 2.0 s)")


def test_array_params_encode_as_brackets_or_comma() -> None:
    params = {"created_after": "2026-01-01", "types": [1, 2], "skip": None}
    assert encode_params(params, ("types",), ArrayEncoding.BRACKETS) == [
        ("created_after", "2026-01-01"),
        ("types[]", "1"),
        ("types[]", "2"),
    ]
    assert encode_params(params, ("types",), ArrayEncoding.COMMA)[1] == ("types", "1,2")
    with pytest.raises(ValueError):
        encode_params({"page": [1]}, ("types",), ArrayEncoding.COMMA)


# --------------------------------------------------------------------------- headers/auth


def test_headers_carry_both_tokens_in_the_documented_form() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return envelope([])

    make_session(handler).call(GROUPS, "/groups")
    req = seen[0]
    assert req.headers["Authorization"] == f"Bearer {PARTNER}, User {USER}"
    assert req.headers["Accept"] == "application/vnd.api.v2+json"
    assert req.headers["Content-Type"] == "application/json"


def test_login_password_obtains_a_user_token_with_post_auth() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/auth"):
            assert request.method == "POST"
            assert request.headers["Authorization"] == f"Bearer {PARTNER}"
            body = orjson.loads(request.content)
            assert body == {"login": "j.smith", "password": PASSWORD}
            return envelope({"id": 1, "user_token": "fresh-token"}, status=201)
        return envelope([])

    creds = Credentials(partner_token=PARTNER, login="j.smith", password=PASSWORD)
    session = make_session(handler, credentials=creds)
    session.call(GROUPS, "/groups")
    session.call(GROUPS, "/groups")
    assert [r.url.path for r in seen] == ["/api/v1/auth", "/api/v1/groups", "/api/v1/groups"]
    assert seen[1].headers["Authorization"] == f"Bearer {PARTNER}, User fresh-token"


def test_a_401_triggers_one_relogin_then_succeeds() -> None:
    tokens = iter(["t1", "t2"])
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/auth"):
            return envelope({"user_token": next(tokens)}, status=201)
        calls.append(request.headers["Authorization"])
        if request.headers["Authorization"].endswith("User t1"):
            return error(401, "Authentication needed.")
        return envelope([{"id": 1}])

    creds = Credentials(partner_token=PARTNER, login="j", password=PASSWORD)
    data, _ = make_session(handler, credentials=creds).call(GROUPS, "/groups")
    assert data == [{"id": 1}]
    assert len(calls) == 2


def test_a_second_401_after_relogin_names_login_and_password() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/auth"):
            return envelope({"user_token": "t"}, status=201)
        return error(401, "Authentication needed.")

    creds = Credentials(partner_token=PARTNER, user_token=USER, login="j", password=PASSWORD)
    with pytest.raises(AuthError) as info:
        make_session(handler, credentials=creds).call(GROUPS, "/groups")
    text = str(info.value)
    assert "Authentication needed." in text and info.value.status == 401
    assert "ALTEGIO_LOGIN" in text and "ALTEGIO_PASSWORD" in text


def test_a_401_with_only_a_user_token_names_the_user_token_and_does_not_retry() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return error(401, "Authentication needed.")

    with pytest.raises(AuthError, match="ALTEGIO_USER_TOKEN"):
        make_session(handler).call(GROUPS, "/groups")
    assert len(calls) == 1


def test_a_refused_login_names_login_password_and_partner_token() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return error(401, "Authentication needed.")

    creds = Credentials(partner_token=PARTNER, login="j", password=PASSWORD)
    with pytest.raises(AuthError) as info:
        make_session(handler, credentials=creds).call(GROUPS, "/groups")
    assert "ALTEGIO_LOGIN/ALTEGIO_PASSWORD" in str(info.value)
    assert "ALTEGIO_PARTNER_TOKEN" in str(info.value)
    assert PASSWORD not in str(info.value)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (403, AccessDenied),
        (404, NotFound),
        (400, RequestRefused),
        (409, RequestRefused),
        (422, RequestRefused),
    ],
)
def test_other_4xx_become_typed_errors_with_the_api_message(
    status: int, cls: type[ApiError]
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return error(status, f"message {status}", {"[created_after]": ["required"]})

    with pytest.raises(cls) as info:
        make_session(handler).call(TX, "/chain/5/loyalty/transactions", chain_id=5)
    exc = info.value
    assert exc.status == status and exc.message == f"message {status}"
    assert exc.errors == {"created_after": ["required"]}
    assert exc.chain_id == 5 and exc.endpoint == "transactions"
    assert f"message {status}" in str(exc)


def test_success_false_with_200_raises_without_retry() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(200, content=b'{"success": false, "meta": {"message": "denied"}}')

    with pytest.raises(ApiError, match="denied"):
        make_session(handler).call(GROUPS, "/groups")
    assert len(calls) == 1


# --------------------------------------------------------------------------- retries


def sequence_handler(responses: list[Callable[[], httpx.Response]]) -> Handler:
    it = iter(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        return next(it)()

    return handler


def test_5xx_is_retried_with_exponential_backoff() -> None:
    clock = FakeClock()
    handler = sequence_handler(
        [lambda: error(503), lambda: error(502), lambda: envelope([{"id": 1}])]
    )
    session = make_session(handler, clock=clock)
    data, _ = session.call(GROUPS, "/groups")
    assert data == [{"id": 1}]
    # equal jitter with jitter()=0.5: 0.75 x base, then 0.75 x 2 x base
    assert clock.sleeps == [0.75, 1.5]
    assert session.stats.retries == 2 and session.stats.server_errors_5xx == 2
    assert session.stats.requests == 3


def test_retry_after_seconds_is_honoured() -> None:
    clock = FakeClock()
    resp = httpx.Response(429, headers={"Retry-After": "7"})
    handler = sequence_handler([lambda: resp, lambda: envelope([])])
    session = make_session(handler, clock=clock)
    session.call(GROUPS, "/groups")
    # At least Retry-After; plus jitter()=0.5 of the one-second spread that keeps threads
    # refused together from all coming back at the same instant.
    assert clock.sleeps == [7.0 + 0.5 * RETRY_AFTER_SPREAD_S]
    assert session.stats.http_429 == 1


def test_a_huge_retry_after_is_capped() -> None:
    clock = FakeClock()
    resp = httpx.Response(503, headers={"Retry-After": "100000"})
    session = make_session(sequence_handler([lambda: resp, lambda: envelope([])]), clock=clock)
    session.call(GROUPS, "/groups")
    assert clock.sleeps == [RETRY_AFTER_MAX_S + 0.5 * RETRY_AFTER_SPREAD_S]


def test_retry_after_http_date_is_parsed() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now) == 0
    assert parse_retry_after("100000") == 100000
    assert parse_retry_after("garbage") is None
    assert parse_retry_after("nan") is None
    assert parse_retry_after(None) is None


def test_an_incident_of_two_minutes_is_ridden_out() -> None:
    clock = FakeClock()
    recovered_at = clock.now + 120.0
    calls: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(clock.now)
        return error(502, "Bad gateway") if clock.now < recovered_at else envelope([{"id": 1}])

    assert make_session(handler, clock=clock).call(GROUPS, "/groups")[0] == [{"id": 1}]
    assert len(calls) > 6  # the old policy gave up after 6 attempts (about a minute)
    assert max(clock.sleeps) <= RetryPolicy().backoff_max_s


def test_retries_stop_when_the_time_budget_is_spent() -> None:
    clock = FakeClock()
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return error(503, "Service unavailable")

    policy = RetryPolicy(max_elapsed_s=100.0, backoff_base_s=1.0, backoff_max_s=10.0)
    with pytest.raises(ServerError) as info:
        make_session(handler, clock=clock, retry=policy).call(GROUPS, "/groups")
    exc = info.value
    assert exc.status == 503 and exc.message == "Service unavailable"
    assert exc.attempts == len(calls) == len(clock.sleeps) + 1
    # Every wait started inside the budget, and the next one would have ended past it.
    assert sum(clock.sleeps) <= 100.0
    assert sum(clock.sleeps) + policy.delay(len(calls), 0.5) > 100.0
    assert f"gave up after {len(calls)} attempts" in str(exc)
    assert "\n" not in str(exc)


def test_time_queued_for_budget_slots_does_not_count_against_the_retry_budget() -> None:
    clock = FakeClock()
    handler = sequence_handler([lambda: error(502), lambda: error(502), lambda: envelope([])])
    # One slot every 100 s: each retry queues far longer than the 30 s retry budget.
    policy = RetryPolicy(max_elapsed_s=30.0)
    session = make_session(handler, clock=clock, rate=0.01, retry=policy)
    start = clock.now
    assert session.call(GROUPS, "/groups")[0] == []
    assert clock.now - start >= 200.0  # three slots, 100 s apart


def test_persistent_429_raises_rate_limited_at_the_attempt_cap() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(429)

    with pytest.raises(RateLimited):
        make_session(handler, max_attempts=4).call(GROUPS, "/groups")
    assert len(calls) == 4


def test_persistent_5xx_raises_server_error() -> None:
    with pytest.raises(ServerError, match="500"):
        make_session(lambda r: httpx.Response(500), max_attempts=3).call(GROUPS, "/groups")


def test_invalid_json_is_retried_then_bad_response() -> None:
    handler = sequence_handler(
        [lambda: httpx.Response(200, content=b'{"success": true, "da'), lambda: envelope([1])]
    )
    assert make_session(handler).call(GROUPS, "/groups")[0] == [1]
    broken = make_session(lambda r: httpx.Response(200, content=b"[{"), max_attempts=2)
    with pytest.raises(BadResponse, match="not valid JSON"):
        broken.call(GROUPS, "/groups")


def test_wrong_shape_is_a_bad_response() -> None:
    session = make_session(lambda r: envelope({"not": "a list"}), max_attempts=2)
    with pytest.raises(BadResponse, match="expected a JSON list"):
        session.call(GROUPS, "/groups")


def test_dropped_connections_and_timeouts_are_retried() -> None:
    state = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        state["n"] += 1
        if state["n"] == 1:
            raise httpx.RemoteProtocolError("peer closed connection", request=request)
        if state["n"] == 2:
            raise httpx.ReadTimeout("timed out", request=request)
        return envelope([{"id": 3}])

    session = make_session(handler)
    assert session.call(GROUPS, "/groups")[0] == [{"id": 3}]
    assert session.stats.network_errors == 2 and session.stats.retries == 2


def test_persistent_network_failure_raises_connection_failed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(ConnectionFailed, match="ConnectError"):
        make_session(handler, max_attempts=2).call(GROUPS, "/groups")


# --------------------------------------------------------------------------- writes

CREATE = Endpoint(
    name="membership_type_create",
    method="POST",
    path="/chain/{chain_id}/loyalty/abonement_types",
    paging=Paging.NONE,
    total=TotalIn.NONE,
    envelope=Envelope.STANDARD,
    success_statuses=(200, 201),
)
SET_BALANCE = replace(
    CREATE,
    name="membership_set_balance",
    path="/chain/{chain_id}/loyalty/abonements/{membership_id}/set_balance",
    success_statuses=(200,),
    idempotent=True,  # absolute values (CONTRACT §5.10.3)
)
UPDATE = replace(CREATE, name="membership_type_update", method="PUT", path=CREATE.path + "/7")
DELETE = replace(
    CREATE, name="membership_type_delete", method="DELETE", success_statuses=(200, 204)
)
CREATE_PATH = "/chain/5/loyalty/abonement_types"


def test_write_safety_follows_the_method_unless_the_endpoint_declares_it() -> None:
    assert not CREATE.safe_to_repeat
    assert UPDATE.safe_to_repeat and DELETE.safe_to_repeat and GROUPS.safe_to_repeat
    assert SET_BALANCE.safe_to_repeat and ep.AUTH.safe_to_repeat


def test_a_write_sends_its_method_and_json_body_and_reads_a_201() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return envelope({"id": 42, "title": "Fitness"}, status=201)

    body = {"title": "Fitness", "salon_group_id": 5, "service_categories": {"13160806": 10}}
    data, _ = make_session(handler).call(CREATE, CREATE_PATH, json=body, chain_id=5)
    assert data == {"id": 42, "title": "Fitness"}
    assert seen[0].method == "POST"
    assert orjson.loads(seen[0].content) == body
    assert seen[0].headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    "answer",
    [
        lambda: httpx.Response(204),
        lambda: httpx.Response(200),
        lambda: envelope(None),
    ],
)
def test_a_write_answering_no_body_or_null_data_is_a_success(
    answer: Callable[[], httpx.Response],
) -> None:
    session = make_session(lambda r: answer())
    endpoint = replace(DELETE, success_statuses=(200, 204))
    assert session.call(endpoint, CREATE_PATH + "/7") == (None, {})


def test_a_success_status_the_endpoint_does_not_document_is_a_bad_response() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(202, content=b'{"success": true, "meta": {"message": "Accepted"}}')

    with pytest.raises(BadResponse, match="202 is not a documented success"):
        make_session(handler).call(CREATE, CREATE_PATH, json={"title": "x"})
    assert len(calls) == 1


def test_a_create_whose_connection_was_refused_is_retried() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        if len(sent) == 1:
            raise httpx.ConnectError("connection refused", request=request)
        return envelope({"id": 42}, status=201)

    session = make_session(handler)
    assert session.call(CREATE, CREATE_PATH, json={"title": "x"}, chain_id=5)[0] == {"id": 42}
    assert len(sent) == 2 and session.stats.retries == 1


@pytest.mark.parametrize("not_sent", [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout])
def test_nothing_sent_means_a_create_may_be_retried(not_sent: type[httpx.TransportError]) -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        if len(sent) == 1:
            raise not_sent("never left", request=request)
        return envelope({"id": 1})

    assert make_session(handler).call(CREATE, CREATE_PATH, json={})[0] == {"id": 1}
    assert len(sent) == 2


def test_a_create_that_timed_out_after_sending_is_outcome_unknown_sent_once() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(OutcomeUnknown) as info:
        make_session(handler).call(CREATE, CREATE_PATH, json={"title": "x"}, chain_id=5)
    assert len(sent) == 1
    exc = info.value
    assert exc.endpoint == "membership_type_create" and exc.chain_id == 5
    assert exc.url is not None and exc.url.endswith(CREATE_PATH)
    assert "ReadTimeout" in str(exc) and "read back" in str(exc)


@pytest.mark.parametrize(
    "answer",
    [
        lambda: error(502, "Bad gateway"),
        lambda: httpx.Response(201, content=b'{"success": true, "da'),
    ],
)
def test_a_create_answered_with_a_5xx_or_a_broken_body_is_outcome_unknown(
    answer: Callable[[], httpx.Response],
) -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return answer()

    with pytest.raises(OutcomeUnknown):
        make_session(handler).call(CREATE, CREATE_PATH, json={"title": "x"})
    assert len(calls) == 1


def test_a_create_refused_by_the_rate_limiter_is_retried() -> None:
    handler = sequence_handler([lambda: httpx.Response(429), lambda: envelope({"id": 3})])
    session = make_session(handler)
    assert session.call(CREATE, CREATE_PATH, json={})[0] == {"id": 3}
    assert session.stats.http_429 == 1


def test_a_create_refused_for_its_input_raises_the_api_message_once() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return error(422, "An error has occurred", {"[title]": ["required"]})

    with pytest.raises(RequestRefused) as info:
        make_session(handler).call(CREATE, CREATE_PATH, json={})
    assert info.value.errors == {"title": ["required"]} and len(calls) == 1


@pytest.mark.parametrize("endpoint", [UPDATE, SET_BALANCE, DELETE])
def test_idempotent_writes_are_retried_after_a_timeout_like_reads(endpoint: Endpoint) -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        if len(sent) == 1:
            raise httpx.ReadTimeout("timed out", request=request)
        return httpx.Response(200)  # set_balance answers with no body at all

    assert make_session(handler).call(endpoint, CREATE_PATH, json={"n": 1})[0] is None
    assert [r.method for r in sent] == [endpoint.method] * 2


def test_a_call_can_declare_itself_unsafe_to_repeat() -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(OutcomeUnknown):
        make_session(handler).call(UPDATE, CREATE_PATH, json={"title": "x"}, idempotent=False)
    assert len(sent) == 1


# --------------------------------------------------------------------------- rate budget


def test_budget_spaces_requests_at_the_rate() -> None:
    clock = FakeClock()
    budget = RateBudget(4.0, None, clock=clock, sleep=clock.sleep)
    start = clock.now
    for _ in range(9):
        budget.acquire()
    assert clock.now - start == pytest.approx(2.0)  # 9 slots at 4/s: the 9th at t = 2 s


def test_budget_state_file_is_shared_between_instances(tmp_path: Path) -> None:
    clock = FakeClock()
    state = tmp_path / "b.budget"
    a = RateBudget(2.0, state, clock=clock, sleep=lambda s: None)
    b = RateBudget(2.0, state, clock=clock, sleep=lambda s: None)
    assert a.acquire() == 0.0
    assert b.acquire() == pytest.approx(0.5)
    assert a.acquire() == pytest.approx(1.0)


def test_429_halves_the_shared_rate_and_it_recovers(tmp_path: Path) -> None:
    clock = FakeClock()
    state = tmp_path / "b.budget"
    a = RateBudget(4.0, state, clock=clock, sleep=clock.sleep)
    b = RateBudget(4.0, state, clock=clock, sleep=clock.sleep)
    a.penalize()
    assert b.current_rate() == pytest.approx(2.0)
    a.penalize()  # within the cooldown: one storm, one cut
    assert b.current_rate() == pytest.approx(2.0)
    clock.now += 5.0
    assert b.current_rate() == pytest.approx(4.0 * 0.75)
    clock.now += 100.0
    assert b.current_rate() == pytest.approx(4.0)


def test_unlimited_budget_never_waits() -> None:
    budget = RateBudget(None, None, sleep=lambda s: pytest.fail("slept"))
    assert budget.unlimited
    for _ in range(100):
        assert budget.acquire() == 0.0
    assert RateBudget(0, None).unlimited


def test_corrupt_budget_file_is_reset(tmp_path: Path) -> None:
    state = tmp_path / "b.budget"
    state.write_bytes(b"not json")
    assert RateBudget(1.0, state, sleep=lambda s: None).acquire() == 0.0
