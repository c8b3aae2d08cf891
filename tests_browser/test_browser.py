"""Real-browser tests: Debian's chromium driven by Playwright, against JupyterLab and Voila on 127.0.0.1.

1. JupyterLab: open notebooks/00_start_here.ipynb (a copy, so outputs are never saved into the source),
   Run > Run All Cells, wait for every cell, and check the outputs (no traceback, captions, figures).
2. Voila: open the caption app (notebooks/11_caption_app.ipynb), pick a sample photo, press Caption,
   click a word, and check that the page shows the caption and the attention image.

Screenshots go to out/browser/ (MMKIT_BROWSER_OUT overrides). Run with `make test-browser`, which installs
chromium (apt) and playwright (pip) when missing; no browser is ever downloaded. Only 127.0.0.1 is contacted.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OUT = Path(os.environ.get("MMKIT_BROWSER_OUT", REPO / "out" / "browser"))
CHROMIUM = os.environ.get("MMKIT_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
REQUIRED = os.environ.get("MMKIT_BROWSER_REQUIRED") == "1"  # set by `make test-browser`: missing tools fail, not skip
TOKEN = "mmkit-browser-test"


def need(ok: bool, why: str):
    if not ok:
        (pytest.fail if REQUIRED else pytest.skip)(why)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server process in its own session, waited for on its port, killed with its children at the end."""

    def __init__(self, cmd, cwd, log: Path, port: int, env=None, timeout: float = 90):
        self.log = log
        with open(log, "w") as out:
            self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{cmd[2]} exited with {self.proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{cmd[2]} did not answer within {timeout} s:\n{log.read_text()[-3000:]}")
                time.sleep(0.5)

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def accept_dialogs(page) -> None:
    """Accept JupyterLab's modal dialogs (e.g. "Select Kernel": the notebook's own python3 is preselected)."""
    for button in page.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept").all():
        if button.is_visible():
            button.click()


def open_lab(browser, tmp_path: Path, root: Path, notebook: str, viewport=(1280, 800), timeout: float = 120):
    """Start JupyterLab on `root` and open `notebook` in a new page: (server, page), the page past its
    "Select Kernel" dialog. Every cell stays in the DOM (no virtual scrolling), so a page can be read whole."""
    settings = tmp_path / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    port = free_port()
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
           f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}", "--allow-root",
           f"--LabApp.user_settings_dir={tmp_path / 'settings'}", f"--LabApp.workspaces_dir={tmp_path / 'ws'}"]
    server = Server(cmd, root, tmp_path / "lab.log", port, server_env(tmp_path))
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    try:
        page.goto(f"http://127.0.0.1:{port}/lab/tree/{notebook}?token={TOKEN}&reset", timeout=timeout * 1000)
        page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=timeout * 1000)
        page.wait_for_timeout(3000)  # a "Select Kernel" dialog may open while the kernel starts
        accept_dialogs(page)
    except Exception:
        page.close()
        server.stop()
        raise
    return server, page


def open_voila(browser, tmp: Path, notebook: Path, viewport=(1280, 800)):
    """Serve `notebook` with Voila as `make app` does and open it in a new page: (server, page). Voila runs
    the notebook before it answers, so the caller waits for what it needs on the page."""
    port = free_port()
    cmd = [sys.executable, "-m", "voila", str(notebook), "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
           "--VoilaConfiguration.show_tracebacks=True", f"--Voila.root_dir={notebook.parent}"]
    server = Server(cmd, notebook.parent, tmp / "voila.log", port, server_env(tmp))
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    server.url = f"http://127.0.0.1:{port}/"
    return server, page


def server_env(tmp: Path) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TQDM_DISABLE="1", JUPYTER_PLATFORM_DIRS="1",
               JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTER_RUNTIME_DIR=str(tmp / "runtime"))
    env.pop("CI", None)
    env.pop("MPLBACKEND", None)  # figures render inline in the page, as a learner sees them  # the notebooks run as a learner's would (00 and 11 have no reduced budget anyway)
    return env


