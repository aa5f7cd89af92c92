"""The unique_ids check's query: it must count keys that occur more than once across files."""

import pyarrow as pa

from assets.checks import duplicate_keys
from pipelines.altegio.schema import TABLES
from tests.conftest import project_lake


def _card_types(chain_id: int, ids: list[int]) -> pa.Table:
    schema = TABLES["card_types"].schema
    columns = {field.name: pa.nulls(len(ids), field.type) for field in schema}
    columns["id"] = pa.array(ids, pa.int64())
    columns["chain_id"] = pa.array([chain_id] * len(ids), pa.int64())
    return pa.table(columns, schema=schema)


def test_duplicate_keys_counts_repeated_keys_within_and_across_partitions(tmp_path):
    lake = project_lake(tmp_path)
    assert duplicate_keys(lake, "card_types") == 0  # no files at all
    lake.replace_partitions("card_types", _card_types(1, [1, 2, 2, 3, 3, 3]), [{"chain_id": 1}])
    # The same id in another chain is another key (the key is chain_id + id).
    lake.replace_partitions("card_types", _card_types(2, [1, 2, 4]), [{"chain_id": 2}])
    assert duplicate_keys(lake, "card_types") == 2  # (1, 2) and (1, 3)
    lake.replace_partitions("card_types", _card_types(1, [1, 2, 3]), [{"chain_id": 1}])
    assert duplicate_keys(lake, "card_types") == 0
