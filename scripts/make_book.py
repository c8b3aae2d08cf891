"""Build the course as a static site (mkdocs-material + mkdocs-jupyter) from executed notebooks.

1. Execute every notebook (MMKIT_QUICK=1, offline, as the tests run them) into build/book-src/executed/;
   an executed copy newer than its source notebook is reused. The figures in the book are those of this run.
2. Write the pages into build/book-src/docs/: the README (home), docs/COURSE.md and docs/DESIGN.md, and one page
   per notebook: its check cells (tag "ci-check") removed, its exercise cells as the student sees them (solution
   regions replaced by "# YOUR CODE HERE"), and under the title an "Open in Colab" and a "Download the notebook"
   link. The download is the student version of the notebook (scripts/make_student.py), without outputs.
3. `mkdocs build` into out/book/ (mkdocs.yml at the repository root holds the theme and plugins; the generated
   build/book-src/mkdocs.yml inherits it and adds the navigation), then scripts/check_book.py checks the site.

    python scripts/make_book.py                    # every notebook (about 8 min of execution on a quiet machine)
    python scripts/make_book.py --only 00 04       # just these chapters (for working on the book)
    python scripts/make_book.py --no-execute       # reuse executed copies only (a chapter never executed is left out)
"""
from __future__ import annotations

import argparse
import html
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat

from mmkit.testing import load_script

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "build" / "book-src"
OUT = REPO / "out" / "book"
CHECK_TAG = "ci-check"
# Markdown pages: repository file -> page name in the book
PAGES = {"README.md": "index.md", "docs/COURSE.md": "COURSE.md", "docs/DESIGN.md": "DESIGN.md",
         "docs/VIDEO.md": "VIDEO.md"}
KERNEL_ENV = {"MMKIT_QUICK": "1", "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1", "PYTHONHASHSEED": "0",
              # figures must reach the notebook's outputs: the inline backend, whatever the caller's MPLBACKEND says
              "MPLBACKEND": "module://matplotlib_inline.backend_inline"}


make_student = load_script(REPO / "scripts" / "make_student.py")

# Run first in the kernel that executes a chapter (and removed from the executed copy): the PNG formatter gives each
# matplotlib figure it draws the text the figure carries (titles, else axis labels) as output metadata "alt", and a
# picture its size. book_page writes that into the page's <img alt>, where nbconvert would write "No description
# has been provided for this image".
FIGURE_TEXT = """\
def _mmkit_book_figure_text():
    import IPython.core.pylabtools as pylab
    from IPython import get_ipython
    from matplotlib.figure import Figure
    from PIL import Image

    def text_of(fig):
        titles = [fig.get_suptitle()] + [ax.get_title(loc) for ax in fig.axes for loc in ("left", "center", "right")]
        said = [t for t in titles if t.strip()]
        if not said:
            said = [f"{ax.get_xlabel()} against {ax.get_ylabel()}" if ax.get_ylabel() else ax.get_xlabel()
                    for ax in fig.axes if ax.get_xlabel()]
        return "; ".join(dict.fromkeys(" ".join(t.split()) for t in said))

    def with_text(draw, describe):
        def drawn(obj, *args, **kwargs):
            data = draw(obj, *args, **kwargs)
            text = describe(obj) if isinstance(data, (str, bytes)) and kwargs.get("fmt", "png") == "png" else ""
            return (data, {"alt": text}) if text else data
        return drawn

    # the inline backend registers partial(pylab.print_figure, fmt=...) for figures when it loads (or has already)
    png = get_ipython().display_formatter.formatters["image/png"]
    pylab.print_figure = with_text(pylab.print_figure, text_of)
    if Figure in png.type_printers:
        png.for_type(Figure, with_text(png.type_printers[Figure], text_of))
    png.for_type(Image.Image, with_text(lambda im: im._repr_png_(), lambda im: f"a {im.width} x {im.height} picture"))


_mmkit_book_figure_text()
del _mmkit_book_figure_text
"""


def tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def select(only: list[str] | None) -> list[Path]:
    """The course notebooks, or those whose number or name starts with one of `only`."""
    paths = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if only:
        paths = [p for p in paths if any(p.name.startswith(o) or p.stem == o for o in only)]
        if not paths:
            raise SystemExit(f"no notebook matches {only}; give numbers such as 00 04")
    return paths


