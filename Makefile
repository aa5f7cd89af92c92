# The README's commands. Every target sets up what it needs from scratch:
# a bootstrap venv holding a pinned uv, then .venv synced exactly to uv.lock.
PYTHON ?= python3
UV_VERSION := 0.13.8
BOOT := .bootstrap
UV := $(BOOT)/bin/uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: setup test lint typecheck pytest demo dev sql notebooks check bench bench-deps bench-quick clean docs reliability fixtures cluster-deps cluster-test ui-check

$(UV):
	$(PYTHON) -m venv $(BOOT)
	$(BOOT)/bin/pip install --quiet uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) uv.lock pyproject.toml
	$(UV) sync --locked --python $(PYTHON) --quiet
	touch $@

setup: $(VENV)/.synced

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup
	$(VENV)/bin/mypy

# The benchmark-only group (dlt, the peer the benchmark compares against) on top of setup; a
# no-op once installed. The suite needs it too: it runs the quick benchmark once.
bench-deps: setup
	$(UV) sync --locked --python $(PYTHON) --quiet --group bench

pytest: bench-deps
	$(VENV)/bin/pytest -n 2 --dist loadgroup

test: lint typecheck pytest

demo: setup
	$(VENV)/bin/altegio-loyalty demo

# The interactive SQL shell on the warehouse, read-only: Harlequin (the `sql` dependency group,
# synced --inexact: other installed groups stay). The warehouse: ALTEGIO_DATA_DIR, else data/,
# else data/demo/ (`altegio-loyalty sql "SELECT ..."` runs one query for scripts).
sql: $(UV)
	$(UV) sync --locked --inexact --python $(PYTHON) --quiet --group sql
	@WAREHOUSE=$$($(VENV)/bin/python -m pipelines.notebook) && \
		$(VENV)/bin/harlequin --read-only "$$WAREHOUSE"

# JupyterLab (the `notebooks` dependency group, synced --inexact) on notebooks/, with the
# project's .venv as the kernel; the notebooks find the warehouse as `make sql` does, from
# whichever directory the kernel runs in. JUPYTER_ARGS passes options (e.g. --no-browser).
JUPYTER_ARGS ?=
notebooks: $(UV)
	$(UV) sync --locked --inexact --python $(PYTHON) --quiet --group notebooks
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks $(JUPYTER_ARGS)

# The sandbox fills its own data directory: a data dir remembers its source and would refuse
# a later production load.
dev: setup
	ALTEGIO_BASE_URL=sandbox ALTEGIO_DATA_DIR=$${ALTEGIO_DATA_DIR:-data/sandbox} $(VENV)/bin/dagster dev -w workspace.yaml

# lint includes ruff's S (security) rules; pip-audit checks every locked dependency against
# PyPI's vulnerability database (needs the network; not part of `make test`).
check: lint typecheck
	$(UV) export --locked --no-hashes --no-emit-project --all-groups --format requirements-txt --quiet > $(VENV)/audit-requirements.txt
	$(VENV)/bin/pip-audit -r $(VENV)/audit-requirements.txt --no-deps --disable-pip --strict --progress-spinner off \
		|| { echo "pip-audit FAILED: a known vulnerability is listed above, or a locked version could not be audited (PyPI's vulnerability API at https://pypi.org unreachable, or the version is not on pypi.org: see Skip Reason)"; exit 1; }

# Fault, crash (SIGKILL, 21 trials) and concurrent-reader suites against sandboxes; prints a table.
reliability: setup
	$(VENV)/bin/python -m reliability.run

# The cluster-only group (dagster-postgres, dagster-celery, dagster-k8s, celery, redis) on top of
# setup; a no-op once installed.
cluster-deps: setup
	@echo "[cluster-test] uv sync --group cluster (installs dagster-postgres, dagster-celery, dagster-k8s, celery, redis when missing)"
	$(UV) sync --locked --python $(PYTHON) --quiet --group cluster

# PostgreSQL and Redis (Debian packages: apt-get installs them when missing, as root), the
# sandbox and two Celery workers on loopback; the nightly job there with two identities, one
# worker process SIGKILLed mid-step and the run retried, against a single-machine load: 0
# differences. Stops everything it started, also on failure. See README, "Running on more
# than one machine".
cluster-test: cluster-deps
	$(VENV)/bin/python -m cluster.run

# The report and the Dagster UI rendered by headless Debian Chromium (installed with apt-get,
# as root, when missing), checked in the rendered DOM; screenshots under <data-dir>/ui-check/.
# Needs apt and a browser, so it is not part of `make test`.
ui-check: setup
	$(VENV)/bin/python -m ui_check.run $(if $(DATA_DIR),--data-dir $(DATA_DIR))

bench: bench-deps
	$(VENV)/bin/python -m benchmarks.run

# Tiny sizes (about a minute): proves the harness end to end; its figures mean nothing.
bench-quick: bench-deps
	$(VENV)/bin/python -m benchmarks.run --quick

docs: setup
	$(VENV)/bin/python -m pipelines.altegio.data_dictionary > docs/data_dictionary.md

# The official examples and schemas the tests read are committed copies (a clone tests on its
# own); this refreshes them, and the contract in docs/, from the API reference checkout.
API_REFERENCE ?= ../shared/altegio-api
FIXTURES := tests/fixtures/altegio_api
fixtures:
	@if [ -d "$(API_REFERENCE)/examples" ] && [ -d "$(API_REFERENCE)/schemas" ]; then \
		rm -rf $(FIXTURES)/examples $(FIXTURES)/schemas; \
		cp -R "$(API_REFERENCE)/examples" "$(API_REFERENCE)/schemas" $(FIXTURES)/; \
		cp "$(API_REFERENCE)/CONTRACT.md" docs/altegio_api_contract.md; \
		echo "fixtures refreshed from $(API_REFERENCE) (git diff shows what changed)"; \
	else \
		echo "$(API_REFERENCE) not found: fixtures left as committed (make fixtures API_REFERENCE=DIR)"; \
	fi

clean:
	rm -rf $(VENV) $(BOOT) .pytest_cache .mypy_cache .ruff_cache
