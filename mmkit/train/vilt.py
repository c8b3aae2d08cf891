"""Train a tiny ViLT visual-question-answering model on ShapesWorld.

The model is the Hugging Face class itself (ViltForQuestionAnswering) built from a small config: one
transformer over [question tokens; image CLS; 8x8 image patches], answers classified from the pooled
text [CLS] into `mmkit.data.ANSWERS`. The loop is plain PyTorch: AdamW, linear warm-up then linear
decay, gradient clipping, a tqdm bar. Two training-only auxiliary losses share one linear head: every
image token names the object covering its patch (which teaches shapes far faster than the answers
alone), and every colour or shape word of a question that names one object names that object in full
(colour, shape and size), which it can only learn by reading the image. The second makes the word's
attention go to its object: the maps of `mmkit.attention_maps` then pass the pointing game.

ViLT shuffles image tokens: `ViltEmbeddings.visual_embed` picks the patches it keeps with
`torch.multinomial`, which, when every patch is kept, is a random permutation drawn from the global
torch generator on every forward. Answers do not depend on it (self-attention has no token order;
each patch keeps its own position embedding), but token j of the image part is grid cell
`patch_index[j]`, not cell j. `record_patch_index` captures that mapping; `evaluate_vqa` seeds the
generator so that evaluation is repeatable bit for bit.
"""
from __future__ import annotations

import contextlib
import random
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from ..data.targets import target_objects
from ..data.shapes import PIXEL_MEAN, PIXEL_STD
from .common import adamw, flat_if, param_groups, warmup_linear
from ..data.styles import fit_scene


@dataclass
class ViltShapesConfig:
    """Architecture of a tiny ViLT for 64 px ShapesWorld images."""

    image_size: int = 64  # input side in pixels (the processor's shortest_edge)
    patch_size: int = 8  # 64 / 8 = an 8x8 patch grid, fine enough for attention maps
    hidden: int = 128  # transformer width
    heads: int = 4  # attention heads in every layer
    mlp: int = 256  # feed-forward width
    layers: int = 4  # transformer layers (one stream: text and image tokens together)
    max_text_len: int = 40  # text position embeddings (the longest ShapesWorld question is ~14 tokens)
    sincos_init: bool = True  # start the image position embeddings from 2-D sin-cos (they stay trainable)
    mean: tuple = PIXEL_MEAN  # per-channel pixel mean of ShapesWorld images
    std: tuple = PIXEL_STD  # per-channel pixel std of ShapesWorld images


@dataclass
class ViltTrainConfig:
    """One ViLT VQA training run."""

    steps: int = 2000  # optimiser steps
    batch_size: int = 48  # (image, question) pairs per step
    lr: float = 2e-3  # peak learning rate
    warmup: float = 0.05  # share of steps with a linear warm-up
    weight_decay: float = 0.05  # AdamW decoupled weight decay (not on biases, norms and embeddings)
    clip: float = 1.0  # gradient-norm clipping
    n_train: int = 12000  # distinct ShapesWorld training scenes (split="train")
    objects: tuple = (1, 2)  # objects per scene
    seed: int = 0  # seeds torch, numpy, python and the scene stream
    # weight of an auxiliary loss during training only: every image token names the object (colour, shape,
    # size) covering its patch, or background; its linear head is thrown away afterwards. 0 = off
    patch_aux: float = 1.0
    # weight of a second training-only loss through the same head: every colour or shape word of a question
    # that names exactly one object of the scene names that object in full (colour, shape, size), which it
    # can only do by reading the image. 0 = off
    word_aux: float = 1.0
    # how often each question kind is drawn, relative to its share in ShapesWorld (the slow-to-learn kinds more)
    kind_weights: dict = field(default_factory=lambda: {"count": 1.0, "exists": 1.5, "color": 1.0, "shape": 1.5,
                                                        "size": 1.0, "position": 1.0})
    style: object = "plain"  # ShapesWorld looks of the training scenes ("train": every training style)
    empty: float = 0.0  # share of training scenes with no shapes
    big_shapes: float = 0.0  # share of training scenes with bigger large objects (ShapesWorld's `big_shapes`)
    extra: dict = field(default_factory=dict)  # free-form notes recorded in the recipe


