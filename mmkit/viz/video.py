"""Figures for video results: the score curve with moments, a timeline of segments, a strip of frames."""
from __future__ import annotations

from .scenes import new_figure


def _axes(ax, size):
    """(figure, axes): the given axes' figure, or a new pyplot-free Figure of `size`."""
    if ax is not None:
        return ax.figure, ax
    fig = new_figure(size)
    return fig, fig.subplots()


def plot_search(result, ax=None, truth=None):
    """The per-frame score curve of a VideoSearch, its threshold, its moments shaded; true intervals as bars.

    Args:
        result: a VideoSearch.
        truth: optional list of (start, end) true intervals, drawn under the curve.
    """
    fig, ax = _axes(ax, (8, 2.4))
    ax.plot(result.times, result.scores, "o-", ms=3, color="#1f77b4", label="score per frame")
    ax.axhline(result.threshold, color="#999", ls="--", lw=1, label="threshold")
    for i, mo in enumerate(result.moments):
        ax.axvspan(mo.start, mo.end, color="#ff7f0e", alpha=0.25, label="found" if i == 0 else None)
    lo = float(result.scores.min()) if len(result.scores) else 0.0
    for i, (a, b) in enumerate(truth or []):
        ax.plot([a, b], [lo, lo], color="#2ca02c", lw=6, solid_capstyle="butt", label="true" if i == 0 else None)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("score")
    ax.set_title(f"'{result.text}'", fontsize=10)
    ax.legend(loc="upper right", fontsize=7)
    return fig


def plot_segments(captions, ax=None, end: float | None = None):
    """A timeline of caption segments (one coloured bar each, labelled with its caption); returns the Figure."""
    from matplotlib import colormaps

    fig, ax = _axes(ax, (8, 1.2 + 0.1 * len(captions.segments)))
    names = list(dict.fromkeys(s.caption for s in captions.segments))
    colors = colormaps["tab10"]
    for s in captions.segments:
        k = names.index(s.caption)
        ax.barh(k, s.end - s.start, left=s.start, color=colors(k % 10), height=0.8)
    ax.set_yticks(range(len(names)), [n if len(n) <= 48 else n[:45] + "..." for n in names], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("time (s)")
    if end is not None:
        ax.set_xlim(0, end)
    return fig


def frame_strip(frames, cols: int = 12, side: int = 64):
    """One PIL image of sampled frames side by side (rows of `cols`), each scaled to `side` pixels."""
    from PIL import Image

    frames = list(frames)
    rows = max(1, -(-len(frames) // cols))
    strip = Image.new("RGB", (side * min(cols, max(1, len(frames))), side * rows), (255, 255, 255))
    for i, f in enumerate(frames):
        im = f.image if hasattr(f, "image") else f
        im = im.copy()
        im.thumbnail((side, side))
        strip.paste(im, ((i % cols) * side, (i // cols) * side))
    return strip
