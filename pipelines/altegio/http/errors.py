"""Every error the Altegio extract raises on purpose, rooted in one class.

The hierarchy:

* AltegioError
  x ConfigurationError      the settings cannot work; the message says what to set
    + InsecureURLError      a base URL that would send tokens in clear text
  x ApiError                a request to the API failed for good (a chain's load catches this)
    + AuthError             401: a credential is wrong; the hint names the variable to fix
    + AccessDenied          403: the user lacks the chain right (skip the chain, keep the others)
    + NotFound              404: nothing at the path (a wrong chain, location or program id)
    + RequestRefused        400 / 409 / 422: the API refused the parameters or the body
    + RateLimited           429 through the whole retry budget
    + ServerError           5xx, 408, 425 through the whole retry budget
    + BadResponse           the answer is not what the endpoint sends
      - UnreadableBody      a 2xx body that is not JSON or not the documented shape (retried)
      - BodyTooLarge        a body over the size limit (never retried)
    + ConnectionFailed      no answer: timeouts, refused or dropped connections, every retry
    + OutcomeUnknown        a call not safe to repeat may have been applied: read back, decide

Every error renders on one line: the class, where it happened, the API's own message
(`meta.message`) and field errors (`meta.errors`, bracketed keys stripped), the URL without
userinfo, and a hint. Secrets never enter an error: URLs lose their userinfo, and no header or
request body is ever passed in.
"""

from collections.abc import Mapping
from typing import Any, Self
from urllib.parse import urlsplit, urlunsplit

import httpx


def safe_url(url: str | httpx.URL | None) -> str | None:
    """The URL without any userinfo part (tokens never travel in URLs, but be sure)."""
    if url is None:
        return None
    parts = urlsplit(str(url))
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def _one_line(text: str) -> str:
    return " ".join(text.split())


class AltegioError(Exception):
    """Root of the tree: a message plus whatever context is known, rendered on one line."""

    default_hint = ""
    # Whether the rendering starts with the class name: it does, except for the plain
    # ConfigurationError, whose message is the whole story ("set X").
    named = True

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = None,
        errors: Mapping[str, list[str]] | None = None,
        url: str | httpx.URL | None = None,
        endpoint: str | None = None,
        chain_id: int | None = None,
        hint: str | None = None,
        attempts: int | None = None,
        elapsed_s: float | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        self.message = message
        self.status = status
        self.errors: dict[str, list[str]] = {k: list(v) for k, v in (errors or {}).items()}
        self.url = safe_url(url)
        self.endpoint = endpoint
        self.chain_id = chain_id
        self.hint = hint if hint is not None else self.default_hint
        self.attempts = attempts
        self.elapsed_s = elapsed_s
        # What the answer's Retry-After asked for (the retry policy reads it; not rendered).
        self.retry_after_s = retry_after_s
        super().__init__(self.render())

    def _fields(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "status": self.status,
            "errors": self.errors,
            "url": self.url,
            "endpoint": self.endpoint,
            "chain_id": self.chain_id,
            "hint": self.hint,
            "attempts": self.attempts,
            "elapsed_s": self.elapsed_s,
            "retry_after_s": self.retry_after_s,
        }

    def replaced(self, **changes: Any) -> Self:
        """The same error with some fields changed (a hint added, a context filled in)."""
        return type(self)(**{**self._fields(), **changes})

    def render(self) -> str:
        where = " ".join(
            part
            for part in (
                self.endpoint and f"endpoint={self.endpoint}",
                self.chain_id is not None and f"chain_id={self.chain_id}",
                self.status is not None and f"status={self.status}",
            )
            if part
        )
        head = type(self).__name__ if self.named else ""
        if where:
            head = f"{head} [{where}]" if head else f"[{where}]"
        text = self.message or "no message from the API"
        if head:
            text = f"{head}: {text}"
        if self.errors:
            text += "; " + "; ".join(
                f"{key}: {', '.join(msgs)}" if key else ", ".join(msgs)
                for key, msgs in self.errors.items()
            )
        if self.attempts is not None:
            text += f" (gave up after {self.attempts} attempts"
            text += f" in {self.elapsed_s:.1f} s)" if self.elapsed_s is not None else ")"
        if self.url:
            text += f" ({self.url})"
        if self.hint:
            text += f". {self.hint}"
        return _one_line(text)


class ConfigurationError(AltegioError):
    """The environment or settings do not describe a usable connection; says what to set."""

    named = False


class InsecureURLError(ConfigurationError):
    """A base URL that would send tokens in clear text to a non-loopback host."""

    named = True


class ApiError(AltegioError):
    """A request to the API that failed for good, with the API's message and field errors."""


class AuthError(ApiError):
    """401: a credential is wrong; the hint names the environment variable to fix."""


class AccessDenied(ApiError):
    """403: the user lacks the chain right for this endpoint (skip the chain, keep the others)."""

    default_hint = "the user lacks this chain right; other chains are unaffected"


class NotFound(ApiError):
    """404: nothing at the requested path (a wrong chain/location/program id)."""


class RequestRefused(ApiError):
    """400/409/422: the API refused the parameters or body; `errors` maps field -> messages."""


class RateLimited(ApiError):
    """429 persisted through the whole retry budget."""


class ServerError(ApiError):
    """5xx (and 408/425) persisted through the whole retry budget."""


class BadResponse(ApiError):
    """The answer was not what the endpoint sends (an undocumented status, a wrong shape after
    retries, a server repeating the same page forever)."""


class UnreadableBody(BadResponse):
    """A 2xx body that is not valid JSON or not the endpoint's shape (often a cut connection):
    retried like a server error."""


class BodyTooLarge(BadResponse):
    """A response body over the configured maximum (`MAX_BODY_BYTES`); never retried."""


class ConnectionFailed(ApiError):
    """No answer: timeouts, refused or dropped connections, through the whole retry budget.

    `request_sent` is False only when the request provably never left (connect error, connect
    or pool timeout): a call not safe to repeat may still be retried then.
    """

    def __init__(self, message: str | None = None, *, request_sent: bool = True, **kw: Any):
        self.request_sent = request_sent
        super().__init__(message, **kw)

    def _fields(self) -> dict[str, Any]:
        return {**super()._fields(), "request_sent": self.request_sent}


class OutcomeUnknown(ApiError):
    """A call that is not safe to repeat (a create, a clone, a freeze) failed after it may have
    reached the server; it was not retried. Read the entity back before deciding."""

    default_hint = "not repeated (it is not safe to repeat): read back whether it was applied"


# Status -> error class for answers that are failures (CONTRACT §2).
STATUS_ERRORS: dict[int, type[ApiError]] = {
    400: RequestRefused,
    401: AuthError,
    403: AccessDenied,
    404: NotFound,
    408: ServerError,
    409: RequestRefused,
    422: RequestRefused,
    425: ServerError,
    429: RateLimited,
}


def error_class(status: int) -> type[ApiError]:
    """The class for a failure status: the table above, then ServerError for any 5xx."""
    if status in STATUS_ERRORS:
        return STATUS_ERRORS[status]
    return ServerError if status >= 500 else ApiError
