"""Exercises of the fusion chapter: notebooks 01 (features), 02 (early and late fusion), 03 (cross-attention).

References are the library's own modules and functions wherever they exist.
"""
from __future__ import annotations

import numpy as np
import torch

from ..fusion import FiLMFusion, GatedFusion, LateVote, masked_mean
from ..fusion.pointing import box_fraction
from .core import Case, exercise


def randn(rng: np.random.Generator, *shape, scale: float = 1.0) -> torch.Tensor:
    return torch.from_numpy(rng.standard_normal(shape).astype(np.float32) * scale)


def _padding_mask(rng: np.random.Generator, B: int, L: int) -> torch.Tensor:
    """(B, L) bool: each row keeps a random number (>= 1) of leading tokens, like a padded batch."""
    lengths = rng.integers(1, L + 1, size=B)
    return torch.arange(L)[None, :] < torch.from_numpy(lengths)[:, None]


# ---------------------------------------------------------------------------------------- 01 features

def conv_out_size_reference(h: int, k: int, s: int, p: int) -> int:
    """What torch itself gives: the output side of a Conv2d with kernel k, stride s, padding p on an h x h input."""
    conv = torch.nn.Conv2d(1, 1, kernel_size=k, stride=s, padding=p, bias=False)
    with torch.no_grad():
        return int(conv(torch.zeros(1, 1, h, h)).shape[-1])


@exercise("conv_out_size", "01", "output side of a convolution: floor((H + 2p - k) / s) + 1", conv_out_size_reference,
          hint="integer division: the window must fit entirely, so the last partial step is dropped (//, not /)")
def _conv_cases(rng):
    yield Case("edge: 64 px, kernel 3, stride 2, padding 1 (our encoder)", (64, 3, 2, 1))
    yield Case("edge: 1x1 kernel, stride 1 (the side is unchanged)", (17, 1, 1, 0))
    yield Case("edge: odd side with stride 2", (65, 3, 2, 1))
    yield Case("edge: kernel as large as the padded input", (5, 7, 1, 1))
    for _ in range(12):
        k, s, p = int(rng.integers(1, 8)), int(rng.integers(1, 5)), int(rng.integers(0, 4))
        h = int(rng.integers(max(1, k - 2 * p), 100))
        yield Case("random", (h, k, s, p))


def embed_words_reference(input_ids: torch.Tensor, E: torch.Tensor, P: torch.Tensor) -> torch.Tensor:
    """x_i = E[w_i] + P[i]: (B, T) ids, (V, D) word table, (max_len, D) position table -> (B, T, D)."""
    T = input_ids.shape[1]
    return E[input_ids] + P[:T]  # (B, T, D) + (T, D) broadcast over the batch


@exercise("embed_words", "01", "word vectors: look up each id in E and add its position vector from P",
          embed_words_reference, hint="use only the first T rows of P, one per position; T = input_ids.shape[1]")
def _embed_cases(rng):
    def make(B, T, V, D, max_len, label):
        ids = torch.from_numpy(rng.integers(0, V, size=(B, T)))
        return Case(label, (ids, randn(rng, V, D), randn(rng, max_len, D)))

    yield make(1, 1, 5, 4, 8, "edge: one sentence of one token")
    yield make(3, 8, 11, 6, 8, "edge: sentences as long as the position table")
    for _ in range(6):
        T, max_len = int(rng.integers(2, 10)), int(rng.integers(10, 16))
        yield make(int(rng.integers(1, 5)), T, int(rng.integers(5, 40)), int(rng.integers(2, 12)), max_len, "random")


@exercise("masked_mean", "01", "mean over the real tokens only: sum_i m_i t_i / sum_i m_i",
          lambda x, mask: masked_mean(x, mask),
          hint="multiply by the mask (as floats, shape (B, L, 1)) before summing, and divide by the number of real tokens")
def _masked_mean_cases(rng):
    yield Case("edge: only the first token is real", (randn(rng, 2, 5, 3), torch.tensor([[1, 0, 0, 0, 0]] * 2).bool()))
    yield Case("edge: no padding at all", (randn(rng, 3, 4, 2), torch.ones(3, 4, dtype=torch.bool)))
    yield Case("edge: sequences of length 1", (randn(rng, 4, 1, 6), torch.ones(4, 1, dtype=torch.bool)))
    yield Case("edge: a 0/1 integer mask", (randn(rng, 2, 6, 3), torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 0]])))
    for _ in range(6):
        B, L, D = int(rng.integers(1, 6)), int(rng.integers(2, 10)), int(rng.integers(1, 10))
        yield Case("random padded batch", (randn(rng, B, L, D), _padding_mask(rng, B, L)))


