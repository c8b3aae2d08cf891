"""AttentionMaps: the cross-modal maps of one image and one text, on the model's true patch grid."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError


def merge_pieces(pieces: list[str]) -> tuple[list[str], list[list[int]]]:
    """Merge sub-word pieces into readable words: WordPiece '##x' continues a word, BPE 'x</w>' ends one.

    Returns (words, groups) where groups[i] lists the piece indices of words[i].
    """
    words: list[str] = []
    groups: list[list[int]] = []
    bpe = any(p.endswith("</w>") for p in pieces)
    open_word = False  # the last word may still grow (a BPE piece without '</w>')
    for i, p in enumerate(pieces):
        bpe_end = p.endswith("</w>")
        text = p[:-4] if bpe_end else p
        if p.startswith("##") and words:
            words[-1] += text[2:]
            groups[-1].append(i)
        elif open_word and words:
            words[-1] += text
            groups[-1].append(i)
        else:
            words.append(text.replace("Ġ", "").replace("▁", ""))
            groups.append([i])
        open_word = bpe and not bpe_end
    return words, groups


def _norm(w: str) -> str:
    return re.sub(r"[^\w]", "", w.lower())


class LazyMaps(dict):
    """The extra maps by method; a value may be a function that computes it, called once on first use
    (relevance needs a backward pass per output, so it is only paid for when it is read)."""

    def __getitem__(self, key):
        v = super().__getitem__(key)
        if callable(v):
            v = v()
            super().__setitem__(key, v)
        return v

    def get(self, key, default=None):
        return self[key] if key in self else default

    def values(self):
        return [self[k] for k in self]

    def items(self):
        return [(k, self[k]) for k in self]


class OnPicture:
    """Maps of `image`, the picture as the model was given it, placed on the picture given (which mmkit cropped or
    padded for the model): for AttentionMaps and the classroom's RemoteMaps, which have image, offset and given_size."""

    def box(self, box) -> tuple:
        """A box (x0, y0, x1, y1) on the picture given, moved onto `image` (on which the maps lie)."""
        dx, dy = self.offset
        return box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy

    def _resize(self, m: np.ndarray, size) -> np.ndarray:
        """The (gh, gw) map at `size` (see for_token), placed when the maps are of a cropped or padded picture."""
        if isinstance(size, str) and size == "given":
            return self.on_given(upsample(m, self.image.size[::-1]))
        if size is not None:
            m = upsample(m, self.image.size[::-1] if isinstance(size, str) and size == "image" else pixel_size(size))
        if not self.given_size:  # the model was given the picture as it is: nothing to place
            return m
        out = m.view(PlacedMap)
        out.placed = (tuple(self.image.size), tuple(self.offset), tuple(self.given_size))
        return out

    def framing(self) -> str:
        """How `image` came from the picture given: "" (as it was), "processor" (the model's image processor kept
        its middle: mmkit.attention.processor_window), "crop" (mmkit cut it around its shapes) or "pad"."""
        offset, given = tuple(self.offset), tuple(self.given_size or ())
        if offset == (0, 0) and not given:
            return ""
        w, h = self.image.size
        if "centre_crop" in getattr(self, "notes", {}):
            return "processor"
        if min(offset) < 0 or (given and (given[0] > w or given[1] > h)):  # the picture given reaches past `image`
            return "crop"
        return "pad"

    def framing_note(self) -> str:
        """A line saying that `image` is the picture given cropped or padded for the model; "" when it is not."""
        if not self.given_size:
            return ""
        (w, h), (gw, gh), how = self.image.size, self.given_size, self.framing()
        if how == "processor":
            return f"shown: the middle {w} x {h} of the {gw} x {gh} picture given, which the model's processor keeps"
        if how == "crop":
            return f"shown: the {w} x {h} part of the {gw} x {gh} picture given, around its shapes: what the model got"
        return f"shown: the {gw} x {gh} picture given, padded to {w} x {h} for the model (the bands at its edges)"

    def on_given(self, m: np.ndarray) -> np.ndarray:
        """A map at maps.image's size, (h, w), moved onto the picture given, (H, W): padding bands cut away, pixels
        of the picture given that the model was not given (outside a crop) 0. Unchanged without crop or padding."""
        if not self.given_size:
            return m
        W, H = self.given_size
        dx, dy = self.offset  # given pixel (x, y) is image pixel (x + dx, y + dy)
        out = np.zeros((H, W), dtype=m.dtype)
        x0, x1 = max(0, -dx), min(W, m.shape[1] - dx)  # the given picture's columns that the image covers
        y0, y1 = max(0, -dy), min(H, m.shape[0] - dy)
        if x1 > x0 and y1 > y0:
            out[y0:y1, x0:x1] = m[y0 + dy:y1 + dy, x0 + dx:x1 + dx]
        return out


