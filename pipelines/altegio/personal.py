"""Personal data: keyed hashes instead of raw values, and the key they are keyed with.

A client's phone number is never stored; its keyed hash is (HMAC-SHA256 of the number's digits),
so an analyst can join two tables on the same client without the number itself. A plain hash
would not do: phone numbers are few enough to hash them all and look a value up. The key is
`ALTEGIO_PHONE_HASH_KEY` when it is set (the same key gives the same hashes in every warehouse
that must be joined), else a random key made once per data directory
(`<data-dir>/.phone-hash-key`, mode 0600): joins work inside one warehouse, and its hashes mean
nothing outside it. Losing that file changes every hash of the next load.
"""

import contextlib
import hashlib
import hmac
import os
import re
import secrets
import uuid
from pathlib import Path

PHONE_HASH_KEY_FILE = ".phone-hash-key"
GENERATED_KEY_BYTES = 32
# A configured key shorter than this would make the hashes of the few billion possible phone
# numbers cheap to recompute.
MIN_CONFIGURED_KEY_CHARS = 16
_NOT_DIGITS = re.compile(r"\D+")


def phone_digits(phone: str) -> str:
    """The digits of a phone number as written (spaces, dashes, brackets, a plus dropped)."""
    return _NOT_DIGITS.sub("", phone)


def phone_hash(key: bytes, phone: str | None) -> str | None:
    """Hex HMAC-SHA256 of the phone's digits under `key`; None when there are no digits."""
    if phone is None:
        return None
    digits = phone_digits(phone)
    if not digits:
        return None
    return hmac.new(key, digits.encode("ascii"), hashlib.sha256).hexdigest()


def phone_hash_key(configured: str, data_dir: Path) -> bytes:
    """The key of the phone hashes: `configured` (ALTEGIO_PHONE_HASH_KEY) when set, else the
    data directory's own key, made on first use. ValueError (naming the setting, never the key)
    when the configured key is too short or the key file is unreadable."""
    if configured:
        if len(configured) < MIN_CONFIGURED_KEY_CHARS:
            raise ValueError(
                f"ALTEGIO_PHONE_HASH_KEY must be at least {MIN_CONFIGURED_KEY_CHARS} characters"
            )
        return configured.encode("utf-8")
    return _data_dir_key(Path(data_dir))


def _data_dir_key(data_dir: Path) -> bytes:
    path = data_dir / PHONE_HASH_KEY_FILE
    if not path.exists():
        _create_key_file(path)
    text = path.read_text(encoding="ascii").strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != GENERATED_KEY_BYTES:
        raise ValueError(
            f"{path} does not hold a phone hash key; restore it from a backup, or delete it to "
            "start new hashes (they will not match the ones already stored)"
        )
    return key


def _create_key_file(path: Path) -> None:
    """Write a new random key to `path` unless another process got there first: the key is
    written whole to a private temporary, then linked to its name (never replacing a key)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".tmp-{os.getpid()}-{uuid.uuid4().hex}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_hex(GENERATED_KEY_BYTES) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        # A concurrent load that made it first wins: use its key.
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
