"""Bulk operations on sold memberships: freeze, unfreeze, extend, set the balance.

A bulk operation is planned first, from a fresh read of every target by id (never from the
warehouse, which may be a day old): each target is either changed, skipped (already in the
wanted state), or blocked by its type's rules (freezing not allowed, beyond `freeze_limit`,
balance edits not allowed) before anything is sent. Applying runs the planned steps through
the journal (`pipelines.writes.apply`), so an interrupted apply resumes without sending any
step twice, and the same command run again after it finished does nothing (an extension is
relative: run with `again=True` to extend once more).

Targets come as ids, or from SQL over the warehouse (`select_ids`, read-only).
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb

from pipelines.altegio.client import Chain
from pipelines.altegio.write_bodies import (
    TIME_UNITS,
    Freeze,
    InvalidRequest,
    SetBalance,
    SetPeriod,
)
from pipelines.altegio.writer import Writer, Written
from pipelines.storage.warehouse import WAREHOUSE_FILE
from pipelines.writes.apply import BatchResult, open_batch, run_batch
from pipelines.writes.journal import Journal, Step, signature

# E1 unit -> days, to compare a freeze with the type's freeze_limit and to add an extension
# in another unit than the membership's own. Months and years as the backend is documented
# to count them is not stated; 30 and 365 are the usual reading.
UNIT_DAYS = {1: 1, 2: 7, 3: 30, 4: 365}
LIVE_STATUSES = {1: "created", 2: "active"}  # E4: the statuses a freeze applies to


class Change(StrEnum):
    FREEZE = "freeze"
    UNFREEZE = "unfreeze"
    EXTEND = "extend"
    SET_BALANCE = "set-balance"

    @property
    def operation(self) -> str:
        return {
            Change.FREEZE: "membership_freeze",
            Change.UNFREEZE: "membership_unfreeze",
            Change.EXTEND: "membership_set_period",
            Change.SET_BALANCE: "membership_set_balance",
        }[self]


@dataclass(frozen=True)
class BulkChange:
    """One change for many memberships, with the parameters it needs."""

    change: Change
    till: date | None = None  # freeze
    period: int | None = None  # extend: by this many units
    unit: int | None = None  # extend: E1 unit id
    visits: int | None = None  # set-balance

    def __post_init__(self) -> None:
        required: dict[Change, dict[str, object]] = {
            Change.FREEZE: {"till": self.till},
            Change.EXTEND: {"period": self.period, "unit": self.unit},
            Change.SET_BALANCE: {"visits": self.visits},
        }
        needs = required.get(self.change, {})
        missing = {f"--{k}": ["required"] for k, v in needs.items() if v is None}
        if self.change is Change.EXTEND and self.unit is not None and self.unit not in TIME_UNITS:
            missing["--unit"] = ["day, week, month or year"]
        if self.change is Change.EXTEND and self.period is not None and self.period < 1:
            missing["--period"] = ["1 or more"]
        if self.change is Change.SET_BALANCE and self.visits is not None and self.visits < 0:
            missing["--visits"] = ["0 or more"]
        if missing:
            raise InvalidRequest(f"memberships {self.change}", missing)

    def describe(self) -> str:
        if self.change is Change.FREEZE:
            return f"freeze till {self.till}"
        if self.change is Change.EXTEND:
            return f"extend by {self.period} {TIME_UNITS[self.unit or 1]}(s)"
        if self.change is Change.SET_BALANCE:
            return f"set the balance to {self.visits} visit(s)"
        return "unfreeze"

    def params(self) -> dict[str, Any]:
        return {
            "till": None if self.till is None else self.till.isoformat(),
            "period": self.period,
            "unit": self.unit,
            "visits": self.visits,
        }


@dataclass
class TargetPlan:
    """One target of a bulk change: what it is now and what happens to it."""

    membership_id: int
    current: str
    action: str  # change | skip | blocked | missing
    detail: str
    step: Step | None = None


@dataclass
class BulkPlan:
    chain: Chain
    change: BulkChange
    targets: list[TargetPlan]
    # The SQL the targets came from (None: given as ids): part of what "the same command" is.
    query: str | None = None
    # Set when this exact command already ran to the end (nothing is planned then).
    finished_batch: str | None = None

    @property
    def steps(self) -> list[Step]:
        return [t.step for t in self.targets if t.step is not None]

    def command(self) -> dict[str, Any]:
        return bulk_command(
            self.chain.id, self.change, [t.membership_id for t in self.targets], self.query
        )

    def counts(self) -> dict[str, int]:
        counts = {"change": 0, "skip": 0, "blocked": 0, "missing": 0}
        for target in self.targets:
            counts[target.action] += 1
        return counts


def bulk_command(
    chain_id: int, change: BulkChange, ids: Iterable[int], query: str | None = None
) -> dict[str, Any]:
    """What identifies a bulk command: operation, chain, parameters, and the targets as the
    user gave them (the SQL text, else the ids). The same query run again after its batch
    finished is the same command, even though the rows it selects changed with the writes."""
    selection: dict[str, Any] = {"query": query} if query else {"ids": sorted(set(ids))}
    return {
        "command": f"memberships {change.change}",
        "chain_id": chain_id,
        **change.params(),
        **selection,
    }


# ---------------------------------------------------------------- targets


def select_ids(data_dir: Path, sql: str) -> list[int]:
    """Membership ids from SQL over the published warehouse, read-only (a query that tries
    to write fails). The first column of the result is the id."""
    path = Path(data_dir) / WAREHOUSE_FILE
    if not path.exists():
        raise FileNotFoundError(f"no warehouse at {path}: run a load first")
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute(sql).fetchall()
    ids: list[int] = []
    for row in rows:
        if not row or row[0] is None:
            continue
        ids.append(int(row[0]))
    return list(dict.fromkeys(ids))


def state_of(record: dict[str, Any]) -> str:
    """A membership's state in one line (status, freezing, validity, balance)."""
    status = (record.get("status") or {}).get("title") or (record.get("status") or {}).get("id")
    frozen = f"frozen {record.get('freeze_period', 0)}d" if record.get("is_frozen") else "unfrozen"
    unit = TIME_UNITS.get(int(record.get("period_unit_id") or 0), "-")
    expires = (record.get("expiration_date") or "no expiry")[:10]
    return (
        f"{status}, {frozen}, period {record.get('period')} {unit} (expires {expires}), "
        f"balance {_balance_text(record)}"
    )


