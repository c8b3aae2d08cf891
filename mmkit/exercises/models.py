"""Exercises of the model chapters: 04 CLIP, 05 ALIGN vs CLIP, 06 ViLT, 07 BLIP."""
from __future__ import annotations

import numpy as np
import torch

from ..attention.maps import to_grid
from ..metrics import recall_at_k, roc_auc
from .core import Case, exercise
from .fusion import randn


def _unit(rng, *shape) -> torch.Tensor:
    return torch.nn.functional.normalize(randn(rng, *shape), dim=-1)


# --------------------------------------------------------------------------------------------- 04 CLIP

def infonce_reference(image_emb: torch.Tensor, text_emb: torch.Tensor, scale: float) -> torch.Tensor:
    """CLIP's symmetric InfoNCE for N matching pairs (mmkit's contrastive_loss with N distinct texts)."""
    from ..train.contrastive import contrastive_loss

    texts = [f"text {i}" for i in range(len(text_emb))]  # all different: one positive per row and column
    return contrastive_loss(image_emb, text_emb, torch.as_tensor(scale, dtype=image_emb.dtype), texts)


@exercise("infonce", "04", "CLIP's loss: cross-entropy towards the diagonal of scale * I T^T, both ways, averaged",
          infonce_reference,
          hint="logits = scale * image_emb @ text_emb.T; the right answer of row i is column i; average the "
               "image->text and text->image cross-entropies (F.cross_entropy is numerically safe, exp() by hand is not)")
def _infonce_cases(rng):
    yield Case("edge: a batch of one pair (nothing to confuse it with: loss 0)", (_unit(rng, 1, 8), _unit(rng, 1, 8), 10.0))
    x = _unit(rng, 5, 6)
    yield Case("edge: texts equal to their images", (x, x.clone(), 10.0))
    x = _unit(rng, 4, 8)
    y = torch.nn.functional.normalize(x + 0.05 * randn(rng, 4, 8), dim=-1)  # near-perfect pairs: cosine ~ 1
    yield Case("edge: scale 100, CLIP's cap, on near-perfect pairs (exp(100) overflows float32)", (x, y, 100.0))
    yield Case("edge: scale 1", (_unit(rng, 3, 4), _unit(rng, 3, 4), 1.0))
    for _ in range(5):
        N, D = int(rng.integers(2, 12)), int(rng.integers(2, 20))
        yield Case("random", (_unit(rng, N, D), _unit(rng, N, D), float(rng.uniform(1, 50))))


@exercise("recall_at_k", "04", "Recall@K: share of queries whose right item (the diagonal) ranks in the top k",
          lambda sim, k: recall_at_k(sim, k),
          hint="h = items scoring strictly higher than sim[i, i], t = other items scoring the same; with ties broken "
               "at random the right item is in the top k with probability clamp((k - h) / (t + 1), 0, 1); return "
               "the mean over the queries")
def _recall_cases(rng):
    yield Case("edge: ties with the right item", (torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0], [2.0, 2.0, 1.0]]), 1))
    yield Case("edge: k as large as the gallery", (randn(rng, 4, 4), 4))
    yield Case("edge: fewer queries than items", (randn(rng, 3, 10), 2))
    yield Case("edge: a perfect diagonal", (torch.eye(5) * 3 + randn(rng, 5, 5) * 0.1, 1))
    for _ in range(6):
        Q = int(rng.integers(2, 12))
        yield Case("random", (randn(rng, Q, Q + int(rng.integers(0, 5))), int(rng.integers(1, 6))))


def zero_shot_probs_reference(image_emb: torch.Tensor, text_emb: torch.Tensor, scale: float) -> torch.Tensor:
    """Zero-shot with prompt ensembling, as mmkit.zero_shot does it.

    Args: image_emb (B, D) L2-normalised; text_emb (L, T, D) L2-normalised, label l in template t; scale 1/temperature.
    Returns: (B, L) probabilities over the labels.
    """
    labels = torch.nn.functional.normalize(text_emb.mean(dim=1), dim=-1)  # (L, D): average the templates, re-normalise
    return (scale * image_emb @ labels.T).softmax(dim=-1)  # (B, L)


@exercise("zero_shot_probs", "04", "zero-shot with prompt ensembling: average each label's templates, re-normalise, softmax",
          zero_shot_probs_reference,
          hint="mean over the templates (dim=1), L2-normalise that mean again, then softmax(scale * image_emb @ labels.T) "
               "over the labels")
