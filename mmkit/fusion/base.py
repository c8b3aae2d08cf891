"""What every fusion module shares: one call signature, and masked pooling of token sequences.

Every module is called as `fusion(text_emb, image_emb, text_mask=None, image_mask=None)`, where
each embedding is a vector per example, (B, D), or a sequence of tokens, (B, L, D). Masks follow the
Hugging Face `attention_mask` convention: True (or 1) on real tokens, False (or 0) on padding.
Every call passes through `Fusion.__call__`, which checks what all methods need alike (float features,
one image per text) and casts float64 inputs to the module's dtype before the method's own forward.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import InputError


def as_tokens(x: torch.Tensor, name: str) -> torch.Tensor:
    """(B, D) -> (B, 1, D); (B, L, D) unchanged; (B, C, H, W) feature map -> (B, H*W, C)."""
    if not torch.is_tensor(x):
        raise InputError(f"{name} must be a torch tensor, got {type(x).__name__}; fusion modules take tensors, "
                         "encode text and images first (see mmkit.fusion.encoders)")
    if x.dim() == 2:
        return x[:, None, :]  # (B, 1, D)
    if x.dim() == 3:
        return x
    if x.dim() == 4:
        return x.flatten(2).transpose(1, 2)  # (B, C, H, W) -> (B, H*W, C)
    raise InputError(f"{name} has shape {tuple(x.shape)}; pass (B, D) vectors, (B, L, D) tokens or a (B, C, H, W) map")


# what each input holds, in the words of the shapes its forward takes (D: the width the module was built for)
_SHAPES = {"text_emb": "(B, {d}) vectors or (B, L, {d}) token features",
           "image_emb": "(B, {d}) vectors, (B, N, {d}) patch features or a (B, {d}, H, W) feature map"}
_MADE_BY = {"text_emb": "a text encoder, e.g. mmkit.fusion.encoders.TextEncoder()(input_ids, attention_mask)",
            "image_emb": "an image encoder, e.g. mmkit.fusion.encoders.ImageEncoder()(pixel_values)"}


def as_features(x, name: str, dim: int, dtype: torch.dtype) -> torch.Tensor | None:
    """A float tensor in `dtype` (float64 and float16 are cast), or an InputError that names what x looks like."""
    if x is None:
        return None
    if not torch.is_tensor(x):
        raise InputError(f"{name} must be a torch tensor, got {type(x).__name__}; fusion modules take tensors, "
                         "encode text and images first (see mmkit.fusion.encoders)")
    if not x.is_floating_point():
        shape, want = tuple(x.shape), _SHAPES[name].format(d=dim)
        if x.dtype == torch.bool:
            looks = f"{name} is a bool tensor of shape {shape}: it looks like a mask; pass masks as " \
                    f"{name.replace('emb', 'mask')}=..."
        elif x.is_complex():
            looks = f"{name} is a complex tensor ({x.dtype})"
        else:
            what = "token ids" if name == "text_emb" else "pixels or ids"
            looks = f"{name} is an integer tensor ({x.dtype}) of shape {shape}: it looks like {what}"
        raise InputError(f"{looks}; fusion modules take float features, {want}, from {_MADE_BY[name]}")
    return x if x.dtype == dtype else x.to(dtype)  # float64 from numpy: the module's dtype, as a learner expects


def check_batch(text_emb: torch.Tensor | None, image_emb: torch.Tensor | None) -> None:
    """Raise an InputError unless both inputs (when present and batched) have the same batch size."""
    if text_emb is None or image_emb is None or text_emb.dim() < 2 or image_emb.dim() < 2:
        return  # a missing modality (late fusion) or an unbatched tensor, which as_tokens names
    if text_emb.shape[0] != image_emb.shape[0]:
        raise InputError(f"text_emb has batch size {text_emb.shape[0]} but image_emb has {image_emb.shape[0]}; "
                         "pair them one to one")


def check_mask(mask: torch.Tensor | None, tokens: torch.Tensor, name: str) -> torch.Tensor | None:
    """A (B, L) bool mask (True = real token) that fits `tokens` (B, L, D), or None."""
    if mask is None:
        return None
    if tuple(mask.shape) != tuple(tokens.shape[:2]):
        raise InputError(f"{name} has shape {tuple(mask.shape)} but the tokens are {tuple(tokens.shape[:2])}; "
                         "pass one True/False per token, True on real tokens")
    mask = mask.bool()
    if not mask.any(dim=1).all():
        raise InputError(f"{name} masks out every token of some example; keep at least one real token per row")
    return mask


def masked_mean(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over the tokens that the mask keeps.

    Args:
        x: (B, L, D) tokens, or (B, D) vectors (returned unchanged).
        mask: (B, L) bool, True on real tokens; None keeps all.
    Returns:
        (B, D).
    """
    if x.dim() == 2:
        return x
    if mask is None:
        return x.mean(dim=1)
    w = mask.to(x.dtype)[..., None]  # (B, L, 1)
    return (x * w).sum(dim=1) / w.sum(dim=1).clamp(min=1.0)


def pooled(text_emb, image_emb, text_mask=None, image_mask=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Both inputs as one vector per example: (B, Dt), (B, Di); token sequences are mean-pooled over their masks."""
    t, v = as_tokens(text_emb, "text_emb"), as_tokens(image_emb, "image_emb")
    check_batch(t, v)
    return (masked_mean(t, check_mask(text_mask, t, "text_mask")),
            masked_mean(v, check_mask(image_mask, v, "image_mask")))


def check_dim(x: torch.Tensor, dim: int, name: str) -> None:
    """Raise an InputError naming the fix when the feature width of x is not `dim`."""
    if x.shape[-1] != dim:
        raise InputError(f"{name} has feature width {x.shape[-1]} but this module was built for {dim}; "
                         f"build it with {name.split('_')[0]}_dim={x.shape[-1]}")


class Fusion(nn.Module):
    """Base class: records the input widths and the output width; `level` is early, late or attention."""

    level = "early"

    def __init__(self, text_dim: int, image_dim: int, out_dim: int):
        super().__init__()
        for k, v in dict(text_dim=text_dim, image_dim=image_dim, out_dim=out_dim).items():
            if not isinstance(v, int) or v < 1:
                raise InputError(f"{k}={v!r}: use a positive int")
        self.text_dim, self.image_dim, self.out_dim = text_dim, image_dim, out_dim

    def __call__(self, text_emb, image_emb, *args, **kwargs):
        """The checks every method shares, then nn.Module's call (hooks, then forward)."""
        dtype = next((p.dtype for p in self.parameters() if p.is_floating_point()), torch.get_default_dtype())
        text_emb = as_features(text_emb, "text_emb", self.text_dim, dtype)
        image_emb = as_features(image_emb, "image_emb", self.image_dim, dtype)
        check_batch(text_emb, image_emb)
        return super().__call__(text_emb, image_emb, *args, **kwargs)

    def vectors(self, text_emb, image_emb, text_mask=None, image_mask=None):
        """Pool both inputs to vectors and check their widths: (B, text_dim), (B, image_dim)."""
        t, v = pooled(text_emb, image_emb, text_mask, image_mask)
        check_dim(t, self.text_dim, "text_emb")
        check_dim(v, self.image_dim, "image_emb")
        return t, v

    def extra_repr(self) -> str:
        return f"text_dim={self.text_dim}, image_dim={self.image_dim}, out_dim={self.out_dim}"