# -------------------------------------------------------------------------------- 02 early and late

def _module(cls, rng, Dt, Di, out):
    torch.manual_seed(int(rng.integers(2**31)))
    return cls(Dt, Di, out)


@exercise("gated_fusion", "02", "gated multimodal unit: z = g * tanh(W_t t) + (1 - g) * tanh(W_v v), g = sigmoid(W_g [t; v])",
          lambda t, v, gated: gated(t, v),
          hint="the gate reads the concatenation [t; v] (text first); g weighs the text, 1 - g the image")
def _gated_cases(rng):
    yield Case("edge: one example", (randn(rng, 1, 5), randn(rng, 1, 5), _module(GatedFusion, rng, 5, 5, 3)))
    yield Case("edge: text and image of different widths", (randn(rng, 4, 3), randn(rng, 4, 9), _module(GatedFusion, rng, 3, 9, 6)))
    yield Case("edge: one output feature", (randn(rng, 3, 4), randn(rng, 3, 4), _module(GatedFusion, rng, 4, 4, 1)))
    yield Case("edge: large inputs (the gate saturates)", (randn(rng, 2, 6, scale=30), randn(rng, 2, 6, scale=30),
                                                           _module(GatedFusion, rng, 6, 6, 4)))
    for _ in range(5):
        B, Dt, Di, out = (int(x) for x in rng.integers(1, 12, size=4))
        yield Case("random", (randn(rng, B, Dt), randn(rng, B, Di), _module(GatedFusion, rng, Dt, Di, out)))


@exercise("film_fusion", "02", "FiLM: the text scales and shifts every image cell, then pool",
          lambda t, v, film: film(t, v),
          hint="gamma, beta = film.film(t).chunk(2, dim=-1); h = relu((1 + gamma) * v + beta) at every cell, "
               "then relu(film.conv(h)), mean over the cells, relu(film.out(...))")
def _film_cases(rng):
    yield Case("edge: a grid of one cell", (randn(rng, 2, 4), randn(rng, 2, 1, 3), _module(FiLMFusion, rng, 4, 3, 5)))
    yield Case("edge: one example", (randn(rng, 1, 6), randn(rng, 1, 16, 6), _module(FiLMFusion, rng, 6, 6, 2)))
    for _ in range(5):
        B, N, Dt, Di, out = (int(x) for x in rng.integers(1, 10, size=5))
        yield Case("random", (randn(rng, B, Dt), randn(rng, B, N, Di), _module(FiLMFusion, rng, Dt, Di, out)))


def soft_vote_reference(s_t: torch.Tensor, s_v: torch.Tensor) -> torch.Tensor:
    """log of the averaged class probabilities of the two heads: (B, C), (B, C) -> (B, C), as LateVote does."""
    return LateVote(1, 1, s_t.shape[-1]).combine(s_t, s_v)


@exercise("soft_vote", "02", "late fusion by soft voting: log of the mean of the two heads' probabilities",
          soft_vote_reference,
          hint="average probabilities, not scores: (softmax(s_t) + softmax(s_v)) / 2 over the classes (dim=-1), "
               "then log (clamp at 1e-8 first, so log never sees 0)")
def _vote_cases(rng):
    s = randn(rng, 3, 5)
    yield Case("edge: both heads agree exactly", (s, s.clone()))
    yield Case("edge: the image head has no opinion (all scores 0)", (randn(rng, 2, 4), torch.zeros(2, 4)))
    yield Case("edge: two classes", (randn(rng, 4, 2), randn(rng, 4, 2)))
    for _ in range(5):
        B, C = int(rng.integers(1, 6)), int(rng.integers(2, 16))
        yield Case("random", (randn(rng, B, C, scale=3), randn(rng, B, C, scale=3)))


# ------------------------------------------------------------------------------------ 03 attention

