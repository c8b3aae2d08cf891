"""Faster inference for loaded BLIP and CLIP models, with the same arithmetic up to float rounding.

Eight places where transformers does more work than inference needs, each explained where it is built:

- `blip.py`: (1) BLIP's vision attention in one fused call, (2) the text decoder's cross-attention with the
  key/value projections moved onto the few queries, (3) a lean decoder step, (4) a greedy captioning loop
  without generate's per-token bookkeeping, (7) each distinct image of a batch through the vision tower once;
- `layers.py`: (5) encoder layers that write into tensors they have just made, (8) CLIP's image embedding
  with the last layer run for the CLS token alone;
- `pixels.py`: (6) the PIL image processors' pixels in one pass.

`fuse_attention` changes only the modules of the given model instance, never the classes; models loaded
with `attention=True` are left alone (models.py): their maps come from transformers' own code. Each speedup
is tested against transformers' own code in tests/test_speedups.py, and measured in benchmarks/.

They can be switched off (`MMKIT_SPEEDUPS=0`, or `mmkit.config.set_speedups(False)` at run time, which also
turns the forwards of models already loaded back to transformers' own), and they run only with the
transformers versions they are tested on (`mmkit.config.SPEEDUPS_TESTED`); outside that range they are off,
with a notice. Each faster forward runs transformers' own for any argument it does not handle.
"""
from __future__ import annotations

import functools

from .. import config

from .blip import (absorbed_forward, decoder_forward, distinct_forward, fused_forward, cache_keyword,
                   can_decode_greedily, greedy_caption)
from .layers import layer_forward, clip_image_features
from .pixels import pil_pixels

__all__ = ["fuse_attention", "cache_keyword", "can_decode_greedily", "greedy_caption", "clip_image_features",
           "pil_pixels"]


def fuse_attention(model) -> int:
    """Give every module in `model` that has a faster forward here (BLIP's attention modules and text decoder,
    BLIP's and CLIP's encoder layers, BLIP's and BLIP-2's vision towers) that forward; returns how many.

    None while the speed-ups are off (mmkit.config.speedups_enabled()): the model keeps transformers' code."""
    if not config.speedups_enabled():
        return 0
    n = 0
    for module in model.modules():
        forward, needs = _FORWARDS.get(type(module).__name__, (None, ()))
        if forward and all(hasattr(module, a) for a in needs):
            module.forward = _bound(forward, module)
            n += 1
    return n


def _bound(forward, module):
    """forward as a method of module that shows the signature of the class's forward (generate reads it); the
    class's forward whenever the speed-ups have been switched off since."""
    @functools.wraps(type(module).forward.__get__(module))
    def method(*args, **kwargs):
        if not config.speedups_enabled():
            return type(module).forward(module, *args, **kwargs)
        return forward(module, *args, **kwargs)

    return method


# class name -> (its faster forward, the attributes that forward reads)
_FORWARDS = {
    "BlipEncoderLayer": (layer_forward, ("self_attn", "layer_norm1", "mlp", "layer_norm2")),
    "CLIPEncoderLayer": (layer_forward, ("self_attn", "layer_norm1", "mlp", "layer_norm2")),
    "BlipAttention": (fused_forward, ("qkv", "projection", "num_heads", "scale")),
    "BlipTextSelfAttention": (absorbed_forward, ("query", "key", "value", "num_attention_heads",
                                                  "attention_head_size", "all_head_size", "layer_idx")),
    "BlipTextLMHeadModel": (decoder_forward, ("bert", "cls")),
    "BlipVisionModel": (distinct_forward, ("embeddings", "encoder")),
    "Blip2VisionModel": (distinct_forward, ("embeddings", "encoder")),
}
