"""A simulated student who uses the caption app over Voila's protocols, with no browser.

It does what the page's own JavaScript does, so thirty of them fit on the machine that serves the class (thirty
headless chromium tabs on the server's two cores were the bottleneck of the browser load test, not the server):

1. GET the app's URL (time to the first byte and to the whole page); read the kernel id (`jupyter-config-data`)
   and the app's widget model id (the `application/vnd.jupyter.widget-view+json` output) from it. With
   `assets` (a list of paths, benchmarks/classroom_assets.json: what a chromium page loaded), GET those too,
   6 at a time, as a browser's first visit does before its JavaScript connects to the kernel.
2. GET /api/kernels/<id>, open the kernel websocket (mmkit.classroom.wsproto) and load every widget's state:
   the app is usable when its Caption button's model has arrived.
3. Pick their own scene (scene # = their number, Generate), caption it greedily, click a word, switch the
   decoding to beam search, caption again, click another word, with seeded random think times over the run.
   A caption's latency runs from the click to the new history row; a word's, to the new attention map.
4. Check that the history holds their own two captions, newest first, and no error box, error line or
   traceback; then, when every student is done, close the tab (POST /voila/api/shutdown/<id>, as the page
   does on `beforeunload`).

    results = asyncio.run(mmkit.classroom.student.run_students("http://127.0.0.1:8866/", users=6, duration=60))
"""
from __future__ import annotations

import asyncio
import html
import json
import random
import re
import threading
import time
from urllib.parse import urljoin, urlparse

from .wsproto import KernelChannel

