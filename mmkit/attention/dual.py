"""Maps for dual encoders, where text and image never attend to each other.

CLIP: patch-text similarity (each patch token projected into the joint space) and gradient-weighted
attention relevance (Chefer et al. 2021) of the image-text similarity; its vision CLS attention
(raw and rolled out) is shown too, though it does not depend on the text.
ALIGN: its vision tower is a CNN, so Grad-CAM on the last feature map, and each location's share of the
image-prompt similarity (the pooled embedding is the feature map's mean).
Each word of the prompt gets its own map (the word in the model's template, e.g. "a red"), and the
whole prompt one more, labelled "<prompt>" when it has several words.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from .cross import image_inputs, stack_layers, to_numpy
from .maps import AttentionMaps, rollout
from .relevance import lazy


def _prompts(m, text: str) -> tuple[list[str], list[str]]:
    words = text.split()
    template = m.spec.zero_shot_template
    texts = [template.format(w) for w in words]
    if len(words) > 1:
        words, texts = words + ["<prompt>"], texts + [template.format(text)]
    return words, texts


def prompt_embeddings(m, texts):
    """(W, D) L2-normalised prompt embeddings, float32 whatever the model's dtype; the last 16 prompt lists are
    kept on the Loaded object (m.cache["map_prompts"]), as zero_shot keeps its labels'."""
    from collections import OrderedDict

    from ..tasks.embeddings import text_embeddings

    cache = m.cache.setdefault("map_prompts", OrderedDict())
    key = tuple(texts)
    if key not in cache:
        cache[key] = text_embeddings(m, list(texts))
        while len(cache) > 16:
            cache.popitem(last=False)
    cache.move_to_end(key)
    return cache[key].to(m.device)


