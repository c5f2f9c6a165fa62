"""JupyterLab in a real browser: an executed notebook's level picker works from saved widget state.

Needs Chromium (Debian's `chromium`, which .ci/run installs) and the playwright package; skipped
where either is missing. Playwright drives the system Chromium (no browser download).
"""

from __future__ import annotations

import json
import os
import shutil
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


def _start_lab(tmp_path: Path, env: dict, token: str, log) -> tuple[subprocess.Popen, str]:
    """JupyterLab on a port the OS picks as it binds (port 0: no port chosen here and released
    before the server takes it); (the process, its base url) once it answers, read from the
    server's info file; the url is empty when the server ended before answering."""
    runtime = Path(env["JUPYTER_RUNTIME_DIR"])
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--port=0",
         "--ServerApp.port_retries=0", "--ip=127.0.0.1",
         f"--ServerApp.token={token}", f"--ServerApp.root_dir={tmp_path}",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         "--LabApp.news_url=", "--allow-root"],
        stdout=log, stderr=subprocess.STDOUT, env=env)
    info = runtime / f"jpserver-{proc.pid}.json"
    for _ in range(240):
        if proc.poll() is not None:
            break
        try:
            base = json.loads(info.read_text())["url"].rstrip("/")
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=1)
            return proc, base
        except (OSError, ValueError, KeyError):
            time.sleep(0.5)
    else:
        _stop(proc)
        pytest.fail("JupyterLab did not answer in 120 s:\n"
                    + (tmp_path / "lab.log").read_text()[-3000:])
    return proc, ""


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def lab(tmp_path: Path):
    """A JupyterLab server on localhost serving tmp_path; yields (base url, token, folder)."""
    token = "lthkit-test"
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / ".jupyter"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / ".runtime"),
           "JUPYTER_DATA_DIR": str(tmp_path / ".data"),  # holds the notebook-signing key
           "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / ".settings")}
    _lab_settings(Path(env["JUPYTERLAB_SETTINGS_DIR"]))
    log = open(tmp_path / "lab.log", "w")
    for _ in range(3):  # jupyter_server checks the port it was given before it listens on it
        proc, base = _start_lab(tmp_path, env, token, log)
        if base:
            break
    try:
        if not base:
            pytest.fail("JupyterLab ended before it answered:\n"
                        + (tmp_path / "lab.log").read_text()[-3000:])
        yield base, token, tmp_path, env
    finally:
        _stop(proc)
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


MATH_SOURCE = __import__("re").compile(r"\$[^$\n]+\$")
LOCAL_SCHEMES = ("file:", "about:", "data:", "blob:")  # none of them leaves the machine


def _leaving(requests: list[str]) -> list[str]:
    """The requests that would leave the machine."""
    return [u for u in requests if not u.startswith(LOCAL_SCHEMES)]


def _open_offline(page_file: Path, screenshot: Path | None = None) -> dict:
    """Open a file in Chromium with every non-file request refused; wait for MathJax to finish.
    Returns what the page showed and every request it made."""
    requests, failed = [], []
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        context.route("**/*", lambda route: route.abort() if _leaving([route.request.url])
                      else route.continue_())
        page = context.new_page()
        page.on("request", lambda r: requests.append(r.url))
        page.on("requestfailed", lambda r: r.url.startswith("file:") and failed.append(r.url))
        page.goto(page_file.as_uri())
        page.wait_for_function(
            "() => window.MathJax && MathJax.Hub && MathJax.Hub.queue && "
            "MathJax.Hub.queue.pending === 0 && MathJax.Hub.queue.running === 0 && "
            "document.querySelectorAll('.MathJax, .MathJax_Display').length > 0",
            timeout=60_000)
        page.wait_for_timeout(500)  # typesetting queued behind the first pass
        shown = page.evaluate("() => Array.from(document.querySelectorAll('.jp-RenderedMarkdown'))"
                              ".map(e => e.innerText).join('\\n')")
        rendered = page.evaluate("() => document.querySelectorAll('.MathJax').length")
        errors = page.evaluate("() => document.querySelectorAll('.MathJax_Error, merror').length")
        if screenshot is not None:
            page.screenshot(path=str(screenshot))
        browser.close()
    return {"requests": requests, "failed": failed, "shown": shown, "rendered": rendered,
            "errors": errors}


@pytest.mark.notebook
def test_executed_notebook_html_renders_math_offline(smoke, tmp_path):
    """An executed notebook's HTML copy shows typeset math, not `$...$` source, with the network
    refused; it asks nothing of any address but its own run folder's files."""
    from lthkit.report.offline_html import MATHJAX_DIR
    from lthkit.report.runner import write_html

    executed = smoke.run("01_train_imp")
    run_dir = tmp_path / "run"
    (run_dir / "notebooks").mkdir(parents=True)
    notebook = run_dir / "notebooks" / "01_train_imp.ipynb"
    nbformat.write(executed, notebook)
    page_file = write_html(notebook)
    source_math = sum(len(MATH_SOURCE.findall(c.source)) for c in executed.cells
                      if c.cell_type == "markdown")
    assert source_math >= 5, "notebook 01's prose holds math to render"
    html_text = page_file.read_text()
    assert "cdnjs" not in html_text and "unpkg" not in html_text

    seen = _open_offline(page_file, tmp_path / "offline_math.png")
    assert _leaving(seen["requests"]) == [], seen["requests"]
    assert not seen["failed"], f"files the page could not load: {seen['failed']}"
    assert all(Path(u.removeprefix("file://")).resolve().is_relative_to(run_dir.resolve())
               for u in seen["requests"] if u.startswith("file:")), "the page loads only files of its run folder"
    assert MATH_SOURCE.findall(seen["shown"]) == [], "math source still visible"
    assert seen["rendered"] >= source_math and seen["errors"] == 0
    assert (run_dir / MATHJAX_DIR / "MathJax.js").exists()


def test_html_of_a_replicate_finds_the_run_folders_mathjax(tmp_path):
    """A replicate's notebook (<run>/replicate_1/notebooks/) reaches <run>/_static/mathjax, and
    the page still renders when the run folder is moved: the address is relative."""
    from lthkit.report.runner import write_html

    run_dir = tmp_path / "run"
    folder = run_dir / "replicate_1" / "notebooks"
    folder.mkdir(parents=True)
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell(r"The sharpness $\lambda_{max}$ and $V'(k) = \sum_{i \le k}"
                                      r" \log \lambda_i$; $$\|W_{min(L)} - W_{rewind}\|_2$$")])
    nbformat.write(nb, folder / "x.ipynb")
    page_file = write_html(folder / "x.ipynb")
    assert "../../_static/mathjax/MathJax.js" in page_file.read_text()
    moved = tmp_path / "moved"
    run_dir.rename(moved)
    seen = _open_offline(moved / "replicate_1" / "notebooks" / "x.html")
    assert _leaving(seen["requests"]) == []
    assert not seen["failed"] and seen["errors"] == 0
    assert MATH_SOURCE.findall(seen["shown"]) == [] and seen["rendered"] == 3
