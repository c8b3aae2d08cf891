"""`python -m mmkit.testing`: what `make test-hub` and `make test-colab` call (build the hub, list the notebooks
that load family models, say which quality checks random weights skip)."""
from __future__ import annotations

import sys
from pathlib import Path

from .hub import hub_repos, simulated_hub

def hub_notebooks(folder) -> list[Path]:
    """The notebooks in folder whose code names a family model ("clip", "blip-caption", ...): the ones whose
    pretrained branch the simulated hub runs. The others load explicit bundled names only, as in `make test`."""
    import json
    import re

    from ..models import FAMILIES

    named = re.compile("|".join(rf'"{re.escape(f)}"' for f in FAMILIES))
    out = []
    for nb in sorted(Path(folder).glob("*.ipynb")):
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        if any(c["cell_type"] == "code" and named.search("".join(c["source"])) for c in cells):
            out.append(nb)
    return out


def quality_checks(notebook) -> int:
    """How many asserts of a notebook check quality only on the bundled models (inside `if BUNDLED:` or
    `if ....source == "bundled":`): the checks a run on random weights skips."""
    import json

    cells = json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]
    n = 0
    for c in cells:
        lines = "".join(c["source"]).splitlines() if c["cell_type"] == "code" else []
        for i, line in enumerate(lines):
            if not line.strip().startswith("assert"):
                continue
            indent = len(line) - len(line.lstrip())
            outer = next((x for x in reversed(lines[:i]) if x.strip() and len(x) - len(x.lstrip()) < indent), "")
            n += outer.strip().startswith("if ") and ("BUNDLED" in outer or '"bundled"' in outer)
    return n


def main(argv=None) -> int:
    """python -m mmkit.testing hub FOLDER [--size tiny|real] | notebooks DIR | skipped NOTEBOOK..."""
    import argparse
    import time

    ap = argparse.ArgumentParser(prog="python -m mmkit.testing", description=main.__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    hub = sub.add_parser("hub", help="build the simulated hub in FOLDER")
    hub.add_argument("folder")
    hub.add_argument("--size", default="tiny", choices=("tiny", "real"))
    nbs = sub.add_parser("notebooks", help="list the notebooks that use family models")
    nbs.add_argument("folder")
    nbs.add_argument("--skip", nargs="*", default=[], help="notebook names to leave out (each is said on stderr)")
    sub.add_parser("skipped", help="say which quality checks random weights skip").add_argument("notebooks", nargs="+")
    args = ap.parse_args(argv)
    if args.cmd == "hub":
        t0 = time.perf_counter()
        simulated_hub(args.folder, args.size)
        print(f"simulated hub ({args.size}): {len(hub_repos())} hub ids in {args.folder}, "
              f"{time.perf_counter() - t0:.1f} s")
    elif args.cmd == "notebooks":
        found = hub_notebooks(args.folder)
        for p in found:
            if p.name in args.skip or p.stem in args.skip:
                print(f"LEFT OUT of the simulated-hub run: {p.name}", file=sys.stderr)
        print(" ".join(str(p) for p in found if p.name not in args.skip and p.stem not in args.skip))
    else:
        counts = {Path(nb).stem: quality_checks(nb) for nb in args.notebooks}
        print(f"SKIPPED on the simulated hub (random weights): {sum(counts.values())} quality checks under "
              "`if BUNDLED:` (" + ", ".join(f"{k} {v}" for k, v in counts.items() if v) + "); every other check ran")
    return 0

