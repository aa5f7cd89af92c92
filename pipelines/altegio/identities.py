"""Several API identities in one load: who they are, and which chains each one reads.

The API limits requests per client IP (CONTRACT §3.1), so a load of hundreds of chains scales
only with more identities leaving through more egress IPs. An identity is a partner token with
one user credential (a user token, or a login and password) and, optionally, the proxy its
requests leave through. Each identity has its own rate budget (`budget_material`), shared by
every thread and process that uses it.

Chains go to identities once per step, the same way in every process:

* an identity with an explicit chain list reads those chains;
* every other chain goes, in ascending id order, to the identity with the fewest chains so far
  among the identities without a list that see it (ties: the first declared); a chain that
  only identities with a list see goes to the least loaded of them, so no chain is left out.

Configuration, from the environment (README, "Running on more than one machine"):

    ALTEGIO_IDENTITIES=east,west
    ALTEGIO_IDENTITY_EAST_PARTNER_TOKEN=...  ALTEGIO_IDENTITY_EAST_USER_TOKEN=...
    ALTEGIO_IDENTITY_WEST_PARTNER_TOKEN=...  ALTEGIO_IDENTITY_WEST_LOGIN=...  ..._PASSWORD=...
    ALTEGIO_IDENTITY_WEST_PROXY=http://user:secret@10.0.0.7:3128   (optional)
    ALTEGIO_IDENTITY_EAST_CHAIN_IDS=101,102                        (optional)

A proxy URL can carry a password: the repr shows its scheme, host and port only.
"""

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from pipelines.altegio.http import ConfigurationError, Credentials
from pipelines.altegio.http.errors import safe_url

IDENTITIES_ENV = "ALTEGIO_IDENTITIES"
IDENTITY_PREFIX = "ALTEGIO_IDENTITY_"
# What one identity declares, by the suffix of its variables.
IDENTITY_FIELDS = ("PARTNER_TOKEN", "USER_TOKEN", "LOGIN", "PASSWORD", "PROXY", "CHAIN_IDS")
# The name of the one identity of a load configured the single-identity way.
DEFAULT_IDENTITY = "default"
NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def variable(name: str, suffix: str) -> str:
    """The environment variable of one field of identity `name`."""
    return f"{IDENTITY_PREFIX}{name.upper()}_{suffix}"


def masked_proxy(proxy: str | None) -> str | None:
    """A proxy URL fit to print: scheme, host and port; never its user or password."""
    return safe_url(proxy)


@dataclass(frozen=True, repr=False)
class Identity:
    """One API identity: credentials, the optional egress proxy and explicitly listed chains."""

    name: str
    credentials: Credentials
    proxy: str | None = None
    chain_ids: tuple[int, ...] | None = None

    def __repr__(self) -> str:
        return (
            f"Identity(name={self.name!r}, credentials={self.credentials!r}, "
            f"proxy={masked_proxy(self.proxy)!r}, chain_ids={self.chain_ids!r})"
        )

    __str__ = __repr__

    @property
    def budget_material(self) -> str:
        """What tells this identity's budget apart (hashed before it names a file or a key):
        the partner token and the egress. Without a proxy it is the partner token alone, the
        key a single-identity load has always used."""
        token = self.credentials.partner_token
        return token if not self.proxy else f"{token}\0{self.proxy}"

    def rename_variables(self, text: str) -> str:
        """A hint naming the single-identity variables (ALTEGIO_USER_TOKEN, ...) rewritten
        to this identity's own (ALTEGIO_IDENTITY_<NAME>_USER_TOKEN, ...)."""
        if self.name == DEFAULT_IDENTITY:
            return text
        for suffix in IDENTITY_FIELDS:
            text = re.sub(rf"\bALTEGIO_{suffix}\b", variable(self.name, suffix), text)
        return text


def parse_chain_ids(text: str, variable_name: str) -> tuple[int, ...] | None:
    """A comma list of chain ids (None when empty); a clear error naming the variable."""
    text = text.strip()
    if not text:
        return None
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigurationError(
            f"{variable_name} must be a comma list of integers, got {text!r}"
        ) from None


