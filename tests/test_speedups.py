"""Fused BLIP vision attention: same outputs as transformers' own code, and only where maps are not needed."""
import pytest
import torch

import mmkit
from mmkit.speedups import fuse_attention
from mmkit.tasks.inputs import _pixels


def _fused(module) -> bool:
    return "forward" in vars(module)  # an instance-level forward replaces the class's


@pytest.mark.parametrize("family", ["blip-caption", "blip-vqa", "blip-itm"])
def test_fused_vision_attention_matches_eager(family, model_dirs, scenes):
    fast = mmkit.load_model(model_dirs(family))
    eager = mmkit.load_model(model_dirs(family), attention=True)  # maps need the weights: not fused
    attn = [mod for mod in fast.model.modules() if type(mod).__name__ == "BlipAttention"]
    assert attn and all(_fused(mod) for mod in attn)
    assert not any(_fused(mod) for mod in eager.model.modules() if type(mod).__name__ == "BlipAttention")
    assert type(attn[0]).forward is not attn[0].forward.__func__  # the class itself is untouched
    px = _pixels(fast, scenes.images[:3])["pixel_values"]
    with torch.inference_mode():
        a = fast.model.vision_model(pixel_values=px).last_hidden_state
        b = eager.model.vision_model(pixel_values=px).last_hidden_state
        weights = fast.model.vision_model(pixel_values=px, output_attentions=True).attentions
    assert torch.allclose(a, b, atol=1e-5)
    assert weights and all(w is not None and w.shape[-1] == w.shape[-2] for w in weights)  # asked for: still given


def test_fused_attention_falls_back_in_training_and_with_positional_arguments(model_dirs, scenes):
    m = mmkit.load_model(model_dirs("blip-caption"))
    mod = next(mod for mod in m.model.modules() if type(mod).__name__ == "BlipAttention")
    h = torch.randn(2, 5, mod.embed_dim)
    with torch.no_grad():
        fused_out, fused_w = mod(h)
        mod.train()
        try:
            train_out, train_w = mod(h)  # dropout applies to the weights in training: the original forward runs
        finally:
            mod.eval()
    assert fused_w is None and train_w is not None and train_w.shape == (2, mod.num_heads, 5, 5)
    assert torch.allclose(fused_out, train_out, atol=1e-5)  # attention dropout is 0 in these configs


def test_fuse_attention_leaves_other_models_alone(model_dirs):
    m = mmkit.load_model(model_dirs("clip"))
    assert fuse_attention(m.model) == 0
