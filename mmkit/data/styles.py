"""Looks for ShapesWorld: the same kind of scene drawn on many backgrounds, canvases and renderers.

A *style* names a family of looks; each scene draws its look's details (colours, canvas, edges, blur,
compression) from its own random stream, so the objects, captions and answers of a scene do not depend on
how it is drawn. `TRAIN_STYLES` are what the bundled models are trained on; `TEST_STYLES` are held out:
backgrounds (procedural textures, photos), canvas sizes and a renderer (hand-drawn shapes) never used in
training.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

STYLES = {  # name -> what it draws
    "plain": "the classic look: 64 px, a (240, 240, 240) background, hard edges",
    "light": "light backgrounds with a tint",
    "dark": "dark backgrounds",
    "solid": "any solid background colour far from the object colours",
    "gradient": "linear gradients between two background colours",
    "noise": "pixel noise and soft blotches over a background colour",
    "photo": "crops of training photos (bricks, grass, gravel, the moon, a page of text, ...)",
    "photo+": "crops of training photos, mirrored, hue-turned or with colour channels swapped",
    "texture": "held out: stripes, checks and dots",
    "photo-test": "held out: crops of photos never used in training (the sample photos among them)",
    "sketch": "held out: a hand-drawn renderer (wobbly outlined shapes)",
    "tiny": "held out: canvases of 32-40 px",
    "big": "held out: canvases of 320-512 px, up to 1.6:1",
}
TRAIN_STYLES = ("plain", "light", "dark", "solid", "gradient", "noise", "photo", "photo+")
FIRST_STYLES = TRAIN_STYLES[:-1]  # the first stage of the bundled models' training on many looks
TEST_STYLES = ("texture", "photo-test", "sketch", "tiny", "big")
TRAIN_BIG_SHAPES = 0.2  # share of the bundled models' stage-2 training scenes drawn with big shapes
TRAINED_ASPECT = 4 / 3  # the widest (or tallest) canvas the training styles draw: make_look's 0.75-1.33
GROUPS = {"train": TRAIN_STYLES, "test": TEST_STYLES, "all": tuple(STYLES)}
PLAIN_SHARE = 0.3  # share of "plain" scenes when a scene draws its style from a tuple that includes it
OBJECT_RGB = ((215, 40, 40), (35, 160, 60), (40, 80, 215))  # ShapesWorld's red, green, blue

# photos that ship with scikit-image / matplotlib (no downloads); training and held-out sets are disjoint
TRAIN_PHOTOS = (("skimage", "data/brick.png"), ("skimage", "data/grass.png"), ("skimage", "data/gravel.png"),
                ("skimage", "data/camera.png"), ("skimage", "data/moon.png"), ("skimage", "data/coins.png"),
                ("skimage", "data/hubble_deep_field.jpg"), ("skimage", "data/motorcycle_left.png"),
                ("skimage", "data/ihc.png"), ("skimage", "data/retina.jpg"), ("skimage", "data/page.png"),
                ("skimage", "data/text.png"), ("skimage", "data/logo.png"), ("skimage", "data/color.png"))
TEST_PHOTOS = (("skimage", "data/astronaut.png"), ("skimage", "data/chelsea.png"), ("skimage", "data/coffee.png"),
               ("skimage", "data/rocket.jpg"), ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
               ("skimage", "data/clock_motion.png"), ("skimage", "data/horse.png"))


def resolve(style) -> tuple[str, ...]:
    """The style names that `style` stands for: a name, a group ("train", "test", "all") or a list of names."""
    from ..errors import InputError

    if isinstance(style, str):
        names = GROUPS.get(style, (style,))
    elif isinstance(style, (list, tuple)):
        names = tuple(style)
    else:
        names = (style,)
    bad = [s for s in names if not isinstance(s, str) or s not in STYLES]
    if not names or bad:
        raise InputError(f"style={style!r}: use one of {sorted(STYLES)}, a group {sorted(GROUPS)}, or a list of names")
    return names


@dataclass
class Look:
    """How one scene is drawn."""

    style: str  # the style it came from
    width: int  # canvas width in pixels
    height: int  # canvas height in pixels
    edges: str = "hard"  # "hard" | "smooth" (anti-aliased) | "sketch" (hand-drawn)
    outline: tuple | None = None  # RGB of a stroke around each shape, or None
    rotate: float = 0.0  # largest rotation of squares and triangles, in degrees
    blur: float = 0.0  # Gaussian blur radius as a fraction of the canvas side (0 = none)
    jpeg: int = 0  # JPEG quality the finished picture goes through (0 = none)


def pick_style(names: tuple[str, ...], rng) -> str:
    """One style of `names`; "plain" gets PLAIN_SHARE of the scenes when it is among several."""
    if len(names) == 1:
        return names[0]
    if "plain" in names and rng.random() < PLAIN_SHARE:
        return "plain"
    others = [s for s in names if s != "plain"]
    return others[int(rng.integers(len(others)))]


def make_look(style: str, rng, side: int) -> Look:
    """Draw the details of one look of `style`; `side` is the canvas side asked for (plain keeps it)."""
    if style == "plain":
        return Look("plain", side, side)
    if style == "tiny":
        w = int(rng.integers(32, 41))
        h = w
    elif style == "big":
        w = int(rng.integers(320, 513))
        h = int(round(w / rng.uniform(1.0, 1.6)))
        w, h = (w, max(h, 200)) if rng.random() < 0.5 else (max(h, 200), w)
    else:
        w = int(rng.integers(48, 257))
        h = w if rng.random() < 0.5 else int(round(w * rng.uniform(0.75, 1.33)))
        h = max(48, h)
    edges = "sketch" if style == "sketch" else ("smooth" if rng.random() < 0.5 else "hard")
    outline = None
    if style == "sketch" or rng.random() < 0.25:
        v = int(rng.integers(0, 60)) if rng.random() < 0.7 else int(rng.integers(200, 256))
        outline = (v, v, v)
    rotate = float(rng.uniform(5, 20)) if rng.random() < 0.5 else 0.0
    blur = float(rng.uniform(0.004, 0.015)) if rng.random() < 0.3 else 0.0
    jpeg = int(rng.integers(30, 90)) if rng.random() < 0.35 else 0
    return Look(style, w, h, edges, outline, rotate, blur, jpeg)


# -- backgrounds ---------------------------------------------------------------------------------

def _far_from_objects(rgb) -> bool:
    return min(np.linalg.norm(np.subtract(rgb, o)) for o in OBJECT_RGB) > 140


def background_colour(rng, kind: str | None = None) -> tuple[int, int, int]:
    """A background colour: light, dark, or (kind "solid") any colour far from the object colours."""
    kind = kind or ("light", "dark", "solid")[int(rng.integers(3))]
    if kind == "light":
        base = rng.uniform(185, 250)
        return tuple(int(np.clip(base + rng.uniform(-14, 14), 0, 255)) for _ in range(3))
    if kind == "dark":
        base = rng.uniform(0, 65)
        return tuple(int(np.clip(base + rng.uniform(-12, 12), 0, 255)) for _ in range(3))
    for _ in range(200):
        rgb = tuple(int(v) for v in rng.integers(0, 256, size=3))
        if _far_from_objects(rgb):
            return rgb
    return (128, 128, 128)


def _gradient(rng, h: int, w: int) -> np.ndarray:
    a, b = np.array(background_colour(rng)), np.array(background_colour(rng))
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    t = np.cos(angle) * xs / max(w - 1, 1) + np.sin(angle) * ys / max(h - 1, 1)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)  # (H, W) in [0, 1]
    return a * (1 - t[..., None]) + b * t[..., None]  # (H, W, 3)


def _noise(rng, h: int, w: int) -> np.ndarray:
    base = np.array(background_colour(rng), np.float32)
    blotch = rng.normal(0, rng.uniform(8, 30), size=(4, 4, 3)).astype(np.float32)
    soft = np.asarray(Image.fromarray(np.uint8(np.clip(blotch + 128, 0, 255))).resize((w, h), Image.BICUBIC),
                      np.float32) - 128  # (H, W, 3) smooth variation
    return base + soft + rng.normal(0, rng.uniform(3, 22), size=(h, w, 3))


def _texture(rng, h: int, w: int) -> np.ndarray:
    a, b = np.array(background_colour(rng)), np.array(background_colour(rng))
    period = rng.uniform(4, 14) * max(h, w) / 64
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    kind = int(rng.integers(3))
    if kind == 0:  # stripes at any angle
        angle = rng.uniform(0, np.pi)
        on = (np.cos(angle) * xs + np.sin(angle) * ys) % period < period / 2
    elif kind == 1:  # checks
        on = ((xs // (period / 2)) + (ys // (period / 2))) % 2 == 0
    else:  # dots
        r = period * rng.uniform(0.15, 0.3)
        on = ((xs % period - period / 2) ** 2 + (ys % period - period / 2) ** 2) < r * r
    return np.where(on[..., None], a, b).astype(np.float32)


@lru_cache(maxsize=None)
def _photo(package: str, rel: str) -> np.ndarray:
    import importlib
    from pathlib import Path

    path = Path(importlib.import_module(package).__file__).parent / rel
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _photo_crop(rng, h: int, w: int, photos) -> np.ndarray:
    src = _photo(*photos[int(rng.integers(len(photos)))])
    H, W = src.shape[:2]
    scale = rng.uniform(0.3, 1.0)
    ch = max(8, min(H, int(scale * min(H, W * h / w))))
    cw = max(8, min(W, int(ch * w / h)))
    y0, x0 = int(rng.integers(0, H - ch + 1)), int(rng.integers(0, W - cw + 1))
    crop = Image.fromarray(src[y0:y0 + ch, x0:x0 + cw]).resize((w, h), Image.BILINEAR)
    return np.asarray(crop, np.float32)


def _varied(rng, a: np.ndarray) -> np.ndarray:
    """A photo crop mirrored (half the time), then hue-turned or channel-swapped: photos in colours no camera gave."""
    if rng.random() < 0.5:
        a = a[:, ::-1]
    if rng.random() < 0.5:
        return a[..., rng.permutation(3)].copy()
    hsv = np.asarray(Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).convert("HSV")).copy()
    hsv[..., 0] = (hsv[..., 0].astype(np.int16) + int(rng.integers(0, 256))) % 256
    return np.asarray(Image.fromarray(hsv, "HSV").convert("RGB"), np.float32)


def draw_background(look: Look, rng) -> np.ndarray:
    """The look's background as a float (H, W, 3) array in 0..255."""
    h, w, s = look.height, look.width, look.style
    if s in ("light", "dark", "solid"):
        return np.broadcast_to(np.array(background_colour(rng, s), np.float32), (h, w, 3)).copy()
    if s == "gradient":
        return _gradient(rng, h, w)
    if s == "noise":
        return _noise(rng, h, w)
    if s == "texture":
        return _texture(rng, h, w)
    if s == "photo":
        return _photo_crop(rng, h, w, TRAIN_PHOTOS)
    if s == "photo+":
        return _varied(rng, _photo_crop(rng, h, w, TRAIN_PHOTOS))
    if s == "photo-test":
        return _photo_crop(rng, h, w, TEST_PHOTOS)
    # sketch, tiny, big: any of the training backgrounds
    k = int(rng.integers(5))
    if k < 3:
        return np.broadcast_to(np.array(background_colour(rng), np.float32), (h, w, 3)).copy()
    return _gradient(rng, h, w) if k == 3 else _noise(rng, h, w)


