"""Stage 2 of `make models`: teach the bundled models ShapesWorld's many looks.

    python scripts/build_robust.py --base build/models-plain --out data/models [--only shapes-clip ...] [--threads 1]

Stage 1 (build_clip.py, build_align.py, build_vilt.py, build_blip.py) trains each model from scratch on the
plain look into --base. Stage 2 loads each model from --base and trains it further on the training styles
(`ShapesWorld(style="train", empty=...)`: light, dark, solid, gradient, noise and photo backgrounds, canvases
of 48-256 px, smooth or hard edges, outlines, rotations, blur, JPEG, and pictures with no shapes), then saves
it into --out with its stage-1 README plus a section on this stage. CLIP and ALIGN also switch their image
processors from "shortest edge, centre crop" to "resize to the square", so nothing at a picture's edges is
cut off. Held-out scores per style come from scripts/robustness.py.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmkit.data.styles import FIRST_STYLES, TRAIN_BIG_SHAPES, TRAIN_STYLES  # noqa: E402

EMPTY = 0.06  # share of training pictures with no shapes
# model -> its phases, each trained from the one before: (steps, peak learning rate, pool size, looks, seed).
# Phase 1 uses the first training styles; phase 2 adds photo crops in turned colours ("photo+") and more
# pictures with no shapes. Both draw a share of scenes whose large objects are bigger, up to 0.8 of the picture
# when alone (big_shapes).
PHASE1 = dict(style=FIRST_STYLES, empty=EMPTY, big_shapes=TRAIN_BIG_SHAPES, seed=0)
PHASE2 = dict(style=TRAIN_STYLES, empty=0.08, big_shapes=TRAIN_BIG_SHAPES, seed=1)
RECIPES = {
    "shapes-clip": [dict(steps=700, lr=5e-4, n_single=6000, n_pair=9000, **PHASE1),
                    dict(steps=700, lr=3e-4, n_single=6000, n_pair=9000, **PHASE2)],
    "shapes-align": [dict(steps=700, lr=5e-4, n_single=6000, n_pair=9000, **PHASE1),
                     dict(steps=700, lr=3e-4, n_single=6000, n_pair=9000, **PHASE2)],
    # the captioner sees more pictures with no shapes: with big shapes in training it otherwise calls more of
    # them a shape (0.83 against 0.88 'there are no shapes' on 400 held-out pictures; 0.90 with these shares)
    "shapes-blip-caption": [dict(steps=3000, lr=1e-3, n_train=16000, batch_size=32, **{**PHASE1, "empty": 0.09}),
                            dict(steps=3000, lr=7e-4, n_train=16000, batch_size=32, **{**PHASE2, "empty": 0.12})],
    "shapes-blip-vqa": [dict(steps=1000, lr=5e-4, n_train=12000, batch_size=32, questions_per_image=4, **PHASE1),
                        dict(steps=1000, lr=4e-4, n_train=12000, batch_size=32, questions_per_image=4, **PHASE2)],
    "shapes-blip-itm": [dict(steps=600, lr=1e-3, n_train=12000, batch_size=32, **PHASE1),
                        dict(steps=900, lr=7e-4, n_train=12000, batch_size=32, **PHASE2)],
    "shapes-vilt-vqa": [dict(steps=1500, lr=7e-4, n_train=8000, **PHASE1),
                        dict(steps=1200, lr=5e-4, n_train=8000, **PHASE2)],
}


def squash_processor(image_processor, side: int = 64) -> None:
    """Resize every picture to side x side (no centre crop), so shapes near a long edge are kept."""
    image_processor.size = {"height": side, "width": side}
    image_processor.do_center_crop = False


def train_dual(name: str, base: Path, out: Path, r: dict) -> dict:
    from transformers import AutoModel, AutoProcessor

    from mmkit.train import contrastive

    model, processor = AutoModel.from_pretrained(base / name), AutoProcessor.from_pretrained(base / name)
    squash_processor(processor.image_processor)
    cfg = contrastive.ContrastiveConfig(steps=r["steps"], lr=r["lr"], n_single=r["n_single"], n_pair=r["n_pair"],
                                        warmup=50, seed=r["seed"], style=r["style"], empty=r["empty"],
                                        big_shapes=r["big_shapes"])
    hist = contrastive.train_contrastive(model, processor, cfg, progress=True)
    model.save_pretrained(out / name)
    processor.save_pretrained(out / name)
    return {"seconds": round(hist["seconds"], 1), "cpu_seconds": round(hist["cpu_seconds"], 1),
            "final_loss": round(hist["loss"][-1], 4)}


def train_blip(name: str, base: Path, out: Path, r: dict) -> dict:
    import transformers
    from transformers import AutoProcessor

    from mmkit.train import blip

    head = {"shapes-blip-caption": "caption", "shapes-blip-vqa": "vqa", "shapes-blip-itm": "itm"}[name]
    model = getattr(transformers, blip.HEADS[head]).from_pretrained(base / name)
    processor = AutoProcessor.from_pretrained(base / name)
    cfg = blip.BlipTrainConfig(**r)
    data = blip.ShapesTensors(cfg.n_train, blip.BlipShapesConfig(), seed=cfg.seed, style=cfg.style, empty=cfg.empty,
                              big_shapes=cfg.big_shapes)
    stats = blip.train(head, model, processor.tokenizer, data, cfg, progress=True)
    model.save_pretrained(out / name)
    processor.save_pretrained(out / name)
    return {"seconds": stats["train_seconds"], "cpu_seconds": stats["cpu_seconds"],
            "final_loss": round(stats["final_loss"], 4)}


def train_vilt(name: str, base: Path, out: Path, r: dict) -> dict:
    from transformers import ViltForQuestionAnswering, ViltProcessor

    from mmkit.train import vilt

    model = ViltForQuestionAnswering.from_pretrained(base / name)
    processor = ViltProcessor.from_pretrained(base / name)
    train = vilt.ViltTrainConfig(steps=r["steps"], lr=r["lr"], n_train=r["n_train"], seed=r["seed"], style=r["style"],
                             empty=r["empty"], big_shapes=r["big_shapes"])
    c0 = time.process_time()
    model, processor, info = vilt.train_vilt_vqa(vilt.ViltShapesConfig(), train, processor=processor, model=model)
    model.save_pretrained(out / name)
    processor.save_pretrained(out / name)
    return {"seconds": round(info["seconds"], 1), "cpu_seconds": round(time.process_time() - c0, 1),
            "final_loss": round(float(sum(info["losses"][-50:]) / 50), 4)}


def build(name: str, base: Path, out: Path, first_phase: int = 1) -> dict:
    """Stage 2 for one model: its phases from base/name (phase 1; or the phase before first_phase), saved to
    out/name with its README and mmkit.json."""
    import torch

    from mmkit.config import seed_everything

    if (out / name).resolve() != (base / name).resolve():
        shutil.copytree(base / name, out / name, dirs_exist_ok=True)  # stage 1's README, mmkit.json, tokenizer
    fn = train_dual if name in ("shapes-clip", "shapes-align") else train_vilt if "vilt" in name else train_blip
    meta_path = out / name / "mmkit.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    phases = meta.get("robust_recipe", {}).get("phases", [])[:first_phase - 1]
    for k, r in enumerate(RECIPES[name][first_phase - 1:], start=first_phase):
        seed_everything(r["seed"])
        stats = fn(name, base if k == first_phase else out, out, r)
        phases.append({"phase": k, **{key: (list(v) if isinstance(v, tuple) else v) for key, v in r.items()}, **stats})
        print(json.dumps({name: phases[-1]}), flush=True)
    for f in (base / name).iterdir():  # the tokenizer is stage 1's: keep its files as they were written
        if f.name.startswith(("tokenizer", "vocab", "merges", "special_tokens")):
            shutil.copy2(f, out / name / f.name)
    recipe = {"stage": 2, "from": f"{name} (stage 1, plain look)", "phases": phases,
              "threads": torch.get_num_threads(), "machine": platform.machine(), "torch": torch.__version__}
    meta["robust_recipe"] = recipe
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    readme = out / name / "README.md"
    text = readme.read_text() if readme.exists() else f"# {name}\n"
    text = text.split("\n## Stage 2: many looks")[0].rstrip() + "\n\n" + stage2_section(name, recipe)
    readme.write_text(text)
    return recipe


def stage2_section(name: str, r: dict) -> str:
    squash = ("\n- Image processor: every picture is resized to 64 x 64 (no centre crop), so a shape near a long "
              "edge of a wide picture is kept." if name in ("shapes-clip", "shapes-align") else "")
    lines = []
    for p in r["phases"]:
        shown = {k: v for k, v in p.items() if k not in ("phase", "style", "seconds", "cpu_seconds", "final_loss")}
        lines.append(f"- Phase {p['phase']}: styles {', '.join(p['style'])}; "
                     + ", ".join(f"{k} {v}" for k, v in shown.items())
                     + f"; {p['seconds']} s wall clock, {p['cpu_seconds']} s CPU; final training loss {p['final_loss']}.")
    return f"""## Stage 2: many looks
