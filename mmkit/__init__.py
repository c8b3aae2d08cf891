"""mmkit: learn and teach NLP + computer-vision fusion in Jupyter.

`import mmkit` is cheap: torch and transformers are imported when a model is first needed.
"""
from . import config, data, viz
from .data import ShapesWorld, load_image
from .errors import InputError, OutOfDomainWarning, ResourceError
from .models import Loaded, list_models, load_model
from .attention import AttentionMaps, attention_maps
from .tasks import answer, caption, embed_images, embed_texts, match, retrieve, zero_shot
from .video import answer_video, caption_video, search_video

__version__ = "0.1.0"

# Sub-modules that cost an import (torch, matplotlib, ...) load on first use: `import mmkit; mmkit.fusion.list()`.
_LAZY = ("annotations", "attention", "captioning", "cli", "config", "data", "exercises", "fusion", "jobs", "metrics",
         "models", "notices", "speedups", "tasks", "testing", "train", "video", "viz")


def __getattr__(name: str):
    """Import the sub-module `mmkit.<name>` the first time it is read (PEP 562)."""
    if name in _LAZY:
        import importlib
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":  # a dependency of the sub-module is missing: say which
                raise
    raise AttributeError(f"module 'mmkit' has no attribute {name!r}")


def __dir__() -> list:
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["AttentionMaps", "InputError", "Loaded", "OutOfDomainWarning", "ResourceError", "ShapesWorld", "answer", "attention_maps", "caption", "config", "data", "embed_images",
           "embed_texts", "list_models", "load_image", "load_model", "match", "retrieve", "viz", "zero_shot",
           "answer_video", "caption_video", "search_video"]
