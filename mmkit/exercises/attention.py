"""Exercises of notebook 08 (attention explained): rollout, pointing game, mass inside the box."""
from __future__ import annotations

import numpy as np

from ..metrics import mass_in_box, pointing_hit
from ..attention.maps import rollout, upsample
from .core import Case, exercise


def _attention(rng, layers: int, heads: int, L: int) -> np.ndarray:
    """(layers, heads, L, L) random row-stochastic attention."""
    a = rng.random((layers, heads, L, L)) ** 3  # peaky rows, like trained heads
    return (a / a.sum(-1, keepdims=True)).astype(np.float32)


@exercise("rollout", "08", "attention rollout: multiply the layers' (A + I) / 2, heads averaged, first layer rightmost",
          rollout, atol=1e-5,
          hint="start from the identity; for each layer in order: average the heads, A = 0.5 * A + 0.5 * I, "
               "renormalise rows, then r = A @ r (the new layer on the left)")
def _rollout_cases(rng):
    yield Case("edge: one layer, one head", (_attention(rng, 1, 1, 4),))
    eye = np.broadcast_to(np.eye(5, dtype=np.float32), (3, 2, 5, 5)).copy()
    yield Case("edge: every token attends to itself (rollout = I)", (eye,))
    yield Case("edge: order of layers matters (two different layers)", (_attention(rng, 2, 1, 3),))
    for _ in range(5):
        yield Case("random", (_attention(rng, int(rng.integers(1, 6)), int(rng.integers(1, 5)), int(rng.integers(2, 12))),))


@exercise("pointing_hit", "08", "pointing game: is the map's peak inside box = (x0, y0, x1, y1)?",
          pointing_hit,
          hint="np.argmax gives a flat index: np.unravel_index turns it into (row, col) = (y, x); the box holds "
               "x0 <= x < x1 and y0 <= y < y1 (x1 and y1 are exclusive, as in Python slices). np.argmax takes the "
               "first of several pixels with the top value: when several share it (np.nonzero(heat == heat.max())), "
               "take the one nearest the centre ((H - 1) / 2, (W - 1) / 2), the first of them on a tie; a flat map "
               "(every pixel equal) has no peak: False")
def _hit_cases(rng):
    def heat(h, w, y, x):
        m = rng.random((h, w)) * 0.5
        m[y, x] = 1.0
        return m

    yield Case("edge: peak on the box's left edge (inside)", (heat(32, 32, 10, 4), (4, 8, 12, 16)))
    yield Case("edge: peak just right of the box (x1 is exclusive)", (heat(32, 32, 10, 12), (4, 8, 12, 16)))
    yield Case("edge: a non-square map, x and y not swapped", (heat(20, 50, 3, 40), (35, 0, 50, 6)))
    yield Case("edge: swapped x and y would hit", (heat(40, 40, 30, 5), (25, 0, 40, 10)))

    def patch_peak(r, c):  # an 8 x 8 map with one top cell, upsampled to 64 x 64 px as the models' maps are
        g = rng.random((8, 8)).astype(np.float32) * 0.5
        g[r, c] = 1.0
        return upsample(g, (64, 64))  # cell (r, c) covers pixels [8r, 8r + 8) x [8c, 8c + 8)

    yield Case("edge: a top patch at the left edge, upsampled: x = 0..3 tie (the one nearest the centre, x = 3, is "
               "in the box)", (patch_peak(3, 0), (2, 16, 14, 40)))
    yield Case("edge: a top patch at the bottom edge: y = 60..63 tie (y = 60, nearest the centre, is in the box)",
               (patch_peak(7, 4), (28, 40, 44, 61)))
    yield Case("edge: a flat map has no peak (a miss, even with the whole picture as the box)",
               (np.full((16, 16), 0.25), (0, 0, 16, 16)))
    for _ in range(10):
        h, w = int(rng.integers(8, 64)), int(rng.integers(8, 64))
        x0, y0 = int(rng.integers(0, w - 1)), int(rng.integers(0, h - 1))
        box = (x0, y0, int(rng.integers(x0 + 1, w + 1)), int(rng.integers(y0 + 1, h + 1)))
        yield Case("random", (rng.random((h, w)), box))


@exercise("mass_in_box", "08", "share of a map's (non-negative) mass inside box = (x0, y0, x1, y1)",
          mass_in_box,
          hint="clip negative values to 0 first; rows are y, columns x: heat[y0:y1, x0:x1]; an all-zero map has 0 "
               "mass inside (avoid dividing by 0)")
def _mass_cases(rng):
    yield Case("edge: an all-zero map", (np.zeros((16, 16)), (2, 2, 8, 8)))
    yield Case("edge: negative values are ignored", (rng.standard_normal((16, 16)), (0, 0, 8, 4)))
    yield Case("edge: the box is the whole map", (rng.random((10, 12)), (0, 0, 12, 10)))
    yield Case("edge: a non-square map and box", (rng.random((20, 40)), (30, 2, 40, 5)))
    for _ in range(6):
        h, w = int(rng.integers(4, 40)), int(rng.integers(4, 40))
        x0, y0 = int(rng.integers(0, w - 1)), int(rng.integers(0, h - 1))
        box = (x0, y0, int(rng.integers(x0 + 1, w + 1)), int(rng.integers(y0 + 1, h + 1)))
        yield Case("random", (rng.random((h, w)) ** 4, box))
