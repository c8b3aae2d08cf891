"""The "more than two shapes" notice counts shapes in other colours (an outside tester's finding: three shapes,
one of them orange, got no such notice, since the colour count reads only red, green and blue). Pictures drawn
with PIL, on sheets of several colours and sizes."""
import warnings

import pytest
from PIL import Image, ImageDraw

import mmkit
from mmkit.domain import picture_readings, reading_notices, shape_counts

CROWD = "scenes of one or two shapes"
RED, GREEN, BLUE = (220, 30, 30), (30, 170, 40), (40, 60, 220)
ORANGE, DARK_ORANGE, PURPLE, YELLOW = (255, 140, 0), (255, 100, 0), (128, 0, 128), (255, 220, 0)


def row(colours, bg=(255, 255, 255), side=96):
    """One circle per colour, in a row across the middle of a square picture (four: two rows of two, so that
    they are not smaller than ShapesWorld draws its shapes)."""
    im = Image.new("RGB", (side, side), bg)
    d = ImageDraw.Draw(im)
    across = 2 if len(colours) == 4 else len(colours)
    s = side // (2 * across + 1)
    for i, c in enumerate(colours):
        x, y = s * (2 * (i % across) + 1), (side // 2 - s // 2) if len(colours) < 4 else s * (2 * (i // across) + 1)
        d.ellipse([x, y, x + s, y + s], fill=c)
    return im


def notices(image, model="shapes-blip-caption"):
    m = mmkit.load_model(model)
    flags, counts, shapes = picture_readings(m, [image])
    return counts[0], reading_notices(m, flags, counts, "caption", shapes=shapes)


@pytest.mark.parametrize("bg", [(255, 255, 255), (240, 240, 240), (30, 30, 30)])
@pytest.mark.parametrize("side", [96, 300])
@pytest.mark.parametrize("colours", [(RED, GREEN, ORANGE), (ORANGE, PURPLE, YELLOW), (BLUE, ORANGE, PURPLE, RED)])
def test_shapes_in_other_colours_are_counted(colours, side, bg):
    if bg == (30, 30, 30) and PURPLE in colours:
        colours = tuple(c for c in colours if c != PURPLE) + (YELLOW,)  # purple on near-black is hardly a shape
    count, said = notices(row(colours, bg, side))
    assert count == len(colours)
    assert any(CROWD in n and f"{len(colours)} shapes" in n for n in said)


@pytest.mark.parametrize("colours", [(RED, DARK_ORANGE), (GREEN, ORANGE), (PURPLE, YELLOW), (DARK_ORANGE,)])
@pytest.mark.parametrize("side", [96, 300])
def test_one_or_two_shapes_are_not_counted_twice(colours, side):
    """A dark orange reads as red to the colour count and as another colour to the shape reading: counting both
    said "3 shapes" of two."""
    count, said = notices(row(colours, side=side))
    assert count == len(colours)
    assert not any(CROWD in n for n in said)


def test_the_task_call_says_it_once():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mmkit.caption("shapes-blip-caption", row((RED, GREEN, ORANGE)))
    crowd = [w for w in caught if issubclass(w.category, mmkit.OutOfDomainWarning) and CROWD in str(w.message)]
    assert len(crowd) == 1 and "3 shapes" in str(crowd[0].message)


def test_the_ground_counts_only_where_the_colour_count_cannot_see():
    """_readings gives a ground count only with a shape in another colour (or lamps on a housing, test_forms);
    shape_counts keeps the larger of the two counts."""
    from mmkit.domain import _readings

    assert shape_counts([2, 1, 3], [([], 0), ([], 3), ([], 1)]) == [2, 3, 3]
    (_, plain), (_, odd) = _readings([row((RED, GREEN)), row((RED, GREEN, ORANGE))])
    assert plain == 0 and odd == 3


def test_shapesworld_scenes_keep_their_count():
    from mmkit.data import ShapesWorld

    images = ShapesWorld(24, seed=3, split="test", style=["plain", "dark", "solid", "sketch"]).images
    flags, counts, _ = picture_readings(mmkit.load_model("shapes-clip"), images)
    assert not any(flags) and max(counts) <= 2


@pytest.mark.parametrize("field", [RED, GREEN, BLUE])
@pytest.mark.parametrize("shape", ["circle", "square", "cross"])
def test_a_white_shape_on_a_coloured_field_is_a_shape_in_another_colour(field, shape):
    """An outside tester's white shapes on red, green and blue fields (a Swiss flag among them): 4 of 10 got no
    notice, and shapes-clip answered "green square"."""
    from mmkit.data.hues import odd_colours

    im = Image.new("RGB", (300, 200), field)
    d = ImageDraw.Draw(im)
    if shape == "circle":
        d.ellipse([110, 60, 190, 140], fill="white")
    elif shape == "square":
        d.rectangle([110, 60, 190, 140], fill="white")
    else:
        d.rectangle([135, 45, 165, 155], fill="white")
        d.rectangle([95, 85, 205, 115], fill="white")
    assert [o.name for o in odd_colours(im)] == ["white"]
    count, said = notices(im)
    assert any("a white shape" in n for n in said) and not any("no such shapes" in n for n in said)


def test_a_grey_piece_on_a_grey_ground_is_left_to_the_detector():
    from mmkit.data.hues import odd_colours

    im = Image.new("RGB", (200, 200), (240, 240, 240))
    ImageDraw.Draw(im).rectangle([60, 60, 140, 140], fill=(110, 110, 110))
    assert odd_colours(im) == []
