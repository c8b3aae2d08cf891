"""Build any fusion module by name: `build("gated", text_dim=64, image_dim=64, out_dim=128)`."""
from __future__ import annotations

from functools import partial

from ..errors import InputError
from .attention import CoAttentionFusion, CrossAttentionFusion
from .early import (BilinearFusion, ConcatFusion, FiLMFusion, GatedFusion, SumFusion, TensorFusion,
                    WeightedSumFusion)
from .late import LateMean, LateStacking, LateVote, LateWeighted

# name -> (class or factory, one-line description); the order is the teaching order
REGISTRY = {
    "concat": (ConcatFusion, "early: concatenate the text and image vectors, then a linear layer"),
    "sum": (SumFusion, "early: project both vectors to one space and add them"),
    "weighted": (WeightedSumFusion, "early: a learned weighted sum of the projected vectors"),
    "gated": (GatedFusion, "early: gated multimodal unit, a per-feature sigmoid gate mixes text and image"),
    "bilinear": (BilinearFusion, "early: low-rank bilinear pooling (MLB/MUTAN-style), text times image"),
    "tensor": (TensorFusion, "early: tensor fusion, the outer product of [text; 1] and [image; 1]"),
    "film": (FiLMFusion, "early: FiLM, the text scales and shifts every channel of the image feature map"),
    "cross_attention": (partial(CrossAttentionFusion, direction="text_to_image"),
                        "attention: each word attends over the image patches (text-to-image)"),
    "image_to_text": (partial(CrossAttentionFusion, direction="image_to_text"),
                      "attention: each image patch attends over the words (image-to-text)"),
    "co_attention": (CoAttentionFusion, "attention: both directions, words over patches and patches over words"),
    "late_mean": (LateMean, "late: average the text-only and image-only predictions"),
    "late_weighted": (LateWeighted, "late: a learned weighted average of the two predictions"),
    "late_vote": (LateVote, "late: soft voting (average probabilities); hard=True for majority voting"),
    "late_stacking": (LateStacking, "late: stacking, a meta-classifier reads both predictions"),
}


def list_methods() -> dict[str, str]:
    """Every fusion method that `build` knows: {name: one-line description} (exported as mmkit.fusion.list)."""
    return {name: desc for name, (_, desc) in REGISTRY.items()}


def level(name: str) -> str:
    """'early', 'late' or 'attention' for a registered name."""
    if name not in REGISTRY:
        raise InputError(f"unknown fusion method {name!r}; choose one of {', '.join(REGISTRY)}")
    return _cls(name).level


def build(name: str, text_dim: int, image_dim: int, out_dim: int, **kwargs):
    """Build a fusion module by name.

    Args:
        name: one of `list_methods()` (e.g. "concat", "gated", "cross_attention", "late_mean").
        text_dim: width of the text features Dt.
        image_dim: width of the image features Di.
        out_dim: width of the fused output (for late fusion: the number of classes).
        **kwargs: extra options of that module (e.g. rank=64 for "bilinear", heads=2 for attention).
    Returns:
        an nn.Module called as fusion(text_emb, image_emb, text_mask=None, image_mask=None) -> (B, out_dim).
    """
    if name not in REGISTRY:
        raise InputError(f"unknown fusion method {name!r}; choose one of {', '.join(REGISTRY)} "
                         "(mmkit.fusion.list() describes each)")
    try:
        return REGISTRY[name][0](text_dim=text_dim, image_dim=image_dim, out_dim=out_dim, **kwargs)
    except TypeError as e:
        raise InputError(f"build({name!r}, ...): {e}; see help(mmkit.fusion.{_cls(name).__name__})") from None


def _cls(name: str) -> type:
    factory = REGISTRY[name][0]
    return factory.func if isinstance(factory, partial) else factory