def _balance_text(record: dict[str, Any]) -> str:
    if record.get("is_united_balance"):
        if record.get("is_united_balance_unlimited"):
            return "unlimited"
        return f"{record.get('united_balance_services_count')} shared"
    counts = [int(lnk.get("count") or 0) for lnk in _links(record)]
    return "/".join(map(str, counts)) or "none"


def _links(record: dict[str, Any]) -> list[dict[str, Any]]:
    return list((record.get("balance_container") or {}).get("links") or [])


def chain_today(chain: Chain) -> date:
    return datetime.now(ZoneInfo(chain.timezone)).date()


def plan_bulk(
    writer: Writer,
    chain: Chain,
    change: BulkChange,
    ids: Sequence[int],
    *,
    today: date | None = None,
    journal: Journal | None = None,
    again: bool = False,
    query: str | None = None,
) -> BulkPlan:
    """Read every target and decide its fate; nothing is written. `today` is the day a freeze
    counts from (default: today in the chain's time zone); `query` is the SQL the ids came
    from, if any. With `journal`, a command that already ran to the end plans nothing
    (unless `again`)."""
    ids = list(dict.fromkeys(int(i) for i in ids))
    command = bulk_command(chain.id, change, ids, query)
    if journal is not None and not again:
        wanted = signature(command)
        finished = [b for b in journal.batches() if b.signature == wanted and b.ended and b.steps]
        if finished:
            targets = [TargetPlan(i, "", "skip", "done by an earlier run") for i in ids]
            return BulkPlan(chain, change, targets, query, finished[-1].batch_id)
    records = writer.memberships(chain.id, ids)
    day = today or chain_today(chain)
    targets = []
    for membership_id in ids:
        record = records.get(membership_id)
        if record is None:
            targets.append(TargetPlan(membership_id, "not found", "missing", "no such membership"))
            continue
        targets.append(_decide(chain, change, record, day))
    return BulkPlan(chain, change, targets, query)


