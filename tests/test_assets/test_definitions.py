"""The code location loads with exactly the assets, checks, jobs and schedules we promise."""

from datetime import UTC, date, datetime

import dagster as dg

from assets.definitions import defs
from assets.schedules import RANGE_END_TAG, RANGE_START_TAG, nightly_window
from pipelines.altegio.schema import OPERATIONAL_TABLES, TABLES

EXPECTED_TABLE_KEYS = {
    dg.AssetKey(["altegio", name]) for name in TABLES if name not in OPERATIONAL_TABLES
}
EXPECTED_MART_KEYS = {
    dg.AssetKey(["marts", name])
    for name in (
        "daily_loyalty_activity",
        "points_liability",
        "membership_type_sales",
        "promotion_effect",
    )
}


def test_every_warehouse_table_is_an_asset_keyed_like_its_table():
    keys = set(defs.resolve_asset_graph().get_all_asset_keys())
    assert keys >= EXPECTED_TABLE_KEYS
    assert keys >= EXPECTED_MART_KEYS


def test_table_assets_are_in_the_altegio_group_with_column_schemas():
    graph = defs.resolve_asset_graph()
    for key in EXPECTED_TABLE_KEYS:
        node = graph.get(key)
        assert node.group_name == "altegio"
        assert "dagster/column_schema" in node.metadata


def test_daily_tables_are_partitioned_by_day_with_a_multi_day_backfill_policy():
    graph = defs.resolve_asset_graph()
    for table in ("loyalty_transactions", "memberships"):
        node = graph.get(dg.AssetKey(["altegio", table]))
        assert isinstance(node.partitions_def, dg.DailyPartitionsDefinition)
        assert node.backfill_policy is not None
        assert (node.backfill_policy.max_partitions_per_run or 0) > 1


def test_checks_cover_reconciliation_uniqueness_enums_quarantine_and_freshness():
    check_keys = defs.resolve_asset_graph().asset_check_keys
    names = {(tuple(k.asset_key.path), k.name) for k in check_keys}
    for check in (
        "rows_reconcile",
        "unique_ids",
        "known_enum_codes",
        "quarantine_empty",
        "all_chains_loaded",
    ):
        assert (("altegio", "loyalty_transactions"), check) in names
    assert any("fresh" in name for _, name in names)


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
