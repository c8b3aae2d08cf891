"""Framing a picture for a model: padding a thin one (fit_aspect), finding its content against its background
(edge_colour, content_box, content_window), and repainting a one-colour background in ShapesWorld's plain grey
for the bundled models (plain_background). mmkit.domain.fit_picture_at puts them together."""
from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageChops

MAX_ASPECT = 5  # models get thinner images padded with white to this width:height (or height:width) ratio
STEP = 40  # how far (in some channel, 0-255) a pixel's colour must be from the background's to count as content


def fit_aspect(im: Image.Image, max_ratio: float = MAX_ASPECT, fill="white") -> Image.Image:
    """Pad an image that is wider (or taller) than max_ratio : 1, centred, to that ratio.

    Model processors resize the shorter side to a fixed size and cap the longer one, which would shrink
    the short side of a thin image (e.g. 1x5000) to zero pixels; tasks and attention_maps call this before them.
    fill: "white", or "border" for the median colour of the picture's edge pixels (its background, mostly).
    """
    w, h = im.size
    if max(w, h) <= max_ratio * min(w, h):
        return im
    size = (w, _ceil(w / max_ratio)) if w > h else (_ceil(h / max_ratio), h)  # the short side grows
    if fill == "border":
        colour = tuple(int(v) for v in edge_colour(np.asarray(im)))
    else:
        colour = (255, 255, 255)
    canvas = Image.new("RGB", size, colour)
    canvas.paste(im, pad_offset(im.size, size))
    return canvas


def _edge_pixels(im: Image.Image) -> np.ndarray:
    """The (2W + 2H, 3) RGB pixels along a picture's four edges, read without converting the whole picture."""
    w, h = im.size
    strips = [im.crop(b) for b in ((0, 0, w, 1), (0, h - 1, w, h), (0, 0, 1, h), (w - 1, 0, w, h))]
    return np.concatenate([np.asarray(s.convert("RGB")).reshape(-1, 3) for s in strips])


def edges_of(a: np.ndarray) -> np.ndarray:
    """The (2W + 2H, 3) pixels along the four edges of a picture's pixels (H, W, 3)."""
    return np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])


def edge_colour(a: np.ndarray) -> np.ndarray:
    """The median colour of a picture's edge pixels, (H, W, 3) -> (3,): its background, mostly."""
    return np.median(edges_of(a), axis=0)


def content_box(im: Image.Image, side: int = 96, step: int = STEP):
    """(box, edge colour): the box (x0, y0, x1, y1), in the picture's pixels, around its content, what differs
    from its edge colour (the median of its edge pixels, an RGB tuple) by more than `step` in some channel, read
    on a copy at most `side` pixels long (so it errs by up to one of that copy's pixels, outward); the box is
    None when nothing differs."""
    rgb = im.convert("RGB") if im.mode != "RGB" else im
    w, h = rgb.size
    k = min(1.0, side / max(w, h))
    small = np.asarray(rgb.resize((max(1, round(w * k)), max(1, round(h * k))), Image.BOX, reducing_gap=2.0))
    fill = edge_colour(small)
    content = np.abs(small.astype(np.int16) - fill).max(-1) > step
    colour = tuple(int(c) for c in fill)
    if not content.any():
        return None, colour
    rows, cols = np.nonzero(content.any(1))[0], np.nonzero(content.any(0))[0]
    sy, sx = h / small.shape[0], w / small.shape[1]
    return (cols[0] * sx, rows[0] * sy, (cols[-1] + 1) * sx, (rows[-1] + 1) * sy), colour


def content_window(im: Image.Image, max_ratio: float) -> tuple[int, int, int, int] | None:
    """For a picture wider (or taller) than max_ratio : 1, the box of a max_ratio : 1 window along its long side
    that holds all its content (content_box), centred on it as far as the picture allows; None when the picture
    is within the ratio, has no content, or its content does not fit in such a window."""
    w, h = im.size
    if max(w, h) <= max_ratio * min(w, h):
        return None
    box, _ = content_box(im)
    if box is None:
        return None
    wide = w > h
    length, across = (w, h) if wide else (h, w)
    window = min(length, _ceil(max_ratio * across - 1e-6))
    lo, hi = (box[0], box[2]) if wide else (box[1], box[3])
    if hi - lo > window:
        return None
    start = int(round(min(max((lo + hi - window) / 2, 0), length - window)))
    return (start, 0, start + window, h) if wide else (0, start, w, start + window)


