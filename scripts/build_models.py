"""Rebuild every bundled checkpoint in data/models/ (CPU, deterministic). Run with `make models`.

Stage 1 trains each model from scratch on ShapesWorld's plain look into --base (build_clip.py,
build_align.py, build_vilt.py, build_blip.py). Stage 2 (build_robust.py) trains each of them further on
the training styles into --out; build_domain.py trains the out-of-domain detector; robustness.py writes
the held-out table per style (data/models/ROBUSTNESS.md) and each model's scores.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

STAGE1 = ["build_clip.py", "build_align.py", "build_vilt.py", "build_blip.py"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="data/models")
    ap.add_argument("--base", default="build/models-plain", help="where stage 1 (the plain look) is built")
    ap.add_argument("--only", nargs="*", help="script names to run, e.g. build_clip.py build_robust.py")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads of every build; the shipped files were built with 1, and bit-identical "
                         "weights need the same count")
    args = ap.parse_args(argv)
    here = Path(__file__).parent
    threads = ["--threads", str(args.threads)]
    steps = [(s, ["--out", args.base, *threads]) for s in STAGE1] + [
        ("build_robust.py", ["--base", args.base, "--out", args.out, *threads]),
        ("build_domain.py", ["--out", args.out, *threads]),
        ("robustness.py", ["--models", args.out])]
    for name, extra in steps:
        if args.only and name not in args.only:
            continue
        t0 = time.perf_counter()
        print(f"== {name}", flush=True)
        rc = subprocess.call([sys.executable, str(here / name), *extra])
        print(f"== {name}: exit {rc} after {time.perf_counter() - t0:.0f} s", flush=True)
        if rc:
            return rc
    return 0


if __name__ == "__main__":
    sys.exit(main())
