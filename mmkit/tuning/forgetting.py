"""What fine-tuning a bundled model made it forget: the base and the fine-tuned model scored on the same ordinary
ShapesWorld scenes, and a caveat when the score dropped.

Fine-tuned on new-colour pictures only, the bundled captioner learnt 'orange' and called a red circle "an orange
circle" (exact match on ordinary scenes 70% -> 7%); the validation score, on the new pictures, showed only the gain.
The scenes are N_SCENES from ShapesWorld's test stream (a fixed seed, never a training picture), scored as the
validation set is (evaluate.score): exact match of captions, VQA accuracy, or R@1 over the scenes' labels.
"""
from __future__ import annotations

import time

from ..domain import is_bundled

N_SCENES = 30  # ordinary scenes scored with each model (a few seconds on a CPU for the bundled models)
SEED = 11  # ShapesWorld's seed for them (test split)
DROP = 0.05  # a fall larger than this (5 points) is a caveat, warned about
METRIC = {"caption": "exact match", "vqa": "VQA accuracy", "contrastive": "R@1", "itm": "R@1"}
QUESTIONS = 2  # questions asked per scene for VQA (60 in all)
_BEFORE: dict = {}  # (base model's name, folder, task) -> its score: a bundled base never changes

# how to keep the old concepts, per task: ordinary scenes mixed into the training data (notebook 13 does it)
MIX = {"caption": "data + caption_pairs(concept_scenes(100, share=0.0))",
       "vqa": "data + qa_triples(concept_scenes(100, share=0.0))",
       "contrastive": "data + label_pairs(concept_scenes(100, share=0.0, objects=1), template)",
       "itm": "data + label_pairs(concept_scenes(100, share=0.0, objects=1), template)"}


def old_examples(task: str, template: str = "a {}") -> list:
    """The ordinary ShapesWorld scenes as examples of the task (tuning.data.Example), always the same ones."""
    from .concepts import caption_pairs, concept_scenes, label_pairs
    from .data import read_examples

    one = task in ("contrastive", "itm")
    scenes = concept_scenes(N_SCENES, share=0.0, seed=SEED, split="test", objects=1 if one else (1, 2))
    if task == "vqa":
        rows = [(s.image, q, a) for s in scenes for q, a, _ in s.qa[:QUESTIONS]]
    else:
        rows = label_pairs(scenes, template) if one else caption_pairs(scenes)
    return read_examples(rows).items


def old_scenes_score(base, tuned, task: str) -> dict | None:
    """{"metric", "before", "after", "n", "seconds"} of the base and the fine-tuned model on the ordinary scenes
    when the base is a bundled ShapesWorld model (None otherwise: other models were not trained on them).

    Args:
        base: the Loaded fine-tuning started from (its score is computed once per process).
        tuned: the fine-tuned Loaded.
    """
    from .evaluate import score

    if not is_bundled(base.spec) or task not in METRIC:
        return None
    t = time.perf_counter()
    items = old_examples(task, base.spec.zero_shot_template or "a {}")
    metric = METRIC[task]
    key = (base.spec.name, base.spec.repo, task)
    if key not in _BEFORE:
        _BEFORE[key] = score(base, task, items)[metric]
    after = score(tuned, task, items)[metric]
    n = len(items) if task == "vqa" else N_SCENES
    return {"metric": metric, "before": float(_BEFORE[key]), "after": float(after), "n": n,
            "seconds": round(time.perf_counter() - t, 1)}


def forgetting_notes(old: dict | None, task: str = "caption") -> list[tuple[str, bool]]:
    """The ordinary-scene scores before and after as a note; a caveat (warned) when they fell by more than DROP."""
    if not old:
        return []
    what = f"{old['n']} questions on " if task == "vqa" else ""
    said = (f"on {N_SCENES} ordinary ShapesWorld scenes ({what}held-out pictures of the colours and shapes the base "
            f"knew) the {old['metric']} went {old['before']:.0%} -> {old['after']:.0%}")
    if old["before"] - old["after"] <= DROP:
        return [(said + ": it kept what it knew", False)]
    return [(said + ": the model forgot some of what it knew while it learnt your pictures (it may now call a red "
             "circle by a new colour); to keep more of it, mix ordinary ShapesWorld scenes into the training data, "
             f"or more of them if it has some already (e.g. {MIX.get(task, MIX['caption'])}, with concept_scenes, "
             "caption_pairs, qa_triples and label_pairs from mmkit.tuning.concepts; notebook 13 shows how), or train "
             "for fewer epochs or with a lower learning rate (lr=).", True)]
