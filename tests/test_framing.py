"""A bundled model gets a one-colour background repainted in ShapesWorld's plain grey (mmkit.data.framing.
plain_background, through mmkit.domain.fit_picture_at): the pictures here are drawn with PIL's ImageDraw, not by
ShapesWorld, on backgrounds people use (black, a dark navy, a dark purple)."""
import numpy as np
import pytest
from PIL import Image, ImageDraw

import mmkit
import mmkit.domain
from mmkit.data.framing import plain_background

COLOURS = {"red": (215, 40, 40), "green": (40, 170, 60), "blue": (40, 70, 215)}
SHAPES = ("circle", "square", "triangle")
DARK = ((0, 0, 0), (25, 25, 35), (60, 20, 70))


def draw(background, colour, shape, size=120):
    im = Image.new("RGB", (size, size), background)
    d, a, b = ImageDraw.Draw(im), size * 0.25, size * 0.75
    if shape == "triangle":
        d.polygon([(size / 2, a), (a, b), (b, b)], fill=colour)
    elif shape == "circle":
        d.ellipse([a, a, b, b], fill=colour)
    else:
        d.rectangle([a, a, b, b], fill=colour)
    return im


def drawings(background):
    return [(draw(background, COLOURS[c], s), c, s) for c in COLOURS for s in SHAPES]


def test_plain_background_repaints_a_one_colour_background_and_nothing_else():
    im = draw((10, 10, 20), COLOURS["red"], "circle")
    out, done = plain_background(im)
    a = np.asarray(out)
    assert done and tuple(a[0, 0]) == (240, 240, 240) and tuple(a[60, 60]) == COLOURS["red"]
    assert (a == (240, 240, 240)).all(-1).sum() == (np.asarray(im) == (10, 10, 20)).all(-1).sum()
    rng = np.random.default_rng(0)
    noisy = Image.fromarray(rng.integers(0, 256, (80, 80, 3), dtype=np.uint8))  # no one colour at its edges
    assert plain_background(noisy) == (noisy, False)
    grey = draw((240, 240, 240), COLOURS["blue"], "square")
    assert plain_background(grey) == (grey, False)  # the plain look already
    ground = rng.normal(100, 18, (80, 80, 1)).clip(0, 255)  # a mottled grey ground, no shape: its edge passes
    mottled = Image.fromarray(np.repeat(ground, 3, -1).astype(np.uint8))  # the one-colour test, but repainting it
    assert plain_background(mottled)[1] is False  # left blobs that the captioner called shapes
    half = Image.new("RGB", (80, 80), (0, 0, 0))
    half.paste((250, 250, 250), (0, 0, 40, 80))  # two colours at its edges: left alone
    assert plain_background(half)[1] is False


@pytest.mark.parametrize("background", DARK)
def test_bundled_models_name_shapes_drawn_on_dark_backgrounds(background):
    """Measured as drawn -> repainted on these 27 drawings (3 backgrounds): shapes-clip 14 -> 27 right, the
    captioner 26 -> 27; shapes-vilt-vqa's colours 27 both ways."""
    items = drawings(background)
    images = [im for im, _, _ in items]
    clip = mmkit.load_model("shapes-clip")
    probs = mmkit.zero_shot(clip, images, [f"{c} {s}" for c in COLOURS for s in SHAPES])
    assert sum(max(p, key=p.get) == f"{c} {s}" for p, (_, c, s) in zip(probs, items)) >= 8
    caps = mmkit.caption(mmkit.load_model("shapes-blip-caption"), images)
    assert sum(f"{c} {s}" in cap for cap, (_, c, s) in zip(caps, items)) >= 8, caps
    vilt = mmkit.load_model("shapes-vilt-vqa")
    answers = mmkit.answer(vilt, images, [f"what color is the {s}?" for _, _, s in items])
    assert sum(a == c for a, (_, c, _) in zip(answers, items)) >= 8, answers


def test_attention_maps_lie_on_the_picture_given_and_say_it_was_repainted(monkeypatch):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from widgets.base import padding_note

    im = draw((0, 0, 0), COLOURS["green"], "triangle")
    m = mmkit.load_model("shapes-blip-caption", attention=True)
    maps = mmkit.attention_maps(m, im)
    assert maps.repainted and maps.image.getpixel((2, 2)) == (0, 0, 0)  # drawn on the user's picture
    assert "green triangle" in maps.text and "repainted in the plain grey" in padding_note(maps)
    monkeypatch.setattr(mmkit.domain, "REPAINT", False)
    maps = mmkit.attention_maps(m, im)
    assert not maps.repainted and padding_note(maps) == ""


def test_other_models_get_the_picture_as_drawn(model_dirs):
    im = draw((0, 0, 0), COLOURS["red"], "circle")
    tiny = mmkit.load_model(model_dirs("clip"))
    assert mmkit.domain.fit_picture_at(tiny, im) == (im, (0, 0))
    shown, offset = mmkit.domain.fit_picture_at(mmkit.load_model("shapes-clip"), im)
    assert offset == (0, 0) and shown.getpixel((0, 0)) == (240, 240, 240)
