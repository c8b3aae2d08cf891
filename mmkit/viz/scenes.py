"""Figures of ShapesWorld scenes: a captioned grid and a one-scene card with boxes and QA."""
from __future__ import annotations

import textwrap

from .text import plain


def new_figure(figsize):
    """A Figure with constrained layout, built without pyplot: no global state, no GUI backend needed."""
    from matplotlib.figure import Figure

    _display_in_ipython()
    return Figure(figsize=figsize, layout="constrained")


def _display_in_ipython() -> None:
    """Make IPython show pyplot-free Figures as PNG.

    The inline backend registers its PNG formatter only once pyplot is imported; in a fresh kernel a
    Figure returned by mmkit would otherwise show as "<Figure size ...>" text.
    """
    import sys

    if "IPython" not in sys.modules:
        return
    from IPython import get_ipython

    ip = get_ipython()
    if ip is None or not hasattr(ip, "display_formatter"):
        return
    from matplotlib.figure import Figure

    png = ip.display_formatter.formatters["image/png"]
    try:
        png.lookup_by_type(Figure)  # already shown (the inline backend, or an earlier call)
    except KeyError:
        from IPython.core.pylabtools import print_figure

        png.for_type(Figure, lambda fig: print_figure(fig, "png", bbox_inches="tight"))


def draw_boxes(ax, objects, lw: float = 1.5, offset=(0, 0)):
    """Each object's box drawn dashed, moved by offset = (x, y) (where its picture lies in a padded one)."""
    from matplotlib.patches import Rectangle

    for o in objects:
        x0, y0, x1, y1 = o.box[0] + offset[0], o.box[1] + offset[1], o.box[2] + offset[0], o.box[3] + offset[1]
        # pixel (x, y) covers [x - 0.5, x + 0.5] in imshow coordinates
        ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec="black", lw=lw, ls="--"))


def image_grid(images, titles=None, cols: int = 8, size: float = 1.9, wrap: int = 22):
    """Show images in a grid, each with an optional wrapped title. Returns the Figure.

    Args:
        images: a list of PIL images or arrays, or a dict {title: image}.
        titles: one string per image (ignored for a dict).
    """
    if isinstance(images, dict):
        titles, images = list(images), list(images.values())
    images = list(images)
    cols = max(1, min(cols, len(images) or 1))
    rows = max(1, -(-len(images) // cols))
    fig = new_figure((size * cols, (size + (0.4 if titles else 0)) * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for k, ax_ in enumerate(axes.flat):
        ax_.axis("off")
        if k < len(images):
            ax_.imshow(images[k])
            if titles:
                ax_.set_title(plain("\n".join(textwrap.wrap(str(titles[k]), wrap))), fontsize=7)
    return fig


def scene_grid(scenes, cols: int = 8, boxes: bool = False, captions: bool = True):
    """Show scenes in a grid with wrapped captions under each image (and their boxes). Returns the Figure."""
    scenes = list(scenes)
    fig = image_grid([s.image for s in scenes], [s.caption for s in scenes] if captions else None, cols=cols)
    if boxes:
        for ax_, s in zip((a for a in fig.axes if a.images), scenes):
            draw_boxes(ax_, s.objects, lw=1)
    return fig


def scene_card(scene):
    """One scene: the image with object boxes, its caption, negative caption and QA pairs. Returns the Figure."""
    fig = new_figure((8, 3.6))
    ax_img, ax_txt = fig.subplots(1, 2, width_ratios=[1, 1.4])
    ax_img.imshow(scene.image)
    draw_boxes(ax_img, scene.objects)
    for o in scene.objects:
        ax_img.text(o.box[0], o.box[1] - 1, plain(o.name), fontsize=7, va="bottom")
    ax_img.axis("off")
    lines = [f"caption:  {scene.caption}", f"negative ({scene.negative_kind}):  {scene.negative}", ""]
    lines += [f"[{q.kind}] {q.question}  ->  {q.answer}" for q in scene.qa]
    ax_txt.axis("off")
    ax_txt.text(0, 1, plain("\n".join(textwrap.fill(l, 60) for l in lines)), va="top", fontsize=8, family="monospace")
    return fig
