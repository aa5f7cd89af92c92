"""The code location loads with exactly the assets, checks, jobs and schedules we promise."""

from datetime import UTC, date, datetime

import dagster as dg

from assets.definitions import defs
from assets.schedules import RANGE_END_TAG, RANGE_START_TAG, nightly_window

# Pinned on purpose: a table, check or schedule that appears or disappears must show up here.
EXPECTED_TABLE_KEYS = {
    dg.AssetKey(["altegio", name])
    for name in (
        "chains",
        "locations",
        "membership_types",
        "membership_type_locations",
        "membership_type_availability",
        "membership_type_balance_links",
        "memberships",
        "membership_balance_links",
        "certificate_types",
        "certificate_type_services",
        "certificate_type_locations",
        "promotions",
        "promotion_rules",
        "promotion_applicable_items",
        "promotion_locations",
        "promotion_card_types",
        "notification_templates",
        "card_types",
        "loyalty_transactions",
        "deposits",
    )
}
EXPECTED_MART_KEYS = {
    dg.AssetKey(["marts", name])
    for name in (
        "daily_loyalty_activity",
        "points_liability",
        "membership_type_sales",
        "certificate_activity",
        "certificate_redemptions",
        "promotion_effect",
        "deposit_balances",
        "membership_status_daily",
        "membership_type_prices",
        "certificate_type_prices",
        "promotion_periods",
    )
}
# One step per source writes its tables; the checks belong to the step's main table.
CHECKED_TABLES = (
    "chains",
    "membership_types",
    "memberships",
    "certificate_types",
    "promotions",
    "notification_templates",
    "card_types",
    "loyalty_transactions",
    "deposits",
)
STEP_CHECKS = (
    "rows_reconcile",
    "unique_ids",
    "all_chains_loaded",
    "known_enum_codes",
    "quarantine_empty",
)
FRESHNESS_CHECKED = ("chains", "loyalty_transactions")
# Every mutable entity keeps its history (not transactions, replaced by day; not deposits).
HISTORY_TABLES = (
    "chains",
    "membership_types",
    "memberships",
    "certificate_types",
    "promotions",
    "notification_templates",
    "card_types",
)
DAILY_TABLES = ("memberships", "membership_balance_links", "loyalty_transactions")


def test_the_assets_are_exactly_the_warehouse_tables_and_marts():
    keys = set(defs.resolve_asset_graph().get_all_asset_keys())
    assert keys == EXPECTED_TABLE_KEYS | EXPECTED_MART_KEYS


def test_table_assets_are_in_the_altegio_group_with_column_schemas():
    graph = defs.resolve_asset_graph()
    for key in EXPECTED_TABLE_KEYS:
        node = graph.get(key)
        assert node.group_name == "altegio"
        assert "dagster/column_schema" in node.metadata


def test_daily_tables_are_partitioned_by_day_with_a_multi_day_backfill_policy():
    graph = defs.resolve_asset_graph()
    partitioned = {key for key in graph.get_all_asset_keys() if graph.get(key).partitions_def}
    assert partitioned == {dg.AssetKey(["altegio", table]) for table in DAILY_TABLES}
    for key in partitioned:
        node = graph.get(key)
        assert isinstance(node.partitions_def, dg.DailyPartitionsDefinition)
        assert node.partitions_def.start.date() == date(2020, 1, 1)
        assert node.backfill_policy is not None
        assert node.backfill_policy.max_partitions_per_run == 92


def test_checks_are_the_step_checks_per_source_plus_freshness():
    check_keys = defs.resolve_asset_graph().asset_check_keys
    names = {("/".join(k.asset_key.path), k.name) for k in check_keys}
    expected = {(f"altegio/{table}", check) for table in CHECKED_TABLES for check in STEP_CHECKS}
    expected |= {(f"altegio/{table}", "freshness_check") for table in FRESHNESS_CHECKED}
    # Sold memberships are re-read by id: the refresh has its own check.
    expected |= {("altegio/memberships", "state_refreshed")}
    history_checks = ("history_one_current_row", "history_no_overlap", "history_matches_current")
    expected |= {
        (f"altegio/{table}", check) for table in HISTORY_TABLES for check in history_checks
    }
    assert names == expected


