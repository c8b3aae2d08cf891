"""Rebuild every bundled checkpoint in data/models/ (CPU, deterministic). Run with `make models`.

Stage 1 trains each model from scratch on ShapesWorld's plain look into --base (build_clip.py,
build_align.py, build_vilt.py, build_blip.py). Stage 2 (build_robust.py) trains each of them further on
the training styles into --out; build_domain.py trains the out-of-domain detector; robustness.py writes
the held-out table per style (data/models/ROBUSTNESS.md) and each model's scores.

Every build runs on one torch thread (--threads), as the shipped files were built: the same thread count gives
the same weights bit for bit. The builds form two chains that share nothing (CLIP, ALIGN and ViLT; the three
BLIPs and the detector), so on a machine with two cores or more they run side by side (--jobs 2), each
chain's output in <base>/logs/; the robustness table comes last.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

DUAL_VILT = ["shapes-clip", "shapes-align", "shapes-vilt-vqa"]
BLIPS = ["shapes-blip-caption", "shapes-blip-vqa", "shapes-blip-itm"]


def chains(base: str, out: str, threads: int) -> dict[str, list[tuple[str, list[str]]]]:
    """The builds as independent chains of (script, arguments); each step needs only the steps before it."""
    t = ["--threads", str(threads)]

    def stage1(script: str) -> tuple[str, list[str]]:
        return script, ["--out", base, *t]

    def stage2(models: list[str]) -> tuple[str, list[str]]:
        return "build_robust.py", ["--base", base, "--out", out, *t, "--only", *models]

    return {"clip-align-vilt": [stage1("build_clip.py"), stage1("build_align.py"), stage1("build_vilt.py"),
                                stage2(DUAL_VILT)],
            "blip-detector": [stage1("build_blip.py"), stage2(BLIPS), ("build_domain.py", ["--out", out, *t])]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="data/models")
    ap.add_argument("--base", default="build/models-plain", help="where stage 1 (the plain look) is built")
    ap.add_argument("--only", nargs="*", help="script names to run, e.g. build_clip.py build_robust.py")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads of every build; the shipped files were built with 1, and bit-identical "
                         "weights need the same count")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                    help="chains run side by side (2: the two chains at once; 1: one after the other)")
    args = ap.parse_args(argv)
    here, logs = Path(__file__).parent, Path(args.base) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    lock, codes, t_all = threading.Lock(), {}, time.perf_counter()

    def say(text: str) -> None:
        with lock:
            print(text, flush=True)

    def run_chain(name: str, steps: list) -> None:
        with open(logs / f"{name}.log", "w") as log:
            for script, extra in steps:
                if args.only and script not in args.only:
                    continue
                t0 = time.perf_counter()
                say(f"== {name}: {script} {' '.join(extra)} (output in {logs / (name + '.log')})")
                rc = subprocess.call([sys.executable, str(here / script), *extra], stdout=log, stderr=subprocess.STDOUT)
                say(f"== {name}: {script}: exit {rc} after {time.perf_counter() - t0:.0f} s")
                if rc:
                    codes[name] = rc
                    return
        codes[name] = 0

    todo = chains(args.base, args.out, args.threads)
    if args.jobs > 1:
        workers = [threading.Thread(target=run_chain, args=item) for item in todo.items()]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    else:
        for item in todo.items():
            run_chain(*item)
    failed = {name: rc for name, rc in codes.items() if rc}
    if failed:
        say(f"== failed: {failed}; see {logs}")
        return next(iter(failed.values()))
    if not args.only or "robustness.py" in args.only:
        t0 = time.perf_counter()
        say("== robustness.py")
        rc = subprocess.call([sys.executable, str(here / "robustness.py"), "--models", args.out])
        say(f"== robustness.py: exit {rc} after {time.perf_counter() - t0:.0f} s")
        if rc:
            return rc
    say(f"== make models: {time.perf_counter() - t_all:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
