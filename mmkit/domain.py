"""Is this picture a shapes scene, and are these ShapesWorld's words? The cheap checks a bundled model runs first.

The bundled models only know ShapesWorld: red, green and blue circles, squares and triangles on some
background. Given a photo or a screenshot they still answer, confidently and wrongly. A tiny CNN (about
94k parameters on a 56 x 56 thumbnail, data/models/shapes-domain, trained by scripts/build_domain.py) scores
whether a picture shows such shapes; where it does not, the task emits `mmkit.OutOfDomainWarning` and
still returns its result. The text a bundled model is given (a question, labels, a query) is checked too: a word
no ShapesWorld text uses ("what is the capital of France?", "a photo of a cat") gets the same warning, since the
model has never read it. Pretrained models are never checked; MMKIT_DOMAIN_CHECK=0 turns both checks off.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

SIDE = 56  # thumbnail side the detector reads
DETECTOR_DIR = Path(__file__).resolve().parents[1] / "data" / "models" / "shapes-domain"
KNOWS = "red, green and blue circles, squares and triangles (ShapesWorld)"


def detector_module():
    """The detector's network, untrained: four 3x3 convolutions (two strided), max- and mean-pooled, one logit."""
    import torch
    from torch import nn

    class ShapesDetector(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 32, 3, stride=2, padding=1), nn.ReLU(),  # (B, 32, 28, 28)
                nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),  # (B, 64, 14, 14)
                nn.Conv2d(64, 64, 3, stride=1, padding=1), nn.ReLU(),  # (B, 64, 14, 14)
                nn.Conv2d(64, 64, 3, stride=1, padding=1), nn.ReLU(),  # (B, 64, 14, 14)
            )
            self.head = nn.Linear(128, 1)

        def forward(self, x):  # x: (B, 3, SIDE, SIDE) in [-0.5, 0.5]
            f = self.features(x)  # (B, 64, 14, 14)
            pooled = torch.cat([f.amax(dim=(2, 3)), f.mean(dim=(2, 3))], dim=1)  # (B, 128)
            return self.head(pooled)[:, 0]  # (B,) logit of "shows coloured shapes"

    return ShapesDetector()


def thumbnails(images) -> np.ndarray:
    """RGB PIL images -> (N, 3, SIDE, SIDE) float32 in [-0.5, 0.5] (a box-filtered resize)."""
    from PIL import Image

    arr = np.stack([np.asarray(im.convert("RGB").resize((SIDE, SIDE), Image.BOX), np.float32) for im in images])
    return (arr / 255.0 - 0.5).transpose(0, 3, 1, 2).copy()


@lru_cache(maxsize=1)
def load_detector(path: str = str(DETECTOR_DIR)):
    """(module in eval mode, threshold) from a saved detector folder; None when it is missing."""
    import json

    from safetensors.torch import load_file

    folder = Path(path)
    if not (folder / "model.safetensors").exists():
        return None
    net = detector_module()
    net.load_state_dict(load_file(str(folder / "model.safetensors")))
    net.eval()
    meta = json.loads((folder / "mmkit.json").read_text())
    return net, float(meta["threshold"])


def shape_scores(images, detector=None) -> np.ndarray:
    """P(the picture shows ShapesWorld-like coloured shapes) for each RGB PIL image: (N,) in [0, 1].

    Args:
        detector: (module, threshold) as load_detector returns it; the bundled one when None.
    """
    import torch

    loaded = detector or load_detector()
    if loaded is None:
        raise FileNotFoundError(f"the shapes-domain detector is missing from {DETECTOR_DIR}; run scripts/build_domain.py")
    net, _ = loaded
    with torch.no_grad():
        return torch.sigmoid(net(torch.from_numpy(thumbnails(images)))).numpy()


def out_of_domain(images) -> list[bool]:
    """For each RGB PIL image: True when the detector finds no ShapesWorld-like shapes in it."""
    loaded = load_detector()
    if loaded is None:
        return [False] * len(images)
    return [bool(s < loaded[1]) for s in shape_scores(images)]


def is_bundled(spec) -> bool:
    """Whether a model spec is one of the bundled ShapesWorld models: by name, or by its folder in data/models."""
    if spec.source == "bundled":
        return True
    if spec.source != "path":
        return False
    from .config import models_dir

    try:
        return Path(spec.repo).resolve().parent == models_dir().resolve()
    except (OSError, ValueError):
        return False