def _decide(chain: Chain, change: BulkChange, record: dict[str, Any], today: date) -> TargetPlan:
    membership_id = int(record["id"])
    current = state_of(record)

    def step(request: dict[str, Any], detail: str) -> TargetPlan:
        return TargetPlan(
            membership_id,
            current,
            "change",
            detail,
            Step(
                key=f"{change.change.operation}:{membership_id}",
                operation=change.change.operation,
                chain_id=chain.id,
                target={"membership_id": membership_id},
                request=request,
                description=detail,
            ),
        )

    def plan(action: str, detail: str) -> TargetPlan:
        return TargetPlan(membership_id, current, action, detail)

    mtype = record.get("type") or {}
    if change.change is Change.FREEZE:
        assert change.till is not None
        if record.get("is_frozen"):
            return plan("skip", "already frozen")
        if not mtype.get("allow_freeze"):
            return plan("blocked", "its type does not allow freezing")
        status = int((record.get("status") or {}).get("id") or 0)
        if status not in LIVE_STATUSES:
            return plan("blocked", f"status {status} is not created/active")
        days = (change.till - today).days
        if days < 1:
            return plan("blocked", f"--till {change.till} is not after today ({today})")
        limit = int(mtype.get("freeze_limit") or 0) * UNIT_DAYS.get(
            int(mtype.get("freeze_limit_unit_id") or 0), 0
        )
        left = limit - int(record.get("freeze_period") or 0)
        if limit and days > left:
            return plan("blocked", f"{days} days of freezing exceed the {max(left, 0)} left")
        return step(Freeze(change.till, chain.timezone).body(), f"freeze {days} day(s)")
    if change.change is Change.UNFREEZE:
        if not record.get("is_frozen"):
            return plan("skip", "not frozen")
        return step({}, "unfreeze")
    if change.change is Change.EXTEND:
        assert change.period is not None and change.unit is not None
        period, unit = int(record.get("period") or 0), int(record.get("period_unit_id") or 0)
        if unit == change.unit or period == 0:
            new = SetPeriod(period + change.period, change.unit)
        else:
            days = period * UNIT_DAYS.get(unit, 0) + change.period * UNIT_DAYS[change.unit]
            new = SetPeriod(days, 1)
        unit_name = TIME_UNITS[new.unit]
        return step(
            new.body(), f"period {period} {TIME_UNITS.get(unit, '-')} -> {new.period} {unit_name}"
        )
    assert change.visits is not None
    if int(mtype.get("balance_edit_type_id") or 0) == 0:
        return plan("blocked", "its type allows no balance edits (balance_edit_type_id 0)")
    wanted = change.visits
    if record.get("is_united_balance"):
        if record.get("is_united_balance_unlimited"):
            return plan("blocked", "an unlimited balance cannot be changed")
        if int(record.get("united_balance_services_count") or 0) == wanted:
            return plan("skip", f"already {wanted}")
        return step(SetBalance(visits=wanted).body(), f"shared balance -> {wanted}")
    links = _links(record)
    if any(lnk.get("is_unlimited") for lnk in links):
        return plan("blocked", "an unlimited balance cannot be changed")
    if not links:
        return plan("blocked", "no balance to set")
    if all(int(lnk.get("count") or 0) == wanted for lnk in links):
        return plan("skip", f"already {wanted}")
    per = {_link_id(lnk): wanted for lnk in links}
    return step(SetBalance(per_service=per).body(), f"every service balance -> {wanted}")


