"""Words beside a picture's shapes get a notice (a third outside tester's finding, 2026-12: a black title above one
shape drew a made-up second shape into 16 of 52 captions with no notice, and a coloured title was told it was a
small shape). Pictures drawn with PIL's own font."""
import pytest
from PIL import Image, ImageDraw, ImageFont

import mmkit
from mmkit.data.turns import Words, words
from mmkit.domain import picture_readings, reading_notices

WORDS = "words beside its shapes"


def slide(title="Example", colour=(0, 0, 0), size=(512, 384), font=28, shape=True, where=(24, 16)):
    im = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(im)
    d.text(where, title, fill=colour, font=ImageFont.load_default(size=font))
    if shape:
        w, h = size
        d.ellipse([w * 0.35, h * 0.35, w * 0.35 + h * 0.4, h * 0.75], fill=(200, 30, 30))
    return im


def notes(image, model="shapes-blip-caption"):
    m = mmkit.load_model(model)
    flags, counts, shapes = picture_readings(m, [image])
    return reading_notices(m, flags, counts, "caption", shapes=shapes)


@pytest.mark.parametrize("title", ["Example", "Lecture 3: Shapes", "What do you see?"])
@pytest.mark.parametrize("colour", [(0, 0, 0), (20, 120, 40), (30, 40, 200)])
def test_a_title_above_a_shape_is_read_as_words(title, colour):
    im = slide(title, colour)
    found = words(im)
    assert len(found) >= 1 and all(isinstance(w, Words) for w in found)
    said = notes(im)
    assert sum(WORDS in n for n in said) == 1
    assert not any("smaller than that" in n for n in said)  # a coloured letter is no small shape


def test_a_label_under_a_shape_is_read_as_words():
    """(Letters under about 7 px tall on the reading's copy, at most 256 px long, are specks: a 14 px label on a 256 px
    slide is not read.)"""
    assert words(slide("Fig. 1", size=(256, 192), font=18, where=(100, 165)))


def test_a_page_of_text_without_a_shape_is_left_to_the_detector():
    im = slide("Fusion lets words and pictures meet", shape=False, font=22)
    assert words(im) == [] and not any(WORDS in n for n in notes(im))


def test_shapesworld_scenes_show_no_words():
    """Its dotted and striped textures are rows of alike parts, not letters."""
    from mmkit.data import ShapesWorld

    images = ShapesWorld(80, seed=5, split="test", style=["texture", "plain", "sketch", "big"]).images
    assert [words(im) or [] for im in images] == [[]] * len(images)
