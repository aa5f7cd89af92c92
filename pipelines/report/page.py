"""Reads the marts of a published warehouse and renders the one-page HTML report.

The page is self-contained: plotly.js is inlined once in the head, each chart is a div plus the
call that draws it, and nothing names a network resource, so the file can be mailed, opened
offline or served as a static file.
"""

import datetime as dt
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import jinja2
import plotly
import plotly.io as pio
import plotly.offline
from markupsafe import Markup

from pipelines.report.charts import CHARTS, Chart
from pipelines.storage.parquet import FILE_MODE
from pipelines.storage.warehouse import WAREHOUSE_FILE, Warehouse

REPORT_FILE = "report.html"
# Plotly's modebar without the logo; charts follow the width of their box.
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}


class ReportError(Exception):
    """The report cannot be written; the message says why and what to do."""


@dataclass(frozen=True)
class Kpi:
    """One figure of a chain's summary table."""

    label: str
    # A scalar over one chain (`$chain_id`), NULL when the mart has no row for it.
    sql: str
    decimals: int


# The chain's headline figures, each one scalar query over a mart.
KPIS: tuple[Kpi, ...] = (
    Kpi(
        "Points liability on the last loaded day",
        "SELECT arg_max(cumulative_liability, transaction_date) FROM marts.points_liability "
        "WHERE chain_id = $chain_id",
        2,
    ),
    Kpi(
        "Points accrued",
        "SELECT sum(accrued) FROM marts.points_liability WHERE chain_id = $chain_id",
        2,
    ),
    Kpi(
        "Points withdrawn",
        "SELECT sum(withdrawn) FROM marts.points_liability WHERE chain_id = $chain_id",
        2,
    ),
    Kpi(
        "Memberships sold",
        "SELECT sum(memberships_sold) FROM marts.membership_type_sales WHERE chain_id = $chain_id",
        0,
    ),
    Kpi(
        "Certificate redemptions",
        "SELECT sum(redemption_count) FROM marts.certificate_redemptions "
        "WHERE chain_id = $chain_id",
        0,
    ),
    Kpi(
        "Amount redeemed with certificates",
        "SELECT sum(redemption_amount) FROM marts.certificate_redemptions "
        "WHERE chain_id = $chain_id",
        2,
    ),
)

# Every chain the warehouse knows, with its name (a chain seen only in the marts has none).
_CHAINS_SQL = """
    SELECT k.chain_id, c.title
    FROM (SELECT chain_id FROM altegio.chains UNION SELECT chain_id FROM marts.points_liability)
        AS k
    LEFT JOIN altegio.chains AS c USING (chain_id)
    ORDER BY k.chain_id
"""
_WINDOW_SQL = "SELECT min(transaction_date), max(transaction_date) FROM marts.points_liability"
_PUBLISHED_SQL = "SELECT max(published_at) FROM altegio._publish"


@dataclass(frozen=True)
class ChartView:
    key: str
    title: str
    source: str
    empty: str
    # The chart's div and drawing call, or None when the chain has no rows for it.
    html: Markup | None


@dataclass(frozen=True)
class ChainView:
    chain_id: int
    title: str
    kpis: list[tuple[str, str]]
    charts: list[ChartView]


@dataclass(frozen=True)
class WrittenReport:
    """What `write_report` wrote."""

    path: Path
    bytes: int
    chains: int
    # Charts drawn (a chain's chart with no rows shows a sentence instead and is not counted).
    charts: int


def chart_div_id(chain_id: int, chart: Chart) -> str:
    """The id of a chart's div: stable, so the page diffs cleanly and checks can find it."""
    return f"chart-{chain_id}-{chart.key}"


def _format(value: Any, decimals: int) -> str:
    if value is None:
        return "none"
    return f"{float(value):,.{decimals}f}"


