"""JupyterLab in a real browser: an executed notebook's level picker works from saved widget state.

Needs Chromium (Debian's `chromium`, which .ci/run installs) and the playwright package; skipped
where either is missing. Playwright drives the system Chromium (no browser download).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium)")]

CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _lab_settings(folder: Path) -> None:
    """Render every cell (no virtual scrolling) and ask nothing about news."""
    settings = {"notebook-extension/tracker": {"windowingMode": "none"},
                "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False}}
    for name, values in settings.items():
        path = folder / "@jupyterlab" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def _png_digest(page, selector: str) -> str:
    """A digest of the bytes of the image an <img> shows (its src is a fresh blob URL each time)."""
    return page.evaluate(
        """async (sel) => { const img = document.querySelector(sel);
             const buf = await (await fetch(img.src)).arrayBuffer();
             const hash = await crypto.subtle.digest('SHA-256', buf);
             return Array.from(new Uint8Array(hash)).map(b => b.toString(16)).join(''); }""",
        selector)


@pytest.fixture
def lab(tmp_path: Path):
    """A JupyterLab server on localhost serving tmp_path; yields (base url, token, folder)."""
    port, token = _free_port(), "lthkit-test"
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / ".jupyter"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / ".runtime"),
           "JUPYTER_DATA_DIR": str(tmp_path / ".data"),  # holds the notebook-signing key
           "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / ".settings")}
    _lab_settings(Path(env["JUPYTERLAB_SETTINGS_DIR"]))
    log = open(tmp_path / "lab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--ServerApp.token={token}", f"--ServerApp.root_dir={tmp_path}",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         "--LabApp.news_url=", "--allow-root"],
        stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not start:\n" + (tmp_path / "lab.log").read_text()[-3000:])
        yield base, token, tmp_path, env
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.mark.notebook
def test_level_picker_changes_the_figure_in_jupyterlab(smoke, lab):
    smoke.run("01_train_imp")
    executed = smoke.run("01_train_imp", interactive=True)
    assert "widgets" in executed.metadata, "widget state must be saved in the executed notebook"
    base, token, folder, env = lab
    notebook = folder / "picker.ipynb"
    nbformat.write(executed, notebook)
    # Outputs of an untrusted notebook fall back to plain text: trust it as its author would.
    subprocess.run([sys.executable, "-m", "jupyter", "trust", str(notebook)], env=env, check=True,
                   capture_output=True)

    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{base}/lab/tree/picker.ipynb?token={token}")
        slider = page.locator(".widget-slider .noUi-handle").first
        slider.wait_for(state="visible", timeout=180_000)
        slider.scroll_into_view_if_needed()
        page.locator(".widget-vbox img").first.wait_for(state="visible", timeout=60_000)
        readout = page.locator(".widget-slider .widget-readout").first
        label_before, before = readout.inner_text(), _png_digest(page, ".widget-vbox img")
        slider.focus()
        page.keyboard.press("ArrowRight")
        page.wait_for_function(
            "(label) => document.querySelector('.widget-slider .widget-readout').innerText !== label",
            arg=label_before, timeout=30_000)
        page.locator(".widget-vbox img").first.wait_for(state="visible", timeout=30_000)
        label_after, after = readout.inner_text(), _png_digest(page, ".widget-vbox img")
        shot = folder / "jupyterlab_level_picker.png"
        page.screenshot(path=str(shot), full_page=False)
        browser.close()
    assert before != after, "moving the picker must show another level's figure"
    assert label_before != label_after
    assert shot.stat().st_size > 20_000
    keep = os.environ.get("LTHKIT_SCREENSHOT_DIR")
    if keep:
        shutil.copy(shot, Path(keep) / shot.name)
