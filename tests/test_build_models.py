"""scripts/build_models.py (`make models`): every build on one thread, two independent chains side by side, the
robustness table last, and a failure stops its chain and the table."""
import threading
from pathlib import Path

import pytest

from mmkit.testing import load_script

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def build(monkeypatch):
    mod = load_script(ROOT / "scripts" / "build_models.py")
    calls, lock = [], threading.Lock()

    def fake_call(cmd, **kwargs):
        with lock:
            calls.append((Path(cmd[1]).name, cmd[2:]))
        return 1 if Path(cmd[1]).name in fail else 0

    fail: set = set()
    monkeypatch.setattr(mod.subprocess, "call", fake_call)
    return mod, calls, fail


def test_every_build_runs_once_on_one_thread_and_the_table_comes_last(build, tmp_path):
    mod, calls, _ = build
    assert mod.main(["--base", str(tmp_path / "plain"), "--out", str(tmp_path / "out"), "--jobs", "2"]) == 0
    names = [name for name, _ in calls]
    assert sorted(names[:-1]) == sorted(["build_clip.py", "build_align.py", "build_vilt.py", "build_blip.py",
                                         "build_robust.py", "build_robust.py", "build_domain.py"])
    assert names[-1] == "robustness.py"
    for name, args in calls[:-1]:
        assert args[args.index("--threads") + 1] == "1", name
    robust = sorted(tuple(args[args.index("--only") + 1:]) for name, args in calls if name == "build_robust.py")
    assert sorted(m for group in robust for m in group) == sorted(mod.DUAL_VILT + mod.BLIPS)  # each model once
    at = {(name, tuple(args[args.index("--only") + 1:]) if "--only" in args else ()): i
          for i, (name, args) in enumerate(calls)}
    # a model's stage 2 comes after its stage 1
    assert at["build_robust.py", tuple(mod.DUAL_VILT)] > max(at[s, ()] for s in ("build_clip.py", "build_align.py",
                                                                                  "build_vilt.py"))
    assert at["build_robust.py", tuple(mod.BLIPS)] > at["build_blip.py", ()]
    assert (tmp_path / "plain" / "logs").is_dir()


def test_a_failed_build_stops_its_chain_and_the_table(build, tmp_path):
    mod, calls, fail = build
    fail.add("build_blip.py")
    assert mod.main(["--base", str(tmp_path / "plain"), "--out", str(tmp_path / "out"), "--jobs", "1"]) == 1
    names = [name for name, _ in calls]
    assert "build_domain.py" not in names and "robustness.py" not in names
    assert names.count("build_robust.py") == 1  # the other chain still ran to its end


def test_only_runs_the_named_scripts(build, tmp_path):
    mod, calls, _ = build
    assert mod.main(["--base", str(tmp_path), "--only", "build_domain.py", "robustness.py"]) == 0
    assert [name for name, _ in calls] == ["build_domain.py", "robustness.py"]
