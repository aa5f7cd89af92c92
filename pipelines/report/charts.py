"""The report's charts, declared once: what each shows, the mart query behind it, its figure.

Every chart is drawn once per chain. Its query reads one chain's rows of one mart (the chain id
is the only parameter) and its figure builder turns those rows into a plotly figure. Rows are
keyed by id, never by title: two membership types or promotions may share a title, so each
label carries the id (``Title (#id)``) and no two bars can merge.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go

Row = tuple[Any, ...]

# Membership status counts of marts.membership_type_sales (E4, contract section 7) in the order
# a membership passes through them, with the label each is shown under.
MEMBERSHIP_STATUS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("issued_count", "issued"),
    ("active_count", "active"),
    ("expired_count", "expired"),
    ("used_up_count", "used up"),
)
TOP_PROMOTIONS = 10
# One palette for every chart, so a series keeps its colour from chain to chain.
COLOURS = ("#2f6db5", "#e07b39", "#7f7f7f", "#3a9d5d", "#b5462f", "#8a5fb5")
FIGURE_HEIGHT_PX = 380


@dataclass(frozen=True)
class Chart:
    """One chart of a chain's section."""

    key: str
    title: str
    # Where the numbers come from, shown under the chart.
    source: str
    # One chain's rows; `$chain_id` is the only parameter.
    sql: str
    figure: Callable[[Sequence[Row]], go.Figure]
    # Shown instead of an empty chart when the chain has no rows.
    empty: str


def _number(value: Any) -> float:
    """Marts hold DOUBLE or DECIMAL; plotly wants plain numbers."""
    return float(value or 0)


def _labelled(title: Any, key: Any) -> str:
    return f"{title or 'untitled'} (#{key})"


def _figure(traces: Sequence[Any], **layout: Any) -> go.Figure:
    figure = go.Figure(data=list(traces))
    defaults: dict[str, Any] = {
        "template": "plotly_white",
        "height": FIGURE_HEIGHT_PX,
        "margin": {"l": 60, "r": 20, "t": 20, "b": 50},
        "colorway": list(COLOURS),
        "legend": {"orientation": "h", "y": -0.2},
    }
    figure.update_layout(**{**defaults, **layout})
    return figure


def liability_figure(rows: Sequence[Row]) -> go.Figure:
    days = [row[0] for row in rows]
    return _figure(
        [
            go.Scatter(
                x=days,
                y=[_number(row[1]) for row in rows],
                name="points liability",
                mode="lines",
                hovertemplate="%{x}<br>%{y:,.2f} points<extra></extra>",
            )
        ],
        yaxis_title="points outstanding",
        showlegend=False,
    )


def monthly_flows_figure(rows: Sequence[Row]) -> go.Figure:
    months = [row[0].strftime("%Y-%m") for row in rows]
    series = (("accrued", 1), ("withdrawn", 2), ("expired", 3))
    return _figure(
        [
            go.Bar(
                x=months,
                y=[_number(row[column]) for row in rows],
                name=name,
                hovertemplate="%{x}: %{y:,.2f}<extra>" + name + "</extra>",
            )
            for name, column in series
        ],
        barmode="group",
        yaxis_title="points",
        xaxis_type="category",
    )


def status_mix_figure(rows: Sequence[Row]) -> go.Figure:
    # First row at the top: plotly draws the first category at the bottom.
    rows = list(reversed(rows))
    labels = [_labelled(row[1], row[0]) for row in rows]
    return _figure(
        [
            go.Bar(
                y=labels,
                x=[int(row[2 + index] or 0) for row in rows],
                name=status,
                orientation="h",
                hovertemplate="%{y}: %{x:,} " + status + "<extra></extra>",
            )
            for index, (_, status) in enumerate(MEMBERSHIP_STATUS_COLUMNS)
        ],
        barmode="stack",
        xaxis_title="memberships sold",
        legend={"orientation": "h", "y": -0.2, "traceorder": "normal"},
        yaxis={"type": "category", "automargin": True},
    )