# ------------------------------------------------------------------------------------------------
# processor, config, model
# ------------------------------------------------------------------------------------------------

def build_processor(arch: ViltShapesConfig = ViltShapesConfig(), texts=None):
    """A ViltProcessor: 64 px image processor (patch-divisible sizes, ShapesWorld mean/std) + WordPiece tokenizer."""
    from transformers import ViltProcessor
    from transformers.models.vilt.image_processing_pil_vilt import ViltImageProcessorPil

    from .tokenizer import train_wordpiece

    tok = train_wordpiece(texts)
    # shortest side -> image_size, longest side capped at 1333/800 of it, both floored to a multiple of
    # patch_size: a 64x64 image stays 64x64 (8x8 patches); a 64x96 one stays 64x96 (8x12 patches)
    image_processor = ViltImageProcessorPil(size={"shortest_edge": arch.image_size}, size_divisor=arch.patch_size,
                                            resample=3, image_mean=list(arch.mean), image_std=list(arch.std))
    return ViltProcessor(image_processor=image_processor, tokenizer=tok)


def vilt_config(arch: ViltShapesConfig, tokenizer):
    """A ViltConfig for VQA over `mmkit.data.ANSWERS` (id2label[i] is the answer of logit i)."""
    from transformers import ViltConfig

    from ..data import ANSWERS

    return ViltConfig(vocab_size=len(tokenizer), hidden_size=arch.hidden, num_hidden_layers=arch.layers,
                      num_attention_heads=arch.heads, intermediate_size=arch.mlp, image_size=arch.image_size,
                      patch_size=arch.patch_size, max_position_embeddings=arch.max_text_len,
                      max_image_length=-1, pad_token_id=tokenizer.pad_token_id, num_labels=len(ANSWERS),
                      id2label=dict(enumerate(ANSWERS)), label2id={a: i for i, a in enumerate(ANSWERS)},
                      architectures=["ViltForQuestionAnswering"])


def build_model(arch: ViltShapesConfig, tokenizer, seed: int = 0):
    """A randomly initialised ViltForQuestionAnswering (seeded)."""
    import torch
    from transformers import ViltForQuestionAnswering

    torch.manual_seed(seed)
    model = ViltForQuestionAnswering(vilt_config(arch, tokenizer))
    if arch.sincos_init:
        grid = arch.image_size // arch.patch_size
        with torch.no_grad():  # row 0 is the image [CLS]; rows 1.. the patches in row-major order
            model.vilt.embeddings.position_embeddings[0, 1:] = sincos_2d(grid, arch.hidden)
    return model


def sincos_2d(grid: int, dim: int):
    """Fixed 2-D sine-cosine position codes (MAE style): half the channels encode the row, half the column.

    Returns: (grid * grid, dim) tensor, row-major over the patch grid.
    """
    import torch

    quarter = dim // 4
    freq = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float32) / quarter)  # (dim/4,)
    rows, cols = torch.meshgrid(torch.arange(grid, dtype=torch.float32), torch.arange(grid, dtype=torch.float32),
                                indexing="ij")  # (grid, grid) each
    parts = []
    for pos in (rows.flatten(), cols.flatten()):  # (grid*grid,)
        angle = pos[:, None] * freq[None, :]  # (grid*grid, dim/4)
        parts += [angle.sin(), angle.cos()]
    return torch.cat(parts, dim=1)  # (grid*grid, dim)


