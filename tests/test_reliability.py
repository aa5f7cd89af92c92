"""The fast subset of the reliability suite: fault knobs, SIGKILL trials and concurrent
readers against sandboxes, every published warehouse equal to a clean run's."""

import logging
from datetime import date

import pytest

from pipelines.altegio.sandbox import SandboxConfig, serve
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
        "disk full: ENOSPC + rerun",
    }, table
    assert all(r.differences == 0 for r in results), table
    assert all(r.rows_compared > 0 for r in results), table
    assert by_name["faults: 5xx bursts"].faults > 0, table
    assert by_name["crash: SIGKILL + rerun"].trials == 3, table
    # A lake write and a publish, each into a full disk, each rerun after space was freed.
    assert by_name["disk full: ENOSPC + rerun"].faults == 2, table


def test_the_sandbox_logs_a_dropped_connection_in_one_debug_line_not_a_traceback(caplog, capsys):
    caplog.set_level(logging.DEBUG, logger="pipelines.altegio.sandbox.server")
    with serve(SandboxConfig(end=date(2026, 1, 2))) as server:
        httpd = server._httpd
        assert httpd is not None
        for error in (BrokenPipeError(32, "Broken pipe"), ConnectionResetError(104, "reset")):
            try:
                raise error
            except OSError:
                httpd.handle_error(None, ("127.0.0.1", 40000))
    assert "Traceback" not in capsys.readouterr().err
    dropped = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert [r.levelno for r in dropped] == [logging.DEBUG, logging.DEBUG]