def test_three_jobs_each_with_a_stopped_schedule_the_freshness_and_alert_sensors():
    schedules = {
        s.name: (s.cron_schedule, s.execution_timezone, s.job_name, s.default_status)
        for s in defs.schedules
    }
    stopped = dg.DefaultScheduleStatus.STOPPED
    assert schedules == {
        "nightly_load_schedule": ("0 5 * * *", "UTC", "nightly_load", stopped),
        "full_membership_refresh_schedule": (
            "0 6 * * 0",
            "UTC",
            "full_membership_refresh",
            stopped,
        ),
        "deep_lookback_schedule": ("0 7 * * 6", "UTC", "deep_lookback", stopped),
    }
    assert [job.name for job in defs.jobs] == [
        "nightly_load",
        "full_membership_refresh",
        "deep_lookback",
    ]
    assert [sensor.name for sensor in defs.sensors] == [
        "freshness_checks_sensor",
        "alert_on_run_failure",
        "alert_on_failed_checks",
    ]
    # Alerts run as soon as the daemon does; with no channel configured they only skip.
    running = dg.DefaultSensorStatus.RUNNING
    assert defs.get_sensor_def("alert_on_run_failure").default_status == running
    assert defs.get_sensor_def("alert_on_failed_checks").default_status == running


def test_full_refresh_and_deep_lookback_select_their_tables_and_the_marts():
    def selected(job: str) -> set[str]:
        keys = defs.resolve_job_def(job).asset_layer.selected_asset_keys
        return {"/".join(k.path) for k in keys}

    marts = {"/".join(k.path) for k in EXPECTED_MART_KEYS}
    assert (
        selected("full_membership_refresh")
        == {
            "altegio/memberships",
            "altegio/membership_balance_links",
        }
        | marts
    )
    assert selected("deep_lookback") == {"altegio/loyalty_transactions"} | marts


def _requests(name: str, tick: datetime, **storage: str) -> list[dg.RunRequest]:
    from assets.resources import StorageResource

    schedule = defs.get_schedule_def(name)
    with dg.build_schedule_context(
        scheduled_execution_time=tick, resources={"storage": StorageResource(**storage)}
    ) as context:
        return list(schedule.evaluate_tick(context).run_requests or [])


def test_full_refresh_reads_yesterday_and_re_reads_every_stored_membership():
    (request,) = _requests("full_membership_refresh_schedule", datetime(2026, 3, 8, 6, tzinfo=UTC))
    assert request.tags[RANGE_START_TAG] == request.tags[RANGE_END_TAG] == "2026-03-07"
    assert request.tags["altegio/refresh"] == "all"


def test_deep_lookback_covers_the_configured_days():
    tick = datetime(2026, 3, 7, 7, tzinfo=UTC)
    (default,) = _requests("deep_lookback_schedule", tick)
    assert (default.tags[RANGE_START_TAG], default.tags[RANGE_END_TAG]) == (
        "2026-01-30",
        "2026-03-06",
    )
    (short,) = _requests("deep_lookback_schedule", tick, deep_lookback_days="7")
    assert short.tags[RANGE_START_TAG] == "2026-02-27"


def test_nightly_schedule_requests_yesterday_plus_the_lookback_window():
    schedule = defs.get_schedule_def("nightly_load_schedule")
    from assets.resources import StorageResource

    tick = datetime(2026, 3, 10, 5, 0, tzinfo=UTC)
    with dg.build_schedule_context(
        scheduled_execution_time=tick, resources={"storage": StorageResource(lookback_days="3")}
    ) as context:
        requests = list(schedule.evaluate_tick(context).run_requests or [])
    assert len(requests) == 1
    assert requests[0].tags[RANGE_START_TAG] == "2026-03-06"
    assert requests[0].tags[RANGE_END_TAG] == "2026-03-09"


def test_nightly_window_uses_the_configured_calendar():
    assert nightly_window(date(2026, 1, 1), 0) == (date(2025, 12, 31), date(2025, 12, 31))
    assert nightly_window(date(2026, 1, 1), 2) == (date(2025, 12, 29), date(2025, 12, 31))
