"""Assets materialized in-process against the sandbox: tables, checks, failure isolation."""

from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from assets.altegio import TABLE_ASSETS, warehouse
from assets.resources import build_resources
from pipelines.altegio.client import AltegioClient
from pipelines.altegio.http import ServerError
from pipelines.altegio.sandbox import SandboxConfig, SandboxServer, serve

DAY = date(2026, 1, 5)
SANDBOX_CONFIG = SandboxConfig(
    seed=11,
    chains=3,
    start=date(2026, 1, 1),
    end=date(2026, 1, 10),
    transactions_per_day=30,
    access_overrides={2: {"loyalty_certificate_types_access": "0"}},
)


def resources_for(server: SandboxServer, data_dir: Path) -> dict[str, Any]:
    return build_resources(
        altegio={
            "base_url": server.base_url,
            "partner_token": server.credentials.partner_token,
            "user_token": server.credentials.user_token,
            "rate_limit": "200",
        },
        storage={"data_dir": str(data_dir)},
    )


def materialize_day(server: SandboxServer, data_dir: Path) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [*TABLE_ASSETS, warehouse],
        resources=resources_for(server, data_dir),
        partition_key=DAY.isoformat(),
        raise_on_error=False,
    )


def checks(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], Any]:
    return {
        ("/".join(e.asset_key.path), e.check_name): e for e in result.get_asset_check_evaluations()
    }


def test_materializing_a_partition_builds_every_table_with_the_sandbox_rows(sandbox, tmp_path):
    result = materialize_day(sandbox, tmp_path)
    assert result.success
    dataset = sandbox.dataset
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        for chain_id in dataset.chain_ids():
            expected = {t["id"] for t in dataset.transactions(chain_id, DAY, DAY)}
            got = {
                row[0]
                for row in con.execute(
                    "SELECT id FROM altegio.loyalty_transactions "
                    "WHERE chain_id = ? AND transaction_date = ?",
                    [chain_id, DAY],
                ).fetchall()
            }
            assert got == expected
            types = {t["id"] for t in dataset.membership_types(chain_id)}
            got_types = con.execute(
                "SELECT id FROM altegio.membership_types WHERE chain_id = ?", [chain_id]
            ).fetchall()
            assert {row[0] for row in got_types} == types
        (chains,) = con.execute("SELECT count(*) FROM altegio.chains").fetchone()
        assert chains == len(dataset.chain_ids())
        (marts,) = con.execute("SELECT count(*) FROM marts.daily_loyalty_activity").fetchone()
        assert marts > 0


def test_checks_pass_on_a_clean_load_and_list_the_chain_without_rights(sandbox, tmp_path):
    result = materialize_day(sandbox, tmp_path)
    evaluations = checks(result)
    for name in ("rows_reconcile", "unique_ids", "all_chains_loaded", "quarantine_empty"):
        assert evaluations[("altegio/loyalty_transactions", name)].passed, name
    skipped = evaluations[("altegio/certificate_types", "all_chains_loaded")]
    assert skipped.passed
    denied_chain = sandbox.dataset.chain_ids()[2]
    assert str(denied_chain) in str(skipped.metadata["skipped"].value)


def test_a_failing_chain_leaves_the_others_loaded_and_the_check_reports_it(
    sandbox, tmp_path, monkeypatch
):
    broken = sandbox.dataset.chain_ids()[1]
    original = AltegioClient.list_day

    def flaky(self: AltegioClient, source: Any, chain_id: int, *args: Any, **kwargs: Any) -> Any:
        if chain_id == broken:
            raise ServerError("502 after every retry", status=502)
        return original(self, source, chain_id, *args, **kwargs)

    monkeypatch.setattr(AltegioClient, "list_day", flaky)
    result = materialize_day(sandbox, tmp_path)
    failed_check = checks(result)[("altegio/loyalty_transactions", "all_chains_loaded")]
    assert not failed_check.passed
    assert failed_check.severity == dg.AssetCheckSeverity.ERROR
    assert str(broken) in str(failed_check.metadata["failed"].value)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        loaded = {
            row[0]
            for row in con.execute(
                "SELECT DISTINCT chain_id FROM altegio.loyalty_transactions"
            ).fetchall()
        }
    assert loaded == set(sandbox.dataset.chain_ids()) - {broken}


def test_a_load_refuses_a_data_dir_filled_from_another_api(sandbox, tmp_path):
    (tmp_path / "source.json").write_text('{"source": "sandbox"}')
    result = materialize_day(sandbox, tmp_path)
    assert not result.success


def test_unknown_codes_and_new_fields_warn_with_the_codes_and_field_names(tmp_path):
    from pipelines.altegio.sandbox import Faults

    config = SandboxConfig(
        seed=11,
        chains=1,
        start=date(2026, 1, 1),
        end=date(2026, 1, 10),
        transactions_per_day=30,
        faults=Faults(unknown_enum_every=3, extra_fields=True),
    )
    with serve(config) as server:
        result = materialize_day(server, tmp_path)
    assert result.success
    unknown = checks(result)[("altegio/loyalty_transactions", "known_enum_codes")]
    assert not unknown.passed
    assert unknown.severity == dg.AssetCheckSeverity.WARN
    assert "type_id" in str(unknown.metadata["unknown_codes"].value)
    materialization = next(
        e.materialization
        for e in result.get_asset_materialization_events()
        if e.materialization.asset_key == dg.AssetKey(["altegio", "loyalty_transactions"])
    )
    assert materialization.metadata["schema_drift"].value != "none"


def test_refused_credentials_fail_the_step_once_with_the_message_and_no_retry(sandbox, tmp_path):
    resources = build_resources(
        altegio={
            "base_url": sandbox.base_url,
            "partner_token": sandbox.credentials.partner_token,
            "user_token": "revoked-in-the-middle-of-the-night",
            "rate_limit": "200",
        },
        storage={"data_dir": str(tmp_path)},
    )
    result = dg.materialize(
        [TABLE_ASSETS[0]],  # chains: the first step of every run
        resources=resources,
        raise_on_error=False,
    )
    assert not result.success
    events = result.all_events
    assert not [e for e in events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    (failure,) = [e for e in events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    error = failure.step_failure_data.error
    assert "ALTEGIO_USER_TOKEN" in error.message
    assert "revoked-in-the-middle-of-the-night" not in str(error.to_string())
