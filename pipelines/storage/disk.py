"""A full disk, recognised wherever the storage raises it and reported in one line.

Lake writes and the publish replace files only after the new bytes are whole (temporaries,
then a rename or a swap), so running out of space part-way leaves the previous lake files and
the previous warehouse readable. What must not happen is the usual treatment of an OSError:
marking one chain failed and going on, or retrying the step 30 s later into the same full
disk. A disk-full error therefore stops the step at once and says what to do.
"""

import errno

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
# Arrow and DuckDB report the C library's message inside their own exception types.
DISK_FULL_TEXTS = ("No space left on device", "Disk quota exceeded")


def is_disk_full(exc: BaseException) -> bool:
    """Whether `exc`, or an exception it was raised from, says the disk is full."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in DISK_FULL_ERRNOS:
            return True
        if any(text in str(current) for text in DISK_FULL_TEXTS):
            return True
        current = current.__cause__ or current.__context__
    return False


def disk_full_message(where: str) -> str:
    return (
        f"disk full: no space left on the device of {where}; the warehouse was not republished "
        "and the previous one is untouched; free space and run the same command again"
    )
