"""`python -m benchmarks.storage_eval [--quick]`: the lake's hand-written partition files against
Delta Lake (delta-rs), side by side on the same synthetic tables, for docs/performance.md.

Both contenders hold `loyalty_transactions` (the real schema, synthetic values) and
`memberships`, and run the same four things a night asks of storage:
  history   the full history written once (per chain-day files vs one Delta commit per chain)
  nightly   the last NIGHTLY_DAYS days replaced (a lookback re-read), on top of that history
  refresh   REFRESHED memberships spread over two years changed in place (state re-read by id)
  scan      DuckDB over the table's current files (read_parquet over a file list: for Delta,
            DeltaTable.file_uris(); no extension needed), before and after Delta's compaction
Figures: seconds, files a reader opens, bytes. No assertion: the decision is written down.
"""

import argparse
import json
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from pipelines.altegio.schema import TABLES
from pipelines.storage.parquet import Lake, Partition

START = date(2025, 1, 1)
NIGHTLY_DAYS = 4
REFRESHED = 500
SEED = 5


@dataclass(frozen=True)
class Shape:
    chains: int
    days: int
    per_day: int
    memberships: int


FULL = Shape(chains=4, days=365, per_day=1370, memberships=12_600)
QUICK = Shape(chains=2, days=30, per_day=200, memberships=600)


