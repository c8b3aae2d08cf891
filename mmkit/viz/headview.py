"""A head view for vision-language attention (after bertviz's head and model views): every layer by every
head as a grid of small maps for one word, the heads of each layer sortable by how much they concentrate on
the word's object or, without ground truth, by entropy. Returns a Figure; `figure_png` exports it for slides.
"""
from __future__ import annotations

import io

import numpy as np

from .scenes import _new_figure
from .text import plain

SORTS = ("layer", "entropy", "object")  # heads in model order; most focused first; most mass on the object first


def head_scores(maps, word, by: str = "entropy", box=None) -> np.ndarray:
    """One score per layer and head, (L, H): the entropy of the head's map in bits ("entropy"; low = focused),
    or the share of its mass inside box = (x0, y0, x1, y1) in image pixels ("object")."""
    from ..attention.faithfulness import mass_in_box

    if maps.attn is None:
        raise ValueError(f"{maps.model} has no attention heads; its maps are {maps.methods}")
    L, H = maps.layers, maps.heads
    out = np.zeros((L, H))
    for l in range(L):
        for h in range(H):
            if by == "object":
                if box is None:
                    raise ValueError("sorting by object needs the object's box=(x0, y0, x1, y1); use by='entropy'")
                out[l, h] = mass_in_box(maps.for_token(word, layer=l, head=h, size="image"), box)
            elif by == "entropy":
                p = np.clip(maps.for_token(word, layer=l, head=h).astype(np.float64).ravel(), 0, None)
                p = p / p.sum() if p.sum() > 0 else np.full_like(p, 1.0 / p.size)
                out[l, h] = float(-(p[p > 0] * np.log2(p[p > 0])).sum())
            else:
                raise ValueError(f"by={by!r}: use 'entropy' or 'object'")
    return out


def head_view(maps, word, sort: str = "layer", box=None, alpha: float = 0.6, cell: float = 1.1,
              selected: tuple[int, int] | None = None):
    """Every layer (rows) by every head (columns) of one word's raw attention. Returns the Figure.

    Args:
        maps: AttentionMaps with raw attention.
        word: a word of the text or its index.
        sort: "layer" (heads in model order), "entropy" (each layer's most focused heads first) or "object"
            (each layer's heads with the most mass inside box first).
        box: the word's object (x0, y0, x1, y1) in image pixels: drawn dashed, and needed for sort="object".
        cell: inches per small map.
        selected: (layer, head) outlined in red (the cell a viewer enlarges).
    """
    from matplotlib.patches import Rectangle

    if sort not in SORTS:
        raise ValueError(f"sort={sort!r}: use one of {SORTS}")
    scores = None if sort == "layer" else head_scores(maps, word, sort, box)
    L, H = maps.layers, maps.heads
    w, h = maps.image.size
    fig = _new_figure((cell * H + 0.6, cell * L + 0.5))
    axes = np.array(fig.subplots(L, H, squeeze=False))
    for l in range(L):
        order = list(range(H)) if scores is None else list(np.argsort(scores[l] if sort == "entropy" else -scores[l],
                                                                       kind="stable"))
        for col, hd in enumerate(order):
            ax = axes[l, col]
            ax.imshow(maps.image)
            ax.imshow(maps.for_token(word, layer=l, head=int(hd)), cmap="jet", alpha=alpha,
                      extent=(-0.5, w - 0.5, h - 0.5, -0.5), interpolation="bilinear")
            ax.set_xticks([]), ax.set_yticks([])
            label = f"h{hd}" if scores is None else f"h{hd} {scores[l, hd]:.2f}"
            ax.set_title(label, fontsize=6, pad=1)
            if box is not None:
                x0, y0, x1, y1 = box
                ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ls="--", lw=0.8, ec="w"))
            if selected is not None and (l, int(hd)) == tuple(selected):
                for s in ax.spines.values():
                    s.set_edgecolor("red"), s.set_linewidth(2.5)
            if col == 0:
                ax.set_ylabel(f"layer {l}", fontsize=6)
    how = {"layer": "heads in order", "entropy": "heads by entropy (bits, focused first)",
           "object": "heads by mass on the object"}[sort]
    fig.suptitle(plain(f"'{maps.words[maps.index(word)]}' ({maps.model}): {how}"), fontsize=8)
    return fig


def figure_png(fig, path=None, dpi: int = 110) -> bytes:
    """The Figure as PNG bytes (written to path too when given): a static export for slides."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    data = buf.getvalue()
    if path is not None:
        with open(path, "wb") as f:
            f.write(data)
    return data
