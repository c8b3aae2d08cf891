"""Voila serves notebooks/11_caption_app.ipynb as a web page: start it on 127.0.0.1, fetch the page, check it.

Only 127.0.0.1 is contacted. Skipped when voila is not installed (`pip install -e ".[app]"`) or the
bundled captioning model is missing (the notebook's checks need it).
"""
import html
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from mmkit.config import models_dir

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "11_caption_app.ipynb"
START_TIMEOUT = 60  # s for the server to answer at all
RENDER_TIMEOUT = 240  # s for the page (Voila runs the whole notebook before answering)
# what Voila puts in the page when a cell raises or the kernel dies (with show_tracebacks=True)
ERROR_MARKERS = ("There was an error when executing cell", "Traceback (most recent call last)", "AssertionError",
                 "DeadKernelError", "Kernel died")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, timeout: float) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 (127.0.0.1 only)
        return r.read().decode("utf-8", "replace")


@pytest.fixture
def voila_page(tmp_path):
    """(html, server log) of the notebook served by Voila on a free local port."""
    pytest.importorskip("voila", reason="voila is not installed: pip install -e '.[app]' (or `make app`)")
    if not (models_dir() / "shapes-blip-caption" / "config.json").exists():
        pytest.skip("bundled model shapes-blip-caption is not in data/models; the app notebook's checks need it")
    port = free_port()
    log = tmp_path / "voila.log"
    env = dict(os.environ, HF_HUB_OFFLINE="1", MPLBACKEND="Agg", TQDM_DISABLE="1", JUPYTER_PLATFORM_DIRS="1")
    cmd = [sys.executable, "-m", "voila", str(NOTEBOOK), "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
           "--VoilaConfiguration.show_tracebacks=True", f"--Voila.root_dir={NOTEBOOK.parent}"]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=NOTEBOOK.parent, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:  # wait until the server accepts connections (a bare TCP connect starts no kernel)
            if proc.poll() is not None:
                pytest.fail(f"voila exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"voila did not answer within {START_TIMEOUT} s:\n{log.read_text()[-3000:]}")
                time.sleep(0.5)
        page = get(base + "/", RENDER_TIMEOUT)
        yield page, log.read_text()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def test_voila_renders_the_caption_app(voila_page):
    page, log = voila_page
    text = html.unescape(page)
    bad = [m for m in ERROR_MARKERS if m in text]
    assert not bad, f"kernel error in the served page ({bad}):\n{text[-3000:]}\n--- log ---\n{log[-2000:]}"
    app_view = re.search(r'"application/vnd\.jupyter\.widget-view\+json": \{"model_id": "[0-9a-f]{32}"[^}]*\}, '
                         r'"text/plain": "CaptionApp\(', text)
    assert app_view, "the page has no CaptionApp widget view: the app was not displayed"
    assert "captions equal the ground truth" in text  # the check cells ran to the end
    assert "jupyter-widgets" in text  # the widget manager that draws the app is in the page