def synthetic(schema: pa.Schema, n: int, rng: random.Random, **columns: Any) -> pa.Table:
    """`n` rows of `schema`: the given columns as passed, every other one filled by its type."""
    arrays = []
    for field in schema:
        if field.name in columns:
            arrays.append(pa.array(columns[field.name], type=field.type))
        elif pa.types.is_integer(field.type):
            arrays.append(pa.array([rng.randrange(1, 10_000) for _ in range(n)], field.type))
        elif pa.types.is_floating(field.type) or pa.types.is_decimal(field.type):
            values = [round(rng.uniform(-500, 500), 2) for _ in range(n)]
            arrays.append(pa.array(values, pa.float64()).cast(field.type, safe=False))
        elif pa.types.is_boolean(field.type):
            arrays.append(pa.array([rng.random() < 0.5 for _ in range(n)]))
        elif pa.types.is_string(field.type):
            arrays.append(pa.array([f"v{rng.randrange(50)}" for _ in range(n)]))
        else:  # dates, timestamps: nulls cost what real values cost in a reader's file count
            arrays.append(pa.nulls(n, field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def transactions(shape: Shape, chain: int, days: list[date], rng: random.Random) -> pa.Table:
    schema = TABLES["loyalty_transactions"].schema
    n = shape.per_day * len(days)
    base = chain * 10**9 + (days[0] - START).days * shape.per_day
    return synthetic(
        schema, n, rng,
        id=range(base, base + n),
        chain_id=[chain] * n,
        transaction_date=[d for d in days for _ in range(shape.per_day)],
    )  # fmt: skip


def memberships(shape: Shape, ids: list[int], rng: random.Random, status: int) -> pa.Table:
    schema = TABLES["memberships"].schema
    created = [START - timedelta(days=365) + timedelta(days=i % 730) for i in ids]
    return synthetic(
        schema, len(ids), rng,
        id=ids,
        chain_id=[1 + i % shape.chains for i in ids],
        created_day=created,
        created_month=[d.replace(day=1) for d in created],
        status_id=[status] * len(ids),
    )  # fmt: skip


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def scan(files: list[str]) -> tuple[float, int]:
    """One core's DuckDB aggregate over `files`: seconds, and the rows it saw (a check that both
    contenders hold the same table)."""
    con = duckdb.connect()
    con.execute("SET threads = 1")
    seconds, rows = timed(
        lambda: con.execute(
            "SELECT chain_id, count(*), sum(id) FROM read_parquet(?) GROUP BY 1", [files]
        ).fetchall()
    )
    con.close()
    return seconds, sum(r[1] for r in rows)


def _bytes(files: list[str]) -> int:
    return sum(Path(f.removeprefix("file://")).stat().st_size for f in files)


def handwritten(shape: Shape, root: Path) -> dict[str, Any]:
    rng = random.Random(SEED)
    lake = Lake(root, TABLES)
    days = [START + timedelta(days=i) for i in range(shape.days)]
    out: dict[str, Any] = {}

    # Batches as a load writes them (a month of one chain), generated before the clock starts.
    batches = [
        (chain, window, transactions(shape, chain, window, rng))
        for chain in range(1, shape.chains + 1)
        for window in (days[m : m + 30] for m in range(0, shape.days, 30))
    ]

    def history() -> None:
        for chain, window, table in batches:
            parts: list[Partition] = [{"chain_id": chain, "transaction_date": d} for d in window]
            lake.replace_partitions("loyalty_transactions", table, parts)

    out["history_s"], _ = timed(history)
    tail = days[-NIGHTLY_DAYS:]

    nights = [(c, transactions(shape, c, tail, rng)) for c in range(1, shape.chains + 1)]

    def nightly() -> None:
        for chain, table in nights:
            parts: list[Partition] = [{"chain_id": chain, "transaction_date": d} for d in tail]
            lake.replace_partitions("loyalty_transactions", table, parts)

    out["nightly_s"], _ = timed(nightly)
    files = [str(p.path) for p in lake.partitions("loyalty_transactions")]
    out["transactions_files"] = len(files)
    out["transactions_bytes"] = _bytes(files)
    out["scan_s"], out["transactions_rows"] = scan(files)

    ids = list(range(1, shape.memberships + 1))
    first = memberships(shape, ids, rng, status=1)
    months = sorted(
        set(zip(first["chain_id"].to_pylist(), first["created_month"].to_pylist(), strict=True))
    )
    parts = [{"chain_id": c, "created_month": m} for c, m in months]
    lake.replace_partitions("memberships", first, parts)
    changed = sorted(rng.sample(ids, min(REFRESHED, len(ids))))
    update = memberships(shape, changed, rng, status=2)

    def refresh() -> None:
        chains, months = update["chain_id"].to_pylist(), update["created_month"].to_pylist()
        touched = sorted(set(zip(chains, months, strict=True)))
        wanted = pa.array(changed)
        lake.merge_partitions(
            "memberships",
            update,
            [{"chain_id": c, "created_month": m} for c, m in touched],
            keep=lambda t: pa.compute.invert(pa.compute.is_in(t["id"], value_set=wanted)),
        )

    out["refresh_s"], _ = timed(refresh)
    out["memberships_files"] = len(lake.partitions("memberships"))
    after = lake.read("memberships")
    out["memberships_changed"] = pa.compute.sum(pa.compute.equal(after["status_id"], 2)).as_py()
    return out


def delta(shape: Shape, root: Path) -> dict[str, Any]:
    rng = random.Random(SEED)
    tx_uri = str(root / "loyalty_transactions")
    days = [START + timedelta(days=i) for i in range(shape.days)]
    out: dict[str, Any] = {}

    def with_month(table: pa.Table, column: str) -> pa.Table:
        month = pa.array([d.replace(day=1) for d in table[column].to_pylist()], pa.date32())
        return table.append_column("_month", month)

    batches = [
        with_month(transactions(shape, chain, days, rng), "transaction_date")
        for chain in range(1, shape.chains + 1)
    ]

    def history() -> None:
        for table in batches:
            write_deltalake(tx_uri, table, mode="append", partition_by=["chain_id", "_month"])

    out["history_s"], _ = timed(history)
    tail = days[-NIGHTLY_DAYS:]

    nights = [
        (c, with_month(transactions(shape, c, tail, rng), "transaction_date"))
        for c in range(1, shape.chains + 1)
    ]

    def nightly() -> None:
        for chain, table in nights:
            predicate = (
                f"chain_id = {chain} AND transaction_date >= '{tail[0].isoformat()}' "
                f"AND transaction_date <= '{tail[-1].isoformat()}'"
            )
            write_deltalake(tx_uri, table, mode="overwrite", predicate=predicate)

    out["nightly_s"], _ = timed(nightly)
    dt = DeltaTable(tx_uri)
    files = dt.file_uris()
    out["transactions_files"] = len(files)
    out["transactions_bytes"] = _bytes(files)
    out["scan_s"], out["transactions_rows"] = scan(files)
    out["compact_s"], _ = timed(lambda: dt.optimize.compact())
    out["vacuum_s"], _ = timed(
        lambda: dt.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
    )
    files = DeltaTable(tx_uri).file_uris()
    out["transactions_files_compacted"] = len(files)
    out["scan_compacted_s"], _ = scan(files)

    ms_uri = str(root / "memberships")
    ids = list(range(1, shape.memberships + 1))
    write_deltalake(ms_uri, memberships(shape, ids, rng, status=1), partition_by=["chain_id"])
    changed = sorted(rng.sample(ids, min(REFRESHED, len(ids))))
    update = memberships(shape, changed, rng, status=2)

    def refresh() -> None:
        (
            DeltaTable(ms_uri)
            .merge(update, predicate="t.id = s.id", source_alias="s", target_alias="t")
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .execute()
        )

    out["refresh_s"], _ = timed(refresh)
    after = DeltaTable(ms_uri)
    out["memberships_files"] = len(after.file_uris())
    status = after.to_pyarrow_table(columns=["status_id"])["status_id"]
    out["memberships_changed"] = pa.compute.sum(pa.compute.equal(status, 2)).as_py()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny tables: proves the harness")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    shape = QUICK if args.quick else FULL
    result: dict[str, Any] = {"shape": shape.__dict__, "nightly_days": NIGHTLY_DAYS}
    with tempfile.TemporaryDirectory(prefix="altegio-storage-eval-") as tmp:
        for name, contender in (("handwritten", handwritten), ("delta", delta)):
            root = Path(tmp) / name
            result[name] = {k: round(v, 3) if isinstance(v, float) else v
                            for k, v in contender(shape, root).items()}  # fmt: skip
            shutil.rmtree(root, ignore_errors=True)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
