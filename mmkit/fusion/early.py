"""Early (feature-level) fusion: combine one text vector and one image vector into one fused vector.

All modules map (text_emb (B, Dt), image_emb (B, Di)) -> (B, out_dim). Token sequences are accepted
too and mean-pooled over their masks first (see base.py). FiLM is the exception that keeps the
image's spatial tokens: the text rescales and shifts every image channel before pooling.
"""
from __future__ import annotations

import torch
from torch import nn

from .base import Fusion, as_tokens, check_dim, check_mask, masked_mean


class ConcatFusion(Fusion):
    """Concatenate [text; image] and mix with a linear layer: z = ReLU(W [t; v] + b)."""

    def __init__(self, text_dim: int, image_dim: int, out_dim: int):
        super().__init__(text_dim, image_dim, out_dim)
        self.proj = nn.Linear(text_dim + image_dim, out_dim)

    def forward(self, text_emb, image_emb, text_mask=None, image_mask=None) -> torch.Tensor:
        """Args: text_emb (B, Dt) or (B, T, Dt); image_emb (B, Di) or (B, N, Di). Returns (B, out_dim)."""
        t, v = self.vectors(text_emb, image_emb, text_mask, image_mask)
        return torch.relu(self.proj(torch.cat([t, v], dim=-1)))  # (B, Dt + Di) -> (B, out_dim)


class SumFusion(Fusion):
    """Project both into one space and add: z = ReLU(W_t t + W_v v)."""

    def __init__(self, text_dim: int, image_dim: int, out_dim: int):
        super().__init__(text_dim, image_dim, out_dim)
        self.text_proj, self.image_proj = nn.Linear(text_dim, out_dim), nn.Linear(image_dim, out_dim)

    def forward(self, text_emb, image_emb, text_mask=None, image_mask=None) -> torch.Tensor:
        """Args: text_emb (B, Dt) or (B, T, Dt); image_emb (B, Di) or (B, N, Di). Returns (B, out_dim)."""
        t, v = self.vectors(text_emb, image_emb, text_mask, image_mask)
        return torch.relu(self.text_proj(t) + self.image_proj(v))


class WeightedSumFusion(Fusion):
    """A learned weighted sum: z = ReLU(a_t W_t t + a_v W_v v), with (a_t, a_v) = softmax of two learned scalars."""

    def __init__(self, text_dim: int, image_dim: int, out_dim: int):
        super().__init__(text_dim, image_dim, out_dim)
        self.text_proj, self.image_proj = nn.Linear(text_dim, out_dim), nn.Linear(image_dim, out_dim)
        self.logits = nn.Parameter(torch.zeros(2))  # softmax -> (a_t, a_v), starts at (0.5, 0.5)

    @property
    def weights(self) -> torch.Tensor:
        """The current modality weights (a_t, a_v), summing to 1."""
        return self.logits.softmax(0)

    def forward(self, text_emb, image_emb, text_mask=None, image_mask=None) -> torch.Tensor:
        """Args: text_emb (B, Dt) or (B, T, Dt); image_emb (B, Di) or (B, N, Di). Returns (B, out_dim)."""
        t, v = self.vectors(text_emb, image_emb, text_mask, image_mask)
        a = self.weights
        return torch.relu(a[0] * self.text_proj(t) + a[1] * self.image_proj(v))


class GatedFusion(Fusion):
    """A gated multimodal unit (GMU): a per-feature gate decides how much each modality contributes.

    h_t = tanh(W_t t), h_v = tanh(W_v v), g = sigmoid(W_g [t; v]), z = g * h_t + (1 - g) * h_v.
    """

    def __init__(self, text_dim: int, image_dim: int, out_dim: int):
        super().__init__(text_dim, image_dim, out_dim)
        self.text_proj, self.image_proj = nn.Linear(text_dim, out_dim), nn.Linear(image_dim, out_dim)
        self.gate = nn.Linear(text_dim + image_dim, out_dim)

    def forward(self, text_emb, image_emb, text_mask=None, image_mask=None, return_gate: bool = False):
        """Args: text_emb (B, Dt) or (B, T, Dt); image_emb (B, Di) or (B, N, Di). Returns (B, out_dim) (and the gate g)."""
        t, v = self.vectors(text_emb, image_emb, text_mask, image_mask)
        g = torch.sigmoid(self.gate(torch.cat([t, v], dim=-1)))  # (B, out_dim), 1 = all text
        z = g * torch.tanh(self.text_proj(t)) + (1 - g) * torch.tanh(self.image_proj(v))
        return (z, g) if return_gate else z