def _ceil(x: float) -> int:
    return int(math.ceil(x - 1e-9))  # 400 / (4 / 3) is 300.00000000000006 in floats: 300, not 301


def pad_offset(size: tuple[int, int], padded: tuple[int, int]) -> tuple[int, int]:
    """(x, y) of a picture of `size` inside the `padded` canvas fit_aspect centres it in."""
    return (padded[0] - size[0]) // 2, (padded[1] - size[1]) // 2


def plain_background(im: Image.Image, colour=(240, 240, 240), step: int = STEP, share: float = 0.9):
    """(picture, True) with its background repainted in `colour` when it has a one-colour background; (im, False)
    for any other picture, or when its background is `colour` already.

    A one-colour background: `share` of the edge pixels lie within `step` of their median colour, and of the
    pixels further than that from it (the content) at least half lie further than 2 * step: solid shapes on a
    flat ground. A gradient, noise or a photo leaves mostly pixels just past `step` (the ground varying), and
    repainting around them drew blobs that the captioner called shapes. Every pixel within `step` of the
    ground's colour is repainted; the rest (the shapes, and the blend at their edges) is kept.

    The bundled models learnt the plain look best: on ShapesWorld's dark backgrounds shapes-blip-vqa answered
    the colour and shape questions right 0.55 of the time as drawn and 0.93 repainted (data/models/
    ROBUSTNESS_BOUND.md); mmkit.domain.fit_picture_at gives them pictures so."""
    fill = ground_colour(im, step, share)
    if fill is None or np.abs(fill - colour).max() <= 2:
        return im, False
    rgb_im = im.convert("RGB") if im.mode != "RGB" else im
    dist = _distance(rgb_im, fill)  # each pixel's largest channel difference from the ground's colour, 0-255
    if ground_varies(dist.histogram(), step):
        return im, False
    near = dist.point([255 if v <= step else 0 for v in range(256)], "1")
    return Image.composite(Image.new("RGB", rgb_im.size, tuple(colour)), rgb_im, near), True


def ground_colour(im: Image.Image, step: int = STEP, share: float = 0.9) -> np.ndarray | None:
    """The median colour (3,) of a picture's edge pixels when `share` of them lie within `step` of it (the first
    test of a one-colour background, plain_background's); None when they do not."""
    return edge_ground(_edge_pixels(im), step, share)


def edge_ground(edge: np.ndarray, step: int = STEP, share: float = 0.9) -> np.ndarray | None:
    """ground_colour's test on a picture's edge pixels (n, 3), in any order."""
    edge = edge.astype(np.int16)
    fill = np.median(edge, axis=0)
    return fill if np.mean(np.abs(edge - fill).max(-1) <= step) >= share else None


def ground_varies(counts, step: int = STEP) -> bool:
    """The second test (plain_background's): given the 256-bin histogram of the pixels' distances from the edge
    colour (_distance), True when under half of the pixels further than `step` lie further than 2 * step, as on a
    gradient, noise or a photo, where solid shapes on a flat ground leave most content far from it."""
    content, far = int(np.sum(counts[step + 1:])), int(np.sum(counts[2 * step + 1:]))  # a list or an array
    return bool(content) and far < 0.5 * content


_LEVELS = np.arange(256, dtype=np.float64)


def _tables(fill: np.ndarray) -> np.ndarray:
    """(3, 256) uint8: for each channel, each level's difference from `fill`'s, rounded."""
    return np.minimum(255, np.abs(_LEVELS[None] - np.asarray(fill, np.float64)[:, None]) + 0.5).astype(np.uint8)


def _distance(rgb: Image.Image, fill: np.ndarray) -> Image.Image:
    """A mode "L" picture of each pixel's largest channel difference from `fill` (PIL's C loops: a 12 MP photo
    takes about 0.1 s, where numpy took 1 s)."""
    r, g, b = (band.point(table.tolist()) for table, band in zip(_tables(fill), rgb.split()))
    return ImageChops.lighter(ImageChops.lighter(r, g), b)


def distance_array(a: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """_distance of a small picture's pixels (h, w, 3) uint8, as an (h, w) uint8 array: numpy's lookups, about
    20 us on 64 x 64 pixels against PIL's 60 us (PIL's calls are faster from about 256 x 256 pixels on)."""
    r, g, b = _tables(fill)
    return np.maximum(np.maximum(r[a[..., 0]], g[a[..., 1]]), b[a[..., 2]])
