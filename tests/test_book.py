"""The course read as a book: the notebooks keep their checks out of the lesson's way, and `make book`
(scripts/make_book.py, scripts/check_book.py) builds pages that show figures, links and no check cell.

Static checks of every notebook (fast), then the book machinery on a one-chapter book built from a hand-made
"executed" notebook (one mkdocs build, ~15 s): the real book is `make book`, which executes every notebook.
"""
import ast
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from mmkit.testing import load_script

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
QUICK_LINE = 'QUICK = os.environ.get("MMKIT_QUICK") == "1"  # True: shorter runs (the tests use this)'


mb, cb = load_script(REPO / "scripts" / "make_book.py"), load_script(REPO / "scripts" / "check_book.py")


def tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def lesson_cells(nb):
    """The cells a reader sees: everything but the tests' check cells."""
    return [c for c in nb.cells if "ci-check" not in tags(c)]


def each_notebook():
    return [pytest.param(p, id=p.stem) for p in NOTEBOOKS]


@pytest.mark.parametrize("path", each_notebook())
def test_notebook_is_stored_valid_with_cell_ids_and_no_outputs(path):
    """nbformat 4.5 needs an id on every cell (a missing one is a warning today and an error in later nbformat)."""
    import json

    raw = json.loads(path.read_text())  # as stored: nbformat.reads would fill in missing ids
    assert (raw["nbformat"], raw["nbformat_minor"]) >= (4, 5)
    nbformat.validate(nbformat.from_dict(raw))
    ids = [c.get("id") for c in raw["cells"]]
    assert None not in ids and len(set(ids)) == len(ids), "every cell has its own id"
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in raw["cells"] if c["cell_type"] == "code")


