"""Small charts the panels show: probabilities as bars."""
from __future__ import annotations

from .scenes import new_figure
from .text import plain


def prob_chart(probs: dict, title: str = ""):
    """A horizontal bar chart of {label: probability}, highest on top. Returns the Figure."""
    items = sorted(probs.items(), key=lambda kv: kv[1])
    fig = new_figure((4.6, 0.35 * len(items) + 0.9))
    ax = fig.subplots()
    labels = [plain(k) for k, _ in items]  # shown as typed, never as matplotlib mathtext
    bars = ax.barh(labels, [v for _, v in items], color="#4c72b0")
    bars[-1].set_color("#dd8452")
    for b, (_, v) in zip(bars, items):
        ax.text(min(v + 0.01, 0.9), b.get_y() + b.get_height() / 2, f"{v:.2f}", va="center", fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xlabel("probability")
    if title:
        ax.set_title(plain(title), fontsize=9)
    return fig
