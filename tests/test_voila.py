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


def serve(notebook: Path, tmp_path: Path):
    """(html, server log) of a notebook served by Voila on a free local port."""
    pytest.importorskip("voila", reason="voila is not installed: pip install -e '.[app]' (or `make app`)")
    if not (models_dir() / "shapes-blip-caption" / "config.json").exists():
        pytest.skip("bundled model shapes-blip-caption is not in data/models; the app notebook's checks need it")
    NOTEBOOK = notebook  # noqa: N806 (the name the code below was written with)
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
        return page, log.read_text()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


@pytest.fixture
def voila_page(tmp_path):
    """(html, server log) of notebooks/11_caption_app.ipynb served by Voila."""
    return serve(NOTEBOOK, tmp_path)


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


XSS = "<img src=x onerror=alert(1)>"
XSS_CELLS = [
    f"import sys\nsys.path.insert(0, {str(REPO)!r})\nimport mmkit\nfrom widgets import CaptionApp\n"
    f"XSS = {XSS!r}\nmmkit.caption = lambda *a, **k: XSS  # the model 'writes' markup",
    "app = CaptionApp('shapes-blip-caption', background=False)\napp.picker.choose_scene(0, split='test')\n"
    "app.caption()\napp.picker.set_image(XSS.encode())  # an upload whose bytes are markup\napp",
    "from IPython.display import HTML, display\n"
    "display(HTML(app.caption_html.value))  # exactly what the caption widget puts in the page\n"
    "display(HTML(app.history_html.value))\ndisplay(HTML(app.dialog_message.value))",
    "import ipywidgets\nstack, values = [app], []\nwhile stack:\n    w = stack.pop()\n"
    "    if isinstance(w, ipywidgets.HTML):\n        values.append(w.value)\n"
    "    stack.extend(getattr(w, 'children', ()) or ())\n"
    "assert app.result == XSS and not [v for v in values if '<img' in v]\nprint('no raw markup in ' + str(len(values)) + ' HTML widgets')",
]


def test_voila_shows_markup_in_a_caption_as_text(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in XSS_CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "nb" / "xss.ipynb"
    path.parent.mkdir()
    nbformat.write(nb, path)
    page, log = serve(path, tmp_path)
    bad = [m for m in ERROR_MARKERS if m in html.unescape(page)]
    assert not bad, f"kernel error in the served page ({bad}):\n{page[-3000:]}\n--- log ---\n{log[-2000:]}"
    assert "no raw markup in" in page  # the kernel-side check of every HTML widget ran
    # Voila puts cell outputs in the page as JSON strings with <, >, & and ' as \\uXXXX escapes
    for code, char in (("003c", "<"), ("003e", ">"), ("0026", "&"), ("0027", "'")):
        page = page.replace("\\u" + code, char)
    assert "&lt;img src=x onerror=alert(1)&gt;" in page  # the caption is in the page, as text
    assert "<img src=x onerror" not in page  # and nowhere as markup
