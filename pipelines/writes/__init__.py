"""Writes to the API, used safely: the operations journal, bulk membership operations, the
catalogue as code, and the re-read that puts what changed into the lake.

From a notebook (the same functions the `memberships` and `catalog` commands run):

    from assets.cli_writes import write_context        # the environment's configuration
    from pipelines.writes import memberships as bulk

    with write_context("data") as ctx:
        chain = ctx.chain(607823)
        ids = bulk.select_ids(ctx.storage.root, "SELECT id FROM altegio.memberships WHERE ...")
        change = bulk.BulkChange(bulk.Change.EXTEND, period=2, unit=2)   # two weeks
        plan = bulk.plan_bulk(ctx.writer, chain, change, ids, journal=ctx.journal)
        result = bulk.apply_bulk(ctx.writer, ctx.journal, plan)          # progress bar

`Writer(AltegioClient(settings))` alone gives every write verb without the journal.
"""
