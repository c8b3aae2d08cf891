"""BLIP-2: what the Q-Former's learned queries look at.

BLIP-2 never lets words attend to the image. A Q-Former (a small BERT) carries 32 learned query vectors
that cross-attend to the frozen ViT's patches in every second layer (`cross_attention_frequency`); the
language model then reads the 32 query outputs as a soft prompt. So the maps here belong to queries,
not words: one map per query (labelled q0..q31) and per cross-attention layer and head, plus one
"<lm-weighted>" map that mixes the queries by how much the language model's text positions attend to
each of them while reading the caption (or question) — the closest BLIP-2 comes to "where the words look".
"""
from __future__ import annotations

import numpy as np

from .cross import image_inputs, square_grid, stack_layers
from .maps import AttentionMaps

WEIGHTED = "<lm-weighted>"


def _query_weights(m, px, text: str):
    """How much the language model's text positions attend to each query, averaged (32,), summing to 1."""
    import torch

    from ..tasks.inputs import tokenize_with_image_tokens

    enc = tokenize_with_image_tokens(m, [text])  # (1, Q + T): the query placeholders first, as generate sees them
    out = m.model(pixel_values=px, **enc, output_attentions=True)
    att = out.language_model_outputs.attentions if hasattr(out, "language_model_outputs") else out.attentions
    if not att or att[0] is None:
        return None
    q = m.model.config.num_query_tokens
    a = torch.stack([x[0].float() for x in att])  # (L, H, Q + T, Q + T)
    w = a[:, :, q:, :q].mean(dim=(0, 1, 2))  # (Q,) text rows, query columns
    return (w / w.sum().clamp(min=1e-12)).cpu().numpy()


def blip2_maps(m, image, text: str | None = None, **generate_kwargs) -> AttentionMaps:
    """Q-Former query -> image-patch cross-attention of one image, for a caption or a question.

    Args:
        m: a Loaded BLIP-2 model (eager attention).
        image: an RGB PIL image.
        text: the caption or prompt the language model reads; None generates a caption first (kwargs go
            to `mmkit.caption`).
    """
    import torch

    from ..tasks import caption

    model = m.model
    if text is None:
        text = caption(m, image, **generate_kwargs)
    px = image_inputs(m, image)["pixel_values"]  # (1, 3, H, W) on the model's device and dtype
    with torch.inference_mode():
        vision = model.vision_model(pixel_values=px, return_dict=True).last_hidden_state  # (1, 1 + P, Dv)
        queries = model.query_tokens.expand(vision.shape[0], -1, -1)  # (1, Q, Dq)
        qf = model.qformer(query_embeds=queries, encoder_hidden_states=vision,
                           encoder_attention_mask=torch.ones(vision.shape[:-1], dtype=torch.long, device=m.device),
                           output_attentions=True, return_dict=True)
        cross = [c for c in (qf.cross_attentions or ()) if c is not None]
        weights = _query_weights(m, px, text) if text else None
    att = stack_layers(cross)  # (Lc, H, Q, 1 + P); raises the eager-attention advice when there are none
    att = att[..., 1:]  # (Lc, H, Q, P) drop the ViT's CLS token
    n_queries, n_patches = att.shape[2], att.shape[3]
    gh, gw = square_grid(n_patches, px)
    att = att.reshape(att.shape[:3] + (gh, gw))  # (Lc, H, Q, gh, gw), patches are row-major
    words = [f"q{i}" for i in range(n_queries)]
    if weights is not None:
        mixed = np.einsum("q,lhqyx->lhyx", weights, att)[:, :, None]  # (Lc, H, 1, gh, gw)
        att = np.concatenate([att, mixed], axis=2)
        words.append(WEIGHTED)
    freq = model.config.qformer_config.cross_attention_frequency
    layers = [i for i in range(model.config.qformer_config.num_hidden_layers) if i % freq == 0]
    notes = {"qformer_layers": layers, "query_weight": weights}
    return AttentionMaps(image, words, [[i] for i in range(len(words))], list(words), (gh, gw), att.astype(np.float32),
                         {}, m.spec.name, text, kind="queries", notes=notes)
