"""Build the bundled CLIP model `data/models/shapes-clip/` from scratch on ShapesWorld.

    python scripts/build_clip.py [--out data/models] [--threads 2]

Trains a tiny CLIPModel contrastively (mmkit.train.contrastive), saves it with its CLIPProcessor
(CLIPImageProcessor + a CLIP BPE tokenizer trained on ShapesWorld text), reloads the saved folder
with mmkit.load_model, evaluates it on held-out ShapesWorld(split="test") scenes and writes
mmkit.json and README.md from the measured numbers. Deterministic for a given seed and thread count.
`evaluate_dual` and `write_bundle` are shared with scripts/build_align.py.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is local; never wait for the hub
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

NAME = "shapes-clip"
ZS_SCENES = 900  # one-object test scenes for the zero-shot score (100 per label on average)
GALLERIES = 5  # retrieval galleries of GALLERY two-object test scenes (seeds 0..GALLERIES-1)
GALLERY = 100  # images (and their captions) per gallery


def parse_args(doc: str, steps_default: int):
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--out", default="data/models", help="parent folder of the model directory")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--steps", type=int, default=steps_default, help="optimiser steps")
    ap.add_argument("--seed", type=int, default=0, help="seed of the model, the data order and the scenes")
    ap.add_argument("--no-progress", action="store_true", help="hide the tqdm bar")
    return ap.parse_args()


def main() -> None:
    from mmkit.train.contrastive import ContrastiveConfig

    cfg = ContrastiveConfig()
    args = parse_args(__doc__, cfg.steps)

    import torch

    from mmkit.config import seed_everything
    from mmkit.train.contrastive import tiny_clip, train_contrastive
    from mmkit.train.tokenizer import train_clip_bpe

    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    cfg.steps, cfg.seed = args.steps, args.seed
    arch = dict(image_size=64, patch_size=8, width=128, vision_layers=3, text_layers=2, heads=4, projection_dim=128)
    model, processor = tiny_clip(train_clip_bpe(), **arch)
    history = train_contrastive(model, processor, cfg, progress=not args.no_progress)
    vc, tc = model.config.vision_config, model.config.text_config
    arch_text = (f"- Vision tower: ViT, {arch['image_size']} px images, patch {arch['patch_size']} -> a "
                 f"{arch['image_size'] // arch['patch_size']}x{arch['image_size'] // arch['patch_size']} patch grid "
                 f"(+ [CLS]), {vc.num_hidden_layers} layers, width {vc.hidden_size}, {vc.num_attention_heads} heads, "
                 f"MLP {vc.intermediate_size}; image embedding = projected [CLS].\n"
                 f"- Text tower: causal transformer, {tc.num_hidden_layers} layers, width {tc.hidden_size}, "
                 f"{tc.num_attention_heads} heads, {tc.max_position_embeddings} positions; text embedding = projected "
                 f"hidden state at the first <|endoftext|> (eos_token_id={tc.eos_token_id}).\n"
                 f"- Shared embedding: {model.config.projection_dim}-d, learned logit scale (capped at 100).\n"
                 f"- Processor: `CLIPProcessor` = `CLIPImageProcessor` (shortest edge -> {arch['image_size']} px, bicubic, "
                 f"centre crop {arch['image_size']}, OpenAI CLIP mean/std) + `CLIPTokenizer`: byte-level BPE trained on "
                 f"ShapesWorld text ({len(processor.tokenizer)} tokens, `mmkit.train.tokenizer.train_clip_bpe`).")
    write_bundle(model, processor, history, args, NAME, "clip", "CLIPModel", arch, arch_text, "build_clip.py")


def evaluate_dual(path: Path, template: str, seed: int = 0) -> dict:
    """Held-out scores of a saved dual encoder, read back from disk with mmkit.load_model."""
    import numpy as np

    import mmkit
    from mmkit.data import ShapesWorld
    from mmkit.metrics import recall_at_k, roc_auc
    from mmkit.train.contrastive import LABELS, distinct_caption_scenes

    m = mmkit.load_model(str(path), device="cpu", dtype="fp32")
    zs = ShapesWorld(ZS_SCENES, seed=seed, objects=1, split="test")
    probs = mmkit.zero_shot(m, zs.images, LABELS, templates=[template])
    pred = [max(p, key=p.get) for p in probs]
    truth = [s.objects[0].name for s in zs]
    per_label = {lab: float(np.mean([p == t for p, t in zip(pred, truth) if t == lab])) for lab in LABELS}
    i2t, t2i, auc = [], [], []
    for g in range(GALLERIES):
        scenes = distinct_caption_scenes(GALLERY, seed=seed + g, objects=2, split="test")
        sim = mmkit.match(m, [s.image for s in scenes], [s.caption for s in scenes])  # (N, N)
        i2t.append(recall_at_k(sim, 1))
        t2i.append(recall_at_k(sim.T, 1))
        neg = mmkit.match(m, [s.image for s in scenes], [s.negative for s in scenes], paired=True)  # (N,)
        auc.append(roc_auc(sim.diagonal().numpy(), neg.numpy()))
    return {"zero_shot_acc": float(np.mean([p == t for p, t in zip(pred, truth)])), "zero_shot_per_label": per_label,
            "image_to_text_r@1": float(np.mean(i2t)), "text_to_image_r@1": float(np.mean(t2i)),
            "image_to_text_r@1_min": float(np.min(i2t)), "text_to_image_r@1_min": float(np.min(t2i)),
            "negative_auc": float(np.mean(auc))}


def machine(threads: int) -> str:
    return (f"{os.cpu_count()} CPU cores visible ({platform.processor() or platform.machine()}), "
            f"torch {threads} thread(s), no GPU")


def write_bundle(model, processor, history: dict, args, name: str, family: str, cls: str, arch: dict,
                 arch_text: str, script: str) -> None:
    """Save model + processor, evaluate the saved folder, write mmkit.json and README.md."""
    from mmkit.train.contrastive import TEMPLATE

    out = Path(args.out) / name
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    res = evaluate_dual(out, TEMPLATE)
    n_params = sum(p.numel() for p in model.parameters())
    heldout = {k: round(v, 4) for k, v in res.items() if not isinstance(v, dict)}
    meta = {"name": name, "family": family, "class": cls, "image_size": arch["image_size"], "trained_on": "ShapesWorld",
            "zero_shot_template": TEMPLATE, "params": n_params, "heldout": heldout,
            "heldout_protocol": {
                "zero_shot": f"ShapesWorld({ZS_SCENES}, seed=0, objects=1, split='test'); 9 labels "
                             f"'<colour> <shape>' with template {TEMPLATE!r}; accuracy of the arg-max label",
                "retrieval": f"{GALLERIES} galleries, each the first {GALLERY} two-object split='test' scenes "
                             f"(seeds 0..{GALLERIES - 1}) with distinct captions; image->text and text->image "
                             "R@1 over the gallery's own captions, mean (and min) over galleries",
                "negative_auc": "ROC AUC of cosine(image, caption) vs cosine(image, attribute-swapped negative) "
                                "on the same galleries"},
            "train_seconds": round(history["seconds"], 1), "train_cpu_seconds": round(history["cpu_seconds"], 1),
            "train_machine": machine(args.threads),
            "recipe": {**history["config"], "threads": args.threads, "arch": arch}}
    (out / "mmkit.json").write_text(json.dumps(meta, indent=2) + "\n")
    (out / "README.md").write_text(readme(meta, res, history, arch_text, script))
    size = sum(f.stat().st_size for f in out.iterdir()) / 2**20
    print(f"{name}: zero-shot {res['zero_shot_acc']:.3f}, R@1 i2t {res['image_to_text_r@1']:.3f} "
          f"t2i {res['text_to_image_r@1']:.3f}, negative AUC {res['negative_auc']:.3f}; "
          f"trained in {history['seconds']:.0f} s; {size:.1f} MB in {out}")


def readme(meta: dict, res: dict, history: dict, arch_text: str, script: str) -> str:
    r, p, h = meta["recipe"], meta["heldout_protocol"], meta["heldout"]
    cls = meta["class"]
    per_label = "\n".join(f"| {lab} | {acc:.3f} |" for lab, acc in res["zero_shot_per_label"].items())
    curve = ", ".join(f"{s}: {loss:.2f}" for s, loss in zip(history["step"], history["loss"])
                      if s % 100 == 0 or s == history["step"][-1])
    return f"""# {meta['name']}

