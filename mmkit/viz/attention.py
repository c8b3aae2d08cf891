"""Figures of attention maps: overlays, a caption strip, layer x head grids, and methods side by side.

Every function takes `ax=None` where it draws one panel, returns a Figure, and needs no display.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from .headview import heads_note, require_heads
from .scenes import draw_boxes, new_figure
from .text import plain, wrapped


def _fig_ax(ax, figsize):
    if ax is not None:
        return ax.figure, ax
    fig = new_figure(figsize)
    return fig, fig.subplots()


def overlay(image, heat: np.ndarray, ax=None, alpha: float = 0.55, cmap: str = "jet", title: str | None = None,
            colorbar: bool = True, boxes=None, offset=(0, 0)):
    """A heatmap drawn over the image (stretched to the image's size), with a colour bar. Returns the Figure.

    A map from AttentionMaps.for_token of a picture that mmkit cropped or padded for the model (a PlacedMap) covers
    maps.image only: over maps.image it is stretched as any map; over the picture you passed it is drawn where
    maps.image lies in it (the rest of the picture left uncoloured, padding bands outside the axes); any other
    picture is refused. for_token(word, size="given") gives a plain map of the picture you passed.
    Every text (title, words) is drawn as typed, never as matplotlib mathtext.

    Args:
        image: PIL image.
        heat: (gh, gw) map on the patch grid, or (H, W).
        boxes: optional ShapesWorld objects whose boxes are drawn dashed.
        offset: (x, y) of the boxes' picture inside `image` (AttentionMaps.offset, when the model got it padded).
    """
    w, h = image.size
    extent = _extent(image.size, getattr(heat, "placed", None))
    fig, ax = _fig_ax(ax, (3.2, 3))
    ax.imshow(image)
    im = ax.imshow(np.asarray(heat, dtype=np.float32), cmap=cmap, alpha=alpha, extent=extent, interpolation="bilinear")
    if boxes:
        draw_boxes(ax, boxes, offset=offset)
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.axis("off")
    if title:
        ax.set_title(plain(title), fontsize=9)
    if colorbar:
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
    return fig


def _extent(size: tuple, placed) -> tuple:
    """imshow's extent (left, right, bottom, top) of a map over a picture of `size` = (w, h): the whole picture, or
    for a PlacedMap over the picture given, where the picture the model was given lies on it."""
    w, h = size
    if placed is None or tuple(size) == tuple(placed[0]):
        return -0.5, w - 0.5, h - 0.5, -0.5
    (iw, ih), (dx, dy), given = placed  # given pixel (x, y) is pixel (x + dx, y + dy) of the model's picture
    if tuple(size) != tuple(given):
        raise InputError(f"this map is of the {iw} x {ih} picture the model was given (maps.image), cut from or "
                         f"padded around the {given[0]} x {given[1]} picture you passed; the picture here is "
                         f"{w} x {h}. "
                         "Overlay it on maps.image or on the picture you passed, or resize the map yourself from "
                         "maps.for_token(word, size='given')")
    return -dx - 0.5, iw - dx - 0.5, ih - dy - 0.5, -dy - 0.5


def caption_strip(maps, words=None, method: str | None = None, layer=None, head=None, agg: str = "mean",
                  alpha: float = 0.55, boxes=None):
    """Each word of the text shown with its map, left to right; one map for the whole text when the method gives
    every word the same one (CLIP's image attention), so it is not read as a map per word. The title fits the figure;
    a picture cropped or padded for the model says so below the maps. Returns the Figure."""
    idx = [maps.index(w) for w in words] if words is not None else list(range(len(maps.words)))
    heats = [maps.for_token(i, layer=layer, head=head, agg=agg, method=method) for i in idx]
    shown = maps.method_for(method, layer, head, agg)
    title = f"{maps.model}: {shown}"
    if len(heats) > 1 and all(np.array_equal(h, heats[0]) for h in heats[1:]):
        other = _telling(maps, idx, shown)
        idx, heats = idx[:1], heats[:1]
        title += " (one map for the whole text: it does not tell the words apart" + (
            f"; method={other!r} does)" if other else ")")
    width = max(1.9 * len(idx), 3.2 if len(heats) == 1 and len(maps.words) > 1 else 0)
    title = wrapped(title, width)
    note = wrapped(maps.framing_note(), width, 7)
    lines = title.count("\n") + (note.count("\n") + 1 if note else 0)
    fig = new_figure((width, 2.3 + 0.15 * lines))  # room for the title's extra lines and the note
    axes = np.atleast_1d(fig.subplots(1, max(1, len(idx))))
    whole = len(idx) == 1 and len(maps.words) > 1 and words is None
    for ax, i, heat in zip(axes, idx, heats):
        overlay(maps.image, heat, ax=ax, alpha=alpha, title=repr(maps.text) if whole else maps.words[i],
                colorbar=False, boxes=boxes, offset=maps.offset)
    fig.suptitle(title, fontsize=9)
    if note:
        fig.supxlabel(note, fontsize=7)
    return fig


def _telling(maps, idx: list[int], shown: str) -> str | None:
    """The method that best tells the words at idx apart, other than `shown`: the maps' default, then relevance,
    then the others in order; None when every method gives them one map."""
    order = dict.fromkeys([maps.default_method, "relevance", *maps.methods])
    return next((m for m in order if m != shown and m in maps.methods and not _same_for_all(maps, idx, m)), None)


def _same_for_all(maps, idx: list[int], method: str) -> bool:
    """Whether a method gives the words at idx one and the same map."""
    first = maps.for_token(idx[0], method=method)
    return all(np.array_equal(maps.for_token(i, method=method), first) for i in idx[1:])


def layer_head_grid(maps, word, alpha: float = 0.55):
    """One word's raw attention for every layer (rows) and head (columns); the title says when the heads do not
    depend on the word (CLIP's). Returns the Figure."""
    require_heads(maps, "layer_head_grid")
    L, H = maps.layers, maps.heads
    title = wrapped(f"'{maps.words[maps.index(word)]}': attention by layer and head{heads_note(maps)}", 1.4 * H + 0.5)
    fig = new_figure((1.4 * H + 0.5, 1.4 * L + 0.4 + 0.15 * title.count("\n")))
    axes = np.array(fig.subplots(L, H, squeeze=False))
    for l in range(L):
        for h in range(H):
            ax = axes[l, h]
            overlay(maps.image, maps.for_token(word, layer=l, head=h, method="attention"), ax=ax, alpha=alpha,
                    colorbar=False)
            if l == 0:
                ax.set_title(f"head {h}", fontsize=7)
            if h == 0:
                ax.text(-0.15, 0.5, f"layer {l}", transform=ax.transAxes, rotation=90, va="center", fontsize=7)
    fig.suptitle(title, fontsize=9)
    return fig


def compare_methods(maps, word, methods=None, alpha: float = 0.55, boxes=None):
    """One word's map by each available method side by side (raw attention, rollout, relevance, ...)."""
    methods = methods or maps.methods
    fig = new_figure((2.6 * len(methods), 2.6))
    axes = np.atleast_1d(fig.subplots(1, len(methods)))
    for ax, meth in zip(axes, methods):
        overlay(maps.image, maps.for_token(word, method=meth), ax=ax, alpha=alpha, title=meth, colorbar=True,
                boxes=boxes, offset=maps.offset)
    fig.suptitle(plain(f"'{maps.words[maps.index(word)]}' ({maps.model})"), fontsize=9)
    return fig
