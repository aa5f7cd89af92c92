"""The operations journal: every write the project makes, before and after, on disk.

`<data-dir>/operations_journal.jsonl`, one JSON object per line, appended and fsynced one
record at a time (under an `flock`, so two processes never interleave a line):

    batch    one apply: its command, who ran it, and every planned step with its request
    intent   a step is about to be sent (written *before* the request)
    outcome  what happened to it: applied | read_back | skipped | refused | failed
    end      the batch finished (every step has an outcome, or it stopped at a refusal)

A process killed at any point leaves a prefix of this. A rerun of the same command finds its
unfinished batch (`Journal.unfinished`) and resumes it from the stored plan: steps with an
outcome are not sent again, and a step with an intent but no outcome is resolved by a
read-back (the caller's `verify`), never by a blind resend. A torn last line (killed
mid-write) is ignored. No secret is ever in a record: requests are write bodies (no headers),
and keys that name a secret are masked anyway.

`journal_table` turns the file into the warehouse table `altegio.operations_journal`, one
row per step, so an analyst can query who changed what, when.
"""

import contextlib
import fcntl
import getpass
import hashlib
import logging
import os
import socket
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

log = logging.getLogger(__name__)

JOURNAL_FILE = "operations_journal.jsonl"
# Outcomes after which a step is never sent again.
DONE = frozenset({"applied", "read_back", "skipped"})
SECRET_WORDS = ("token", "password", "secret", "authorization")
MASK = "***"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def redact(value: Any) -> Any:
    """`value` with every mapping entry whose key names a secret masked (at any depth)."""
    if isinstance(value, Mapping):
        return {
            str(k): MASK if any(w in str(k).lower() for w in SECRET_WORDS) else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def signature(command: Mapping[str, Any]) -> str:
    """A stable digest of a command (operation, chain, parameters, targets): a rerun of the
    same command has the same signature and resumes its unfinished batch."""
    return hashlib.sha256(orjson.dumps(command, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


@dataclass(frozen=True)
class Step:
    """One planned write: a stable key within its batch, the operation, its target, the body."""

    key: str
    operation: str
    chain_id: int
    target: dict[str, Any]
    request: dict[str, Any]
    description: str = ""

    def record(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "operation": self.operation,
            "chain_id": self.chain_id,
            "target": self.target,
            "request": redact(self.request),
            "description": self.description,
        }

    @classmethod
    def from_record(cls, raw: Mapping[str, Any]) -> "Step":
        return cls(
            key=raw["key"],
            operation=raw["operation"],
            chain_id=int(raw["chain_id"]),
            target=dict(raw["target"]),
            request=dict(raw["request"]),
            description=raw.get("description", ""),
        )


@dataclass
class Batch:
    """One apply as the journal knows it: the plan and what happened to each step."""

    batch_id: str
    signature: str
    command: dict[str, Any]
    steps: list[Step]
    intents: set[str] = field(default_factory=set)
    outcomes: dict[str, str] = field(default_factory=dict)
    ended: bool = False

    def done(self, key: str) -> bool:
        return self.outcomes.get(key) in DONE

    def unresolved(self, key: str) -> bool:
        """Sent (or about to be) when the process stopped: the outcome is unknown."""
        return key in self.intents and key not in self.outcomes


class Journal:
    """The append-only JSONL journal of one data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / JOURNAL_FILE

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r})"

    # -- writing

    def append(self, record: Mapping[str, Any]) -> None:
        """Append one record and fsync it before returning."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = orjson.dumps(redact(record)) + b"\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def start(self, command: Mapping[str, Any], steps: Sequence[Step]) -> Batch:
        """A new batch for `command` with its planned steps, recorded before any is sent."""
        batch = Batch(
            batch_id=f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}",
            signature=signature(command),
            command=dict(command),
            steps=list(steps),
        )
        self.append(
            {
                "type": "batch",
                "batch_id": batch.batch_id,
                "signature": batch.signature,
                "command": batch.command,
                "actor": actor(),
                "steps": [s.record() for s in steps],
                "at": _now(),
            }
        )
        return batch

    def intent(self, batch: Batch, step: Step) -> None:
        self.append({"type": "intent", "batch_id": batch.batch_id, **step.record(), "at": _now()})
        batch.intents.add(step.key)

    def outcome(
        self,
        batch: Batch,
        step: Step,
        status: str,
        *,
        answer: Any = None,
        message: str = "",
    ) -> None:
        self.append(
            {
                "type": "outcome",
                "batch_id": batch.batch_id,
                "key": step.key,
                "status": status,
                "answer": answer,
                "message": message,
                "at": _now(),
            }
        )
        batch.outcomes[step.key] = status

    def end(self, batch: Batch, summary: Mapping[str, int]) -> None:
        self.append(
            {"type": "end", "batch_id": batch.batch_id, "summary": dict(summary), "at": _now()}
        )
        batch.ended = True

    # -- reading

    def records(self) -> Iterator[dict[str, Any]]:
        """Every complete record in order (a torn last line, from a kill mid-write, is
        skipped)."""
        if not self.path.exists():
            return
        with self.path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError:
                    log.warning("%s: line %d is not a complete record; ignored", self.path, number)
                    continue
                if isinstance(record, dict):
                    yield record

    def batches(self) -> list[Batch]:
        found: dict[str, Batch] = {}
        for record in self.records():
            kind, batch_id = record.get("type"), record.get("batch_id", "")
            if kind == "batch":
                found[batch_id] = Batch(
                    batch_id,
                    record["signature"],
                    record["command"],
                    [Step.from_record(s) for s in record["steps"]],
                )
                continue
            batch = found.get(batch_id)
            if batch is None:
                continue
            if kind == "intent":
                batch.intents.add(record["key"])
            elif kind == "outcome":
                batch.outcomes[record["key"]] = record["status"]
            elif kind == "end":
                batch.ended = True
        return list(found.values())

    def unfinished(self, command: Mapping[str, Any]) -> Batch | None:
        """The latest batch of this same command that did not end, if any."""
        wanted = signature(command)
        candidates = [b for b in self.batches() if b.signature == wanted and not b.ended]
        return candidates[-1] if candidates else None


def actor() -> str:
    """Who runs the apply: the OS user at the host (no credential is involved)."""
    with contextlib.suppress(Exception):
        return f"{getpass.getuser()}@{socket.gethostname()}"
    return "unknown"


# ---------------------------------------------------------------- the warehouse table


def _ts(text: str | None) -> datetime | None:
    return None if not text else datetime.fromisoformat(text)


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def journal_rows(journal: Journal) -> list[dict[str, Any]]:
    """One row per planned step of every batch: the plan joined with its intent and outcome."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    batches: dict[str, dict[str, Any]] = {}
    for record in journal.records():
        kind, batch_id = record.get("type"), record.get("batch_id", "")
        if kind == "batch":
            batches[batch_id] = record
            for step in record["steps"]:
                rows[(batch_id, step["key"])] = {
                    "batch_id": batch_id,
                    "step_key": step["key"],
                    "command": record["command"].get("command", ""),
                    "actor": record.get("actor"),
                    "batch_started_at": _ts(record.get("at")),
                    "chain_id": int(step["chain_id"]),
                    "operation": step["operation"],
                    "target_kind": next(iter(step["target"]), None),
                    "target_id": _target_id(step["target"]),
                    "target_title": step["target"].get("title"),
                    "description": step.get("description", ""),
                    "request_json": _json(step["request"]),
                    "sent_at": None,
                    "status": "planned",
                    "message": None,
                    "answer_json": None,
                    "answered_at": None,
                }
            continue
        row = rows.get((batch_id, record.get("key", "")))
        if row is None:
            continue
        if kind == "intent":
            row["sent_at"] = row["sent_at"] or _ts(record.get("at"))
            if row["status"] == "planned":
                row["status"] = "sent, outcome unknown"
        elif kind == "outcome":
            row["status"] = record["status"]
            row["message"] = record.get("message") or None
            row["answer_json"] = _json(record.get("answer"))
            row["answered_at"] = _ts(record.get("at"))
    return list(rows.values())


def _target_id(target: Mapping[str, Any]) -> int | None:
    for key, value in target.items():
        if key.endswith("id") and isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def journal_table(journal: Journal, schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist(journal_rows(journal), schema=schema)
