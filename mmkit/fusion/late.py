"""Late (decision-level) fusion: each modality makes its own prediction, then the predictions are combined.

Every module holds two unimodal heads, text -> scores (B, out_dim) and image -> scores (B, out_dim),
and a rule that merges them, so out_dim is the number of classes. Because the heads never see each
other's input, a missing modality can simply be left out: pass `None` for it and the other head decides.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import InputError
from .base import Fusion, as_tokens, check_dim, check_mask, masked_mean


def _head(dim: int, out_dim: int, hidden: int) -> nn.Module:
    return nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))


class LateFusion(Fusion):
    """Base class: a text head and an image head; subclasses define `combine(s_t, s_v)`."""

    level = "late"

    def __init__(self, text_dim: int, image_dim: int, out_dim: int, hidden: int = 128):
        super().__init__(text_dim, image_dim, out_dim)
        self.text_head, self.image_head = _head(text_dim, out_dim, hidden), _head(image_dim, out_dim, hidden)

    def _vector(self, x, mask, dim: int, name: str):
        if x is None:
            return None
        x = as_tokens(x, name)
        x = masked_mean(x, check_mask(mask, x, name.replace("emb", "mask")))  # (B, D)
        check_dim(x, dim, name)
        return x

    def unimodal(self, text_emb, image_emb, text_mask=None, image_mask=None):
        """Each modality's own scores: (s_t (B, out_dim) or None, s_v (B, out_dim) or None)."""
        t = self._vector(text_emb, text_mask, self.text_dim, "text_emb")
        v = self._vector(image_emb, image_mask, self.image_dim, "image_emb")
        if t is None and v is None:
            raise InputError("both text_emb and image_emb are None; pass at least one modality")
        return (None if t is None else self.text_head(t)), (None if v is None else self.image_head(v))

    def forward(self, text_emb, image_emb, text_mask=None, image_mask=None) -> torch.Tensor:
        """Args: text_emb (B, Dt) / (B, T, Dt) or None; image_emb (B, Di) / (B, N, Di) or None. Returns scores (B, out_dim)."""
        s_t, s_v = self.unimodal(text_emb, image_emb, text_mask, image_mask)
        if s_t is None or s_v is None:
            return self.single(s_t if s_v is None else s_v, "text" if s_v is None else "image")
        return self.combine(s_t, s_v)

    def single(self, s: torch.Tensor, modality: str) -> torch.Tensor:
        """The decision when only one modality is present: that head's scores."""
        return s

    def combine(self, s_t: torch.Tensor, s_v: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class LateMean(LateFusion):
    """Average the two heads' scores (logits): z = (s_t + s_v) / 2."""

    def combine(self, s_t, s_v):
        return (s_t + s_v) / 2


class LateWeighted(LateFusion):
    """A learned weighted average: z = a_t s_t + a_v s_v, with (a_t, a_v) = softmax of two learned scalars."""

    def __init__(self, text_dim: int, image_dim: int, out_dim: int, hidden: int = 128):
        super().__init__(text_dim, image_dim, out_dim, hidden)
        self.logits = nn.Parameter(torch.zeros(2))  # softmax -> (a_t, a_v), starts at (0.5, 0.5)

    @property
    def weights(self) -> torch.Tensor:
        """The current modality weights (a_t, a_v), summing to 1."""
        return self.logits.softmax(0)

    def combine(self, s_t, s_v):
        a = self.weights
        return a[0] * s_t + a[1] * s_v


class LateVote(LateFusion):
    """Voting: soft (average the heads' probabilities) or hard (majority of argmax votes, ties by soft score).

    Returns log-probabilities, so cross-entropy training works unchanged. Hard voting has no useful
    gradient; train soft and set `hard=True` to evaluate majority voting.
    """

    def __init__(self, text_dim: int, image_dim: int, out_dim: int, hidden: int = 128, hard: bool = False):
        super().__init__(text_dim, image_dim, out_dim, hidden)
        self.hard = hard  # majority vote at evaluation (two voters: agreement wins, else the surer soft vote)

    def single(self, s, modality):
        return s.log_softmax(-1)

    def combine(self, s_t, s_v):
        p = (s_t.softmax(-1) + s_v.softmax(-1)) / 2  # (B, out_dim) soft vote
        if self.hard and not self.training:
            n = s_t.shape[-1]
            votes = nn.functional.one_hot(s_t.argmax(-1), n) + nn.functional.one_hot(s_v.argmax(-1), n)  # (B, out_dim)
            p = (votes.to(p) + 1e-3 * p) / (votes.to(p) + 1e-3 * p).sum(-1, keepdim=True)
        return p.clamp_min(1e-8).log()


class LateStacking(LateFusion):
    """Stacking: a small meta-classifier reads both heads' scores: z = W [s_t; s_v] + b.

    The meta-learner can learn which head to trust for which class; here it is trained jointly with
    the heads (classic stacking fits it on held-out predictions of already-trained heads).
    """

    def __init__(self, text_dim: int, image_dim: int, out_dim: int, hidden: int = 128):
        super().__init__(text_dim, image_dim, out_dim, hidden)
        self.meta = nn.Linear(2 * out_dim, out_dim)

    def single(self, s, modality):
        zero = torch.zeros_like(s)  # the missing head's scores read as "no opinion"
        return self.meta(torch.cat([s, zero] if modality == "text" else [zero, s], dim=-1))

    def combine(self, s_t, s_v):
        return self.meta(torch.cat([s_t, s_v], dim=-1))  # (B, 2 * out_dim) -> (B, out_dim)
