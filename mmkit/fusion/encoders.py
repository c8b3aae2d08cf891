"""Tiny from-scratch encoders for ShapesWorld: a word vocabulary, a text encoder and a CNN image encoder.

The image encoder is pretrained once (a few seconds) to say what lies under each cell of its 8x8
feature grid, then frozen, so every fusion method in the comparison starts from the same image
features, the way real systems start from one pretrained vision backbone.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from ..data import COLORS, SHAPES, SIZES, ShapesWorld
from ..errors import InputError

SPECIALS = ("[PAD]", "[UNK]")  # id 0 pads, id 1 stands for an unknown word


class WordVocab:
    """A word-level vocabulary over every ShapesWorld word: one token per word, no sub-words.

    Args:
        words: the words to know; defaults to ShapesWorld.vocabulary().
        max_len: longest sequence `encode` returns (longer texts are cut).
    """

    def __init__(self, words=None, max_len: int = 24):
        words = list(words) if words is not None else ShapesWorld.vocabulary()
        self.itos = list(SPECIALS) + [w for w in words if w not in SPECIALS]
        self.stoi = {w: i for i, w in enumerate(self.itos)}
        self.max_len = max_len

    def __len__(self) -> int:
        return len(self.itos)

    @staticmethod
    def split(text: str) -> list[str]:
        """Lower-case words, punctuation dropped: 'Is there a red circle?' -> ['is', 'there', 'a', 'red', 'circle']."""
        return "".join(c if c.isalnum() else " " for c in text.lower()).split()

    def encode(self, texts) -> tuple[torch.Tensor, torch.Tensor]:
        """Texts -> (input_ids (B, T) long, attention_mask (B, T) bool, True on real words)."""
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, (list, tuple)) or not all(isinstance(t, str) for t in texts):
            raise InputError(f"texts must be a string or a list of strings, got {type(texts).__name__}")
        rows = [[self.stoi.get(w, 1) for w in self.split(t)][: self.max_len] or [1] for t in texts]
        T = max(len(r) for r in rows)
        ids = torch.zeros(len(rows), T, dtype=torch.long)  # (B, T) padded with [PAD] = 0
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
        return ids, ids != 0

    def decode(self, ids) -> list[str]:
        """One row of ids -> its words, padding dropped."""
        return [self.itos[int(i)] for i in ids if int(i) != 0]


@dataclass
class TextEncoderConfig:
    vocab_size: int = 64  # number of word ids (len(WordVocab()) fits)
    dim: int = 64  # width of every word vector
    heads: int = 4  # self-attention heads in the one transformer layer
    layers: int = 1  # transformer layers on top of the word + position embeddings
    max_len: int = 24  # longest sentence (learned position embeddings)


class TextEncoder(nn.Module):
    """Word + position embeddings and a small transformer: each word becomes a context-aware vector."""

    def __init__(self, config: TextEncoderConfig | None = None):
        super().__init__()
        self.config = c = config or TextEncoderConfig()
        self.embed = nn.Embedding(c.vocab_size, c.dim, padding_idx=0)
        self.pos = nn.Parameter(torch.randn(c.max_len, c.dim) * 0.02)
        layer = nn.TransformerEncoderLayer(c.dim, c.heads, dim_feedforward=2 * c.dim, dropout=0.0,
                                           batch_first=True, norm_first=True)
        self.layers = nn.TransformerEncoder(layer, c.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(c.dim)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Word ids -> word vectors.

        Args:
            input_ids: (B, T) long word ids.
            attention_mask: (B, T) bool or 0/1, True/1 on real words; None means no padding.
        Returns:
            text_emb: (B, T, dim).
        """
        T = input_ids.shape[1]
        x = self.embed(input_ids) + self.pos[:T]  # (B, T, dim)
        pad = None if attention_mask is None else ~attention_mask.bool()  # (B, T) True on padding
        return self.norm(self.layers(x, src_key_padding_mask=pad))


