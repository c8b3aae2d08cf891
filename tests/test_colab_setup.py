"""Every notebook's setup cell, run in a simulated Colab: a fake `google.colab` module, `git clone` and pip
intercepted at subprocess.run, and Colab's installed packages faked through importlib.metadata.

Checks what would be installed: mmkit itself with --no-deps, then only what is missing; Colab's torch,
transformers and ipywidgets are never named to pip. The cell and scripts/colab_setup.py use the standard
library only, and the script is checked to parse as Python 3.10-3.13.
"""
import ast
import importlib.metadata
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
URL = re.search(r'^Repository\s*=\s*"([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M).group(1)

# Colab's runtime as published (googlecolab/backend-info, read 2026-12-06; requirements-colab.txt pins the same
# versions for `make test-colab`): Python 3.13, the CPU image's torch, ipywidgets pinned to 7.7.1
COLAB = {"torch": "2.11.0+cpu", "torchvision": "0.26.0+cpu", "transformers": "5.15.0", "ipywidgets": "7.7.1",
         "numpy": "2.1.3", "pillow": "11.3.0", "matplotlib": "3.10.0", "tqdm": "4.67.3", "huggingface-hub": "1.0.1",
         "safetensors": "0.8.0", "tokenizers": "0.22.2", "scikit-image": "0.25.2", "packaging": "25.0",
         "filelock": "3.32.3", "peft": "0.20.0", "accelerate": "1.14.0", "pyarrow": "18.1.0", "datasets": "4.0.0"}
PROTECTED = ("torch", "torchvision", "transformers", "ipywidgets")
# the optional dependency groups each notebook names in its setup cell (none: the core dependencies only)
NEEDS = {"09": ("metrics",), "10": ("metrics",), "13": ("metrics", "finetune"), "14": ("video",), "15": ("index",)}
# what pip is asked for on Colab (COLAB above has peft, datasets and pyarrow already, as Colab does)
EXTRA_PACKAGES = {(): [], ("metrics",): ["pycocoevalcap>=1.2"], ("metrics", "finetune"): ["pycocoevalcap>=1.2"],
                  ("video",): ["av>=12"], ("index",): ["faiss-cpu>=1.8"]}


def setup_cell(path: Path) -> str:
    cells = [c for c in nbformat.read(path, 4).cells if c.cell_type == "code"]
    assert cells[0].source.startswith("# Setup"), f"{path.name}: the first code cell is not the setup cell"
    return cells[0].source


class FakeColab:
    """Intercepts subprocess.run: `git clone URL DIR` copies the files the setup needs; pip calls are recorded."""

    def __init__(self, installed: dict):
        self.installed = dict(installed)
        self.calls: list[list[str]] = []

    def run(self, cmd, *args, **kwargs):
        cmd = [str(c) for c in cmd]
        self.calls.append(cmd)
        if cmd[:2] == ["git", "clone"]:
            dest = Path(cmd[-1])
            (dest / "scripts").mkdir(parents=True)
            shutil.copy(REPO / "pyproject.toml", dest / "pyproject.toml")
            shutil.copy(REPO / "scripts" / "colab_setup.py", dest / "scripts" / "colab_setup.py")
        elif cmd[1:4] == ["-m", "pip", "install"]:
            for a in cmd[4:]:
                if a.startswith("-") or a.startswith("/") or a.startswith("."):
                    continue
                self.installed[re.match(r"[A-Za-z0-9._-]+", a).group(0)] = "9.9"
            if "-e" in cmd:
                self.installed["mmkit"] = "0.1.0"
        else:
            raise AssertionError(f"unexpected command on Colab: {cmd}")
        return subprocess.CompletedProcess(cmd, 0)

    def version(self, name):
        norm = lambda s: re.sub(r"[-_.]+", "-", s).lower()  # noqa: E731
        for k, v in self.installed.items():
            if norm(k) == norm(name):
                return v
        raise importlib.metadata.PackageNotFoundError(name)

    @property
    def pip_calls(self):
        return [c for c in self.calls if c[1:4] == ["-m", "pip", "install"]]


@pytest.fixture
def colab(monkeypatch, tmp_path):
    """Run a setup cell as Colab would: returns run(source, installed) -> (FakeColab, printed text)."""
    monkeypatch.chdir(tmp_path)  # Colab's /content
    monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.delenv("MMKIT_REPO", raising=False)
    path_before = list(sys.path)

    def run(source, installed=COLAB, capsys=None):
        fake = FakeColab(installed)
        monkeypatch.setattr(subprocess, "run", fake.run)
        monkeypatch.setattr(importlib.metadata, "version", fake.version)
        exec(compile(source, "<setup cell>", "exec"), {"__name__": "__main__"})
        return fake

    yield run
    sys.path[:] = path_before


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_setup_cell_installs_only_what_colab_lacks(path, colab, capsys):
    fake = colab(setup_cell(path))
    clone = fake.calls[0]
    assert clone[:2] == ["git", "clone"] and URL in clone and clone[-1] == "mmkit"
    pip = fake.pip_calls
    named = [a for c in pip for a in c[4:] if not a.startswith("-")]
    for pkg in PROTECTED:
        assert not any(re.match(rf"{pkg}\b", a) for a in named), f"{pkg} would be reinstalled: {pip}"
    deps = [a for c in pip if "-e" not in c for a in c[4:] if not a.startswith("-")]
    # only this notebook's optional groups: chapter 10's pycocoevalcap (about 100 MB) is not installed for 00
    assert deps == EXTRA_PACKAGES[NEEDS.get(path.name[:2], ())], pip
    editable = [c for c in pip if "-e" in c]
    assert len(editable) == 1 and "--no-deps" in editable[0] and editable[0][-1].endswith("mmkit")
    assert str(Path("mmkit").resolve()) in sys.path  # importable in this kernel without a restart
    out = capsys.readouterr().out
    assert "kept torch 2.11.0+cpu, transformers 5.15.0, ipywidgets 7.7.1" in out and "warning" not in out


def test_setup_cell_is_a_no_op_outside_colab(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a))
    for path in NOTEBOOKS:
        exec(compile(setup_cell(path), path.name, "exec"), {})
    assert calls == []


