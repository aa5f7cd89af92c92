"""The report as the nightly job and the command write it: beside the warehouse after every
publish, shown in the marts' metadata, and again on demand with `altegio-loyalty report`."""

import subprocess
import sys
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from assets.altegio import TABLE_ASSETS, warehouse
from assets.resources import build_resources
from pipelines.altegio.sandbox import SandboxConfig, SandboxServer
from pipelines.report import CHARTS, REPORT_FILE
from pipelines.storage.marts import MART_DOCS

DAY = date(2026, 1, 5)
SANDBOX_CONFIG = SandboxConfig(
    seed=3, chains=2, start=date(2026, 1, 1), end=date(2026, 1, 8), transactions_per_day=20
)
CLI = Path(sys.executable).with_name("altegio-loyalty")


def load_day(server: SandboxServer, data_dir: Path) -> dg.ExecuteInProcessResult:
    resources = build_resources(
        altegio={
            "base_url": server.base_url,
            "partner_token": server.credentials.partner_token,
            "user_token": server.credentials.user_token,
            "rate_limit": "200",
        },
        storage={"data_dir": str(data_dir)},
    )
    return dg.materialize(
        [*TABLE_ASSETS, warehouse],
        resources=resources,
        partition_key=DAY.isoformat(),
        raise_on_error=False,
    )


@pytest.fixture(scope="module")
def loaded(sandbox: SandboxServer, tmp_path_factory: pytest.TempPathFactory):
    data_dir = tmp_path_factory.mktemp("loaded")
    result = load_day(sandbox, data_dir)
    assert result.success
    return data_dir, result


def test_every_publish_writes_the_report_beside_the_warehouse_and_the_marts_show_it(loaded):
    data_dir, result = loaded
    page = (data_dir / REPORT_FILE).read_text(encoding="utf-8")
    chain_ids = _chain_ids(page)
    assert len(chain_ids) == SANDBOX_CONFIG.chains
    for chain_id in chain_ids:
        for chart in CHARTS[:2]:
            assert f'id="chart-{chain_id}-{chart.key}"' in page
    marts = [
        e.materialization
        for e in result.get_asset_materialization_events()
        if e.materialization.asset_key.path[0] == "marts"
    ]
    assert marts
    for materialization in marts:
        metadata = materialization.metadata
        assert metadata["report"].value == str((data_dir / REPORT_FILE).resolve())
        assert metadata["report_url"].value == (data_dir / REPORT_FILE).resolve().as_uri()
        summary = metadata["report_summary"].value
        assert f"for {SANDBOX_CONFIG.chains} chains" in summary and "bytes" in summary


def _chain_ids(page: str) -> list[int]:
    marker = 'data-chain-id="'
    ids, start = [], page.find(marker)
    while start != -1:
        end = page.index('"', start + len(marker))
        ids.append(int(page[start + len(marker) : end]))
        start = page.find(marker, end)
    return ids


def test_the_report_has_a_section_per_loaded_chain(sandbox, loaded):
    data_dir, _ = loaded
    page = (data_dir / REPORT_FILE).read_text(encoding="utf-8")
    assert _chain_ids(page) == sorted(sandbox.dataset.chain_ids())


def test_a_report_that_cannot_be_written_fails_the_step_after_the_marts_are_published(
    sandbox, tmp_path
):
    # A directory where the page should go: the rename onto it fails.
    (tmp_path / REPORT_FILE).mkdir()
    result = load_day(sandbox, tmp_path)
    assert not result.success
    (failure,) = result.get_step_failure_events()
    assert failure.step_key == "warehouse"
    assert "report not written" in failure.step_failure_data.user_failure_data.description
    published = {
        "/".join(e.materialization.asset_key.path)
        for e in result.get_asset_materialization_events()
        if e.step_key == "warehouse"
    }
    assert published == {f"marts/{name}" for name in MART_DOCS}
    assert (tmp_path / "warehouse.duckdb").is_file()
    # Exactly one attempt: a retry would not make the directory go away.
    assert len([e for e in result.all_events if e.event_type_value == "STEP_RESTARTED"]) == 0


def test_the_report_command_writes_the_page_where_asked(loaded, tmp_path):
    data_dir, _ = loaded
    out = tmp_path / "loyalty.html"
    done = subprocess.run(
        [str(CLI), "report", "--data-dir", str(data_dir), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"Report: {out} (")
    assert f"{SANDBOX_CONFIG.chains} chains" in done.stdout
    assert out.read_text(encoding="utf-8").count('<section class="chain"') == 2


def test_the_report_command_without_a_warehouse_says_what_to_run(tmp_path):
    done = subprocess.run(
        [str(CLI), "report", "--data-dir", str(tmp_path / "empty")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith("report error: no warehouse at ") and "run a load first" in line