@dataclass
class AttentionMaps(OnPicture):
    """Maps from text tokens (or queries) to image patches.

    attn:  raw attention, (layers, heads, n_pieces, gh, gw), or None when the model has none (ALIGN).
    extra: other methods, each (n_pieces, gh, gw): "rollout", "relevance", "gradcam", "similarity".
    Words are readable (sub-words merged); `groups[i]` gives the pieces of word i.
    """

    image: object  # the RGB PIL image the maps belong to
    words: list[str]
    groups: list[list[int]]
    pieces: list[str]
    grid: tuple[int, int]  # (rows, cols) of the patch grid
    attn: np.ndarray | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    model: str = ""  # name of the model the maps come from
    text: str = ""  # the caption / question / prompt
    kind: str = "words"  # "words", or "queries" for BLIP-2 Q-Former queries
    notes: dict = field(default_factory=dict)  # e.g. which layer a Grad-CAM used
    offset: tuple = (0, 0)  # (x, y) of the picture given inside `image`, when the model was given it padded
    # (negative along a side it was cropped on)
    given_size: tuple = ()  # (w, h) of the picture given, when it differs from `image`'s (padded or cropped)
    repainted: bool = False  # the model was given `image` with its one-colour background repainted (bundled models)

    def __post_init__(self):
        self.extra = LazyMaps(self.extra)  # methods such as "relevance" are computed when first read

    @property
    def tokens(self) -> list[str]:
        """The readable words (or query labels) that have maps."""
        return self.words

    @property
    def methods(self) -> list[str]:
        """Available map methods: "attention" (raw) when present, then the extra ones."""
        return (["attention"] if self.attn is not None else []) + list(self.extra)

    @property
    def default_method(self) -> str:
        """The method for_token, caption_strip, the CLI and the explorer use when none is given: raw attention, unless
        it does not depend on the text (CLIP's is its image's own CLS attention, the same for every word): then
        relevance, or the first method that depends on the text."""
        if not self.notes.get("attention_is_text_independent"):
            return self.methods[0]
        text = [m for m in self.methods if m not in ("attention", "rollout")]  # CLIP's rollout is the CLS row's too
        return "relevance" if "relevance" in text else (text or self.methods)[0]

    @property
    def layers(self) -> int:
        return 0 if self.attn is None else self.attn.shape[0]

    @property
    def heads(self) -> int:
        return 0 if self.attn is None else self.attn.shape[1]

    def index(self, word) -> int:
        """Word index of a word (case and punctuation ignored; first occurrence) or an int index."""
        if isinstance(word, (int, np.integer)):
            if not -len(self.words) <= word < len(self.words):
                raise InputError(f"token index {word} out of range: there are {len(self.words)} tokens")
            return int(word) % len(self.words)
        key = _norm(str(word))
        for i, w in enumerate(self.words):
            if _norm(w) == key:
                return i
        raise InputError(f"{word!r} is not one of the tokens {self.words}; pass one of them or its index")

    def for_token(self, word, layer: int | None = None, head: int | None = None, agg: str = "mean",
                  size=None, method: str | None = None) -> np.ndarray:
        """The map of one word, (gh, gw), or upsampled to size.

        Args:
            word: a word of the text (resolved to its sub-word pieces, averaged) or its index.
            layer: a layer index (negative counts from the end); None averages all layers. Raw attention only:
                the other methods give one map per word, not one per layer and head, and refuse layer and head.
            head: a head index; None aggregates the heads with agg (raw attention only).
            agg: "mean" or "max" over heads (raw attention only; the other methods have no heads to aggregate), or
                "rollout" (attention rollout across layers: method "rollout"; refused with another method).
            size: None (the patch grid); "image": maps.image's size, the picture as the model was given it
                (cropped to a window around the shapes or padded, for a bundled model); "given": the size of the
                picture you passed, the map moved onto it by offset (padding bands cut away; its pixels that the
                model was not given are 0); or (height, width) in pixels. "given" is "image" when the model got the
                picture as it was.
            method: "attention", "rollout", "relevance", "gradcam" or "similarity"; default: raw attention when a layer,
                head or agg="max" is given, else default_method (raw attention when the model has it and it depends
                on the text; else relevance or the first extra method).
        Returns (gh, gw), or (H, W) for a size; for a cropped or padded picture, a map of maps.image (every size but
        "given") is a PlacedMap, which mmkit.viz.overlay draws where maps.image lies on the picture you passed.
        """
        pieces = self.groups[self.index(word)]
        method = self.method_for(method, layer, head, agg)
        if method == "attention":
            if self.attn is None:
                raise InputError(f"{self.model} has no attention maps; use one of {self.methods}")
            a = self.attn[:, :, pieces].mean(axis=2)  # (layers, heads, gh, gw)
            a = a.mean(axis=0) if layer is None else a[self._check(layer, self.layers, "layer")]
            if head is None:
                m = a.mean(axis=0) if agg == "mean" else a.max(axis=0)
            else:
                m = a[self._check(head, self.heads, "head")]
        elif method in self.extra:
            self._one_map(method, layer, head)
            m = self.extra[method][pieces].mean(axis=0)
        else:
            raise InputError(f"method {method!r} is not available for {self.model}; choose one of {self.methods}")
        return self._resize(np.asarray(m, dtype=np.float32), size)

    def method_for(self, method: str | None = None, layer=None, head=None, agg: str = "mean") -> str:
        """The method for_token uses for these arguments: agg="rollout" is "rollout" (refused with another method);
        a layer, head or agg="max" with no method is raw attention; else default_method."""
        if agg == "rollout":
            if method not in (None, "rollout"):
                raise InputError(f"agg='rollout' asks for method 'rollout', and method={method!r} was given: drop "
                                 "one of them (agg='rollout' is method='rollout'; agg is 'mean' or 'max' otherwise)")
            return "rollout"
        if agg not in ("mean", "max"):
            raise InputError(f"agg={agg!r}: use 'mean', 'max' or 'rollout'")
        raw = self.attn is not None and (layer is not None or head is not None or agg == "max")  # raw attention's own
        return method or ("attention" if raw else self.default_method)

    def _one_map(self, method: str, layer, head) -> None:
        """InputError when a layer or head is asked of a method that gives one map per word."""
        asked = [f"{k}={v!r}" for k, v in (("layer", layer), ("head", head)) if v is not None]
        if not asked:
            return
        fix = ("use method='attention' for one layer or head (mmkit.viz.layer_head_grid draws them all)"
               if self.attn is not None else f"{self.model or 'these maps'} has no attention heads: drop them")
        raise InputError(f"method {method!r} gives one map per word, not one per layer and head, so "
                         f"{', '.join(asked)} cannot choose one; {fix}")

    @staticmethod
    def _check(i: int, n: int, what: str) -> int:
        if not -n <= i < n:
            raise InputError(f"{what} {i} out of range: the model has {n} {what}s")
        return i

    def __repr__(self) -> str:
        return (f"AttentionMaps({self.model!r}, {len(self.words)} {self.kind}, grid={self.grid}, "
                f"layers={self.layers}, heads={self.heads}, methods={self.methods})")