A tiny **{cls}** (`transformers.{cls}`) dual encoder trained from scratch on ShapesWorld by
`scripts/{script}`. It embeds ShapesWorld images and captions in one space: zero-shot
classification of "<colour> <shape>", image-text retrieval and matching. It is a teaching model:
it knows nothing outside ShapesWorld.

```python
import mmkit
m = mmkit.load_model("{meta['name']}")
world = mmkit.data.ShapesWorld(4, seed=0)  # four scenes; world[0].image is a PIL image
mmkit.zero_shot(m, world[0].image, ["red circle", "blue square", "green triangle"])  # template {meta['zero_shot_template']!r}
mmkit.match(m, world.images, ["a small red circle to the left of a large blue square"])
```

## Architecture
{arch_text}
- Parameters: {meta['params']:,} ({meta['params'] * 4 / 2**20:.1f} MB in fp32).

## Training recipe
- Data: a pool of {r['n_single']:,} one-object and {r['n_pair']:,} two-object ShapesWorld scenes (`split="train"`,
  seed {r['seed']}); each batch is {r['single_frac']:.0%} one-object scenes.
- Text: the scene's caption; with probability {r['drop_size_single']} (one object) / {r['drop_size_pair']} (two objects)
  the size words are dropped ("a red circle", exactly the zero-shot prompt form).
