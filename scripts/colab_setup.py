"""Install mmkit on Colab without replacing anything Colab already has.

Every notebook's first cell clones the repository to ./mmkit and runs this file. It installs mmkit
itself with --no-deps, then only the dependencies (from pyproject.toml, plus the optional groups that this
notebook names, e.g. `metrics` for chapter 10) that are missing altogether. Colab's own torch, transformers and ipywidgets (and every other package that is
already there) are never reinstalled or upgraded; one that is too old for mmkit gets a warning with the
command to upgrade it. Finally the clone goes on sys.path, so `import mmkit` works without a restart.

    python mmkit/scripts/colab_setup.py [CLONE_DIR [EXTRA ...]]   # or runpy.run_path(...)["main"](dir, extras)
Standard library only (Python >= 3.10); `packaging` is used for version checks when it is installed.
"""
from __future__ import annotations

import importlib.metadata as metadata
import os
import re
import subprocess
import sys

KEEP = ("torch", "torchvision", "torchaudio", "transformers", "ipywidgets")  # Colab's builds: never touched
EXTRAS = ()  # optional dependency groups installed when a notebook names none (a notebook names its own)


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(pyproject_text: str, extras=EXTRAS) -> list[str]:
    """The [project] dependencies and the named optional groups' requirements of a pyproject.toml text."""
    try:
        import tomllib  # Python >= 3.11 (Colab: 3.12 / 3.13)

        project = tomllib.loads(pyproject_text)["project"]
        deps = list(project.get("dependencies", []))
        optional = project.get("optional-dependencies", {})
    except ImportError:  # Python 3.10: the two lists are simple enough to read with a pattern
        def block(header):
            m = re.search(header + r"\s*=\s*\[(.*?)\]", pyproject_text, re.S)
            return re.findall(r'"([^"]+)"', m.group(1)) if m else []

        deps = block(r"^dependencies")
        optional = {e: block(rf"^{e}") for e in extras}
    for e in extras:
        deps += [d for d in optional.get(e, []) if not d.startswith("mmkit")]
    return deps


def split_requirement(req: str) -> tuple[str, str]:
    """'transformers>=5.15,<6' -> ('transformers', '>=5.15,<6'); markers and extras are dropped."""
    req = req.split(";")[0].strip()
    m = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*(.*)", req)
    return m.group(1), m.group(3).strip()


def installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def satisfies(version: str, spec: str) -> bool | None:
    """Whether version meets spec; None when `packaging` is not there to tell."""
    if not spec:
        return True
    try:
        from packaging.specifiers import SpecifierSet
        from packaging.version import Version
    except ImportError:
        return None
    return Version(version.split("+")[0]) in SpecifierSet(spec)


def plan(reqs: list[str], version_of=installed_version) -> tuple[list[str], list[str], dict[str, str]]:
    """(requirements to install: the missing ones, warnings about too-old ones, {name: version} of the kept ones)."""
    install, warnings, kept = [], [], {}
    for req in reqs:
        name, spec = split_requirement(req)
        have = version_of(name)
        if have is None:
            if _norm(name) in KEEP:  # not on this runtime at all: still the platform's job, say so
                warnings.append(f"{name} is not installed; install your platform's build: pip install '{req}'")
            else:
                install.append(req)
            continue
        kept[name] = have
        if satisfies(have, spec) is False:
            warnings.append(f"{name} {have} is installed but mmkit wants {spec}; it was kept. If something fails, "
                            f"run  %pip install -U '{req}'  and restart the runtime")
    return install, warnings, kept


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", *args], check=True)


def main(root: str = "mmkit", extras=EXTRAS) -> dict:
    """Install the clone at `root` and its missing dependencies; put it on sys.path. Returns what was done.

    Args:
        extras: the optional dependency groups of pyproject.toml this notebook needs, e.g. ("metrics",) for
            chapter 10's pycocoevalcap (about 100 MB); the others are not installed.
    """
    root = os.path.abspath(root)
    with open(os.path.join(root, "pyproject.toml"), encoding="utf-8") as f:
        reqs = requirements(f.read(), tuple(extras))
    install, warnings, kept = plan(reqs)
    if install:
        pip(*install)
    if installed_version("mmkit") is None:
        pip("--no-deps", "-e", root)
    if root not in sys.path:
        sys.path.insert(0, root)  # the editable install is only seen by new processes; this kernel needs the path
    shown = ", ".join(f"{k} {v}" for k, v in kept.items() if _norm(k) in KEEP)
    print(f"mmkit ready ({root}); kept {shown or 'nothing'}; installed {', '.join(install) or 'nothing else'}")
    for w in warnings:
        print("warning:", w)
    return {"installed": install, "warnings": warnings, "kept": kept}


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "mmkit", tuple(sys.argv[2:]))
