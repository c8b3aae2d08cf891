"""Hallucination: objects a caption mentions that are not in the image, checked against ground-truth objects.

This is CHAIR (Rohrbach et al., 2018) for ShapesWorld: a mention is a shape word with the colour (and size)
in front of it; it is hallucinated when no object in the scene has that colour and shape.

    CHAIR_i = hallucinated mentions / all mentions       CHAIR_s = captions with one or more / all captions

Size errors ("a large red circle" for a small one) are counted separately (`CHAIR_i_size`): the object is
there, an attribute is wrong. `omission` is the share of real objects that the captions never mention.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..data.shapes import COLORS, SHAPES, SIZES
from ..errors import InputError

_MENTION = re.compile(r"\b(?:({sizes})\s+)?(?:({colors})\s+)?({shapes})s?\b".format(
    sizes="|".join(SIZES), colors="|".join(COLORS), shapes="|".join(SHAPES)))


@dataclass(frozen=True)
class Mention:
    """One object named in a caption; colour and size are None when the caption leaves them out."""

    shape: str
    color: str | None = None
    size: str | None = None


def mentioned_objects(caption: str) -> list[Mention]:
    """'a small red circle above a square' -> [Mention('circle', 'red', 'small'), Mention('square')]."""
    return [Mention(shape, color or None, size or None) for size, color, shape in _MENTION.findall(caption.lower())]


def _objects(x):
    return x.objects if hasattr(x, "objects") else x  # a Scene, or a list of objects


def _present(m: Mention, objects, with_size: bool) -> bool:
    return any(o.shape == m.shape and (m.color is None or o.color == m.color)
               and (not with_size or m.size is None or o.size == m.size) for o in objects)


def hallucinated(caption: str, objects) -> list[Mention]:
    """The mentions in caption that match no object (same shape, and colour when named)."""
    objects = _objects(objects)
    return [m for m in mentioned_objects(caption) if not _present(m, objects, with_size=False)]


def check_pairs(captions: Sequence[str], scenes: Sequence) -> None:
    """InputError unless captions is a non-empty list of strings, one per scene."""
    if isinstance(captions, str):
        raise InputError("captions is one string; give a list with one caption per scene, e.g. [caption]")
    if len(captions) != len(scenes):
        raise InputError(f"{len(captions)} captions but {len(scenes)} scenes; give one caption per scene, in the "
                         "scenes' order")
    if not captions:
        raise InputError("no captions to score: captions and scenes are empty")
    for i, c in enumerate(captions):
        if not isinstance(c, str):
            raise InputError(f"captions[{i}] is {c!r:.40}, not a caption string; give text, e.g. 'a red circle'")


def hallucination_rate(captions: Sequence[str], scenes: Sequence) -> dict:
    """CHAIR_i, CHAIR_s, CHAIR_i_size and omission of captions against ground truth.

    Args:
        captions: one caption per scene; scenes: ShapesWorld scenes, or lists of objects with .color/.shape/.size.
    Raises InputError for a bare string, no captions, or a count unlike the scenes'.
    """
    check_pairs(captions, scenes)
    mentions = bad = bad_size = bad_captions = objects_total = missed = 0
    for cap, sc in zip(captions, scenes):
        objs = _objects(sc)
        ms = mentioned_objects(cap)
        wrong = [m for m in ms if not _present(m, objs, with_size=False)]
        mentions += len(ms)
        bad += len(wrong)
        bad_size += sum(1 for m in ms if m not in wrong and not _present(m, objs, with_size=True))
        bad_captions += bool(wrong)
        objects_total += len(objs)
        missed += sum(1 for o in objs if not any(m.shape == o.shape and m.color in (None, o.color) for m in ms))
    return {"CHAIR_i": bad / max(mentions, 1), "CHAIR_s": bad_captions / len(captions),
            "CHAIR_i_size": bad_size / max(mentions, 1), "omission": missed / max(objects_total, 1),
            "mentions": mentions}
