"""How well the bundled models hold up on looks they were never trained on: one score per model and style.

Every score goes through the public task functions (`mmkit.zero_shot`, `caption`, `answer`, `match`) on
held-out scenes (`ShapesWorld(split="test", style=...)`), so it measures what a user gets:
- CLIP / ALIGN: zero-shot accuracy over the 9 "<colour> <shape>" labels on one-object scenes;
- BLIP captioning: the share of one-object scenes whose caption names the right colour and shape
  ("names"), and the exact match with the canonical caption on 1-2 object scenes ("exact");
- VQA (BLIP, ViLT): accuracy on the colour and shape questions of 1-2 object scenes;
- BLIP ITM: ROC AUC of each scene's caption against its attribute-swapped negative;
- pictures with no shapes: the share captioned "there are no shapes" / answered "zero" to "how many shapes
  are there?".
"""
from __future__ import annotations

import warnings

import numpy as np

from ..data import ShapesWorld
from ..data.shapes import COLORS, NO_SHAPES, SHAPES
from ..errors import OutOfDomainWarning
from ..families import adapter

LABELS = [f"{c} {s}" for c in COLORS for s in SHAPES]  # the 9 zero-shot labels
HELD_OUT_SEED = 0  # the tables use seed 0 of split "test"; tests may use others


def scenes(style: str, n: int, objects=(1, 2), seed: int = HELD_OUT_SEED, empty: float = 0.0,
           big_shapes: float = 0.0) -> list:
    """n held-out scenes of one style (split "test"); `big_shapes` as in ShapesWorld."""
    return list(ShapesWorld(n, seed=seed, objects=objects, split="test", style=style, empty=empty,
                            big_shapes=big_shapes))


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():  # held-out styles are the point here, not a mistake
        warnings.simplefilter("ignore", OutOfDomainWarning)
        return fn(*args, **kwargs)


def zero_shot_accuracy(m, items: list) -> float:
    """Share of one-object scenes whose top zero-shot label is the object's '<colour> <shape>'."""
    from .. import tasks

    probs = _quiet(tasks.zero_shot, m, [s.image for s in items], LABELS)
    return float(np.mean([max(p, key=p.get) == s.objects[0].name for p, s in zip(probs, items)]))


def caption_scores(m, items: list) -> dict:
    """{'names': right colour and shape named for every object, 'exact': canonical caption} over scenes."""
    from .. import tasks

    caps = _quiet(tasks.caption, m, [s.image for s in items])
    names = [all(o.name in c for o in s.objects) for c, s in zip(caps, items)]
    exact = [" ".join(c.lower().split()) == s.caption for c, s in zip(caps, items)]
    return {"names": float(np.mean(names)), "exact": float(np.mean(exact))}


def vqa_accuracy(m, items: list, kinds=("color", "shape")) -> float:
    """Accuracy on the questions of the given kinds (exact answer)."""
    from .. import tasks

    pairs = [(s.image, q) for s in items for q in s.qa if q.kind in kinds]
    answers = _quiet(tasks.answer, m, [im for im, _ in pairs], [q.question for _, q in pairs])
    return float(np.mean([a.strip().lower() == q.answer for a, (_, q) in zip(answers, pairs)]))


def itm_auc(m, items: list) -> float:
    """ROC AUC of P(match) for each scene's caption (positive) against its negative caption."""
    from .. import tasks
    from ..metrics import roc_auc

    images = [s.image for s in items]
    pos = _quiet(tasks.match, m, images, [s.caption for s in items], paired=True).numpy()
    neg = _quiet(tasks.match, m, images, [s.negative for s in items], paired=True).numpy()
    return float(roc_auc(pos, neg))


def no_shape_score(m, items: list) -> float | None:
    """Pictures with no shapes: share captioned 'there are no shapes', or answered 'zero' to the count question."""
    from .. import tasks

    images = [s.image for s in items]
    asked = adapter(m).no_shapes
    if asked == "caption":
        return float(np.mean([c.strip().lower() == NO_SHAPES for c in _quiet(tasks.caption, m, images)]))
    if asked == "count":
        answers = _quiet(tasks.answer, m, images, ["how many shapes are there?"] * len(images))
        return float(np.mean([a.strip().lower() == "zero" for a in answers]))
    return None


def score(m, style: str, n: int, seed: int = HELD_OUT_SEED, big_shapes: float = 0.0) -> dict:
    """The scores of one model on n held-out scenes of one style (the family decides which scores)."""
    kinds = adapter(m).scores  # which scores the family has (mmkit.families)
    look = dict(seed=seed, big_shapes=big_shapes)
    if kinds == ("zero_shot",):
        return {"zero_shot": zero_shot_accuracy(m, scenes(style, n, objects=1, **look))}
    if kinds == ("names", "exact"):
        one = caption_scores(m, scenes(style, n, objects=1, **look))
        return {"names": one["names"], "exact": caption_scores(m, scenes(style, n, **look))["exact"]}
    if kinds == ("color_shape",):
        return {"color_shape": vqa_accuracy(m, scenes(style, n, **look))}
    if kinds == ("auc",):
        return {"auc": itm_auc(m, scenes(style, n, **look))}
    raise ValueError(f"no robustness score for family {m.spec.family!r}")
