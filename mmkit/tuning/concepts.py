"""Pictures of a concept the bundled models have never seen: ShapesWorld scenes with one object repainted in a
new colour (orange, purple, ...), with captions, questions and answers that use the new word.

The scene, its objects' masks and its texts come from ShapesWorld; the chosen object's pixels are painted
the new colour and every text is rewritten from the repainted objects, so captions, answers and labels stay
ground truth. Used by notebook 13, the tests and benchmarks/finetune.py.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

NEW_COLORS = {"orange": (245, 140, 20), "purple": (140, 50, 180), "pink": (240, 120, 190), "yellow": (230, 210, 30)}


@dataclass
class ConceptScene:
    """One picture with its texts; `new` tells whether it shows the new colour."""

    image: Image.Image
    caption: str
    qa: list  # [(question, answer, kind)]
    objects: list  # ShapesWorld Obj, the repainted one with its new colour name
    new: bool

    def _repr_png_(self):
        return self.image._repr_png_()


def _qa(objects) -> list[tuple[str, str, str]]:
    """Colour and shape questions about each object, answered from the objects (the new colour included)."""
    out = []
    for o in objects:
        same_shape = [p for p in objects if p.shape == o.shape]
        same_colour = [p for p in objects if p.color == o.color]
        if len(same_shape) == 1:
            out.append((f"what color is the {o.shape}?", o.color, "color"))
        if len(same_colour) == 1:
            out.append((f"what shape is the {o.color} object?", o.shape, "shape"))
        out.append((f"is there a {o.color} {o.shape}?", "yes", "exists"))
    return out


def concept_scenes(n: int, color: str = "orange", share: float = 1.0, seed: int = 0, objects=(1, 2),
                   split: str = "train", rgb=None) -> list[ConceptScene]:
    """n ShapesWorld scenes; in `share` of them one object is repainted in the new colour.

    Args:
        color: the new colour word (NEW_COLORS has its RGB; pass rgb= for another word).
        share: the part of the scenes with the new colour (1.0: all; 0.0: plain old scenes, for replay).
        split: ShapesWorld's split ("train" for training, "test" for held-out pictures: disjoint streams).
    """
    from ..data import ShapesWorld
    from ..data.shapes import describe_scene

    rgb = np.array(rgb if rgb is not None else NEW_COLORS[color], dtype=np.uint8)
    rng = random.Random(f"{color}-{seed}-{split}")
    out = []
    for s in ShapesWorld(n, seed=seed, objects=objects, split=split):
        objs = list(s.objects)
        new = rng.random() < share and bool(objs)
        image = s.image
        if new:
            k = rng.randrange(len(objs))
            arr = np.array(image)
            arr[objs[k].mask] = rgb  # (H, W, 3): the object's pixels only
            image = Image.fromarray(arr)
            objs[k] = replace(objs[k], color=color)
        out.append(ConceptScene(image, describe_scene(objs), _qa(objs), objs, new))
    return out


def caption_pairs(scenes) -> list[tuple]:
    """(image, caption) tuples for finetune."""
    return [(s.image, s.caption) for s in scenes]


def qa_triples(scenes, kinds=("color", "shape", "exists")) -> list[tuple]:
    """(image, question, answer) tuples for finetune."""
    return [(s.image, q, a) for s in scenes for q, a, k in s.qa if k in kinds]


def label_pairs(scenes, template: str = "a {}") -> list[tuple]:
    """(image, 'a orange circle') tuples of one-object scenes, for contrastive fine-tuning on colour-shape labels."""
    return [(s.image, template.format(f"{s.objects[0].color} {s.objects[0].shape}")) for s in scenes if len(s.objects) == 1]
