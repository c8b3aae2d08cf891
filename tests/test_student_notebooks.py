"""Student and instructor notebooks (scripts/make_student.py): in the student version every exercise check
fails until the exercise is done, and nothing else in the exercise cells fails; in the instructor version
every check passes.

Only the exercise cells (tagged "exercise") and their check cells ("exercise-check") run, all notebooks in
one kernel per version (a `%reset` between notebooks): executing whole student notebooks would repeat
the training cells that `make test` already runs on the sources. Exercise cells are self-contained, so
they run without the cells before them. Works for any notebook that has exercise cells.
"""
import re
from pathlib import Path

import nbformat
import pytest

from mmkit.testing import load_script

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
CHAPTERS = [p.name for p in sorted(NOTEBOOKS.glob("*.ipynb")) if "01" <= p.name[:2] <= "10"]  # 2-4 exercises each


ms = load_script(REPO / "scripts" / "make_student.py")


def tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def exercise_notebooks(folder: Path) -> dict[str, list]:
    """{notebook name: its exercise and check cells, in order} for every notebook of folder that has any."""
    out = {}
    for p in sorted(folder.glob("*.ipynb")):
        cells = [c for c in nbformat.read(p, 4).cells if {ms.EXERCISE_TAG, ms.CHECK_TAG} & set(tags(c))]
        if cells:
            out[p.name] = cells
    return out


@pytest.fixture(scope="module")
def versions(tmp_path_factory):
    root = tmp_path_factory.mktemp("versions")
    ms.write_version(NOTEBOOKS, root / "student", student=True)
    ms.write_version(NOTEBOOKS, root / "instructor", student=False)
    return root


def run_trimmed(notebooks: dict[str, list], tmp_path: Path):
    """Execute the cells of all notebooks in one kernel (errors allowed); returns [(notebook, cell)] executed."""
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    order = []
    nb.cells.append(nbformat.v4.new_code_cell("import torch; torch.set_num_threads(1)"))
    for name, cells in notebooks.items():
        nb.cells.append(nbformat.v4.new_code_cell("%reset -f"))  # nothing leaks from one notebook to the next
        for c in cells:
            cell = nbformat.v4.new_code_cell(c.source, metadata={"tags": tags(c)})
            nb.cells.append(cell)
            order.append((name, cell))
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    return order


def errors(cell) -> list[tuple[str, str]]:
    return [(o.get("ename", ""), o.get("evalue", "")) for o in cell.get("outputs", []) if o.get("output_type") == "error"]


def test_sources_are_well_formed():
    """Markers pair up and sit in tagged exercise cells; each exercise cell is followed by a check of a known name."""
    from mmkit.exercises import REGISTRY

    found = exercise_notebooks(NOTEBOOKS)
    assert set(CHAPTERS) <= set(found), f"chapters without exercises: {set(CHAPTERS) - set(found)}"
    for name, cells in found.items():
        n_ex = 0
        for i, c in enumerate(cells):
            if ms.EXERCISE_TAG in tags(c):
                n_ex += 1
                _, regions = ms.strip_solutions(c.source, student=True, where=f"{name} exercise {n_ex}")
                assert regions >= 1, f"{name}: exercise cell without a solution region:\n{c.source}"
                nxt = cells[i + 1] if i + 1 < len(cells) else None
                assert nxt is not None and ms.CHECK_TAG in tags(nxt), f"{name}: exercise {n_ex} has no check cell after it"
            else:
                names = re.findall(r'check\("([^"]+)"', c.source)
                assert names and all(n in REGISTRY for n in names), f"{name}: check cell names no known exercise:\n{c.source}"
        if name in CHAPTERS:
            assert 2 <= n_ex <= 4, f"{name} has {n_ex} exercises"
    # every source notebook converts (markers balanced) and converting is idempotent for the instructor version
    for p in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(p, 4)
        twice = ms.convert(ms.convert(nb, student=False, name=p.name), student=False, name=p.name)
        assert [c.source for c in twice.cells] == [c.source for c in ms.convert(nb, False, name=p.name).cells]


def test_student_version_has_no_solutions_no_checks_and_no_outputs(versions):
    for p in sorted((versions / "student").glob("*.ipynb")):
        src = nbformat.read(NOTEBOOKS / p.name, 4)
        nb = nbformat.read(p, 4)
        lesson = [c for c in src.cells if ms.CI_TAG not in tags(c)]  # the tests' check cells are left out
        assert len(nb.cells) == len(lesson)
        for s, c in zip(lesson, nb.cells):
            assert "BEGIN SOLUTION" not in c.source and "END SOLUTION" not in c.source
            if c.cell_type == "code":
                assert c.outputs == [] and c.execution_count is None
            if ms.EXERCISE_TAG in tags(s):
                solution = re.search(r"### BEGIN SOLUTION\n(.*?)\n\s*### END SOLUTION", s.source, re.S).group(1)
                body = [line.strip() for line in solution.split("\n") if line.strip()]
                assert not any(line in c.source.split("\n") for line in solution.split("\n") if line.strip()), body
                assert 'raise NotImplementedError("exercise: ' in c.source


