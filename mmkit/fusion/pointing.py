"""Where does each word look? Word-to-image attention of a trained cross-attention FusionModel,
drawn over the image, and scored against the true object boxes (pointing game, mass inside the box).
"""
from __future__ import annotations

import numpy as np
import torch

from ..metrics import box_share, mass_in_box
from ..errors import InputError
from .encoders import WordVocab, encode_images


@torch.no_grad()
def word_attention(model, image_emb: torch.Tensor, texts, vocab: WordVocab | None = None):
    """Text-to-image attention of every word.

    Args:
        model: a FusionModel whose method is "cross_attention" or "co_attention".
        image_emb: (B, N, Di) image tokens, one image per text (or (N, Di) for one image).
        texts: a string or B strings.
    Returns:
        attn (B, heads, T, N) and the words of each text (list of B lists).
    """
    if model.level != "attention" or getattr(model.fusion, "direction", "text_to_image") != "text_to_image":
        raise InputError(f"method {model.method!r} has no word-to-image attention; train 'cross_attention' or 'co_attention'")
    vocab = vocab or WordVocab()
    texts = [texts] if isinstance(texts, str) else list(texts)
    if image_emb.dim() == 2:
        image_emb = image_emb[None]  # (1, N, Di)
    if image_emb.shape[0] != len(texts):
        image_emb = image_emb.expand(len(texts), -1, -1)  # (B, N, Di): one image, many texts
    ids, mask = vocab.encode(texts)
    model.eval()
    model(ids, mask, image_emb)
    attn = model.fusion.last_attn
    attn = attn["text_to_image"] if isinstance(attn, dict) else attn  # (B, heads, T, N)
    return attn, [vocab.decode(r) for r in ids]


def box_fraction(box, grid: int, size: int) -> np.ndarray:
    """For each of the grid x grid patches, the fraction of its area inside box=(x0, y0, x1, y1): (grid*grid,)."""
    x0, y0, x1, y1 = box
    edges = np.arange(grid + 1) * size / grid  # patch borders in pixels
    fx = np.clip(np.minimum(edges[1:], x1) - np.maximum(edges[:-1], x0), 0, None) / (size / grid)  # (grid,)
    fy = np.clip(np.minimum(edges[1:], y1) - np.maximum(edges[:-1], y0), 0, None) / (size / grid)  # (grid,)
    return (fy[:, None] * fx[None, :]).flatten()  # (grid, grid) -> (grid*grid,) row-major like the tokens


def pointing_game(model, scenes, image_emb: torch.Tensor | None = None, encoder=None, vocab: WordVocab | None = None,
                  template: str = "what size is the {color} {shape}?", words=("color", "shape")) -> dict:
    """Score word-to-image attention against the true boxes, and against a random baseline.

    For every object of every scene the model reads `template` filled with that object; the attention
    of the words naming it (mean over `words` and over heads) is a distribution over the patches.
    Returns {"mass", "mass_random", "hit", "hit_random", "n"}: the mean attention mass inside the
    object's box and what uniform attention would give (box area / image area); the fraction of
    times the most-attended patch touches the box and the chance that a random patch does.
    """
    scenes = list(scenes)
    if image_emb is None:
        if encoder is None:
            raise InputError("pass image_emb (the scenes' image tokens) or the encoder that makes them")
        image_emb = encode_images(encoder, [s.image for s in scenes])
    texts, objs, rows = [], [], []
    for i, s in enumerate(scenes):
        for o in s.objects:
            texts.append(template.format(color=o.color, shape=o.shape, size=o.size))
            objs.append(o)
            rows.append(i)
    attn, toks = word_attention(model, image_emb[torch.tensor(rows)], texts, vocab)
    attn = attn.mean(dim=1)  # (E, T, N) mean over heads
    grid = int(round(attn.shape[-1] ** 0.5))
    size = scenes[0].image.size[0]
    cell = size // grid  # pixels per patch side
    mass, mass_rand, hit, hit_rand = [], [], [], []
    for e, (o, words_e) in enumerate(zip(objs, toks)):
        pos = [j for j, w in enumerate(words_e) if any(w == getattr(o, k) for k in words)]
        if not pos:
            raise InputError(f"template {template!r} names none of {words} of the object")
        a = attn[e, pos].mean(0).numpy()  # (N,) attention of the naming words
        heat = np.kron(a.reshape(grid, grid), np.ones((cell, cell)) / cell ** 2)  # (grid, grid) -> (size, size)
        mass.append(mass_in_box(heat, o.box))  # the same scores as mmkit.attention.faithfulness
        mass_rand.append(box_share(o.box, (size, size)))
        frac = box_fraction(o.box, grid, size)
        hit.append(float(frac[a.argmax()] > 0))  # pointing game at patch resolution: the top patch touches the box
        hit_rand.append(float((frac > 0).mean()))
    return {"mass": float(np.mean(mass)), "mass_random": float(np.mean(mass_rand)),
            "hit": float(np.mean(hit)), "hit_random": float(np.mean(hit_rand)), "n": len(objs)}


def plot_word_attention(model, scene, text: str, image_emb: torch.Tensor | None = None, encoder=None,
                        vocab: WordVocab | None = None, head: int | None = None, boxes: bool = True):
    """A Figure: the image, then each word's attention over it (mean over heads, or one head), with true boxes.

    Args:
        model: a trained cross_attention / co_attention FusionModel.
        scene: a ShapesWorld Scene.
        text: the question or caption to read.
        image_emb: (N, Di) tokens of the scene (else computed with `encoder`).
        head: show one head instead of the mean over heads.
        boxes: draw every object's true box on each panel.
    """
    from matplotlib.patches import Rectangle

    from ..viz.text import plain
    from ..viz import new_figure

    if image_emb is None:
        if encoder is None:
            raise InputError("pass image_emb (the scene's image tokens) or the encoder that makes them")
        image_emb = encode_images(encoder, [scene.image])[0]
    attn, toks = word_attention(model, image_emb, text, vocab)
    a = attn[0].mean(0) if head is None else attn[0, head]  # (T, N)
    words = toks[0]
    grid = int(round(a.shape[-1] ** 0.5))
    img = np.asarray(scene.image)
    fig = new_figure((1.6 * (len(words) + 1), 2.1))
    axes = fig.subplots(1, len(words) + 1)
    axes[0].imshow(img)
    axes[0].set_title("image", fontsize=8)
    for j, w in enumerate(words):
        ax = axes[j + 1]
        ax.imshow(img)
        heat = a[j].reshape(grid, grid).numpy()  # (N,) -> (grid, grid)
        ax.imshow(heat, cmap="magma", alpha=0.6, extent=(0, img.shape[1], img.shape[0], 0), interpolation="nearest")
        ax.set_title(plain(w), fontsize=9)
    for ax in axes:
        ax.axis("off")
        if boxes:
            for o in scene.objects:
                x0, y0, x1, y1 = o.box
                ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec="cyan", lw=0.8))
    fig.suptitle(plain(text if head is None else f"{text}  (head {head})"), fontsize=9)  # typed text, not mathtext
    return fig
