"""What ui-check asserts about the rendered pages, each assertion one named check.

Everything is read from the DOM the browser built (after plotly.js or the Dagster UI ran), not
from the HTML that was sent: a chart counts only once plotly drew its SVG and traces, an asset
only once the UI drew its name.
"""

import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import httpx
from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.actions.wheel_input import ScrollOrigin
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from pipelines.report import CHARTS, REPORT_FILE
from ui_check.browser import WINDOW, console_errors, full_page_screenshot

# Bounds on waiting for a page to finish drawing or a server to answer; not timing assertions.
PAGE_WAIT_S = 90
WEBSERVER_WAIT_S = 240
# Every request the report could make is refused: it must draw from what is in the file.
BLOCKED_URLS = ["http://*", "https://*", "ws://*", "wss://*", "ftp://*"]
# The lineage graph draws only the nodes inside the window, at a readable zoom: a tall window
# holds a whole group (20 tables in a column).
LINEAGE_WINDOW = (1800, 4200)
# The wheel pans the graph (without limits): this far per step, and this many steps go past
# its top from its middle.
LINEAGE_PAN_PX = 3000
LINEAGE_PAN_STEPS = 5
# The welcome dialog opens a moment after the first page; a bound on waiting for it.
WELCOME_WAIT_S = 20

# Per chart div of the report: is it drawn (plotly's SVG with at least one trace), how wide.
_CHARTS_JS = """
return Array.from(document.querySelectorAll("div.plotly-graph-div")).map(function (div) {
  return {id: div.id, drawn: div.classList.contains("js-plotly-plot"),
          svgs: div.querySelectorAll("svg.main-svg").length,
          traces: div.querySelectorAll("g.trace").length,
          width: Math.round(div.getBoundingClientRect().width),
          visible: div.offsetParent !== null};
});
"""
_SECTIONS_JS = """
return Array.from(document.querySelectorAll("section.chain")).map(function (section) {
  return {id: section.id, heading: section.querySelector("h2").innerText,
          visible: !section.hidden && section.offsetParent !== null};
});
"""


@dataclass
class Checks:
    """Named pass/fail results, in the order they were made."""

    results: list[tuple[str, bool, str]] = field(default_factory=list)

    def check(self, name: str, passed: bool, detail: str = "") -> bool:
        self.results.append((name, bool(passed), detail))
        return bool(passed)

    @property
    def passed(self) -> int:
        return sum(1 for _, ok, _ in self.results if ok)

    @property
    def all_passed(self) -> bool:
        return bool(self.results) and self.passed == len(self.results)

    def table(self) -> str:
        lines = []
        for name, ok, detail in self.results:
            note = f"  ({detail})" if detail else ""
            lines.append(f"{'PASS' if ok else 'FAIL'}  {name}{note}")
        return "\n".join(lines)


def _wait(driver: webdriver.Chrome, condition: Callable[[Any], Any], seconds: float) -> bool:
    try:
        WebDriverWait(driver, seconds, poll_frequency=0.25).until(condition)
    except Exception:  # selenium's TimeoutException, or the page went away meanwhile
        return False
    return True


def _warehouse_chains(data_dir: Path) -> list[tuple[int, str]]:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT chain_id, title FROM altegio.chains ORDER BY chain_id")
        return [(int(chain_id), str(title)) for chain_id, title in rows.fetchall()]


