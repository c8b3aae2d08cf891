"""The browser students of benchmarks/classroom.py (`--client browser`): Playwright, one browser context per student,
STUDENTS_PER_BROWSER contexts per headless chromium (Debian's, $MMKIT_CHROMIUM); and `record_assets`, which lists
the static files one chromium page loads (the manifest the protocol-level students fetch, classroom_assets.json).
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import re
import threading
import time
from pathlib import Path

CHROMIUM = os.environ.get("MMKIT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--renderer-process-limit=64"]
PAGE_TIMEOUT = 300_000  # ms for a page to become usable (plain Voila runs notebook 11 before it answers)
ACTION_TIMEOUT = 180_000  # ms for one caption or map
STUDENTS_PER_BROWSER = 5  # browser contexts per chromium process
CAPTION = re.compile(r"^\W*Caption\s*$")
ROWS_JS = "() => Math.max(0, document.querySelectorAll('.widget-html-content table tr').length - 1)"
ROW_TEXT_JS = "() => [...document.querySelectorAll('.widget-html-content table tr')].slice(1).map(r => r.innerText)"
MAP_JS = """() => { const i = [...document.querySelectorAll('img')].filter(i => i.naturalWidth > 0 &&
                      i.getBoundingClientRect().width > 150 && i.getBoundingClientRect().width < 320);
                    return i.length ? i[i.length - 1].src : null; }"""
FCP_JS = "() => { const e = performance.getEntriesByName('first-contentful-paint')[0]; return e ? e.startTime : null; }"
# when the server had sent the whole page (Voila without preheat runs the notebook before it answers)
RESPONSE_JS = "() => { const e = performance.getEntriesByType('navigation')[0]; return e ? e.responseEnd : null; }"

async def student(i: int, browser, url: str, duration: float, rng: random.Random, abort: threading.Event,
                  shots: Path | None) -> dict:
    """One student's session; returns their timings and errors (never raises)."""
    r: dict = dict(user=i, errors=[], captions=[], maps=[])
    ctx = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await ctx.new_page()
    page.set_default_timeout(ACTION_TIMEOUT)  # a shared 2-core machine under load answers slowly, not never
    t0 = time.monotonic()

    async def until(t: float) -> None:  # think time: wait until t seconds after the page was opened
        while time.monotonic() - t0 < t and not abort.is_set():
            await asyncio.sleep(0.5)
        if abort.is_set():
            raise RuntimeError("aborted: the memory or time limit was reached")

    async def caption(n_rows: int) -> None:
        t = time.monotonic()
        await page.locator("button").filter(has_text=CAPTION).click()
        await page.wait_for_function(f"() => ({ROWS_JS})() >= {n_rows}", timeout=ACTION_TIMEOUT)
        r["captions"].append(round(time.monotonic() - t, 3))

    async def word(k: int) -> None:
        before = await page.evaluate(MAP_JS)
        t = time.monotonic()
        buttons = page.locator("button[title^='map of']")
        await buttons.nth(min(k, await buttons.count() - 1)).click()
        await page.wait_for_function(f"() => {{ const s = ({MAP_JS})(); return s && s !== {json.dumps(before)}; }}",
                                     timeout=ACTION_TIMEOUT)
        r["maps"].append(round(time.monotonic() - t, 3))

    try:
        await page.goto(url, timeout=PAGE_TIMEOUT, wait_until="commit")
        await page.locator("button").filter(has_text=CAPTION).wait_for(timeout=PAGE_TIMEOUT)
        r["ready_s"] = round(time.monotonic() - t0, 3)
        fcp, response = await page.evaluate(FCP_JS), await page.evaluate(RESPONSE_JS)
        r["first_paint_s"] = None if fcp is None else round(fcp / 1000, 3)
        r["response_s"] = None if response is None else round(response / 1000, 3)
        own = f"ShapesWorld test #{i}"
        index = page.locator(".widget-inline-hbox", has_text="scene #").locator("input")
        await index.fill(str(i))
        await index.press("Enter")
        await page.locator("button").filter(has_text=re.compile(r"^\W*Generate\s*$")).click()
        await page.wait_for_function(f"() => document.body.innerText.includes({json.dumps(own + ' (')})",
                                     timeout=ACTION_TIMEOUT)
        rows0 = await page.evaluate(ROWS_JS)  # plain `make app` pages already hold notebook 11's own captions
        await until(rng.uniform(0.02, 0.35) * duration)
        await caption(rows0 + 1)
        await until(time.monotonic() - t0 + rng.uniform(2, 8))
        await word(0)
        await page.locator("button.widget-toggle-button", has_text="beam").click()
        await until(rng.uniform(0.45, 0.8) * duration)
        await caption(rows0 + 2)
        await until(time.monotonic() - t0 + rng.uniform(2, 8))
        await word(1)
        rows = await page.evaluate(ROW_TEXT_JS)
        mine = rows[:2]  # newest first
        if len(rows) != rows0 + 2 or not all(row.split("\t")[1].strip() == own for row in mine):
            r["errors"].append(f"history is not this student's own: {rows[:3]}")
        if ("Traceback" in await page.inner_text("body")
                or await page.locator("b", has_text="Something went wrong").first.is_visible()):
            r["errors"].append("error dialog or traceback on the page")
        if shots is not None and i == 0:
            await page.screenshot(path=str(shots / "classroom_student0.png"), full_page=True)
    except Exception as e:  # a timeout, a missing element, the memory guard
        r["errors"].append(f"{type(e).__name__}: {str(e).splitlines()[0][:200]}")
    finally:
        r["session_s"] = round(time.monotonic() - t0, 1)
        try:
            await ctx.close()
        except Exception:  # the browser was closed by the memory or time limit
            pass
    return r


async def drive(url: str, users: int, duration: float, abort: threading.Event, seed: int, shots: Path | None):
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        # one chromium per STUDENTS_PER_BROWSER students: one browser process for all of them was itself a
        # bottleneck that real students (each on their own laptop) do not share
        browsers = [await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
                    for _ in range(-(-users // STUDENTS_PER_BROWSER))]

        async def watch():  # the memory or time limit: close the browsers, so every waiting student ends now
            while not abort.is_set():
                await asyncio.sleep(1)
            for b in browsers:
                await b.close()

        watcher = asyncio.create_task(watch())
        try:
            rngs = [random.Random(seed * 1000 + i) for i in range(users)]
            return await asyncio.gather(*(student(i, browsers[i // STUDENTS_PER_BROWSER], url, duration, rngs[i],
                                                  abort, shots) for i in range(users)))
        finally:
            watcher.cancel()
            for b in browsers:
                if b.is_connected():
                    await b.close()


async def record_assets(url: str) -> list[list]:
    """[path, bytes] of every same-origin file (not /api/) one chromium page loads until its Caption button shows."""
    from playwright.async_api import async_playwright

    seen: list = []

    async def keep(resp) -> None:
        try:
            n = len(await resp.body())
        except Exception:  # a redirect or an aborted request has no body
            n = -1
        seen.append((resp.request.method, resp.url, resp.status, n))

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = await browser.new_page()
        page.on("response", lambda r: asyncio.ensure_future(keep(r)))
        await page.goto(url, timeout=PAGE_TIMEOUT)
        await page.locator("button").filter(has_text=CAPTION).wait_for(timeout=PAGE_TIMEOUT)
        await asyncio.sleep(3)  # late chunks
        await browser.close()
    return [[u[len(url):], n] for m, u, st, n in seen
            if m == "GET" and st == 200 and u.startswith(url) and u != url and not u[len(url):].startswith("api/")]
