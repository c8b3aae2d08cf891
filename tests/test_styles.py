"""ShapesWorld's looks: the same scenes and ground truth drawn on many backgrounds, canvases and renderers."""
import numpy as np
import pytest

from mmkit import InputError
from mmkit.data import COLORS, ShapesWorld
from mmkit.data.shapes import NO_SHAPES
from mmkit.data.styles import STYLES, TEST_PHOTOS, TEST_STYLES, TRAIN_PHOTOS, TRAIN_STYLES, fit_scene, resolve


def test_plain_is_the_default_look_bit_for_bit():
    a, b = ShapesWorld(6, seed=3), ShapesWorld(6, seed=3, style="plain")
    assert np.array_equal(a.arrays(), b.arrays())
    assert [s.qa for s in a] == [s.qa for s in b] and all(s.style == "plain" for s in b)


def test_held_out_styles_and_photos_are_disjoint_from_training():
    assert not set(TRAIN_STYLES) & set(TEST_STYLES)
    assert not set(TRAIN_PHOTOS) & set(TEST_PHOTOS)
    assert set(resolve("all")) == set(STYLES) and resolve("test") == TEST_STYLES


@pytest.mark.parametrize("style", sorted(STYLES))
def test_every_style_is_deterministic_and_keeps_objects_and_texts(style):
    plain = ShapesWorld(5, seed=11, objects=1, split="test")
    a = ShapesWorld(5, seed=11, objects=1, split="test", style=style)
    b = ShapesWorld(5, seed=11, objects=1, split="test", style=style)
    for p, x, y in zip(plain, a, b):
        assert np.array_equal(np.asarray(x.image), np.asarray(y.image))  # a pure function of (split, seed, index)
        assert x.caption == p.caption and x.style == style  # the look changes pixels, not the ground truth
        assert [(o.color, o.shape, o.size) for o in x.objects] == [(o.color, o.shape, o.size) for o in p.objects]


@pytest.mark.parametrize("style", [s for s in STYLES if s != "plain"])
def test_masks_sit_on_pixels_of_the_named_colour(style):
    for scene in ShapesWorld(8, seed=2, objects=(1, 2), split="test", style=style):
        a = np.asarray(scene.image, np.float32)
        H, W = a.shape[:2]
        for o in scene.objects:
            x0, y0, x1, y1 = o.box
            assert 0 <= x0 < x1 <= W and 0 <= y0 < y1 <= H and o.mask.shape == (H, W)
            ys, xs = np.nonzero(o.mask)
            assert xs.min() == x0 and ys.min() == y0
            # the inside of the shape (its middle third) is closest to its own colour among the three
            cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
            r = max(1, (min(x1 - x0, y1 - y0)) // 6)
            mean = a[cy - r:cy + r + 1, cx - r:cx + r + 1].reshape(-1, 3).mean(0)
            nearest = min(COLORS, key=lambda c: np.linalg.norm(mean - np.array(COLORS[c])))
            assert nearest == o.color, (style, scene.index, o.name, mean)


def test_canvas_sizes_per_style():
    sides = {st: [s.image.size for s in ShapesWorld(12, seed=0, style=st)] for st in ("tiny", "big", "photo")}
    assert all(32 <= w <= 40 and w == h for w, h in sides["tiny"])
    assert all(200 <= min(w, h) and max(w, h) <= 512 for w, h in sides["big"])
    assert any(w != h for w, h in sides["photo"])  # training canvases are not all square
    assert all(48 <= min(w, h) and max(w, h) <= 341 for w, h in sides["photo"])


def test_empty_scenes_tell_the_truth():
    world = ShapesWorld(40, seed=1, style="train", empty=0.5)
    empty = [s for s in world if not s.objects]
    assert 8 <= len(empty) <= 32
    for s in empty:
        answers = {q.question: q.answer for q in s.qa}
        assert s.caption == NO_SHAPES
        assert answers["how many shapes are there?"] == "zero" and answers["how many objects are there?"] == "zero"
        assert all(a == "no" for q, a in answers.items() if q.startswith("is there"))
    full = [s for s in world if s.objects and s.style != "plain"]
    assert all(any(q.question == "how many shapes are there?" for q in s.qa) for s in full)


def test_fit_scene_resizes_masks_with_the_picture():
    scene = ShapesWorld(1, seed=4, style="big", objects=2)[0]
    small = fit_scene(scene, 64)
    assert small.image.size == (64, 64) and [o.name for o in small.objects] == [o.name for o in scene.objects]
    for o, p in zip(scene.objects, small.objects):
        assert p.mask.shape == (64, 64) and p.mask.any()
        assert abs(p.center[0] / 64 - o.center[0] / scene.image.width) < 0.05


@pytest.mark.parametrize("bad", ["cartoon", ["plain", "nope"], [], 3])
def test_unknown_styles_name_the_choices(bad):
    with pytest.raises(InputError, match="style="):
        ShapesWorld(2, style=bad)


def test_empty_share_is_checked():
    with pytest.raises(InputError, match="empty="):
        ShapesWorld(2, empty=1.5)


def test_big_shapes_fill_more_of_the_picture_and_keep_their_words():
    usual = ShapesWorld(60, seed=5, objects=(1, 2), split="test", style="test")
    big = ShapesWorld(60, seed=5, objects=(1, 2), split="test", style="test", big_shapes=1.0)

    def sides(world, size):
        return [max(o.box[2] - o.box[0], o.box[3] - o.box[1]) / min(s.image.size)
                for s in world for o in s.objects if o.size == size and len(s.objects) == 1]

    # a large shape is drawn at 0.36 of the short side (+-8%); here up to 0.8 when it is alone
    assert max(sides(usual, "large")) < 0.42
    grown = sides(big, "large")
    assert max(grown) > 0.6 and min(grown) > 0.3 and max(grown) <= 0.86  # a box takes in edges and outlines
    assert max(sides(big, "small")) < 0.26  # small shapes keep their size, so the size words stay true
    for s in big:
        assert all(o.mask.any() for o in s.objects) and s.caption.startswith("a ")
        two = [o for o in s.objects if len(s.objects) == 2 and o.size == "large"]
        assert all(max(o.box[2] - o.box[0], o.box[3] - o.box[1]) / min(s.image.size) <= 0.5 for o in two)
    assert "big_shapes=1.0" in repr(big)


def test_no_big_shapes_draws_the_scenes_of_before():
    a = ShapesWorld(20, seed=8, style="train", empty=0.1)
    b = ShapesWorld(20, seed=8, style="train", empty=0.1, big_shapes=0.0)
    assert np.array_equal(np.stack([np.asarray(s.image).sum((0, 1)) for s in a]),
                          np.stack([np.asarray(s.image).sum((0, 1)) for s in b]))
    with pytest.raises(InputError, match="big_shapes="):
        ShapesWorld(2, big_shapes=-0.1)
