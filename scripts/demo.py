"""A headless tour of the bundled models: captions, answers, zero-shot and matching on ShapesWorld.

Prints a table, writes out/demo.json and a picture out/demo.png. Run with `make demo`.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import mmkit
from mmkit.data import COLORS, SHAPES, ShapesWorld

LABELS = [f"{c} {s}" for c in COLORS for s in SHAPES]


def _load(name: str):
    try:
        return mmkit.load_model(name)
    except mmkit.InputError as e:
        print(f"  (skipping {name}: {e})")
        return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="out", help="folder for demo.json and demo.png")
    ap.add_argument("-n", type=int, default=6, help="how many ShapesWorld scenes")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    env = mmkit.config.environment()
    print("mmkit demo  |  " + ", ".join(f"{k} {v}" for k, v in env.items()))
    world = ShapesWorld(args.n, seed=args.seed, split="test", objects=(1, 2))
    images = world.images
    rows = [{"index": s.index, "caption_truth": s.caption} for s in world]
    t0 = time.perf_counter()

    cap = _load("shapes-blip-caption")
    if cap is not None:
        for r, c in zip(rows, mmkit.caption(cap, images)):
            r["caption"] = c
    for name in ("shapes-vilt-vqa", "shapes-blip-vqa"):
        m = _load(name)
        if m is None:
            continue
        for r, s in zip(rows, world):
            qs = [q.question for q in s.qa[:3]]
            r.setdefault("qa", [{"question": q.question, "truth": q.answer} for q in s.qa[:3]])
            for d, a in zip(r["qa"], mmkit.answer(m, s.image, qs)):
                d[name] = a
    for name in ("shapes-clip", "shapes-align"):
        m = _load(name)
        if m is None:
            continue
        single = [s for s in world if len(s.objects) == 1]
        for r, s, probs in zip([r for r, s in zip(rows, world) if len(s.objects) == 1], single,
                               mmkit.zero_shot(m, [s.image for s in single], LABELS) if single else []):
            top = max(probs, key=probs.get)
            r.setdefault("zero_shot", {})[name] = {"label": top, "p": round(probs[top], 3)}
    itm = _load("shapes-blip-itm")
    if itm is not None:
        pos = mmkit.match(itm, images, [s.caption for s in world], paired=True)
        neg = mmkit.match(itm, images, [s.negative for s in world], paired=True)
        for r, p, q, s in zip(rows, pos.tolist(), neg.tolist(), world):
            r["itm"] = {"caption": round(p, 3), "negative": s.negative, "negative_score": round(q, 3)}
    seconds = time.perf_counter() - t0

    for r in rows:
        print(f"\n#{r['index']}  truth:   {r['caption_truth']}")
        if "caption" in r:
            mark = "ok" if r["caption"] == r["caption_truth"] else "differs"
            print(f"     caption: {r['caption']}  [{mark}]")
        for d in r.get("qa", []):
            preds = "  ".join(f"{k.replace('shapes-', '')}: {v}" for k, v in d.items() if k.startswith("shapes-"))
            print(f"     Q: {d['question']:<40} truth: {d['truth']:<8} {preds}")
        for k, v in r.get("zero_shot", {}).items():
            print(f"     zero-shot {k.replace('shapes-', '')}: {v['label']} ({v['p']:.0%})")
        if "itm" in r:
            print(f"     match P(caption) = {r['itm']['caption']:.2f}, P(negative) = {r['itm']['negative_score']:.2f}")
    (out / "demo.json").write_text(json.dumps({"environment": env, "seconds": round(seconds, 2), "scenes": rows},
                                              indent=2))
    titles = [r.get("caption", r["caption_truth"]) for r in rows]
    mmkit.viz.image_grid(images, titles, cols=min(6, len(images)), size=2.2, wrap=26).savefig(out / "demo.png", dpi=120)
    print(f"\nwrote {out / 'demo.json'} and {out / 'demo.png'} ({seconds:.1f} s of model time)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
