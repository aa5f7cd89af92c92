"""docs/data_dictionary.md is generated and must match render()."""

from pathlib import Path

from pipelines.altegio.data_dictionary import render
from pipelines.altegio.schema import TABLES

REPO = Path(__file__).resolve().parents[2]


def test_committed_data_dictionary_is_fresh():
    committed = (REPO / "docs" / "data_dictionary.md").read_text(encoding="utf-8")
    assert committed == render(), (
        "docs/data_dictionary.md is stale: python -m pipelines.altegio.data_dictionary "
        "> docs/data_dictionary.md"
    )


def test_dictionary_lists_every_table_and_enum_labels():
    text = render()
    for name, spec in TABLES.items():
        assert f"## {name}\n" in text
        for column in spec.schema.names:
            assert f"| `{column}` |" in text
    assert "2 = on sale" in text
    assert "E2" in text and "E3" in text and "expiration_type_title" in text
