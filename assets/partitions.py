"""Partitions of the Dagster assets (module constants, per house style)."""

import dagster as dg

# Loyalty transactions carry no timestamp: each is fetched in a one-calendar-day window and
# belongs to that day. Memberships use the same days for their creation date. The start is a
# constant (partitions must not depend on the environment); days before a chain existed are
# simply empty.
PARTITIONS_START = "2020-01-01"
DAILY_PARTITIONS = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START, end_offset=0)

# A backfill of a long range runs as few runs as possible: one run per this many days (each
# run pages through every chain for all its days, sharing one rate budget), not one per day.
MAX_DAYS_PER_RUN = 92
DAILY_BACKFILL_POLICY = dg.BackfillPolicy.multi_run(max_partitions_per_run=MAX_DAYS_PER_RUN)
