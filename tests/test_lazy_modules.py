"""`import mmkit` is cheap (no torch, under a second) and its sub-modules resolve on first use."""
import subprocess
import sys

import pytest

import mmkit


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_import_is_cheap_and_torch_free():
    # best of three fresh interpreters: the machine is shared, one slow start is not the import's fault
    code = ("import sys, time; t = time.perf_counter(); import mmkit; dt = time.perf_counter() - t; "
            "print(dt, 'torch' in sys.modules, 'transformers' in sys.modules, 'matplotlib.pyplot' in sys.modules)")
    runs = [_run(code).split() for _ in range(3)]
    assert all(r[1:] == ["False", "False", "False"] for r in runs), runs
    assert min(float(r[0]) for r in runs) < 1.0, runs


def test_issue_one_liner():
    assert _run("import mmkit; mmkit.fusion.list(); mmkit.metrics; print('ok')") == "ok"


@pytest.mark.parametrize("name", ["fusion", "metrics", "viz", "attention", "captioning", "train", "annotations",
                                  "exercises", "testing", "data", "tasks", "video"])
def test_submodule_resolves_on_first_use(name):
    # in a fresh interpreter the sub-module is not loaded by `import mmkit` alone (except the cheap ones it uses)
    out = _run(f"import sys, mmkit; m = mmkit.{name}; print(m.__name__, sys.modules['mmkit.{name}'] is m)")
    assert out == f"mmkit.{name} True"


def test_unknown_name_is_attribute_error():
    with pytest.raises(AttributeError, match="no_such_module"):
        mmkit.no_such_module  # noqa: B018
    assert not hasattr(mmkit, "no_such_module")
    assert "fusion" in dir(mmkit) and "metrics" in dir(mmkit)


def test_from_import_still_works():
    _run("from mmkit import fusion, metrics; from mmkit.fusion import GatedFusion; print(fusion.GatedFusion is GatedFusion)")
