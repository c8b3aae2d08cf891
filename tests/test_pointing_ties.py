"""mmkit.metrics.pointing_hit on maps upsampled from a patch grid: a top patch at the picture's left or top edge is a
plateau out to that edge, and the peak is the tied pixel nearest the centre, not np.argmax's first (the edge pixel,
which can lie outside the object the patch covers). A flat map has no peak."""
import numpy as np

from mmkit.attention.maps import upsample
from mmkit.metrics import pointing_hit


def grid_with_top(r: int, c: int, seed: int = 0) -> np.ndarray:
    g = np.random.default_rng(seed).random((8, 8)).astype(np.float32) * 0.5
    g[r, c] = 1.0
    return upsample(g, (64, 64))  # patch (r, c) covers pixels [8r, 8r + 8) x [8c, 8c + 8)


def test_a_top_patch_at_the_left_or_top_edge_points_into_its_patch():
    left = grid_with_top(3, 0)
    assert np.argmax(left) % 64 == 0  # np.argmax alone: the plateau's first pixel, on the edge
    assert pointing_hit(left, (2, 24, 10, 32))  # an object 2-10 px in from the edge, covered by the patch
    top = grid_with_top(0, 5)
    assert pointing_hit(top, (40, 2, 48, 10))
    assert not pointing_hit(left, (0, 24, 2, 32))  # the edge pixels themselves are no longer the peak


def test_right_and_bottom_edges_and_inner_patches_point_as_before():
    for r, c, box in ((3, 7, (58, 24, 64, 32)), (7, 2, (16, 58, 24, 64)), (4, 4, (32, 32, 40, 40))):
        heat = grid_with_top(r, c, seed=r + c)
        y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
        assert pointing_hit(heat, box) == (box[0] <= x < box[2] and box[1] <= y < box[3]) == True  # noqa: E712


def test_maps_without_ties_point_at_their_argmax_and_a_flat_map_nowhere():
    rng = np.random.default_rng(1)
    for _ in range(50):
        heat = rng.random((int(rng.integers(5, 40)), int(rng.integers(5, 40))))
        y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
        assert pointing_hit(heat, (x, y, x + 1, y + 1)) and not pointing_hit(heat, (x + 1, y, x + 2, y + 1))
    assert not pointing_hit(np.full((16, 16), 0.3), (0, 0, 16, 16))
