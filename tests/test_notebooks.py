"""The analyst notebooks: committed clean, linted, and executed top to bottom against a warehouse
built from the sandbox, drawing their figures without an error."""

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import ipykernel.kernelspec
import nbformat
import pytest
from nbclient import NotebookClient

from assets.cli import run_load
from pipelines.altegio.sandbox import SandboxConfig, SandboxServer
from pipelines.altegio.sandbox.config import Faults

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
# Figures each notebook must draw against the fixture warehouse (02 draws no quarantine chart:
# the sandbox never produces a record that cannot be typed).
MIN_FIGURES = {"01_loyalty_overview.ipynb": 6, "02_data_quality.ipynb": 5}
CELL_TIMEOUT_S = 120
KERNEL = "python3"


def _notebook_ids() -> list[str]:
    return [path.name for path in NOTEBOOKS]


def test_the_expected_notebooks_exist() -> None:
    assert set(_notebook_ids()) == set(MIN_FIGURES)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_notebook_ids())
def test_committed_notebook_has_no_outputs_or_execution_counts(path: Path) -> None:
    nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    nbformat.validate(nb)
    dirty = [
        index
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; clear them before committing"


def _ruff(*args: str) -> subprocess.CompletedProcess[str]:
    ruff = Path(sys.executable).with_name("ruff")
    return subprocess.run(
        [str(ruff), *args, "--no-cache", "--force-exclude", *map(str, NOTEBOOKS)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_notebooks_are_linted_and_formatted_by_ruff() -> None:
    # --force-exclude honours the project's excludes for explicit paths: a notebook excluded
    # from linting would silently pass, so first check that ruff sees both.
    listed = _ruff("check", "--show-files")
    assert listed.returncode == 0, listed.stderr
    for path in NOTEBOOKS:
        assert str(path) in listed.stdout, f"ruff does not lint {path.name}"
    check = _ruff("check")
    assert check.returncode == 0, check.stdout + check.stderr
    formatted = _ruff("format", "--check")
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr


@pytest.fixture(scope="module")
def sandbox_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A data directory loaded twice (days 1-10, then 8-14 as a rerun with lookback) from a
    sandbox that sends undocumented enum codes and fields and fails some requests, so every
    section of the data-quality notebook has something to show."""
    data_dir = tmp_path_factory.mktemp("notebook-data")
    server = SandboxServer(
        SandboxConfig(
            start=date(2026, 1, 1),
            end=date(2026, 1, 31),
            faults=Faults(unknown_enum_every=23, extra_fields=True, error_every=60),
            access_overrides={2: {"loyalty_certificate_types_access": "0"}},
        )
    )
    server.start()
    try:
        credentials = server.credentials
        overrides = {
            "base_url": server.base_url,
            "partner_token": credentials.partner_token,
            "user_token": credentials.user_token,
            "rate_limit": "unlimited",
        }
        for start, end in (
            (date(2026, 1, 1), date(2026, 1, 10)),
            (date(2026, 1, 8), date(2026, 1, 14)),
        ):
            summary = run_load(start, end, data_dir=str(data_dir), altegio_overrides=overrides)
            assert summary.success, summary.errors
    finally:
        server.stop()
    yield data_dir


@pytest.fixture
def venv_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A ``python3`` kernelspec running this interpreter, first on JUPYTER_PATH."""
    prefix = tmp_path / "jupyter-prefix"
    ipykernel.kernelspec.install(kernel_name=KERNEL, prefix=str(prefix))
    monkeypatch.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
    return KERNEL


def _outputs(nb: Any) -> Iterator[tuple[int, Any]]:
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            yield index, output


@pytest.mark.xdist_group("notebooks")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_notebook_ids())
def test_notebook_runs_top_to_bottom_and_draws_its_figures(
    path: Path,
    sandbox_data_dir: Path,
    venv_kernel: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALTEGIO_DATA_DIR", str(sandbox_data_dir))
    # The kernel's inline backend renders with Agg; a backend forced from outside would
    # draw nothing into the notebook.
    monkeypatch.delenv("MPLBACKEND", raising=False)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name=venv_kernel,
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()

    errors = [
        (index, f"{output.get('ename')}: {output.get('evalue')}")
        for index, output in _outputs(nb)
        if output.get("output_type") == "error"
    ]
    assert not errors
    stderr = [
        (index, output.get("text", "")[:300])
        for index, output in _outputs(nb)
        if output.get("output_type") == "stream" and output.get("name") == "stderr"
    ]
    assert not stderr, f"warnings or errors printed: {stderr}"
    figures = [index for index, output in _outputs(nb) if "image/png" in output.get("data", {})]
    assert len(figures) >= MIN_FIGURES[path.name], f"figures drawn in cells {figures}"
    assert list(tmp_path.iterdir()) == [tmp_path / "jupyter-prefix"], "the notebook wrote files"


def _jupyter_env(data_dir: Path) -> dict[str, str]:
    """The environment of a user's shell in the checkout, with the data directory given
    relative to the project root: from notebooks/, where the kernel runs, that path leads
    nowhere, so the notebooks must find it from the root."""
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env["ALTEGIO_DATA_DIR"] = os.path.relpath(data_dir, ROOT)
    return env


JUPYTER = Path(sys.executable).with_name("jupyter")


@pytest.mark.xdist_group("notebooks")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_notebook_ids())
@pytest.mark.parametrize("tool", ["nbconvert", "execute"])
def test_jupyter_nbconvert_and_execute_run_each_notebook_from_the_checkout(
    path: Path, tool: str, sandbox_data_dir: Path, tmp_path: Path
) -> None:
    if tool == "nbconvert":
        command = [str(JUPYTER), "nbconvert", "--to", "notebook", "--execute", str(path)]
        command += ["--output-dir", str(tmp_path)]
    else:
        command = [str(JUPYTER), "execute", str(path), f"--output={tmp_path / path.stem}"]
    done = subprocess.run(
        command,
        cwd=ROOT,
        env=_jupyter_env(sandbox_data_dir),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    written = list(tmp_path.glob("*.ipynb"))
    assert len(written) == 1, (list(tmp_path.iterdir()), done.stderr[-2000:])
    nb = nbformat.read(written[0], as_version=4)
    figures = [i for i, output in _outputs(nb) if "image/png" in output.get("data", {})]
    assert len(figures) >= MIN_FIGURES[path.name]
    assert not [o for _, o in _outputs(nb) if o.get("output_type") == "error"]
