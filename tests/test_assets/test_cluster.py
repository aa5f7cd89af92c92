"""Without any cluster variable the code location is what it always was (Dagster's default
executor, the instance DAGSTER_HOME says); the cluster variables are checked with one-line
errors. The celery executor itself runs in `make cluster-test` (its packages are in the
cluster dependency group)."""

import subprocess
import sys

import pytest

from assets import cluster
from assets.definitions import defs
from pipelines.altegio.http import ConfigurationError
from tests.conftest import REPO

JOBS = ("nightly_load", "full_membership_refresh", "deep_lookback")


def test_no_variable_keeps_the_default_executor() -> None:
    assert cluster.executor({}) is None
    for name in JOBS:
        # Dagster's default: in-process or multiprocess as the run asks, on this machine.
        assert defs.resolve_job_def(name).executor_def.name == "multi_or_in_process_executor"


def test_a_fresh_process_without_cluster_variables_has_the_default_executor() -> None:
    env = {"PATH": "/usr/bin:/bin"}
    code = (
        "from assets.definitions import defs;"
        "print(defs.resolve_job_def('nightly_load').executor_def.name)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "multi_or_in_process_executor"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"ALTEGIO_EXECUTOR": "celery"}, "ALTEGIO_EXECUTOR=celery needs ALTEGIO_CELERY_BROKER_URL"),
        ({"ALTEGIO_EXECUTOR": "dask"}, "ALTEGIO_EXECUTOR must be one of ('celery', 'k8s')"),
    ],
)
def test_cluster_variables_are_checked(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        cluster.executor(environ)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_the_worker_app_needs_the_broker() -> None:
    with pytest.raises(ConfigurationError, match="ALTEGIO_CELERY_BROKER_URL"):
        cluster.worker_app_args({})


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", cluster.DEFAULT_VISIBILITY_TIMEOUT_S), ("90", 90), ("x", None), ("0", None)],
)
def test_visibility_timeout(text: str, expected: int | None) -> None:
    environ = {cluster.VISIBILITY_TIMEOUT_ENV: text}
    if expected is None:
        with pytest.raises(ConfigurationError, match=cluster.VISIBILITY_TIMEOUT_ENV):
            cluster.visibility_timeout(environ)
    else:
        assert cluster.visibility_timeout(environ) == expected
