"""Layout measured in a real browser: the caption app and the task panels at 1280x800, 1024x768 and 390 px wide.

For every visible label, button, slider readout and heading: its text is not clipped (scrollWidth <= clientWidth),
it lies inside the window, and its box overlaps no other (nested boxes aside). Also: only the decoding controls
of the chosen mode are shown; the model notice is one short line with its details behind a toggle; on a phone
the image, the result, the attention words and the map read top to bottom; Tab reaches the Caption button and
Enter runs it. Voila (the app page of `make app`, one kernel resized to each width) and JupyterLab (the same
widgets in a notebook's output). Screenshots per width: out/browser/app_1280.png (the README's), app_1024.png,
app_390.png, panels_*.png, lab_*.png.
"""
import json
import re
import shutil
import sys
import time

import pytest

from test_browser import OUT, REPO, TOKEN, Server, accept_dialogs, browser, free_port, need, open_lab, open_voila, server_env  # noqa: F401

WIDTHS = [(1280, 800), (1024, 768), (390, 844)]
CAPTION = re.compile(r"^\W*Caption\s*$")
MODES = {"greedy": set(), "beam": {"beams"}, "sampling": {"temperature", "top-p", "seed"}}
OPTIONAL = {"beams", "temperature", "top-p", "seed"}  # decoding controls that only some modes show
ROWS_JS = "() => Math.max(0, document.querySelectorAll('.widget-html-content table tr').length - 1)"
# every visible label / button / readout / heading under root: clipped text, boxes outside the window, overlaps
LAYOUT_JS = """(rootSel) => {
  const roots = [...document.querySelectorAll(rootSel)];
  const sel = 'button, label, .widget-label, .widget-readout, summary, h3, .widget-html-content b';
  const shown = e => { const r = e.getBoundingClientRect(), cs = getComputedStyle(e);
    return r.width > 0 && r.height > 0 && cs.visibility !== 'hidden' && e.offsetParent !== null &&
           (e.innerText || '').trim() !== ''; };
  const els = [...new Set(roots.flatMap(r => [...r.querySelectorAll(sel)]))].filter(shown);
  const name = e => (e.innerText || '').trim().replace(/\\s+/g, ' ').slice(0, 40);
  const clipped = els.filter(e => e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1)
                     .map(e => `${name(e)} (${e.scrollWidth} > ${e.clientWidth} px)`);
  const W = document.documentElement.clientWidth;
  const outside = els.filter(e => { const r = e.getBoundingClientRect(); return r.left < -1 || r.right > W + 1; })
                     .map(e => `${name(e)} (${Math.round(e.getBoundingClientRect().right)} > ${W})`);
  const overlaps = [];
  for (let i = 0; i < els.length; i++) for (let j = i + 1; j < els.length; j++) {
    const a = els[i], b = els[j];
    if (a.contains(b) || b.contains(a)) continue;
    const p = a.getBoundingClientRect(), q = b.getBoundingClientRect();
    const w = Math.min(p.right, q.right) - Math.max(p.left, q.left), h = Math.min(p.bottom, q.bottom) - Math.max(p.top, q.top);
    if (w > 1 && h > 1) overlaps.push(`'${name(a)}' / '${name(b)}'`);
  }
  return {n: els.length, labels: els.map(name), clipped, outside, overlaps,
          page_overflow: document.documentElement.scrollWidth > W + 1 ? document.documentElement.scrollWidth : 0};
}"""
SHOWN_LABELS_JS = """() => [...document.querySelectorAll('.widget-label, label')]
  .filter(e => e.offsetParent !== null && e.getBoundingClientRect().width > 0).map(e => e.innerText.trim())"""


def check_layout(page, root: str, where: str) -> dict:
    got = page.evaluate(LAYOUT_JS, root)
    assert got["n"] > 10, f"{where}: only {got['n']} labels/buttons found under {root}"
    problems = {k: got[k] for k in ("clipped", "outside", "overlaps") if got[k]}
    assert not problems and not got["page_overflow"], f"{where}: {json.dumps(problems, indent=1)}; " \
                                                      f"page {got['page_overflow']} px wide"
    return got


