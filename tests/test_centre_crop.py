"""Maps of a model whose image processor centre-crops (the real CLIP: short side to 224, the middle 224 x 224 kept)
cover the part it kept: an outside tester's wide picture had the middle square's map stretched over all of it, the
peak beside the circle. Pictures drawn with PIL."""
import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image, ImageDraw

import mmkit
from mmkit.attention import processor_window
from mmkit.config import models_dir


def _with(**image_processor):
    return SimpleNamespace(processor=SimpleNamespace(image_processor=SimpleNamespace(**image_processor)))


@pytest.mark.parametrize("size, window", [((200, 100), (50, 0, 150, 100)), ((100, 300), (0, 100, 100, 200)),
                                          ((640, 480), (80, 0, 560, 480)), ((224, 224), None)])
def test_the_window_a_short_side_resize_and_centre_crop_keeps(size, window):
    m = _with(do_center_crop=True, do_resize=True, size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224})
    got = processor_window(m, Image.new("RGB", size))
    assert got == window if window is None else np.abs(np.subtract(got, window)).max() <= 1  # transformers rounds down


def test_no_window_without_a_crop_and_a_fixed_size_resize_keeps_the_middle_share():
    assert processor_window(_with(do_center_crop=False, crop_size={"height": 8, "width": 8}),
                            Image.new("RGB", (200, 100))) is None
    m = _with(do_center_crop=True, do_resize=True, size={"height": 256, "width": 256}, crop_size={"height": 224, "width": 224})
    assert processor_window(m, Image.new("RGB", (512, 256))) == (32, 16, 480, 240)  # 1/16 cut on each side


def test_maps_of_a_centre_cropping_clip_lie_on_the_part_it_saw(tmp_path):
    folder = tmp_path / "clip-centre-crop"
    shutil.copytree(models_dir() / "shapes-clip", folder)
    config = json.loads((folder / "processor_config.json").read_text())
    config["image_processor"].update(do_center_crop=True, size={"shortest_edge": 64},
                                     crop_size={"height": 64, "width": 64})
    (folder / "processor_config.json").write_text(json.dumps(config))
    m = mmkit.load_model(str(folder))
    picture = Image.new("RGB", (192, 64), (240, 240, 240))
    draw = ImageDraw.Draw(picture)
    draw.ellipse([70, 20, 89, 39], fill=(215, 40, 40))  # in the middle square the model sees (x 64-128)
    draw.rectangle([100, 36, 119, 55], fill=(40, 80, 215))
    maps = mmkit.attention_maps(m, picture, "red circle")
    assert maps.image.size == (64, 64) and maps.offset == (-64, 0) and maps.given_size == (192, 64)
    heat = maps.for_token("red", method="relevance", size="given")
    y, x = np.unravel_index(int(heat.argmax()), heat.shape)
    assert 70 <= x < 90 and 20 <= y < 40  # on the circle (x was 59 when the map was stretched over the picture)
    assert not heat[:, :64].any() and not heat[:, 128:].any()  # the model saw nothing there
    from widgets.base import padding_note

    assert "keeps the middle 64 x 64" in padding_note(maps)
