"""The nightly job and its schedule (module constants, per house style)."""

from collections.abc import Iterator
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from assets.resources import StorageResource

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"

# Every asset: chains first, reference tables, the daily tables, then the warehouse publish.
NIGHTLY_JOB = dg.define_asset_job(
    "nightly_load",
    selection=dg.AssetSelection.groups("altegio", "marts"),
    description="Refresh reference tables, load yesterday plus the lookback window, publish.",
)

# 05:00 UTC: every chain east of UTC-5 has finished yesterday. Days a chain has not finished
# yet in its own time zone are skipped by the load and picked up by the next night's lookback.
NIGHTLY_CRON = "0 5 * * *"


def nightly_window(today: date, lookback_days: int) -> tuple[date, date]:
    """The days one nightly run loads: yesterday and the `lookback_days` before it."""
    end = today - timedelta(days=1)
    return end - timedelta(days=lookback_days), end


@dg.schedule(
    name="nightly_load_schedule",
    cron_schedule=NIGHTLY_CRON,
    execution_timezone="UTC",
    job=NIGHTLY_JOB,
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
def nightly_load_schedule(
    context: dg.ScheduleEvaluationContext, storage: StorageResource
) -> Iterator[dg.RunRequest]:
    """One run per night covering yesterday plus the lookback window (late corrections)."""
    tick = context.scheduled_execution_time
    today = tick.astimezone(ZoneInfo(storage.timezone)).date()
    start, end = nightly_window(today, storage.lookback())
    yield dg.RunRequest(
        run_key=f"nightly-{end.isoformat()}",
        tags={RANGE_START_TAG: start.isoformat(), RANGE_END_TAG: end.isoformat()},
    )