# -- shapes ----------------------------------------------------------------------------------------

def shape_points(shape: str, x: float, y: float, d: float, angle: float = 0.0, wobble=None) -> list:
    """Outline of one shape inside the d x d square at (x, y), rotated by `angle` degrees about its centre.

    wobble: None, or a random generator that moves each point a little (the hand-drawn renderer).
    """
    cx, cy, r = x + (d - 1) / 2, y + (d - 1) / 2, (d - 1) / 2
    if shape == "circle":
        t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
        pts = np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], 1)
    elif shape == "square":
        m = r * (1 - 2 * 0.08)  # the same inset as the plain renderer's squares
        pts = np.array([[cx - m, cy - m], [cx + m, cy - m], [cx + m, cy + m], [cx - m, cy + m]])
    else:
        pts = np.array([[cx, y], [x, y + d - 1], [x + d - 1, y + d - 1]], dtype=float)
    if angle and shape != "circle":
        a = np.deg2rad(angle)
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        pts = (pts - [cx, cy]) @ rot.T + [cx, cy]
    if wobble is not None:
        if shape != "circle":  # subdivide each edge into 5 pieces so it can bend
            nxt = np.roll(pts, -1, axis=0)
            pts = np.concatenate([np.stack([p + (q - p) * f for f in np.linspace(0, 1, 6)[:-1]]) for p, q in zip(pts, nxt)])
        pts = pts + wobble.normal(0, 0.025 * d, size=pts.shape)
    return [tuple(p) for p in pts]


