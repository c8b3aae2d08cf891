"""The out-of-domain check: bundled models say so when a picture shows no ShapesWorld shapes, and still answer."""
import dataclasses
import warnings

import numpy as np
import pytest
from PIL import Image, ImageDraw

import mmkit
from mmkit import OutOfDomainWarning, domain
from mmkit.data import ShapesWorld, sample_images
from mmkit.data.styles import TEST_PHOTOS, TEST_STYLES, _photo_crop

pytestmark = pytest.mark.skipif(domain.load_detector() is None, reason="data/models/shapes-domain is not built")


def ood_warnings(fn, *args, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(*args, **kwargs)
    return out, [w for w in caught if issubclass(w.category, OutOfDomainWarning)]


@pytest.fixture(scope="module")
def photo():
    return sample_images(["cat"])["cat"]


def test_held_out_shape_scenes_pass():
    scenes = [s.image for st in ("plain", *TEST_STYLES) for s in ShapesWorld(20, seed=5, split="test", style=st)]
    flags = domain.out_of_domain(scenes)
    # measured 0.925 pass on 1,500 held-out scenes, 0.917 by the detector alone (data/models/shapes-domain/README.md);
    # the target is 0.95
    assert np.mean(flags) <= 0.12, f"{sum(flags)} of {len(flags)} held-out shape scenes flagged"


def test_photos_text_and_blank_pictures_are_flagged():
    rng = np.random.default_rng(3)
    photos = list(sample_images().values())
    crops = [Image.fromarray(_photo_crop(rng, int(rng.integers(40, 300)), int(rng.integers(40, 300)), TEST_PHOTOS)
                             .astype(np.uint8)) for _ in range(40)]
    text = Image.new("RGB", (240, 120), "white")
    d = ImageDraw.Draw(text)
    for y in range(5, 120, 14):
        d.text((4, y), "def main(): return a screenshot of some code", fill="black")
    assert all(domain.out_of_domain(photos)), "every sample photo is flagged"
    # measured 0.92 on 300 held-out photo crops (data/models/shapes-domain/README.md); these 41 give 0.90
    assert np.mean(domain.out_of_domain(crops + [text])) >= 0.85
    assert domain.out_of_domain([text]) == [True]


def test_drawn_shapes_pass_and_shapes_in_other_colours_are_flagged(draw_shape):
    backgrounds = ((255, 255, 255), (30, 30, 30))
    known = [draw_shape(s, rgb, bg, frac=f) for s in ("circle", "square", "triangle")
             for rgb in draw_shape.known.values() for bg in backgrounds for f in (0.3, 0.5, 0.75)]
    assert np.mean(domain.out_of_domain(known)) <= 0.15  # measured: 2 of 54, both filling 75% of a 200 x 150 picture
    other = {"yellow": (240, 220, 30), "purple": (140, 40, 170), "pink": (250, 120, 180), "grey": (128, 128, 128)}
    colours = [draw_shape(s, rgb, bg) for s in ("circle", "square", "triangle") for rgb in other.values()
               for bg in backgrounds]
    assert np.mean(domain.out_of_domain(colours)) >= 0.9  # measured: 24 of 24


def test_small_shapes_on_big_sheets_pass_on_a_second_look_and_other_colours_are_still_flagged(draw_shape, photo,
                                                                                               monkeypatch):
    """An outside tester's shapes 41 px wide on a 512 px sheet were captioned right and all told 'the picture
    shows no such shapes': in the detector's 40 px thumbnail they are 3 px wide. A flagged picture gets a second
    look at its content, cropped."""
    sheets = ((255, 255, 255), (245, 235, 210), (30, 30, 30))
    small = [draw_shape(s, rgb, bg, size, frac) for s in ("circle", "square", "triangle")
             for rgb in draw_shape.known.values() for bg in sheets for size in ((512, 512), (1000, 700))
             for frac in (0.08, 0.12)]
    assert not any(domain.out_of_domain(small))  # measured: 108 of 108 pass
    other = {"yellow": (240, 220, 30), "purple": (140, 40, 170), "pink": (250, 120, 180), "grey": (128, 128, 128)}
    colours = [draw_shape(s, rgb, bg, (512, 512), 0.1) for s in ("circle", "square", "triangle")
               for rgb in other.values() for bg in sheets]
    assert np.mean(domain.out_of_domain(colours)) >= 0.9  # measured: 36 of 36
    assert domain.content_crop(photo) is None and domain.content_crop(Image.new("RGB", (300, 200), "white")) is None
    crop = domain.content_crop(small[0])
    assert crop.size[0] == crop.size[1] <= 160 and np.asarray(crop)[0, 0].tolist() == [255, 255, 255]
    monkeypatch.setattr(domain, "second_look", lambda images, flags, detector: list(flags))
    assert np.mean(domain.out_of_domain(small)) >= 0.7  # the detector alone: 85 of 108 flagged


def test_a_bundled_model_warns_once_names_the_fix_and_still_answers(photo):
    m = mmkit.load_model("shapes-blip-caption")
    text, caught = ood_warnings(mmkit.caption, m, photo)
    assert isinstance(text, str) and text
    assert len(caught) == 1
    msg = str(caught[0].message)
    assert "shapes-blip-caption" in msg and "circles, squares and triangles" in msg and "load_model('blip-caption')" in msg
    assert "the picture seems to show no such shapes" in msg and "only knows filled red" in msg
    assert "unless it says 'there are no shapes'" in msg  # a caption saying so is what it was taught
    scene = ShapesWorld(1, seed=2, split="test", style="photo-test")[0].image
    _, quiet = ood_warnings(mmkit.caption, m, [scene, scene])
    assert quiet == []
    _, mixed = ood_warnings(mmkit.caption, m, [scene, photo, scene])
    assert len(mixed) == 1 and "1 of 3 pictures (index 1) seem to show no such" in str(mixed[0].message)
    # loaded by its folder, as collection workers load it, the model is named the same way in both notices
    mmkit.models.clear_cache()  # loaded first by its folder, as in a fresh worker process
    by_path = mmkit.load_model(str(mmkit.config.models_dir() / "shapes-blip-caption"))
    _, caught = ood_warnings(mmkit.caption, by_path, photo)
    _, words = ood_warnings(mmkit.caption, by_path, scene, prompt="a photograph of")
    assert len(caught) == 1 and len(words) == 1
    for w in caught + words:
        assert str(w.message).startswith("shapes-blip-caption is a bundled teaching model"), str(w.message)


@pytest.mark.parametrize("name,call", [
    ("shapes-blip-vqa", lambda m, im: mmkit.answer(m, im, "what color is the circle?")),
    ("shapes-vilt-vqa", lambda m, im: mmkit.answer(m, im, "how many shapes are there?")),
    ("shapes-clip", lambda m, im: mmkit.zero_shot(m, im, ["red circle", "blue square"])),
    ("shapes-align", lambda m, im: mmkit.embed_images(m, [im])),
    ("shapes-blip-itm", lambda m, im: mmkit.match(m, im, "a small red circle")),
    ("shapes-clip", lambda m, im: mmkit.attention_maps(m, im, "a red circle")),
    ("shapes-clip", lambda m, im: mmkit.retrieve(m, "a red circle", [im], k=1)),  # a gallery of pictures
    ("shapes-align", lambda m, im: mmkit.retrieve(m, im, ["a red circle", "a blue square"], k=1)),  # a picture query
])
def test_every_task_warns_on_a_photo(name, call, photo):
    out, caught = ood_warnings(call, mmkit.load_model(name), photo)
    assert out is not None and len(caught) == 1 and name in str(caught[0].message)


def test_pretrained_models_and_the_switch_never_warn(photo, monkeypatch):
    m = mmkit.load_model("shapes-blip-caption")
    as_pretrained = dataclasses.replace(m, spec=dataclasses.replace(m.spec, source="pretrained"))
    assert ood_warnings(mmkit.caption, as_pretrained, photo)[1] == []
    monkeypatch.setenv("MMKIT_DOMAIN_CHECK", "0")
    assert ood_warnings(mmkit.caption, m, photo)[1] == []


def test_a_detector_folder_records_its_own_size_and_thumbnail(tmp_path):
    """The detector's side, widths and thumbnail method come from its mmkit.json; a folder from before those keys
    existed (56 px box thumbnails, 32-64-64-64 widths) still loads as what it was."""
    import json

    from safetensors.torch import save_file

    pictures = [Image.new("RGB", (300, 200), (200, 40, 40)), Image.new("RGB", (33, 47), (20, 20, 20))]
    for name, meta in [("old", {}), ("new", {"side": 24, "channels": [8, 8, 8, 8], "thumbnail": "nearest2-box"})]:
        folder = tmp_path / name
        folder.mkdir()
        net = domain.detector_module(meta.get("side", 56), meta.get("channels", (32, 64, 64, 64)),
                                     meta.get("thumbnail", "box"))
        save_file(net.state_dict(), str(folder / "model.safetensors"))
        (folder / "mmkit.json").write_text(json.dumps({"threshold": 0.5, **meta}))
        loaded, threshold = domain.load_detector(str(folder))
        assert (loaded.side, loaded.channels, loaded.thumbnail) == (net.side, net.channels, net.thumbnail)
        assert threshold == 0.5 and domain.shape_scores(pictures, (loaded, threshold)).shape == (2,)
    assert (domain.load_detector(str(tmp_path / "old"))[0].side, domain.load_detector(str(tmp_path / "new"))[0].side) \
        == (56, 24)


def test_sampled_thumbnails_match_box_filtered_ones_on_smooth_pictures():
    ramp = np.linspace(0, 255, 480, dtype=np.float32)
    smooth = Image.fromarray(np.stack([np.tile(ramp, (320, 1)), np.tile(ramp[:320, None], (1, 480)),
                                       np.full((320, 480), 90.0)], -1).astype(np.uint8))
    box, sampled = domain.thumbnails([smooth], 40, "box"), domain.thumbnails([smooth], 40, "nearest2-box")
    assert box.shape == sampled.shape == (1, 3, 40, 40)
    assert np.abs(box - sampled).max() < 4 / 255  # a few grey levels apart
    small = Image.new("RGB", (50, 30), (10, 200, 30))  # under twice the side: no sampling step
    assert np.array_equal(domain.thumbnails([small], 40, "box"), domain.thumbnails([small], 40, "nearest2-box"))
    with pytest.raises(ValueError, match="thumbnail method"):
        domain.thumbnails([small], 40, "bicubic")


def drawn_scene(k: int, size=(400, 300), background=(245, 240, 230)) -> Image.Image:
    """k shapes (circles and squares in turn, the three colours in turn) side by side, drawn with PIL."""
    im = Image.new("RGB", size, background)
    d, (w, h) = ImageDraw.Draw(im), size
    r = min(w, h) // 12
    for j in range(k):  # clear of the edges (a region touching them is taken for background)
        cx, cy = int(w * (0.15 + 0.7 * (j + 0.5) / k)), h // 2 + (j % 2) * r
        rgb = ((220, 30, 30), (30, 170, 40), (30, 60, 220))[j % 3]
        (d.ellipse if j % 2 == 0 else d.rectangle)([cx - r, cy - r, cx + r, cy + r], fill=rgb)
    return im


def test_shapes_are_counted_on_drawings_and_scenes_and_photos_are_not_crowded():
    for k in (1, 2, 3, 4):
        for size, bg in (((400, 300), (245, 240, 230)), ((640, 360), (255, 255, 255)), ((300, 300), (40, 40, 45))):
            assert domain.count_shapes([drawn_scene(k, size, bg)]) == [k], (k, size, bg)
    few = [s.image for st in ("plain", *TEST_STYLES) for s in ShapesWorld(20, seed=9, objects=(1, 2), split="test", style=st)]
    many = [s.image for st in ("plain", *TEST_STYLES) for s in ShapesWorld(20, seed=9, objects=(3, 4), split="test", style=st)]
    # measured on 100 scenes per look (seed 3): 0.024 of one- or two-shape scenes counted above two, 0.925 of
    # three- or four-shape scenes (count_shapes' docstring)
    assert np.mean(np.array(domain.count_shapes(few)) > 2) <= 0.08
    assert np.mean(np.array(domain.count_shapes(many)) > 2) >= 0.8
    assert max(domain.count_shapes(list(sample_images().values()))) <= 2


def test_a_picture_with_more_shapes_than_the_scenes_held_gets_a_notice_the_answer_still_comes(monkeypatch, model_dirs):
    m = mmkit.load_model("shapes-blip-vqa")
    two, three = drawn_scene(2), drawn_scene(3)
    answer, caught = ood_warnings(mmkit.answer, m, three, "how many objects are there?")
    assert answer == "two"  # what the models learnt: it is honest only with the notice
    (w,) = caught
    assert "seems to show 3 shapes" in str(w.message) and "scenes of one or two" in str(w.message)
    assert "load_model('blip-vqa')" in str(w.message)
    assert ood_warnings(mmkit.answer, m, two, "how many objects are there?") == ("two", [])
    _, caught = ood_warnings(mmkit.caption, "shapes-blip-caption", [two, three, drawn_scene(4)])
    (w,) = caught
    assert "2 of 3 pictures (index 1, 2) seem to show more" in str(w.message)
    assert ood_warnings(mmkit.caption, mmkit.load_model(model_dirs("blip-caption")), three)[1] == []
    monkeypatch.setenv("MMKIT_DOMAIN_CHECK", "0")
    assert ood_warnings(mmkit.answer, m, three, "how many objects are there?")[1] == []


def test_each_picture_gets_its_own_crowd_notice_in_a_batch():
    m = mmkit.load_model("shapes-blip-caption")
    photo = sample_images(["cat"])["cat"]
    pictures = [drawn_scene(1), drawn_scene(3), photo]
    _, notes = domain.notices_per_image(m, pictures, "caption", lambda: mmkit.caption(m, pictures))
    assert notes[0] == []
    assert len(notes[1]) == 1 and "the picture seems to show 3 shapes" in notes[1][0]
    assert len(notes[2]) == 1 and "seems to show no such shapes" in notes[2][0]
