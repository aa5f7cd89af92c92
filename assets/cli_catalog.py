"""`altegio-loyalty catalog export|plan|apply`: the loyalty catalogue as a YAML file.

    export --chain C [--out FILE]               the chain's catalogue as YAML (stdout by default)
    plan   --chain C FILE [--prune] [--detailed-exitcode]
    apply  --chain C FILE [--prune] [--yes]

`plan --detailed-exitcode` exits as Terraform does: 0 nothing to change, 2 changes planned,
1 error. `apply` shows the plan, asks unless `--yes`, runs it in a safe order, stops at the
first refusal with the API's message, prints what it did, re-reads the chain's catalogue into
the lake and republishes the warehouse.
"""

import argparse
import sys
from pathlib import Path
from typing import Any

from assets.cli_writes import WriteContext, write_context
from pipelines.writes import catalog
from pipelines.writes.refresh import refresh_catalog, republish


def register(commands: Any) -> None:
    parser = commands.add_parser("catalog", help="the loyalty catalogue as a YAML file")
    verbs = parser.add_subparsers(dest="verb", required=True)
    export = verbs.add_parser("export", help="write a chain's catalogue as YAML")
    export.add_argument("--out", type=Path, help="file to write (default: stdout)")
    plan = verbs.add_parser("plan", help="show what applying FILE to the chain would change")
    plan.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 0 when nothing changes, 2 when changes are planned, 1 on error",
    )
    apply = verbs.add_parser("apply", help="apply FILE to the chain")
    apply.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    for verb in (plan, apply):
        verb.add_argument("file", type=Path)
        verb.add_argument(
            "--prune", action="store_true", help="delete entities of the chain the file omits"
        )
    for verb in (export, plan, apply):
        verb.add_argument("--chain", type=int, required=True, help="chain id")
        verb.add_argument("--data-dir", help="default: $ALTEGIO_DATA_DIR or ./data")


def run(args: argparse.Namespace, out: Any = None) -> int:
    out = out or sys.stdout
    try:
        document = catalog.load(args.file) if args.verb != "export" else None
        with write_context(args.data_dir) as ctx:
            chain = ctx.chain(args.chain)
            if document is None:
                return _export(ctx, chain, args.out, out)
            plan = catalog.plan_catalog(ctx.writer, chain, document, prune=args.prune)
            _print_plan(plan, args.file, out)
            if args.verb == "plan":
                if plan.problems:
                    return 1
                return 2 if plan.changes and args.detailed_exitcode else 0
            return _apply(ctx, plan, document, args.yes, out)
    except catalog.CatalogError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _export(ctx: WriteContext, chain: Any, path: Path | None, out: Any) -> int:
    text = catalog.dump(catalog.export_document(catalog.read_live(ctx.writer, chain)))
    if path is None:
        out.write(text)
    else:
        path.write_text(text)
        print(f"Wrote the catalogue of chain {chain.id} to {path}", file=sys.stderr)
    return 0


def _print_plan(plan: catalog.Plan, path: Path, out: Any) -> None:
    print(f"Plan: {path} against chain {plan.chain.id}", file=out)
    for line in plan.lines():
        print(line, file=out)
    if plan.unmanaged:
        print(
            f"  ({len(plan.unmanaged)} entities of the chain are not in the file and are left "
            "alone; --prune deletes them)",
            file=out,
        )
    verbs = [a.verb for a in plan.actions]
    summary = ", ".join(f"{verbs.count(v)} to {v}" for v in catalog.ACTION_ORDER if v in verbs)
    print(summary or "No changes: the chain matches the file.", file=out)


def _apply(
    ctx: WriteContext, plan: catalog.Plan, document: dict[str, Any], yes: bool, out: Any
) -> int:
    if plan.problems:
        print("Not applied: fix the problems marked ! first.", file=out)
        return 1
    if not plan.actions:
        return 0
    if not yes:
        if not sys.stdin.isatty():
            print("Not applied: add --yes to apply without a terminal to confirm on.", file=out)
            return 1
        if input(f"Apply {len(plan.actions)} change(s)? [y/N] ").strip().lower() != "y":
            print("Not applied.", file=out)
            return 1
    result = catalog.apply_plan(ctx.writer, ctx.journal, plan, document)
    assert result is not None
    for step in result.applied:
        record = result.records.get(step.key) or {}
        suffix = (
            f" -> id {record['id']}" if step.key.startswith("create:") and "id" in record else ""
        )
        print(f"  done: {step.description}{suffix}", file=out)
    lake = ctx.storage.lake()
    refresh_catalog(ctx.client, lake, plan.chain, ctx.storage.personal_key())
    published = republish(lake, ctx.storage.warehouse(), ctx.journal)
    print(
        f"Applied {len(result.applied)} of {len(plan.actions)} (journal batch "
        f"{result.batch.batch_id}); warehouse republished ({published.path}).",
        file=out,
    )
    if not result.ok:
        assert result.refused is not None
        print(f"STOPPED at {result.refused.description}: {result.message}", file=out)
        return 1
    return 0
