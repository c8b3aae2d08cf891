"""Where ShapesWorld's shapes go and how one is drawn: footprint tests for a scene's layout, and the drawing
of a circle, square or triangle into its square footprint (used by the still and the video worlds)."""
from __future__ import annotations

from PIL import ImageDraw


def footprints_apart(p, q, gap: int) -> bool:
    """True when two square footprints (x, y, d) are at least `gap` pixels apart on some axis."""
    (x1, y1, d1), (x2, y2, d2) = p, q
    return x1 + d1 + gap <= x2 or x2 + d2 + gap <= x1 or y1 + d1 + gap <= y2 or y2 + d2 + gap <= y1


def clear_relation(p, q, S: int) -> bool:
    """True when one axis clearly dominates the displacement between two footprints' centres."""
    (x1, y1, d1), (x2, y2, d2) = p, q
    dx = abs((x1 + d1 / 2) - (x2 + d2 / 2))
    dy = abs((y1 + d1 / 2) - (y2 + d2 / 2))
    return max(dx, dy) >= 1.5 * min(dx, dy) and max(dx, dy) >= 0.2 * S


def draw_shape(draw: ImageDraw.ImageDraw, shape: str, x: int, y: int, d: int, fill) -> None:
    """Draw one shape inside the d x d square whose top-left corner is (x, y)."""
    if shape == "circle":
        draw.ellipse([x, y, x + d - 1, y + d - 1], fill=fill)
    elif shape == "square":
        m = int(round(d * 0.08))  # a square looks as big as a circle of the same footprint when a bit smaller
        draw.rectangle([x + m, y + m, x + d - 1 - m, y + d - 1 - m], fill=fill)
    else:
        draw.polygon([(x + (d - 1) / 2, y), (x, y + d - 1), (x + d - 1, y + d - 1)], fill=fill)
