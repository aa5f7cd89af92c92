"""The code location on more than one machine: which executor its jobs use, and the Celery app
the workers run (README, "Running on more than one machine").

`ALTEGIO_EXECUTOR` picks the executor of every job:
* unset: nothing changes (Dagster's default executor, every step on this machine);
* `celery`: `dagster-celery` on the broker `ALTEGIO_CELERY_BROKER_URL`; each step is a Celery task
  that any worker listening on the broker's `dagster` queue may take;
* `k8s`: `dagster-k8s`'s `k8s_job_executor`, each step a Kubernetes Job of the same image (the
  Helm deployment, `deploy/helm/values.yaml`).
The instance (runs, events, schedules) is Dagster's own configuration: `DAGSTER_HOME/dagster.yaml`,
on PostgreSQL with `deploy/dagster.yaml`.

A worker that dies mid-step: tasks are acknowledged only once done (`task_acks_late`), so
* the worker process running a step is killed (say by the OOM killer) but the worker lives: the
  worker reports the step failed (WorkerLostError), the run fails, and re-executing the run from
  failure re-runs that step and those after it;
* the whole worker (its machine) is lost: the broker hands the unacknowledged step to another
  worker once `ALTEGIO_CELERY_VISIBILITY_TIMEOUT` seconds have passed since it was taken, and
  the run goes on. Set it above the longest step: a step still running past it is handed out a
  second time (harmless, every write replaces its partition, but it spends the budget twice).

`dagster-celery`, `celery` and `dagster-k8s` are in the `cluster` dependency group: imported only
when their executor is chosen.
"""

import os
from collections.abc import Mapping
from typing import Any

import dagster as dg

from pipelines.altegio.http import ConfigurationError

EXECUTOR_ENV = "ALTEGIO_EXECUTOR"
EXECUTORS = ("celery", "k8s")
BROKER_ENV = "ALTEGIO_CELERY_BROKER_URL"
BACKEND_ENV = "ALTEGIO_CELERY_BACKEND_URL"
VISIBILITY_TIMEOUT_ENV = "ALTEGIO_CELERY_VISIBILITY_TIMEOUT"
DEFAULT_VISIBILITY_TIMEOUT_S = 4 * 3600
# The one queue of dagster-celery's app (make_app routes every task there).
QUEUE = "dagster"
CLUSTER_VARIABLES = (EXECUTOR_ENV, BROKER_ENV, BACKEND_ENV, VISIBILITY_TIMEOUT_ENV)


def visibility_timeout(environ: Mapping[str, str]) -> int:
    text = environ.get(VISIBILITY_TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_VISIBILITY_TIMEOUT_S
    try:
        seconds = int(text)
    except ValueError:
        raise ConfigurationError(
            f"{VISIBILITY_TIMEOUT_ENV} must be whole seconds, got {text!r}"
        ) from None
    if seconds < 1:
        raise ConfigurationError(f"{VISIBILITY_TIMEOUT_ENV} must be at least 1")
    return seconds


def celery_config_source(environ: Mapping[str, str]) -> dict[str, Any]:
    """Celery settings both sides use: the executor submitting steps, the workers taking
    them (module docstring: why acknowledge late)."""
    from dagster_celery.defaults import broker_transport_options

    seconds = visibility_timeout(environ)
    return {
        "task_acks_late": True,
        "worker_prefetch_multiplier": 1,
        "broker_transport_options": {**broker_transport_options, "visibility_timeout": seconds},
        "result_backend_transport_options": {"visibility_timeout": seconds},
        # A step's events travel back as its task's result: keep them until the run reads them.
        "result_expires": 7 * 24 * 3600,
        "broker_connection_retry_on_startup": True,
    }


def broker_url(environ: Mapping[str, str]) -> str:
    url = environ.get(BROKER_ENV, "").strip()
    if not url:
        raise ConfigurationError(
            f"{EXECUTOR_ENV}=celery needs {BROKER_ENV} (redis://host:6379/0), the broker the "
            "code location submits steps to and the workers take them from"
        )
    return url


def executor(environ: Mapping[str, str] | None = None) -> dg.ExecutorDefinition | None:
    """The executor ALTEGIO_EXECUTOR names, or None (Dagster's default) when it is unset."""
    environ = os.environ if environ is None else environ
    kind = environ.get(EXECUTOR_ENV, "").strip().lower()
    if not kind:
        return None
    if kind == "celery":
        return _celery_executor(environ)
    if kind == "k8s":
        from dagster_k8s import k8s_job_executor

        chosen: dg.ExecutorDefinition = k8s_job_executor
        return chosen
    raise ConfigurationError(f"{EXECUTOR_ENV} must be one of {EXECUTORS} or unset, got {kind!r}")


def _celery_executor(environ: Mapping[str, str]) -> dg.ExecutorDefinition:
    """Broker and backend reach the executor as `env` sources: the URLs (which may carry a
    password) are read when a run starts and never appear in run config or the UI."""
    broker_url(environ)
    from dagster_celery import celery_executor

    backend = BACKEND_ENV if environ.get(BACKEND_ENV, "").strip() else BROKER_ENV
    configured: dg.ExecutorDefinition = celery_executor.configured(
        {
            "broker": {"env": BROKER_ENV},
            "backend": {"env": backend},
            "config_source": celery_config_source(environ),
        },
        name="celery",
    )
    return configured


def worker_app_args(environ: Mapping[str, str]) -> dict[str, Any]:
    """What a worker's Celery app is made from: the executor's own settings."""
    broker = broker_url(environ)
    from dagster_celery.config import DEFAULT_CONFIG, dict_wrapper

    return {
        "broker": broker,
        "backend": environ.get(BACKEND_ENV, "").strip() or broker,
        "include": [],
        # dagster-celery is untyped; without the cluster group mypy sees Any
        "config_source": dict_wrapper(  # type: ignore[no-untyped-call, unused-ignore]
            {**DEFAULT_CONFIG, **celery_config_source(environ)}
        ),
    }
