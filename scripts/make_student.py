"""Write the student (or the instructor) version of the course notebooks.

Source notebooks mark solutions inside exercise cells (tagged "exercise"):

    def gated_fusion(t, v, gated):
        ...docstring...
        ### BEGIN SOLUTION
        g = torch.sigmoid(...)
        return ...
        ### END SOLUTION

Student version: each region becomes `raise NotImplementedError("exercise: <function>")` (indented like
the BEGIN line; in a markdown cell, "*Your answer here.*"), so the exercise cell still runs and the
check cell after it fails until the student fills it in. Cells tagged "solution" are replaced by an
empty code cell. Instructor version: the marker lines are removed, the solutions kept. Both drop all
outputs and the cells that only check results for the tests (tag "ci-check"; the tests run them on the sources).
Any notebook works; one without markers is copied (outputs cleared).

    python scripts/make_student.py                       # notebooks/*.ipynb -> build/student/
    python scripts/make_student.py --instructor          # -> build/instructor/
    python scripts/make_student.py --repo https://github.com/me/fork   # badges and setup cells point at a fork
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
EXERCISE_TAG, CHECK_TAG, SOLUTION_TAG = "exercise", "exercise-check", "solution"
CI_TAG = "ci-check"  # cells that only check results for the tests: left out of both versions


class MarkerError(ValueError):
    """Solution markers that do not pair up; the message names the notebook and the cell."""


def canonical_repo() -> str:
    """The repository URL of pyproject.toml's [project.urls] Repository: the one place it is written."""
    m = re.search(r'^Repository\s*=\s*"([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M)
    if not m:
        raise SystemExit("pyproject.toml has no [project.urls] Repository = \"...\"")
    return m.group(1)


def _stub_name(lines: list[str], upto: int) -> str:
    """Name of the function a solution region sits in: the nearest `def name(` above it, else 'solution'."""
    for line in reversed(lines[:upto]):
        m = re.match(r"\s*def\s+(\w+)\s*\(", line)
        if m:
            return m.group(1)
    return "solution"


def strip_solutions(source: str, student: bool, markdown: bool = False, where: str = "") -> tuple[str, int]:
    """Remove (student) or unmark (instructor) the solution regions of one cell's source. Returns (source, regions)."""
    lines = source.split("\n")
    out: list[str] = []
    regions, inside, begin_at = 0, False, -1
    for i, line in enumerate(lines):
        marker = line.strip()
        if marker.startswith(BEGIN):
            if inside:
                raise MarkerError(f"{where}: line {i + 1}: {BEGIN} inside another solution region")
            inside, begin_at, regions = True, i, regions + 1
            if student:
                indent = line[: len(line) - len(line.lstrip())]
                if markdown:
                    out.append(indent + "*Your answer here.*")
                else:
                    out.append(f"{indent}# YOUR CODE HERE")
                    out.append(f'{indent}raise NotImplementedError("exercise: {_stub_name(lines, i)}")')
            continue
        if marker.startswith(END):
            if not inside:
                raise MarkerError(f"{where}: line {i + 1}: {END} without a {BEGIN}")
            inside = False
            continue
        if not (inside and student):
            out.append(line)
    if inside:
        raise MarkerError(f"{where}: line {begin_at + 1}: {BEGIN} is never closed by {END}")
    return "\n".join(out), regions


def point_at(source: str, canon: str, repo: str) -> str:
    """Replace the canonical repository in clone URLs and in Colab badge links by `repo`."""
    repo = repo.rstrip("/").removesuffix(".git")
    path = lambda url: url.split("github.com/", 1)[-1]  # noqa: E731  owner/name
    source = source.replace(f"colab.research.google.com/github/{path(canon)}/", f"colab.research.google.com/github/{path(repo)}/")
    return source.replace(canon, repo)


def convert(nb, student: bool, repo: str | None = None, name: str = "notebook"):
    """A converted copy of a notebook (nbformat node): solutions removed or unmarked, check cells (ci-check)
    left out, outputs cleared."""
    nb = nbformat.from_dict(nb)  # a deep copy
    canon = canonical_repo() if repo else None
    cells = []
    for i, cell in enumerate(nb.cells):
        tags = cell.get("metadata", {}).get("tags", [])
        where = f"{name}, cell {i}"
        if CI_TAG in tags:
            continue
        if student and SOLUTION_TAG in tags:
            cell = nbformat.v4.new_code_cell("# YOUR CODE HERE") if cell.cell_type == "code" else \
                nbformat.v4.new_markdown_cell("*Your answer here.*")
            cell.metadata["tags"] = [t for t in tags if t != SOLUTION_TAG]
        else:
            cell.source, n = strip_solutions(cell.source, student, cell.cell_type == "markdown", where)
            if n and cell.cell_type == "code" and EXERCISE_TAG not in tags:
                raise MarkerError(f"{where}: has solution markers but is not tagged {EXERCISE_TAG!r}")
        if repo:
            cell.source = point_at(cell.source, canon, repo)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cells.append(cell)
    nb.cells = cells
    return nb


def write_version(src: Path, out: Path, student: bool, repo: str | None = None) -> list[Path]:
    """Convert every notebook of src (a folder or one .ipynb) into out; returns the written paths."""
    paths = [src] if src.suffix == ".ipynb" else sorted(src.glob("*.ipynb"))
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for p in paths:
        nb = convert(nbformat.read(p, as_version=4), student, repo, p.name)
        target = out / p.name
        nbformat.write(nb, target)
        written.append(target)
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src", nargs="?", default=str(REPO / "notebooks"), help="a folder of notebooks or one notebook")
    ap.add_argument("--out", help="output folder (default build/student or build/instructor)")
    ap.add_argument("--instructor", action="store_true", help="keep the solutions, only drop the markers")
    ap.add_argument("--repo", help="rewrite the Colab badges and setup cells to this repository URL (a fork)")
    a = ap.parse_args(argv)
    student = not a.instructor
    out = Path(a.out or REPO / "build" / ("student" if student else "instructor"))
    try:
        written = write_version(Path(a.src), out, student, a.repo)
    except MarkerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    n_ex = sum(sum(EXERCISE_TAG in c.metadata.get("tags", []) for c in nbformat.read(p, 4).cells) for p in written)
    print(f"{'student' if student else 'instructor'} version: {len(written)} notebooks, {n_ex} exercise cells -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
