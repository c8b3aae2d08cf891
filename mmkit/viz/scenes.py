"""Figures of ShapesWorld scenes: a captioned grid and a one-scene card with boxes and QA."""
from __future__ import annotations

import textwrap


def _new_figure(figsize):
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")  # no pyplot: no global state, no GUI backend needed


def _draw_boxes(ax, objects, lw: float = 1.5):
    from matplotlib.patches import Rectangle

    for o in objects:
        x0, y0, x1, y1 = o.box
        # pixel (x, y) covers [x - 0.5, x + 0.5] in imshow coordinates
        ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec="black", lw=lw, ls="--"))


def scene_grid(scenes, cols: int = 8, boxes: bool = False, captions: bool = True, ax=None):
    """Show scenes in a grid with wrapped captions under each image. Returns the Figure."""
    scenes = list(scenes)
    cols = max(1, min(cols, len(scenes) or 1))
    rows = max(1, -(-len(scenes) // cols))
    fig = _new_figure((1.9 * cols, (2.3 if captions else 1.9) * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for k, ax_ in enumerate(axes.flat):
        ax_.axis("off")
        if k >= len(scenes):
            continue
        s = scenes[k]
        ax_.imshow(s.image)
        if boxes:
            _draw_boxes(ax_, s.objects, lw=1)
        if captions:
            ax_.set_title("\n".join(textwrap.wrap(s.caption, 22)), fontsize=7)
    return fig


def scene_card(scene):
    """One scene: the image with object boxes, its caption, negative caption and QA pairs. Returns the Figure."""
    fig = _new_figure((8, 3.6))
    ax_img, ax_txt = fig.subplots(1, 2, width_ratios=[1, 1.4])
    ax_img.imshow(scene.image)
    _draw_boxes(ax_img, scene.objects)
    for o in scene.objects:
        ax_img.text(o.box[0], o.box[1] - 1, o.name, fontsize=7, va="bottom")
    ax_img.axis("off")
    lines = [f"caption:  {scene.caption}", f"negative ({scene.negative_kind}):  {scene.negative}", ""]
    lines += [f"[{q.kind}] {q.question}  ->  {q.answer}" for q in scene.qa]
    ax_txt.axis("off")
    ax_txt.text(0, 1, "\n".join(textwrap.fill(l, 60) for l in lines), va="top", fontsize=8, family="monospace")
    return fig
