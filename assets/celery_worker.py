"""The Celery app a worker machine runs: `celery -A assets.celery_worker worker -Q dagster`.

Built from the same settings as the executor (`assets.cluster`), so what the code location
submits is what the workers take. Each task runs one step of a run, reading the run from the
Dagster instance (`DAGSTER_HOME`, PostgreSQL) and the code from this repository.
"""

import os

from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

from assets.cluster import worker_app_args

# dagster-celery is untyped; without the cluster group mypy sees Any.
app = make_app(worker_app_args(os.environ))  # type: ignore[no-untyped-call, unused-ignore]
execute_plan = create_task(app)  # type: ignore[no-untyped-call, unused-ignore]
