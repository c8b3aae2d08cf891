"""Pictures under mmkit.domain.TINY_SIDE pixels a side get a notice (an outside tester's finding, 2026-12: 12 pictures
of 8-24 px got none, and shapes-clip misnamed 3 of 3 shapes at 8 px). Pictures drawn with PIL."""
import warnings

import pytest
from PIL import Image, ImageDraw

import mmkit
from mmkit.domain import TINY_SIDE, picture_readings, reading_notices


def triangle(side, colour=(20, 150, 50)):
    big = Image.new("RGB", (256, 256), "white")
    ImageDraw.Draw(big).polygon([(128, 40), (40, 210), (216, 210)], fill=colour)
    return big.resize((side, side), Image.LANCZOS)


def notes(model, image):
    m = mmkit.load_model(model)
    flags, counts, shapes = picture_readings(m, [image])
    return reading_notices(m, flags, counts, "result", shapes=shapes)


@pytest.mark.parametrize("model", ["shapes-clip", "shapes-blip-caption", "shapes-vilt-vqa"])
@pytest.mark.parametrize("side", [8, 12, 16])
def test_a_tiny_picture_says_its_size(side, model):
    said = notes(model, triangle(side))
    assert any(f"the picture is {side} x {side} pixels" in n and model in n for n in said)
    assert not any("no such shapes" in n for n in said)  # the size explains it


@pytest.mark.parametrize("side", [TINY_SIDE, 24, 32, 64])
def test_a_picture_from_the_limit_up_does_not(side):
    assert not any("pixels a side" in n for n in notes("shapes-clip", triangle(side)))


def test_a_wide_strip_counts_by_its_short_side():
    assert any("the picture is 200 x 12 pixels" in n for n in notes("shapes-clip", triangle(12).resize((200, 12))))


def test_the_task_call_warns_once_and_a_batch_names_the_pictures():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mmkit.caption("shapes-blip-caption", [triangle(8), triangle(64), triangle(10)])
    sizes = [str(w.message) for w in caught if "pixels a side" in str(w.message)]
    assert len(sizes) == 1 and "2 of 3 pictures (index 0, 2)" in sizes[0]


def test_a_flagged_picture_under_32_px_gets_the_size_notice_not_no_such_shapes():
    """From TINY_SIDE to 32 px the size notice replaces the detector's "no such shapes" (a 24 px blue circle was named
    right and told it showed no such shapes)."""
    from mmkit.domain import TinyPicture, reading_notices

    m = mmkit.load_model("shapes-clip")
    said = reading_notices(m, [True], [1], "result", shapes=[[TinyPicture((24, 24))]])
    assert len(said) == 1 and "the picture is 24 x 24 pixels" in said[0]
    assert reading_notices(m, [False], [1], "result", shapes=[[TinyPicture((24, 24))]]) == []  # not flagged: none
