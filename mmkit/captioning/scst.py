"""Self-critical sequence training (Rennie et al., 2017): fine-tune a captioner on its CIDEr-D score.

Cross-entropy training teaches the next word given the *true* previous words; at test time the model reads
its own. SCST closes that gap with REINFORCE: sample captions, score each with CIDEr-D against the
references, and raise the log-probability of samples that beat the model's own greedy caption (the
"self-critical" baseline), lower it for those that do not:

    loss = - mean_k [ (CIDEr(sample_k) - CIDEr(greedy)) * log p(sample_k | image) ]
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InputError
from .encoders import images_to_uint8


@dataclass
class SCSTConfig:
    """One SCST run."""

    steps: int = 50  # optimiser steps
    batch_size: int = 16  # images per step
    samples: int = 5  # captions sampled per image
    lr: float = 1e-5  # small: the policy starts good, and REINFORCE gradients are noisy
    max_new_tokens: int = 24  # longest sampled caption
    clip: float = 1.0  # gradient-norm clipping
    seed: int = 0  # seeds batches and sampling
    baseline: str = "greedy"  # "greedy": the greedy caption's reward (Rennie et al.); "mean": the mean reward of
    # the image's other samples (Luo, 2020), lower-variance when the greedy caption is almost always right


def cider_rewards(hyps: list[str], refs: list[list[str]]) -> np.ndarray:
    """CIDEr-D of each hypothesis against its references (idf from the references given), shape (N,)."""
    from ..metrics import coco_inputs
    from pycocoevalcap.cider.cider import Cider

    gts, res = coco_inputs({i: [h] for i, h in enumerate(hyps)}, {i: r for i, r in enumerate(refs)})
    return np.asarray(Cider().compute_score(gts, res)[1], dtype=float)  # in key order 0..N-1


def _ids(model, token_lists: list[list[int]]) -> torch.Tensor:
    """Generated token lists -> input_ids (B, T) = [CLS] tokens, padded with [PAD]."""
    T = 1 + max(len(t) for t in token_lists)
    ids = torch.full((len(token_lists), T), model.pad_id, dtype=torch.long)
    for i, t in enumerate(token_lists):
        ids[i, 0] = model.bos_id
        ids[i, 1:1 + len(t)] = torch.tensor(t, dtype=torch.long)
    return ids


def scst(model, images, refs, config: SCSTConfig | None = None, progress: bool = True) -> dict:
    """Fine-tune model in place with self-critical CIDEr-D reward.

    Args:
        images: N training images; refs: N reference captions (str) or lists of them.
    Returns: {"reward": mean sampled CIDEr per step, "greedy": mean greedy CIDEr per step, "seconds": ...}.
    """
    from ..progress import bar as tqdm  # tqdm.auto's bar; honours TQDM_DISABLE, ends finished in a saved notebook

    cfg = config or SCSTConfig()
    refs = [[r] if isinstance(r, str) else list(r) for r in refs]
    if len(images) != len(refs) or not refs:
        raise InputError(f"{len(images)} images but {len(refs)} reference lists; pass one per image")
    if cfg.baseline not in ("greedy", "mean") or (cfg.baseline == "mean" and cfg.samples < 2):
        raise InputError(f"baseline={cfg.baseline!r}: use 'greedy', or 'mean' with samples >= 2")
    if cfg.batch_size < 2:
        raise InputError("batch_size must be >= 2: CIDEr's idf weights come from the batch's references")
    grids = model.grid(images_to_uint8(images, model.config.image_size))  # (N, G*G, Denc) no gradient
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=0.0)
    history = {"reward": [], "greedy": []}
    t0 = time.perf_counter()
    from .decoding import decode

    for _ in tqdm(range(cfg.steps), desc="scst", disable=not progress, mininterval=1):
        idx = torch.randperm(len(refs), generator=gen)[: cfg.batch_size]  # (B,)
        grid = grids[idx]  # (B, N, Denc)
        batch_refs = [refs[i] for i in idx.tolist()]
        model.eval()  # sample and take the baseline without dropout
        with torch.no_grad():
            feats = model.project(grid)
            greedy = decode(model.make_step(), model.init_state(feats), model.bos_id, model.eos_id,
                            max_new_tokens=cfg.max_new_tokens)
            rep = feats.repeat_interleave(cfg.samples, 0)  # (B*K, N, D) K copies of each image
            sampled = decode(model.make_step(), model.init_state(rep), model.bos_id, model.eos_id,
                             max_new_tokens=cfg.max_new_tokens, do_sample=True, seed=gen)
        texts = [model.decode_text(t) for t in greedy.tokens + sampled.tokens]
        rewards = cider_rewards(texts, batch_refs + [r for r in batch_refs for _ in range(cfg.samples)])
        sample_r = rewards[len(idx):].reshape(len(idx), cfg.samples)  # (B, K)
        if cfg.baseline == "mean":  # leave-one-out mean of the same image's samples
            base = ((sample_r.sum(1, keepdims=True) - sample_r) / (cfg.samples - 1)).reshape(-1)  # (B*K,)
        else:
            base = np.repeat(rewards[: len(idx)], cfg.samples)  # (B*K,) each sample's own image's greedy score
        advantage = torch.tensor(rewards[len(idx):] - base, dtype=torch.float)  # (B*K,)
        model.train()
        logp = model.sequence_logprob(grid.repeat_interleave(cfg.samples, 0), _ids(model, sampled.tokens))  # (B*K,)
        loss = -(advantage * logp).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        history["reward"].append(float(rewards[len(idx):].mean()))
        history["greedy"].append(float(rewards[: len(idx)].mean()))
    model.eval()
    history["seconds"] = round(time.perf_counter() - t0, 1)
    return history
