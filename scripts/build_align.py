"""Build the bundled ALIGN model `data/models/shapes-align/` from scratch on ShapesWorld.

    python scripts/build_align.py [--out data/models] [--threads 2]

Trains a tiny AlignModel (EfficientNet image tower + BERT text tower) contrastively
(mmkit.train.contrastive), saves it with its AlignProcessor (EfficientNetImageProcessor + the
ShapesWorld WordPiece tokenizer), reloads the saved folder with mmkit.load_model, evaluates it on
held-out ShapesWorld(split="test") scenes and writes mmkit.json and README.md from the measured
numbers. Deterministic for a given seed and thread count.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from build_clip import parse_args, write_bundle  # noqa: E402  (same evaluation and model card)

NAME = "shapes-align"
STEPS = 800  # optimiser steps of the shipped model (its own default; CLIP uses ContrastiveConfig.steps)


def main() -> None:
    from mmkit.train.contrastive import ContrastiveConfig

    cfg = ContrastiveConfig(steps=STEPS)
    args = parse_args(__doc__, cfg.steps)

    import torch

    from mmkit.config import seed_everything
    from mmkit.train.contrastive import tiny_align, train_contrastive
    from mmkit.train.tokenizer import train_wordpiece

    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    cfg.steps, cfg.seed = args.steps, args.seed
    arch = dict(image_size=64, width_coefficient=0.5, depth_coefficient=0.5, strides=(1, 2, 2, 1, 1, 1, 1),
                text_width=128, text_layers=2, heads=4)
    model, processor = tiny_align(train_wordpiece(), **arch)
    history = train_contrastive(model, processor, cfg, progress=not args.no_progress)
    vc, tc = model.config.vision_config, model.config.text_config
    stride = 2 * int(torch.tensor(arch["strides"]).prod())
    grid = arch["image_size"] // stride
    arch_text = (f"- Vision tower: EfficientNet (ALIGN's), {arch['image_size']} px images, width coefficient "
                 f"{vc.width_coefficient}, depth coefficient {vc.depth_coefficient} ({vc.num_hidden_layers} MBConv blocks), "
                 f"stage strides {list(arch['strides'])} (total stride {stride}: a final feature map of {grid}x{grid}); "
                 f"image embedding = mean-pooled last block ({model.config.projection_dim}-d; ALIGN has no image "
                 "projection). Init: He (fan-in) convs, batch norms calibrated on 64 ShapesWorld images "
                 "(`mmkit.train.contrastive.init_efficientnet` / `calibrate_batchnorm`), so activations do not vanish.\n"
                 f"- Text tower: BERT, {tc.num_hidden_layers} layers, width {tc.hidden_size}, {tc.num_attention_heads} heads, "
                 f"{tc.max_position_embeddings} positions; text embedding = linear projection of the [CLS] state "
                 f"to {model.config.projection_dim}-d. Learned temperature (clamped to [0.01, 1]).\n"
                 f"- Processor: `AlignProcessor` = `EfficientNetImageProcessor` (shortest edge -> {arch['image_size']} px, "
                 f"bicubic, centre crop {arch['image_size']}, pixels scaled to [-1, 1]) + `BertTokenizerFast`: WordPiece "
                 f"trained on ShapesWorld text ({len(processor.tokenizer)} tokens, `mmkit.train.tokenizer.train_wordpiece`).")
    arch = {**arch, "strides": list(arch["strides"])}
    write_bundle(model, processor, history, args, NAME, "align", "AlignModel", arch, arch_text, "build_align.py")


if __name__ == "__main__":
    main()
