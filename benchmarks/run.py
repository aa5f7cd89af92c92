"""`make bench` / `python -m benchmarks.run [--quick]`: one table + benchmarks/results/latest.json.

Contenders at each size, each in a fresh process against one warm sandbox process:
  floor  every transactions page with plain httpx, bytes discarded (benchmarks/floor.py)
  ours   `run_load`: every Dagster asset, extract -> normalize -> Parquet -> DuckDB (ours.py)
  dlt    dlt's rest_api source, transactions per chain-day into DuckDB (peer_dlt.py)
Then, on the data directory ours just filled, the nightly scenario: the last NIGHTLY_DAYS days
loaded again on top of that history and the same days into an empty directory (a night should
cost what changed, not what exists). Then the rate-limited regime (ratelimit.py) and the request
economy from the sandbox counters.
"""

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import ratelimit
from benchmarks.common import Size, run_child
from benchmarks.sandbox import GroundTruth, SandboxProcess

RESULTS = Path(__file__).parent / "results"
FULL_SIZES = (Size("200k", 4, 365, 150), Size("2M", 4, 365, 1500))
QUICK_SIZES = (Size("quick-a", 2, 14, 40), Size("quick-b", 2, 14, 400))
RATE_LIMIT = 5.0
CHILD_TIMEOUT_S = 900.0
NIGHTLY_DAYS = 4


def _requests(stats: dict[str, Any]) -> dict[str, int]:
    return {name: sum(by_status.values()) for name, by_status in stats["requests"].items()}


def _contender(name: str, run: Any, rows_expected: int, stats: dict[str, Any]) -> dict[str, Any]:
    rows = int(run.result.get("rows", 0))
    requests = _requests(stats)
    return {
        "contender": name,
        "ok": run.returncode == 0 and rows == rows_expected,
        "returncode": run.returncode,
        "rows": rows,
        "rows_expected": rows_expected,
        "wall_s": round(run.wall_s, 2),
        "work_s": round(float(run.result.get("work_s", run.wall_s)), 2),
        "rows_per_s": round(rows / run.wall_s) if run.wall_s else 0,
        "requests": sum(requests.values()),
        "requests_by_endpoint": requests,
        "http_429": stats["faults"].get("rate_limited", 0),
        "peak_rss_mb": round(run.peak_rss_mb, 1),
        **({"error": run.stderr_tail[-800:]} if run.returncode else {}),
    }


def lake_files(data_dir: Path) -> int:
    """Parquet data files a reader may have to open: what DuckDB pays about 1 ms each for."""
    return sum(1 for _ in data_dir.rglob("*.parquet"))


def _ours(sandbox: SandboxProcess, start: Any, end: Any, data_dir: Path, logs: Path) -> Any:
    return run_child(
        "benchmarks.ours",
        ["--base-url", sandbox.base_url, "--start", start.isoformat(), "--end", end.isoformat(),
         "--data-dir", str(data_dir)],
        CHILD_TIMEOUT_S, logs,
    )  # fmt: skip


def bench_nightly(
    size: Size, sandbox: SandboxProcess, history_dir: Path, work: Path, logs: Path
) -> dict[str, Any]:
    """The same few-day load twice: on top of the full history in `history_dir`, and into an
    empty directory. Both runs re-read their days from the same warm sandbox."""
    truth = GroundTruth(size)
    days = size.day_list()[-NIGHTLY_DAYS:]
    rows = sum(truth.dataset.transaction_count(c, d) for c in truth.chain_ids() for d in days)
    total = truth.transactions()
    out: dict[str, Any] = {"days": len(days), "transactions": rows}
    for label, data_dir, expected in (
        ("on_history", history_dir, total),
        ("into_empty", work / f"nightly-empty-{size.label}", rows),
    ):
        sandbox.reset()
        run = _ours(sandbox, days[0], days[-1], data_dir, logs)
        out[label] = _contender(f"nightly-{label}", run, expected, sandbox.stats())
        shutil.rmtree(data_dir, ignore_errors=True)
    out["over_empty"] = round(out["on_history"]["wall_s"] / out["into_empty"]["wall_s"], 2)
    return out


