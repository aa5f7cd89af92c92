"""What a session authenticates with, and the names of the variables an operator sets.

The repr masks every secret, so a settings object can be logged or shown in an error.
"""

from dataclasses import dataclass

# Names of the environment variables an operator fixes (not secrets themselves).
PARTNER_TOKEN_ENV = "ALTEGIO_PARTNER_TOKEN"  # noqa: S105
USER_TOKEN_ENV = "ALTEGIO_USER_TOKEN"  # noqa: S105
LOGIN_ENV = "ALTEGIO_LOGIN"
PASSWORD_ENV = "ALTEGIO_PASSWORD"  # noqa: S105


def _mask(value: str | None) -> str | None:
    return None if value is None else "***"


@dataclass(frozen=True, repr=False)
class Credentials:
    """Partner token plus either a user token or a login/password pair (CONTRACT §4)."""

    partner_token: str
    user_token: str | None = None
    login: str | None = None
    password: str | None = None

    def __post_init__(self) -> None:
        if not self.partner_token:
            raise ValueError(f"partner token is empty: set {PARTNER_TOKEN_ENV}")
        if not self.user_token and not (self.login and self.password):
            raise ValueError(
                f"no user credential: set {USER_TOKEN_ENV}, or {LOGIN_ENV} and {PASSWORD_ENV}"
            )

    @property
    def can_login(self) -> bool:
        return bool(self.login and self.password)

    def __repr__(self) -> str:
        login = None if self.login is None else (self.login[:2] + "***")
        return (
            f"Credentials(partner_token={_mask(self.partner_token)!r}, "
            f"user_token={_mask(self.user_token)!r}, login={login!r}, "
            f"password={_mask(self.password)!r})"
        )

    __str__ = __repr__
