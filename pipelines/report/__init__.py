"""The loyalty report: one self-contained HTML page drawn from the warehouse marts.

`write_report(data_dir)` writes ``<data_dir>/report.html`` (or another path): per chain, its
headline figures and the charts declared in ``charts.py`` (points liability over time,
accruals vs withdrawals by month, membership status mix, certificate redemptions, top
promotions), with a chain picker. `altegio-loyalty report` and the warehouse asset call it.
"""

from pipelines.report.charts import CHARTS, Chart
from pipelines.report.page import REPORT_FILE, ReportError, WrittenReport, write_report

__all__ = ["CHARTS", "REPORT_FILE", "Chart", "ReportError", "WrittenReport", "write_report"]