def clip_maps(m, image, text: str) -> AttentionMaps:
    """CLIP: similarity and relevance maps per word; CLS attention and its rollout for reference.

    One forward pass without gradients gives the similarity, attention and rollout maps; relevance is computed
    when first read (clip_relevance: one more forward pass, with gradients, and one backward pass for all words)."""
    import torch

    model = m.model
    words, texts = _prompts(m, text)
    t = prompt_embeddings(m, texts)  # (W, D)
    px = image_inputs(m, image)["pixel_values"]
    vm = model.vision_model
    with torch.no_grad():
        out = vm(pixel_values=px, output_attentions=True, return_dict=True)
        atts = list(out.attentions)
        if not atts or atts[0] is None:
            stack_layers(atts)  # raises the advice to load with attention=True
        patches = model.visual_projection(vm.post_layernorm(out.last_hidden_state[:, 1:])).float()  # (1, N, D)
    att = stack_layers(atts)  # (L, H, S, S)
    n_patches = att.shape[-1] - 1
    side = int(round(n_patches ** 0.5))
    grid = (side, n_patches // side)
    sim = to_numpy(torch.nn.functional.normalize(patches[0], dim=-1) @ t.T).T  # (W, N)
    cls = att[:, :, :1, 1:].reshape(att.shape[:2] + (1,) + grid)  # (L, H, 1, gh, gw) text-independent
    attn = np.broadcast_to(cls, att.shape[:2] + (len(words),) + grid)
    rolled = np.broadcast_to(rollout(att)[0, 1:].reshape((1,) + grid), (len(words),) + grid)
    groups = [[i] for i in range(len(words))]
    relevance = lazy(m, lambda: clip_relevance(m, px, t).reshape((len(words),) + grid))
    return AttentionMaps(image, words, groups, words, grid, attn,
                         {"similarity": sim.reshape((len(words),) + grid), "relevance": relevance, "rollout": rolled},
                         m.spec.name, text, notes={"attention_is_text_independent": True})


def clip_relevance(m, px, t) -> np.ndarray:
    """Relevance (Chefer et al. 2021) of each prompt's cosine similarity for CLIP's vision tower.

    Args:
        px: (1, 3, H, W) pixel values; t: (W, D) L2-normalised prompt embeddings.
    Returns (W, N) float32: each prompt's CLS row over the N patches. The gradients of the W similarities are
    taken in one backward pass (batched over the prompts); where autograd cannot batch it, one pass per prompt.
    Needs eager attention (attention_maps' relevance runs under it)."""
    import torch

    model, vm = m.model, m.model.vision_model
    with torch.enable_grad(), _weights_frozen(model):  # gradients reach the attentions through the pixels alone
        out = vm(pixel_values=px.detach().requires_grad_(True), output_attentions=True, return_dict=True)
        atts = list(out.attentions)  # L x (1, H, S, S)
        # similarities in float32, as zero_shot computes them (the model may run in bf16/fp16 on a GPU)
        image_emb = torch.nn.functional.normalize(model.visual_projection(out.pooler_output).float(), dim=-1)  # (1, D)
        scores = (image_emb @ t.T)[0]  # (W,)
        try:  # row w of the identity picks prompt w's similarity: W gradients in one pass
            grads = torch.autograd.grad(scores, atts, torch.eye(len(scores), dtype=scores.dtype, device=scores.device),
                                        retain_graph=True, is_grads_batched=True)  # L x (W, 1, H, S, S)
        except RuntimeError:  # an operation vmap cannot batch: one pass per prompt, as before
            per = [torch.autograd.grad(scores[w], atts, retain_graph=True) for w in range(len(scores))]
            grads = [torch.stack([p[i] for p in per]) for i in range(len(atts))]
    n = atts[0].shape[-1]
    r = torch.eye(n).expand(len(scores), n, n)  # (W, S, S)
    for a, g in zip(atts, grads):
        cam = (g[:, 0] * a[0].detach()).clamp(min=0).mean(1).float().cpu()  # (W, S, S) heads averaged
        r = r + torch.bmm(cam, r)
    return r[:, 0, 1:].numpy()  # CLS rows, patches only


@contextmanager
def _weights_frozen(model):
    """The model's parameters without requires_grad within the block (as they were after it): autograd then
    keeps no inputs for weight gradients and computes none (benchmarks/attention_cost.py)."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        for p, _ in flags:
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def align_maps(m, image, text: str) -> AttentionMaps:
    """ALIGN: Grad-CAM of the image-text similarity on the EfficientNet's last feature map, per word."""
    import torch

    model = m.model
    words, texts = _prompts(m, text)
    t = prompt_embeddings(m, texts)  # (W, D)
    px = image_inputs(m, image)["pixel_values"]
    with torch.enable_grad():
        out = model.vision_model(pixel_values=px, return_dict=True)
        fmap = out.last_hidden_state  # (1, C, h, w)
        image_emb = torch.nn.functional.normalize(out.pooler_output.float(), dim=-1)  # (1, C) float32, like t
        scores = (image_emb @ t.T)[0]  # (W,)
        cams = []
        for w in range(len(words)):
            (g,) = torch.autograd.grad(scores[w], fmap, retain_graph=True)  # (1, C, h, w)
            weights = g[0].mean(dim=(1, 2))  # (C,) global-average-pooled gradients
            cams.append(torch.relu((weights[:, None, None] * fmap[0]).sum(0)).detach().float().cpu().numpy())
        # the pooled embedding is the mean of the feature map's locations, so each location's dot product with
        # the prompt, over the pooled norm, is its exact share of the cosine similarity
        share = torch.einsum("chw,nc->nhw", fmap[0].detach().float(), t) / out.pooler_output.float().norm()  # (W, h, w)
    grid = tuple(fmap.shape[-2:])
    groups = [[i] for i in range(len(words))]
    return AttentionMaps(image, words, groups, words, grid, None,
                         {"gradcam": np.stack(cams), "similarity": to_numpy(share)}, m.spec.name, text)
