"""A drawing with no colours gets a notice that says so (an outside tester's finding, 2026-12: a red circle and a
blue square saved in grey, as L, LA and 16-bit, were captioned "a small green circle to the left of a large red
square" under the generic "for photos, load a pretrained model")."""
import numpy as np
import pytest
from PIL import Image, ImageDraw

import mmkit
from mmkit.domain import GreyPicture, _readings, picture_readings, reading_notices


def scene(mode="RGB"):
    im = Image.new("RGB", (128, 96), "white")
    d = ImageDraw.Draw(im)
    d.ellipse([10, 30, 50, 70], fill=(220, 30, 30))
    d.rectangle([70, 25, 115, 70], fill=(40, 60, 220))
    return im if mode == "RGB" else im.convert(mode).convert("RGB")


def notes(image, model="shapes-blip-caption"):
    m = mmkit.load_model(model)
    flags, counts, shapes = picture_readings(m, [image])
    return reading_notices(m, flags, counts, "caption", shapes=shapes)


@pytest.mark.parametrize("mode", ["L", "LA", "P"])
def test_a_grey_drawing_says_it_has_no_colours(mode):
    im = scene("L").convert(mode).convert("RGB")
    said = notes(im)
    assert any("has no colours" in n for n in said) and not any("no such shapes" in n for n in said)


def test_the_same_drawing_in_colour_does_not():
    assert not any("has no colours" in n for n in notes(scene()))


def test_a_grey_photo_is_left_to_the_detector():
    rng = np.random.default_rng(0)
    photo = Image.fromarray(np.repeat(rng.integers(0, 255, (96, 96, 1), dtype=np.uint8), 3, 2))
    assert _readings([photo])[0][0] == []  # no one-colour ground: "no such shapes", as before


def test_no_shapesworld_scene_reads_as_grey():
    from mmkit.data import ShapesWorld

    images = ShapesWorld(40, seed=2, split="test", style=["plain", "dark", "solid", "sketch"]).images
    assert not any(isinstance(f, GreyPicture) for found, _ in _readings(images) for f in found)
