"""Deletion and insertion curves of the perturbation test (mmkit.attention.perturbation), one line per method."""
from __future__ import annotations

import numpy as np

from .scenes import new_figure
from .text import plain


def perturbation_curves(results, title: str | None = None):
    """Mean deletion (left) and insertion (right) curves over the images, per method, with random's dashed.

    Args:
        results: Perturbation objects (a list, or a {method: Perturbation} dict) of one model.
    Returns the Figure.
    """
    results = list(results.values()) if isinstance(results, dict) else list(results)
    if not results:
        raise ValueError("no perturbation results to draw; pass what mmkit.attention.perturbation returned")
    fig = new_figure((7.2, 2.8))
    axes = fig.subplots(1, 2)
    for ax, kind in zip(axes, ("deletion", "insertion")):
        for p in results:
            curve = getattr(p, kind).mean(0)
            ax.plot(p.fractions, curve, marker="o", ms=3, label=plain(f"{p.method} (AUC {p.aucs(kind).mean():.2f})"))
        first = results[0]
        rand = getattr(first, "random_" + kind).mean(0)
        ax.plot(first.fractions, rand, "k--", label=plain(f"random (AUC {first.aucs('random_' + kind).mean():.2f})"))
        over = getattr(first, "over", "patches")  # image patches or text tokens
        ax.set_xlabel(f"share of {over} {'deleted' if kind == 'deletion' else 'inserted'}", fontsize=8)
        ax.set_ylabel(plain(first.score), fontsize=8)
        ax.set_title(f"{kind} ({'lower' if kind == 'deletion' else 'higher'} is better)", fontsize=9)
        ax.legend(fontsize=7)
        ax.tick_params(labelsize=7)
    fig.suptitle(plain(title or f"{results[0].model}: {len(results[0].deletion)} images"), fontsize=9)
    return fig
