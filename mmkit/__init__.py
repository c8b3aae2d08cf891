"""mmkit: learn and teach NLP + computer-vision fusion in Jupyter.

`import mmkit` is cheap: torch and transformers are imported when a model is first needed.
"""
from . import config, data
from .data import ShapesWorld, load_image
from .errors import InputError

__version__ = "0.1.0"

__all__ = ["InputError", "load_image", "ShapesWorld", "config", "data"]
