"""`make bench-quick`'s harness, once, at tiny sizes: every contender runs and loads every
row, the JSON carries every figure the issue names, and the table prints. No timing is
asserted (figures at these sizes mean nothing)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.xdist_group("benchmarks"), pytest.mark.timeout(600)]


def test_quick_benchmark_runs_every_contender_and_reports_every_figure(tmp_path):
    out = tmp_path / "quick.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["mode"] == "quick"
    for size in result["sizes"]:
        for name in ("floor", "ours", "dlt"):
            contender = size[name]
            assert contender["ok"], (size["size"], name, contender.get("error"))
            assert contender["rows"] == size["transactions"] > 0
            assert contender["requests"] > 0 and contender["peak_rss_mb"] > 0
            assert contender["wall_s"] > 0 and contender["rows_per_s"] > 0
        nightly = size["nightly"]
        for run in ("on_history", "into_empty"):
            assert nightly[run]["ok"], (size["size"], run, nightly[run].get("error"))
        # On top of the history the warehouse holds every row; into empty, the nightly's days.
        assert nightly["on_history"]["rows"] == size["transactions"]
        assert 0 < nightly["into_empty"]["rows"] == nightly["transactions"] < size["transactions"]
        assert nightly["over_empty"] > 0 and size["lake_files"] > 0
        economy = size["request_economy"]
        assert economy["transactions"]["made"] >= economy["transactions"]["minimum"] > 0
    per_size = result["ratios"]["per_size"]
    assert set(per_size) == {s["size"] for s in result["sizes"]}
    for ratios in per_size.values():
        for key in ("ours_over_floor_wall", "ours_over_dlt_throughput"):
            assert ratios[key] > 0
    assert result["ratios"]["ours_rss_large_over_small"] > 0
    assert result["ratios"]["nightly_over_empty"] > 0
    for regime in result["rate_limited"].values():
        assert regime["rows_lost"] == 0
        assert regime["achieved_rps"] > 0
    assert len(result["targets"]) == 11
    for heading in ("Targets", "Request economy", "Nightly scenario"):
        assert heading in proc.stdout


def test_storage_evaluation_holds_the_same_rows_in_both_designs(tmp_path):
    from benchmarks import storage_eval

    out = tmp_path / "storage_eval.json"
    assert storage_eval.main(["--quick", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    shape = result["shape"]
    rows = shape["chains"] * shape["days"] * shape["per_day"]
    for design in ("handwritten", "delta"):
        figures = result[design]
        assert figures["transactions_rows"] == rows, design
        assert figures["memberships_changed"] == storage_eval.REFRESHED, design
        assert figures["transactions_files"] > 0 and figures["memberships_files"] > 0
    # One file per chain-day against one per chain-month: what the evaluation is about.
    assert result["handwritten"]["transactions_files"] == shape["chains"] * shape["days"]
    assert result["delta"]["transactions_files"] < result["handwritten"]["transactions_files"]