class PlacedMap(np.ndarray):
    """A map of AttentionMaps.image (a numpy array like any other) for a picture that mmkit cropped or padded for the
    model: it keeps where that image lies in the picture given, so mmkit.viz.overlay(picture_given, heat) draws it
    there instead of stretching it over the whole picture. Arithmetic keeps the place (heat / heat.max()); np.asarray
    gives a plain array.

    placed: ((w, h) of maps.image, (x, y) of the picture given inside it, (w, h) of the picture given), or None.
    """

    placed: tuple | None = None

    def __array_finalize__(self, obj):
        # a result of another shape (a slice, a reduction) is no longer a map of the whole picture
        same = obj is not None and getattr(obj, "shape", None) == self.shape
        self.placed = getattr(obj, "placed", None) if same else None

    def __array_wrap__(self, arr, context=None, return_scalar=False):
        out = super().__array_wrap__(arr, context)  # numpy 1 takes no return_scalar
        return out[()] if isinstance(out, np.ndarray) and out.ndim == 0 else out  # heat.max() a number, as ndarray's

    def __reduce__(self):  # pickled (and sent) with its place
        rebuild, args, state = super().__reduce__()
        return rebuild, args, (state, self.placed)

    def __setstate__(self, state):
        array_state, self.placed = state
        super().__setstate__(array_state)


