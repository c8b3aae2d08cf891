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
from .tuning import Finetuned, finetune

__version__ = "0.1.0"


# Sub-modules that cost an import (torch, matplotlib, ...) load on first use: `import mmkit; mmkit.fusion.list()`.
def __getattr__(name: str):
    """Import the sub-module `mmkit.<name>` the first time it is read (PEP 562)."""
    import importlib
    import importlib.util

    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'mmkit' has no attribute {name!r}")


def __dir__() -> list:
    import pkgutil

    return sorted(set(globals()) | {m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")})


__all__ = ["AttentionMaps", "InputError", "Loaded", "OutOfDomainWarning", "ResourceError", "ShapesWorld", "answer", "attention_maps", "caption", "config", "data", "embed_images",
           "embed_texts", "list_models", "load_image", "load_model", "match", "retrieve", "viz", "zero_shot",
           "answer_video", "caption_video", "search_video", "finetune", "Finetuned"]
