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
    python scripts/make_student.py --branch student      # also commit them to the local branch "student"

The student notebooks' "Open in Colab" badges (and the book's) open the branch STUDENT_BRANCH, where the student
notebooks are published: the sources on main hold the solutions. `--branch` (what `make student` passes) commits
the student notebooks over notebooks/ of the current commit onto that branch, without touching the working tree or
the checked-out branch; `git push origin student` then publishes them.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
EXERCISE_TAG, CHECK_TAG, SOLUTION_TAG = "exercise", "exercise-check", "solution"
CI_TAG = "ci-check"  # cells that only check results for the tests: left out of both versions
STUDENT_BRANCH = "student"  # where the student notebooks are published: their Colab badges open it


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


def student_badges(source: str) -> str:
    """Colab badge links to the course's notebooks on any branch, pointed at STUDENT_BRANCH (the sources on main
    hold the solutions: a student's badge must not open them)."""
    return re.sub(r"(colab\.research\.google\.com/github/[^/\s)\"']+/[^/\s)\"']+/blob/)[^/\s)\"']+(/notebooks/)",
                  rf"\g<1>{STUDENT_BRANCH}\g<2>", source)


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
        if student:
            cell.source = student_badges(cell.source)
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


def _git(*args: str, env: dict | None = None, check: bool = True) -> str:
    p = subprocess.run(["git", *args], cwd=REPO, env=env, capture_output=True, text=True)
    if check and p.returncode:
        raise RuntimeError(f"git {' '.join(args)}: {p.stderr.strip()}")
    return p.stdout.strip()


def commit_to_branch(written: list[Path], branch: str = STUDENT_BRANCH) -> str:
    """Commit the student notebooks over notebooks/ of HEAD onto `branch` (made if missing; its last commit the
    parent), through a temporary index: the working tree and the checked-out branch are not touched. Returns what
    happened, for the log; nothing is committed when the notebooks equal the branch's already."""
    if _git("rev-parse", "--is-inside-work-tree", check=False) != "true":
        return f"not a git checkout: the student notebooks are only in the output folder (no branch {branch!r})"
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "GIT_INDEX_FILE": str(Path(tmp) / "index")}
        for who in ("AUTHOR", "COMMITTER"):  # a machine without git's user.name still gets a commit
            env.setdefault(f"GIT_{who}_NAME", _git("config", "user.name", check=False) or "make student")
            env.setdefault(f"GIT_{who}_EMAIL", _git("config", "user.email", check=False) or "make-student@localhost")
        _git("read-tree", "HEAD", env=env)
        for p in written:
            blob = _git("hash-object", "-w", str(p))
            _git("update-index", "--add", "--cacheinfo", f"100644,{blob},notebooks/{p.name}", env=env)
        tree = _git("write-tree", env=env)
        parent = _git("rev-parse", "--verify", "-q", f"refs/heads/{branch}", check=False)
        if parent and _git("rev-parse", f"{parent}^{{tree}}") == tree:
            return f"branch {branch!r} holds these notebooks already"
        head = _git("rev-parse", "--short", "HEAD")
        commit = _git("commit-tree", tree, "-m", f"Student notebooks of {head} (make student)",
                      *(["-p", parent] if parent else []), env=env)
        _git("update-ref", f"refs/heads/{branch}", commit)
    return f"committed to branch {branch!r}; publish it with: git push origin {branch}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src", nargs="?", default=str(REPO / "notebooks"), help="a folder of notebooks or one notebook")
    ap.add_argument("--out", help="output folder (default build/student or build/instructor)")
    ap.add_argument("--instructor", action="store_true", help="keep the solutions, only drop the markers")
    ap.add_argument("--repo", help="rewrite the Colab badges and setup cells to this repository URL (a fork)")
    ap.add_argument("--branch", help=f"also commit the student notebooks to this local branch (e.g. {STUDENT_BRANCH}, "
                                     "which their Colab badges open)")
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
    if a.branch and student:
        print(commit_to_branch(written, a.branch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
