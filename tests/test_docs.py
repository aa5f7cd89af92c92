"""The README and .env.example stay true to the code."""

import re
from pathlib import Path

from assets.cluster import CLUSTER_VARIABLES
from assets.resources import ALERT_VARIABLES, ALTEGIO_VARIABLES, STORAGE_VARIABLES
from pipelines.altegio.schema import TABLES
from pipelines.storage.marts import MART_DOCS

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def test_readme_describes_every_warehouse_table_and_mart():
    for table in TABLES:
        assert f"`altegio.{table}`" in README, table
    for mart in MART_DOCS:
        assert f"`marts.{mart}`" in README, mart


def test_every_environment_variable_is_documented_in_readme_and_env_example():
    example = (REPO / ".env.example").read_text()
    for name in [*ALTEGIO_VARIABLES, *STORAGE_VARIABLES, *CLUSTER_VARIABLES, *ALERT_VARIABLES]:
        assert name in README, name
        assert re.search(rf"^{name}=", example, re.MULTILINE), name


def test_readme_links_point_at_files_that_exist():
    for target in re.findall(r"\]\(([^)#]+)\)", README):
        if "://" not in target:
            assert (REPO / target).exists(), target