@pytest.fixture(scope="module")
def browser():
    need(Path(CHROMIUM).exists(), f"no chromium at {CHROMIUM}: apt-get install chromium (or set MMKIT_CHROMIUM)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need(False, "playwright is not installed: pip install -e '.[browser]'")
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def test_jupyterlab_runs_start_here(browser, tmp_path):
    root = tmp_path / "nb"
    root.mkdir()
    shutil.copy(REPO / "notebooks" / "00_start_here.ipynb", root)
    server, page = open_lab(browser, tmp_path, root, "00_start_here.ipynb", (1400, 1000), 90)
    try:
        page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-item", has_text="Run All Cells").first.click()
        prompts = "() => [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')].map(e => e.textContent)"
        deadline = time.monotonic() + 180
        while True:  # done when every code cell shows its execution count
            accept_dialogs(page)
            shown = page.evaluate(prompts)
            if shown and all(re.fullmatch(r"\[\d+\]:", s.strip()) for s in shown):
                break
            if time.monotonic() > deadline:
                page.screenshot(path=str(OUT / "jupyterlab_timeout.png"))
                pytest.fail(f"cells did not finish in JupyterLab: prompts {shown}\n{server.log.read_text()[-2000:]}")
            time.sleep(1)
        text = page.locator(".jp-Notebook").inner_text()
        page.screenshot(path=str(OUT / "jupyterlab_00_start_here.png"), full_page=True)
        assert "Traceback (most recent call last)" not in text, text[-3000:]
        assert "captions match the ground truth exactly" in text  # cell outputs from the bundled BLIP
        images = page.evaluate("() => [...document.querySelectorAll('.jp-OutputArea-output img')]"
                               ".filter(i => i.naturalWidth > 0).length")
        kinds = page.evaluate("() => [...document.querySelectorAll('.jp-OutputArea-output')].map(e => e.dataset.mimeType)")
        assert images >= 4, f"only {images} figures rendered; output kinds {kinds}"
    finally:
        page.close()
        server.stop()


def test_voila_caption_app_click_through(browser, tmp_path):
    pytest.importorskip("voila") if not REQUIRED else None
    server, page = open_voila(browser, tmp_path, REPO / "notebooks" / "11_caption_app.ipynb", (1200, 900))
    try:
        page.goto(server.url, timeout=240_000)  # Voila runs the notebook before it answers
        caption_button = page.locator("button").filter(has_text=re.compile(r"^\W*Caption\s*$"))  # text after its icon
        try:
            caption_button.wait_for(timeout=180_000)
        except Exception:
            page.screenshot(path=str(OUT / "voila_timeout.png"), full_page=True)
            raise
        assert "Traceback" not in page.inner_text("body")
        caption_js = """() => { const d = [...document.querySelectorAll('div')].find(e => e.style.fontSize === '1.3em');
                                return d ? d.innerText : null; }"""
        before = page.evaluate(caption_js)
        # choose a sample photo, press Caption
        page.locator(".widget-dropdown", has_text="sample photo").locator("select").select_option("cat")
        page.wait_for_function("() => document.body.innerText.includes('sample photo: cat')", timeout=60_000)
        caption_button.click()
        page.wait_for_function(f"() => {{ const d = [...document.querySelectorAll('div')].find(e => e.style.fontSize === '1.3em');"
                               f" return d && d.innerText && d.innerText !== {json.dumps(before)}; }}", timeout=120_000)
        caption = page.evaluate(caption_js)
        assert re.fullmatch(r"[a-z ]+", caption.strip()), caption
        # click the first word: its attention image appears
        page.locator("button[title^='map of']").first.click()
        attention = ("() => [...document.querySelectorAll('img')].filter(i => i.naturalWidth > 0 && "
                     "Math.abs(i.getBoundingClientRect().width - 300) < 2).length")
        page.wait_for_function(attention, timeout=60_000)
        body = page.inner_text("body")
        assert caption in body and "Traceback" not in body
        # the README's picture: a scene drawn on a held-out photo background (a look the model never trained on),
        # one the bundled captioner gets right, and the map of one of its words
        page.locator(".widget-dropdown", has_text="look").locator("select").select_option(label="photo-test (held out)")
        index = page.locator(".widget-text", has_text="scene #").locator("input")
        index.fill("9")
        index.press("Tab")  # the number is sent to the kernel when the field loses focus
        page.locator("button").filter(has_text=re.compile(r"^\W*Generate\s*$")).click()
        page.wait_for_function("() => document.body.innerText.includes('test #9, photo-test look')", timeout=60_000)
        caption_button.click()
        expected = "a small green square to the left of a small blue square"  # its ground truth
        page.wait_for_function(f"() => document.body.innerText.includes('(matches)') && "
                               f"document.body.innerText.includes({json.dumps(expected)})", timeout=120_000)
        map_src = ("() => { const i = [...document.querySelectorAll('img')].find(i => i.naturalWidth > 0 && "
                   "Math.abs(i.getBoundingClientRect().width - 300) < 2); return i ? i.src : null; }")
        before_map = page.evaluate(map_src)
        page.locator("button[title^='map of']").filter(has_text=re.compile(r"^\s*green\s*$")).first.click()
        page.wait_for_function(f"() => ({map_src})() !== {json.dumps(before_map)} && [...document.querySelectorAll("
                               f"'button.mod-info')].some(b => b.innerText.trim() === 'green')", timeout=60_000)
        assert "Traceback" not in page.inner_text("body")
        app = page.locator(".widget-vbox", has=page.locator("h3", has_text="Captioning app")).first
        page.set_viewport_size({"width": 1200, "height": 1800})  # the whole app in view: nothing left unpainted
        page.evaluate("() => window.scrollTo(0, 0)")
        page.wait_for_timeout(500)
        app.screenshot(path=str(OUT / "caption_app.png"))
        page.screenshot(path=str(OUT / "voila_page.png"), full_page=True)
    finally:
        page.close()
        server.stop()
