"""Is this picture a shapes scene? The cheap check a bundled model runs on its pictures first (mmkit.domain_words
checks the words it is given).

The bundled models only know ShapesWorld: red, green and blue circles, squares and triangles on some
background. Given a photo or a screenshot they still answer, confidently and wrongly. A tiny CNN (about
24k parameters on a 40 x 40 thumbnail, data/models/shapes-domain, trained by scripts/build_domain.py) scores
whether a picture shows such shapes; where it does not, the task emits `mmkit.OutOfDomainWarning` and
still returns its result. A flagged picture gets a second look at its
content, cropped (second_look): a small shape on a big sheet is a few pixels in the detector's thumbnail; one still
flagged is read again as the bundled models see it, its one-colour background repainted (repainted_look). A picture
that seems to show more than two shapes (count_shapes) gets the warning too: the models learnt from scenes of one
or two, and answer 'two' to a count of three or four; so does one with a square or triangle turned further than the
training looks turn them (turned_shapes, on one-colour backgrounds: a square at 45 degrees is a circle to all six
models). A bundled model also gets a picture wider than 4:3 cropped
around its content (fit_picture_at). A model fine-tuned from a bundled one is checked as its base is, with the words
fine-tuning taught it known (mmkit.domain_notices.finetuned_from, which also writes what the notices say); it gets pictures as given, as it was trained. Pretrained models are never
checked; MMKIT_DOMAIN_CHECK=0 turns the checks off.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path

import numpy as np

from .domain_notices import (colour_notice, crowd_notice, finetuned_from, picture_notice, small_notice,
                             turned_notice)

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


def out_of_domain(images, pixels: np.ndarray | None = None, detector=None) -> list[bool]:
    """For each RGB PIL image: True when the detector finds no ShapesWorld-like shapes in it, at first sight, on
    a second look at its content (second_look), or read as a bundled model is given it (repainted_look). pixels:
    the images' thumbnails, when already made; detector: (module, threshold), the bundled one when None."""
    loaded = detector or load_detector()
    if loaded is None:
        return [False] * len(images)
    flags = second_look(images, [bool(s < loaded[1]) for s in shape_scores(images, loaded, pixels)], loaded)
    return repainted_look(images, flags, loaded)


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


def as_repainted(image):
    """The picture as fit_picture_at gives it a bundled model when it has a one-colour background: that background
    repainted in the plain grey, cropped to 4:3 around its content where that fits; None for any other picture
    (a photo stops at its edges, which cost little to read). The bundled captioner's padding to 4:3 is left out:
    a photo crop padded with its edge colour got repainted into blotches the detector passed."""
    from .data.framing import content_window, plain_background
    from .data.styles import TRAINED_ASPECT

    picture, done = plain_background(image)
    if not done:
        return None
    window = content_window(image, TRAINED_ASPECT)
    return picture.crop(window) if window is not None else picture


def repainted_look(images, flags: list[bool], detector) -> list[bool]:
    """The flags after reading each flagged picture again as the bundled models see it (as_repainted), with its
    own second look. A shape on a dark sheet of its own hue (a blue circle on navy) was flagged as given and named
    right by every bundled model, which gets it on grey: of 40 drawings of one or two shapes on navy, dark-green
    and maroon sheets 28 were flagged as given, 3 so (on black and white sheets 2 of 20, then none). Sheets the
    repaint leaves as they are (plain_background: shapes within 80 of a royal-blue, forest or crimson ground)
    stay flagged: 23 of 30, 25 before. Repainted, a sheet with no shapes or with text is grey with no shapes and
    still flagged (49 of 49); the held-out pictures it flags are flagged as often as before, and up to 6 points
    more of the held-out scenes pass (data/models/shapes-domain/README.md). Only flagged pictures with one-colour
    backgrounds are read again, and none while REPAINT is off."""
    which = [i for i, f in enumerate(flags) if f] if REPAINT else []
    seen = {i: p for i in which if (p := as_repainted(images[i])) is not None}
    if not seen:
        return list(flags)
    pictures = list(seen.values())
    again = second_look(pictures, [bool(s < detector[1]) for s in shape_scores(pictures, detector)], detector)
    out = list(flags)
    for i, flag in zip(seen, again):
        out[i] = flag
    return out


def is_bundled(spec) -> bool:
    """Whether a model spec is one of the bundled ShapesWorld models: by name, or by its folder in data/models."""
    if spec.source == "bundled":
        return True
    if spec.source != "path":
        return False
    from .config import models_dir

    try:
        return Path(spec.repo).resolve().parent == models_dir().resolve()
    except (OSError, ValueError):
        return False


PADDED_FAMILIES = ("blip-caption",)  # the bundled models fit_picture pads to TRAINED_ASPECT


def fit_picture(m, image):
    """The picture as the model is given it (fit_picture_at without the offset)."""
    return fit_picture_at(m, image)[0]