def execute(path: Path, target: Path, timeout: int = 1800) -> float:
    """Execute one notebook as the tests do (MMKIT_QUICK=1, offline) into target; returns the seconds it took."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(FIGURE_TEXT))
    old = {k: os.environ.get(k) for k in KERNEL_ENV}
    os.environ.update(KERNEL_ENV)  # the kernel inherits this process's environment
    t0 = time.perf_counter()
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=False, store_widget_state=True,
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    del nb.cells[0]
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)
    return time.perf_counter() - t0


def colab_url(name: str) -> str:
    owner_repo = make_student.canonical_repo().split("github.com/", 1)[1].rstrip("/")
    return f"https://colab.research.google.com/github/{owner_repo}/blob/{make_student.STUDENT_BRANCH}/notebooks/{name}"


def book_page(executed, name: str, pages: dict[str, str] | None = None, notebooks: set[str] = frozenset()):
    """The book's version of an executed notebook: check cells removed, exercises as the student sees them,
    the outputs of exercise checks cleared (they report on the solution), a Colab and a download link."""
    nb = nbformat.from_dict(executed)
    cells = []
    section = ""
    for i, cell in enumerate(nb.cells):
        t = tags(cell)
        if cell.cell_type == "markdown":
            section = ([h.strip("# ") for h in re.findall(r"^#{1,4} .+$", cell.source, re.M)] or [section])[-1]
        if CHECK_TAG in t:
            continue
        if make_student.SOLUTION_TAG in t:
            cell.source = "# YOUR CODE HERE" if cell.cell_type == "code" else "*Your answer here.*"
        else:
            cell.source, _ = make_student.strip_solutions(cell.source, True, cell.cell_type == "markdown",
                                                          f"{name}, cell {i}")
        if make_student.CHECK_TAG in t and cell.cell_type == "code":
            cell.outputs = []
        for output in cell.get("outputs", []):
            described(output, section)
        if cell.cell_type == "markdown":
            cell.source = rewrite_links(cell.source, f"notebooks/{name}", pages or {}, set(notebooks), in_notebook=True)
        cells.append(cell)
    links = nbformat.v4.new_markdown_cell(
        f"[Open in Colab]({colab_url(name)}) · [Download the notebook](../download/{name}) "
        "(the figures on this page are from the course's own quick run, `MMKIT_QUICK=1`)")
    links.metadata["tags"] = ["book-links"]
    cells.insert(1, links)
    nb.cells = cells
    return nb


def described(output, section: str) -> None:
    """Give an image output an <img> with alt text (the page shows it in place of the bare image): the text its
    figure carries (FIGURE_TEXT), and the section it is in. nbconvert's lab template drops the output's "alt"."""
    for kind in ("image/png", "image/jpeg"):
        data = output.get("data", {}).get(kind)
        if not data or "text/html" in output["data"]:
            continue
        meta = output.get("metadata", {}).get(kind, {})
        text = meta.get("alt") or output.get("metadata", {}).get("alt") or ""
        where = f"in the section {section}" if section else "in this chapter"
        alt = f"Figure {where}: {text}" if text else f"A figure {where}, made by the code above"
        size = "".join(f' {k}="{meta[k]}"' for k in ("width", "height") if meta.get(k))
        body = "".join(data) if isinstance(data, list) else data
        output["data"]["text/html"] = f'<img src="data:{kind};base64,{body.strip()}" alt="{html.escape(alt)}"{size}>'
        return


def rewrite_links(text: str, source: str, pages: dict[str, str], notebooks: set[str], in_notebook: bool = False) -> str:
    """Point the relative links of a repository Markdown file at the book's pages, or at the repository.

    A Markdown page's links name source files (mkdocs turns them into URLs); a notebook's markdown is rendered
    without mkdocs' link handling, so with `in_notebook` the links are the final URLs seen from notebooks/."""
    repo_url = make_student.canonical_repo().rstrip("/")
    here = (REPO / source).parent

    def fix(m):
        label, target = m.group(1), m.group(2)
        if re.match(r"[a-z]+:|#", target):
            return m.group(0)
        path, _, anchor = target.partition("#")
        rel = os.path.relpath((here / path).resolve(), REPO).replace(os.sep, "/")
        if rel in pages:
            new = "../" + pages[rel].replace(".md", ".html") if in_notebook else pages[rel]
        elif rel.startswith("notebooks/") and Path(rel).name in notebooks:
            new = Path(rel).stem + ".html" if in_notebook else f"notebooks/{Path(rel).name}"
        elif rel.startswith("docs/img/"):
            new = ("../" if in_notebook else "") + rel[len("docs/"):]
        else:
            new = f"{repo_url}/blob/main/{rel}"
        return f"[{label}]({new}{'#' + anchor if anchor else ''})"

    return re.sub(r"\[([^\]]*)\]\(([^)\s\"']+)\)", fix, text)  # not code such as f["main"]("mmkit")