def check_report(driver: webdriver.Chrome, data_dir: Path, work: Path, checks: Checks) -> None:
    """The report opened from disk with the network blocked: every chart drawn, every chain."""
    report = data_dir / REPORT_FILE
    if not checks.check("report: written beside the warehouse", report.is_file(), str(report)):
        return
    page = report.read_text(encoding="utf-8")
    declared = re.findall(r'<div id="(chart-[^"]+)" class="plotly-graph-div"', page)
    size_mb = report.stat().st_size / 1e6
    checks.check("report: charts declared in the file", bool(declared), f"{len(declared)}")

    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": BLOCKED_URLS})
    driver.get(report.as_uri())
    drawn = _wait(
        driver,
        lambda d: (
            d.execute_script("return document.readyState") == "complete"
            and len(d.execute_script(_CHARTS_JS)) == len(declared)
            and all(c["drawn"] and c["traces"] for c in d.execute_script(_CHARTS_JS))
        ),
        PAGE_WAIT_S,
    )
    checks.check("report: page finished drawing", drawn, f"{size_mb:.1f} MB file")
    checks.check(
        "report: plotly.js ran from the file", driver.execute_script("return typeof Plotly"), ""
    )
    rendered = {chart["id"]: chart for chart in driver.execute_script(_CHARTS_JS)}
    for div_id in declared:
        chart = rendered.get(div_id)
        checks.check(
            f"report: {div_id} drawn",
            chart is not None and chart["svgs"] > 0 and chart["traces"] > 0 and chart["width"] > 0,
            "" if chart is None else f"{chart['traces']} traces, {chart['width']} px wide",
        )
    text = driver.execute_script("return document.body.innerText")
    for chart_def in CHARTS:
        checks.check(f"report: chart title '{chart_def.title}' shown", chart_def.title in text)
    sections = driver.execute_script(_SECTIONS_JS)
    by_id = {section["id"]: section for section in sections}
    chains = _warehouse_chains(data_dir)
    for chain_id, title in chains:
        section = by_id.get(f"chain-{chain_id}")
        checks.check(
            f"report: section for chain {chain_id} ({title})",
            section is not None and title in section["heading"] and section["visible"],
        )
    resources = driver.execute_script("return performance.getEntriesByType('resource').length")
    checks.check("report: no resource fetched", resources == 0, f"{resources} requests")
    errors = console_errors(driver)
    checks.check("report: no console error", not errors, "; ".join(errors)[:200])
    full_page_screenshot(driver, work / "report.png")

    if len(chains) > 1:
        chain_id, title = chains[1]
        Select(driver.find_element("id", "chain-picker")).select_by_value(f"chain-{chain_id}")
        _wait(driver, lambda d: sum(s["visible"] for s in d.execute_script(_SECTIONS_JS)) == 1, 10)
        time.sleep(0.5)  # plotly's resize handler is debounced
        visible = [s["id"] for s in driver.execute_script(_SECTIONS_JS) if s["visible"]]
        checks.check(
            f"report: picker shows only chain {chain_id}",
            visible == [f"chain-{chain_id}"],
            ", ".join(visible),
        )
        widths = [
            c["width"]
            for c in driver.execute_script(_CHARTS_JS)
            if c["visible"] and c["id"].startswith(f"chart-{chain_id}-")
        ]
        checks.check(
            f"report: chain {chain_id}'s charts laid out after picking",
            bool(widths) and min(widths) > 200,
            f"widths {widths}",
        )
        full_page_screenshot(driver, work / f"report-chain-{chain_id}.png")
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})


def _webserver_ready(base_url: str, webserver: subprocess.Popen[bytes]) -> bool:
    query = {"query": "{ assetNodes { assetKey { path } } }"}
    deadline = time.monotonic() + WEBSERVER_WAIT_S
    while time.monotonic() < deadline and webserver.poll() is None:
        try:
            data = httpx.post(f"{base_url}/graphql", json=query, timeout=10).json()
            if (data.get("data") or {}).get("assetNodes"):
                return True
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(1)
    return False


def _location_name(base_url: str) -> str:
    query = {"query": "{ workspaceOrError { ... on Workspace { locationEntries { name } } } }"}
    data = httpx.post(f"{base_url}/graphql", json=query, timeout=10).json()
    (entry,) = data["data"]["workspaceOrError"]["locationEntries"]
    return str(entry["name"])


def _dismiss_welcome(driver: webdriver.Chrome, wait_s: float = 0) -> None:
    """The UI's first visit opens a 'Join the Dagster community' dialog over the page."""
    skip = (By.XPATH, "//button[normalize-space()='Skip']")
    if wait_s:
        _wait(driver, lambda d: any(b.is_displayed() for b in d.find_elements(*skip)), wait_s)
    for button in driver.find_elements(*skip):
        if button.is_displayed():
            button.click()
            _wait(driver, _gone(button), 10)


