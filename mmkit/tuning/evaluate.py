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


# A score averaged over fewer validation items than this is flagged as meaning little. Each item is worth 0-1
# (exact match, VQA accuracy, R@1; CIDEr averages per picture too), so the standard error of the mean is up to
# 0.5 / sqrt(n): at n = 20 that is 0.11 (a 95% interval of about +-0.22) and one item moves an accuracy by 5 points;
# below it a gain from fine-tuning is mostly within chance. CIDEr also takes its word weights (IDF) from the
# validation references themselves, which few pictures make degenerate (2 pictures gave 10.0, its maximum).
MIN_VAL = 20


def scored_items(task: str, examples) -> tuple[int, str]:
    """(n, unit): how many items the task metric averages over: pictures for caption, contrastive and itm (one
    picture's rows are scored together), examples (questions) for vqa."""
    if task == "vqa":
        return len(examples), "examples"
    return len({e.key for e in examples}), "pictures"


def says(text: str, word: str) -> bool:
    """Whether text has word (or a phrase) as whole words, case-insensitively: 'orange' in 'an orange box', not in
    'oranges'."""
    import re

    return re.search(rf"(?<![a-z]){re.escape(word.lower())}(?![a-z])", text.lower()) is not None


def word_use(loaded, task: str, words, val, train, limit: int = 50) -> dict:
    """Whether the model produces each new word where the data says it: {word: {"produced": k, "of": n, "on":
    "validation" | "training"}}.

    caption: of the n pictures whose reference captions have the word (the validation pictures; when none has it,
    at most `limit` training pictures), k are captioned with it; vqa: of the n questions whose answer has it, k
    are answered with it. Words no reference (answer) has are left out, and so is every word for contrastive and
    itm, whose models write no text."""
    if task not in ("caption", "vqa"):
        return {}
    ref = (lambda e: e.text) if task == "caption" else (lambda e: e.answer)
    out, said = {}, {}  # said: (source, id of example) -> the model's output, each asked once
    for w in dict.fromkeys(words):
        for on, pool in (("validation", val), ("training", train)):
            hits = [e for e in pool if says(ref(e), w)]
            if task == "caption":  # one caption per picture
                hits = list({e.key: e for e in hits}.values())
            if hits:
                break
        if not hits:
            continue
        hits = hits[:limit] if on == "training" else hits  # the validation examples are capped by max_val already
        todo = [e for e in hits if (on, id(e)) not in said]
        for e, text in zip(todo, predictions(loaded, task, todo) if todo else []):
            said[on, id(e)] = text
        out[w] = {"produced": sum(says(said[on, id(e)], w) for e in hits), "of": len(hits), "on": on}
    return out
