"""Faster attention for loaded BLIP models, with the same arithmetic up to float rounding.

Two places where transformers does more work than inference needs:

1. BLIP's vision tower (`BlipAttention`) multiplies queries by keys, applies a softmax and multiplies by
   values in separate steps, whatever `attn_implementation` says. At 384x384 (577 tokens) that is most of
   what a caption or VQA call costs beyond the linear layers. The fused forward does it in one
   `scaled_dot_product_attention` call: BLIP-base's vision tower ran 1.27x faster on 8 images on a 2-core CPU.

2. BLIP's text cross-attention (`BlipTextSelfAttention` given image states) projects every image token to a
   key and a value in every layer: for BLIP-base that is 2 x 577 x 768 x 768 multiply-adds per layer and
   image, more than the rest of a 10-token caption costs. A caption asks only a few queries of those keys,
   so the absorbed forward moves the projections onto the queries instead (below), and never builds the keys
   and values. On a 2-core CPU this made BLIP-base's decoder 2.4x faster for 32 images, and whole captioning
   calls went from 1.29x to 1.45-1.73x the transformers pipeline (benchmarks/tasks.py).

`fuse_attention` changes only the modules of the given model instance, never the classes; models loaded
with `attention=True` are left alone (models.py): their maps come from transformers' own code.

The absorbed cross-attention, for one head h with key/value weights Wk_h, Wv_h (d x E) and biases bk_h, bv_h,
queries q (Lq x d) and image states X (S x E):

    scores = q (X Wk_h^T + bk_h)^T = (q Wk_h) X^T + q bk_h^T
    out    = P (X Wv_h^T + bv_h)   = (P X) Wv_h^T + bv_h          (rows of P = softmax(scores) sum to 1)

q bk_h^T is the same for every image token of a query row, so the softmax ignores it. Per call this costs
Lq (D E + H S E) multiply-adds against S E D for projecting the keys and values (D = H d), so it is used only
while Lq stays below that break-even (~60 queries over BLIP-base's 577 image tokens), and never when the
keys and values are already cached. Past ~60 generated tokens a cached projection would have been cheaper;
captions and answers are far shorter.
"""
from __future__ import annotations

import types


def fuse_attention(model) -> int:
    """Give every attention module in `model` that has a faster forward that forward; returns how many."""
    n = 0
    for module in model.modules():
        forward, needs = _FORWARDS.get(type(module).__name__, (None, ()))
        if forward and all(hasattr(module, a) for a in needs):
            module.forward = types.MethodType(forward, module)
            n += 1
    return n


def _fused_forward(self, hidden_states, *args, **kwargs):
    import torch

    if self.training or args or kwargs.get("output_attentions") or kwargs.get("head_mask") is not None:
        return type(self).forward(self, hidden_states, *args, **kwargs)  # anything but plain inference: as written
    b, n, d = hidden_states.shape
    q, k, v = self.qkv(hidden_states).reshape(b, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=self.scale)  # (B, H, N, d/H)
    return self.projection(out.transpose(1, 2).reshape(b, n, d)), None


def _absorbed_forward(self, hidden_states, *args, **kwargs):
    """BlipTextSelfAttention.forward with the key/value projections moved onto the queries (module docstring).

    transformers calls it with keywords only; the cache keyword is `past_key_values` up to 5.23 and `cache`
    from 5.24, so both are read, and any call this does not recognise runs the original forward."""
    x = kwargs.get("encoder_hidden_states")  # (B, S, E) image states; None for self-attention
    cache = kwargs.get("cache", kwargs.get("past_key_values"))
    if args or not _absorb(self, hidden_states, x, cache):
        return type(self).forward(self, hidden_states, *args, **kwargs)
    b, lq, _ = hidden_states.shape
    h, d = self.num_attention_heads, self.attention_head_size
    s, e = x.shape[1], x.shape[2]
    # heads as the batch of the weight products (a (B, H, ..) @ (H, ..) broadcast would copy the weights B times)
    q = self.query(hidden_states).view(b * lq, h, d).transpose(0, 1)  # (H, B Lq, d)
    q = (q @ self.key.weight.view(h, d, e)).view(h, b, lq, e).transpose(0, 1).reshape(b, h * lq, e)  # q Wk_h
    scores = (q @ x.transpose(1, 2)).view(b, h, lq, s) / d ** 0.5
    mask = kwargs.get("encoder_attention_mask")  # the mask transformers' code applies to cross-attention
    if mask is not None:
        scores = scores + mask.to(scores.device)
    probs = scores.softmax(dim=-1)
    px = (probs.view(b, h * lq, s) @ x).view(b, h, lq, e).transpose(0, 1).reshape(h, b * lq, e)  # P X
    out = px @ self.value.weight.view(h, d, e).transpose(1, 2) + self.value.bias.view(h, 1, d)  # (H, B Lq, d)
    return out.view(h, b, lq, d).permute(1, 2, 0, 3).reshape(b, lq, h * d), probs


def _absorb(self, hidden_states, encoder_hidden_states, cache) -> bool:
    """Whether the absorbed cross-attention is the cheaper, equivalent way for this call."""
    if encoder_hidden_states is None or self.training or self.key.bias is None or self.value.bias is None:
        return False  # self-attention, dropout, or weights the derivation does not cover
    if cache is not None and (not hasattr(cache, "is_updated") or cache.is_updated.get(self.layer_idx)):
        return False  # keys and values already projected and cached (reuse them), or a cache this does not know
    lq, (s, e) = hidden_states.shape[1], encoder_hidden_states.shape[1:]
    heads, dim = self.num_attention_heads, self.all_head_size
    return lq * (dim * e + heads * s * e) < s * e * dim


# class name -> (its faster forward, the attributes that forward reads)
_FORWARDS = {
    "BlipAttention": (_fused_forward, ("qkv", "projection", "num_heads", "scale")),
    "BlipTextSelfAttention": (_absorbed_forward, ("query", "key", "value", "num_attention_heads",
                                                  "attention_head_size", "all_head_size", "layer_idx")),
}
