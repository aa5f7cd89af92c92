"""The jobs and their schedules (module constants, per house style).

- nightly_load: every asset for yesterday plus the lookback window; sold memberships whose
  status is not final are re-read by id (refresh mode active).
- full_membership_refresh: the memberships of yesterday, then every stored membership re-read
  by id (refresh mode all), then the publish; weekly.
- deep_lookback: loyalty transactions of the last ALTEGIO_DEEP_LOOKBACK_DAYS days replaced
  (late corrections), then the publish; weekly.
Every schedule is stopped until switched on.
"""

from collections.abc import Iterator
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

from assets.altegio import REFRESH_TAG, asset_key
from assets.resources import StorageResource, schedule_cron
from pipelines.altegio.sources import SOURCES
from pipelines.refresh import RefreshMode, refreshed_sources

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


def _family(names: list[str]) -> dg.AssetSelection:
    keys = [asset_key(t) for name in names for t in SOURCES[name].family]
    return dg.AssetSelection.assets(*keys) | dg.AssetSelection.groups("marts")


FULL_REFRESH_JOB = dg.define_asset_job(
    "full_membership_refresh",
    selection=_family([s.name for s in refreshed_sources()]),
    description="Re-read every stored membership by id (the nightly re-reads only those whose "
    "status is not final), then publish.",
    tags={REFRESH_TAG: RefreshMode.ALL.value},
)
DEEP_LOOKBACK_JOB = dg.define_asset_job(
    "deep_lookback",
    selection=_family(["loyalty_transactions"]),
    description="Replace the loyalty transactions of the deep lookback window (late "
    "corrections), then publish.",
)


@dg.schedule(
    name="full_membership_refresh_schedule",
    cron_schedule=schedule_cron("ALTEGIO_FULL_REFRESH_CRON"),
    execution_timezone="UTC",
    job=FULL_REFRESH_JOB,
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
def full_membership_refresh_schedule(
    context: dg.ScheduleEvaluationContext, storage: StorageResource
) -> Iterator[dg.RunRequest]:
    """Yesterday's memberships, then every stored one re-read."""
    today = context.scheduled_execution_time.astimezone(ZoneInfo(storage.timezone)).date()
    _, end = nightly_window(today, 0)
    yield dg.RunRequest(
        run_key=f"full-refresh-{end.isoformat()}",
        tags={
            RANGE_START_TAG: end.isoformat(),
            RANGE_END_TAG: end.isoformat(),
            REFRESH_TAG: RefreshMode.ALL.value,
        },
    )


@dg.schedule(
    name="deep_lookback_schedule",
    cron_schedule=schedule_cron("ALTEGIO_DEEP_LOOKBACK_CRON"),
    execution_timezone="UTC",
    job=DEEP_LOOKBACK_JOB,
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
def deep_lookback_schedule(
    context: dg.ScheduleEvaluationContext, storage: StorageResource
) -> Iterator[dg.RunRequest]:
    """Yesterday and the ALTEGIO_DEEP_LOOKBACK_DAYS days before it."""
    today = context.scheduled_execution_time.astimezone(ZoneInfo(storage.timezone)).date()
    start, end = nightly_window(today, storage.deep_lookback())
    yield dg.RunRequest(
        run_key=f"deep-lookback-{end.isoformat()}",
        tags={RANGE_START_TAG: start.isoformat(), RANGE_END_TAG: end.isoformat()},
    )