def cross_attention_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask=None):
    """Single-head scaled dot-product attention of queries over keys.

    Args: q (B, T, d) queries; k (B, N, d) keys; v (B, N, dv) values; key_mask (B, N) bool, True = real, or None.
    Returns: out (B, T, dv) and attn (B, T, N), each attn row a distribution over the real keys.
    """
    scores = q @ k.transpose(1, 2) / q.shape[-1] ** 0.5  # (B, T, N)
    if key_mask is not None:
        scores = scores.masked_fill(~key_mask.bool()[:, None, :], float("-inf"))  # padded keys: no attention
    attn = scores.softmax(dim=-1)  # (B, T, N)
    return attn @ v, attn  # (B, T, dv), (B, T, N)


@exercise("cross_attention", "03", "scaled dot-product attention with a key mask: returns (out, attn)",
          cross_attention_reference, atol=1e-5,
          hint="scores = q @ k^T / sqrt(d); padded keys get -inf before the softmax over the keys (the last dim); "
               "out = attn @ v; return the pair (out, attn)")
def _xattn_cases(rng):
    def make(B, T, N, d, dv, mask, label, scale=1.0):
        return Case(label, (randn(rng, B, T, d, scale=scale), randn(rng, B, N, d), randn(rng, B, N, dv),
                            _padding_mask(rng, B, N) if mask is True else mask))

    yield make(2, 3, 5, 4, 4, None, "edge: no mask")
    yield make(1, 1, 6, 8, 2, torch.tensor([[True, False, False, False, False, False]]), "edge: only one real key")
    yield make(2, 2, 4, 4, 3, torch.ones(2, 4, dtype=torch.bool), "edge: a mask that keeps everything")
    yield make(1, 4, 9, 16, 5, True, "edge: large scores (softmax must stay finite)", scale=40.0)
    for _ in range(5):
        B, T, N, d, dv = (int(x) for x in rng.integers(1, 9, size=5))
        yield make(B, T, N, d, dv, True, "random, padded keys")


def patch_pointing_hit_reference(attn, box, grid: int, size: int) -> bool:
    """True when the most-attended cell of a grid x grid map (flattened row by row) overlaps box = (x0, y0, x1, y1)."""
    frac = box_fraction(box, grid, size)  # (grid*grid,) share of each cell inside the box
    return bool(frac[int(np.argmax(np.asarray(attn)))] > 0)


@exercise("patch_pointing_hit", "03", "pointing game on the patch grid: does the top cell touch the true box?",
          patch_pointing_hit_reference,
          hint="cell i sits at row i // grid, column i % grid and covers pixels [col * size/grid, (col + 1) * size/grid); "
               "it touches the box when both its x range and its y range overlap the box's with positive length")
def _patch_hit_cases(rng):
    def peak_at(cell, grid):
        a = rng.random(grid * grid) * 0.1
        a[cell] = 1.0
        return a

    # 8 x 8 grid on 64 px: cells of 8 px
    yield Case("edge: top cell inside the box", (peak_at(9, 8), (6, 6, 20, 20), 8, 64))
    yield Case("edge: box ends exactly where the top cell begins", (peak_at(2, 8), (0, 0, 16, 8), 8, 64))
    yield Case("edge: box starts exactly where the top cell ends", (peak_at(8 * 2 + 1, 8), (16, 16, 30, 30), 8, 64))
    yield Case("edge: row and column not swapped (cell in row 1, column 5)", (peak_at(13, 8), (40, 8, 48, 16), 8, 64))
    yield Case("edge: the box is the whole image", (peak_at(63, 8), (0, 0, 64, 64), 8, 64))
    # cell 9 is row 1, column 1: pixels [8, 16) x [8, 16), centre (12, 12)
    yield Case("edge: the box overlaps the top cell but not its centre (a hit)", (peak_at(9, 8), (14, 14, 30, 30), 8, 64))
    yield Case("edge: a box smaller than a cell, inside the top cell (a hit)", (peak_at(9, 8), (10, 10, 13, 13), 8, 64))
    yield Case("edge: the box covers only the top cell's right half (a hit)", (peak_at(9, 8), (12, 0, 40, 64), 8, 64))
    for _ in range(10):
        grid = int(rng.choice([4, 7, 8]))
        size = grid * int(rng.integers(4, 12))
        x0, y0 = (int(x) for x in rng.integers(0, size - 2, size=2))
        x1, y1 = int(rng.integers(x0 + 1, size + 1)), int(rng.integers(y0 + 1, size + 1))
        yield Case("random", (rng.random(grid * grid), (x0, y0, x1, y1), grid, size))
