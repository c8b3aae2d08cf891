"""Build the bundled BLIP models shapes-blip-caption, shapes-blip-vqa and shapes-blip-itm.

    python scripts/build_blip.py [--out data/models] [--threads 2] [--only caption|vqa|itm]

Deterministic for a given seed. The captioner is trained first from scratch; the VQA and ITM
models start from its vision encoder and text layers (read from <out>/shapes-blip-caption, built
first when missing). Each model is saved, reloaded from disk with mmkit.load_model, evaluated on
ShapesWorld(split="test") and documented (README.md, mmkit.json) from the measured numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmkit.train import blip  # noqa: E402

NAMES = {"caption": "shapes-blip-caption", "vqa": "shapes-blip-vqa", "itm": "shapes-blip-itm"}
FAMILIES = {"caption": "blip-caption", "vqa": "blip-vqa", "itm": "blip-itm"}
RECIPES = {  # head -> BlipTrainConfig overrides
    # 9000 steps: with the whole-word vocabulary of `train_wordpiece`, 3000 steps reach 0.77 exact match and
    # 6000 steps 0.806 (measured 2026-11-24), too close to the 0.80 target
    "caption": dict(steps=9000, batch_size=32, lr=3e-3, n_train=30000),
    "vqa": dict(steps=1200, batch_size=32, lr=1e-3, n_train=20000, questions_per_image=4),
    "itm": dict(steps=800, batch_size=32, lr=2e-3, n_train=20000),
}
EVAL = {"caption": 500, "vqa": 300, "itm": 500}  # held-out test scenes per evaluation
EVAL_SEED = 0  # the tests use other seeds, so they see fresh scenes
PROTOCOL = {
    "caption": "greedy decoding (`mmkit.caption`, max 30 new tokens) on {n} ShapesWorld(n={n}, seed=0, "
               "split='test', objects=(1, 2)) scenes; exact match = the decoded caption equals the canonical "
               "caption (case/whitespace-normalised); BLEU/ROUGE-L/CIDEr-D from pycocoevalcap with the one "
               "canonical caption as reference (`mmkit.metrics.caption_scores`).",
    "vqa": "greedy answer generation (`mmkit.answer`) for every question of ShapesWorld(n={n}, seed=0, "
           "split='test', objects=(1, 2)) ({q} questions); accuracy = exact match with the one reference answer "
           "(`mmkit.metrics.vqa_accuracy`), overall and per question kind.",
    "itm": "P(match) from the ITM head (`mmkit.match(..., paired=True)`) for each of ShapesWorld(n={n}, seed=0, "
           "split='test', objects=(1, 2)) scenes with its caption (positive) and with `scene.negative` (the same "
           "caption with one colour, shape, size or the relation swapped); ROC AUC over all positives vs all "
           "negatives (`mmkit.metrics.roc_auc`); pair accuracy = share of scenes whose caption beats its negative.",
}


ARCH: dict = {}  # BlipShapesConfig overrides shared by the three heads (set with --set)


def build(head: str, out: Path, seed: int = 0, progress: bool = True, overrides: dict | None = None) -> dict:
    """Train, save, reload, evaluate and document one model. Returns its mmkit.json metadata."""
    import torch

    import mmkit
    from mmkit.config import seed_everything

    seed_everything(seed)
    arch = blip.BlipShapesConfig(**ARCH)
    cfg = blip.BlipTrainConfig(seed=seed, **{**RECIPES[head], **(overrides or {})})
    processor = blip.build_processor(arch)
    model = blip.new_model(head, blip.blip_config(arch, processor.tokenizer))
    init = None
    if head != "caption":
        donor_dir = out / NAMES["caption"]
        if not (donor_dir / "model.safetensors").exists():
            build("caption", out, seed, progress)
        from transformers import BlipForConditionalGeneration

        n = blip.init_from(model, BlipForConditionalGeneration.from_pretrained(donor_dir))
        init = f"{NAMES['caption']} ({n} tensors: vision encoder, text layers as encoder and decoder)"
        cfg.extra["init_from"] = NAMES["caption"]
    data = blip.ShapesTensors(cfg.n_train, arch, seed=seed, objects=cfg.objects)
    stats = blip.train(head, model, processor.tokenizer, data, cfg, progress=progress)

    path = out / NAMES[head]
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    processor.save_pretrained(path)

    m = mmkit.load_model(str(path), device="cpu")  # reloaded from disk: what users get
    check_tokenizer(m.processor.tokenizer)
    scenes = list(mmkit.ShapesWorld(EVAL[head], seed=EVAL_SEED, split="test"))
    torch.manual_seed(seed)
    heldout = {"caption": blip.evaluate_caption, "vqa": blip.evaluate_vqa, "itm": blip.evaluate_itm}[head](m, scenes)
    if head == "caption":
        check_generate(m, scenes[0])
    meta = {"name": NAMES[head], "family": FAMILIES[head], "class": blip.HEADS[head], "image_size": arch.image_size,
            "trained_on": "ShapesWorld", "heldout": {k: (round(v, 4) if isinstance(v, float) else v)
                                                     for k, v in heldout.items()},
            "train_seconds": stats["train_seconds"], "train_cpu_seconds": stats["cpu_seconds"], "recipe": {**blip.recipe(arch, cfg), "bf16_autocast":
                                                                stats["bf16_autocast"]},
            "params": blip.param_count(model), "final_loss": round(stats["final_loss"], 4),
            "machine": machine()}
    if head == "itm":  # BLIP-ITM also works as a dual encoder (zero-shot via its contrastive projections); its
        # captions always name a size: on 54 PIL drawings of one shape, "a {}" named 22 right, "a large {}" 46
        meta = {**dict(list(meta.items())[:5]), "zero_shot_template": "a large {}", **dict(list(meta.items())[5:])}
    (path / "mmkit.json").write_text(json.dumps(meta, indent=2) + "\n")
    (path / "README.md").write_text(readme(head, meta, model, init, scenes))
    print(f"{NAMES[head]}: {json.dumps(meta['heldout'])}  train {stats['train_seconds']} s  -> {path}")
    return meta


def check_tokenizer(tok) -> None:
    """The reloaded tokenizer must round-trip a known sentence with no [UNK]."""
    s = "a small red circle to the left of a large blue square"
    ids = tok(s)["input_ids"]
    if tok.unk_token_id in ids or tok.decode(ids, skip_special_tokens=True) != s:
        raise RuntimeError(f"tokenizer does not round-trip {s!r}: {tok.convert_ids_to_tokens(ids)}")


def check_generate(m, scene) -> None:
    """Plain `model.generate(**processor(images=img))` must decode to clean text (no special tokens)."""
    ids = m.model.generate(**m.processor(images=scene.image, return_tensors="pt"))
    text = m.processor.decode(ids[0], skip_special_tokens=True)
    if "[" in text or not text.strip():
        raise RuntimeError(f"generate() decoded to {text!r}")


def machine() -> str:
    import torch

    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} CPU threads, torch {torch.__version__}"


def readme(head: str, meta: dict, model, init, scenes) -> str:
    """README.md of one bundled model, from the measured numbers."""
    c = model.config
    v, t = c.vision_config, c.text_config
    r = meta["recipe"]
    n_q = sum(len(s.qa) for s in scenes)
    import torch

    threads = torch.get_num_threads()
    cpu = f" ({meta['train_cpu_seconds']} s of CPU time)" if meta.get("train_cpu_seconds") else ""
    rows = "\n".join(f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in meta["heldout"].items())
    what = {"caption": "captions a ShapesWorld image (`mmkit.caption`)",
            "vqa": "answers questions about a ShapesWorld image by generating the answer word (`mmkit.answer`)",
            "itm": "scores whether a caption matches a ShapesWorld image with its ITM head (`mmkit.match`); "
                   "its contrastive projections also give `mmkit.embed_images` / `embed_texts`"}[head]
    return f"""# {meta['name']}

