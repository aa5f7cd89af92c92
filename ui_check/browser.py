"""Headless Debian Chromium, driven by Selenium through Debian's chromedriver.

Both come from the Debian packages `chromium` and `chromium-driver` (same version, so the
driver always matches the browser); `ensure_chromium` installs them with apt-get when they are
missing, which needs root. Selenium is told the driver's path, so it never downloads one.
"""

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
DEBIAN_PACKAGES = ("chromium", "chromium-driver")
# Headless on a machine without a screen or a GPU, as root, with a closed network: without the
# background-networking flags Chromium keeps trying (and failing) to reach Google's hosts.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
WINDOW = (1400, 1000)
# A full-page screenshot grows the window to the page; this caps it.
MAX_SCREENSHOT_HEIGHT_PX = 16000


class BrowserUnavailable(RuntimeError):
    """Chromium is missing and cannot be installed here."""


def ensure_chromium(say: Any = print) -> str:
    """The browser's version line; installs the Debian packages first if they are missing."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        if os.geteuid() != 0:
            raise BrowserUnavailable(
                f"{CHROMIUM} or {CHROMEDRIVER} missing and not root: run "
                f"`sudo apt-get install {' '.join(DEBIAN_PACKAGES)}` first"
            )
        apt = shutil.which("apt-get")
        if apt is None:
            raise BrowserUnavailable("Chromium is missing and there is no apt-get to install it")
        say(f"installing Debian {', '.join(DEBIAN_PACKAGES)} with apt-get (as root)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run([apt, "update", "-q"], check=True, env=env)  # noqa: S603
        subprocess.run(  # noqa: S603
            [apt, "install", "-y", "-q", "--no-install-recommends", *DEBIAN_PACKAGES],
            check=True,
            env=env,
        )
    version = subprocess.run(  # noqa: S603
        [str(CHROMIUM), "--version"], check=True, capture_output=True, text=True
    )
    return version.stdout.strip()


@contextmanager
def chromium(user_data_dir: Path) -> Iterator[webdriver.Chrome]:
    """A headless Chromium with a fresh profile in `user_data_dir`, closed on exit."""
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={user_data_dir}")
    options.add_argument(f"--window-size={WINDOW[0]},{WINDOW[1]}")
    # The page's console, read back to assert the page logged no error.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def full_page_screenshot(driver: webdriver.Chrome, path: Path) -> None:
    """The whole page as a PNG (the window grows to the page for the shot, then shrinks)."""
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(WINDOW[0], min(max(height, WINDOW[1]), MAX_SCREENSHOT_HEIGHT_PX))
    try:
        driver.save_screenshot(str(path))
    finally:
        driver.set_window_size(*WINDOW)


def console_errors(driver: webdriver.Chrome) -> list[str]:
    """Console messages of level SEVERE since the last call."""
    entries = driver.get_log("browser")  # type: ignore[no-untyped-call]
    return [str(entry["message"]) for entry in entries if entry["level"] == "SEVERE"]
