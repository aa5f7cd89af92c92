"""What every reliability scenario shares: the sandbox dataset, the load window, and the
row-level comparison of a published warehouse with a clean run's.

A warehouse is summarised per table as its rows (sorted, run-time columns removed) and a
SHA-256 over them; two warehouses are identical when every table's digest matches. Run-time
columns (`_extracted_at`, `quarantined_at`) and run-time tables (`load_steps`, `_publish`)
differ between any two runs by design and are left out, and so are the validity bounds of the
history marts (`valid_from`, `valid_to`: when a run saw a change). Schema `altegio_history`
(every version stamped with its run's time) is not compared; the marts built on it are.
"""

import hashlib
import logging
import os
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from pipelines.altegio.sandbox import SandboxConfig, SandboxServer, serve
from pipelines.storage.warehouse import WAREHOUSE_FILE, quote_identifier

log = logging.getLogger(__name__)

# Two chains of two locations, ten days of data; loads read four of them. Small enough for
# a load in a few seconds, large enough for several pages per transaction day under caps.
SUITE_CONFIG = SandboxConfig(
    seed=11,
    chains=2,
    locations_per_chain=2,
    start=date(2026, 1, 1),
    end=date(2026, 1, 10),
    transactions_per_day=60,
)
LOAD_START = date(2026, 1, 2)
LOAD_END = date(2026, 1, 5)
# Every load of the suite hashes phones with this key: warehouses are compared row by row, and
# each data directory's own key would make their hashes differ by design (README, Personal data).
SUITE_PHONE_HASH_KEY = "reliability-suite-phone-hash-key"
PHONE_HASH_KEY_VARIABLE = "ALTEGIO_PHONE_HASH_KEY"

EXCLUDED_TABLES = frozenset({"altegio.load_steps", "altegio._publish"})
# A history mart's validity bounds are when a run saw a change: run-time like _extracted_at.
EXCLUDED_COLUMNS = frozenset({"_extracted_at", "quarantined_at", "valid_from", "valid_to"})
SCHEMAS = ("altegio", "marts")


@dataclass(frozen=True)
class TableDigest:
    """One table of a warehouse: its comparable rows (sorted) and their SHA-256."""

    name: str
    rows: tuple[tuple[Any, ...], ...]
    digest: str


Checksums = dict[str, TableDigest]


def table_checksums(con: duckdb.DuckDBPyConnection) -> Checksums:
    """Every comparable table of an open warehouse connection, hashed row by row."""
    tables = con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() "
        "WHERE schema_name IN ('altegio', 'marts') ORDER BY 1, 2"
    ).fetchall()
    out: Checksums = {}
    for schema, table in tables:
        name = f"{schema}.{table}"
        if name in EXCLUDED_TABLES:
            continue
        columns = [
            row[0]
            for row in con.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
                [schema, table],
            ).fetchall()
            if row[0] not in EXCLUDED_COLUMNS
        ]
        select = ", ".join(quote_identifier(c) for c in columns)
        target = f"{quote_identifier(schema)}.{quote_identifier(table)}"
        # Identifiers only, each validated by quote_identifier; ORDER BY ALL sorts by every
        # column, the key first, so the order is total and independent of insertion.
        rows = tuple(con.execute(f"SELECT {select} FROM {target} ORDER BY ALL").fetchall())  # noqa: S608
        digest = hashlib.sha256()
        for row in rows:
            digest.update(repr(row).encode())
            digest.update(b"\n")
        out[name] = TableDigest(name, rows, digest.hexdigest())
    return out


def warehouse_checksums(data_dir: Path) -> Checksums:
    """Checksums of the warehouse published in `data_dir` (read-only connection)."""
    con = duckdb.connect(str(data_dir / WAREHOUSE_FILE), read_only=True)
    try:
        return table_checksums(con)
    finally:
        con.close()


@dataclass
class Comparison:
    """A warehouse against the clean one: rows compared and rows that differ."""

    rows_compared: int = 0
    differences: int = 0
    tables_differing: list[str] = field(default_factory=list)

    def add(self, other: "Comparison") -> None:
        self.rows_compared += other.rows_compared
        self.differences += other.differences
        self.tables_differing.extend(other.tables_differing)


def compare(clean: Mapping[str, TableDigest], candidate: Mapping[str, TableDigest]) -> Comparison:
    """Row-level difference: rows in one warehouse and not the other (as multisets), plus a
    whole table's rows when a table is missing on one side."""
    result = Comparison()
    for name in sorted(set(clean) | set(candidate)):
        a, b = clean.get(name), candidate.get(name)
        result.rows_compared += max(len(a.rows) if a else 0, len(b.rows) if b else 0)
        if a is not None and b is not None and a.digest == b.digest:
            continue
        left = Counter(a.rows if a else ())
        right = Counter(b.rows if b else ())
        diff = sum(((left - right) + (right - left)).values())
        result.differences += max(diff, 1)
        result.tables_differing.append(name)
    return result


def altegio_overrides(server: SandboxServer, **tuning: str) -> dict[str, str]:
    """Resource overrides pointing a load at `server` with its credentials, no client budget
    (the fault scenarios want the server's limits, not the client's, to bite)."""
    creds = server.credentials
    return {
        "base_url": server.base_url,
        "partner_token": creds.partner_token,
        "user_token": creds.user_token,
        "rate_limit": "unlimited",
        **tuning,
    }


@contextmanager
def one_phone_hash_key() -> Iterator[None]:
    """In-process loads inside the block hash phones with SUITE_PHONE_HASH_KEY."""
    before = os.environ.get(PHONE_HASH_KEY_VARIABLE)
    os.environ[PHONE_HASH_KEY_VARIABLE] = SUITE_PHONE_HASH_KEY
    try:
        yield
    finally:
        if before is None:
            del os.environ[PHONE_HASH_KEY_VARIABLE]
        else:
            os.environ[PHONE_HASH_KEY_VARIABLE] = before


@contextmanager
def sandbox(**changes: Any) -> Iterator[SandboxServer]:
    """The suite's sandbox with some fields of `SUITE_CONFIG` changed (faults, limits)."""
    with serve(replace(SUITE_CONFIG, **changes)) as server:
        yield server


def fault_count(server: SandboxServer) -> int:
    """Faults the sandbox injected so far, summed over knobs (its 429s count as
    `rate_limited`)."""
    return sum(int(v) for v in server.stats().get("faults", {}).values())


@dataclass
class ScenarioResult:
    """One row of the report."""

    scenario: str
    trials: int = 0
    faults: int = 0
    rows_compared: int = 0
    differences: int = 0
    notes: list[str] = field(default_factory=list)

    def absorb(self, comparison: Comparison) -> None:
        self.rows_compared += comparison.rows_compared
        self.differences += comparison.differences
        if comparison.tables_differing:
            self.notes.append("differs: " + ", ".join(comparison.tables_differing))