def bench_size(size: Size, work: Path, dlt_days: int | None) -> dict[str, Any]:
    truth = GroundTruth(size)
    chains = truth.chain_ids()
    plan = truth.tx_plan()
    rows_expected = truth.transactions()
    plan_file = work / f"plan-{size.label}.json"
    plan_file.write_text(json.dumps(plan))
    logs = work / "logs"
    out: dict[str, Any] = {
        "size": size.label,
        "chains": size.chains,
        "days": size.days,
        "transactions": rows_expected,
        "minimum_requests": truth.minimum_requests(),
    }
    print(f"[{size.label}] {rows_expected:,} transactions; sandbox starting", file=sys.stderr)
    with SandboxProcess(size) as sandbox:
        floor_args = ["--base-url", sandbox.base_url, "--plan", str(plan_file)]
        # Warm-up (not measured): the sandbox renders and caches every page once.
        run_child("benchmarks.floor", floor_args, CHILD_TIMEOUT_S, logs)
        sandbox.reset()
        runs: dict[str, Any] = {}
        floor = run_child("benchmarks.floor", floor_args, CHILD_TIMEOUT_S, logs)
        runs["floor"] = floor
        floor_stats = sandbox.stats()
        floor_result = _contender("floor", floor, rows_expected, floor_stats)
        floor_result["rows"] = rows_expected  # the floor parses nothing: it fetched every page
        floor_result["ok"] = floor.returncode == 0
        floor_result["rows_per_s"] = round(rows_expected / floor.wall_s)
        out["floor"] = floor_result
        print(f"[{size.label}] floor {floor.wall_s:.1f}s", file=sys.stderr)

        sandbox.reset()
        data_dir = work / f"ours-{size.label}"
        ours = _ours(sandbox, size.day_list()[0], size.end, data_dir, logs)
        ours_stats = sandbox.stats()
        out["ours"] = _contender("ours", ours, rows_expected, ours_stats)
        out["ours"]["transactions_requests"] = _requests(ours_stats).get("transactions", 0)
        out["ours"]["served_page_sizes"] = ours_stats["page_sizes"].get("transactions", {})
        out["lake_files"] = lake_files(data_dir)
        print(f"[{size.label}] ours {ours.wall_s:.1f}s", file=sys.stderr)
        out["nightly"] = bench_nightly(size, sandbox, data_dir, work, logs)
        print(
            f"[{size.label}] nightly {out['nightly']['on_history']['wall_s']:.1f}s on history, "
            f"{out['nightly']['into_empty']['wall_s']:.1f}s into empty",
            file=sys.stderr,
        )

        days = size.day_list()[: dlt_days or size.days]
        dlt_rows = sum(truth.dataset.transaction_count(c, d) for c in chains for d in days)
        sandbox.reset()
        data_dir = work / f"dlt-{size.label}"
        peer = run_child(
            "benchmarks.peer_dlt",
            ["--base-url", sandbox.base_url, "--chains", ",".join(map(str, chains)),
             "--days", ",".join(d.isoformat() for d in days), "--data-dir", str(data_dir)],
            CHILD_TIMEOUT_S, logs,
        )  # fmt: skip
        out["dlt"] = _contender("dlt", peer, dlt_rows, sandbox.stats())
        out["dlt"]["days_loaded"] = len(days)
        shutil.rmtree(data_dir, ignore_errors=True)
        print(f"[{size.label}] dlt {peer.wall_s:.1f}s ({len(days)} days)", file=sys.stderr)
    mins = out["minimum_requests"]
    made = out["ours"]["requests_by_endpoint"]
    out["request_economy"] = {
        ep: {"made": made.get(ep, 0), "minimum": m, "ratio": round(made.get(ep, 0) / m, 3)}
        for ep, m in mins.items()
        if m
    }
    out["request_economy"]["total"] = {
        "made": sum(made.values()),
        "minimum": sum(mins.values()),
        "ratio": round(sum(made.values()) / sum(mins.values()), 3),
    }
    return out


