"""ShapesWorld: a procedural image-text world with ground truth.

Every scene is a few coloured shapes on a background (plain by default; `style=` draws the same kind of
scene on many backgrounds, canvases and renderers, see `styles`). Each item carries the image, a
templated caption (with a spatial relation when there are two objects), VQA pairs whose answers
come from a fixed vocabulary, an image-text-matching negative (one attribute or the relation
swapped) and per-object boxes and masks. Items are a pure function of (split, seed, index).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

from .geometry import clear_relation, draw_shape, footprints_apart  # noqa: F401  draw_shape: public here too

COLORS = {"red": (215, 40, 40), "green": (35, 160, 60), "blue": (40, 80, 215)}  # name -> RGB
SHAPES = ("circle", "square", "triangle")
SIZES = {"small": 0.22, "large": 0.36}  # name -> diameter as a fraction of the image side
BIG_SHAPE_SIDE = {1: 0.8, 2: 0.46}  # objects in the scene -> largest diameter of a large object in a `big_shapes` scene
COUNT_WORDS = ("zero", "one", "two", "three", "four")
ANSWERS = ("yes", "no", *COLORS, *SHAPES, *SIZES, *COUNT_WORDS)  # the fixed VQA answer vocabulary
QUESTION_KINDS = ("count", "exists", "color", "shape", "size", "position")
# (color, shape) pairs never drawn in the compositional training split, and always present in its test split
HELD_OUT = (("red", "triangle"), ("green", "circle"), ("blue", "square"))
SPLITS = {"train": 0, "val": 1, "test": 2, "comp_train": 3, "comp_test": 4}  # split -> seed-stream id
BACKGROUND = (240, 240, 240)
PIXEL_MEAN = (0.892, 0.891, 0.896)  # per-channel pixel mean of plain ShapesWorld images (in [0, 1])
PIXEL_STD = (0.186, 0.172, 0.174)  # per-channel pixel std of plain ShapesWorld images
NO_SHAPES = "there are no shapes"  # the caption of a scene with no objects


class Named:
    """The words for an object with `color`, `shape` and `size`."""

    color: str
    shape: str
    size: str

    @property
    def name(self) -> str:
        """'red circle'."""
        return f"{self.color} {self.shape}"

    @property
    def phrase(self) -> str:
        """'a small red circle'."""
        return f"a {self.size} {self.color} {self.shape}"


@dataclass
class Obj(Named):
    """One shape in a scene."""

    color: str
    shape: str
    size: str
    box: tuple[int, int, int, int]  # (x0, y0, x1, y1) in pixels, x1/y1 exclusive, tight around the mask
    mask: np.ndarray = field(repr=False)  # (H, W) bool, True on the object's pixels

    @property
    def center(self) -> tuple[float, float]:
        """(x, y) centre of the box."""
        x0, y0, x1, y1 = self.box
        return ((x0 + x1) / 2, (y0 + y1) / 2)


@dataclass
class QA:
    """A question about a scene, its answer (one of ANSWERS) and its kind (one of QUESTION_KINDS)."""

    question: str
    answer: str
    kind: str


@dataclass
class Scene:
    """One ShapesWorld item."""

    image: Image.Image
    caption: str
    negative: str  # a caption that is false for this image: one attribute or the relation swapped
    negative_kind: str  # "color" | "shape" | "size" | "relation"
    qa: list[QA]
    objects: list[Obj]
    index: int
    split: str
    style: str = "plain"  # the look it was drawn in (mmkit.data.styles.STYLES)

    def _repr_png_(self):  # shows the image when a Scene is the last value of a notebook cell
        return self.image._repr_png_()


def relation(a: Obj, b: Obj) -> str:
    """The dominant spatial relation of a to b: 'left of', 'right of', 'above' or 'below'."""
    (ax, ay), (bx, by) = a.center, b.center
    if abs(ax - bx) >= abs(ay - by):
        return "left of" if ax < bx else "right of"
    return "above" if ay < by else "below"


def describe_scene(objects: list[Obj]) -> str:
    """The canonical caption: one object; two with their relation; three+ listed left to right."""
    if not objects:
        return NO_SHAPES
    if len(objects) == 1:
        return objects[0].phrase
    if len(objects) == 2:
        a, b = objects
        rel = relation(a, b)
        if rel in ("right of", "below"):
            a, b = b, a
            rel = "left of" if rel == "right of" else "above"
        return f"{a.phrase} to the left of {b.phrase}" if rel == "left of" else f"{a.phrase} above {b.phrase}"
    parts = [o.phrase for o in sorted(objects, key=lambda o: o.center[0])]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


class ShapesWorld:
    """A deterministic synthetic image-text dataset; behaves as a map-style torch Dataset.

    Args:
        n: number of items.
        seed: seed of the item stream; items are a pure function of (split, seed, index).
        size: image side in pixels.
        objects: number of objects per scene, an int or an inclusive (min, max) range (max 4).
        noise: std of Gaussian noise on background pixels, as a fraction of 255 (0 = clean).
        split: "train" | "val" | "test" (all attribute pairs, disjoint seed streams), "comp_train"
            (never draws the HELD_OUT color-shape pairs) or "comp_test" (every scene has one).
        style: how scenes are drawn: "plain" (the classic 64 px look), a style name of
            `styles.STYLES`, a group ("train": the looks the bundled models learnt from; "test": held-out
            backgrounds, canvases and renderers; "all") or a list of names; each scene draws one of them.
            Objects, captions and answers do not depend on the style. Other styles pick their own canvas.
        empty: share of scenes drawn with no shapes at all (caption "there are no shapes", count "zero").
        big_shapes: share of scenes whose large objects are drawn bigger than the usual large size (SIZES), the way
            people draw one shape that fills the picture: up to BIG_SHAPE_SIDE[k] of the short side in a scene of k
            objects (k <= 2). Their size word stays "large"; small objects keep their size. 0 draws exactly the
            scenes of earlier versions; the bundled models train with a share of such scenes.
    """

    def __init__(self, n: int, seed: int = 0, size: int = 64, objects=(1, 2), noise: float = 0.0,
                 split: str = "train", style="plain", empty: float = 0.0, big_shapes: float = 0.0):
        from ..errors import InputError
        from .styles import resolve

        lo, hi = (objects, objects) if isinstance(objects, int) else tuple(objects)
        if not 1 <= lo <= hi <= 4:
            raise InputError(f"objects={objects!r}: use an int or a (min, max) range within 1..4")
        if split not in SPLITS:
            raise InputError(f"split={split!r} is not one of {sorted(SPLITS)}")
        if size < 32:
            raise InputError(f"size={size} is too small to draw shapes; use 32 px or more")
        if n < 0:
            raise InputError(f"n={n} must be >= 0")
        if not 0 <= empty <= 1:
            raise InputError(f"empty={empty!r} is a share of scenes: use a number from 0 to 1")
        if not 0 <= big_shapes <= 1:
            raise InputError(f"big_shapes={big_shapes!r} is a share of scenes: use a number from 0 to 1")
        self.n, self.seed, self.size, self.objects = int(n), int(seed), int(size), (lo, hi)
        self.noise, self.split = float(noise), split
        self.styles, self.style, self.empty, self.big_shapes = resolve(style), style, float(empty), float(big_shapes)
        self._cache: dict[int, Scene] = {}

    # -- dataset protocol ---------------------------------------------------------------------
    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self.n))]
        if not -self.n <= i < self.n:
            raise IndexError(f"ShapesWorld index {i} out of range for {self.n} items")
        i = i % self.n
        if i not in self._cache:
            self._cache[i] = self._make(i)
        return self._cache[i]

    def __iter__(self):
        return (self[i] for i in range(self.n))

    def __repr__(self) -> str:
        look = "" if self.styles == ("plain",) and not self.empty else f", style={self.style!r}, empty={self.empty}"
        look += f", big_shapes={self.big_shapes}" if self.big_shapes else ""
        return (f"ShapesWorld(n={self.n}, seed={self.seed}, size={self.size}, objects={self.objects}, "
                f"noise={self.noise}, split={self.split!r}{look})")

    # -- convenience views ----------------------------------------------------------------------
    @property
    def images(self) -> list[Image.Image]:
        return [s.image for s in self]

    @property
    def captions(self) -> list[str]:
        return [s.caption for s in self]

    def arrays(self) -> np.ndarray:
        """All images as one uint8 array of shape (N, H, W, 3)."""
        return np.stack([np.asarray(s.image) for s in self]) if self.n else np.zeros((0, self.size, self.size, 3), np.uint8)

    def qa_pairs(self, kinds=None) -> list[tuple[int, QA]]:
        """Every (item index, QA) pair, optionally only of the given kinds."""
        return [(s.index, q) for s in self for q in s.qa if kinds is None or q.kind in kinds]

    @staticmethod
    def vocabulary(styled: bool = False) -> list[str]:
        """The words of the plain look's captions, negatives, questions and answers, sorted.

        Args:
            styled: also the words the many looks' texts add: "how many shapes are there?" and the caption of
                a picture with no shapes, "there are no shapes". (The bundled tokenizers were built from the
                plain look's list, so that stays the default.)
        """
        words = {"a", "to", "the", "left", "right", "of", "above", "below", "and", "is", "there", "how", "many",
                 "objects", "object", "are", "what", "color", "shape", "size", "it"}
        words |= set(COLORS) | set(SHAPES) | set(SIZES) | set(COUNT_WORDS) | {"yes", "no"}
        if styled:
            words |= set(NO_SHAPES.split()) | {"shapes"}
        return sorted(words)

    def grid(self, n: int = 16, cols: int = 8, boxes: bool = False, captions: bool = True):
        """A matplotlib Figure of the first n scenes, with captions (and boxes) underneath."""
        from ..viz.scenes import scene_grid

        return scene_grid(self[: min(n, self.n)], cols=cols, boxes=boxes, captions=captions)

    def show(self, i: int = 0):
        """A matplotlib Figure of one scene: image with boxes, caption, negative and QA pairs."""
        from ..viz.scenes import scene_card

        return scene_card(self[i])

    # -- generation -----------------------------------------------------------------------------
    def _allowed(self, color: str, shape: str) -> bool:
        return self.split != "comp_train" or (color, shape) not in HELD_OUT

    def _make(self, index: int) -> Scene:
        from .styles import make_look, pick_style

        rng = np.random.default_rng([SPLITS[self.split], self.seed, index])
        # the look has a stream of its own, so a scene's objects and texts do not depend on how it is drawn
        look_rng = np.random.default_rng([SPLITS[self.split], self.seed, index, 7])
        look = make_look(pick_style(self.styles, look_rng), look_rng, self.size)
        if self.empty and look_rng.random() < self.empty:
            return self._empty_scene(look, look_rng, index)
        grow = None  # a stream of its own too: big_shapes=0 draws exactly the scenes it always drew
        if self.big_shapes:
            grow = np.random.default_rng([SPLITS[self.split], self.seed, index, 9])
            grow = grow if grow.random() < self.big_shapes else None
        for _ in range(1000):
            scene = self._try_make(rng, index, look, look_rng, grow)
            if scene is not None:
                return scene
        raise RuntimeError(f"could not place objects for item {index}; use fewer objects or a bigger image")

    def _pick_attributes(self, rng, k: int) -> list[tuple[str, str, str]]:
        combos = [(c, s) for c in COLORS for s in SHAPES if self._allowed(c, s)]
        order = rng.permutation(len(combos))[:k]
        picked = [combos[j] for j in order]
        if self.split == "comp_test" and not any(p in HELD_OUT for p in picked):
            picked[int(rng.integers(k))] = HELD_OUT[int(rng.integers(len(HELD_OUT)))]
            if len(set(picked)) < k:
                return []
        return [(c, s, list(SIZES)[int(rng.integers(len(SIZES)))]) for c, s in picked]

    def _layout(self, rng, W: int, H: int, gap: int, grow=None):
        """(attributes, footprints (x, y, d)) of this scene's objects on a W x H canvas, or None to draw again.
        With `grow` (a generator) large objects of a scene of up to two are drawn from their usual size up to
        BIG_SHAPE_SIDE."""
        S = min(W, H)
        k = int(rng.integers(self.objects[0], self.objects[1] + 1))
        attrs = self._pick_attributes(rng, k)
        if not attrs:
            return None
        placed: list[tuple[int, int, int]] = []  # (x, y, d) of each object's square footprint
        for _, _, size in attrs:
            d = max(6, int(round(SIZES[size] * S * rng.uniform(0.92, 1.08))))
            if grow is not None and size == "large" and k in BIG_SHAPE_SIDE:
                d = int(round(S * grow.uniform(SIZES["large"] * 1.08, BIG_SHAPE_SIDE[k])))
            for _ in range(100):
                x, y = int(rng.integers(2, W - d - 1)), int(rng.integers(2, H - d - 1))
                if all(footprints_apart((x, y, d), p, gap=gap) and clear_relation((x, y, d), p, S) for p in placed):
                    placed.append((x, y, d))
                    break
            else:
                return None
        return attrs, placed

    def _try_make(self, rng, index: int, look=None, look_rng=None, grow=None) -> Scene | None:
        S = self.size
        if look is not None and look.style != "plain":
            return self._try_make_styled(rng, index, look, look_rng, grow)
        layout = self._layout(rng, S, S, gap=3, grow=grow)
        if layout is None:
            return None
        attrs, placed = layout
        image = Image.new("RGB", (S, S), BACKGROUND)
        draw = ImageDraw.Draw(image)
        objects = []
        for (color, shape, size), (x, y, d) in zip(attrs, placed):
            rgb = tuple(int(np.clip(v + rng.integers(-15, 16), 0, 255)) for v in COLORS[color])
            mask_im = Image.new("L", (S, S), 0)
            draw_shape(draw, shape, x, y, d, rgb)
            draw_shape(ImageDraw.Draw(mask_im), shape, x, y, d, 255)
            mask = np.asarray(mask_im) > 0
            ys, xs = np.nonzero(mask)
            box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
            objects.append(Obj(color, shape, size, box, mask))
        if self.noise > 0:
            a = np.asarray(image).astype(np.float32)
            background = ~np.any([o.mask for o in objects], axis=0)
            a[background] += rng.normal(0, self.noise * 255, size=(int(background.sum()), 3))
            image = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
        caption = describe_scene(objects)
        negative, kind = self._negative(rng, objects, caption)
        return Scene(image, caption, negative, kind, self._questions(rng, objects), objects, index, self.split)

    def _try_make_styled(self, rng, index: int, look, look_rng, grow=None) -> Scene | None:
        """The same draws of objects and places as the plain look, on the look's canvas, drawn its way."""
        from .styles import draw_background, finish, object_colour, shape_alpha, shape_points

        W, H = look.width, look.height
        layout = self._layout(rng, W, H, gap=max(3, min(W, H) // 20), grow=grow)
        if layout is None:
            return None
        attrs, placed = layout
        canvas = draw_background(look, look_rng)  # (H, W, 3) float
        objects, outlines = [], []
        for (color, shape, size), (x, y, d) in zip(attrs, placed):
            angle = float(look_rng.uniform(-look.rotate, look.rotate)) if look.rotate else 0.0
            points = shape_points(shape, x, y, d, angle, wobble=look_rng if look.edges == "sketch" else None)
            alpha = shape_alpha(points, W, H, smooth=look.edges != "hard")[..., None]  # (H, W, 1)
            canvas = canvas * (1 - alpha) + object_colour(COLORS[color], look_rng) * alpha
            mask = alpha[..., 0] > 0.5
            if not mask.any():
                return None
            ys, xs = np.nonzero(mask)
            box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
            objects.append(Obj(color, shape, size, box, mask))
            outlines.append((points, max(1, round(d / 16))))
        image = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
        if look.outline is not None:
            draw = ImageDraw.Draw(image)
            for points, width in outlines:
                draw.line(points + points[:1], fill=look.outline, width=width, joint="curve")
        image = finish(image, look, look_rng)
        caption = describe_scene(objects)
        negative, kind = self._negative(rng, objects, caption)
        qa = self._questions(rng, objects) + [QA("how many shapes are there?", COUNT_WORDS[len(objects)], "count")]
        return Scene(image, caption, negative, kind, qa, objects, index, self.split, look.style)

    def _empty_scene(self, look, look_rng, index: int) -> Scene:
        """A picture with no shapes: its background only, and honest texts (no shapes, zero, no)."""
        from .styles import draw_background, finish

        if look.style == "plain":
            image = Image.new("RGB", (look.width, look.height), BACKGROUND)
        else:
            image = finish(Image.fromarray(np.clip(draw_background(look, look_rng), 0, 255).astype(np.uint8)),
                           look, look_rng)
        combos = [(c, s) for c in COLORS for s in SHAPES if self._allowed(c, s)]
        c, s = combos[int(look_rng.integers(len(combos)))]
        size = list(SIZES)[int(look_rng.integers(len(SIZES)))]
        color = list(COLORS)[int(look_rng.integers(len(COLORS)))]
        qa = [QA("how many objects are there?", "zero", "count"), QA("how many shapes are there?", "zero", "count"),
              QA(f"how many {color} objects are there?", "zero", "count"), QA(f"is there a {c} {s}?", "no", "exists")]
        return Scene(image, NO_SHAPES, f"a {size} {c} {s}", "count", qa, [], index, self.split, look.style)

    def _negative(self, rng, objects: list[Obj], caption: str) -> tuple[str, str]:
        kinds = ["color", "shape", "size"] + (["relation", "relation"] if len(objects) == 2 else [])
        for _ in range(50):
            kind = kinds[int(rng.integers(len(kinds)))]
            if kind == "relation":
                a, b = objects
                rel = relation(a, b)
                # the true sentence names the left/upper object first; the negative names it second
                first, second = (b, a) if rel in ("left of", "above") else (a, b)
                words = "to the left of" if rel in ("left of", "right of") else "above"
                return f"{first.phrase} {words} {second.phrase}", kind
            i = int(rng.integers(len(objects)))
            o = objects[i]
            options = {"color": [c for c in COLORS if c != o.color and self._allowed(c, o.shape)],
                       "shape": [s for s in SHAPES if s != o.shape and self._allowed(o.color, s)],
                       "size": [z for z in SIZES if z != o.size]}[kind]
            if not options:
                continue
            new = options[int(rng.integers(len(options)))]
            changed = Obj(**{**o.__dict__, kind: new})
            swapped = objects[:i] + [changed] + objects[i + 1:]
            text = describe_scene(swapped)
            if text != caption:
                return text, kind
        raise RuntimeError("could not build a negative caption")  # unreachable with >= 2 values per attribute

    def _questions(self, rng, objects: list[Obj]) -> list[QA]:
        qa = [QA("how many objects are there?", COUNT_WORDS[len(objects)], "count")]
        color = list(COLORS)[int(rng.integers(len(COLORS)))]
        n_color = sum(o.color == color for o in objects)
        qa.append(QA(f"how many {color} objects are there?", COUNT_WORDS[n_color], "count"))
        present = {(o.color, o.shape) for o in objects}
        o = objects[int(rng.integers(len(objects)))]
        qa.append(QA(f"is there a {o.color} {o.shape}?", "yes", "exists"))
        absent = [(c, s) for c in COLORS for s in SHAPES if (c, s) not in present and self._allowed(c, s)]
        if absent:
            c, s = absent[int(rng.integers(len(absent)))]
            qa.append(QA(f"is there a {c} {s}?", "no", "exists"))
        for o in objects:
            if sum(p.shape == o.shape for p in objects) == 1:
                qa.append(QA(f"what color is the {o.shape}?", o.color, "color"))
            if sum(p.color == o.color for p in objects) == 1:
                qa.append(QA(f"what shape is the {o.color} object?", o.shape, "shape"))
            qa.append(QA(f"what size is the {o.name}?", o.size, "size"))
        if len(objects) >= 2:
            a, b = objects[0], objects[1]
            rel = relation(a, b)
            horizontal = rel in ("left of", "right of")
            ask = (["left of", "right of"] if horizontal else ["above", "below"])[int(rng.integers(2))]
            words = {"left of": "to the left of", "right of": "to the right of", "above": "above", "below": "below"}
            qa.append(QA(f"is the {a.name} {words[ask]} the {b.name}?", "yes" if ask == rel else "no", "position"))
        return qa
