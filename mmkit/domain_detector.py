"""The picture check's detector (mmkit.domain runs it): a tiny CNN that scores whether a picture shows ShapesWorld-like
coloured shapes, read on a 40 x 40 thumbnail (data/models/shapes-domain, trained by scripts/build_domain.py); a
second look at a flagged picture's content, cropped (second_look); and the count of its shapes on the same
thumbnails (count_shapes)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

SIDE = 40  # thumbnail side the detector reads (the default; a saved detector records its own)
CHANNELS = (16, 32, 32, 32)  # its four convolutions' widths (likewise)
THUMBNAIL = "nearest2-box"  # how the thumbnail is made: "box", or "nearest2-box" (likewise)
DETECTOR_DIR = Path(__file__).resolve().parents[1] / "data" / "models" / "shapes-domain"


def detector_module(side: int = SIDE, channels=CHANNELS, thumbnail: str = THUMBNAIL):
    """The detector's network, untrained: four 3x3 convolutions (the first two strided), max- and mean-pooled,
    one logit. It reads `side` x `side` thumbnails made by `thumbnail` (kept on the module as .side, .thumbnail)."""
    import torch
    from torch import nn

    c1, c2, c3, c4 = channels

    class ShapesDetector(nn.Module):
        def __init__(self):
            super().__init__()
            self.side, self.channels, self.thumbnail = int(side), tuple(int(c) for c in channels), thumbnail
            self.features = nn.Sequential(
                nn.Conv2d(3, c1, 3, stride=2, padding=1), nn.ReLU(),  # (B, c1, side/2, side/2)
                nn.Conv2d(c1, c2, 3, stride=2, padding=1), nn.ReLU(),  # (B, c2, side/4, side/4)
                nn.Conv2d(c2, c3, 3, stride=1, padding=1), nn.ReLU(),  # (B, c3, side/4, side/4)
                nn.Conv2d(c3, c4, 3, stride=1, padding=1), nn.ReLU(),  # (B, c4, side/4, side/4)
            )
            self.head = nn.Linear(2 * c4, 1)

        def forward(self, x):  # x: (B, 3, side, side) in [-0.5, 0.5]
            f = self.features(x)  # (B, c4, side/4, side/4)
            pooled = torch.cat([f.amax(dim=(2, 3)), f.mean(dim=(2, 3))], dim=1)  # (B, 2 * c4)
            return self.head(pooled)[:, 0]  # (B,) logit of "shows coloured shapes"

    return ShapesDetector()


def _thumbnail(im, side: int, how: str):
    from PIL import Image

    im = im.convert("RGB") if im.mode != "RGB" else im
    if how == "nearest2-box":  # sample a 2*side grid first: a big picture costs what a small one does
        if im.width > 2 * side or im.height > 2 * side:
            im = im.resize((2 * side, 2 * side), Image.NEAREST)
    elif how != "box":
        raise ValueError(f"unknown thumbnail method {how!r}; expected 'box' or 'nearest2-box'")
    return im.resize((side, side), Image.BOX)


def thumbnails(images, side: int = SIDE, how: str = THUMBNAIL) -> np.ndarray:
    """RGB PIL images -> (N, 3, side, side) float32 in [-0.5, 0.5]; `how`: "box" (a box-filtered resize) or
    "nearest2-box" (a big picture sampled on a grid of twice the side first, then box-filtered)."""
    return np.ascontiguousarray(_thumbnail_tensor(images, side, how).numpy())


def _pixels(images, side: int, how: str) -> np.ndarray:
    return np.stack([np.asarray(_thumbnail(im, side, how)) for im in images])  # (N, side, side, 3) uint8


def _thumbnail_tensor(images, side: int, how: str, pixels: np.ndarray | None = None):
    import torch

    pixels = _pixels(images, side, how) if pixels is None else pixels
    # (N, 3, side, side) in [-0.5, 0.5], left in the channels-last layout it has: the detector runs in it
    return torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div_(255.0).sub_(0.5)


@lru_cache(maxsize=1)
def load_detector(path: str | None = None):
    """(module in eval mode, threshold) from a saved detector folder (DETECTOR_DIR when None); None when missing."""
    import json

    import torch
    from safetensors.torch import load_file

    folder = Path(path) if path else DETECTOR_DIR
    if not (folder / "model.safetensors").exists():
        return None
    meta = json.loads((folder / "mmkit.json").read_text())
    net = detector_module(meta.get("side", 56), meta.get("channels", (32, 64, 64, 64)), meta.get("thumbnail", "box"))
    net.load_state_dict(load_file(str(folder / "model.safetensors")))
    net.eval().to(memory_format=torch.channels_last)  # its convolutions run faster that way (0.55 vs 0.68 ms for 32)
    return net, float(meta["threshold"])


def shape_scores(images, detector=None, pixels: np.ndarray | None = None) -> np.ndarray:
    """P(the picture shows ShapesWorld-like coloured shapes) for each RGB PIL image: (N,) in [0, 1].

    Args:
        detector: (module, threshold) as load_detector returns it; the bundled one when None.
        pixels: the images' thumbnails as the detector reads them, when already made ((N, side, side, 3) uint8).
    """
    import torch

    loaded = detector or load_detector()
    if loaded is None:
        raise FileNotFoundError(f"the shapes-domain detector is missing from {DETECTOR_DIR}; run scripts/build_domain.py")
    net, _ = loaded
    with torch.inference_mode():
        return torch.sigmoid(net(_thumbnail_tensor(images, net.side, net.thumbnail, pixels))).numpy()


ZOOM = 2.5  # a second look's crop side over its content's longer side: the content fills 40% of it


def content_crop(image, side: int = 160):
    """The picture's content, what differs from its edge colour, in a square ZOOM times its size around it,
    continued with the edge colour where it runs past the picture, at most side x side pixels; None when
    there is no content, or when the crop would cover more than 40% of the picture (it would show little more)."""
    from PIL import Image

    from .data.framing import content_box

    rgb = image.convert("RGB") if image.mode != "RGB" else image
    w, h = rgb.size
    box, fill = content_box(rgb)
    if box is None:
        return None
    x0, y0, x1, y1 = box
    span = max(y1 - y0, x1 - x0) * ZOOM
    if span * span > 0.4 * w * h:
        return None
    left, top = (x0 + x1 - span) / 2, (y0 + y1 - span) / 2
    out = min(side, max(1, int(np.ceil(span))))
    scale = out / span
    crop = Image.new("RGB", (out, out), fill)
    inside = (max(0.0, left), max(0.0, top), min(float(w), left + span), min(float(h), top + span))
    size = (max(1, round((inside[2] - inside[0]) * scale)), max(1, round((inside[3] - inside[1]) * scale)))
    crop.paste(rgb.resize(size, Image.BOX, box=inside, reducing_gap=2.0),
               (round((inside[0] - left) * scale), round((inside[1] - top) * scale)))
    return crop


def second_look(images, flags: list[bool], detector) -> list[bool]:
    """The flags after a second look at each flagged picture's content (content_crop). The detector reads a 40 px
    thumbnail, so a shape under about a fifth of the picture's side shrinks to a few pixels there: drawings of one
    shape on 512 x 512, 300 x 200 and 1000 x 700 sheets passed 0.44 of the time (1 of 216 under an eighth of the
    side), and all 540 with the second look; on the held-out pictures it flags (photos, text, charts, no-shape scenes) it
    flags the same share (scripts/build_domain.py writes both in data/models/shapes-domain/README.md). Only flagged
    pictures are looked at again, so a shapes picture costs nothing more."""
    which = [i for i, f in enumerate(flags) if f]
    crops = {i: c for i in which if (c := content_crop(images[i])) is not None}
    if not crops:
        return list(flags)
    again = shape_scores(list(crops.values()), detector)
    out = list(flags)
    for i, score in zip(crops, again):
        out[i] = bool(score < detector[1])
    return out


_ONE_PICTURE = np.zeros((3, 3, 3), bool)  # 4-connected within a picture, never across pictures of a stack
_ONE_PICTURE[1] = [[0, 1, 0], [1, 1, 1], [0, 1, 0]]


def count_shapes(images) -> list[int]:
    """How many filled shapes in ShapesWorld's red, green or blue each RGB PIL image seems to show.

    A cheap reading, not a model, of the thumbnails the detector reads (40 x 40): the pixels near each object
    colour's hue (within 0.08 of the hue circle, saturation >= 0.45, value >= 0.2) are grouped into connected
    regions; a region counts as a shape when it covers at least 0.8% of the picture, fills at least 40% of its
    bounding box and does not touch the picture's edge (a background runs off it; so a shape touching the edge is
    not counted either). Shapes of one colour that touch count as one. On 100 scenes (split "test") of each of the 13
    looks, 'more than two' is said of 2.4% of scenes with one or two shapes (12% on the photo-test backgrounds) and
    of 92.5% of scenes with three or four (73% on photo-test); drawings of one to four shapes on plain sheets are
    counted right. It costs about 1.4 ms for 32 thumbnails (benchmarks/domain.py)."""
    return [int(c) for c in _count(_pixels(images, SIDE, THUMBNAIL))] if images else []


@lru_cache(maxsize=1)
def _hue_sectors() -> list[tuple[int, int, int, float]]:
    """For each object colour: (its largest channel, channels a and b, k) with its hue = (sector + (x_a - x_b) / c) / 6
    in that channel's sector, k the value of (x_a - x_b) / c at the colour's own hue (c = largest - smallest)."""
    import colorsys

    from .data.styles import OBJECT_RGB

    out = []
    for rgb in OBJECT_RGB:
        h6 = colorsys.rgb_to_hsv(*(np.array(rgb) / 255))[0] * 6
        top = int(round(h6 / 2)) % 3  # 0 red, 1 green, 2 blue: the sector the colour's hue lies in
        a, b = ((1, 2), (2, 0), (0, 1))[top]
        out.append((top, a, b, (h6 - 2 * top + 3) % 6 - 3))
    return out


def _count(pixels: np.ndarray) -> np.ndarray:
    """count_shapes on thumbnails (N, S, S, 3) uint8: (N,) counts; the three colours are labelled in one stack."""
    from scipy import ndimage

    x = pixels.astype(np.int16)
    ch = (x[..., 0], x[..., 1], x[..., 2])
    top = np.maximum(np.maximum(ch[0], ch[1]), ch[2])
    c = top - np.minimum(np.minimum(ch[0], ch[1]), ch[2])
    vivid = (c >= 0.45 * top) & (top >= 0.2 * 255)  # saturation and value
    # within 0.08 of a colour's hue: |(x_a - x_b) / c - k| < 6 * 0.08, in the sector of its largest channel
    near = np.concatenate([vivid & (top == ch[t]) & (np.abs(ch[a] - ch[b] - k * c) < 0.48 * c)
                           for t, a, b, k in _hue_sectors()])  # (3N, S, S)
    n, side = len(pixels), pixels.shape[1]
    counts = np.zeros(n, int)
    labels, found = ndimage.label(near, _ONE_PICTURE)
    if not found:
        return counts
    area = np.bincount(labels[near], minlength=found + 1)[1:]  # (found,) pixels of each region
    boxes = ndimage.find_objects(labels)
    for i in np.nonzero(area >= 0.008 * side * side)[0]:
        picture, rows, cols = boxes[i]
        if 0 in (rows.start, cols.start) or side in (rows.stop, cols.stop):
            continue
        if area[i] >= 0.4 * (rows.stop - rows.start) * (cols.stop - cols.start):
            counts[picture.start % n] += 1
    return counts