def pixel_size(size) -> tuple[int, int]:
    """size = (height, width) as two positive ints, else an InputError naming the sizes for_token takes."""
    ok = (isinstance(size, (tuple, list)) and len(size) == 2
          and all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) and v > 0 for v in size))
    if not ok:
        raise InputError(f"size={size!r}: use None (the patch grid), 'image' (the picture as the model was given it), "
                         "'given' (the picture you passed) or (height, width) as two positive whole numbers of pixels")
    return int(size[0]), int(size[1])


def upsample(m: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A (gh, gw) map resized to size = (height, width), bilinear: torch's interpolate(mode="bilinear",
    align_corners=False) in numpy, so the classroom's kernels place maps without torch."""
    m = np.asarray(m, dtype=np.float32)

    def axis(n_in: int, n_out: int):  # for each output pixel: the two input pixels it lies between, and the weight
        src = np.maximum((np.arange(n_out, dtype=np.float32) + 0.5) * np.float32(n_in / n_out) - 0.5, 0)
        lo = np.minimum(src.astype(np.int64), n_in - 1)
        return lo, np.minimum(lo + 1, n_in - 1), (src - lo).astype(np.float32)

    (r0, r1, wr), (c0, c1, wc) = axis(m.shape[0], size[0]), axis(m.shape[1], size[1])
    rows = m[r0] * (1 - wr)[:, None] + m[r1] * wr[:, None]  # (height, gw)
    return rows[:, c0] * (1 - wc) + rows[:, c1] * wc  # (height, width)


def to_grid(values, index, grid) -> np.ndarray:
    """Scatter per-patch values onto the grid: values (..., P), index (P, 2) of (row, col) -> (..., gh, gw).

    Cells with no patch (dropped by the model) stay 0.
    """
    values = np.asarray(values, dtype=np.float32)
    out = np.zeros(values.shape[:-1] + tuple(grid), dtype=np.float32)
    rows, cols = np.asarray(index)[:, 0], np.asarray(index)[:, 1]
    out[..., rows, cols] = values
    return out


def rollout(self_attn: np.ndarray) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema): product over layers of (A + I) / 2, heads averaged.

    Args:
        self_attn: (layers, heads, L, L) self-attention.
    Returns (L, L): how much each token draws on each input token through all layers.
    """
    n = self_attn.shape[-1]
    r = np.eye(n, dtype=np.float64)
    for a in self_attn:
        a = a.mean(axis=0)  # (L, L) average heads
        a = 0.5 * a + 0.5 * np.eye(n)
        a = a / a.sum(axis=-1, keepdims=True)
        r = a @ r
    return r.astype(np.float32)
