"""The write commands of `altegio-loyalty`: `memberships ...` and `catalog ...`.

Registered from `assets.cli`; configured by the same environment as `load` (README). Every
write command is a dry run unless told otherwise (`--apply`, `catalog apply`), journals every
operation under the data directory, re-reads what it changed and republishes the warehouse.

Exit status: 0 done (or nothing to do); 1 an apply stopped at a refusal or an API error;
2 bad configuration or arguments. `catalog plan --detailed-exitcode`: 0 no change, 2 changes
planned, 1 error (as Terraform).
"""

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from assets.resources import StorageResource, build_resources
from pipelines.altegio.client import AltegioClient, Chain
from pipelines.altegio.http import ApiError, AuthError, ConfigurationError
from pipelines.altegio.write_bodies import UNIT_IDS, InvalidRequest
from pipelines.altegio.writer import Writer
from pipelines.writes import memberships as bulk
from pipelines.writes.journal import Journal
from pipelines.writes.refresh import refresh_memberships, republish

log = logging.getLogger(__name__)

COMMANDS = ("memberships", "catalog")


@dataclass
class WriteContext:
    """What a write command works with: the client, its writer, the data directory."""

    client: AltegioClient
    writer: Writer
    storage: StorageResource
    journal: Journal

    def chain(self, chain_id: int) -> Chain:
        return self.client.list_chains([chain_id])[0]


@contextlib.contextmanager
def write_context(data_dir: str | None) -> Iterator[WriteContext]:
    storage_overrides: dict[str, Any] = {"data_dir": data_dir} if data_dir else {}
    resources = build_resources(storage=storage_overrides)
    storage = resources["storage"].process_config_and_initialize()
    altegio = resources["altegio"].process_config_and_initialize()
    assert isinstance(storage, StorageResource)
    storage.guard_source(altegio.source_identity())
    with altegio.open_client(storage.budget_dir) as client:
        yield WriteContext(client, Writer(client), storage, Journal(storage.root))


# ---------------------------------------------------------------- arguments


def _ids(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--ids takes a comma list of integers, got {text!r}"
        ) from None


def register(commands: Any) -> None:
    """Add the `memberships` and `catalog` commands to the top-level subparsers."""
    members = commands.add_parser("memberships", help="bulk operations on sold memberships")
    verbs = members.add_subparsers(dest="verb", required=True)
    for change in bulk.Change:
        verb = verbs.add_parser(
            change.value, help=f"{change.value} memberships (dry run unless --apply)"
        )
        verb.add_argument("--chain", type=int, required=True, help="chain id")
        targets = verb.add_mutually_exclusive_group(required=True)
        targets.add_argument("--ids", type=_ids, help="membership ids, comma separated")
        targets.add_argument(
            "--query", help="SQL over the warehouse (read-only); its first column is the id"
        )
        if change is bulk.Change.FREEZE:
            verb.add_argument("--till", type=date.fromisoformat, required=True, help="YYYY-MM-DD")
            verb.add_argument(
                "--today",
                type=date.fromisoformat,
                help="the day the freeze counts from (default: today in the chain's zone)",
            )
        if change is bulk.Change.EXTEND:
            verb.add_argument("--period", type=int, required=True, help="how many units")
            verb.add_argument("--unit", choices=sorted(UNIT_IDS), required=True)
            verb.add_argument(
                "--again",
                action="store_true",
                help="extend even if this same command already ran to the end",
            )
        if change is bulk.Change.SET_BALANCE:
            verb.add_argument("--visits", type=int, required=True, help="new visit count")
        verb.add_argument("--apply", action="store_true", help="send the changes")
        verb.add_argument("--data-dir", help="default: $ALTEGIO_DATA_DIR or ./data")
    from assets import cli_catalog

    cli_catalog.register(commands)


def run(args: argparse.Namespace) -> int:
    try:
        if args.command == "memberships":
            return run_memberships(args)
        from assets import cli_catalog

        return cli_catalog.run(args)
    except (ConfigurationError, AuthError, InvalidRequest, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


# ---------------------------------------------------------------- memberships


def _bulk_change(args: argparse.Namespace) -> bulk.BulkChange:
    change = bulk.Change(args.verb)
    return bulk.BulkChange(
        change,
        till=getattr(args, "till", None),
        period=getattr(args, "period", None),
        unit=UNIT_IDS[args.unit] if getattr(args, "unit", None) else None,
        visits=getattr(args, "visits", None),
    )


def run_memberships(args: argparse.Namespace, out: Any = None) -> int:
    out = out or sys.stdout
    change = _bulk_change(args)
    with write_context(args.data_dir) as ctx:
        ids = args.ids if args.ids is not None else bulk.select_ids(ctx.storage.root, args.query)
        chain = ctx.chain(args.chain)
        plan = bulk.plan_bulk(
            ctx.writer,
            chain,
            change,
            ids,
            today=getattr(args, "today", None),
            journal=ctx.journal,
            again=getattr(args, "again", False),
            query=args.query,
        )
        print_plan(plan, out)
        if not args.apply:
            print("Dry run: nothing was sent. Add --apply to apply.", file=out)
            return 0
        result = bulk.apply_bulk(ctx.writer, ctx.journal, plan)
        return finish_bulk(ctx, result, out)


def print_plan(plan: bulk.BulkPlan, out: Any) -> None:
    print(
        f"memberships {plan.change.describe()} on chain {plan.chain.id}: "
        f"{len(plan.targets)} target(s)",
        file=out,
    )
    if plan.finished_batch is not None:
        print(
            f"  this same command already ran to the end (journal batch {plan.finished_batch}); "
            "nothing to do",
            file=out,
        )
        return
    for target in plan.targets:
        print(
            f"  {target.membership_id:>8}  {target.action:<8} {target.current}"
            f"  ->  {target.detail}",
            file=out,
        )
    counts = plan.counts()
    print(
        f"{counts['change']} to change, {counts['skip']} already so, {counts['blocked']} "
        f"blocked by their type's rules, {counts['missing']} not found",
        file=out,
    )


def finish_bulk(ctx: WriteContext, result: bulk.BulkResult, out: Any) -> int:
    batch = result.batch
    if batch is None:
        print("Nothing to apply.", file=out)
        return 0
    counts = batch.counts()
    if batch.resumed:
        print(f"Resumed the interrupted batch {batch.batch.batch_id}.", file=out)
    print(
        f"Applied {counts['applied']}, resolved by read-back {counts['read_back']}, "
        f"done by an earlier run {counts['already_done']} (journal batch "
        f"{batch.batch.batch_id}, {ctx.journal.path})",
        file=out,
    )
    chain = result.plan.chain
    lake = ctx.storage.lake()
    rows = refresh_memberships(lake, chain, result.records, ctx.storage.personal_key())
    published = republish(lake, ctx.storage.warehouse(), ctx.journal)
    print(
        f"Re-read {rows} membership(s) into the lake; warehouse republished ({published.path}).",
        file=out,
    )
    if not batch.ok:
        assert batch.refused is not None
        print(f"STOPPED at {batch.refused.key}: {batch.message}", file=out)
        print("Fix the cause and run the same command again to resume.", file=out)
        return 1
    if result.unconfirmed:
        keys = ", ".join(s.key for s in result.unconfirmed)
        print(
            f"NOT CONFIRMED: the API answered success but a re-read shows no change: {keys}",
            file=out,
        )
        return 1
    return 0