PAGE_TIMEOUT = 300.0  # s for the page and its widgets (plain Voila runs notebook 11 before it answers)
ACTION_TIMEOUT = 180.0  # s for one caption or map
CONFIG = re.compile(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', re.S)
VIEW = re.compile(r'"application/vnd\.jupyter\.widget-view\+json": \{"model_id": "([0-9a-f]+)"')
TAG = re.compile(r"<[^>]+>")


def text_of(value: str) -> str:
    """The text a reader sees in an HTML widget's value."""
    return " ".join(html.unescape(TAG.sub(" ", value or "")).split())


def history_rows(value: str) -> list[list[str]]:
    """The rows of the app's history table (newest first), each a list of cell texts; [] for no table."""
    rows = re.findall(r"<tr>(.*?)</tr>", value or "", re.S)
    return [[text_of(c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)] for r in rows[1:]]


class Page:
    """The app as one student sees it: the widgets they use, found the way a reader finds them on the page."""

    def __init__(self, ch: KernelChannel, root: str):
        self.ch, self.root, w = ch, root, ch.widgets
        self.caption = w.find(root, "ButtonModel", description="Caption")
        self.generate = w.find(root, "ButtonModel", description="Generate")
        self.scene = w.find(root, "BoundedIntTextModel", description="scene #")
        self.decoding = w.find(root, "ToggleButtonsModel", description="decoding")
        self.history = w.after(root, "<b>History</b>")
        self.words = w.after(root, "<b>Attention</b>")
        box = next((m for m in w.tree(root) if self.words in w.children(m)), None)
        kids = w.children(box) if box else []
        self.image = next((m for m in kids[kids.index(self.words):] if w.models[m]["model_name"] == "ImageModel"),
                          None) if self.words in kids else None
        self.dialog = next((m for m in w.tree(root) if w.models[m]["model_name"] == "VBoxModel" and any(
            "Something went wrong" in w.state(c).get("value", "") for c in w.children(m))), None)
        self.error_line = w.children(root)[-1] if w.children(root) else None  # Panel's error line, last
        missing = [k for k in ("caption", "generate", "scene", "decoding", "history", "words", "image", "dialog")
                   if getattr(self, k) is None]
        if missing:
            raise LookupError(f"the app's widgets {missing} were not found on the page")

    def rows(self) -> list[list[str]]:
        return history_rows(self.ch.widgets.state(self.history).get("value", ""))

    def problems(self) -> list[str]:
        """The error box, the panel's error line and tracebacks, as a student would report them."""
        w, out = self.ch.widgets, []
        layout = w.ref(self.dialog, "layout")
        if layout and w.state(layout).get("display") != "none":
            msg = " ".join(text_of(w.state(c).get("value", "")) for c in w.children(self.dialog))
            out.append(f"error box open: {msg.strip()[:200]}")
        if self.error_line and (err := text_of(w.state(self.error_line).get("value", "")).strip()):
            out.append(f"error line: {err[:200]}")
        out += [f"traceback from the kernel: {t.strip().splitlines()[-1][:200]}" for t in self.ch.tracebacks]
        return out


async def fetch_page(client, url: str, timeout: float) -> tuple[str, float, float, str]:
    """(page html, s to first byte, s to the whole page, cookie header) of one GET, as a browser loads it."""
    from tornado.httpclient import HTTPRequest

    t0, first = time.monotonic(), []
    chunks: list[bytes] = []

    def on_chunk(b: bytes) -> None:
        if not first:
            first.append(time.monotonic() - t0)
        chunks.append(b)

    resp = await client.fetch(HTTPRequest(url, request_timeout=timeout, connect_timeout=timeout,
                                          streaming_callback=on_chunk, follow_redirects=True))
    done = time.monotonic() - t0
    cookies = "; ".join(c.split(";", 1)[0] for c in resp.headers.get_list("Set-Cookie"))
    return b"".join(chunks).decode("utf-8", errors="replace"), first[0] if first else done, done, cookies


async def fetch_assets(client, base: str, paths: list[str], headers: dict, timeout: float,
                       parallel: int = 6) -> tuple[int, list[str]]:
    """GET a page's static files `parallel` at a time (a browser's connections per host); (bytes, failures)."""
    from tornado.httpclient import HTTPRequest

    gate, got, bad = asyncio.Semaphore(parallel), [0], []

    async def one(path: str) -> None:
        async with gate:
            resp = await client.fetch(HTTPRequest(urljoin(base, path), headers=headers, request_timeout=timeout),
                                      raise_error=False)
            if resp.code == 200:
                got[0] += len(resp.body)
            else:
                bad.append(f"{resp.code} {path.split('?')[0]}")

    await asyncio.gather(*(one(p) for p in paths))
    return got[0], bad


async def student(i: int, url: str, duration: float, rng: random.Random, abort: threading.Event | None = None,
                  together: Together | None = None, assets: list[str] | None = None) -> dict:
    """One student's session (see the module's docstring); returns their timings and errors (never raises)."""
    from tornado.httpclient import AsyncHTTPClient, HTTPRequest

    r: dict = dict(user=i, client="ws", errors=[], captions=[], maps=[])
    client = AsyncHTTPClient(force_instance=True)  # each student their own connections, as their own browser
    ch: KernelChannel | None = None
    kernel, cookies, base, headers = None, "", url, {}
    pause = min(1.0, duration / 60)  # the 2-8 s look at a caption before clicking a word, shorter in short runs
    t0 = time.monotonic()

    async def until(t: float) -> None:  # think time: wait until t seconds after the page was opened
        while time.monotonic() - t0 < t:
            if abort is not None and abort.is_set():
                raise RuntimeError("aborted: the memory or time limit was reached")
            await asyncio.sleep(min(0.5, max(0.01, t - (time.monotonic() - t0))))

    async def caption(page: Page, n_rows: int) -> None:
        t = time.monotonic()
        ch.click(page.caption)
        await ch.until(lambda: len(page.rows()) >= n_rows, ACTION_TIMEOUT, "caption")
        r["captions"].append(round(time.monotonic() - t, 3))

    async def word(page: Page, k: int) -> None:
        words = ch.widgets.children(page.words)
        if not words:
            raise LookupError("no word buttons after the caption")
        seen = ch.widgets.versions.get(page.image, 0)
        t = time.monotonic()
        ch.click(words[min(k, len(words) - 1)])
        await ch.until(lambda: ch.widgets.versions.get(page.image, 0) > seen
                       and len(ch.widgets.state(page.image).get("value") or b"") > 0, ACTION_TIMEOUT, "word map")
        r["maps"].append(round(time.monotonic() - t, 3))

    try:
        body, r["first_byte_s"], r["response_s"], cookies = await fetch_page(client, url, PAGE_TIMEOUT)
        config = CONFIG.search(body)
        views = VIEW.findall(body)
        if not config or not views:
            raise LookupError(f"the page has no {'kernel id' if not config else 'widget'}: {text_of(body)[:200]!r}")
        base = urljoin(url, json.loads(config.group(1)).get("baseUrl", "/"))
        kernel = json.loads(config.group(1))["kernelId"]
        headers = {"Cookie": cookies} if cookies else {}
        if assets:  # the page's CSS and JavaScript, before its script connects to the kernel
            r["asset_bytes"], r["asset_errors"] = await fetch_assets(client, base, assets, headers, PAGE_TIMEOUT)
            r["assets_s"] = round(time.monotonic() - t0, 3)
        await client.fetch(HTTPRequest(f"{base}api/kernels/{kernel}", headers=headers, request_timeout=PAGE_TIMEOUT))
        ws = urlparse(base)._replace(scheme="wss" if url.startswith("https") else "ws").geturl()
        ch = await KernelChannel.connect(f"{ws}api/kernels/{kernel}/channels", headers, PAGE_TIMEOUT, abort)
        ch.send("kernel_info_request", {})
        left = PAGE_TIMEOUT - (time.monotonic() - t0)
        r["states_via"] = await ch.load_widgets(left)
        root = views[0]
        await ch.until(lambda: ch.widgets.find(root, "ButtonModel", description="Caption"), left, "the app's widgets")
        r["ready_s"] = round(time.monotonic() - t0, 3)
        page = Page(ch, root)
        own = f"ShapesWorld test #{i}"
        ch.update(page.scene, value=i)
        ch.click(page.generate)
        await ch.until(lambda: any(f"{own} (" in text_of(ch.widgets.state(m).get("value", ""))
                                   for m in ch.widgets.tree(root) if ch.widgets.models[m]["model_name"] == "HTMLModel"),
                       ACTION_TIMEOUT, "the chosen scene")
        rows0 = len(page.rows())  # plain `make app` pages already hold notebook 11's own captions
        await until(rng.uniform(0.02, 0.35) * duration)
        await caption(page, rows0 + 1)
        await until(time.monotonic() - t0 + rng.uniform(2, 8) * pause)
        await word(page, 0)
        labels = ch.widgets.state(page.decoding).get("_options_labels", [])
        ch.update(page.decoding, index=labels.index("beam"))
        await until(rng.uniform(0.45, 0.8) * duration)
        await caption(page, rows0 + 2)
        await until(time.monotonic() - t0 + rng.uniform(2, 8) * pause)
        await word(page, 1)
        rows = page.rows()
        r["history"] = [row[1:3] for row in rows[:2]]  # (image, caption), newest first
        if len(rows) != rows0 + 2 or not all(len(row) > 1 and row[1] == own for row in rows[:2]):
            r["errors"].append(f"history is not this student's own: {[row[1:3] for row in rows[:3]]}")
        elif not rows[1][4].startswith("greedy") or not rows[0][4].startswith("beam"):
            r["errors"].append(f"decoding settings in the history are not greedy then beam: {rows[1][4]!r}, "
                               f"{rows[0][4]!r}")
        r["errors"] += page.problems()
    except Exception as e:  # a timeout, a missing widget, a closed websocket, the memory guard
        r["errors"].append(f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:200]}")
    finally:
        r["session_s"] = round(time.monotonic() - t0, 1)
        if together is not None:  # a class keeps its tabs open until the end of the exercise
            together.finished()
            while not together.done.is_set() and not (abort is not None and abort.is_set()):
                await asyncio.sleep(0.5)
        if ch is not None:
            await ch.close()
        if kernel is not None:  # the page's beforeunload: ask Voila to shut the kernel down
            xsrf = re.search(r"(?:^|; )_xsrf=([^;]*)", cookies)  # the page sends the _xsrf cookie's value, if any
            try:
                resp = await client.fetch(HTTPRequest(
                    f"{base}voila/api/shutdown/{kernel}", method="POST", body=f"_xsrf={xsrf.group(1) if xsrf else ''}",
                    headers=dict(headers, **{"Content-Type": "application/x-www-form-urlencoded"}), request_timeout=30),
                    raise_error=False)
                r["shutdown_status"] = resp.code  # 403 when Voila set no _xsrf cookie: the kernel stays until culled
            except Exception:  # the server is gone (the memory or time limit stopped it)
                pass
        client.close()
    return r