def shape_alpha(points, w: int, h: int, smooth: bool) -> np.ndarray:
    """Coverage of a polygon on the canvas: (H, W) float in 0..1 (anti-aliased by 4x supersampling if smooth)."""
    k = 4 if smooth else 1
    im = Image.new("L", (w * k, h * k), 0)
    ImageDraw.Draw(im).polygon([(px * k + (k - 1) / 2, py * k + (k - 1) / 2) for px, py in points], fill=255)
    if k > 1:
        im = im.resize((w, h), Image.BOX)
    return np.asarray(im, np.float32) / 255


def object_colour(rgb, rng) -> np.ndarray:
    """An object colour jittered within its hue band: brightness x0.75-1.15, each channel +-18."""
    c = np.asarray(rgb, np.float32) * rng.uniform(0.75, 1.15) + rng.uniform(-18, 18, size=3)
    return np.clip(c, 0, 255)


def finish(image: Image.Image, look: Look, rng) -> Image.Image:
    """Blur and JPEG compression, as the look asks."""
    if look.blur:
        image = image.filter(ImageFilter.GaussianBlur(look.blur * max(look.width, look.height)))
    if look.jpeg:
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=look.jpeg)
        image = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return image


def square_image(image: Image.Image, side: int) -> Image.Image:
    """The picture resized to side x side (aspect not kept), as the bundled models' processors see it."""
    return image if image.size == (side, side) else image.resize((side, side), Image.BICUBIC)


def fit_scene(scene, side: int):
    """A copy of a Scene resized to side x side: its image as `square_image` makes it, its masks and boxes with it."""
    import dataclasses

    if scene.image.size == (side, side):
        return scene
    objects = []
    for o in scene.objects:
        mask = np.asarray(Image.fromarray(o.mask).resize((side, side), Image.NEAREST))
        if not mask.any():  # a sliver lost in the resize: keep its centre pixel
            mask = np.zeros((side, side), bool)
            cx, cy = o.center
            mask[min(side - 1, int(cy * side / scene.image.height)), min(side - 1, int(cx * side / scene.image.width))] = True
        ys, xs = np.nonzero(mask)
        box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        objects.append(dataclasses.replace(o, mask=mask, box=box))
    return dataclasses.replace(scene, image=square_image(scene.image, side), objects=objects)
