"""Faster inference for transformer encoder layers (BLIP, CLIP) without autograd.

5. BLIP's and CLIP's encoder layers (`BlipEncoderLayer`, `CLIPEncoderLayer`) make a new tensor for the
   activation and for each residual sum. The MLP's activation alone is 4 x hidden wide (for CLIP-B/32, 20 MB
   for 32 images in every layer, and QuickGELU makes three such tensors), and on the hosts measured here
   fresh memory costs more than the arithmetic that fills it (page faults). Without autograd the layer writes
   those results into tensors it has just made instead: the same operations in the same order, so the same
   numbers bit for bit. On a 2-core CPU the vision towers of the bundled captioner, BLIP-base and CLIP-B/32
   became 1.2x, 1.07-1.10x and 1.08-1.15x faster.

8. CLIP's image embedding is the CLS token's state after the last encoder layer (layer-normed and projected),
   but transformers runs that layer for every token. There every token still gives a key and a value, but
   only the CLS token needs a query, the attention output, the residual sums and the MLP, and
   `clip_image_features` runs it that way. For ViT-B/32 (50 tokens, 12 layers) that removes 6.6% of the
   vision tower's multiply-adds (the last layer's MLP is two thirds of its work): zero-shot on 32 images
   became 1.08x faster on a 2-core CPU (A/B in 5 interleaved rounds, each 1.08-1.15x). The matrix products
   see one row per image instead of 50, so the embeddings differ from transformers' by float rounding
   (within 1e-5 of their largest value in the tests). mmkit's image embeddings (zero_shot, embed_images,
   match, retrieve) use it.
"""
from __future__ import annotations


def layer_forward(self, hidden_states, *args, **kwargs):
    """BlipEncoderLayer / CLIPEncoderLayer forward without autograd, writing the activation and both residual
    sums into tensors the layer has just made instead of new ones (module docstring, 5.).

    The same operations in the same order as transformers' forward, so the same numbers bit for bit. Runs the
    original while gradients are recorded (an in-place activation would break backward), in training, and for
    positional arguments it does not know."""
    import torch

    if self.training or torch.is_grad_enabled() or len(args) > 1:
        return type(self).forward(self, hidden_states, *args, **kwargs)
    h = self.self_attn(self.layer_norm1(hidden_states), *args, **kwargs)[0]  # (B, N, D); args: CLIP's mask
    h += hidden_states  # h is the attention's new output tensor; the layer's input is left as it was
    return _mlp_block(self, h)


def _mlp_block(layer, h):
    """h + layer.mlp(layer.layer_norm2(h)), h (B, N, D), as transformers computes it, with the activation and the
    residual sum written into the tensors the MLP has just made."""
    mlp = layer.mlp
    out = mlp.fc2(_activate_(mlp.activation_fn, mlp.fc1(layer.layer_norm2(h))))
    out += h
    return out


def _activate_(act, y):
    """act(y), written into y for the activations here (GELU, QuickGELU); others return a new tensor."""
    import torch

    name = type(act).__name__
    if name == "GELUActivation" and getattr(act, "act", None) is torch.nn.functional.gelu:
        return torch.ops.aten.gelu_(y)  # the exact (erf) GELU, as F.gelu computes it
    if name == "QuickGELUActivation":  # y * sigmoid(1.702 y), with one temporary instead of three
        s = y * 1.702
        return y.mul_(s.sigmoid_())
    return act(y)


def clip_image_features(model, pixel_values):
    """CLIPModel.get_image_features(pixel_values).pooler_output, (B, E), with the last encoder layer run for the
    CLS token alone (module docstring, 8.); None where this does not apply, and the caller runs transformers'.

    Args:
        pixel_values: (B, 3, H, W) preprocessed images.
    Not used while gradients are recorded or in training (Grad-CAM and fine-tuning run transformers' code)."""
    import torch

    from .. import config

    if not config.speedups_enabled():
        return None
    vm = getattr(model, "vision_model", None)
    layers = getattr(getattr(vm, "encoder", None), "layers", None)
    if (type(model).__name__ != "CLIPModel" or not layers or type(layers[-1]).__name__ != "CLIPEncoderLayer"
            or not all(hasattr(vm, a) for a in ("embeddings", "pre_layrnorm", "post_layernorm"))
            or model.training or torch.is_grad_enabled()):
        return None
    h = vm.pre_layrnorm(vm.embeddings(pixel_values))  # (B, N, D): CLS, then the patches
    for layer in layers[:-1]:
        h = layer(h, None)  # None: no attention mask, as CLIP's vision encoder calls its layers
        h = h[0] if isinstance(h, tuple) else h
    last, a = layers[-1], layers[-1].self_attn
    x = last.layer_norm1(h)  # (B, N, D)
    b, n, d = x.shape
    q = a.q_proj(x[:, :1]).view(b, 1, a.num_heads, a.head_dim).transpose(1, 2)  # (B, H, 1, D/H): CLS asks alone
    k, v = (f(x).view(b, n, a.num_heads, a.head_dim).transpose(1, 2) for f in (a.k_proj, a.v_proj))  # (B, H, N, D/H)
    ctx = torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=a.scale)  # (B, H, 1, D/H)
    c = a.out_proj(ctx.transpose(1, 2).reshape(b, 1, d))  # (B, 1, D)
    c += h[:, :1]  # c is new: the residual sum goes into it
    return model.visual_projection(vm.post_layernorm(_mlp_block(last, c)[:, 0]))  # (B, E)