def fit_picture_at(m, image, repaint: bool = True):
    """(the picture as the model is given it, (x, y) of the given picture inside it).

    A bundled model gets a picture wider (or taller) than 4:3, the widest canvas the bundled models trained on,
    cropped along its long side to a 4:3 window around its content (what differs from its edge colour) when the
    content fits in one: the processors squeeze every picture into a square, and a shape squeezed out of its
    proportions was named wrong. On 810 drawings of one shape with PIL on sheets from square to 4:1, cropping
    lifted every bundled model against the picture as given: captions 0.80 -> 0.96 right, shapes-clip 0.72 ->
    0.84, shapes-align 0.82 -> 0.99, shapes-blip-vqa 0.70 -> 0.78, shapes-vilt-vqa 0.78 -> 0.82, shapes-blip-itm
    0.69 -> 0.81 (data/models/ROBUSTNESS_BOUND.md, `aspect`). The crop keeps the short side, so the shapes keep
    their size against it. When the content does not fit, the bundled captioner gets the picture padded to 4:3
    with its edge colour (0.80 -> 0.86 on those drawings), the other models the picture as it is (padding moved
    their scores by -0.05 to +0.04). Other models only get very thin pictures padded (fit_aspect). The offset is
    negative along a cropped side. A model fine-tuned from a bundled one gets pictures as other models do: it was
    fine-tuned on them as given (mmkit.tuning.losses hands them to the processor), not cropped or repainted.

    With `repaint` (the default; and while mmkit.domain.REPAINT is on), a bundled model then gets a one-colour
    background repainted in ShapesWorld's plain grey (mmkit.data.framing.plain_background): the plain look is the one the bundled models learnt
    best, and on dark backgrounds they named shapes far more often so (ROBUSTNESS_BOUND.md, "repainted").
    attention_maps draws its maps on the picture before this step, which has the same pixels' places.
    """
    from .data.framing import content_window, fit_aspect, pad_offset
    from .data.styles import TRAINED_ASPECT

    spec = getattr(m, "spec", None)
    if spec is None or not is_bundled(spec):
        fitted = fit_aspect(image)
        return fitted, pad_offset(image.size, fitted.size)
    window = content_window(image, TRAINED_ASPECT)
    if window is not None:
        fitted, offset = image.crop(window), (-window[0], -window[1])
    else:
        fitted = (fit_aspect(image, TRAINED_ASPECT, fill="border") if spec.family in PADDED_FAMILIES
                  else fit_aspect(image))
        offset = pad_offset(image.size, fitted.size)
    return (repainted(m, fitted)[0] if repaint else fitted), offset


REPAINT = True  # False gives the bundled models one-colour backgrounds as drawn (to compare; see fit_picture_at)


def repainted(m, image) -> tuple:
    """(the picture with its one-colour background repainted in the plain grey, True) for a bundled model while
    REPAINT is on (see fit_picture_at); (image, False) for other models and pictures."""
    from .data.framing import plain_background

    spec = getattr(m, "spec", None)
    return plain_background(image) if REPAINT and spec is not None and is_bundled(spec) else (image, False)


def checked(m) -> bool:
    """Whether the domain checks apply to a model: a bundled one, or one fine-tuned from a bundled one
    (finetuned_from), unless MMKIT_DOMAIN_CHECK=0."""
    import os

    spec = getattr(m, "spec", None)
    return (spec is not None and os.environ.get("MMKIT_DOMAIN_CHECK") != "0"
            and (is_bundled(spec) or finetuned_from(spec) is not None))


MOST_SHAPES = 2  # the most shapes a scene the bundled models learnt from holds (ShapesWorld's objects=(1, 2))
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


def shape_readings(images, flags: list[bool]) -> list[list]:
    """Per picture, what reading its shapes on a one-colour background finds (one pass, mmkit.data.turns.
    ground_shapes): the squares and triangles turned past mmkit.data.turns.TURN_LIMIT (ShapeTurn), the shapes in
    colours ShapesWorld never draws (mmkit.data.hues.OddColour), and, when all its shapes are smaller than
    ShapesWorld draws them, each of them (SmallShape); [] for a picture the detector flags, where nothing more is
    said, and for other backgrounds."""
    from .data.hues import odd_colours
    from .data.turns import TURN_LIMIT, ground_shapes, small_shapes, turned_shapes

    out = []
    for im, flag in zip(images, flags):
        found = None if flag else ground_shapes(im)
        out.append([] if found is None else (turned_shapes(im, TURN_LIMIT, found) or []) +
                   (odd_colours(im, found) or []) + (small_shapes(im, found) or []))
    return out


_CALLER_CHECKED = ContextVar("mmkit_pictures_checked_by_caller", default=False)


@contextmanager
def pictures_checked():
    """Within it, task functions leave out their picture check (words are still checked): the caller has checked
    the pictures it made these from. search_video scores each frame's four masked halves; a half that masks the
    frame's one shape away is not a picture given without shapes, and was warned about as one."""
    token = _CALLER_CHECKED.set(True)
    try:
        yield
    finally:
        _CALLER_CHECKED.reset(token)


