"""The faithfulness table of the bundled models on held-out ShapesWorld scenes, written to docs/faithfulness.md.

For every bundled model and map method: the pointing game and mass inside the named object's box (against a
uniform map), the deletion / insertion AUCs of the model's own score over image patches and over the text's
tokens (against random orders), and each model re-initialised (the sanity check).

    python scripts/faithfulness_table.py [--scenes 16] [--seed 0] [--out docs/faithfulness.md]
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODELS = ["shapes-vilt-vqa", "shapes-blip-vqa", "shapes-blip-itm", "shapes-blip-caption", "shapes-clip", "shapes-align"]


def main(argv=None) -> int:
    import mmkit
    from mmkit.attention.faithfulness import FaithfulnessTable, faithfulness

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=int, default=16, help="held-out scenes (ShapesWorld split='test', 2 objects)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=8, help="curve steps")
    ap.add_argument("--n-random", type=int, default=2, help="random orders averaged for the baseline")
    ap.add_argument("--models", nargs="*", default=MODELS)
    ap.add_argument("--out", default=str(ROOT / "docs" / "faithfulness.md"))
    args = ap.parse_args(argv)
    scenes = mmkit.ShapesWorld(args.scenes, seed=args.seed, split="test", objects=2)
    table, took = FaithfulnessTable(), {}
    for name in args.models:
        t = time.time()
        table += faithfulness([mmkit.load_model(name, attention=True)], scenes, steps=args.steps,
                              n_random=args.n_random)
        took[name] = time.time() - t
        print(f"{name}: {took[name]:.0f} s", flush=True)
        write(args, table, took)  # after each model: a long run leaves what it has measured
    print(table)
    print("wrote", args.out)
    return 0


def write(args, table, took) -> None:
    scores = {r.model: r.score for r in table if r.score and "re-initialised" not in r.model}
    text = [
        "# Faithfulness of the bundled models' maps",
        "",
        f"Measured by `python scripts/faithfulness_table.py --scenes {args.scenes} --seed {args.seed} "
        f"--steps {args.steps} --n-random {args.n_random}` on {args.scenes} held-out two-object scenes "
        f"(`ShapesWorld({args.scenes}, seed={args.seed}, split='test', objects=2)`), "
        f"{platform.machine()} CPU, {os.cpu_count()} cores shared with other work "
        f"({', '.join(f'{k} {v:.0f} s' for k, v in took.items())}).",
        "",
        "- pointing: share of word maps whose peak lies in the named object's box; mass: share of the map inside it;",
        "  uniform: a uniform map's expected score (the boxes' mean share of the image). The captioner is scored on",
        "  each scene's own caption, fed to it (teacher forcing), not on a caption it wrote.",
        "- del / ins AUC: area under the model's own score as the map's top image patches are deleted (lower is",
        "  better) or inserted (higher is better); random: the same for random orders. txt del / txt ins: the same",
        "  over the text's tokens, in the method's text-side order ([MASK]ed; CLIP's dropped); '-' where the",
        "  method ranks no tokens or the model's text is its output (the captioner).",
        "- (re-initialised): the same model with every weight re-drawn, its first method.",
        "",
        table.markdown(),
        "",
        "The AUCs are in each model's own units: " + "; ".join(f"{k}: {v}" for k, v in scores.items()) + ".",
        "",
    ]
    Path(args.out).write_text("\n".join(text), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
