"""The HTML report on a small hand-made warehouse: every chart per chain with the marts' numbers,
charts keyed by id, a sentence where a chain has no rows, and nothing fetched from a network.

(The page drawn in a real browser is `make ui-check`'s job; here the HTML itself is read.)
"""

import datetime as dt
import json
import os
import stat
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import plotly.offline
import pytest

from pipelines.report import CHARTS, REPORT_FILE, ReportError, write_report
from pipelines.storage.parquet import Lake
from pipelines.storage.warehouse import Warehouse
from tests.conftest import TEST_TABLES, dimension_stub, tx, write_all

JAN5, JAN20, FEB3 = dt.date(2026, 1, 5), dt.date(2026, 1, 20), dt.date(2026, 2, 3)
GENERATED_AT = dt.datetime(2026, 2, 4, 6, 0, tzinfo=dt.UTC)
# Chain 1 has rows for every chart; chain 2 only for the two transaction charts.
DRAWN_CHARTS = len(CHARTS) + 2

TRANSACTIONS = [
    # chain 1: accruals and withdrawals in two months, certificate redemptions, promotions
    tx(1, 1, JAN5, 2, 100.0, program_id=10, visit_id=1),  # accrual, promotion 10
    tx(2, 1, JAN5, 3, 30.0, visit_id=2),  # withdrawal
    tx(3, 1, JAN20, 1, 25.0, program_id=11, visit_id=3),  # discount, promotion 11
    tx(4, 1, JAN20, 8, 200.0, certificate_id=70, visit_id=4),  # certificate
    tx(5, 1, FEB3, 2, 40.0, program_id=10, visit_id=5),  # accrual, promotion 10
    tx(6, 1, FEB3, 7, 10.0),  # expiry
    tx(7, 1, FEB3, 8, 50.0, certificate_id=71, visit_id=6),  # certificate
    tx(8, 1, FEB3, 1, 5.0, program_id=12, visit_id=7),  # discount, promotion 12
    # chain 2: one accrual, nothing else
    tx(101, 2, JAN5, 2, 70.0, visit_id=100),
]
# Two membership types of chain 1 share a title: the chart must keep them apart.
MEMBERSHIP_TYPES = [
    {"id": 300, "chain_id": 1, "title": "10 visits", "is_united_balance": False},
    {"id": 301, "chain_id": 1, "title": "10 visits", "is_united_balance": False},
]
MEMBERSHIPS = [
    {"id": 501, "chain_id": 1, "created_day": JAN5, "number": "501", "status_id": 2,
     "membership_type_id": 300},
    {"id": 502, "chain_id": 1, "created_day": JAN5, "number": "502", "status_id": 4,
     "membership_type_id": 300},
    {"id": 503, "chain_id": 1, "created_day": JAN20, "number": "503", "status_id": 1,
     "membership_type_id": 301},
]  # fmt: skip
PROMOTIONS = [
    {"id": 10, "chain_id": 1, "title": "Cashback <5%>", "type": "cashback_static_paid"},
    {"id": 11, "chain_id": 1, "title": "Discount 10%", "type": "discount_static"},
    {"id": 12, "chain_id": 1, "title": "Discount 10%", "type": "discount_static"},
    {"id": 13, "chain_id": 1, "title": "Never used", "type": "discount_static"},
]
CHAINS = [
    {"chain_id": 1, "title": "Spa & <Co>", "timezone": "UTC"},
    {"chain_id": 2, "title": "Quiet gym", "timezone": "UTC"},
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root: Path = tmp_path_factory.mktemp("report") / "data"
    lake = Lake(root / "parquet", TEST_TABLES)
    write_all(
        lake,
        {
            "loyalty_transactions": TRANSACTIONS,
            "membership_types": MEMBERSHIP_TYPES,
            "memberships": MEMBERSHIPS,
            "promotions": PROMOTIONS,
            "chains": CHAINS,
        },
    )
    Warehouse(root, dimensions=dimension_stub).publish(lake)
    return root


@pytest.fixture(scope="module")
def page(data_dir: Path) -> str:
    written = write_report(data_dir, generated_at=GENERATED_AT)
    assert written.path == data_dir / REPORT_FILE
    return written.path.read_text(encoding="utf-8")


class _Elements(HTMLParser):
    """Every start tag with its attributes, and the text outside scripts and styles."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self._raw = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._raw += tag in ("script", "style")

    def handle_endtag(self, tag: str) -> None:
        self._raw -= tag in ("script", "style")

    def handle_data(self, data: str) -> None:
        if not self._raw and data.strip():
            self.text.append(data.strip())


def _elements(page: str) -> _Elements:
    parser = _Elements()
    parser.feed(page)
    return parser


def traces(page: str, chain_id: int, chart: str) -> list[dict[str, Any]]:
    """The data plotly draws in one chart: the array passed to Plotly.newPlot for its div."""
    marker = f'"chart-{chain_id}-{chart}",'
    start = page.index("[", page.index(marker))
    data, _ = json.JSONDecoder().raw_decode(page, start)
    return list(data)


def test_one_section_per_chain_with_every_chart_and_a_picker(page: str) -> None:
    elements = _elements(page)
    sections = [a for tag, a in elements.tags if tag == "section"]
    assert [s["id"] for s in sections] == ["chain-1", "chain-2"]
    options = [a["value"] for tag, a in elements.tags if tag == "option"]
    assert options == ["all", "chain-1", "chain-2"]
    figures = [a["data-chart"] for tag, a in elements.tags if tag == "figure"]
    assert figures == [chart.key for chart in CHARTS] * 2
    for chart in CHARTS:
        assert chart.title in elements.text
    # Titles are escaped, never markup.
    assert "Spa &amp; &lt;Co&gt;" in page and "<Co>" not in page


def test_nothing_on_the_page_is_fetched_from_anywhere(page: str) -> None:
    elements = _elements(page)
    referenced = [
        (tag, name, value)
        for tag, attrs in elements.tags
        for name, value in attrs.items()
        if name in ("src", "href", "srcset", "data", "action", "poster")
    ]
    assert referenced == []
    assert not any(tag in ("link", "iframe", "img", "object", "embed") for tag, _ in elements.tags)
    # plotly.js is inlined once, in the head, before any chart calls it; one call per chart.
    head = page[: page.index("</head>")]
    assert head.count("<script>") == 1 and plotly.offline.get_plotlyjs() in head
    assert page.count("Plotly.newPlot(") == DRAWN_CHARTS


def test_points_liability_is_the_marts_running_sum(page: str) -> None:
    (line,) = traces(page, 1, "points_liability")
    # Every day from the first to the last loaded day; accruals - withdrawals - expiries.
    assert line["x"][0] == "2026-01-05" and line["x"][-1] == "2026-02-03"
    assert len(line["x"]) == (FEB3 - JAN5).days + 1
    assert line["y"][0] == 70.0 and line["y"][-1] == 100.0  # 100-30, then +40-10


def test_accruals_withdrawals_and_expiries_by_month(page: str) -> None:
    bars = {trace["name"]: trace for trace in traces(page, 1, "monthly_flows")}
    assert set(bars) == {"accrued", "withdrawn", "expired"}
    assert bars["accrued"]["x"] == ["2026-01", "2026-02"]
    assert bars["accrued"]["y"] == [100.0, 40.0]
    assert bars["withdrawn"]["y"] == [30.0, 0.0]
    assert bars["expired"]["y"] == [0.0, 10.0]


def test_membership_status_mix_keeps_types_of_one_title_apart(page: str) -> None:
    bars = {trace["name"]: trace for trace in traces(page, 1, "membership_status_mix")}
    assert list(bars) == ["issued", "active", "expired", "used up"]
    # First type at the top, i.e. last in plotly's bottom-up category order.
    assert bars["active"]["y"] == ["10 visits (#301)", "10 visits (#300)"]
    assert bars["issued"]["x"] == [1, 0]
    assert bars["active"]["x"] == [0, 1]
    assert bars["used up"]["x"] == [0, 1]
    assert bars["expired"]["x"] == [0, 0]


def test_certificate_redemptions_by_month_with_counts(page: str) -> None:
    (bars,) = traces(page, 1, "certificate_redemptions")
    assert bars["x"] == ["2026-01", "2026-02"]
    assert bars["y"] == [200.0, 50.0]
    assert bars["customdata"] == [1, 1]


def test_top_promotions_ranked_by_discount_and_keyed_by_id(page: str) -> None:
    bars = {trace["name"]: trace for trace in traces(page, 1, "top_promotions")}
    # Unused promotion 13 is left out; the largest discount is drawn at the top (last).
    assert bars["discount given"]["y"] == [
        "Cashback <5%> (#10)",
        "Discount 10% (#12)",
        "Discount 10% (#11)",
    ]
    assert bars["discount given"]["x"] == [0.0, 5.0, 25.0]
    assert bars["points accrued"]["x"] == [140.0, 0.0, 0.0]


def test_a_chain_without_rows_gets_a_sentence_not_an_empty_chart(page: str) -> None:
    assert 'id="chart-2-points_liability"' in page
    for key in ("membership_status_mix", "certificate_redemptions", "top_promotions"):
        assert f'id="chart-2-{key}"' not in page
    text = _elements(page).text
    for chart in CHARTS[2:]:
        assert chart.empty in text


def test_headline_figures_per_chain(page: str) -> None:
    text = _elements(page).text
    head = text.index("Spa & <Co>")
    rows = text[head + 2 : head + 2 + 12]
    figures = dict(zip(rows[::2], rows[1::2], strict=True))
    assert figures["Points liability on the last loaded day"] == "100.00"
    assert figures["Points accrued"] == "140.00"
    assert figures["Memberships sold"] == "3"
    assert figures["Certificate redemptions"] == "2"
    assert figures["Amount redeemed with certificates"] == "250.00"
    assert "Generated 2026-02-04 06:00 UTC" in " ".join(text)


def test_the_file_replaces_the_old_one_atomically_and_privately(data_dir: Path, tmp_path: Path):
    out = tmp_path / "elsewhere.html"
    out.write_text("old page")
    written = write_report(data_dir, out, generated_at=GENERATED_AT)
    assert written.path == out and written.bytes == out.stat().st_size
    assert written.chains == 2 and written.charts == DRAWN_CHARTS
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["elsewhere.html"]  # no temporary left
    # The same warehouse and clock give the same page.
    again = write_report(data_dir, tmp_path / "again.html", generated_at=GENERATED_AT)
    assert again.path.read_bytes() == out.read_bytes()


def test_no_warehouse_is_a_one_line_error_naming_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match=r"no warehouse at .*: run a load first") as err:
        write_report(tmp_path)
    assert "\n" not in str(err.value)
    assert not (tmp_path / REPORT_FILE).exists()


def test_an_unwritable_destination_is_a_one_line_error(data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="is not a directory"):
        write_report(data_dir, tmp_path / "missing" / "report.html")
