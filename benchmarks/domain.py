"""What the out-of-domain check costs: mmkit.domain.check against the caption call it guards.

    python benchmarks/domain.py [--repeats 5] [--detector data/models/shapes-domain]

Baseline: `mmkit.caption` on the bundled captioner with the check turned off (MMKIT_DOMAIN_CHECK=0), for one
picture (the first, and the largest) and for a batch of 32; the check alone on the same pictures (the detector and
the shape count, which share one thumbnail per picture), and the detector alone (`out_of_domain`). The target is a check under 5% of the
caption call. Pictures: ShapesWorld scenes in the held-out styles, whose canvases run from 32 to 512 px.
Also timed: the repaint of one-colour backgrounds (mmkit.domain.repainted), which is part of the caption call
(its preprocessing), not of the check; and the check's reading of the shapes on a one-colour ground, their turns
and colours (mmkit.domain.shape_readings, part of the check), alone.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing import timed_together  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--detector", help="a detector folder to time instead of the bundled one")
    args = ap.parse_args(argv)
    import torch

    import mmkit
    from mmkit import domain, domain_detector
    from mmkit.data import load_image

    if args.detector:
        domain_detector.DETECTOR_DIR = Path(args.detector).resolve()
        domain.load_detector.cache_clear()
    net, _ = domain.load_detector()
    m = mmkit.load_model("shapes-blip-caption")
    scenes = [load_image(s.image) for s in mmkit.ShapesWorld(32, seed=0, split="test", style="test")]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; bundled shapes-blip-caption; detector "
          f"{domain_detector.DETECTOR_DIR} ({net.side} px {net.thumbnail} thumbnails, channels {net.channels})")
    print("| pictures | caption (check off) | check alone | detector alone | check / caption | detector / caption "
          "| repaint alone | repaint / caption | shapes alone | shapes / caption |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    largest = max(scenes, key=lambda im: im.width * im.height)
    for n, ims in (("1", scenes[:1]), (f"1 ({largest.width}x{largest.height})", [largest]), ("32", scenes)):

        def plain():
            os.environ["MMKIT_DOMAIN_CHECK"] = "0"
            try:
                mmkit.caption(m, ims)
            finally:
                os.environ.pop("MMKIT_DOMAIN_CHECK", None)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", mmkit.OutOfDomainWarning)  # held-out looks are flagged now and then
            t = timed_together({"caption": plain, "check": lambda: domain.check(m, ims, "caption"),
                                "detector": lambda: domain.out_of_domain(ims),
                                "repaint": lambda: [domain.repainted(m, im) for im in ims],
                                "turns": lambda: domain.shape_readings(ims)},
                               repeats=args.repeats, min_round_s=0.5)
        print(f"| {n} | {t['caption'] * 1e3:.2f} ms | {t['check'] * 1e3:.3f} ms | {t['detector'] * 1e3:.3f} ms | "
              f"{t['check'] / t['caption']:.1%} | {t['detector'] / t['caption']:.1%} | {t['repaint'] * 1e3:.3f} ms | "
              f"{t['repaint'] / t['caption']:.1%} | {t['turns'] * 1e3:.3f} ms | {t['turns'] / t['caption']:.1%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
