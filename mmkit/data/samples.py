"""A handful of real photos that install with dependencies (no downloads at run time).

Sources and licences are listed in data/README.md.
"""
from __future__ import annotations

from pathlib import Path

from PIL import Image

from ..errors import InputError
from .images import load_image

# name -> (package, path inside the package, what it shows)
SAMPLES = {
    "astronaut": ("skimage", "data/astronaut.png", "astronaut Eileen Collins in a NASA portrait"),
    "cat": ("skimage", "data/chelsea.png", "Chelsea the cat"),
    "coffee": ("skimage", "data/coffee.png", "a cup of coffee on a saucer"),
    "rocket": ("skimage", "data/rocket.jpg", "a rocket on its launch pad"),
    "grace_hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "Rear Admiral Grace Hopper"),
}


def sample_path(name: str) -> Path:
    """Path of one bundled sample photo."""
    if name not in SAMPLES:
        raise InputError(f"no sample photo called {name!r}; choose one of {sorted(SAMPLES)}")
    import importlib

    package, rel, _ = SAMPLES[name]
    path = Path(importlib.import_module(package).__file__).parent / rel
    if not path.exists():
        raise InputError(f"sample photo {name!r} is missing from the installed {package} ({path}); reinstall {package}")
    return path


def sample_images(names=None) -> dict[str, Image.Image]:
    """Real photos as {name: RGB PIL image}; all of them, or the names given."""
    return {n: load_image(sample_path(n)) for n in (names or SAMPLES)}
