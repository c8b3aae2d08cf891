"""What attention maps cost against the plain task call, for every family, on one image.

For each bundled model (and, with --real, real-size random-init CLIP ViT-B/32 and BLIP-base captioning), three
calls on the same loaded model, timed in interleaved rounds (timing.py), medians kept:
  plain      the task call: zero_shot over 3 labels (CLIP, ALIGN), caption, answer, match;
  maps       attention_maps(m, image, text) as it returns (captioning: the caption is generated first, as
             attention_maps(m, image) does); relevance, where a family has it, is not computed yet;
  + reading  the maps and then every extra method read (relevance's backward passes included).
Targets (issue 29): BLIP caption maps <= 1.5x a caption call; CLIP maps <= 3x a zero-shot call.

    python benchmarks/attention_cost.py            # bundled models; writes attention_cost_results.json
    python benchmarks/attention_cost.py --real     # also CLIP-B/32 and BLIP-base (random init, ~2 GB)
"""
from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

import mmkit  # noqa: E402
from mmkit.data import ShapesWorld  # noqa: E402
from mmkit.models import clear_cache  # noqa: E402
from mmkit.testing import random_model_dir  # noqa: E402
from timing import timed_rounds  # noqa: E402

hf_logging.set_verbosity_error()
TARGETS = {"clip": 3.0, "blip-caption": 1.5}
LABELS = ["red circle", "green square", "blue triangle"]


def cost_row(name: str, path: str, scene, repeats: int) -> dict:
    m = mmkit.load_model(path)
    fam, image = m.spec.family, scene.image
    question = scene.qa[0].question
    plain, text = {
        "clip": (lambda: mmkit.zero_shot(m, image, LABELS), "small red circle"),
        "align": (lambda: mmkit.zero_shot(m, image, LABELS), "small red circle"),
        "blip-caption": (lambda: mmkit.caption(m, image), None),
        "blip-vqa": (lambda: mmkit.answer(m, image, question), question),
        "vilt-vqa": (lambda: mmkit.answer(m, image, question), question),
        "blip-itm": (lambda: mmkit.match(m, image, scene.caption), scene.caption),
    }[fam]

    def maps():
        return mmkit.attention_maps(m, image, text)

    def read_all():
        mp = maps()
        for method in list(mp.extra):
            mp.extra[method]  # noqa: B018  computes the lazy ones (relevance)
        return mp

    lazy = [k for k in dict.keys(maps().extra) if callable(dict.__getitem__(maps().extra, k))]
    load0 = os.getloadavg()[0]
    rounds = timed_rounds({"plain": plain, "maps": maps, "read": read_all}, repeats, min_round_s=0.5)
    t = {k: statistics.median(v) for k, v in rounds.items()}
    return {"family": fam, "model": name, "plain_ms": 1e3 * t["plain"], "maps_ms": 1e3 * t["maps"],
            "read_ms": 1e3 * t["read"], "maps_x": t["maps"] / t["plain"], "read_x": t["read"] / t["plain"],
            "maps_x_rounds": [b / a for a, b in zip(rounds["plain"], rounds["maps"])],
            "read_x_rounds": [b / a for a, b in zip(rounds["plain"], rounds["read"])],
            "lazy": lazy, "methods": list(maps().extra), "target": TARGETS.get(fam),
            "load": [load0, os.getloadavg()[0]]}


def report(rows: list, machine: str) -> None:
    print(f"\nmachine: {machine}\n")
    cols = ["family", "model", "plain call ms", "maps ms", "x plain", "maps + every method read ms", "x plain",
            "computed on reading", "target", "load (1 min)"]
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        rng = lambda k: f"{min(r[k]):.1f}-{max(r[k]):.1f}"  # noqa: E731
        print(f"| {r['family']} | {r['model']} | {r['plain_ms']:.0f} | {r['maps_ms']:.0f} | {r['maps_x']:.2f} "
              f"({rng('maps_x_rounds')}) | {r['read_ms']:.0f} | {r['read_x']:.2f} ({rng('read_x_rounds')}) | "
              f"{', '.join(r['lazy']) or '-'} | {'<= %.1fx' % r['target'] if r['target'] else '-'} | "
              f"{r['load'][0]:.1f}-{r['load'][1]:.1f} |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real", action="store_true", help="also real-size CLIP-B/32 and BLIP-base (random init)")
    ap.add_argument("--only", help="only the models whose name contains this")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(Path(__file__).with_name("attention_cost_results.json")))
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")  # out-of-domain notes on random-init models
    scene = ShapesWorld(1, seed=3, split="test")[0]
    models = [(n, str(mmkit.config.models_dir() / n)) for n in (
        "shapes-clip", "shapes-align", "shapes-vilt-vqa", "shapes-blip-caption", "shapes-blip-vqa", "shapes-blip-itm")]
    tmp = Path(tempfile.mkdtemp(prefix="mmkit-attn-cost-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    if args.real:
        models += [(f"{name} (random init)", "real:" + fam) for fam, name in (("clip", "clip-b32"),
                                                                             ("blip-caption", "blip-base"))]
    rows = []
    for name, path in models:
        if args.only and args.only not in name:
            continue
        if path.startswith("real:"):
            path = str(random_model_dir(path[5:], "base", tmp / path[5:]))
        print(f"{name} ...", flush=True)
        rows.append(cost_row(name, path, scene, args.repeats))
        clear_cache()
    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
               f"transformers {transformers.__version__}, {torch.get_num_threads()} threads")
    report(rows, machine)
    Path(args.out).write_text(json.dumps({"machine": machine, "results": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
