"""The bundled real photos load offline as RGB images."""
import pytest

from mmkit import InputError
from mmkit.data import SAMPLES, sample_images, sample_path


def test_every_sample_photo_loads():
    photos = sample_images()
    assert set(photos) == set(SAMPLES) and len(photos) >= 5
    for name, im in photos.items():
        assert im.mode == "RGB" and min(im.size) >= 200, name


def test_unknown_sample_names_the_choices():
    with pytest.raises(InputError, match="astronaut"):
        sample_path("dog")