def test_no_version_has_ci_check_cells(versions):
    n_sources = sum(ms.CI_TAG in tags(c) for p in NOTEBOOKS.glob("*.ipynb") for c in nbformat.read(p, 4).cells)
    assert n_sources > 0  # the sources have them: the tests run them
    for version in ("student", "instructor"):
        for p in sorted((versions / version).glob("*.ipynb")):
            nb = nbformat.read(p, 4)
            assert not [c.source for c in nb.cells if ms.CI_TAG in tags(c)], f"{version}/{p.name} has ci-check cells"
            assert not any(c.source.lstrip().startswith("assert ") for c in nb.cells if c.cell_type == "code"), p.name


def test_student_checks_fail_and_instructor_checks_pass(versions, tmp_path):
    student = run_trimmed(exercise_notebooks(versions / "student"), tmp_path)
    instructor = run_trimmed(exercise_notebooks(versions / "instructor"), tmp_path)
    assert len(student) == len(instructor) > 0
    n_checks = 0
    for (name, s), (_, i) in zip(student, instructor):
        assert not errors(i), f"{name}: instructor cell failed: {errors(i)}\n{i.source}"
        if ms.EXERCISE_TAG in tags(s):
            assert not errors(s), f"{name}: the student exercise cell itself fails (it must only define): {errors(s)}\n{s.source}"
        else:
            n_checks += 1
            err = errors(s)
            assert len(err) == 1 and err[0][0] == "ExerciseFailed" and "not done yet" in err[0][1], \
                f"{name}: this check passes (or fails wrongly) on the unfilled student exercise: {err}\n{s.source}"
            shown = "".join(o.get("text", "") for o in i.outputs)
            assert "\u2713" in shown, f"{name}: the instructor check printed no pass line:\n{i.source}"
    assert n_checks >= 2 * len(CHAPTERS)


def test_make_student_points_a_fork_and_reports_bad_markers(tmp_path):
    nb = nbformat.read(NOTEBOOKS / "00_start_here.ipynb", 4)
    out = ms.convert(nb, student=True, repo="https://github.com/someone/fork.git", name="00")
    text = "\n".join(c.source for c in out.cells)
    assert "https://github.com/someone/fork" in text and "colab.research.google.com/github/someone/fork/blob" in text
    assert "mmkit-course" not in text

    bad = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("def f():\n    ### BEGIN SOLUTION\n    return 1\n")])
    bad.cells[0].metadata["tags"] = ["exercise"]
    with pytest.raises(ms.MarkerError, match="never closed"):
        ms.convert(bad, student=True, name="bad")
    md = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("Why?\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION")])
    assert ms.convert(md, student=True).cells[0].source == "Why?\n*Your answer here.*"
    assert ms.main([str(NOTEBOOKS / "00_start_here.ipynb"), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "00_start_here.ipynb").exists()


def test_student_badges_open_the_student_branch_and_make_student_commits_it_there(tmp_path, monkeypatch):
    """The student notebooks' Colab badges (and the book's) opened the sources on main, solutions included."""
    import subprocess

    nb = nbformat.read(NOTEBOOKS / "04_clip.ipynb", 4)
    text = "\n".join(c.source for c in ms.convert(nb, student=True, name="04").cells)
    assert "/blob/student/notebooks/04_clip.ipynb" in text and "/blob/main/notebooks/" not in text
    shown = "\n".join(c.source for c in ms.convert(nb, student=False, name="04").cells)
    assert "/blob/main/notebooks/04_clip.ipynb" in shown  # the instructor version keeps main

    repo = tmp_path / "course"
    (repo / "notebooks").mkdir(parents=True)
    nbformat.write(nb, repo / "notebooks" / "04_clip.ipynb")
    git = lambda *a: subprocess.run(["git", "-C", str(repo), *a], capture_output=True, text=True, check=True).stdout  # noqa: E731
    git("init", "-q", "-b", "main")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "course")
    monkeypatch.setattr(ms, "REPO", repo)
    out = tmp_path / "student"
    written = ms.write_version(repo / "notebooks", out, student=True)
    assert "publish it with: git push origin student" in ms.commit_to_branch(written)
    published = git("show", "student:notebooks/04_clip.ipynb")
    assert "BEGIN SOLUTION" not in published and "(sim > correct).sum" not in published and "blob/student/" in published
    assert git("rev-parse", "--abbrev-ref", "HEAD").strip() == "main" and git("status", "--porcelain") == ""
    assert "already" in ms.commit_to_branch(written)  # nothing new: no second commit
