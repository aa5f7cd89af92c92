"""Where requests may go and how their query strings are spelled.

Tokens travel in headers, so a base URL must be https unless it is a loopback host (the
sandbox, tests); array parameters are encoded the way the endpoint table says (CONTRACT §1.5).
"""

import ipaddress
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from pipelines.altegio.endpoints import ArrayEncoding
from pipelines.altegio.http.errors import InsecureURLError, safe_url

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})

QueryValue = str | int | float | Sequence[int | str] | None
QueryPairs = list[tuple[str, str | int | float | bool | None]]


def check_base_url(base_url: str) -> str:
    """The base URL without a trailing slash; https unless the host is loopback."""
    parts = urlsplit(base_url)
    host = (parts.hostname or "").lower()
    if parts.scheme == "https" and host:
        return base_url.rstrip("/")
    if parts.scheme == "http" and is_loopback(host):
        return base_url.rstrip("/")
    raise InsecureURLError(
        f"refusing base URL {safe_url(base_url)!r}: tokens may only travel over https "
        "(plain http is allowed for loopback hosts only)"
    )


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def encode_params(
    params: Mapping[str, QueryValue], array_params: Sequence[str], encoding: ArrayEncoding
) -> QueryPairs:
    """Query pairs; array parameters as `k=1,2` or `k[]=1&k[]=2` (CONTRACT §1.5)."""
    pairs: QueryPairs = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, list | tuple):
            if key not in array_params:
                raise ValueError(f"{key} is not an array parameter of this endpoint")
            if encoding is ArrayEncoding.COMMA:
                pairs.append((key, ",".join(str(v) for v in value)))
            else:
                pairs.extend((f"{key}[]", str(v)) for v in value)
        else:
            pairs.append((key, str(value)))
    return pairs