@pytest.mark.parametrize("path", each_notebook())
def test_lesson_has_no_ci_plumbing(path):
    """The budget is the learner's QUICK switch; asserts live in check cells; the lesson never talks about CI."""
    nb = nbformat.read(path, 4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert 'environ.get("CI")' not in code and not re.search(r"\bFULL\b", code), f"{path.name}: the old CI switch"
    if re.search(r"\bQUICK\b", code):
        assert QUICK_LINE in code, f"{path.name}: QUICK is used but not set by the learner line:\n{QUICK_LINE}"
    for i, c in enumerate(lesson_cells(nb)):
        assert not re.search(r"\bCI\b", c.source), f"{path.name}: the lesson mentions CI:\n{c.source}"
        if c.cell_type == "code" and "exercise-check" not in tags(c):
            asserts = [n for n in ast.walk(ast.parse(c.source)) if isinstance(n, ast.Assert)] if "assert" in c.source else []
            assert not asserts, f"{path.name}: an assert outside a ci-check cell:\n{c.source}"


@pytest.mark.parametrize("path", each_notebook())
def test_every_notebook_ends_with_try_it(path):
    last = nbformat.read(path, 4).cells[-1]
    heading = re.search(r"^## Try it\b", last.source, re.M) if last.cell_type == "markdown" else None
    assert heading, f"{path.name} does not end with a '## Try it' section:\n{last.source}"
    section = last.source[heading.end():]
    questions = re.findall(r"^\s*(?:\d+\.|[-*])\s+\S", section, re.M)
    assert 2 <= len(questions) <= 4, f"{path.name}: {len(questions)} questions in Try it"


def test_course_table_and_course_page_cover_every_notebook():
    table = next(c.source for c in nbformat.read(REPO / "notebooks" / "00_start_here.ipynb", 4).cells
                 if "| # | notebook |" in c.source)
    numbers = {p.name[:2] for p in NOTEBOOKS} | {"13", "15"}  # 13 and 15 are being written
    rows = set(re.findall(r"^\| (\d\d) \|", table, re.M))
    assert numbers <= rows, f"00's course table misses {sorted(numbers - rows)}"
    course = (REPO / "docs" / "COURSE.md").read_text()
    for n in numbers:
        assert re.search(rf"\b{n}\b", course), f"docs/COURSE.md never mentions notebook {n}"
    assert "chapter 07" not in "".join(c.source for c in nbformat.read(REPO / "notebooks" / "12_annotation.ipynb", 4).cells)


def test_nothing_points_outside_the_repository():
    files = [REPO / "README.md", REPO / "mkdocs.yml", *sorted((REPO / "docs").glob("*.md")), *NOTEBOOKS]
    for f in files:
        text = f.read_text(encoding="utf-8")
        assert "../shared" not in text and "/work/" not in text, f"{f.name} points outside the repository"
    design = (REPO / "docs" / "DESIGN.md").read_text()
    for heading in ("Layers", "Adding a model family", "Building a panel"):
        assert heading in design, f"docs/DESIGN.md has no section on {heading!r}"


def _png() -> str:
    import base64
    import io

    from matplotlib.figure import Figure

    fig = Figure(figsize=(1, 1))
    fig.subplots().plot([0, 1], [1, 0])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return base64.b64encode(buf.getvalue()).decode()


def _executed(png: str):
    """A hand-made 'executed' chapter: a figure, a check cell, an exercise with its solution and check."""
    nb = nbformat.v4.new_notebook()
    figure = nbformat.v4.new_code_cell("plot()", outputs=[nbformat.v4.new_output(
        "display_data", data={"image/png": png, "text/plain": "<Figure>"}, metadata={"image/png": {"alt": "a line"}})])
    check = nbformat.v4.new_code_cell("assert secret_check_value == 42", metadata={"tags": ["ci-check"]})
    exercise = nbformat.v4.new_code_cell("def f(x):\n    ### BEGIN SOLUTION\n    return hidden_solution(x)\n"
                                         "    ### END SOLUTION", metadata={"tags": ["exercise"]})
    ex_check = nbformat.v4.new_code_cell('check("f", f)', metadata={"tags": ["exercise-check"]},
                                         outputs=[nbformat.v4.new_output("stream", text="\u2713 f passes\n")])
    nb.cells = [nbformat.v4.new_markdown_cell("# 00 · A chapter\n\nSee [the course](../docs/COURSE.md)."),
                figure, check, exercise, ex_check, nbformat.v4.new_markdown_cell("## Try it\n\n1. a?\n2. b?")]
    return nb


def test_book_page_hides_checks_and_solutions():
    page = mb.book_page(_executed(_png()), "00_start_here.ipynb")
    text = "\n".join(c.source for c in page.cells)
    assert "secret_check_value" not in text and "hidden_solution" not in text and "# YOUR CODE HERE" in text
    assert not any("ci-check" in tags(c) for c in page.cells)
    assert all(c.outputs == [] for c in page.cells if "exercise-check" in tags(c))
    links = page.cells[1].source
    assert mb.colab_url("00_start_here.ipynb") in links and "](../download/00_start_here.ipynb)" in links
    assert mb.colab_url("x.ipynb") == \
        f"https://colab.research.google.com/github/{mb.make_student.canonical_repo().split('github.com/')[1]}/blob/student/notebooks/x.ipynb"  # the student notebooks' branch


def test_links_of_repository_pages_are_rewritten():
    pages = {"README.md": "index.md", "docs/COURSE.md": "COURSE.md"}
    text = ("[course](docs/COURSE.md#try-it) [nb](notebooks/04_clip.ipynb) [pic](docs/img/a.png) "
            "[robust](data/models/ROBUSTNESS.md) [web](https://example.org/x) [here](#top)")
    out = mb.rewrite_links(text, "README.md", pages, {"04_clip.ipynb"})
    repo = mb.make_student.canonical_repo()
    assert "[course](COURSE.md#try-it)" in out and "[nb](notebooks/04_clip.ipynb)" in out and "[pic](img/a.png)" in out
    assert f"[robust]({repo}/blob/main/data/models/ROBUSTNESS.md)" in out
    assert "[web](https://example.org/x)" in out and "[here](#top)" in out
    # in a notebook's markdown the links are the final URLs, seen from the notebooks/ folder of the site
    out = mb.rewrite_links("[c](../docs/COURSE.md) [n](04_clip.ipynb) [i](../docs/img/a.png) f['a'](\"x\")",
                           "notebooks/00_start_here.ipynb", pages, {"04_clip.ipynb"}, in_notebook=True)
    assert out == "[c](../COURSE.html) [n](04_clip.html) [i](../img/a.png) f['a'](\"x\")", out


def test_one_chapter_book_builds_and_the_checker_catches_each_fault(tmp_path):
    png = _png()
    executed = tmp_path / "executed" / "00_start_here.ipynb"
    executed.parent.mkdir()
    nbformat.write(_executed(png), executed)
    src, site = tmp_path / "src", tmp_path / "site"
    assert mb.build_site({executed.name: executed}, src, site) == 0
    args = [str(site), "--sources", str(executed.parent)]
    assert cb.main(args) == 0
    page = site / "notebooks" / "00_start_here.html"
    html = page.read_text()
    assert png[:200] in html and "secret_check_value" not in html
    assert 'alt="Figure in the section 00 · A chapter: a line"' in html and cb.NO_ALT not in html
    not_found = (site / "404.html").read_text()
    assert 'href="./' in not_found and not re.search(r'(href|src)="/[^/]', not_found)  # mkdocs writes "/assets/..."
    assert (site / "download" / "00_start_here.ipynb").exists() and (site / "COURSE.html").exists()

    # each fault, alone, fails the check
    page.write_text(html.replace(png[:200], ""))
    assert cb.main(args) == 1
    page.write_text(html.replace("</article>", '<a href="missing_page.html">x</a></article>', 1))
    assert cb.main(args) == 1
    page.write_text(html.replace("</article>", '<div class="jp-Cell celltag_ci-check">'
                                 "assert secret_check_value == 42</div></article>", 1))
    assert cb.main(args) == 1
    view = ('<script type="application/vnd.jupyter.widget-view+json">{"model_id": "a", "version_major": 2}'
            '</script></article>')
    page.write_text(html.replace("</article>", view, 1))  # a saved panel, with require.js: drawn online
    assert cb.main(args) == 0
    without = cb.REQUIRE_JS.sub("<script", html)
    assert without != html  # the book loads require.js
    page.write_text(without.replace("</article>", view, 1))  # the same panel without it: never drawn
    assert cb.main(args) == 1
    page.write_text(html.replace("</article>", f'<img src="../img/x.png" alt="{cb.NO_ALT}"></article>', 1))
    assert cb.main(args) == 1  # nbconvert's stand-in alt text
    page.write_text(html.replace("</article>", '<a href="/index.html">home</a></article>', 1))
    assert cb.main(args) == 1  # a link from the site's root: broken from a folder or a sub-path
    page.write_text(html)
    shutil.rmtree(site / "download")
    assert cb.main(args) == 1
