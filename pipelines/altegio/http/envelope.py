"""One answer's status and body -> `(data, meta)` or the typed error it means (CONTRACT §1.4, §2).

Envelope quirks: `data` is unwrapped only from an object with a `success` key (bare arrays and
bare objects are the payload), a one-element array around the envelope is accepted, and
`success: false` is a failure whatever the status. Error bodies carry `meta.message` and
`meta.errors` (bracketed keys), or the legacy `errors.message`.
"""

from collections.abc import Mapping
from typing import Any

import orjson

from pipelines.altegio.endpoints import Endpoint, Envelope
from pipelines.altegio.http.errors import ApiError, BadResponse, UnreadableBody, error_class
from pipelines.altegio.http.policy import parse_retry_after


def _is_true(value: Any) -> bool:
    return value is True or value == 1 or value in ("1", "true", "True")


def _normalize_error_key(key: str) -> str:
    # Altegio sends bracketed keys such as "[is_archived]" (CONTRACT §2.1).
    return key.strip().strip("[]").replace("][", ".")


def parse_error_body(body: Any) -> tuple[str | None, dict[str, list[str]]]:
    """`(message, field errors)` from any documented error body shape, else `(None, {})`."""
    if isinstance(body, list) and len(body) == 1 and isinstance(body[0], dict):
        body = body[0]  # the array-wrapped envelope (CONTRACT §1.4 / the 400 example)
    if not isinstance(body, dict):
        return None, {}
    message: str | None = None
    errors: dict[str, list[str]] = {}
    meta = body.get("meta")
    if isinstance(meta, dict):
        if isinstance(meta.get("message"), str) and meta["message"]:
            message = meta["message"]
        raw_errors = meta.get("errors")
        if isinstance(raw_errors, dict):
            for key, value in raw_errors.items():
                msgs = value if isinstance(value, list) else [value]
                errors[_normalize_error_key(str(key))] = [str(m) for m in msgs]
        elif isinstance(raw_errors, list) and raw_errors:
            errors[""] = [str(m) for m in raw_errors]
    legacy = body.get("errors")
    if isinstance(legacy, dict) and message is None and isinstance(legacy.get("message"), str):
        message = legacy["message"]
    if message is None and isinstance(body.get("message"), str):
        message = body["message"]
    return message, errors


def unwrap(body: Any) -> tuple[Any, dict[str, Any]]:
    """`(data, meta)` of a 2xx body; unwraps `data` only for a `{"success": ...}` object.

    Accepts the array-wrapped envelope; `success: false` is a failure whatever the status.
    Anything without a `success` key (bare arrays and bare objects) is the payload itself.
    """
    if (
        isinstance(body, list)
        and len(body) == 1
        and isinstance(body[0], dict)
        and "success" in body[0]
    ):
        body = body[0]
    if isinstance(body, dict) and "success" in body:
        if not _is_true(body["success"]):
            message, errors = parse_error_body(body)
            raise ApiError(message or "success: false in a 2xx answer", errors=errors)
        meta = body.get("meta")
        return body.get("data"), meta if isinstance(meta, dict) else {}
    return body, {}


def expected_shape(endpoint: Endpoint) -> type:
    """The Python type of `data` in a success: one object for a single-record read (a bare
    object or `one_record`) and for every write (POST /auth included), a list otherwise."""
    if endpoint.envelope is Envelope.BARE_OBJECT or endpoint.one_record or endpoint.method != "GET":
        return dict
    return list


def _loads_or_none(body: bytes) -> Any:
    try:
        return orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return None


def failure(
    status: int, body: bytes, headers: Mapping[str, str], context: Mapping[str, Any]
) -> ApiError:
    """The typed error of a 4xx/5xx answer, with the API's message and field errors and the
    seconds its Retry-After asked for."""
    message, errors = parse_error_body(_loads_or_none(body))
    return error_class(status)(
        message,
        status=status,
        errors=errors,
        retry_after_s=parse_retry_after(headers.get("Retry-After")),
        **context,
    )


def _no_data(endpoint: Endpoint, shape: type, status: int, context: Mapping[str, Any]) -> Any:
    """What an empty body or `data: null` means: no records, or a write that answers nothing
    (a DELETE, a set_balance); a read of one record cannot be empty."""
    if shape is list:
        return []
    if endpoint.method != "GET":
        return None
    raise UnreadableBody("empty answer where one record was expected", status=status, **context)


def read_answer(
    endpoint: Endpoint,
    status: int,
    body: bytes,
    headers: Mapping[str, str],
    context: Mapping[str, Any],
) -> tuple[Any, dict[str, Any]]:
    """`(data, meta)` of a success, else the typed error the answer means.

    `context` (endpoint, chain_id, url) goes into every error. An empty body is no data (a
    204, a set_balance answering nothing); a read of records then gets `[]`.
    """
    if status >= 400:
        raise failure(status, body, headers, context)
    if status not in endpoint.success_statuses:
        raise BadResponse(
            f"HTTP {status} is not a documented success of this endpoint "
            f"({', '.join(map(str, endpoint.success_statuses))})",
            status=status,
            **context,
        )
    shape = expected_shape(endpoint)
    if not body.strip():
        return _no_data(endpoint, shape, status, context), {}
    try:
        data, meta = unwrap(orjson.loads(body))
    except orjson.JSONDecodeError as exc:
        raise UnreadableBody(
            f"body is not valid JSON (content-type {headers.get('Content-Type', 'none')}: {exc})",
            status=status,
            **context,
        ) from None
    except ApiError as exc:
        # success: false inside a 2xx: the API said no; retrying will not change it.
        raise exc.replaced(status=status, **context) from None
    if data is None:
        return _no_data(endpoint, shape, status, context), meta
    if not isinstance(data, shape):
        raise UnreadableBody(
            f"expected a JSON {shape.__name__} of records, got {type(data).__name__}",
            status=status,
            **context,
        )
    return data, meta