The weights above were then trained further by `scripts/build_robust.py` on ShapesWorld's training styles
(light, dark, solid-colour, gradient, noise and photo backgrounds, canvases of 48-256 px, smooth or hard edges,
outlines, rotations, blur, JPEG; phase 2 adds photo crops in turned colours), the plain look kept for 30% of the
pictures, a share of pictures with no shapes, captioned "there are no shapes" (`empty`), and a share whose
large shapes are drawn bigger, up to 0.8 of the picture's short side for one shape (`big_shapes`), as people draw them.
{chr(10).join(lines)}{squash}
- {r['threads']} torch thread(s), {r['machine']}, torch {r['torch']}.
- Held-out scores per style (styles, backgrounds and canvases never used in training): `data/models/ROBUSTNESS.md`,
  written by `scripts/robustness.py`.
- These are the shipped weights. The held-out scores in the sections above are stage 1's; in the plain look the
  shipped weights score as in the `plain` column of `data/models/ROBUSTNESS.md`.
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default="build/models-plain", help="stage 1 models (plain look)")
    ap.add_argument("--out", default="data/models")
    ap.add_argument("--only", nargs="*", choices=sorted(RECIPES))
    ap.add_argument("--threads", type=int, default=1, help="torch threads (bit-identical rebuilds need the same)")
    ap.add_argument("--from-phase", type=int, default=1, help="start at this phase, from --base holding the one before")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    for name in args.only or list(RECIPES):
        build(name, Path(args.base), Path(args.out), args.from_phase)
    return 0


if __name__ == "__main__":
    sys.exit(main())