def screenshot(page, locator, path, width: int, height: int) -> None:
    """An element screenshot with the whole page inside the window (headless chromium leaves what lies below
    the window blank; Voila scrolls an inner box, not the document), then the window as it was."""
    full = page.evaluate("() => Math.max(...[...document.querySelectorAll('*')].map(e => e.scrollHeight))") + 40
    page.set_viewport_size({"width": width, "height": max(height, full)})
    page.wait_for_timeout(300)
    locator.screenshot(path=str(path))
    page.set_viewport_size({"width": width, "height": height})


def top(page, js_selector: str) -> float:
    return page.evaluate(f"() => {{ const e = {js_selector}; return e ? e.getBoundingClientRect().top : null; }}")


@pytest.fixture(scope="module")
def voila_app(browser, tmp_path_factory):  # noqa: F811 (the fixture imported from test_browser)
    """A page of the caption app served by Voila as `make app` does (notebook 11, check cells and all)."""
    tmp = tmp_path_factory.mktemp("voila-layout")
    server, page = open_voila(browser, tmp, REPO / "notebooks" / "11_caption_app.ipynb")
    try:
        page.goto(server.url, timeout=300_000)
        page.locator("button").filter(has_text=CAPTION).wait_for(timeout=300_000)
        yield page
    finally:
        page.close()
        server.stop()


def test_keyboard_tab_reaches_caption_and_enter_runs_it(voila_app):
    page = voila_app
    rows = page.evaluate(ROWS_JS)
    page.locator("body").click(position={"x": 2, "y": 2})
    for _ in range(80):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement && document.activeElement.innerText") and re.fullmatch(
                r"\W*Caption\s*", page.evaluate("() => document.activeElement.innerText || ''")):
            break
    else:
        pytest.fail("80 presses of Tab never reached the Caption button")
    page.keyboard.press("Enter")
    page.wait_for_function(f"() => ({ROWS_JS})() > {rows}", timeout=120_000)
    page.locator("button[title^='map of']").nth(2).click()  # a word's map, for the screenshots
    page.wait_for_function("() => [...document.querySelectorAll('img')].some(i => i.naturalWidth > 0 && "
                           "i.getBoundingClientRect().width > 200)", timeout=60_000)


@pytest.mark.parametrize("width,height", WIDTHS)
def test_caption_app_layout(voila_app, width, height):
    page = voila_app
    page.set_viewport_size({"width": width, "height": height})
    page.wait_for_timeout(500)
    app = "div.widget-vbox:has(> .widget-html h3)"  # the CaptionApp's own box
    for mode, extra in MODES.items():
        page.locator("button.widget-toggle-button", has_text=re.compile(f"^{mode}$")).click()
        try:
            page.wait_for_function(f"() => {{ const s = new Set(({SHOWN_LABELS_JS})()); return "
                                   f"{json.dumps(sorted(extra))}.every(x => s.has(x)) && "
                                   f"{json.dumps(sorted(OPTIONAL - extra))}.every(x => !s.has(x)); }}", timeout=30_000)
        except Exception:
            shown = set(page.evaluate(SHOWN_LABELS_JS))
            pytest.fail(f"{mode}: decoding controls shown {sorted(shown & OPTIONAL)}, expected {sorted(extra)}")
        check_layout(page, app, f"{width}px, {mode}")
    summary = page.locator("summary", has_text="bundled model (offline): shapes-blip-caption")
    box = summary.bounding_box()
    assert box and box["height"] < 30, f"the model notice is not one line: {box}"  # one line of ~13 px text
    details = page.locator("details", has=summary)
    reason = details.get_by_text("the hub is not reachable")
    assert details.get_attribute("open") is None and not reason.is_visible()
    summary.click()  # the toggle opens the details
    assert reason.is_visible()
    summary.click()
    page.locator("button.widget-toggle-button", has_text=re.compile("^greedy$")).click()
    page.wait_for_timeout(300)
    if width < 600:  # a phone: image, result, attention words and map top to bottom
        order = [top(page, "[...document.querySelectorAll('img')].find(i => i.naturalWidth > 0)"),
                 top(page, "[...document.querySelectorAll('div')].find(e => e.style.fontSize === '1.3em')"),
                 top(page, "document.querySelector(\"button[title^='map of']\")"),
                 top(page, "[...document.querySelectorAll('img')].filter(i => i.naturalWidth > 0).pop()")]
        assert None not in order and order == sorted(order) and len(set(order)) == 4, order
    screenshot(page, page.locator(app).first, OUT / f"app_{width}.png", width, height)