def write_sources(executed: dict[str, Path], src: Path = SRC, out: Path = OUT) -> Path:
    """Fill src/docs (pages, figures, downloads) and src/mkdocs.yml (the site goes to out); returns the config."""
    docs = src / "docs"
    shutil.rmtree(docs, ignore_errors=True)
    (docs / "notebooks").mkdir(parents=True)
    (docs / "download").mkdir()
    if (REPO / "docs" / "img").is_dir():
        shutil.copytree(REPO / "docs" / "img", docs / "img")
    pages = {source: page for source, page in PAGES.items() if (REPO / source).exists()}
    for source, page in pages.items():
        text = rewrite_links((REPO / source).read_text(encoding="utf-8"), source, pages, set(executed))
        (docs / page).write_text(text, encoding="utf-8")
    for name, path in executed.items():
        page = book_page(nbformat.read(path, as_version=4), name, pages, set(executed))
        nbformat.write(page, docs / "notebooks" / name)
        student = make_student.convert(nbformat.read(REPO / "notebooks" / name, as_version=4), True, name=name)
        nbformat.write(student, docs / "download" / name)
    title = lambda p: p.stem[:2] + " · " + p.stem[3:].replace("_", " ")  # noqa: E731
    nav = [{"Home": "index.md"}, {"The course": "COURSE.md"},
           {"Chapters": [{title(Path(n)): f"notebooks/{n}"} for n in executed]}]
    nav += [{"Video": "VIDEO.md"}] if "VIDEO.md" in pages.values() else []
    nav += [{"Design (contributors)": "DESIGN.md"}]
    config = src / "mkdocs.yml"
    config.write_text("# generated by scripts/make_book.py: the repository's mkdocs.yml plus the navigation\n"
                      f"INHERIT: {os.path.relpath(REPO / 'mkdocs.yml', src)}\n"
                      f"repo_url: {make_student.canonical_repo()}\n"
                      "docs_dir: docs\n"
                      f"site_dir: {os.path.relpath(out, src)}\n"
                      f"nav: {json.dumps(nav)}\n", encoding="utf-8")
    return config


def build_site(executed: dict[str, Path], src: Path = SRC, out: Path = OUT) -> int:
    """Write the sources and run `mkdocs build --strict` (a broken link or a missing page fails); returns its status."""
    config = write_sources(executed, src, out)
    shutil.rmtree(out, ignore_errors=True)
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f", str(config)], cwd=REPO,
                           env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    if built.returncode:
        print("error: mkdocs build failed (warnings count as errors: a broken link, a missing page)", file=sys.stderr)
    elif (out / "404.html").exists():
        relative_links(out / "404.html")
    return built.returncode


def relative_links(page: Path) -> None:
    """Make a top-level page's links from the site's root ("/assets/...", mkdocs' 404.html) relative, so that they
    work where the book is opened from a folder (file://) or served from a sub-path (~lecturer/book/)."""
    text = page.read_text(encoding="utf-8")
    text = re.sub(r'\b(href|src)="/(?!/)', r'\1="./', text)
    page.write_text(text, encoding="utf-8")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="+", help="notebook numbers (or names) to include, e.g. 00 04")
    ap.add_argument("--no-execute", action="store_true", help="use executed copies only; never run a notebook")
    ap.add_argument("--force", action="store_true", help="execute even when an executed copy is up to date")
    ap.add_argument("--no-check", action="store_true", help="skip scripts/check_book.py after building")
    a = ap.parse_args(argv)
    t_all = time.perf_counter()
    executed: dict[str, Path] = {}
    for path in select(a.only):
        target = SRC / "executed" / path.name
        fresh = target.exists() and target.stat().st_mtime >= path.stat().st_mtime
        if fresh and not a.force:
            print(f"{path.name}: executed copy is up to date")
        elif a.no_execute:
            print(f"{path.name}: no up-to-date executed copy (--no-execute): left out of the book")
            continue
        else:
            print(f"{path.name}: executing (MMKIT_QUICK=1)...", flush=True)
            try:
                print(f"{path.name}: executed in {execute(path, target):.0f} s", flush=True)
            except Exception as e:  # nbclient's CellExecutionError names the cell and the traceback
                print(f"error: {path.name} failed to execute:\n{e}", file=sys.stderr)
                return 1
        executed[path.name] = target
    if not executed:
        print("error: no executed notebook to build the book from", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    rc = build_site(executed)
    if rc:
        return rc
    print(f"site: {OUT} ({len(executed)} chapters, mkdocs {time.perf_counter() - t0:.0f} s)")
    if not a.no_check:
        check_book = load_script(REPO / "scripts" / "check_book.py")
        rc = check_book.main([str(OUT), "--sources", str(SRC / "executed"), "--only", *executed])
        if rc:
            return rc
    print(f"book built in {time.perf_counter() - t_all:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
