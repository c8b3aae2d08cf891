"""Figures for the fusion chapter: comparison bars, training curves, robustness, and what each image cell encodes.

Every function returns a matplotlib Figure built without pyplot (no global state, works headless).
"""
from __future__ import annotations

import numpy as np

from .scenes import new_figure


def plot_results(results, kinds=None, title: str | None = None):
    """Grouped bars: held-out accuracy of each method, overall and per question kind.

    Args:
        results: a Results from compare().
        kinds: which columns to show (default: "acc" then every per-kind column).
    """
    skip = {"method", "level", "params", "seconds", "relational", "stopped"}
    kinds = list(kinds) if kinds else [c for c in results.columns if c not in skip]
    methods = [r["method"] for r in results]
    fig = new_figure((max(6, 0.9 * len(methods) * max(1, len(kinds)) / 3), 3.2))
    ax = fig.subplots()
    width = 0.8 / max(1, len(kinds))
    x = np.arange(len(methods))
    for j, k in enumerate(kinds):
        ax.bar(x + j * width - 0.4 + width / 2, [r.get(k, np.nan) for r in results], width,
               label="all" if k == "acc" else k)
    ax.set_xticks(x, methods, rotation=30, ha="right", fontsize=8)
    ax.set(ylabel="held-out accuracy", ylim=(0, 1), title=title or results.title)
    ax.axhline(0.5, color="gray", lw=0.6, ls=":")
    ax.legend(fontsize=7, ncol=min(len(kinds), 7), loc="upper center", bbox_to_anchor=(0.5, -0.35))
    return fig


def plot_tradeoff(results):
    """Scatter: held-out accuracy against trainable parameters (marker size ~ training time)."""
    fig = new_figure((5, 3.2))
    ax = fig.subplots()
    for r in results:
        ax.scatter(r["params"], r["acc"], s=20 + 4 * r["seconds"], alpha=0.7)
        ax.annotate(r["method"], (r["params"], r["acc"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set(xscale="log", xlabel="trainable parameters", ylabel="held-out accuracy",
           title="accuracy vs size (marker ~ training time)")
    return fig


def plot_history(results, key: str = "loss"):
    """Training curves ("loss" or "acc") of every method in a Results."""
    fig = new_figure((6, 3))
    ax = fig.subplots()
    for m, pts in results.histories.items():
        ax.plot([p["step"] for p in pts], [p[key] for p in pts], label=m)
    ax.set(xlabel="step", ylabel=key, title=f"training {key}")
    ax.legend(fontsize=7)
    return fig


def plot_robustness(results):
    """Bars per (method, dropout): accuracy clean, without a modality, and with a noised modality."""
    conds = ["clean", "no_image", "no_text", "noisy_image", "noisy_text"]
    rows = list(results)
    fig = new_figure((max(6, 1.3 * len(rows)), 3.2))
    ax = fig.subplots()
    width = 0.8 / len(conds)
    x = np.arange(len(rows))
    for j, c in enumerate(conds):
        ax.bar(x + j * width - 0.4 + width / 2, [r[c] for r in rows], width, label=c)
    ax.set_xticks(x, [f"{r['method']}\ndropout {r['dropout']}" for r in rows], fontsize=7)
    ax.set(ylabel="held-out accuracy", ylim=(0, 1), title=results.title)
    ax.legend(fontsize=7, ncol=len(conds), loc="upper center", bbox_to_anchor=(0.5, -0.2))
    return fig


def plot_cell_predictions(encoder, scene):
    """The image, and what the pretrained encoder says lies under each of its grid cells (colour, shape, size)."""
    import torch
    from matplotlib.colors import ListedColormap

    from ..data import COLORS
    from ..fusion.encoders import ATTRS, to_pixels

    with torch.no_grad():
        feats = encoder.feature_map(to_pixels([scene.image])).flatten(2).transpose(1, 2)[0]  # (h*w, dim)
    grid = int(round(feats.shape[0] ** 0.5))
    fig = new_figure((2.2 * (len(ATTRS) + 1), 2.4))
    axes = fig.subplots(1, len(ATTRS) + 1)
    axes[0].imshow(scene.image)
    axes[0].set_title("image", fontsize=9)
    for ax, (k, names) in zip(axes[1:], ATTRS.items()):
        pred = encoder.heads[k](feats).argmax(-1).reshape(grid, grid).numpy()  # (h*w,) -> (grid, grid)
        palette = ([(0.94, 0.94, 0.94)] + [tuple(c / 255 for c in COLORS[n]) for n in names[1:]] if k == "color"
                   else [(0.94, 0.94, 0.94), (0.45, 0.45, 0.45), (0.25, 0.25, 0.25), (0.1, 0.1, 0.1)][:len(names)])
        ax.imshow(pred, cmap=ListedColormap(palette), vmin=0, vmax=len(names) - 1)
        for (i, j), v in np.ndenumerate(pred):
            if v:
                ax.text(j, i, names[v][:2], ha="center", va="center", fontsize=6, color="white")
        ax.set_title(f"cell {k}", fontsize=9)
    for ax in axes:
        ax.axis("off")
    return fig
