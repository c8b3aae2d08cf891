"""Cross-modal attention: tokens of one modality query the tokens of the other.

For text-to-image attention each word is a query and the image patches are keys and values:
attn = softmax(Q K^T / sqrt(d)) over the patches, out = attn V. Each word thus gathers the image
features it needs, and `attn` says where it looked, per head: (B, heads, T, N). Built on
`nn.MultiheadAttention(batch_first=True)` with `average_attn_weights=False`; key padding masks
(True on real tokens here, inverted for torch) keep padded keys out of every softmax.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import InputError
from .base import Fusion, as_tokens, check_dim, check_mask, masked_mean


class CrossAttentionBlock(nn.Module):
    """One attention step: queries (B, Lq, Dq) attend over keys (B, Lk, Dk); residual, LayerNorm and an MLP.

    With self_attention=True the queries then attend to each other (as in a transformer decoder layer),
    so that what one word fetched from the image can be compared with what another word fetched.
    """

    def __init__(self, query_dim: int, key_dim: int, dim: int = 64, heads: int = 4, self_attention: bool = False):
        super().__init__()
        if dim % heads:
            raise InputError(f"dim={dim} must be divisible by heads={heads}")
        self.q_in = nn.Linear(query_dim, dim)
        self.attn = nn.MultiheadAttention(dim, heads, kdim=key_dim, vdim=key_dim, batch_first=True)
        self.self_attn = nn.MultiheadAttention(dim, heads, batch_first=True) if self_attention else None
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.ReLU(), nn.Linear(2 * dim, dim))

    def forward(self, query: torch.Tensor, key: torch.Tensor, key_mask: torch.Tensor | None = None,
                query_mask: torch.Tensor | None = None):
        """Args: query (B, Lq, Dq); key (B, Lk, Dk); key_mask (B, Lk) / query_mask (B, Lq) bool, True on real tokens.

        Returns: h (B, Lq, dim) and attn (B, heads, Lq, Lk), each row summing to 1 over the kept keys.
        """
        q = self.q_in(query)  # (B, Lq, dim)
        pad = None if key_mask is None else ~key_mask  # (B, Lk) True = ignore, torch's convention
        out, attn = self.attn(q, key, key, key_padding_mask=pad, need_weights=True, average_attn_weights=False)
        h = self.norm1(q + out)  # (B, Lq, dim)
        if self.self_attn is not None:
            qpad = None if query_mask is None else ~query_mask  # (B, Lq)
            h = self.norm3(h + self.self_attn(h, h, h, key_padding_mask=qpad, need_weights=False)[0])
        return self.norm2(h + self.mlp(h)), attn


class CrossAttentionFusion(Fusion):
    """Cross-modal attention in one direction, pooled over the queries: (B, out_dim).

    direction="text_to_image": words query image patches (attn (B, heads, T, N));
    direction="image_to_text": patches query words (attn (B, heads, N, T)).
    """

    level = "attention"

    def __init__(self, text_dim: int, image_dim: int, out_dim: int, dim: int = 64, heads: int = 4,
                 direction: str = "text_to_image", self_attention: bool = True):
        super().__init__(text_dim, image_dim, out_dim)
        if direction not in ("text_to_image", "image_to_text"):
            raise InputError(f"direction={direction!r}: use 'text_to_image' or 'image_to_text'")
        self.direction, self.heads = direction, heads
        q_dim, k_dim = (text_dim, image_dim) if direction == "text_to_image" else (image_dim, text_dim)
        self.block = CrossAttentionBlock(q_dim, k_dim, dim, heads, self_attention)
        self.out = nn.Linear(dim, out_dim)
        self.last_attn: torch.Tensor | None = None  # attention of the latest call, detached

    def forward(self, text_emb, image_emb, text_mask=None, image_mask=None, return_attention: bool = False):
        """Args: text_emb (B, T, Dt); image_emb (B, N, Di) or (B, Di, H, W); masks (B, T) / (B, N), True = real.

        Returns: (B, out_dim), and with return_attention=True also attn (B, heads, Lq, Lk).
        """
        t, v = as_tokens(text_emb, "text_emb"), as_tokens(image_emb, "image_emb")
        check_dim(t, self.text_dim, "text_emb")
        check_dim(v, self.image_dim, "image_emb")
        tm, vm = check_mask(text_mask, t, "text_mask"), check_mask(image_mask, v, "image_mask")
        if self.direction == "text_to_image":
            h, attn = self.block(t, v, vm, tm)  # (B, T, dim), (B, heads, T, N)
            z = masked_mean(h, tm)
        else:
            h, attn = self.block(v, t, tm, vm)  # (B, N, dim), (B, heads, N, T)
            z = masked_mean(h, vm)
        self.last_attn = attn.detach()
        z = torch.relu(self.out(z))  # (B, out_dim)
        return (z, attn) if return_attention else z


class CoAttentionFusion(Fusion):
    """Co-attention: words attend to patches and patches attend to words; both pooled and concatenated.

    Returns (B, out_dim); attention as {"text_to_image": (B, heads, T, N), "image_to_text": (B, heads, N, T)}.
    """

    level = "attention"

    def __init__(self, text_dim: int, image_dim: int, out_dim: int, dim: int = 64, heads: int = 4):
        super().__init__(text_dim, image_dim, out_dim)
        self.heads = heads
        self.t2i = CrossAttentionBlock(text_dim, image_dim, dim, heads)
        self.i2t = CrossAttentionBlock(image_dim, text_dim, dim, heads)
        self.out = nn.Linear(2 * dim, out_dim)
        self.last_attn: dict | None = None

    def forward(self, text_emb, image_emb, text_mask=None, image_mask=None, return_attention: bool = False):
        """Args: text_emb (B, T, Dt); image_emb (B, N, Di); masks (B, T) / (B, N), True = real.

        Returns: (B, out_dim), and with return_attention=True also the dict of both attention maps.
        """
        t, v = as_tokens(text_emb, "text_emb"), as_tokens(image_emb, "image_emb")
        check_dim(t, self.text_dim, "text_emb")
        check_dim(v, self.image_dim, "image_emb")
        tm, vm = check_mask(text_mask, t, "text_mask"), check_mask(image_mask, v, "image_mask")
        ht, a_t2i = self.t2i(t, v, vm)  # (B, T, dim), (B, heads, T, N)
        hv, a_i2t = self.i2t(v, t, tm)  # (B, N, dim), (B, heads, N, T)
        z = torch.cat([masked_mean(ht, tm), masked_mean(hv, vm)], dim=-1)  # (B, 2 * dim)
        attn = {"text_to_image": a_t2i, "image_to_text": a_i2t}
        self.last_attn = {k: a.detach() for k, a in attn.items()}
        z = torch.relu(self.out(z))  # (B, out_dim)
        return (z, attn) if return_attention else z