def test_all_setup_cells_and_badges_agree_with_pyproject():
    extras = re.compile(r', extras=\(([^)]*)\)\)$')
    cells = {p.name: extras.sub(")", setup_cell(p)) for p in NOTEBOOKS}
    assert len(set(cells.values())) == 1, "setup cells differ between notebooks (other than their extras)"
    named = {p.name[:2]: tuple(re.findall(r'"(\w+)"', m.group(1))) for p in NOTEBOOKS
             if (m := extras.search(setup_cell(p)))}
    assert named == {k: v for k, v in NEEDS.items() if any(p.name[:2] == k for p in NOTEBOOKS)}
    optional = __import__("tomllib").loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert all(e in optional for v in named.values() for e in v)
    owner_repo = URL.split("github.com/")[1]
    for p in NOTEBOOKS:
        first = nbformat.read(p, 4).cells[0].source
        badge = f"https://colab.research.google.com/github/{owner_repo}/blob/main/notebooks/{p.name}"
        assert badge in first, f"{p.name}: no Colab badge pointing at {badge}"


def test_missing_light_dependency_is_installed_and_old_transformers_only_warned(colab, capsys):
    installed = {k: v for k, v in COLAB.items() if k != "scikit-image"}
    installed["transformers"] = "4.57.1"  # an older runtime
    fake = colab(setup_cell(NOTEBOOKS[0]), installed)
    named = [a for c in fake.pip_calls for a in c[4:] if not a.startswith("-")]
    assert "scikit-image>=0.22" in named and not any(a.startswith("transformers") for a in named)
    out = capsys.readouterr().out
    assert "warning: transformers 4.57.1 is installed but mmkit wants <6,>=5.15" in out or \
           "warning: transformers 4.57.1 is installed but mmkit wants >=5.15,<6" in out


def test_second_run_after_a_restart_installs_nothing(colab):
    source = setup_cell(NOTEBOOKS[0])
    first = colab(source)
    again = colab(source, first.installed)  # the clone exists and everything is installed now
    assert again.calls == []