@dataclass
class ImageEncoderConfig:
    channels: tuple = (16, 32, 64)  # channels of the three stride-2 convolutions (64 px -> 8x8 grid)
    dim: int = 64  # width of each image token (the last conv layers and the output)
    context_layers: int = 2  # stride-1 dilated convolutions that widen the receptive field to whole objects


class ImageEncoder(nn.Module):
    """A small CNN: a (B, 3, 64, 64) image becomes an 8x8 grid of `dim`-wide tokens plus 2D positions."""

    def __init__(self, config: ImageEncoderConfig | None = None):
        super().__init__()
        self.config = c = config or ImageEncoderConfig()
        layers, cin = [], 3
        for cout in c.channels:
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]
            cin = cout
        for i in range(c.context_layers):
            d = 2 ** i  # dilation 1, 2: receptive field grows to cover a large object
            layers += [nn.Conv2d(cin, c.dim, 3, padding=d, dilation=d), nn.BatchNorm2d(c.dim), nn.ReLU()]
            cin = c.dim
        self.cnn = nn.Sequential(*layers)
        self.proj = nn.Conv2d(cin, c.dim, 1)

    def feature_map(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Images -> feature map (B, dim, h, w), no positions added."""
        return self.proj(self.cnn(pixel_values))

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Images -> image tokens with 2D sin/cos positions added.

        Args:
            pixel_values: (B, 3, H, W) float in [0, 1].
        Returns:
            image_emb: (B, h*w, dim), tokens in row-major order (h = H / 8).
        """
        fmap = self.feature_map(pixel_values)  # (B, dim, h, w)
        B, D, h, w = fmap.shape
        tokens = fmap.flatten(2).transpose(1, 2)  # (B, h*w, dim)
        return tokens + position_2d(h, w, D).to(tokens)


def position_2d(h: int, w: int, dim: int) -> torch.Tensor:
    """Fixed 2D sin/cos position codes, half the channels for y and half for x: (h*w, dim)."""
    if dim % 4:
        raise InputError(f"dim={dim}: 2D position codes need a multiple of 4")
    q = dim // 4
    freq = 1.0 / (10.0 ** (torch.arange(q) / q))  # (q,) wavelengths from 1 to ~10 cells
    ys, xs = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")  # (h, w) each
    parts = []
    for v in (ys.flatten(), xs.flatten()):
        ang = v[:, None] * freq[None, :] * math.pi / 2  # (h*w, q)
        parts += [ang.sin(), ang.cos()]
    return torch.cat(parts, dim=1) * 0.5  # (h*w, dim)


def to_pixels(images) -> torch.Tensor:
    """PIL images (or an (N, H, W, 3) uint8 array) -> pixel_values (N, 3, H, W) float in [0, 1]."""
    a = images if isinstance(images, np.ndarray) else np.stack([np.asarray(im.convert("RGB")) for im in images])
    if a.ndim != 4 or a.shape[-1] != 3:
        raise InputError(f"images of shape {a.shape}: pass a list of RGB images or an (N, H, W, 3) array")
    return torch.from_numpy(a).permute(0, 3, 1, 2).float() / 255.0  # (N, 3, H, W)


ATTRS = {"color": ("none", *COLORS), "shape": ("none", *SHAPES), "size": ("none", *SIZES)}  # per-cell targets


def cell_labels(scenes, grid: int = 8) -> dict[str, torch.Tensor]:
    """For every scene, what covers the centre of each grid cell: {attr: (N, grid*grid) long}, 0 = background."""
    out = {k: np.zeros((len(scenes), grid * grid), np.int64) for k in ATTRS}
    for n, s in enumerate(scenes):
        S = s.image.size[0]
        c = (np.arange(grid) + 0.5) * S / grid  # cell centres in pixels
        yy, xx = np.meshgrid(c.astype(int), c.astype(int), indexing="ij")
        for o in s.objects:
            hit = o.mask[yy, xx].flatten()  # (grid*grid,) bool
            for k, values in ATTRS.items():
                out[k][n][hit] = values.index(getattr(o, k))
    return {k: torch.from_numpy(v) for k, v in out.items()}


@dataclass
class PretrainConfig:
    n_images: int = 1000  # ShapesWorld training scenes (1-3 objects)
    steps: int = 240  # optimiser steps (per-cell accuracy is ~99% by then)
    batch_size: int = 64  # images per step
    lr: float = 3e-3  # AdamW learning rate
    seed: int = 0  # seeds data order and initial weights


_CACHE: dict = {}


def pretrain_image_encoder(config: PretrainConfig | None = None, encoder_config: ImageEncoderConfig | None = None,
                           cache: bool = True, verbose: bool = False) -> ImageEncoder:
    """Train an ImageEncoder to name the colour, shape and size under each grid cell; returns it frozen, in eval mode.

    The result is cached per configuration for the life of the process, so notebooks and tests pay once.
    """
    config, encoder_config = config or PretrainConfig(), encoder_config or ImageEncoderConfig()
    key = (repr(config), repr(encoder_config))
    if cache and key in _CACHE:
        return _CACHE[key]
    torch.manual_seed(config.seed)
    scenes = ShapesWorld(config.n_images, seed=config.seed, objects=(1, 3), split="train")[:]
    pixels = to_pixels([s.image for s in scenes])  # (N, 3, 64, 64)
    enc = ImageEncoder(encoder_config)
    grid = pixels.shape[-1] // 8
    labels = cell_labels(scenes, grid)
    heads = nn.ModuleDict({k: nn.Linear(enc.config.dim, len(v)) for k, v in ATTRS.items()})
    opt = torch.optim.AdamW([*enc.parameters(), *heads.parameters()], lr=config.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, config.lr, total_steps=config.steps, pct_start=0.15)
    g = torch.Generator().manual_seed(config.seed)
    t0 = time.perf_counter()
    enc.train()
    for step in range(config.steps):
        idx = torch.randint(len(scenes), (config.batch_size,), generator=g)
        fmap = enc.feature_map(pixels[idx])  # (B, dim, h, w)
        feats = fmap.flatten(2).transpose(1, 2)  # (B, h*w, dim)
        loss = sum(F.cross_entropy(heads[k](feats).flatten(0, 1), labels[k][idx].flatten()) for k in ATTRS)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if verbose and (step % 50 == 0 or step == config.steps - 1):
            print(f"pretrain step {step:4d}  loss {loss.item():.3f}  {time.perf_counter() - t0:.1f}s")
    enc.eval().requires_grad_(False)
    enc.heads = heads.eval().requires_grad_(False)  # kept for cell_accuracy and the notebooks
    enc.pretrain_seconds = time.perf_counter() - t0
    if cache:
        _CACHE[key] = enc
    return enc


@torch.no_grad()
def cell_accuracy(encoder: ImageEncoder, scenes) -> dict[str, float]:
    """Per-cell accuracy of a pretrained encoder's colour/shape/size heads on object cells of `scenes`."""
    pixels = to_pixels([s.image for s in scenes])
    labels = cell_labels(scenes, pixels.shape[-1] // 8)
    feats = encoder.feature_map(pixels).flatten(2).transpose(1, 2)  # (N, h*w, dim)
    on = labels["color"] > 0  # (N, h*w) cells that lie on an object
    return {k: float((encoder.heads[k](feats).argmax(-1) == labels[k])[on].float().mean()) for k in ATTRS}


@torch.no_grad()
def encode_images(encoder: ImageEncoder, images, batch_size: int = 256) -> torch.Tensor:
    """Images (PIL list or pixel_values) -> image tokens (N, h*w, dim) from a frozen encoder."""
    pixels = images if torch.is_tensor(images) else to_pixels(images)
    encoder.eval()
    return torch.cat([encoder(pixels[i: i + batch_size]) for i in range(0, len(pixels), batch_size)])