def redemptions_figure(rows: Sequence[Row]) -> go.Figure:
    months = [row[0].strftime("%Y-%m") for row in rows]
    return _figure(
        [
            go.Bar(
                x=months,
                y=[_number(row[2]) for row in rows],
                customdata=[int(row[1]) for row in rows],
                name="redeemed amount",
                hovertemplate="%{x}: %{y:,.2f} in %{customdata:,} redemptions<extra></extra>",
            )
        ],
        yaxis_title="amount redeemed",
        xaxis_type="category",
        showlegend=False,
    )


def promotions_figure(rows: Sequence[Row]) -> go.Figure:
    # Largest at the top (see status_mix_figure).
    ordered = list(reversed(rows))
    labels = [_labelled(row[1], row[0]) for row in ordered]
    series = (("discount given", 2), ("points accrued", 3))
    return _figure(
        [
            go.Bar(
                y=labels,
                x=[_number(row[column]) for row in ordered],
                name=name,
                orientation="h",
                hovertemplate="%{y}: %{x:,.2f}<extra>" + name + "</extra>",
            )
            for name, column in series
        ],
        barmode="group",
        yaxis={"type": "category", "automargin": True},
    )


_STATUS_SELECT = ", ".join(column for column, _ in MEMBERSHIP_STATUS_COLUMNS)

CHARTS: tuple[Chart, ...] = (
    Chart(
        key="points_liability",
        title="Points liability over time",
        source="marts.points_liability: cumulative_liability per day",
        sql="""
            SELECT transaction_date, cumulative_liability
            FROM marts.points_liability WHERE chain_id = $chain_id
            ORDER BY transaction_date
        """,
        figure=liability_figure,
        empty="No loyalty transactions loaded for this chain.",
    ),
    Chart(
        key="monthly_flows",
        title="Accruals vs withdrawals by month",
        source="marts.points_liability: accrued, withdrawn, expired summed per month",
        sql="""
            SELECT date_trunc('month', transaction_date) AS month,
                   sum(accrued), sum(withdrawn), sum(expired)
            FROM marts.points_liability WHERE chain_id = $chain_id
            GROUP BY month ORDER BY month
        """,
        figure=monthly_flows_figure,
        empty="No loyalty transactions loaded for this chain.",
    ),
    Chart(
        key="membership_status_mix",
        title="Membership status mix by membership type",
        source="marts.membership_type_sales: memberships sold per status",
        sql=f"""
            SELECT membership_type_id, membership_type_title, {_STATUS_SELECT}
            FROM marts.membership_type_sales
            WHERE chain_id = $chain_id AND memberships_sold > 0
            ORDER BY membership_type_id
        """,  # noqa: S608 (column names declared above)
        figure=status_mix_figure,
        empty="No memberships sold in the loaded window.",
    ),
    Chart(
        key="certificate_redemptions",
        title="Certificate redemptions by month",
        source="marts.certificate_redemptions: redemptions and amount per month",
        sql="""
            SELECT date_trunc('month', transaction_date) AS month,
                   sum(redemption_count), sum(redemption_amount)
            FROM marts.certificate_redemptions WHERE chain_id = $chain_id
            GROUP BY month ORDER BY month
        """,
        figure=redemptions_figure,
        empty="No certificate redemptions in the loaded window.",
    ),
    Chart(
        key="top_promotions",
        title=f"Top {TOP_PROMOTIONS} promotions by discount given",
        source="marts.promotion_effect: discount given and points accrued per promotion",
        sql=f"""
            SELECT promotion_id, promotion_title, discount_given, accruals_attributed
            FROM marts.promotion_effect
            WHERE chain_id = $chain_id AND transaction_count > 0
            ORDER BY discount_given DESC, accruals_attributed DESC, promotion_id
            LIMIT {TOP_PROMOTIONS}
        """,  # noqa: S608 (a constant)
        figure=promotions_figure,
        empty="No transaction of this chain names a promotion.",
    ),
)