class Together:
    """The class's tabs stay open until every student has finished the exercise (then all of them close)."""

    def __init__(self, users: int):
        self.left = users
        self.done = asyncio.Event()

    def finished(self) -> None:
        self.left -= 1
        if self.left <= 0:
            self.done.set()


async def run_students(url: str, users: int, duration: float, seed: int = 0, abort: threading.Event | None = None,
                       assets: list[str] | None = None) -> list[dict]:
    """`users` students on the app at `url` at once (all open the page together); each one's results.

    A coroutine: run it with `results = asyncio.run(run_students(url, users=6, duration=60))`, or `await` it
    inside a running event loop (a notebook cell: `results = await run_students(...)`).

    Args:
        url: the classroom's Voila address, e.g. "http://127.0.0.1:8866/".
        users: students who open the page together.
        duration: seconds over which each student's actions spread.
        seed: seeds every student's think times (student i uses seed * 1000 + i).
        abort: a threading.Event; once it is set each student stops at their next wait (an 'aborted' error).
        assets: paths of static files each student also fetches (benchmarks/classroom_assets.json).
    Returns:
        one dict of results per student, in the order of their numbers.
    """
    together = Together(users)
    return await asyncio.gather(*(student(i, url, duration, random.Random(seed * 1000 + i), abort, together, assets)
                                  for i in range(users)))
