"""Shared fixtures: random-init model directories (tiny for plumbing, base-size for the real architectures)."""
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory):
    """A function (family, size) -> directory of a random-init model, built once per session."""
    from mmkit.testing import random_model_dir

    made = {}

    def get(family: str, size: str = "tiny"):
        if (family, size) not in made:
            made[family, size] = random_model_dir(family, size, tmp_path_factory.mktemp(f"{family}-{size}"))
        return str(made[family, size])

    return get


@pytest.fixture(scope="session")
def scenes():
    from mmkit.data import ShapesWorld

    return ShapesWorld(4, seed=0)


@pytest.fixture(scope="module")
def one_thread():
    """Run a module's tests on one torch thread (tiny models: as fast, and it shares the CPU better)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def draw_shape():
    """A function (shape, rgb, background, size, frac) -> one circle, square or triangle drawn with PIL's own
    primitives (not ShapesWorld's renderer), centred, its diameter `frac` of the picture's short side. Its `known`
    holds a red, green and blue near ShapesWorld's own, as a learner would pick them."""
    from PIL import Image, ImageDraw

    def draw(shape: str, rgb, bg=(255, 255, 255), size=(200, 150), frac=0.5):
        im = Image.new("RGB", size, bg)
        (w, h), d = size, ImageDraw.Draw(im)
        r, x, y = frac * min(size) / 2, w / 2, h / 2
        if shape == "circle":
            d.ellipse([x - r, y - r, x + r, y + r], fill=rgb)
        elif shape == "square":
            d.rectangle([x - r, y - r, x + r, y + r], fill=rgb)
        else:
            d.polygon([(x, y - r), (x - r, y + 0.8 * r), (x + r, y + 0.8 * r)], fill=rgb)
        return im

    draw.known = {"red": (220, 30, 30), "green": (30, 170, 40), "blue": (30, 60, 220)}
    return draw


@pytest.fixture(scope="module")
def clip_model():
    """The bundled shapes-clip (the video tests' zero-shot and search model)."""
    import mmkit

    return mmkit.load_model("shapes-clip")


@pytest.fixture(scope="module")
def cap_model():
    """The bundled shapes-blip-caption (the video tests' captioner)."""
    import mmkit

    return mmkit.load_model("shapes-blip-caption")