def identity_names(text: str) -> list[str]:
    """The names in ALTEGIO_IDENTITIES, checked: letters, digits, underscores, unique."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    seen: set[str] = set()
    for name in names:
        if not NAME_PATTERN.match(name):
            raise ConfigurationError(
                f"{IDENTITIES_ENV}: {name!r} is not a name (letters, digits and _, "
                "starting with a letter)"
            )
        if name.upper() in seen:
            raise ConfigurationError(f"{IDENTITIES_ENV} names {name!r} twice")
        seen.add(name.upper())
    return names


def identities_from_environment(
    environ: Mapping[str, str], *, sandbox: Sequence[Credentials] | None = None
) -> tuple[Identity, ...]:
    """The identities ALTEGIO_IDENTITIES declares (empty when it is not set).

    With `sandbox` (the built-in sandbox's credential sets, one per identity), identity k
    authenticates with the k-th set and only its proxy and chain list come from the
    environment."""
    names = identity_names(environ.get(IDENTITIES_ENV, ""))
    if sandbox is not None and len(sandbox) < len(names):
        raise ConfigurationError(
            f"{IDENTITIES_ENV} declares {len(names)} identities; the sandbox accepts {len(sandbox)}"
        )
    identities = []
    for number, name in enumerate(names):

        def value(suffix: str, name: str = name) -> str:
            return environ.get(variable(name, suffix), "").strip()

        credentials = sandbox[number] if sandbox is not None else _credentials(name, value)
        identities.append(
            Identity(
                name=name,
                credentials=credentials,
                proxy=value("PROXY") or None,
                chain_ids=parse_chain_ids(value("CHAIN_IDS"), variable(name, "CHAIN_IDS")),
            )
        )
    return tuple(identities)


def _credentials(name: str, value: Callable[[str], str]) -> Credentials:
    partner = value("PARTNER_TOKEN")
    user, login, password = value("USER_TOKEN"), value("LOGIN"), value("PASSWORD")
    if not partner:
        raise ConfigurationError(
            f"identity {name}: set {variable(name, 'PARTNER_TOKEN')} and either "
            f"{variable(name, 'USER_TOKEN')} or {variable(name, 'LOGIN')} + "
            f"{variable(name, 'PASSWORD')}"
        )
    if not user and not (login and password):
        raise ConfigurationError(
            f"identity {name}: {variable(name, 'PARTNER_TOKEN')} is set but no user "
            f"credentials: set {variable(name, 'USER_TOKEN')} or both "
            f"{variable(name, 'LOGIN')} and {variable(name, 'PASSWORD')}"
        )
    return Credentials(
        partner_token=partner,
        user_token=user or None,
        login=login or None,
        password=password or None,
    )


def assign_chains(
    identities: Sequence[Identity], visible: Mapping[str, Sequence[int]]
) -> dict[int, str]:
    """chain id -> the name of the identity that reads it (module docstring: the rules).

    `visible` holds, per identity name, the chain ids its GET /groups lists. An explicitly
    listed chain its identity cannot see, or one listed by two identities, is an error."""
    owner: dict[int, str] = {}
    load = {identity.name: 0 for identity in identities}
    for identity in identities:
        for chain_id in identity.chain_ids or ():
            if chain_id not in visible.get(identity.name, ()):
                raise ConfigurationError(
                    f"{variable(identity.name, 'CHAIN_IDS')} lists chain {chain_id}, which "
                    f"identity {identity.name} does not see "
                    f"({sorted(visible.get(identity.name, ()))})"
                )
            if chain_id in owner:
                raise ConfigurationError(
                    f"chain {chain_id} is listed by identities {owner[chain_id]} and "
                    f"{identity.name}; list it once"
                )
            owner[chain_id] = identity.name
            load[identity.name] += 1
    unlisted = sorted({c for ids in visible.values() for c in ids} - owner.keys())
    for chain_id in unlisted:
        seeing = [i for i in identities if chain_id in visible.get(i.name, ())]
        candidates = [i for i in seeing if i.chain_ids is None] or seeing
        chosen = min(candidates, key=lambda i: load[i.name])  # min keeps the first of ties
        owner[chain_id] = chosen.name
        load[chosen.name] += 1
    return owner
