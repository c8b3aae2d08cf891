"""Rebuild every bundled checkpoint in data/models/ (CPU, deterministic). Run with `make models`."""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

SCRIPTS = ["build_clip.py", "build_align.py", "build_vilt.py", "build_blip.py"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="data/models")
    ap.add_argument("--only", nargs="*", help="script names to run, e.g. build_clip.py")
    args = ap.parse_args(argv)
    here = Path(__file__).parent
    for name in args.only or SCRIPTS:
        t0 = time.perf_counter()
        print(f"== {name}", flush=True)
        rc = subprocess.call([sys.executable, str(here / name), "--out", args.out])
        print(f"== {name}: exit {rc} after {time.perf_counter() - t0:.0f} s", flush=True)
        if rc:
            return rc
    return 0


if __name__ == "__main__":
    sys.exit(main())
