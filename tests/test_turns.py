"""mmkit.data.turns: squares and triangles turned further than the bundled models know (TURN_LIMIT) are found
on one-colour backgrounds; circles, slightly turned shapes and ShapesWorld's upright ones are not flagged; other
backgrounds get no opinion. The pictures are drawn with PIL's ImageDraw, except the ShapesWorld scenes."""
import io
import math

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mmkit.data import ShapesWorld, sample_images
from mmkit.data.turns import TURN_LIMIT, ShapeTurn, turned_past, turned_shapes

RED, GREEN, BLUE = (215, 40, 40), (35, 160, 60), (40, 80, 215)


def polygon(n: int, turn: float, R: float, c: float):
    """A regular n-gon of circumradius R about (c, c), apex up (triangle) or upright (square), turned by `turn`."""
    start = (-math.pi / 2 if n == 3 else -math.pi / 4) + math.radians(turn)
    angles = [start + 2 * math.pi * k / n for k in range(n)]
    return [(c + R * math.cos(a), c + R * math.sin(a)) for a in angles]


def finished(im: Image.Image, side: int, smooth: bool, jpeg: int) -> Image.Image:
    """A drawing made at 4x (smooth) brought to side x side pixels, then JPEG-compressed at quality `jpeg` (0: not)."""
    if smooth:
        im = im.resize((side, side), Image.LANCZOS)
    if jpeg:
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=jpeg)
        im = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return im


def drawing(n: int, turn: float, side: int = 256, colour=RED, sheet="white", smooth=False, jpeg=0, frac=0.4):
    """One shape (n = 3 triangle, 4 square, 0 circle) of circumradius frac * side / 2 in the middle of a sheet."""
    k = 4 if smooth else 1
    im = Image.new("RGB", (side * k, side * k), sheet)
    d, R, c = ImageDraw.Draw(im), frac * side * k / 2, side * k / 2
    if n:
        d.polygon(polygon(n, turn, R, c), fill=colour)
    else:
        d.ellipse([c - R, c - R, c + R, c + R], fill=colour)
    return finished(im, side, smooth, jpeg)


@pytest.mark.parametrize("n, turn, folded", [(4, 45, 45), (3, 180, 60), (3, 90, 30), (4, 120, 30)])
def test_turned_squares_and_triangles_are_found(n, turn, folded):
    """A diamond and a triangle pointing down or sideways: what the bundled models misname."""
    im = drawing(n, turn)
    found = turned_shapes(im)
    assert len(found) == 1 and isinstance(found[0], ShapeTurn)
    assert found[0].shape == ("square" if n == 4 else "triangle")
    assert found[0].turn == pytest.approx(folded, abs=1.5)
    assert turned_past(im)


@pytest.mark.parametrize("n, turn", [(4, 10), (3, 15), (4, 0), (3, 0), (4, 95), (3, 125)])
def test_shapes_turned_as_shapesworld_turns_them_are_not_flagged(n, turn):
    im = drawing(n, turn, colour=BLUE, sheet=(20, 20, 30))
    (found,) = turned_shapes(im)
    assert found.turn == pytest.approx(turn % (90 if n == 4 else 120), abs=1.5)
    assert not turned_past(im)


def test_a_circle_is_no_square_or_triangle():
    for side, smooth in ((64, False), (256, True)):
        assert turned_shapes(drawing(0, 0, side=side, colour=GREEN, smooth=smooth)) == []


def test_small_big_soft_and_compressed_pictures():
    small = drawing(4, 40, side=64, frac=0.35, smooth=True)  # a 22 px diamond
    big = drawing(3, 60, side=2000, jpeg=50, colour=GREEN, sheet=(230, 225, 210))
    assert turned_past(small) and turned_past(big)
    (b,) = turned_shapes(big)
    x0, y0, x1, y1 = b.box  # in the picture's own pixels
    assert 500 < x0 < 700 and 1300 < x1 < 1500 and y1 - y0 > 500
    assert not turned_past(drawing(4, 12, side=1000, smooth=True, jpeg=40))


def test_two_shapes_each_read():
    im = Image.new("RGB", (300, 200), "white")
    d = ImageDraw.Draw(im)
    d.polygon([(x + 70, y + 100) for x, y in polygon(4, 45, 45, 0)], fill=RED)
    d.polygon([(x + 220, y + 100) for x, y in polygon(3, 5, 45, 0)], fill=BLUE)
    found = sorted(turned_shapes(im), key=lambda s: s.box[0])
    assert [s.shape for s in found] == ["square", "triangle"]
    assert found[0].turn > TURN_LIMIT > found[1].turn


@pytest.mark.parametrize("style, n", [("plain", 8), ("light", 4), ("dark", 4), ("solid", 4), ("sketch", 4), ("big", 3)])
def test_shapesworld_scenes_are_read_turned_as_far_as_shapesworld_turns_them(style, n):
    """ShapesWorld turns a few shapes by up to 20 degrees, past TURN_LIMIT: those are flagged (the bundled models
    misname many), none further, and no plain scene."""
    for scene in ShapesWorld(n, style=style, split="test", seed=5):
        turns = [s.turn for s in turned_shapes(scene.image) or []]  # None: a ground that is not one colour
        assert all(t <= 20.5 for t in turns), (style, scene.index, scene.caption, turns)
        assert turned_past(scene.image) == any(t > TURN_LIMIT for t in turns)
        assert style != "plain" or not turned_past(scene.image)