A tiny `{meta['class']}` (the Hugging Face class of the real BLIP) trained from scratch on ShapesWorld by
`scripts/build_blip.py`. It {what}. It only knows ShapesWorld: coloured circles, squares and triangles. This
script trains it on the plain 64 px look (stage 1); the bundled model in `data/models/` was then trained on many
looks (backgrounds, canvas sizes, strokes around the shapes, photos) by `scripts/build_robust.py` (stage 2), and its held-out
scores per look are in `data/models/ROBUSTNESS.md`. Load it offline with `mmkit.load_model("{meta['name']}")` or
`{meta['class']}.from_pretrained(path)` + `AutoProcessor.from_pretrained(path)`.

## Architecture
- vision: ViT, {v.image_size} px input, patch {v.patch_size} ({v.image_size // v.patch_size}x{v.image_size // v.patch_size} patch grid), hidden {v.hidden_size}, {v.num_hidden_layers} layers, {v.num_attention_heads} heads, MLP {v.intermediate_size}
- text: BERT-style, hidden {t.hidden_size}, {t.num_hidden_layers} layers (self-attention + cross-attention to the image), {t.num_attention_heads} heads, MLP {t.intermediate_size}, vocabulary {t.vocab_size} (WordPiece from `mmkit.train.tokenizer.train_wordpiece` + `[DEC]`)
- special tokens: decoder start `[DEC]` = {t.bos_token_id} (`text_config.bos_token_id`), end `[SEP]` = {t.sep_token_id}, pad `[PAD]` = {t.pad_token_id}
- parameters: {meta['params']:,}; eager attention (attention maps are available)
- image processor: resize to {v.image_size} px, mean {r['mean']}, std {r['std']} (ShapesWorld statistics)

## Training
- data: {r['n_train']:,} ShapesWorld(split="train", seed={r['seed']}, objects={tuple(r['objects'])}) scenes
- {r['steps']} AdamW steps, batch {r['batch_size']} images, peak lr {r['lr']}, linear warm-up {r['warmup']:.0%} then linear decay, weight decay {r['weight_decay']}, grad-norm clip {r['clip']}, bf16 autocast: {r['bf16_autocast']}
- initialised from: {init or 'random (2-D sine-cosine position codes in the vision encoder)'}
- final training loss (EMA): {meta['final_loss']}
- training time: {meta['train_seconds']} s wall-clock{cpu} measured on {meta['machine']} (a 2-core machine shared with other jobs, so wall-clock time is longer than on an idle machine)

## Held-out evaluation (stage 1 weights)
The weights this script writes (plain look only); the bundled model is these weights trained further by
`scripts/build_robust.py` (stage 2), so its scores can differ.
Protocol: {PROTOCOL[head].format(n=len(scenes), q=n_q)}

| metric | value |
|---|---|
{rows}

## Rebuild
```
python scripts/build_blip.py --only {head} --threads {threads}
```
(bit-identical weights need the same thread count and CPU family; other settings give a model of the same quality.)
(`--only vqa` / `--only itm` read `shapes-blip-caption` from the output folder and build it first if missing.)
"""


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "data" / "models"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", choices=list(NAMES), default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="override a BlipTrainConfig or BlipShapesConfig field, e.g. steps=500 vision_layers=2 (experiments)")
    a = ap.parse_args(argv)
    import dataclasses

    import torch

    torch.set_num_threads(a.threads)
    arch_fields = {f.name for f in dataclasses.fields(blip.BlipShapesConfig)}
    overrides = {}
    for kv in a.set:
        k, v = kv.split("=", 1)
        (ARCH if k in arch_fields else overrides)[k] = json.loads(v)
    for head in [a.only] if a.only else list(NAMES):
        build(head, Path(a.out), a.seed, progress=not a.no_progress, overrides=overrides)


if __name__ == "__main__":
    main()
