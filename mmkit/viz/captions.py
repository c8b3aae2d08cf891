"""Figures for the captioning chapters: training-loss curves, metric bars, and each word's attention map."""
from __future__ import annotations

from collections.abc import Sequence

from .scenes import new_figure


def plot_losses(histories, ax=None, smooth: int = 20):
    """Training loss curves: histories is one `fit` result or {name: result}. Returns the Figure."""
    import numpy as np

    if isinstance(histories, dict) and "loss" in histories:
        histories = {"loss": histories}
    fig = ax.figure if ax is not None else new_figure((6, 3.5))
    ax = ax if ax is not None else fig.subplots()
    for name, h in histories.items():
        y = np.asarray(h["loss"], dtype=float)
        k = max(1, min(smooth, len(y) // 5 or 1))
        ys = np.convolve(y, np.ones(k) / k, mode="valid")  # moving average over k steps
        ax.plot(np.arange(len(ys)) + k, ys, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (moving average)")
    ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


def plot_comparison(results: dict, metrics: Sequence[str] = ("exact_match", "BLEU-4", "CIDEr"), ax=None):
    """Grouped bars, one group per metric (CIDEr divided by 10 to share the 0-1 axis). Returns the Figure."""
    import numpy as np

    fig = ax.figure if ax is not None else new_figure((7, 3.5))
    ax = ax if ax is not None else fig.subplots()
    names = list(results)
    x = np.arange(len(metrics))
    w = 0.8 / max(len(names), 1)
    for k, name in enumerate(names):
        vals = [results[name].get(m, 0.0) / (10.0 if m == "CIDEr" else 1.0) for m in metrics]
        ax.bar(x + (k - (len(names) - 1) / 2) * w, vals, w, label=name)
    ax.set_xticks(x, [m + (" / 10" if m == "CIDEr" else "") for m in metrics])
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    return fig


def plot_word_attention(image, words: Sequence[str], maps, boxes=None, cols: int = 7):
    """Each generated word over the image with the attention the decoder paid to the grid for it.

    Args:
        image: PIL image; words: T generated tokens; maps: (T, G, G) attention (a Captioner's `attend`).
        boxes: optional ShapesWorld objects, drawn dashed. Returns the Figure.
    """
    import numpy as np

    from .attention import overlay
    T = len(words)
    rows = (T + cols - 1) // cols
    fig = new_figure((1.8 * min(T, cols), 2.0 * rows))
    axes = np.atleast_1d(fig.subplots(rows, min(T, cols))).ravel()
    for ax, word, heat in zip(axes, words, maps):
        overlay(image, np.asarray(heat, dtype=np.float32), ax=ax, title=word, colorbar=False, boxes=boxes)
    for ax in axes[T:]:
        ax.axis("off")
    return fig
