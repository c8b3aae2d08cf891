"""ShapesClips: ShapesWorld video clips with a ground-truth timeline (which object is visible when, and where).

A clip has two horizontal lanes (top and bottom half). In each lane shapes come one after another: a shape
slides in from one side (half a second), drifts across, and slides out on the other side. So at most two
objects are in view at once, as in the still ShapesWorld scenes the bundled models know, and every object
appears once per clip. Frames are drawn with ShapesWorld's own drawing code on its plain background.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageDraw

from .geometry import draw_shape
from .shapes import BACKGROUND, COLORS, SHAPES, SIZES, Named, Obj, describe_scene

VISIBLE = 0.5  # an object counts as visible when at least this fraction of its footprint is inside the frame
SLIDE = 0.5  # seconds an object takes to slide in (and out)


@dataclass
class Track(Named):
    """One object's life in a clip: its looks and its path, keyframes of its footprint's top-left corner."""

    color: str
    shape: str
    size: str
    d: int  # footprint side in pixels
    rgb: tuple[int, int, int]
    keys: list[tuple[float, float, float]]  # (t, x, y): linear motion between keyframes; off screen outside them

    def position(self, t: float) -> tuple[float, float] | None:
        """(x, y) top-left of the footprint at time t, or None before it enters / after it leaves."""
        ts = [k[0] for k in self.keys]
        if t < ts[0] or t > ts[-1]:
            return None
        return (float(np.interp(t, ts, [k[1] for k in self.keys])), float(np.interp(t, ts, [k[2] for k in self.keys])))

    def inside(self, t: float, side: int) -> float:
        """Fraction of the footprint inside a side x side frame at time t (0 when off screen)."""
        p = self.position(t)
        if p is None:
            return 0.0
        x, y = p
        fx = max(0.0, min(x + self.d, side) - max(x, 0.0)) / self.d
        fy = max(0.0, min(y + self.d, side) - max(y, 0.0)) / self.d
        return fx * fy


@dataclass
class Interval:
    """A true interval of a clip: `name` is visible from `start` to `end` seconds."""

    name: str
    start: float
    end: float


@dataclass
class Clip:
    """One synthetic clip: tracks, frame rate, and the ground truth derived from them."""

    tracks: list[Track]
    duration: float  # seconds
    fps: float
    size: int  # frame side in pixels
    index: int
    seed: int
    reversed: bool = False  # True: the frames play backwards (reverse())

    @property
    def times(self) -> np.ndarray:
        """(T,) presentation time of each frame in seconds."""
        return np.arange(int(round(self.duration * self.fps))) / self.fps

    def _t(self, t: float) -> float:
        return self.duration - 1.0 / self.fps - t if self.reversed else t  # a reversed clip plays frames backwards

    def visible(self, t: float) -> list[Track]:
        """The tracks at least VISIBLE inside the frame at time t, top lane first."""
        t = self._t(t)
        on = [tr for tr in self.tracks if tr.inside(t, self.size) >= VISIBLE]
        return sorted(on, key=lambda tr: tr.position(t)[1])

    def frame(self, t: float) -> Image.Image:
        """The picture at time t (RGB, size x size)."""
        image = Image.new("RGB", (self.size, self.size), BACKGROUND)
        draw = ImageDraw.Draw(image)
        for tr in self.tracks:
            p = tr.position(self._t(t))
            if p is not None:
                draw_shape(draw, tr.shape, int(round(p[0])), int(round(p[1])), tr.d, tr.rgb)
        return image

    def frames(self):
        """Every frame in order, drawn one at a time (a generator of PIL images)."""
        return (self.frame(t) for t in self.times)

    def objects(self, t: float) -> list[Obj]:
        """The visible objects at time t as ShapesWorld `Obj`s (boxes clipped to the frame)."""
        out = []
        for tr in self.visible(t):
            x, y = tr.position(self._t(t))
            mask = np.zeros((self.size, self.size), bool)
            x0, y0 = max(0, int(round(x))), max(0, int(round(y)))
            x1, y1 = min(self.size, int(round(x)) + tr.d), min(self.size, int(round(y)) + tr.d)
            mask[y0:y1, x0:x1] = True
            out.append(Obj(tr.color, tr.shape, tr.size, (x0, y0, x1, y1), mask))
        return out

    def caption_at(self, t: float) -> str:
        """The ShapesWorld caption of the visible objects at time t ('' when none is visible)."""
        objs = self.objects(t)
        return describe_scene(objs) if objs else ""

    @property
    def timeline(self) -> list[Interval]:
        """The true moments: each object's visible interval, [first visible frame, last visible frame + 1/fps)."""
        out = []
        for tr in self.tracks:
            on = [t for t in self.times if tr in self.visible(t)]
            if on:
                out.append(Interval(tr.name, float(on[0]), float(on[-1] + 1.0 / self.fps)))
        return sorted(out, key=lambda m: m.start)

    def names(self) -> list[str]:
        """The object names in the clip ('red circle', ...), in order of appearance."""
        return [m.name for m in self.timeline]

    def reverse(self) -> "Clip":
        """The same clip played backwards: the same set of frames, in the opposite order."""
        return replace(self, reversed=not self.reversed)

    def save(self, path_or_buffer, format: str | None = None, times=None):
        """Encode the clip to MP4 (H.264) or WebM (VP9) with PyAV; returns the path or buffer."""
        from .video import write_video

        return write_video(self.frames(), path_or_buffer, fps=self.fps, format=format, times=times)

    def to_bytes(self, format: str = "mp4") -> bytes:
        """The encoded clip as bytes (MP4 or WebM)."""
        buf = io.BytesIO()
        self.save(buf, format=format)
        return buf.getvalue()