def test_env_var_points_the_clone_at_a_fork(colab, monkeypatch):
    monkeypatch.setenv("MMKIT_REPO", "https://github.com/someone/fork")
    fake = colab(setup_cell(NOTEBOOKS[0]))
    assert fake.calls[0][-2] == "https://github.com/someone/fork"


def test_scripts_parse_on_python_310_to_313():
    for path in (REPO / "scripts" / "colab_setup.py",):
        src = path.read_text()
        for minor in (10, 11, 12, 13):
            ast.parse(src, feature_version=(3, minor))
    for p in NOTEBOOKS:
        for minor in (10, 13):
            ast.parse(setup_cell(p), feature_version=(3, minor))


# -- uploads on Colab: google.colab.files.upload and a path box instead of FileUpload ------------------------------

@pytest.fixture
def fake_colab_files(monkeypatch):
    """A simulated `google.colab` with a `files.upload()` that returns what the test queues (or raises it)."""
    queued = []

    def upload():
        item = queued.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item

    colab_mod = types.ModuleType("google.colab")
    colab_mod.files = types.SimpleNamespace(upload=upload)
    google = types.ModuleType("google")
    google.colab = colab_mod
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", colab_mod)
    return queued


def _jpeg(size=(1600, 1200)) -> bytes:
    """A photo-like JPEG over 1 MB (what ipywidgets 7.7.1's FileUpload loses on Colab)."""
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (*size[::-1], 3), dtype=np.uint8)).save(
        buf, format="JPEG", quality=95)
    return buf.getvalue()


def _contains(box, widget) -> bool:
    return box is widget or any(_contains(c, widget) for c in getattr(box, "children", ()))


def test_picker_offers_colabs_upload_and_a_path_box_on_colab(fake_colab_files, tmp_path):
    pytest.importorskip("ipywidgets")
    from widgets.picker import ImagePicker, on_colab

    assert on_colab()
    p = ImagePicker(source=None)
    assert p.colab and _contains(p, p.colab_upload) and _contains(p, p.path) and not _contains(p, p.upload)
    big = _jpeg()
    assert len(big) > 1024 * 1024
    fake_colab_files.append({"holiday.jpg": big})
    p.colab_upload.click()
    assert p.error.value == "" and p.image.size == (1600, 1200) and p.label == "upload: holiday.jpg"
    fake_colab_files.append({})  # the dialog closed without a file: nothing changes
    p.colab_upload.click()
    assert p.label == "upload: holiday.jpg" and p.error.value == ""
    fake_colab_files.append(RuntimeError("the browser refused"))
    p.colab_upload.click()
    assert "did not finish" in p.error.value and "Files panel" in p.error.value
    assert p.image is None and p.label == ""  # a failed upload: no panel answers for the picture before it
    small = ImagePicker(source=None, max_upload_mb=1)
    fake_colab_files.append({"holiday.jpg": big})
    small.colab_upload.click()
    assert "the limit is 1 MB" in small.error.value and small.image is None
    # the path box: a file uploaded in Colab's Files panel
    (tmp_path / "photo.jpg").write_bytes(big)
    p.path.value = str(tmp_path / "photo.jpg")
    p.open_path.click()
    assert p.error.value == "" and p.label == "file: photo.jpg" and p.image.size == (1600, 1200)
    p.path.value = str(tmp_path / "missing.jpg")
    p.open_path.click()
    assert "is not a file" in p.error.value and p.image is None and p.label == ""
    p.open_file(tmp_path / "photo.jpg")
    p.path.value = "  "
    p.open_path.click()  # nothing typed: a hint, and the picture stays
    assert "type the path" in p.error.value and p.label == "file: photo.jpg"
    (tmp_path / "notes.jpg").write_text("not an image")
    p.open_file(tmp_path / "notes.jpg")
    assert "Error" in p.error.value and "Traceback" not in p.error.value and p.image is None


def test_picker_keeps_fileupload_outside_colab(monkeypatch):
    pytest.importorskip("ipywidgets")
    from widgets.picker import ImagePicker, on_colab

    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert not on_colab()
    p = ImagePicker(source=None)
    assert not p.colab and _contains(p, p.upload) and not _contains(p, p.colab_upload) and not _contains(p, p.path)
    p.upload_from_colab()  # called anyway (a script): a message, not an ImportError
    assert "needs Google Colab" in p.error.value
