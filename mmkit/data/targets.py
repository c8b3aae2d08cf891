"""Ground truth for explanations: which object of a scene each colour or shape word names."""
from __future__ import annotations

from .shapes import COLORS, SHAPES

TARGET_WORDS = set(COLORS) | set(SHAPES)


def target_objects(scene, words: list[str]) -> list[tuple[int, object]]:
    """(word index, object) for colour/shape words that name exactly one object of the scene."""
    out = []
    for i, w in enumerate(words):
        lw = w.lower().strip("?.,")
        if lw not in TARGET_WORDS:
            continue
        # the object named by the phrase this word belongs to: the nearest following shape word decides
        phrase = [x.lower().strip("?.,") for x in words[i:i + 3]]
        shape = next((x for x in phrase if x in SHAPES), None)
        color = lw if lw in COLORS else next((x.lower() for x in words[max(0, i - 2):i] if x.lower() in COLORS), None)
        cands = [o for o in scene.objects if (shape is None or o.shape == shape) and (color is None or o.color == color)]
        if len(cands) == 1:
            out.append((i, cands[0]))
    return out
