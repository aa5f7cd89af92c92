"""`make dev` serves the UI: the webserver starts on the workspace and lists every asset."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from assets.definitions import defs

REPO = Path(__file__).resolve().parents[2]
STARTUP_LIMIT_S = 180  # a bound on waiting, not a timing assertion


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.xdist_group("webserver")
def test_webserver_graphql_lists_every_asset_node(tmp_path):
    port = _free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path),
        "ALTEGIO_BASE_URL": "sandbox",
        "ALTEGIO_DATA_DIR": str(tmp_path / "data"),
    }
    webserver = Path(sys.executable).with_name("dagster-webserver")
    proc = subprocess.Popen(
        [str(webserver), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/graphql"
        query = "{ assetNodes { assetKey { path } } }"
        deadline = time.monotonic() + STARTUP_LIMIT_S
        nodes = None
        while time.monotonic() < deadline:
            try:
                response = httpx.post(url, json={"query": query}, timeout=10)
                data = response.json().get("data") or {}
                if data.get("assetNodes"):
                    nodes = data["assetNodes"]
                    break
            except (httpx.HTTPError, ValueError):
                pass
            assert proc.poll() is None, "webserver exited"
            time.sleep(1)
        assert nodes is not None, "webserver never answered with asset nodes"
        served = {tuple(n["assetKey"]["path"]) for n in nodes}
        # The code location's own assets (test_definitions pins which those are).
        assert served == {tuple(k.path) for k in defs.resolve_asset_graph().get_all_asset_keys()}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