- Loss: symmetric InfoNCE (`mmkit.train.contrastive.contrastive_loss`); identical texts in a batch are all
  positives; each scene's attribute-swapped negative caption is an extra hard-negative text
  (hard_negatives={r['hard_negatives']}).
- {r['steps']:,} steps of batch {r['batch_size']}, AdamW (betas 0.9/0.98), lr {r['lr']}, {r['warmup']} steps linear
  warm-up then cosine decay, weight decay {r['weight_decay']} (matrices only), grad-norm clip {r['clip_grad']}.
- Loss (smoothed) by step: {curve}.
- Training time: **{meta['train_seconds']:.0f} s** wall clock ({meta['train_cpu_seconds']:.0f} s of CPU time over all threads)
  on {meta['train_machine']}, a machine shared with other jobs at the time (the wall time is inflated
  accordingly; on 2 idle cores it is about the CPU time divided by the thread count).

## Held-out results (stage 1 weights)
The weights this script writes (plain look only), reloaded from this folder with `mmkit.load_model`; scores through
`mmkit.zero_shot` and `mmkit.match`. The bundled model is these weights trained further by `scripts/build_robust.py`
(stage 2), so its scores can differ.

- Zero-shot: {p['zero_shot']}.
  **Accuracy {h['zero_shot_acc']:.3f}**.
- Caption retrieval: {p['retrieval']}.
  **Image->text R@1 {h['image_to_text_r@1']:.3f}** (min {h['image_to_text_r@1_min']:.3f}),
  **text->image R@1 {h['text_to_image_r@1']:.3f}** (min {h['text_to_image_r@1_min']:.3f}); chance is {1 / 100:.2f}.
- Hard negatives: {p['negative_auc']}: **AUC {h['negative_auc']:.3f}**.

| label | zero-shot accuracy |
|---|---|
{per_label}

## Rebuild
```
python scripts/{script} --out data/models --threads {r['threads']} --steps {r['steps']} --seed {r['seed']}
```
Deterministic for a given seed and thread count (the tokenizer, the scene pool, the batch order and
the initialisation are all seeded).
"""


if __name__ == "__main__":
    main()
