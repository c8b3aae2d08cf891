"""Data: robust image loading, ShapesWorld, and bundled sample photos."""
from .images import load_image
from .samples import SAMPLES, sample_images, sample_path
from .shapes import ANSWERS, COLORS, HELD_OUT, QA, QUESTION_KINDS, SHAPES, SIZES, Obj, Scene, ShapesWorld

__all__ = ["load_image", "ShapesWorld", "Scene", "Obj", "QA", "ANSWERS", "COLORS", "SHAPES", "SIZES",
           "HELD_OUT", "QUESTION_KINDS", "sample_images", "sample_path", "SAMPLES"]
