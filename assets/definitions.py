"""The one Definitions object of the code location (workspace.yaml points here)."""

import warnings
from datetime import timedelta

import dagster as dg

from assets import cluster
from assets.alerts import build_alert_sensors
from assets.altegio import TABLE_ASSETS, warehouse
from assets.resources import build_resources
from assets.schedules import (
    DEEP_LOOKBACK_JOB,
    FULL_REFRESH_JOB,
    NIGHTLY_JOB,
    deep_lookback_schedule,
    full_membership_refresh_schedule,
    nightly_load_schedule,
)

# The nightly load must have refreshed these within a day and a bit (one missed night warns).
# Dagster calls these builders "superseded" by FreshnessPolicy, but a policy is not an asset
# check: the check is what shows up beside the others and in `dagster asset check` output.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.SupersessionWarning)
    FRESHNESS_CHECKS = dg.build_last_update_freshness_checks(
        assets=[
            dg.AssetKey(["altegio", "loyalty_transactions"]),
            dg.AssetKey(["altegio", "chains"]),
        ],
        lower_bound_delta=timedelta(hours=26),
    )
    FRESHNESS_SENSOR = dg.build_sensor_for_freshness_checks(freshness_checks=FRESHNESS_CHECKS)

defs = dg.Definitions(
    assets=[*TABLE_ASSETS, warehouse],
    asset_checks=FRESHNESS_CHECKS,
    jobs=[NIGHTLY_JOB, FULL_REFRESH_JOB, DEEP_LOOKBACK_JOB],
    schedules=[nightly_load_schedule, full_membership_refresh_schedule, deep_lookback_schedule],
    # A failed run, a failed error-severity check and stale data (the freshness checks) alert.
    sensors=[FRESHNESS_SENSOR, *build_alert_sensors(stale_checks=FRESHNESS_CHECKS)],
    resources=build_resources(),
    # celery on a broker when ALTEGIO_CELERY_BROKER_URL is set, else Dagster's default
    executor=cluster.executor(),
)
