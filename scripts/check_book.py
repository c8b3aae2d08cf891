"""Check a built book (out/book): every internal link and image resolves (and none starts at the site's root),
every image has alt text, every chapter shows its figures,
has an "Open in Colab" and a download link, shows no check cell (tag "ci-check"), can draw its panels (a
page with saved widget views loads require.js, which the widget renderer needs), and shows no progress bar frozen
at its start ("contrastive:   0%|          | 0/50": a bar's text as first shown, never updated in the saved page).

    python scripts/check_book.py out/book --sources build/book-src/executed

Figures: each image output (PNG, JPEG, SVG) of an executed notebook, outside its check cells, must appear in the
chapter's page (the same image data). Check cells: no page may carry a cell tagged ci-check, nor the text of one.
Exit status 1 with one line per problem.
"""
from __future__ import annotations

import argparse
import html
import re
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat

CHECK_TAG = "ci-check"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"  # a panel's saved view, drawn online by embed-amd.js
REQUIRE_JS = re.compile(r"<script[^>]*\bsrc=\"[^\"]*require(\.min)?\.js\"")
IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml")
# a tqdm bar at its start: "  0%|" (not "100%|") and "| 0/50 [" (a "?" where 0/0 has no total)
FROZEN_BAR = re.compile(r"(?<![\d.])0%\|.*\| ?0(?:/[\d.]+[kMG]?)? \[", re.M)
NO_ALT = "No description has been provided for this image"  # what nbconvert writes into an <img> without alt text


class Links(HTMLParser):
    """Collects href/src attributes, the text outside <script>/<style>, and the class attributes."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.refs: list[tuple[str, str]] = []  # (tag, url)
        self.classes: list[str] = []
        self.text: list[str] = []
        self.images_without_text = 0
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img" and (not (a.get("alt") or "").strip() or a.get("alt") == NO_ALT):
            self.images_without_text += 1
        for key in ("href", "src"):
            if a.get(key) and not (tag == "link" and key == "href" and a.get("rel") in ("canonical", "alternate")):
                self.refs.append((tag, a[key]))
        if a.get("class"):
            self.classes.extend(a["class"].split())
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)


def squash(text: str) -> str:
    """Text without any whitespace: code highlighted into spans compares equal to its source."""
    return re.sub(r"\s+", "", text)


def parse(page: Path) -> Links:
    p = Links()
    p.feed(page.read_text(encoding="utf-8", errors="replace"))
    return p


def check_links(site: Path) -> list[str]:
    """Relative href/src of every page must name a file of the site (anchors and external URLs are not followed);
    a link from the site's root ("/assets/...") is a fault: it breaks where the book is opened from a folder or
    served from a sub-path. Every image has alt text other than nbconvert's stand-in."""
    problems = []
    for page in sorted(site.rglob("*.html")):
        parsed = parse(page)
        for tag, url in parsed.refs:
            parts = urlsplit(url)
            if parts.scheme or parts.netloc or url.startswith(("#", "data:", "mailto:", "javascript:")):
                continue
            if url.startswith("/"):
                problems.append(f"{page.relative_to(site)}: link from the site's root {url} (breaks from a folder "
                                "or a sub-path; make it relative)")
                continue
            target = page.parent / unquote(parts.path)
            if parts.path and target.is_dir():
                target = target / "index.html"
            if parts.path and not target.exists():
                problems.append(f"{page.relative_to(site)}: broken {'image' if tag == 'img' else 'link'} {url}")
        if parsed.images_without_text:
            problems.append(f"{page.relative_to(site)}: {parsed.images_without_text} images without alt text "
                            f"(or with {NO_ALT!r})")
    return problems


def image_payloads(nb) -> list[list[str]]:
    """The figures of a notebook outside its check cells: per output with an image, its encodings (an output may
    carry a PNG and a JPEG of the same picture; the page shows one of them), as the strings a page embeds."""
    out = []
    for cell in nb.cells:
        if cell.cell_type != "code" or CHECK_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        for o in cell.get("outputs", []):
            data = [o.get("data", {}).get(kind) for kind in IMAGE_TYPES]
            data = ["".join(d) if isinstance(d, list) else d for d in data if d]
            if data:
                out.append(data)
    return out