class ShapesClips:
    """A deterministic sequence of synthetic clips; clips are a pure function of (seed, index).

    Args:
        n: number of clips.
        seed: seed of the clip stream (held-out tests use seeds the examples do not).
        duration: seconds per clip.
        fps: frames per second.
        size: frame side in pixels (64 is what the bundled models know).
    """

    def __init__(self, n: int, seed: int = 0, duration: float = 8.0, fps: float = 8.0, size: int = 64):
        from ..errors import InputError

        if n < 0:
            raise InputError(f"n={n} must be >= 0")
        if not 4 <= duration <= 600:
            raise InputError(f"duration={duration} s: use 4 to 600 seconds")
        if not 1 <= fps <= 60:
            raise InputError(f"fps={fps}: use 1 to 60 frames per second")
        if size < 48:
            raise InputError(f"size={size} is too small for two lanes of shapes; use 48 px or more")
        self.n, self.seed, self.duration, self.fps, self.size = int(n), int(seed), float(duration), float(fps), int(size)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> Clip:
        if not -self.n <= i < self.n:
            raise IndexError(f"ShapesClips index {i} out of range for {self.n} clips")
        i = i % self.n
        return self._make(i)

    def __iter__(self):
        return (self[i] for i in range(self.n))

    def __repr__(self) -> str:
        return f"ShapesClips(n={self.n}, seed={self.seed}, duration={self.duration}, fps={self.fps}, size={self.size})"

    def _make(self, index: int) -> Clip:
        rng = np.random.default_rng([25, self.seed, index])
        combos = [(c, s) for c in COLORS for s in SHAPES]
        order = list(rng.permutation(len(combos)))
        tracks: list[Track] = []
        for lane in (0, 1):
            t = float(rng.uniform(0.0, 1.5)) if lane == 0 else float(rng.uniform(1.0, 3.0))
            while order:
                room = self.duration - 0.25 - t
                if room < 2.0:
                    break
                life = float(rng.uniform(2.0, min(4.5, room)))  # seconds on screen, slides included
                color, shape = combos[order.pop()]
                tracks.append(self._track(rng, lane, t, life, color, shape))
                t += life + float(rng.uniform(0.5, 2.0))
        return Clip(tracks, self.duration, self.fps, self.size, index, self.seed)

    def _track(self, rng, lane: int, t0: float, life: float, color: str, shape: str) -> Track:
        S, half = self.size, self.size / 2
        size = list(SIZES)[int(rng.integers(len(SIZES)))]
        d = max(6, int(round(SIZES[size] * S * rng.uniform(0.92, 1.08))))
        y = lane * half + float(rng.uniform(2, half - d - 1))
        a, b = sorted(rng.uniform(2, S - d - 2, size=2))  # the drift inside the frame, left to right
        xs = [-d - 1.0, a, b, S + 1.0]
        if rng.integers(2):  # half of them travel right to left
            xs = [S + 1.0, b, a, -d - 1.0]
        ts = [t0, t0 + SLIDE, t0 + life - SLIDE, t0 + life]
        rgb = tuple(int(np.clip(v + rng.integers(-15, 16), 0, 255)) for v in COLORS[color])
        return Track(color, shape, size, d, rgb, [(t, x, y) for t, x in zip(ts, xs)])
