"""The task metric of a model on validation examples, through mmkit's own task functions.

caption: CIDEr-D (and exact match); vqa: VQA accuracy; contrastive and itm: R@1 image -> text, where an
image's hit is any text written for it (texts are de-duplicated first).
"""
from __future__ import annotations

import warnings

from ..errors import OutOfDomainWarning
from ..families import adapter

METRIC = {"caption": "CIDEr", "vqa": "VQA accuracy", "contrastive": "R@1", "itm": "R@1"}


def predictions(loaded, task: str, examples) -> list[str]:
    """What the model says for each example: captions, or answers to the examples' questions."""
    from .. import tasks

    images = [e.image for e in examples]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)  # the user's own pictures are the domain now
        if task == "caption":
            return tasks.caption(loaded, images)
        return tasks.answer(loaded, images, [e.question for e in examples])


def score(loaded, task: str, examples) -> dict:
    """{metric name: value, ...} of the model on examples (one pass, no gradients)."""
    from .. import metrics, tasks

    loaded.cache.clear()  # label embeddings of an earlier state of the weights
    if task in ("caption", "vqa"):
        hyps = predictions(loaded, task, examples)
        if task == "vqa":
            return {"VQA accuracy": metrics.vqa_accuracy(hyps, [e.answer for e in examples])}
        refs: dict = {}
        for e in examples:  # one image may have several captions: all are references
            refs.setdefault(e.key, []).append(e.text)
        keys = [e.key for e in examples]
        first = {k: hyps[keys.index(k)] for k in refs}
        out = {"exact match": metrics.exact_match([first[k] for k in refs], [refs[k] for k in refs])}
        try:
            out["CIDEr"] = metrics.caption_scores(first, refs)["CIDEr"]
        except Exception:  # pycocoevalcap missing or a degenerate set: exact match still tells
            out["CIDEr"] = out["exact match"]
        return out
    texts = list(dict.fromkeys(e.text for e in examples))
    keys = list(dict.fromkeys(e.key for e in examples))
    image_of = {e.key: e.image for e in examples}
    right = {k: {e.text for e in examples if e.key == k} for k in keys}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)
        if adapter(loaded).pair_scores is None:  # a dual encoder: cosine of the embeddings
            sim = tasks.embed_images(loaded, [image_of[k] for k in keys]) @ tasks.embed_texts(loaded, texts).T
        else:
            sim = tasks.match(loaded, [image_of[k] for k in keys], texts)
    import numpy as np

    sim = np.asarray(sim.tolist() if hasattr(sim, "tolist") else sim, dtype=float)  # (images, texts)
    hits = [texts[int(np.argmax(row))] in right[k] for k, row in zip(keys, sim)]
    return {"R@1": float(np.mean(hits))}