def _link_id(link: dict[str, Any]) -> int:
    node = link.get("service") if isinstance(link.get("service"), dict) else link.get("category")
    return int((node or {}).get("id") or 0)


# ---------------------------------------------------------------- apply


@dataclass
class BulkResult:
    plan: BulkPlan
    batch: BatchResult | None = None
    # Every target of the batch as re-read after the writes (100 per request).
    records: list[dict[str, Any]] = field(default_factory=list)
    # Steps journalled as done whose membership does not show the change on that re-read.
    unconfirmed: list[Step] = field(default_factory=list)


def _perform(writer: Writer, chain: Chain) -> Any:
    def perform(step: Step) -> Written:
        membership_id = int(step.target["membership_id"])
        body = step.request
        if step.operation == "membership_freeze":
            till = date.fromisoformat(str(body["freeze_till"])[:10])
            request = Freeze(till, chain.timezone)
            return writer.freeze(chain.id, membership_id, request, confirm=False)
        if step.operation == "membership_unfreeze":
            return writer.unfreeze(chain.id, membership_id, confirm=False)
        if step.operation == "membership_set_period":
            period = SetPeriod(int(body["period"]), int(body["period_unit_id"]))
            return writer.set_period(chain.id, membership_id, period, confirm=False)
        balance = _balance_request(body)
        return writer.set_balance(chain.id, membership_id, balance, confirm=False)

    return perform


def _balance_request(body: dict[str, Any]) -> SetBalance:
    if "united_balance_services_count" in body:
        return SetBalance(visits=int(body["united_balance_services_count"]))
    return SetBalance(
        per_service={
            int(i["service_id"]): int(i["balance"]) for i in body["services_balance_count"]
        }
    )


def took_effect(step: Step, record: dict[str, Any]) -> bool:
    """Whether a membership as read shows what `step` asked for (the read-back of a step
    whose answer never came)."""
    body = step.request
    if step.operation == "membership_freeze":
        return bool(record.get("is_frozen"))
    if step.operation == "membership_unfreeze":
        return not record.get("is_frozen")
    if step.operation == "membership_set_period":
        return (record.get("period"), record.get("period_unit_id")) == (
            body["period"],
            body["period_unit_id"],
        )
    if "united_balance_services_count" in body:
        return bool(
            record.get("united_balance_services_count") == body["united_balance_services_count"]
        )
    counts = {_link_id(lnk): int(lnk.get("count") or 0) for lnk in _links(record)}
    return all(counts.get(i["service_id"]) == i["balance"] for i in body["services_balance_count"])


def apply_bulk(
    writer: Writer, journal: Journal, plan: BulkPlan, *, progress: bool | None = None
) -> BulkResult:
    """Run the plan's steps through the journal (resuming this command's unfinished batch,
    whose stored steps win over the fresh plan: an extension is never computed twice)."""
    result = BulkResult(plan)
    if plan.finished_batch is not None:
        return result
    if not plan.steps and journal.unfinished(plan.command()) is None:
        return result
    batch, resumed = open_batch(journal, plan.command(), lambda: plan.steps)
    chain = plan.chain

    def verify(step: Step) -> dict[str, Any] | None:
        record = writer.membership(chain.id, int(step.target["membership_id"]))
        return record if took_effect(step, record) else None

    result.batch = run_batch(
        journal, batch, _perform(writer, chain), verify, resumed=resumed, progress=progress
    )
    # One re-read of every target confirms the writes (answers alone are not trusted, and
    # set_balance answers nothing) and gives the rows the lake is refreshed with.
    after = writer.memberships(chain.id, [int(s.target["membership_id"]) for s in batch.steps])
    result.records = list(after.values())
    result.unconfirmed = [
        s
        for s in batch.steps
        if batch.done(s.key) and not took_effect(s, after.get(int(s.target["membership_id"]), {}))
    ]
    return result