def _chart_view(con: duckdb.DuckDBPyConnection, chain_id: int, chart: Chart) -> ChartView:
    rows = con.execute(chart.sql, {"chain_id": chain_id}).fetchall()
    html = None
    if rows:
        html = Markup(  # noqa: S704 (plotly's own markup; the data inside is JSON-encoded)
            pio.to_html(
                chart.figure(rows),
                full_html=False,
                include_plotlyjs=False,
                div_id=chart_div_id(chain_id, chart),
                config=PLOTLY_CONFIG,
                default_height="auto",
            )
        )
    return ChartView(chart.key, chart.title, chart.source, chart.empty, html)


def _chain_view(con: duckdb.DuckDBPyConnection, chain_id: int, title: str | None) -> ChainView:
    kpis = []
    for kpi in KPIS:
        row = con.execute(kpi.sql, {"chain_id": chain_id}).fetchone()
        kpis.append((kpi.label, _format(row[0] if row else None, kpi.decimals)))
    charts = [_chart_view(con, chain_id, chart) for chart in CHARTS]
    return ChainView(chain_id, title or f"chain {chain_id}", kpis, charts)


def _template() -> jinja2.Template:
    text = resources.files(__package__).joinpath("template.html").read_text(encoding="utf-8")
    return jinja2.Environment(autoescape=True, keep_trailing_newline=True).from_string(text)


def _open(warehouse: Warehouse) -> duckdb.DuckDBPyConnection:
    if not warehouse.path.is_file():
        raise ReportError(
            f"no warehouse at {warehouse.path}: run a load first (altegio-loyalty load, or "
            f"altegio-loyalty demo --data-dir {warehouse.data_dir})"
        )
    try:
        return warehouse.connect_read_only()
    except duckdb.Error as exc:
        raise ReportError(f"cannot open {warehouse.path}: {exc}") from None


def render_report(data_dir: Path, generated_at: dt.datetime | None = None) -> tuple[str, int, int]:
    """The report's HTML for the warehouse of `data_dir`, with its chain and chart counts."""
    warehouse = Warehouse(Path(data_dir))
    with _open(warehouse) as con:
        try:
            chains = [_chain_view(con, chain_id, title) for chain_id, title in _chains(con)]
            window = con.execute(_WINDOW_SQL).fetchone() or (None, None)
            published = con.execute(_PUBLISHED_SQL).fetchone()
        except duckdb.CatalogException as exc:
            raise ReportError(
                f"{warehouse.path} lacks a table the report reads ({exc}); "
                "republish it with a load of this version"
            ) from None
    generated = generated_at or dt.datetime.now(dt.UTC)
    html = _template().render(
        plotly_js=Markup(plotly.offline.get_plotlyjs()),  # noqa: S704 (the plotly.js bundle)
        plotly_version=plotly.offline.get_plotlyjs_version(),
        generated_at=_timestamp(generated),
        published_at=_timestamp(published[0]) if published and published[0] else "never",
        warehouse=warehouse.path,
        first_day=window[0] or "none",
        last_day=window[1] or "none",
        chains=chains,
    )
    drawn = sum(1 for chain in chains for chart in chain.charts if chart.html is not None)
    return html, len(chains), drawn


def _chains(con: duckdb.DuckDBPyConnection) -> Sequence[tuple[int, str | None]]:
    return [(int(row[0]), row[1]) for row in con.execute(_CHAINS_SQL).fetchall()]


def _timestamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def write_report(
    data_dir: Path, out: Path | None = None, generated_at: dt.datetime | None = None
) -> WrittenReport:
    """Render the report of `data_dir`'s warehouse into `out` (default: beside the warehouse).

    The file is replaced atomically: a reader sees the old page or the new one, never half."""
    data_dir = Path(data_dir)
    if data_dir.name == WAREHOUSE_FILE:
        data_dir = data_dir.parent
    target = Path(out) if out is not None else data_dir / REPORT_FILE
    html, chains, charts = render_report(data_dir, generated_at)
    if not target.parent.is_dir():
        raise ReportError(f"cannot write {target}: {target.parent} is not a directory")
    payload = html.encode("utf-8")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return WrittenReport(target, len(payload), chains, charts)
