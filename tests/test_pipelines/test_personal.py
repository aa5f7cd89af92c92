"""Keyed phone hashes and their key: the same number hashes alike however it is written, the
hash depends on the key, and the data directory's key is made once, private, and kept."""

import stat
import threading
from pathlib import Path

import pytest

from pipelines.altegio.personal import (
    GENERATED_KEY_BYTES,
    PHONE_HASH_KEY_FILE,
    phone_digits,
    phone_hash,
    phone_hash_key,
)

KEY = b"k" * 32


def test_a_number_hashes_alike_however_it_is_written():
    spellings = ["+1 (315) 555-0175", "13155550175", "1-315-555-01-75", " +1 315 5550175 "]
    assert {phone_digits(p) for p in spellings} == {"13155550175"}
    assert len({phone_hash(KEY, p) for p in spellings}) == 1
    assert phone_hash(KEY, "+13155550176") != phone_hash(KEY, "+13155550175")


def test_the_hash_is_hmac_sha256_hex_and_depends_on_the_key():
    import hashlib
    import hmac

    expected = hmac.new(KEY, b"13155550175", hashlib.sha256).hexdigest()
    assert phone_hash(KEY, "+1 315 555 0175") == expected
    assert phone_hash(b"another key of 32 bytes........", "13155550175") != expected
    assert "13155550175" not in expected


@pytest.mark.parametrize("phone", [None, "", "  ", "no number", "+ ( ) -"])
def test_no_digits_no_hash(phone):
    assert phone_hash(KEY, phone) is None


def test_a_configured_key_is_used_as_is_and_a_short_one_is_refused(tmp_path: Path):
    assert phone_hash_key("a configured key of enough length", tmp_path) == (
        b"a configured key of enough length"
    )
    assert not (tmp_path / PHONE_HASH_KEY_FILE).exists()
    with pytest.raises(ValueError, match="ALTEGIO_PHONE_HASH_KEY must be at least 16") as raised:
        phone_hash_key("short", tmp_path)
    assert "short" not in str(raised.value).replace("ALTEGIO", "")


def test_without_a_configured_key_the_data_directory_gets_one_private_key(tmp_path: Path):
    data_dir = tmp_path / "data"
    first = phone_hash_key("", data_dir)
    path = data_dir / PHONE_HASH_KEY_FILE
    assert len(first) == GENERATED_KEY_BYTES
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert phone_hash_key("", data_dir) == first  # kept, not remade
    assert phone_hash_key("", tmp_path / "other") != first  # one per data directory
    assert [p.name for p in data_dir.iterdir()] == [PHONE_HASH_KEY_FILE]  # no temporaries left


def test_loads_racing_for_a_new_key_all_get_the_same_one(tmp_path: Path):
    keys: list[bytes] = []
    start = threading.Barrier(8)

    def take() -> None:
        start.wait()
        keys.append(phone_hash_key("", tmp_path))

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 8 and len(set(keys)) == 1


def test_a_damaged_key_file_is_an_error_that_says_what_to_do(tmp_path: Path):
    (tmp_path / PHONE_HASH_KEY_FILE).write_text("not a key\n")
    with pytest.raises(ValueError, match="restore it from a backup, or delete it"):
        phone_hash_key("", tmp_path)


def test_the_storage_resource_refuses_a_short_key_as_a_configuration_error(tmp_path: Path):
    from assets.resources import ConfigurationError, StorageResource

    storage = StorageResource(data_dir=str(tmp_path), phone_hash_key="short")
    with pytest.raises(ConfigurationError, match="ALTEGIO_PHONE_HASH_KEY"):
        storage.personal_key()
    assert StorageResource(data_dir=str(tmp_path)).personal_key() == phone_hash_key("", tmp_path)
