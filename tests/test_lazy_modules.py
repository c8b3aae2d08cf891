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


def test_submodules_resolve_on_first_use():
    # one fresh interpreter: after `import mmkit` alone, each name is the sub-module itself, imported on first read
    names = ["fusion", "metrics", "viz", "attention", "captioning", "train", "annotations", "exercises", "testing",
             "data", "tasks", "video"]
    code = ("import sys, mmkit\n"
            f"for name in {names!r}:\n"
            "    m = getattr(mmkit, name)\n"
            "    assert m is sys.modules['mmkit.' + name] and m.__name__ == 'mmkit.' + name, name\n"
            "print('ok')")
    assert _run(code) == "ok"


def test_unknown_name_is_attribute_error():
    with pytest.raises(AttributeError, match="no_such_module"):
        mmkit.no_such_module  # noqa: B018
    assert not hasattr(mmkit, "no_such_module")
    assert "fusion" in dir(mmkit) and "metrics" in dir(mmkit)


def test_from_import_still_works():
    _run("from mmkit import fusion, metrics; from mmkit.fusion import GatedFusion; print(fusion.GatedFusion is GatedFusion)")


def test_every_submodule_is_listed_and_private_names_are_not_imported():
    import pkgutil

    names = {m.name for m in pkgutil.iter_modules(mmkit.__path__) if not m.name.startswith("_")}
    assert {"fusion", "metrics", "viz", "train", "captioning"} <= names <= set(dir(mmkit))
    with pytest.raises(AttributeError):
        mmkit.__main__  # noqa: B018  the CLI entry point: never run by an attribute read
