"""Zero-shot speed after `attention_maps` on the same loaded model, against a model that never gave maps.

`attention_maps(m, ...)` on a model loaded normally (sdpa attention, the speed-ups on) needs eager attention for
the call. Until 2026-12-06 it switched the shared cached model to eager and set its `attention` flag for good,
and zero-shot on 32 images ran 30% slower for the rest of the session. Now the call switches back afterwards.

Three instances of the same checkpoint, timed in interleaved rounds (timing.py) on 32 held-out ShapesWorld
images and the 9 colour-shape labels:
  never mapped:   loaded, zero-shot only;
  after maps:     loaded, one attention_maps call, then zero-shot (what a session does now);
  left switched:  the old behaviour, reproduced (eager attention and the flag set, never switched back).
Target: "after maps" at >= 0.95x the speed of "never mapped".

    python benchmarks/after_maps.py               # shapes-clip and a real-size random-init CLIP ViT-B/32
    python benchmarks/after_maps.py --only shapes  # the bundled model alone
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402

import mmkit  # noqa: E402
from mmkit.attention import _implementations  # noqa: E402
from mmkit.models import clear_cache  # noqa: E402
from mmkit.testing import random_model_dir  # noqa: E402
from mmkit.train.contrastive import LABELS  # noqa: E402
from timing import timed_rounds  # noqa: E402  (benchmarks/timing.py)

MIN_ROUND_S = 0.5  # a call shorter than this runs back to back to fill each round (timing.py)


def bench(name: str, path: str, images, repeats: int) -> dict:
    loaded = {}
    for kind in ("never mapped", "after maps", "left switched"):
        clear_cache()  # a new instance of the same checkpoint for each
        loaded[kind] = mmkit.load_model(path)
    clear_cache()
    mapped = loaded["after maps"]
    before = _implementations(mapped.model)
    mmkit.attention_maps(mapped, images[0], "red circle")
    assert _implementations(mapped.model) == before and not mapped.attention, "attention_maps changed the model"
    old = loaded["left switched"]
    old.model.set_attn_implementation("eager")  # what attention_maps did before 2026-12-06
    old.attention = True

    def zero_shot(m):
        return lambda: mmkit.zero_shot(m, images, LABELS, templates=["a {}"], batch_size=len(images))

    results = {kind: zero_shot(m)() for kind, m in loaded.items()}  # also fills each label cache
    top = {kind: [max(p, key=p.get) for p in r] for kind, r in results.items()}
    assert top["after maps"] == top["never mapped"], "the mapped model answers differently"
    t = timed_rounds({kind: zero_shot(m) for kind, m in loaded.items()}, repeats, min_round_s=MIN_ROUND_S)
    med = {kind: statistics.median(v) for kind, v in t.items()}
    ratio = lambda kind: med["never mapped"] / med[kind]  # noqa: E731  speed relative to never mapped
    per_round = [a / b for a, b in zip(t["never mapped"], t["after maps"])]
    return {"model": name, "images": len(images), "attention": before[""],
            "never_mapped_ms": 1e3 * med["never mapped"], "after_maps_ms": 1e3 * med["after maps"],
            "left_switched_ms": 1e3 * med["left switched"], "after_maps_x": ratio("after maps"),
            "after_maps_x_rounds": [min(per_round), max(per_round)], "left_switched_x": ratio("left switched")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="timed rounds (default 5)")
    ap.add_argument("--only", default="", help="keep the models whose name contains this")
    ap.add_argument("--out", default=str(Path(__file__).with_name("after_maps_results.json")))
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    images = mmkit.ShapesWorld(32, seed=7, split="test").images
    tmp = Path(tempfile.mkdtemp(prefix="mmkit-bench-"))
    try:
        models = {"shapes-clip": "shapes-clip", "clip-b32 (random init)": None}
        rows = []
        for name, path in models.items():
            if args.only not in name:
                continue
            path = path or str(random_model_dir("clip", "base", tmp / "clip-b32"))
            rows.append(bench(name, path, images, args.repeats))
            r = rows[-1]
            print(f"{r['model']:<24} {r['attention']:<5} never mapped {r['never_mapped_ms']:8.1f} ms  after maps "
                  f"{r['after_maps_ms']:8.1f} ms ({r['after_maps_x']:.2f}x, rounds {r['after_maps_x_rounds'][0]:.2f}-"
                  f"{r['after_maps_x_rounds'][1]:.2f}x)  left switched {r['left_switched_ms']:8.1f} ms "
                  f"({r['left_switched_x']:.2f}x)", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    info = {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
            "repeats": args.repeats, "rows": rows}
    Path(args.out).write_text(json.dumps(info, indent=1) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
