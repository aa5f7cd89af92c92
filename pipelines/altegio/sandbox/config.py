"""Configuration of the sandbox: what data it holds and how it misbehaves.

Everything is a frozen dataclass so a config can be hashed, compared and reused across server
instances; the same config always yields byte-identical answers (faults included, except the
time-based rate limit and sleeps).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date

# Fake, non-secret credentials: the sandbox is the only Altegio the tests and the demo ever see.
PARTNER_TOKEN = "sandbox-partner-token"  # noqa: S105
USER_TOKEN = "sandbox-user-token"  # noqa: S105
LOGIN = "sandbox@example.com"
PASSWORD = "sandbox-password"  # noqa: S105


@dataclass(frozen=True)
class SandboxCredentials:
    """The credentials the sandbox accepts (fixed fake strings unless a config sets others).

    The repr masks every value, like the client's: canary tests scan what a run prints."""

    partner_token: str = PARTNER_TOKEN
    user_token: str = USER_TOKEN
    login: str = LOGIN
    password: str = PASSWORD
    # Only Altegio's own super users may restore a deleted membership type (CONTRACT §5.10.2);
    # a partner integration gets 403.
    super_user: bool = False

    def __repr__(self) -> str:
        return "SandboxCredentials(***)"

    def numbered(self, number: int) -> "SandboxCredentials":
        """The credentials of the sandbox's identity `number` (1 is these; others have the
        number appended to every value, so each identity is told apart by its tokens)."""
        if number == 1:
            return self
        return replace(
            self,
            partner_token=f"{self.partner_token}-{number}",
            user_token=f"{self.user_token}-{number}",
            login=f"{number}.{self.login}",
            password=f"{self.password}-{number}",
        )


@dataclass(frozen=True)
class Faults:
    """Misbehaviour on request. All off by default.

    "Every N" knobs count API requests (GET endpoints only; `/auth` and `/_sandbox/*` are never
    faulted) with one server-wide counter starting at 1, so a sequential client sees the same
    faults at the same requests on every run. Every injected fault is counted in the stats under
    `faults.<knob name>`.
    """

    # 5xx bursts: in every cycle of `error_every` requests the last `error_burst` fail,
    # alternating through `error_statuses`.
    error_every: int = 0
    error_burst: int = 1
    error_statuses: tuple[int, ...] = (502, 503)
    # Every Nth request sleeps `slow_seconds` before answering (set it beyond the client timeout).
    slow_every: int = 0
    slow_seconds: float = 0.0
    # Every Nth request: status line, headers (full Content-Length) and half the body, then close.
    drop_every: int = 0
    # Every Nth request: 200 whose JSON body is cut short (Content-Length matches the cut body).
    truncate_every: int = 0
    # Serve at most this many rows per page whatever is asked (global, and per endpoint name).
    page_size_cap: int | None = None
    page_size_caps: Mapping[str, int] = field(default_factory=dict)
    # Page p>1 starts with the last row of page p-1, as if a row was inserted meanwhile.
    overlap_pages: bool = False
    # Every page number answers with page 1.
    stuck_pages: bool = False
    # Records whose id is divisible by N get an enum code outside CONTRACT §7.
    unknown_enum_every: int = 0
    # Records carry fields the docs do not list.
    extra_fields: bool = False
    # Integer ids become numeric strings and booleans the strings "1"/"0".
    numeric_strings: bool = False
    # The memberships envelope (200 and 400) is wrapped in a one-element array, as in the
    # official example.
    wrap_memberships: bool = False
    # Index (0-based) of a chain whose gating access flags are absent from /groups but whose
    # chain endpoints all answer 403.
    forbidden_chain: int | None = None
    # Write operations (POST/PUT/PATCH/DELETE under /chain/) count on their own counter, also
    # from 1, so GET faults stay where they were. In every cycle of `write_error_every` writes
    # the last `write_error_burst` answer `write_error_status` before anything is applied.
    write_error_every: int = 0
    write_error_burst: int = 1
    write_error_status: int = 503
    # Every Nth write is applied, then the connection closes before a byte of the answer.
    write_drop_every: int = 0
    # Certificate-type delete answers 204 without a body instead of 200 with one (both are
    # documented, CONTRACT §5.10.4).
    certificate_type_delete_no_content: bool = False


@dataclass(frozen=True)
class SandboxConfig:
    """What the sandbox serves. Data is a pure function of these fields."""

    seed: int = 7
    chains: int = 3
    locations_per_chain: int = 3
    start: date = date(2026, 1, 1)
    end: date = date(2026, 1, 31)
    # Mean transactions per chain per day (weekday seasonality and zero days around it).
    transactions_per_day: int = 40
    memberships_per_day: int = 3
    faults: Faults = field(default_factory=Faults)
    # Per-client (source IP) token bucket: requests per second, burst size, and whether 429s
    # carry a Retry-After header.
    rate_limit: float | None = None
    rate_limit_burst: int = 3
    rate_limit_retry_after: bool = True
    # Chain index -> {access flag: "1" | "0" | None (absent)} applied on top of the generated
    # /groups access flags; a gating flag "0" makes its endpoints answer 403.
    access_overrides: Mapping[int, Mapping[str, str | None]] = field(default_factory=dict)
    # What the sandbox accepts (tests set distinctive canary strings to prove none leaks).
    credentials: SandboxCredentials = field(default_factory=SandboxCredentials)
    # How many API identities it accepts: identity k authenticates with
    # `credentials.numbered(k)`; every identity sees every chain. The stats count requests per
    # identity (several identities of one load: did each read its share?).
    identities: int = 1
    # The world moves: the day clock advances on request (POST /_sandbox/clock) and each new day
    # brings sales, visits, freezes, expiries, price changes and corrections. Off: the generated
    # world of start..end never changes by itself (writes still change it).
    evolve: bool = False
    # With `evolve`: "today" follows the real (UTC) date, simulating every day in between.
    wall_clock: bool = False
    # Chain indexes whose membership types take services as `service_links[]` and silently
    # ignore the `services` / `service_categories` maps (a hidden per-chain feature,
    # CONTRACT §5.10.2); every other chain takes the maps and ignores `service_links`.
    service_links_chains: frozenset[int] = frozenset()
    host: str = "127.0.0.1"
    port: int = 0

    def __post_init__(self) -> None:
        if self.chains < 1 or self.chains > 64:
            raise ValueError("chains must be within 1..64")
        if self.locations_per_chain < 1 or self.locations_per_chain > 50:
            raise ValueError("locations_per_chain must be within 1..50")
        if self.start < date(2020, 1, 1) or self.end < self.start:
            raise ValueError("need 2020-01-01 <= start <= end")
        if self.transactions_per_day < 0 or self.transactions_per_day > 20_000:
            raise ValueError("transactions_per_day must be within 0..20000")
        if self.memberships_per_day < 0 or self.memberships_per_day > 40:
            raise ValueError("memberships_per_day must be within 0..40")
        if self.identities < 1 or self.identities > 16:
            raise ValueError("identities must be within 1..16")
        if self.wall_clock and not self.evolve:
            raise ValueError("wall_clock needs evolve (a static world has no clock to follow)")