def checked(m) -> bool:
    """Whether the domain checks apply to a model: a bundled one, unless MMKIT_DOMAIN_CHECK=0."""
    import os

    spec = getattr(m, "spec", None)
    return spec is not None and is_bundled(spec) and os.environ.get("MMKIT_DOMAIN_CHECK") != "0"


@lru_cache(maxsize=1)
def known_words() -> frozenset:
    """Every word a ShapesWorld text uses (plain and many looks): the words the bundled models have read."""
    from .data import ShapesWorld

    return frozenset(ShapesWorld.vocabulary(styled=True))


def unknown_words(texts) -> list[str]:
    """The words of the texts that no ShapesWorld text uses, lower-cased, each once, in order of appearance."""
    import re

    known, seen = known_words(), {}
    for t in texts:
        for word in re.findall(r"[^\W_]+", str(t).lower()):  # letters and digits; punctuation is not a word
            if word not in known:
                seen.setdefault(word)
    return list(seen)


SPELLINGS = {"colour": "color", "colours": "color", "colors": "color"}  # other spellings -> ShapesWorld's word


def known_form(word: str) -> str | None:
    """The ShapesWorld word an unknown word most likely means ('circles' -> 'circle', 'colour' -> 'color'), if any."""
    known = known_words()
    guess = SPELLINGS.get(word) or (word[:-1] if word.endswith("s") else None)
    return guess if guess in known else None


def pretrained_hint(spec) -> str:
    """The end of both notices: how to get the real model of the same family."""
    return (f"load a pretrained model: mmkit.load_model('{spec.family}') picks the real checkpoint when the "
            "Hugging Face hub is reachable (or cached).")


def check_words(m, texts, task: str = "result") -> list[str]:
    """Warn (mmkit.OutOfDomainWarning) when a bundled model is given words that no ShapesWorld text uses.

    Args:
        m: the Loaded model; only bundled models are checked.
        texts: the question(s), labels, prompts or queries the task is about to read.
        task: what the model returns, for the message ("answer", "zero-shot result", ...).
    Returns: the unknown words (empty for models that are not checked).
    """
    from .errors import OutOfDomainWarning, warn

    if not checked(m):
        return []
    unknown = unknown_words(texts)
    if unknown:
        spec = m.spec
        shown = ", ".join(repr(w) for w in unknown[:8]) + (", ..." if len(unknown) > 8 else "")
        near = [f"{form!r} for {w!r}" for w in unknown if (form := known_form(w))]
        warn(f"{spec.name} is a bundled teaching model that has only read ShapesWorld's {len(known_words())} words "
             f"(colours, shapes, sizes, places, counts, yes and no: mmkit.data.ShapesWorld.vocabulary(styled=True)); "
             f"it has never read {shown}, so its {task} is a guess. Say it in those words"
             + (f" ({', '.join(near)})" if near else "") + f", or {pretrained_hint(spec)}", OutOfDomainWarning)
    return unknown


def check(m, images, task: str = "result") -> list[bool]:
    """Warn (mmkit.OutOfDomainWarning) when a bundled model is given pictures with no ShapesWorld shapes.

    Args:
        m: the Loaded model; only bundled models are checked.
        images: the RGB PIL images the task is about to run on.
        task: what the model returns, for the message ("caption", "answer", ...).
    Returns: the per-image flags (all False for models that are not checked).
    """
    from .errors import OutOfDomainWarning, warn

    if not checked(m) or not images:
        return [False] * len(images)
    spec = m.spec
    flags = out_of_domain(images)
    if any(flags):
        which = [i for i, f in enumerate(flags) if f]
        if len(images) == 1:
            where = "the picture shows"
        else:
            index = ", ".join(map(str, which[:8])) + (", ..." if len(which) > 8 else "")
            where = f"{len(which)} of {len(images)} pictures (index {index}) show"
        warn(f"{spec.name} is a bundled teaching model that only knows {KNOWS}; {where} no such shapes, "
             f"so its {task} is a guess. For photos, {pretrained_hint(spec)}", OutOfDomainWarning)
    return flags
