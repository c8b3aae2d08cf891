"""How mmkit is installed: a script run beside a clone named mmkit/ still imports the package."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_clone_named_mmkit_in_the_scripts_folder_does_not_hide_the_package(tmp_path):
    """`git clone .../mmkit` then a script in the same folder: with setuptools' default editable install (an import
    hook) Python took the clone's folder for an empty namespace package named mmkit (two outside testers got
    "module 'mmkit' has no attribute 'load_model'"). `make install` installs on a path entry (editable_mode=compat)."""
    (tmp_path / "mmkit").symlink_to(ROOT, target_is_directory=True)
    env = {**os.environ, "PYTHONPATH": ""}
    p = subprocess.run([sys.executable, "-c", "import mmkit, widgets; print(mmkit.load_model.__module__, "
                        "widgets.__file__)"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-1500:]
    assert p.stdout.split()[0] == "mmkit.models" and p.stdout.split()[1].endswith("__init__.py")