def seed_all(seed: int) -> None:
    """Seed python, numpy and torch."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# ------------------------------------------------------------------------------------------------
# data: every (scene, question) pair as tensors, computed once
# ------------------------------------------------------------------------------------------------

def encode_qa(processor, scenes) -> dict:
    """Images of every scene (uint8) and token ids / answer ids of every question, ready for batching.

    Args:
        processor: the ViltProcessor; its tokenizer encodes the questions, and its image processor's
            rescale / mean / std normalise the pixels in `_batch` (checked against it here).
        scenes: ShapesWorld scenes whose side equals the processor's shortest_edge (no resize needed).
    Returns: dict with images (S, 3, H, W) uint8, cells (S, H/p, W/p) long patch labels (see
        patch_labels), mean / scale (1, 3, 1, 1) float, input_ids /
        attention_mask (Q, T) long, scene (Q,) long index into images, label (Q,) long index into
        ANSWERS, kind: list of Q question kinds, word_obj (Q, T) long: for each colour or shape word
        token that names exactly one object of its scene, that object's label (object_label), else -100.
    """
    import torch

    from ..data import ANSWERS
    from ..errors import InputError

    ip = processor.image_processor
    side = ip.size["shortest_edge"]
    if any(s.image.size != (side, side) for s in scenes):
        raise InputError(f"encode_qa needs {side}x{side} scenes (the processor's size); use ShapesWorld(size={side})")
    images = torch.from_numpy(np.stack([np.asarray(s.image) for s in scenes])).permute(0, 3, 1, 2)  # (S, 3, H, W)
    # (x * rescale - mean) / std == (x - mean / rescale) * (rescale / std)
    mean = torch.tensor(ip.image_mean).view(1, 3, 1, 1) / ip.rescale_factor  # (1, 3, 1, 1)
    scale = ip.rescale_factor / torch.tensor(ip.image_std).view(1, 3, 1, 1)  # (1, 3, 1, 1)
    check = ip(images=[s.image for s in scenes[:4]], return_tensors="pt")["pixel_values"]
    if not torch.allclose((images[:4].float() - mean) * scale, check, atol=1e-4):
        raise RuntimeError("encode_qa's pixel normalisation disagrees with the image processor")
    pairs = [(i, q) for i, s in enumerate(scenes) for q in s.qa]
    enc = processor.tokenizer([q.question for _, q in pairs], padding=True, return_tensors="pt")
    index = {a: i for i, a in enumerate(ANSWERS)}
    cells = torch.from_numpy(np.stack([patch_labels(s, ip.size_divisor) for s in scenes]))  # (S, H/p, W/p)
    word_obj = torch.full_like(enc["input_ids"], -100)  # (Q, T)
    for row, (i, _) in enumerate(pairs):
        tokens = processor.tokenizer.convert_ids_to_tokens(enc["input_ids"][row].tolist())
        for pos, obj in target_objects(scenes[i], tokens):
            word_obj[row, pos] = object_label(obj)
    return {"images": images, "cells": cells, "mean": mean, "scale": scale, "input_ids": enc["input_ids"],
            "attention_mask": enc["attention_mask"], "scene": torch.tensor([i for i, _ in pairs]),
            "label": torch.tensor([index[q.answer] for _, q in pairs]), "kind": [q.kind for _, q in pairs],
            "word_obj": word_obj}


def patch_labels(scene, patch: int, min_pixels: int = 16) -> np.ndarray:
    """Which object covers each patch: 0 = background, else 1 + (colour, shape, size) index (18 kinds).

    A patch takes the object with most pixels in it when that is at least `min_pixels`.
    Returns: (H/patch, W/patch) int64 array.
    """
    if not scene.objects:  # a picture with no shapes: every patch is background
        return np.zeros((scene.image.height // patch, scene.image.width // patch), np.int64)
    h, w = scene.objects[0].mask.shape
    cover = np.stack([o.mask.reshape(h // patch, patch, w // patch, patch).sum((1, 3))  # (H/p, W/p) pixels
                      for o in scene.objects])  # (K, H/p, W/p)
    kind = np.array([object_label(o) for o in scene.objects])  # (K,)
    return np.where(cover.max(0) >= min_pixels, kind[cover.argmax(0)], 0).astype(np.int64)


def object_label(obj) -> int:
    """1 + the (colour, shape, size) index of a ShapesWorld object: 1..18 (0 is background)."""
    from ..data import COLORS, SHAPES, SIZES

    return 1 + (list(COLORS).index(obj.color) * len(SHAPES) + SHAPES.index(obj.shape)) * len(SIZES) \
        + list(SIZES).index(obj.size)


N_PATCH_LABELS = 19  # background + 3 colours x 3 shapes x 2 sizes


def _batch(data: dict, idx):
    """Model inputs and labels for the pairs `idx`, text trimmed to the longest question in the batch."""
    import torch

    mask = data["attention_mask"][idx]  # (B, T)
    t = int(mask.sum(1).max())
    pixel_values = (data["images"][data["scene"][idx]].float() - data["mean"]) * data["scale"]  # (B, 3, H, W)
    inputs = {"input_ids": data["input_ids"][idx, :t], "attention_mask": mask[:, :t], "pixel_values": pixel_values,
              "pixel_mask": torch.ones(pixel_values.shape[0], *pixel_values.shape[2:], dtype=torch.long)}
    return inputs, data["label"][idx]


# ------------------------------------------------------------------------------------------------
# training
# ------------------------------------------------------------------------------------------------

FLAT = flat_if("embeddings", "LayerNorm", "layernorm")  # no weight decay on embeddings and norms


def train_vilt_vqa(arch: ViltShapesConfig = ViltShapesConfig(), train: ViltTrainConfig = ViltTrainConfig(),
                   progress: bool = True, processor=None, model=None):
    """Train ViltForQuestionAnswering on ShapesWorld(split="train") questions with cross-entropy.

    Args:
        arch: model size; train: the run; progress: show a tqdm bar.
        processor: reuse a processor from build_processor (built here when None).
        model: a ViltForQuestionAnswering to train further (a new one from arch when None).
    Returns: (model in eval mode, processor, info dict with seconds, losses and the recipe).
    """
    import torch
    from ..progress import bar as tqdm  # tqdm.auto's bar; honours TQDM_DISABLE, ends finished in a saved notebook

    from ..data import ShapesWorld

    seed_all(train.seed)
    processor = processor if processor is not None else build_processor(arch)
    t0 = time.perf_counter()
    scenes = list(ShapesWorld(train.n_train, seed=train.seed, size=arch.image_size, objects=train.objects,
                              style=train.style, empty=train.empty, big_shapes=train.big_shapes))
    data = encode_qa(processor, [fit_scene(s, arch.image_size) for s in scenes])
    n_pairs = len(data["label"])
    model = model if model is not None else build_model(arch, processor.tokenizer, seed=train.seed)
    groups = param_groups(model.named_parameters(), train.weight_decay, FLAT)
    aux_head = None
    if train.patch_aux > 0 or train.word_aux > 0:  # training-only head on the image and word tokens
        aux_head = torch.nn.Linear(arch.hidden, N_PATCH_LABELS)
        groups[0]["params"].append(aux_head.weight)
        groups[1]["params"].append(aux_head.bias)
    opt = adamw(groups, train.lr)
    params = list(model.parameters()) + (list(aux_head.parameters()) if aux_head is not None else [])
    sched = warmup_linear(opt, int(train.warmup * train.steps), train.steps)
    gen = torch.Generator().manual_seed(train.seed)
    weights = torch.tensor([train.kind_weights.get(k, 1.0) for k in data["kind"]])  # (Q,) sampling weight per pair
    losses, correct, seen = [], 0, 0
    model.train()
    bar = tqdm(range(train.steps), desc="ViLT VQA", disable=not progress, mininterval=2)
    for step in bar:
        idx = torch.multinomial(weights, train.batch_size, replacement=True, generator=gen)  # (B,)
        inputs, labels = _batch(data, idx)
        if aux_head is None:
            logits = model(**inputs).logits  # (B, num_answers)
            loss = torch.nn.functional.cross_entropy(logits, labels)
        else:
            logits, aux, word = _forward_with_aux_losses(model, aux_head, inputs, data["cells"][data["scene"][idx]],
                                                         data["word_obj"][idx, :inputs["input_ids"].shape[1]])
            loss = torch.nn.functional.cross_entropy(logits, labels) + train.patch_aux * aux + train.word_aux * word
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, train.clip)
        opt.step()
        sched.step()
        losses.append(loss.item())
        correct += int((logits.argmax(-1) == labels).sum())
        seen += len(labels)
        if step % 25 == 0 or step == train.steps - 1:
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}", acc=f"{correct / max(seen, 1):.3f}")
            correct, seen = 0, 0
    model.eval()
    info = {"seconds": time.perf_counter() - t0, "losses": losses, "n_pairs": n_pairs,
            "recipe": {**asdict(arch), **asdict(train), "loss": "cross-entropy over ANSWERS",
                       "optimizer": "AdamW(betas=(0.9, 0.98))", "schedule": "linear warm-up, linear decay"}}
    info["recipe"]["mean"], info["recipe"]["std"] = list(arch.mean), list(arch.std)
    info["recipe"]["objects"] = list(train.objects)
    return model, processor, info


def _forward_with_aux_losses(model, aux_head, inputs: dict, cells, words):
    """VQA logits (B, num_answers) and the two auxiliary losses of one batch (patch labels, word objects).

    Args:
        cells: (B, h, w) patch labels of the batch's images (patch_labels).
        words: (B, T) object label of each text token that names one object, -100 elsewhere (encode_qa).
    """
    import torch

    with record_patch_index(model) as found:
        out = model.vilt(**inputs)
    logits = model.classifier(out.pooler_output)  # (B, num_answers), as ViltForQuestionAnswering.forward
    t = inputs["input_ids"].shape[1]
    image_tokens = out.last_hidden_state[:, t + 1:]  # (B, N, hidden) drop text and image [CLS]; shuffled order
    pi = found[0]  # (B, N, 2) grid (row, col) of each image token
    target = cells[torch.arange(len(cells))[:, None], pi[..., 0], pi[..., 1]]  # (B, N)
    aux = torch.nn.functional.cross_entropy(aux_head(image_tokens).flatten(0, 1), target.flatten())
    text_tokens = out.last_hidden_state[:, :t]  # (B, T, hidden)
    named = words.flatten() != -100
    word = (torch.nn.functional.cross_entropy(aux_head(text_tokens).flatten(0, 1)[named], words.flatten()[named])
            if bool(named.any()) else aux.new_zeros(()))
    return logits, aux, word


# ------------------------------------------------------------------------------------------------
# evaluation and the image-token order
# ------------------------------------------------------------------------------------------------

def evaluate_vqa(model, processor, scenes, batch_size: int = 256, seed: int = 0) -> dict:
    """VQA accuracy of a ViLT model on every question of `scenes`, overall and per question kind.

    Args:
        model: ViltForQuestionAnswering whose config.id2label are ANSWERS strings.
        processor: its ViltProcessor. scenes: ShapesWorld scenes (use split="test" for held-out numbers).
        seed: seeds the patch shuffle of ViltEmbeddings.visual_embed (local: the global generator is restored).
    Returns: {"accuracy": float, "n": int, "per_kind": {kind: accuracy}, "n_per_kind": {kind: count}}.
    """
    import torch

    data = encode_qa(processor, scenes)
    device = next(model.parameters()).device
    preds = []
    with torch.inference_mode(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for i in range(0, len(data["label"]), batch_size):
            inputs, _ = _batch(data, torch.arange(i, min(i + batch_size, len(data["label"]))))
            logits = model(**{k: v.to(device) for k, v in inputs.items()}).logits  # (B, num_answers)
            preds.append(logits.argmax(-1).cpu())
    hit = (torch.cat(preds) == data["label"]).numpy()
    kinds = np.array(data["kind"])
    per_kind = {k: float(hit[kinds == k].mean()) for k in dict.fromkeys(data["kind"])}
    return {"accuracy": float(hit.mean()), "n": int(hit.size), "per_kind": per_kind,
            "n_per_kind": {k: int((kinds == k).sum()) for k in per_kind}}


@contextlib.contextmanager
def record_patch_index(model):
    """Within the block, every forward appends its image-token grid positions to the yielded list.

    Each entry is a LongTensor (B, N, 2): image token j (sequence position T + 1 + j, after the T text
    tokens and the image [CLS]) shows patch row entry[b, j, 0], column entry[b, j, 1] of the patch grid.
    """
    emb = model.vilt.embeddings if hasattr(model, "vilt") else model.embeddings
    original = emb.visual_embed
    found: list = []

    def visual_embed(*args, **kwargs):
        x, x_mask, (patch_index, hw) = original(*args, **kwargs)
        found.append(patch_index.detach().cpu())  # (B, N, 2) (row, col) of each image token after [CLS]
        return x, x_mask, (patch_index, hw)

    emb.visual_embed = visual_embed
    try:
        yield found
    finally:
        del emb.visual_embed  # back to the class method


def n_params(model) -> int:
    """Number of parameters."""
    return sum(p.numel() for p in model.parameters())