class BilinearFusion(Fusion):
    """Low-rank bilinear pooling (MLB; MUTAN-style with `heads` > 1): z = P (tanh(U t) * tanh(V v)).

    A full bilinear map z_k = t^T W_k v needs Dt * Di * out_dim weights; factorising each W_k through a
    rank-r product needs only (Dt + Di + out_dim) * r, and every output still multiplies text by image.
    """

    def __init__(self, text_dim: int, image_dim: int, out_dim: int, rank: int = 128, heads: int = 2):
        super().__init__(text_dim, image_dim, out_dim)
        self.rank, self.heads = rank, heads
        self.text_proj = nn.Linear(text_dim, rank * heads)
        self.image_proj = nn.Linear(image_dim, rank * heads)
        self.out = nn.Linear(rank, out_dim)

    def forward(self, text_emb, image_emb, text_mask=None, image_mask=None) -> torch.Tensor:
        """Args: text_emb (B, Dt) or (B, T, Dt); image_emb (B, Di) or (B, N, Di). Returns (B, out_dim)."""
        t, v = self.vectors(text_emb, image_emb, text_mask, image_mask)
        prod = torch.tanh(self.text_proj(t)) * torch.tanh(self.image_proj(v))  # (B, rank * heads)
        prod = prod.view(-1, self.heads, self.rank).sum(dim=1)  # (B, heads, rank) -> (B, rank): sum of rank-r terms
        return torch.relu(self.out(prod))


class TensorFusion(Fusion):
    """Tensor Fusion (TFN): the outer product of [t; 1] and [v; 1] keeps every unimodal and bimodal product.

    z = ReLU(W vec([t'; 1] (x) [v'; 1])), with t', v' first projected down to `dim` features each.
    """

    def __init__(self, text_dim: int, image_dim: int, out_dim: int, dim: int = 16):
        super().__init__(text_dim, image_dim, out_dim)
        self.dim = dim
        self.text_proj, self.image_proj = nn.Linear(text_dim, dim), nn.Linear(image_dim, dim)
        self.out = nn.Linear((dim + 1) ** 2, out_dim)

    def forward(self, text_emb, image_emb, text_mask=None, image_mask=None) -> torch.Tensor:
        """Args: text_emb (B, Dt) or (B, T, Dt); image_emb (B, Di) or (B, N, Di). Returns (B, out_dim)."""
        t, v = self.vectors(text_emb, image_emb, text_mask, image_mask)
        one = t.new_ones(t.shape[0], 1)  # (B, 1)
        t1 = torch.cat([torch.tanh(self.text_proj(t)), one], dim=-1)  # (B, dim + 1)
        v1 = torch.cat([torch.tanh(self.image_proj(v)), one], dim=-1)  # (B, dim + 1)
        outer = t1[:, :, None] * v1[:, None, :]  # (B, dim + 1, dim + 1)
        return torch.relu(self.out(outer.flatten(1)))  # (B, (dim + 1)^2) -> (B, out_dim)


class FiLMFusion(Fusion):
    """FiLM: the text predicts a scale and shift per image channel, applied at every image position.

    gamma, beta = W t; h_n = ReLU((1 + gamma) * v_n + beta) for each image token n; z = W_o mean_n h_n.
    """

    def __init__(self, text_dim: int, image_dim: int, out_dim: int):
        super().__init__(text_dim, image_dim, out_dim)
        self.film = nn.Linear(text_dim, 2 * image_dim)
        self.conv = nn.Linear(image_dim, image_dim)  # a 1x1 convolution over the modulated map
        self.out = nn.Linear(image_dim, out_dim)

    def forward(self, text_emb, image_emb, text_mask=None, image_mask=None) -> torch.Tensor:
        """Args: text_emb (B, Dt) or (B, T, Dt); image_emb (B, N, Di) tokens or (B, Di, H, W) map. Returns (B, out_dim)."""
        t = as_tokens(text_emb, "text_emb")
        t = masked_mean(t, check_mask(text_mask, t, "text_mask"))  # (B, Dt)
        v = as_tokens(image_emb, "image_emb")  # (B, N, Di)
        image_mask = check_mask(image_mask, v, "image_mask")
        check_dim(t, self.text_dim, "text_emb")
        check_dim(v, self.image_dim, "image_emb")
        gamma, beta = self.film(t).chunk(2, dim=-1)  # (B, Di) each
        h = torch.relu((1 + gamma[:, None]) * v + beta[:, None])  # (B, N, Di)
        h = torch.relu(self.conv(h))  # (B, N, Di)
        return torch.relu(self.out(masked_mean(h, image_mask)))  # (B, Di) -> (B, out_dim)
