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

EMPTY = 0.06  # share of training pictures with no shapes
RECIPES = {  # model -> what stage 2 trains (steps, peak learning rate, pool size)
    "shapes-clip": dict(steps=700, lr=5e-4, n_single=6000, n_pair=9000),
    "shapes-align": dict(steps=700, lr=5e-4, n_single=6000, n_pair=9000),
    "shapes-blip-caption": dict(steps=3000, lr=1e-3, n_train=16000, batch_size=32),
    "shapes-blip-vqa": dict(steps=1000, lr=5e-4, n_train=12000, batch_size=32, questions_per_image=4),
    "shapes-blip-itm": dict(steps=600, lr=1e-3, n_train=12000, batch_size=32),
    "shapes-vilt-vqa": dict(steps=1500, lr=7e-4, n_train=8000),
}


def squash_processor(image_processor, side: int = 64) -> None:
    """Resize every picture to side x side (no centre crop), so shapes near a long edge are kept."""
    image_processor.size = {"height": side, "width": side}
    image_processor.do_center_crop = False


def train_dual(name: str, base: Path, out: Path, seed: int) -> dict:
    from transformers import AutoModel, AutoProcessor

    from mmkit.train import contrastive

    model, processor = AutoModel.from_pretrained(base / name), AutoProcessor.from_pretrained(base / name)
    squash_processor(processor.image_processor)
    r = RECIPES[name]
    cfg = contrastive.ContrastiveConfig(steps=r["steps"], lr=r["lr"], n_single=r["n_single"], n_pair=r["n_pair"],
                                        warmup=50, seed=seed, style="train", empty=EMPTY)
    hist = contrastive.train_contrastive(model, processor, cfg, progress=True)
    model.save_pretrained(out / name)
    processor.save_pretrained(out / name)
    return {"seconds": round(hist["seconds"], 1), "cpu_seconds": round(hist["cpu_seconds"], 1),
            "final_loss": round(hist["loss"][-1], 4)}


def train_blip(name: str, base: Path, out: Path, seed: int) -> dict:
    import transformers
    from transformers import AutoProcessor

    from mmkit.train import blip

    head = {"shapes-blip-caption": "caption", "shapes-blip-vqa": "vqa", "shapes-blip-itm": "itm"}[name]
    model = getattr(transformers, blip.HEADS[head]).from_pretrained(base / name)
    processor = AutoProcessor.from_pretrained(base / name)
    r = RECIPES[name]
    cfg = blip.TrainConfig(seed=seed, style="train", empty=EMPTY, **r)
    data = blip.ShapesTensors(cfg.n_train, blip.BlipShapesConfig(), seed=seed, style="train", empty=EMPTY)
    stats = blip.train(head, model, processor.tokenizer, data, cfg, progress=True)
    model.save_pretrained(out / name)
    processor.save_pretrained(out / name)
    return {"seconds": stats["train_seconds"], "cpu_seconds": stats["cpu_seconds"],
            "final_loss": round(stats["final_loss"], 4)}


def train_vilt(name: str, base: Path, out: Path, seed: int) -> dict:
    from transformers import ViltForQuestionAnswering, ViltProcessor

    from mmkit.train import vilt

    model = ViltForQuestionAnswering.from_pretrained(base / name)
    processor = ViltProcessor.from_pretrained(base / name)
    r = RECIPES[name]
    train = vilt.TrainConfig(steps=r["steps"], lr=r["lr"], n_train=r["n_train"], seed=seed, style="train",
                             empty=EMPTY)
    c0 = time.process_time()
    model, processor, info = vilt.train_vilt_vqa(vilt.ViltShapesConfig(), train, processor=processor, model=model)
    model.save_pretrained(out / name)
    processor.save_pretrained(out / name)
    return {"seconds": round(info["seconds"], 1), "cpu_seconds": round(time.process_time() - c0, 1),
            "final_loss": round(float(sum(info["losses"][-50:]) / 50), 4)}


def build(name: str, base: Path, out: Path, seed: int = 0) -> dict:
    """Stage 2 for one model: train from base/name, save to out/name with its README and mmkit.json."""
    import torch

    from mmkit.config import seed_everything

    seed_everything(seed)
    if (out / name).resolve() != (base / name).resolve():
        shutil.copytree(base / name, out / name, dirs_exist_ok=True)  # stage 1's README, mmkit.json, tokenizer
    fn = train_dual if name in ("shapes-clip", "shapes-align") else train_vilt if "vilt" in name else train_blip
    stats = fn(name, base, out, seed)
    recipe = {"stage": 2, "from": f"{name} (stage 1, plain look)", "style": "train", "empty": EMPTY,
              **RECIPES[name], **stats, "threads": torch.get_num_threads(), "machine": platform.machine(),
              "torch": torch.__version__}
    meta_path = out / name / "mmkit.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    meta["robust_recipe"] = recipe
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    readme = out / name / "README.md"
    text = readme.read_text() if readme.exists() else f"# {name}\n"
    text = text.split("\n## Stage 2: many looks")[0].rstrip() + "\n\n" + stage2_section(name, recipe)
    readme.write_text(text)
    print(json.dumps({name: recipe}), flush=True)
    return recipe


def stage2_section(name: str, r: dict) -> str:
    steps = ", ".join(f"{k} {v}" for k, v in RECIPES[name].items())
    squash = ("\n- Image processor: every picture is resized to 64 x 64 (no centre crop), so a shape near a long "
              "edge of a wide picture is kept." if name in ("shapes-clip", "shapes-align") else "")
    return f"""## Stage 2: many looks
The weights above were then trained further by `scripts/build_robust.py` on ShapesWorld's training styles
(`ShapesWorld(split="train", style="train", empty={r['empty']})`: light, dark, solid-colour, gradient, noise and
photo backgrounds, canvases of 48-256 px, smooth or hard edges, outlines, rotations, blur, JPEG; {r['empty']:.0%}
of the pictures have no shapes and are captioned "there are no shapes"), with the plain look kept for 30% of
the pictures.
- Recipe: {steps}; seed 0.{squash}
- Time: {r['seconds']} s wall clock, {r['cpu_seconds']} s CPU, {r['threads']} torch thread(s), {r['machine']},
  torch {r['torch']}; final training loss {r['final_loss']}.
- Held-out scores per style (styles, backgrounds and canvases never used in training): `data/models/ROBUSTNESS.md`,
  written by `scripts/robustness.py`.
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default="build/models-plain", help="stage 1 models (plain look)")
    ap.add_argument("--out", default="data/models")
    ap.add_argument("--only", nargs="*", choices=sorted(RECIPES))
    ap.add_argument("--threads", type=int, default=1, help="torch threads (bit-identical rebuilds need the same)")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    for name in args.only or list(RECIPES):
        build(name, Path(args.base), Path(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