def frozen_bars(nb) -> list[str]:
    """The progress bars of a notebook's saved outputs (outside its check cells) still showing their start, each
    as "cell N: text". A stream is read as a terminal shows it: each line's text after its last carriage return."""
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or CHECK_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        for o in cell.get("outputs", []):
            text = o.get("text") if o.get("output_type") == "stream" else o.get("data", {}).get("text/plain")
            text = "".join(text) if isinstance(text, list) else text or ""
            shown = "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))
            found += [f"cell {i}: {m.group(0).strip()}" for m in FROZEN_BAR.finditer(shown)]
    return found


def check_chapter(site: Path, executed: Path) -> list[str]:
    """One chapter page against its executed notebook: figures, no check cell, the Colab and download links."""
    name = executed.name
    page = site / "notebooks" / (executed.stem + ".html")
    if not page.exists():
        return [f"{name}: no page {page.relative_to(site)}"]
    nb = nbformat.read(executed, as_version=4)
    raw = page.read_text(encoding="utf-8", errors="replace")
    parsed = parse(page)
    problems = []
    squashed_raw = squash(raw)
    for i, encodings in enumerate(image_payloads(nb)):
        keys = [squash(img)[:200] for img in encodings] + [squash(html.escape(img))[:200] for img in encodings]
        if not any(key in squashed_raw for key in keys):
            problems.append(f"{name}: figure {i + 1} of the executed notebook is missing from its page")
    for bar in frozen_bars(nb):
        problems.append(f"{name}: a progress bar frozen at its start in {bar} (make it with mmkit.progress.bar)")
    if any(c.startswith("celltag_") and CHECK_TAG in c for c in parsed.classes):
        problems.append(f"{name}: the page shows a cell tagged {CHECK_TAG}")
    text = squash(html.unescape("".join(parsed.text)))
    for cell in nb.cells:
        if CHECK_TAG in cell.get("metadata", {}).get("tags", []):
            body = squash(cell.source)
            if body and body in text:
                problems.append(f"{name}: the page shows this check cell:\n{cell.source}")
    if WIDGET_VIEW in raw and not REQUIRE_JS.search(raw):  # the renderer (embed-amd.js) is an AMD module
        problems.append(f"{name}: the page has widget views but loads no require.js, so no panel is drawn "
                        "(mkdocs-jupyter: include_requirejs: true)")
    urls = [u for _, u in parsed.refs]
    if not any(u.startswith("https://colab.research.google.com/github/") and u.endswith(f"/notebooks/{name}")
               for u in urls):
        problems.append(f"{name}: no 'Open in Colab' link to notebooks/{name}")
    downloads = [u for u in urls if u.endswith(f"download/{name}")]
    if not downloads:
        problems.append(f"{name}: no download link")
    for u in downloads:
        target = page.parent / u
        if not target.exists():
            problems.append(f"{name}: download link {u} names no file")
        elif any(CHECK_TAG in c.get("metadata", {}).get("tags", []) for c in nbformat.read(target, 4).cells):
            problems.append(f"{name}: the downloadable notebook has {CHECK_TAG} cells")
    return problems


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("site", nargs="?", default="out/book")
    ap.add_argument("--sources", default="build/book-src/executed", help="the executed notebooks the book was built from")
    ap.add_argument("--only", nargs="*", help="notebook file names to check (default: every executed notebook)")
    a = ap.parse_args(argv)
    site, sources = Path(a.site), Path(a.sources)
    if not (site / "index.html").exists():
        print(f"error: {site} holds no built book (no index.html); run make book", file=sys.stderr)
        return 1
    executed = sorted(sources.glob("*.ipynb"))
    if a.only:
        executed = [p for p in executed if p.name in a.only]
    problems = check_links(site)
    n_fig = 0
    for nb in executed:
        problems += check_chapter(site, nb)
        n_fig += len(image_payloads(nbformat.read(nb, as_version=4)))
    pages = len(list(site.rglob("*.html")))
    if problems:
        print(f"book check: {len(problems)} problems in {site}", file=sys.stderr)
        for p in problems:
            print("  " + p, file=sys.stderr)
        return 1
    print(f"book check: {pages} pages, {len(executed)} chapters, {n_fig} figures, links resolve, no {CHECK_TAG} cell "
          "shown, no frozen progress bar")
    return 0


if __name__ == "__main__":
    sys.exit(main())