def _gone(element: Any) -> Callable[[webdriver.Chrome], bool]:
    return lambda _driver: not element.is_displayed()


def _shown(name: str, text: str) -> bool:
    """`name` drawn as a whole word (`locations` is also the end of `promotion_locations`)."""
    return re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text) is not None


def _shows_any(names: list[str]) -> Callable[[webdriver.Chrome], bool]:
    return lambda driver: any(_shown(name, _body_text(driver)) for name in names)


def _names_drawn(driver: webdriver.Chrome, names: list[str]) -> set[str]:
    """The names the graph draws, panning it from its top to its bottom: the UI draws only the
    nodes inside the window (the marts' graph is several windows tall)."""
    centre = ScrollOrigin.from_viewport(LINEAGE_WINDOW[0] // 2, LINEAGE_WINDOW[1] // 2)
    time.sleep(1)  # the graph animates into place
    for _ in range(LINEAGE_PAN_STEPS):
        ActionChains(driver).scroll_from_origin(centre, 0, -LINEAGE_PAN_PX).perform()
    seen: set[str] = set()
    # Half steps down, twice as far as it went up: from above the top to below the bottom.
    for _ in range(4 * LINEAGE_PAN_STEPS):
        time.sleep(0.5)
        text = _body_text(driver)
        seen |= {name for name in names if _shown(name, text)}
        if len(seen) == len(names):
            break
        ActionChains(driver).scroll_from_origin(centre, 0, LINEAGE_PAN_PX // 2).perform()
    return seen


def _body_text(driver: webdriver.Chrome) -> str:
    return str(driver.execute_script("return document.body.innerText"))


def check_dagster(
    driver: webdriver.Chrome,
    base_url: str,
    webserver: subprocess.Popen[bytes],
    work: Path,
    checks: Checks,
) -> None:
    """Each asset group's lineage page draws every asset of the code location; the marts'
    page shows the report the last materialization wrote."""
    from assets.definitions import defs

    ready = _webserver_ready(base_url, webserver)
    if not checks.check("dagster: webserver serves the code location", ready, base_url):
        return
    location = _location_name(base_url)
    graph = defs.resolve_asset_graph()
    groups: dict[str, list[str]] = {}
    for key in sorted(graph.get_all_asset_keys()):
        groups.setdefault(graph.get(key).group_name or "default", []).append(key.path[-1])
    driver.get(f"{base_url}/overview")
    _dismiss_welcome(driver, wait_s=WELCOME_WAIT_S)
    driver.set_window_size(*LINEAGE_WINDOW)
    try:
        for group, names in groups.items():
            url = f"{base_url}/locations/{location}/asset-groups/{group}/lineage"
            driver.get(url)
            _wait(driver, _shows_any(names), PAGE_WAIT_S)
            _dismiss_welcome(driver)
            _wait(driver, lambda d: "Loading" not in _body_text(d), PAGE_WAIT_S)
            time.sleep(1)  # the graph animates into place
            driver.save_screenshot(str(work / f"dagster-lineage-{group}.png"))
            seen = _names_drawn(driver, names)
            checks.check(f"dagster: lineage of group {group} drawn", bool(seen), url)
            for name in names:
                checks.check(f"dagster: lineage of {group} shows {group}/{name}", name in seen)
    finally:
        driver.set_window_size(*WINDOW)

    url = f"{base_url}/assets/marts/points_liability"
    driver.get(url)
    shown = _wait(driver, lambda d: "report_summary" in _body_text(d), PAGE_WAIT_S)
    _dismiss_welcome(driver)
    _wait(driver, lambda d: "Loading" not in _body_text(d), PAGE_WAIT_S)
    text = _body_text(driver)
    checks.check("dagster: marts asset lists the report's metadata", shown, url)
    checks.check(
        "dagster: the report's path is the one written", str(work.parent / REPORT_FILE) in text
    )
    full_page_screenshot(driver, work / "dagster-marts-asset.png")