def picture_readings(m, images) -> tuple[list[bool], list[int], list[list]]:
    """(per-image out-of-domain flags, per-image shape counts, per-image readings of the shapes: turned, in other
    colours or small (shape_readings)) of the pictures a bundled model is given; nothing for models that are not
    checked, or inside pictures_checked()."""
    if not checked(m) or not images or _CALLER_CHECKED.get():
        return [False] * len(images), [0] * len(images), [[] for _ in images]
    net = (load_detector() or (None,))[0]
    pixels = _pixels(images, net.side, net.thumbnail) if net else _pixels(images, SIDE, THUMBNAIL)  # read once
    flags = out_of_domain(images, pixels)
    return flags, [int(c) for c in _count(pixels)], shape_readings(images, flags)


def reading_notices(spec, flags: list[bool], counts: list[int], task: str = "result",
                    names: list[str] | None = None, shapes: list[list] | None = None) -> list[str]:
    """The messages a set of pictures' readings (picture_readings) give: one about those the detector flags, one
    about those that seem to show more than MOST_SHAPES shapes, one about those with a shape turned further than
    the models learnt, one about those whose shapes are all small, one about those with a shape in another colour
    (shapes: shape_readings; flagged pictures are neither counted nor read for shapes). spec: the model's
    ModelSpec, or the Loaded model (which names the words a fine-tune still in memory was taught)."""
    from .data.hues import OddColour
    from .data.turns import ShapeTurn, SmallShape

    crowded = [i for i, (f, c) in enumerate(zip(flags, counts)) if not f and c > MOST_SHAPES]

    small = [i for i, found in enumerate(shapes or ()) if any(isinstance(f, SmallShape) for f in found) and not flags[i]]
    turns = [[f for f in found if isinstance(f, ShapeTurn)] for found in shapes or ()]
    odd = [[f for f in found if isinstance(f, OddColour)] for found in shapes or ()]
    turned = [i for i, t in enumerate(turns) if t and not flags[i]]
    coloured = [i for i, o in enumerate(odd) if o and not flags[i]]
    said = []
    if any(flags):
        said.append(picture_notice(spec, [i for i, f in enumerate(flags) if f], len(flags), task, names))
    if crowded:
        said.append(crowd_notice(spec, crowded, [counts[i] for i in crowded], len(flags), task, names))
    if turned:
        said.append(turned_notice(spec, turned, [turns[i] for i in turned], len(flags), task, names))
    if small:
        said.append(small_notice(spec, small, len(flags), task, names))
    if coloured and finetuned_from(spec) is None:  # a fine-tune may have learnt the colour (notebook 13: orange)
        said.append(colour_notice(spec, coloured, [odd[i] for i in coloured], len(flags), task, names))
    return said


def picture_findings(m, images, task: str = "result") -> tuple[list[bool], list[str], list[list[str]]]:
    """What a bundled model's pictures get said of them: (per-image out-of-domain flags, the batch's messages,
    each picture's own one-picture messages). Pictures the detector flags are not counted."""
    flags, counts, shapes = picture_readings(m, images)
    own = [reading_notices(m, [f], [c], task, shapes=[t]) for f, c, t in zip(flags, counts, shapes)]  # [] if none
    return flags, reading_notices(m, flags, counts, task, shapes=shapes), own


def check(m, images, task: str = "result") -> list[bool]:
    """Warn (mmkit.OutOfDomainWarning) when a bundled model is given pictures with no ShapesWorld shapes, when it
    is given pictures that seem to show more shapes than its scenes held (count_shapes), and when a square or
    triangle seems turned further than its scenes turn them, and when a shape is in a colour they never drew
    (shape_readings).

    Args:
        m: the Loaded model; only bundled models (and fine-tunes of them) are checked.
        images: the RGB PIL images the task is about to run on.
        task: what the model returns, for the message ("caption", "answer", ...).
    Returns: the per-image out-of-domain flags (all False for models that are not checked).
    """
    from .errors import OutOfDomainWarning, warn

    flags, counts, shapes = picture_readings(m, images)  # each picture's own messages (picture_findings): not here
    for message in reading_notices(m, flags, counts, task, shapes=shapes):
        warn(message, OutOfDomainWarning)
    return flags


def notices_per_image(m, images, task: str, run):
    """Run a task over a batch of pictures and say which of its out-of-domain notices concern which picture.

    A notice about the words (a question, labels) concerns every picture; a notice about the pictures becomes
    a one-picture notice on each picture the detector flags (or that seems to show too many shapes), so a row of a
    table or a line of the CLI never carries another picture's index. A batch without notices costs nothing extra;
    one with notices costs one more detector pass and count.

    Args:
        m: the Loaded model.
        images: the RGB PIL images `run` works on.
        task: what the model returns, for the message ("caption", "answer", ...).
        run: a function of no arguments that runs the task on the batch and returns its result.
    Returns: (what `run` returned, one list of notice messages per picture).
    """
    from .notices import capture_notices

    with capture_notices() as said:
        result = run()
    if not said:
        return result, [[] for _ in images]
    if len(images) == 1:
        return result, [list(said)]
    _, pictures, own = picture_findings(m, images, task)  # the batch's notices about its pictures, and each one's
    shared = [n for n in said if n not in pictures]  # about the words: every picture's
    return result, [mine + shared for mine in own]
