"""The fast subset of the reliability suite: fault knobs, SIGKILL trials and concurrent
readers against sandboxes, every published warehouse equal to a clean run's."""

import pytest

from reliability.run import format_table, run_suite


@pytest.mark.xdist_group("reliability")
@pytest.mark.timeout(600)
def test_quick_reliability_subset_has_zero_differences(tmp_path):
    results = run_suite(tmp_path, quick=True)
    table = format_table(results)
    by_name = {r.scenario: r for r in results}
    assert set(by_name) >= {
        "faults: 5xx bursts",
        "faults: dropped mid-body",
        "faults: page-boundary repeats",
        "crash: SIGKILL + rerun",
        "crash: readers during kills",
        "readers: queries during loads",
    }, table
    assert all(r.differences == 0 for r in results), table
    assert all(r.rows_compared > 0 for r in results), table
    assert by_name["faults: 5xx bursts"].faults > 0, table
    assert by_name["crash: SIGKILL + rerun"].trials == 3, table
