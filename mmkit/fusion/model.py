"""A complete fusion classifier (text encoder + fusion module + head), its training loop and evaluation."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import nn
import torch.nn.functional as F

from ..errors import InputError
from .encoders import TextEncoder, TextEncoderConfig, WordVocab
from .registry import build, level


class FusionModel(nn.Module):
    """Words -> TextEncoder -> text_emb; with the image tokens -> fusion -> head -> class scores.

    Args:
        method: a fusion name from mmkit.fusion.list().
        n_classes: number of answers/labels.
        image_dim: width of the image tokens (the frozen encoder's dim).
        text: config of the text encoder (trained with the fusion module).
        hidden: fused width for early and attention fusion (late fusion outputs class scores directly).
    """

    def __init__(self, method: str, n_classes: int, image_dim: int = 64, text: TextEncoderConfig | None = None,
                 hidden: int = 128, **fusion_kwargs):
        super().__init__()
        self.method, self.level = method, level(method)
        self.text_encoder = TextEncoder(text or TextEncoderConfig(vocab_size=len(WordVocab())))
        dim = self.text_encoder.config.dim
        out = n_classes if self.level == "late" else hidden
        self.fusion = build(method, text_dim=dim, image_dim=image_dim, out_dim=out, **fusion_kwargs)
        self.head = nn.Identity() if self.level == "late" else nn.Sequential(
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))

    def forward(self, input_ids, attention_mask, image_emb, image_mask=None, missing: str | None = None,
                keep_text=None, keep_image=None) -> torch.Tensor:
        """Class scores.

        Args:
            input_ids: (B, T) word ids; attention_mask: (B, T) bool, True on real words.
            image_emb: (B, N, Di) image tokens; image_mask: (B, N) bool or None.
            missing: "text" or "image" to run without that modality (late fusion drops that head;
                the others see zeros in its place).
            keep_text, keep_image: (B,) bool, False zeroes that modality per example (modality dropout).
        Returns:
            logits: (B, n_classes).
        """
        if missing not in (None, "text", "image"):
            raise InputError(f"missing={missing!r}: use None, 'text' or 'image'")
        text_emb = self.text_encoder(input_ids, attention_mask)  # (B, T, Dt)
        if keep_text is not None:
            text_emb = text_emb * keep_text[:, None, None].to(text_emb)
        if keep_image is not None:
            image_emb = image_emb * keep_image[:, None, None].to(image_emb)
        if missing == "text":
            text_emb = None if self.level == "late" else torch.zeros_like(text_emb)
        if missing == "image":
            image_emb = None if self.level == "late" else torch.zeros_like(image_emb)
        return self.head(self.fusion(text_emb, image_emb, attention_mask, image_mask))

    def n_params(self) -> int:
        """Trainable parameters (text encoder + fusion + head; the frozen image encoder is shared)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


@dataclass
class FusionTrainConfig:
    steps: int = 1200  # optimiser steps (about a minute per method on one CPU core)
    batch_size: int = 64  # examples per step
    lr: float = 2e-3  # AdamW peak learning rate (one-cycle schedule)
    weight_decay: float = 1e-4  # AdamW weight decay
    modality_dropout: float = 0.0  # probability of zeroing the image (and, separately, the text) of an example
    seed: int = 0  # seeds weights and batch order: same seed, same model
    log_every: int = 25  # steps between history points and callback calls


@dataclass
class TrainResult:
    """What `train` returns: the model and its history."""

    model: FusionModel
    history: list = field(default_factory=list)  # dicts: step, loss, acc (running over the last log_every steps)
    seconds: float = 0.0  # wall-clock training time
    stopped: bool = False  # True when stop_event ended training early


def train(model: FusionModel, data, config: FusionTrainConfig | None = None, callback=None, stop_event=None) -> TrainResult:
    """Train a FusionModel on a TaskData with cross-entropy.

    Args:
        model: the model to train (in place).
        data: the training TaskData.
        config: steps, batch size, learning rate, modality dropout, seed.
        callback: called as callback(point) every log_every steps with {"step", "loss", "acc"}.
        stop_event: a threading.Event; training stops at the next step once it is set.
    """
    c = config or FusionTrainConfig()
    torch.manual_seed(c.seed)
    g = torch.Generator().manual_seed(c.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=c.lr, weight_decay=c.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, c.lr, total_steps=max(c.steps, 2), pct_start=0.1)
    result, t0, losses, hits = TrainResult(model), time.perf_counter(), [], []
    model.train()
    for step in range(1, c.steps + 1):
        if stop_event is not None and stop_event.is_set():
            result.stopped = True
            break
        b = data.batch(torch.randint(len(data), (c.batch_size,), generator=g))
        keep_t = keep_i = None
        if c.modality_dropout > 0:
            r = torch.rand(c.batch_size, generator=g)
            keep_i = r >= c.modality_dropout  # drop the image with probability p ...
            keep_t = (r < c.modality_dropout) | (r >= 2 * c.modality_dropout)  # ... or else the text with p
        logits = model(b["input_ids"], b["attention_mask"], b["image_emb"], keep_text=keep_t, keep_image=keep_i)
        loss = F.cross_entropy(logits, b["labels"])
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        hits.append((logits.argmax(-1) == b["labels"]).float().mean().item())
        if step % c.log_every == 0 or step == c.steps:
            point = {"step": step, "loss": sum(losses) / len(losses), "acc": sum(hits) / len(hits)}
            result.history.append(point)
            losses, hits = [], []
            if callback is not None:
                callback(point)
    model.eval()
    result.seconds = time.perf_counter() - t0
    return result


@torch.no_grad()
def predict(model: FusionModel, data, missing: str | None = None, image_emb: torch.Tensor | None = None,
            input_ids: torch.Tensor | None = None, batch_size: int = 512) -> torch.Tensor:
    """Predicted class ids (E,) for every example of a TaskData (optionally with replaced inputs)."""
    model.eval()
    image_emb = data.image_emb if image_emb is None else image_emb
    input_ids = data.input_ids if input_ids is None else input_ids
    preds = []
    for i in range(0, len(data), batch_size):
        sl = slice(i, i + batch_size)
        logits = model(input_ids[sl], data.attention_mask[sl], image_emb[data.scene_idx[sl]], missing=missing)
        preds.append(logits.argmax(-1))
    return torch.cat(preds) if preds else torch.zeros(0, dtype=torch.long)


def accuracy(preds: torch.Tensor, data) -> dict[str, float]:
    """{"all": accuracy, <kind>: accuracy per question kind / negative kind} for predictions on a TaskData."""
    hit = (preds == data.labels).float()  # (E,)
    out = {"all": float(hit.mean())}
    for kind in sorted(set(data.kinds)):
        sel = torch.tensor([k == kind for k in data.kinds])
        out[kind] = float(hit[sel].mean())
    return out


def evaluate(model: FusionModel, data, **kwargs) -> dict[str, float]:
    """Accuracy of a model on a TaskData, overall and per kind (kwargs go to `predict`)."""
    return accuracy(predict(model, data, **kwargs), data)
