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

import numpy as np

from .cross import _np, _pixels, _stack
from .maps import AttentionMaps, rollout


def _prompts(m, text: str) -> tuple[list[str], list[str]]:
    words = text.split()
    template = m.spec.zero_shot_template
    texts = [template.format(w) for w in words]
    if len(words) > 1:
        words, texts = words + ["<prompt>"], texts + [template.format(text)]
    return words, texts


def _text_emb(m, texts):
    from ..tasks.embeddings import _embed_texts

    return _embed_texts(m, texts).to(m.device)  # (W, D) L2-normalised, float32 whatever the model's dtype


def clip_maps(m, image, text: str) -> AttentionMaps:
    """CLIP: similarity and relevance maps per word; CLS attention and its rollout for reference."""
    import torch

    model = m.model
    words, texts = _prompts(m, text)
    t = _text_emb(m, texts)  # (W, D)
    px = _pixels(m, image)["pixel_values"]
    vm = model.vision_model
    with torch.enable_grad():
        out = vm(pixel_values=px, output_attentions=True, return_dict=True)
        atts = list(out.attentions)
        if not atts or atts[0] is None:
            _stack(atts)  # raises the advice to load with attention=True
        patches = model.visual_projection(vm.post_layernorm(out.last_hidden_state[:, 1:])).float()  # (1, N, D)
        # similarities in float32, as zero_shot computes them (the model may run in bf16/fp16 on a GPU)
        image_emb = torch.nn.functional.normalize(model.visual_projection(out.pooler_output).float(), dim=-1)  # (1, D)
        scores = (image_emb @ t.T)[0]  # (W,)
        relevance = []
        for w in range(len(words)):
            grads = torch.autograd.grad(scores[w], atts, retain_graph=True)
            n = atts[0].shape[-1]
            r = torch.eye(n)
            for a, g in zip(atts, grads):
                cam = (g[0] * a[0]).clamp(min=0).mean(0).detach().float().cpu()  # (S, S) heads averaged
                r = r + cam @ r
            relevance.append(r[0, 1:].numpy())  # CLS row, patches only
    att = _stack(atts)  # (L, H, S, S)
    n_patches = att.shape[-1] - 1
    side = int(round(n_patches ** 0.5))
    grid = (side, n_patches // side)
    sim = _np(torch.nn.functional.normalize(patches[0], dim=-1) @ t.T).T  # (W, N)
    cls = att[:, :, :1, 1:].reshape(att.shape[:2] + (1,) + grid)  # (L, H, 1, gh, gw) text-independent
    attn = np.broadcast_to(cls, att.shape[:2] + (len(words),) + grid)
    rolled = np.broadcast_to(rollout(att)[0, 1:].reshape((1,) + grid), (len(words),) + grid)
    groups = [[i] for i in range(len(words))]
    return AttentionMaps(image, words, groups, words, grid, attn,
                         {"similarity": sim.reshape((len(words),) + grid),
                          "relevance": np.stack(relevance).reshape((len(words),) + grid), "rollout": rolled},
                         m.spec.name, text, notes={"attention_is_text_independent": True})


def align_maps(m, image, text: str) -> AttentionMaps:
    """ALIGN: Grad-CAM of the image-text similarity on the EfficientNet's last feature map, per word."""
    import torch

    model = m.model
    words, texts = _prompts(m, text)
    t = _text_emb(m, texts)  # (W, D)
    px = _pixels(m, image)["pixel_values"]
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
                         {"gradcam": np.stack(cams), "similarity": _np(share)}, m.spec.name, text)
