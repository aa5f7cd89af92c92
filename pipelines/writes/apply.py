"""Running a batch of planned writes through the journal, exactly once each.

`run_batch` is the one loop both the catalog apply and the bulk membership operations use:
for each step, in order, it skips what the journal says is done, resolves a step left
"sent, outcome unknown" by a read-back (`verify`), writes the intent, performs the step,
writes the outcome. The first refusal stops the batch with the API's message; the steps
after it stay planned, so rerunning the same command resumes there.

Progress is a rich progress bar on a terminal (long applies run at the shared rate budget,
3 requests per second by default: a 500-step apply takes minutes).
"""

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from pipelines.altegio.http import ApiError
from pipelines.altegio.write_bodies import InvalidRequest
from pipelines.altegio.writer import Written
from pipelines.writes.journal import Batch, Journal, Step

log = logging.getLogger(__name__)

Perform = Callable[[Step], Written]
# A read-back of a step whose outcome is unknown: the record showing it took effect, or None.
Verify = Callable[[Step], dict[str, Any] | None]


@dataclass
class BatchResult:
    """What one run of a batch did."""

    batch: Batch
    resumed: bool
    applied: list[Step] = field(default_factory=list)
    read_back: list[Step] = field(default_factory=list)  # resolved without sending again
    already_done: list[Step] = field(default_factory=list)  # done by an earlier run
    refused: Step | None = None
    message: str = ""
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # step key -> object after

    @property
    def ok(self) -> bool:
        return self.refused is None

    def counts(self) -> dict[str, int]:
        return {
            "applied": len(self.applied),
            "read_back": len(self.read_back),
            "already_done": len(self.already_done),
            "refused": int(self.refused is not None),
            "planned": len(self.batch.steps),
        }


def open_batch(
    journal: Journal, command: Mapping[str, Any], plan: Callable[[], Sequence[Step]]
) -> tuple[Batch, bool]:
    """The unfinished batch of this same command (resumed from its stored plan), else a new
    batch planned now. Returns (batch, resumed)."""
    unfinished = journal.unfinished(command)
    if unfinished is not None:
        return unfinished, True
    return journal.start(command, plan()), False


def run_batch(
    journal: Journal,
    batch: Batch,
    perform: Perform,
    verify: Verify,
    *,
    resumed: bool = False,
    progress: bool | None = None,
) -> BatchResult:
    """Run every step of `batch` not done yet; stop at the first refusal."""
    result = BatchResult(batch, resumed)
    with _progress_bar(len(batch.steps), progress) as bar:
        for step in batch.steps:
            bar.advance()
            if batch.done(step.key):
                result.already_done.append(step)
                continue
            if batch.unresolved(step.key):
                found = verify(step)
                if found is not None:
                    log.info(
                        "%s: sent by an interrupted run; a read-back shows it applied", step.key
                    )
                    journal.outcome(batch, step, "read_back", answer=found)
                    result.read_back.append(step)
                    result.records[step.key] = found
                    continue
                log.info(
                    "%s: sent by an interrupted run; a read-back shows it did not apply", step.key
                )
            journal.intent(batch, step)
            try:
                written = perform(step)
            except (ApiError, InvalidRequest) as exc:
                status = "refused" if _is_refusal(exc) else "failed"
                journal.outcome(batch, step, status, message=str(exc))
                result.refused, result.message = step, str(exc)
                break
            journal.outcome(
                batch, step, "read_back" if written.read_back else "applied", answer=written.record
            )
            result.applied.append(step)
            if written.record is not None:
                result.records[step.key] = written.record
    if result.ok:
        journal.end(batch, result.counts())
    return result


def _is_refusal(exc: Exception) -> bool:
    if isinstance(exc, InvalidRequest):
        return True
    status = getattr(exc, "status", None)
    return isinstance(status, int) and 400 <= status < 500


class _Bar:
    """Advances a rich task, or does nothing when no bar is shown."""

    def __init__(self, progress: Progress | None, total: int) -> None:
        self._progress = progress
        self._task = progress.add_task("applying", total=total) if progress else None

    def advance(self) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task)


@contextlib.contextmanager
def _progress_bar(total: int, enabled: bool | None) -> Iterator[_Bar]:
    """A progress bar on stderr; by default only when stderr is a terminal."""
    console = Console(stderr=True)
    show = console.is_terminal if enabled is None else enabled
    if not (show and total):
        yield _Bar(None, total)
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeRemainingColumn(), console=console) as progress:
        yield _Bar(progress, total)
