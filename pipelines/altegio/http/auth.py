"""The user token a session sends, and what to tell the operator when it is refused.

The token is the configured one, or one `POST /auth` obtained from the login and password. On
a 401 the session logs in again once (CONTRACT §5.10.6: no refresh endpoint exists); threads
that hit the same 401 together share one new login.
"""

import threading
from collections.abc import Callable

from pipelines.altegio.http.credentials import (
    LOGIN_ENV,
    PARTNER_TOKEN_ENV,
    PASSWORD_ENV,
    USER_TOKEN_ENV,
    Credentials,
)


class UserTokens:
    """The current user token; `login` is called (under a lock) whenever a new one is needed."""

    def __init__(self, credentials: Credentials, login: Callable[[], str]) -> None:
        self._credentials = credentials
        self._login = login
        self._token = credentials.user_token
        self._from_login = False
        self._lock = threading.Lock()

    @property
    def can_refresh(self) -> bool:
        """Whether a refused token can be replaced (a login and password are configured)."""
        return self._credentials.can_login

    def current(self) -> str:
        with self._lock:
            if self._token is None:
                self._replace_locked()
            assert self._token is not None
            return self._token

    def refresh(self, refused: str) -> str:
        """A new token after a 401, unless another thread already replaced the refused one."""
        with self._lock:
            if self._token == refused:
                self._replace_locked()
            assert self._token is not None
            return self._token

    def _replace_locked(self) -> None:
        self._token = self._login()
        self._from_login = True

    def hint(self) -> str:
        """Which variables to check after a 401, given where the refused token came from."""
        if self._from_login or not self._credentials.user_token:
            return f"check {PARTNER_TOKEN_ENV} and {LOGIN_ENV}/{PASSWORD_ENV}"
        if self._credentials.can_login:
            return (
                f"check {PARTNER_TOKEN_ENV}; {USER_TOKEN_ENV} was refused and re-login with "
                f"{LOGIN_ENV}/{PASSWORD_ENV} did not help"
            )
        return (
            f"check {USER_TOKEN_ENV} (expired or revoked? a password change regenerates it) and "
            f"{PARTNER_TOKEN_ENV}, or set {LOGIN_ENV}/{PASSWORD_ENV} to log in instead"
        )