def ratios(sizes: list[dict[str, Any]]) -> dict[str, Any]:
    small, large = sizes[0], sizes[-1]
    per_size = {}
    for s in sizes:
        per_size[s["size"]] = {
            "ours_over_floor_wall": round(s["ours"]["wall_s"] / s["floor"]["wall_s"], 2),
            "ours_over_floor_work": round(s["ours"]["work_s"] / s["floor"]["work_s"], 2),
            "ours_over_dlt_throughput": round(
                s["ours"]["rows_per_s"] / max(s["dlt"]["rows_per_s"], 1), 2
            ),
            "ours_requests_over_minimum": s["request_economy"]["total"]["ratio"],
            "nightly_over_empty": s["nightly"]["over_empty"],
        }
    return {
        "per_size": per_size,
        "nightly_over_empty": large["nightly"]["over_empty"],
        "ours_rss_large_over_small": round(
            large["ours"]["peak_rss_mb"] / small["ours"]["peak_rss_mb"], 2
        ),
        "dlt_rss_large_over_small": round(
            large["dlt"]["peak_rss_mb"] / small["dlt"]["peak_rss_mb"], 2
        ),
    }


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The storage issue's targets (issue 16), which supersede the first round's."""
    small, large = result["sizes"][0], result["sizes"][-1]
    r = result["ratios"]
    per, per_small = r["per_size"][large["size"]], r["per_size"][small["size"]]
    at_r = result["rate_limited"]["at_limit"]
    checks = [
        ("nightly on history / nightly into empty <= 1.15 (large)", r["nightly_over_empty"],
         "<=", 1.15),
        ("ours >= 1.5 x dlt throughput (small)", per_small["ours_over_dlt_throughput"], ">=", 1.5),
        ("ours >= 3 x dlt throughput (large)", per["ours_over_dlt_throughput"], ">=", 3),
        ("ours <= 6 x floor wall time (large)", per["ours_over_floor_wall"], "<=", 6),
        ("lake files <= 400 (large)", large["lake_files"], "<=", 400),
        ("ours peak RSS <= 500 MB (large)", large["ours"]["peak_rss_mb"], "<=", 500),
        ("ours RSS(large)/RSS(small) <= 1.3", r["ours_rss_large_over_small"], "<=", 1.3),
        ("rate-limited achieved/R >= 0.98", at_r["achieved_over_limit"], ">=", 0.98),
        ("rate-limited 429s == 0", at_r["http_429"], "<=", 0),
        ("rate-limited requests/minimum <= 1.02", at_r["requests_over_minimum"], "<=", 1.02),
        ("full-load requests/minimum <= 1.05 (large)", per["ours_requests_over_minimum"],
         "<=", 1.05),
    ]  # fmt: skip
    return [
        {"target": name, "measured": value, "met": value <= bound if op == "<=" else value >= bound}
        for name, value, op, bound in checks
    ]


def print_table(result: dict[str, Any]) -> None:
    print("\nContenders (rate limit off; wall = whole process, RSS = its own peak)")
    head = f"{'size':<8} {'contender':<6} {'rows':>10} {'wall s':>8} {'work s':>8} {'rows/s':>9}"
    print(head + f" {'requests':>9} {'429':>4} {'RSS MB':>7}  ok")
    for s in result["sizes"]:
        for name in ("floor", "ours", "dlt"):
            c = s[name]
            note = (
                f" ({c['days_loaded']} days)"
                if name == "dlt" and c["days_loaded"] != s["days"]
                else ""
            )
            print(
                f"{s['size']:<8} {name:<6} {c['rows']:>10,} "
                f"{c['wall_s']:>8.1f} {c['work_s']:>8.1f} "
                f"{c['rows_per_s']:>9,} {c['requests']:>9,} {c['http_429']:>4} "
                f"{c['peak_rss_mb']:>7.0f}  {'yes' if c['ok'] else 'NO'}{note}"
            )
    print(f"\nNightly scenario: the last {NIGHTLY_DAYS} days again, on the history vs into empty")
    for s in result["sizes"]:
        n = s["nightly"]
        print(
            f"  {s['size']:<8} on history {n['on_history']['wall_s']:.1f}s, into empty "
            f"{n['into_empty']['wall_s']:.1f}s = {n['over_empty']:.2f}; "
            f"{n['into_empty']['requests']:,} requests; lake files after the full load "
            f"{s['lake_files']:,}"
        )
    print("\nRatios")
    for label, per in result["ratios"]["per_size"].items():
        print(
            f"  {label:<8} ours/floor wall {per['ours_over_floor_wall']:.2f} "
            f"(work {per['ours_over_floor_work']:.2f})   "
            f"ours/dlt throughput {per['ours_over_dlt_throughput']:.1f}x   "
            f"requests/minimum {per['ours_requests_over_minimum']:.3f}"
        )
    print(
        f"  RSS large/small: ours {result['ratios']['ours_rss_large_over_small']:.2f}, "
        f"dlt {result['ratios']['dlt_rss_large_over_small']:.2f}"
    )
    print("\nRequest economy (ours, largest size): made / minimum the served page sizes allow")
    for ep, e in result["sizes"][-1]["request_economy"].items():
        print(f"  {ep:<24} {e['made']:>7,} / {e['minimum']:>7,} = {e['ratio']:.3f}")
    print(f"\nRate-limited regime (sandbox limit R = {RATE_LIMIT:g} req/s)")
    for _key, rr in result["rate_limited"].items():
        print(
            f"  budget {rr['budget_rps']:>4g}: achieved {rr['achieved_rps']:.2f} req/s "
            f"({rr['achieved_over_limit']:.2f} R), 429s {rr['http_429']}, last 429 at "
            f"{rr['last_429_after_s']:.1f}s, requests/minimum {rr['requests_over_minimum']:.3f}, "
            f"rows lost {rr['rows_lost']} of {rr['rows_expected']:,}"
        )
    print("\nTargets")
    for t in result["targets"]:
        print(f"  {'MET   ' if t['met'] else 'MISSED'} {t['target']}: {t['measured']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, seconds; no figures")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default: results/)")
    parser.add_argument(
        "--dlt-days-large", type=int, default=None,
        help="load only the first N days with dlt at the large size (bounds the run time)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    t0 = time.perf_counter()
    started = datetime.now(UTC).isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix="altegio-bench-") as tmp:
        work = Path(tmp)
        results = [
            bench_size(size, work, args.dlt_days_large if i == len(sizes) - 1 else None)
            for i, size in enumerate(sizes)
        ]
    print("rate-limited regime", file=sys.stderr)
    rate = ratelimit.run(RATE_LIMIT, 8 if args.quick else 120, 8 if args.quick else 120)
    result: dict[str, Any] = {
        "started_at": started,
        "mode": "quick" if args.quick else "full",
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": __import__("os").cpu_count(),
        },
        "sizes": results,
        "rate_limited": rate,
    }
    result["ratios"] = ratios(results)
    result["targets"] = targets(result)
    result["bench_wall_s"] = round(time.perf_counter() - t0, 1)
    out = args.out or RESULTS / ("quick.json" if args.quick else "latest.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print_table(result)
    print(f"\nWritten {out} in {result['bench_wall_s']:.0f}s")
    ok = all(s[c]["ok"] for s in results for c in ("floor", "ours", "dlt")) and all(
        s["nightly"][run]["ok"] for s in results for run in ("on_history", "into_empty")
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