@pytest.mark.parametrize("n", [3, 4])
def test_the_limit_lies_between_what_the_models_name_and_what_they_misname(n):
    """An outside tester's squares were named right by the six bundled models 26 of 36 times at 15 degrees and 13 at
    17.5 (4 at 20, 0 at 25), when the limit was 25 and nothing was said: 15 is not flagged, 17.5 is, either way."""
    for side, smooth, sheet in ((64, False, "white"), (300, True, (240, 240, 240)), (700, True, (20, 20, 30))):
        for sign in (1, -1):
            assert not turned_past(drawing(n, sign * 15, side=side, smooth=smooth, sheet=sheet))
            assert turned_past(drawing(n, sign * 17.5, side=side, smooth=smooth, sheet=sheet))


def test_every_square_and_triangle_of_plain_scenes_is_read_upright():
    plain = ShapesWorld(8, seed=0)
    read = [s for scene in plain for s in turned_shapes(scene.image)]
    assert len(read) == sum(o.shape != "circle" for scene in plain for o in scene.objects)
    assert all(s.turn < 1 for s in read)


def test_other_backgrounds_get_no_opinion():
    side = 128
    t = np.linspace(0, 1, side)[None, :, None]  # (1, W, 1)
    ground = np.broadcast_to(t * np.array([250, 200, 40]) + (1 - t) * np.array([20, 40, 160]), (side, side, 3))
    gradient = Image.fromarray(ground.astype(np.uint8))
    ImageDraw.Draw(gradient).polygon(polygon(4, 45, 30, side / 2), fill=RED)
    assert turned_shapes(gradient) is None and not turned_past(gradient)
    photo = sample_images(["coffee"])["coffee"]
    assert turned_shapes(photo) is None and not turned_past(photo)
    assert turned_shapes(Image.new("RGB", (64, 64), (240, 240, 240))) == []  # one colour, nothing on it


def test_a_bundled_model_warns_of_a_turned_shape_and_not_of_upright_ones():
    """The check (mmkit.domain) says so next to the result: all six bundled models called a diamond a circle."""
    import warnings

    import mmkit
    from mmkit.domain import notices_per_image

    m = mmkit.load_model("shapes-clip")
    labels = ["red circle", "red square", "red triangle"]

    def said(pictures):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            mmkit.zero_shot(m, pictures, labels)
        return [str(w.message) for w in caught if issubclass(w.category, mmkit.OutOfDomainWarning)]

    assert any("a square turned 45 degrees" in n for n in said(drawing(4, 45)))
    assert any("a triangle that does not point up" in n for n in said(drawing(3, 180)))
    assert said([drawing(4, 10), drawing(3, 0), drawing(0, 0)]) == []
    assert said([s.image for s in ShapesWorld(8, seed=4, style="plain")]) == []
    pictures = [drawing(4, 0), drawing(4, 45, side=300), drawing(3, 10)]
    _, per_picture = notices_per_image(m, pictures, "zero-shot result", lambda: mmkit.zero_shot(m, pictures, labels))
    assert [bool(n) for n in per_picture] == [False, True, False]
    assert "a square turned 45 degrees" in per_picture[1][0]


def test_a_picture_whose_shapes_are_all_small_gets_a_notice():
    """An outside lecturer's 8-16 px shapes on 128 px sheets were captioned 'there are no shapes' or misnamed,
    without a word: ShapesWorld draws shapes a sixth to a third as wide as the picture."""
    import warnings

    import mmkit
    from mmkit.data.turns import small_shapes

    tiny = drawing(0, 0, side=128, frac=0.1)
    assert [s.share < 0.135 for s in small_shapes(tiny)] == [True]
    assert small_shapes(drawing(4, 0, side=128, frac=0.3)) == []
    assert not any(small_shapes(s.image) for s in ShapesWorld(20, seed=6, style="tiny"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mmkit.caption(mmkit.load_model("shapes-blip-caption"), tiny)
    assert any("smaller than that" in str(w.message) for w in caught)



def scattered(rng, side: int, shapes: int, smooth: bool, jpeg: int, sheet):
    """`shapes` squares, triangles and circles at random turns, sizes and places on one sheet, drawn with PIL."""
    k = 4 if smooth else 1
    im = Image.new("RGB", (side * k, side * k), sheet)
    d = ImageDraw.Draw(im)
    for _ in range(shapes):
        n, R = int(rng.choice([0, 3, 4])), rng.uniform(0.07, 0.22) * side
        cx, cy = rng.uniform(R + 2, side - R - 2, 2)
        colour = [RED, GREEN, BLUE][rng.integers(3)]
        if n:
            d.polygon([((cx + x) * k, (cy + y) * k) for x, y in polygon(n, rng.uniform(0, 120), R, 0)], fill=colour)
        else:
            d.ellipse([(cx - R) * k, (cy - R) * k, (cx + R) * k, (cy + R) * k], fill=colour)
    return finished(im, side, smooth, jpeg)


def test_small_pictures_are_read_with_numpy_as_larger_ones_are_with_pil(monkeypatch):
    """ground_shapes reads pictures up to NUMPY_PIXELS with numpy and larger ones with PIL's C loops: the same
    distances, shapes and readings either way."""
    from mmkit.data import turns

    rng = np.random.default_rng(3)
    pictures = [scattered(rng, 100, 3, smooth=True, jpeg=0, sheet=(30, 40, 90)), drawing(4, 40, side=90, jpeg=50),
                drawing(3, 10, side=64, smooth=True, sheet=(240, 240, 240))]
    small = [turns.ground_shapes(im) for im in pictures]
    monkeypatch.setattr(turns, "NUMPY_PIXELS", 0)
    for im, a in zip(pictures, small):
        b = turns.ground_shapes(im)
        assert np.array_equal(a.dist, b.dist) and np.array_equal(a.labels, b.labels) and a.shapes == b.shapes
        assert np.array_equal(a.pixels, b.pixels) and a.scale == b.scale
        assert turns.turned_shapes(im, TURN_LIMIT, a) == turns.turned_shapes(im, TURN_LIMIT, b)
