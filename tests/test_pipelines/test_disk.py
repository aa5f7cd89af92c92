"""A full disk is recognised however the storage reports it, and nothing else is."""

import errno

import duckdb
import pytest

from pipelines.storage.disk import disk_full_message, is_disk_full


def _raised_from(cause: BaseException) -> RuntimeError:
    try:
        try:
            raise cause
        except BaseException as inner:
            raise RuntimeError("step failed") from inner
    except RuntimeError as outer:
        return outer


@pytest.mark.parametrize(
    "exc",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        OSError(errno.EDQUOT, "Disk quota exceeded"),
        # Arrow's and DuckDB's own exception types carry only the C library's message.
        OSError("[Errno 28] No space left on device. Detail: [errno 28]"),
        duckdb.IOException('Could not write file "x.duckdb": No space left on device'),
        _raised_from(OSError(errno.ENOSPC, "No space left on device")),
    ],
)
def test_a_full_disk_is_recognised(exc):
    assert is_disk_full(exc)


@pytest.mark.parametrize(
    "exc",
    [
        OSError(errno.EACCES, "Permission denied"),
        FileNotFoundError(errno.ENOENT, "No such file or directory"),
        ValueError("bad value"),
        _raised_from(OSError(errno.EIO, "Input/output error")),
    ],
)
def test_other_errors_are_not_a_full_disk(exc):
    assert not is_disk_full(exc)


def test_the_message_is_one_line_naming_the_place_and_what_to_do():
    text = disk_full_message("/data/altegio")
    assert "\n" not in text
    assert text.startswith("disk full") and "/data/altegio" in text and "run the same" in text
