"""Run the nightly job over a range on the instance of DAGSTER_HOME, or re-execute a failed run
from failure, as an operator's "Re-execute from failure" would; prints the run as JSON.

    python -m cluster.launch run --start 2026-01-01 --end 2026-01-31
    python -m cluster.launch retry RUN_ID

The executor is whatever the code location configures (`assets.cluster`: celery when a broker
is set), so the same command is the single-machine load and the cluster load.
"""

import argparse
import json
import sys
import time
from collections.abc import Mapping, Sequence

import dagster as dg
from dagster._core.definitions.reconstruct import ReconstructableJob, ReconstructableRepository

from assets.schedules import NIGHTLY_JOB, RANGE_END_TAG, RANGE_START_TAG


def nightly_job() -> ReconstructableJob:
    """The nightly job, reconstructable by every worker from the code location's module."""
    repository = ReconstructableRepository.for_module("assets.definitions", "defs")
    return repository.get_reconstructable_job(NIGHTLY_JOB.name)


# Dagster's own tags a re-execution keeps, as the UI's "Re-execute from failure" does: which
# partitions the run covers. Lineage tags (parent, root) are set anew for the new run.
PARTITION_TAGS = ("dagster/partition", RANGE_START_TAG, RANGE_END_TAG)


def carried_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The parent run's tags the re-execution must carry: its partitions and every tag that
    is not Dagster's own (the refresh mode, say)."""
    return {k: v for k, v in tags.items() if k in PARTITION_TAGS or not k.startswith("dagster/")}


def _error_text(event: dg.DagsterEvent) -> str:
    """The first line of an event's error, if it carries one."""
    error = getattr(event.event_specific_data, "error", None)
    text = error.to_string() if error is not None else ""
    if not text and event.event_type_value == "RUN_FAILURE":
        text = event.message or ""
    return " ".join(text.split())[:400]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cluster.launch")
    verbs = parser.add_subparsers(dest="verb", required=True)
    run = verbs.add_parser("run")
    run.add_argument("--start", required=True)
    run.add_argument("--end", required=True)
    retry = verbs.add_parser("retry")
    retry.add_argument("run_id")
    args = parser.parse_args(argv)
    started = time.monotonic()
    with dg.DagsterInstance.get() as instance:
        if args.verb == "run":
            result = dg.execute_job(
                nightly_job(),
                instance,
                tags={RANGE_START_TAG: args.start, RANGE_END_TAG: args.end},
            )
        else:
            parent = instance.get_run_by_id(args.run_id)
            if parent is None:
                parser.error(f"no run {args.run_id} in this instance")
            result = dg.execute_job(
                nightly_job(),
                instance,
                tags=carried_tags(parent.tags),
                reexecution_options=dg.ReexecutionOptions.from_failure(args.run_id, instance),
            )
        run_record = instance.get_run_by_id(result.run_id)
    status = run_record.status.value if run_record is not None else "UNKNOWN"
    failures = [
        f"{event.step_key or 'run'}: {_error_text(event)}"
        for event in result.all_events
        if event.event_type_value in ("STEP_FAILURE", "RUN_FAILURE", "ENGINE_EVENT")
        and _error_text(event)
    ]
    print(
        json.dumps(
            {
                "run_id": result.run_id,
                "status": status,
                "success": result.success,
                "seconds": round(time.monotonic() - started, 1),
                "failures": failures,
            }
        ),
        flush=True,
    )
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main())