def _zs_cases(rng):
    yield Case("edge: one template per label", (_unit(rng, 2, 8), _unit(rng, 5, 1, 8), 100.0))
    yield Case("edge: one image, two labels", (_unit(rng, 1, 4), _unit(rng, 2, 3, 4), 10.0))
    for _ in range(5):
        B, L, T, D = int(rng.integers(1, 6)), int(rng.integers(2, 10)), int(rng.integers(2, 5)), int(rng.integers(3, 16))
        yield Case("random", (_unit(rng, B, D), _unit(rng, L, T, D), float(rng.uniform(5, 100))))


# ------------------------------------------------------------------------------------ 05 ALIGN vs CLIP

def grad_cam_reference(fmap: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """Grad-CAM of one score: fmap and grads (C, h, w) -> ReLU(sum_k alpha_k A^k), alpha_k = mean of grads[k]: (h, w)."""
    alpha = grads.mean(dim=(1, 2))  # (C,) global-average-pooled gradient per channel
    return torch.relu((alpha[:, None, None] * fmap).sum(dim=0))  # (h, w)


@exercise("grad_cam", "05", "Grad-CAM: weight each channel by its mean gradient, sum, keep the positive part",
          grad_cam_reference,
          hint="alpha = grads.mean over the spatial dims (1, 2), one weight per channel; cam = relu(sum_k alpha_k * fmap[k])")
def _gradcam_cases(rng):
    yield Case("edge: a 1x1 feature map", (randn(rng, 6, 1, 1), randn(rng, 6, 1, 1)))
    yield Case("edge: one channel", (randn(rng, 1, 4, 4), randn(rng, 1, 4, 4)))
    yield Case("edge: every gradient negative (nothing raises the score)",
               (randn(rng, 3, 4, 4).abs(), -randn(rng, 3, 4, 4).abs()))
    yield Case("edge: a non-square map", (randn(rng, 5, 2, 7), randn(rng, 5, 2, 7)))
    for _ in range(5):
        C, h, w = int(rng.integers(1, 16)), int(rng.integers(1, 8)), int(rng.integers(1, 8))
        yield Case("random", (randn(rng, C, h, w), randn(rng, C, h, w)))


@exercise("roc_auc", "05", "ROC AUC: the chance that a random positive outscores a random negative (ties count 1/2)",
          lambda pos, neg: roc_auc(pos, neg),
          hint="compare every positive with every negative: count 1 when pos > neg, 1/2 when equal; divide by the "
               "number of pairs")
def _auc_cases(rng):
    yield Case("edge: all scores equal", (np.ones(4), np.ones(3)))
    yield Case("edge: perfectly separated", (np.array([0.9, 0.8]), np.array([0.1, 0.2, 0.3])))
    yield Case("edge: exactly wrong", (np.array([0.1]), np.array([0.5, 0.7])))
    yield Case("edge: ties between a positive and a negative", (np.array([0.5, 0.7, 0.2]), np.array([0.5, 0.2])))
    yield Case("edge: one of each", (np.array([0.3]), np.array([0.3])))
    for _ in range(6):
        yield Case("random", (np.round(rng.random(int(rng.integers(1, 20))), 1), np.round(rng.random(int(rng.integers(1, 20))), 1)))


# ------------------------------------------------------------------------------------------------ 06 ViLT

@exercise("to_grid", "06", "put ViLT's per-patch values back on the patch grid (patches are sampled and shuffled)",
          lambda values, index, grid: to_grid(values, index, grid),
          hint="index[j] = (row, col) of the patch whose value is values[..., j]; start from zeros of shape "
               "values.shape[:-1] + grid (cells without a patch stay 0) and assign out[..., rows, cols] = values")
def _grid_cases(rng):
    def make(lead, gh, gw, keep, label):
        cells = rng.permutation(gh * gw)[:keep]  # sampled and shuffled, like ViLT's patch selection
        index = np.stack([cells // gw, cells % gw], axis=1)  # (P, 2) of (row, col)
        return Case(label, (rng.random(tuple(lead) + (keep,)).astype(np.float32), index, (gh, gw)))

    yield make((), 3, 3, 9, "edge: every patch kept, one map")
    yield make((), 4, 6, 24, "edge: a non-square grid (rows != columns)")
    yield make((), 4, 4, 10, "edge: dropped patches stay 0")
    yield make((2, 3), 5, 5, 20, "edge: leading dims (layers, heads)")
    for _ in range(4):
        gh, gw = int(rng.integers(1, 9)), int(rng.integers(1, 9))
        yield make((int(rng.integers(1, 4)),), gh, gw, int(rng.integers(1, gh * gw + 1)), "random")


def image_share_reference(att: torch.Tensor, T: int) -> float:
    """Share of the text tokens' attention that goes to image tokens: att (S, S), rows sum to 1, text first."""
    return float(att[:T, T:].sum(dim=1).mean())  # (T,) image mass of each text row -> mean


@exercise("image_share", "06", "how much of the text tokens' attention goes to the image tokens (single stream)",
          image_share_reference,
          hint="rows are queries, columns keys; the first T tokens are text: take the text rows, the image columns, "
               "sum each row, average over the text rows")
def _share_cases(rng):
    def att(S, T=None, text_only=False):
        a = torch.from_numpy(rng.random((S, S)).astype(np.float32))
        if text_only:
            a[:, T:] = 0
        return a / a.sum(dim=1, keepdim=True)

    yield Case("edge: one text token", (att(6), 1))
    yield Case("edge: text attends only to text", (att(8, 3, text_only=True), 3))
    for _ in range(5):
        S = int(rng.integers(3, 30))
        yield Case("random", (att(S), int(rng.integers(1, S))))


# ------------------------------------------------------------------------------------------------ 07 BLIP

@exercise("temperature_softmax", "07", "next-word probabilities at temperature tau: softmax(logits / tau)",
          lambda logits, tau: (logits / tau).softmax(dim=-1),
          hint="divide the logits by tau, then softmax over the vocabulary (the last dim); torch.softmax is stable, "
               "exp() by hand overflows when tau is small")
def _temp_cases(rng):
    yield Case("edge: tau = 1", (randn(rng, 7), 1.0))
    yield Case("edge: tiny tau with large logits (almost greedy)", (randn(rng, 10, scale=20), 0.01))
    yield Case("edge: huge tau (almost uniform)", (randn(rng, 5), 1000.0))
    yield Case("edge: a batch of steps (2D logits)", (randn(rng, 3, 6), 0.7))
    for _ in range(5):
        yield Case("random", (randn(rng, int(rng.integers(2, 30)), scale=3), float(rng.uniform(0.2, 3))))


def top_p_filter_reference(probs: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filtering of one distribution (V,): keep the smallest set of most likely words whose total is >= p,
    zero the rest, renormalise. A word is kept when the mass of the words ranked before it is < p."""
    order = probs.argsort(descending=True)  # most likely first
    sorted_p = probs[order]
    before = sorted_p.cumsum(0) - sorted_p  # (V,) mass of the words ranked before each word
    keep_sorted = before < p
    keep = torch.zeros_like(keep_sorted)
    keep[order] = keep_sorted  # back to vocabulary order
    out = torch.where(keep, probs, torch.zeros_like(probs))
    return out / out.sum()


@exercise("top_p_filter", "07", "nucleus (top-p): keep the smallest set of likeliest words with total >= p, renormalise",
          top_p_filter_reference,
          hint="sort descending, cumulative sum; a word stays when the mass ranked before it is still < p (so the word "
               "that crosses p stays); zero the others in the original order and divide by the kept total")
def _top_p_cases(rng):
    d = torch.tensor([0.15625, 0.5, 0.09375, 0.25])  # exact binary fractions: no rounding at the boundary
    yield Case("edge: p reached exactly by two words", (d, 0.75))
    yield Case("edge: p = 1 keeps every word", (d, 1.0))
    yield Case("edge: the top word alone exceeds p", (d, 0.3))
    yield Case("edge: needs three words", (d, 0.8))
    for _ in range(6):
        x = torch.from_numpy(rng.standard_normal(int(rng.integers(2, 40))).astype(np.float32) * 2).softmax(0)
        yield Case("random", (x, float(rng.uniform(0.05, 0.99))))


@exercise("entropy", "07", "entropy of next-word distributions: H = -sum p log p, with 0 log 0 = 0",
          lambda probs: -(probs * probs.clamp_min(1e-12).log()).sum(dim=-1),
          hint="0 * log(0) is nan in floating point: clamp p at 1e-12 inside the log (or mask zeros); sum over the "
               "last dim, in nats (natural log)")
def _entropy_cases(rng):
    yield Case("edge: a certain word (one-hot: H = 0)", (torch.tensor([0.0, 1.0, 0.0, 0.0]),))
    yield Case("edge: uniform over 8 words (H = log 8)", (torch.full((8,), 1 / 8),))
    yield Case("edge: a batch of steps (2D)", (torch.from_numpy(rng.random((3, 5)).astype(np.float32)).softmax(-1),))
    for _ in range(5):
        yield Case("random", (randn(rng, int(rng.integers(2, 50)), scale=2).softmax(0),))