# the task panels (widgets/panels.py), the video panel, the fusion lab, the attention explorer, the fine-tuning panel
PANELS = ["CaptionPanel", "VQAPanel", "ZeroShotPanel", "RetrievalPanel", "VideoPanel", "FusionLab",
          "AttentionExplorer", "FinetunePanel"]
PANELS_NB = [f"import sys\nsys.path.insert(0, {str(REPO)!r})\nimport widgets\nfrom IPython.display import display",
             *[f"p = widgets.{name}()\np.add_class('mmkit-panel')\ndisplay(p)" for name in PANELS]]


def panels_notebook(path):
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in PANELS_NB])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def test_task_panels_layout_in_voila(browser, tmp_path):  # noqa: F811
    server, page = open_voila(browser, tmp_path, panels_notebook(tmp_path / "nb" / "panels.ipynb"))
    try:
        page.goto(server.url, timeout=300_000)
        page.wait_for_function(f"() => document.querySelectorAll('.mmkit-panel').length == {len(PANELS)}",
                               timeout=300_000)
        assert "Traceback" not in page.inner_text("body")
        for width, height in WIDTHS:
            page.set_viewport_size({"width": width, "height": height})
            page.wait_for_timeout(500)
            check_layout(page, ".mmkit-panel", f"task panels, Voila, {width}px")
            screenshot(page, page.locator("body"), OUT / f"panels_{width}.png", width, height)
    finally:
        page.close()
        server.stop()


def test_app_and_panels_layout_in_jupyterlab(browser, tmp_path):  # noqa: F811
    root = tmp_path / "nb"
    cells = PANELS_NB + ["from widgets import CaptionApp\napp = CaptionApp('blip-caption')\napp.add_class('mmkit-panel')\n"
                         "app.picker.choose_scene(1, split='test'); app.button.click(); app.wait(); app"]
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    root.mkdir()
    nbformat.write(nb, root / "layout.ipynb")
    server, page = open_lab(browser, tmp_path, root, "layout.ipynb", (1280, 800), 120)
    try:
        page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-item", has_text="Run All Cells").first.click()
        deadline = time.monotonic() + 300
        while page.locator(".mmkit-panel").count() < len(PANELS) + 1 or not page.locator(
                "button[title^='map of']").count():
            accept_dialogs(page)
            if time.monotonic() > deadline:
                page.screenshot(path=str(OUT / "lab_layout_timeout.png"))
                pytest.fail(f"the panels did not all appear in JupyterLab:\n{server.log.read_text()[-2000:]}")
            time.sleep(1)
        if page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current").count():
            page.keyboard.press("Control+b")  # close the file browser: a phone has no room for it
        for width, height in WIDTHS:
            page.set_viewport_size({"width": width, "height": height})
            page.wait_for_timeout(800)
            check_layout(page, ".jp-OutputArea-output .mmkit-panel", f"JupyterLab, {width}px")
            page.locator(".mmkit-panel").last.scroll_into_view_if_needed()
            page.screenshot(path=str(OUT / f"lab_app_{width}.png"))
    finally:
        page.close()
        server.stop()
