"""Score captioners on held-out ShapesWorld scenes and compare them in a table and a plot."""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from ..metrics import caption_scores, exact_match
from ..viz.captions import plot_comparison, plot_word_attention  # noqa: F401 (re-exported)
from ..errors import InputError
from .hallucination import check_pairs, hallucination_rate


def score_captions(hyps: Sequence[str], scenes: Sequence) -> dict:
    """Exact match, BLEU-1..4, ROUGE-L, CIDEr-D and hallucination (CHAIR) of one caption per scene."""
    check_pairs(hyps, scenes)
    refs = [s.caption for s in scenes]
    scores = caption_scores({i: [h] for i, h in enumerate(hyps)}, {i: [r] for i, r in enumerate(refs)})
    return {"exact_match": exact_match(hyps, refs), **scores, **hallucination_rate(hyps, scenes), "n": len(hyps)}


def evaluate_captioner(caption_fn: Callable | object, scenes: Sequence, **decoding) -> dict:
    """Caption the scenes' images and score them; adds "caption_seconds" and the captions themselves.

    Args:
        caption_fn: a Captioner (its generate is used) or any function images -> list of captions,
            e.g. `lambda ims: mmkit.caption(m, ims)`. decoding: options passed to generate.
    """
    fn = caption_fn.generate if hasattr(caption_fn, "generate") else caption_fn
    t0 = time.perf_counter()
    hyps = fn([s.image for s in scenes], **decoding)
    seconds = time.perf_counter() - t0
    return {**score_captions(hyps, scenes), "caption_seconds": round(seconds, 2), "captions": hyps}


COLUMNS = ("exact_match", "BLEU-4", "CIDEr", "CHAIR_i", "train_seconds", "parameters")


def comparison_table(results: dict, columns: Sequence[str] = COLUMNS) -> str:
    """A plain-text table: one row per model (results: name -> dict), the given columns."""
    cols = [c for c in columns if any(c in r for r in results.values())]
    width = max(len(n) for n in results) + 2
    fmt = lambda v: ("-" if v is None else f"{v:,}" if isinstance(v, int) else f"{v:.3f}")  # noqa: E731
    lines = ["model".ljust(width) + "".join(c.rjust(14) for c in cols)]
    for name, r in results.items():
        lines.append(name.ljust(width) + "".join(fmt(r.get(c)).rjust(14) for c in cols))
    return "\n".join(lines)


def true_paraphrases(scene) -> list[str]:
    """Other true descriptions of a ShapesWorld scene, worded unlike its canonical caption.

    They play the part of other annotators' references: with the canonical caption as the only reference, every
    metric gives a correct caption full marks, and the question "does the metric track correctness?" is empty.
    """
    from ..data.shapes import relation

    objs = scene.objects
    if len(objs) == 1:
        o = objs[0]
        return [f"there is one {o.size} {o.color} {o.shape}", f"one {o.color} {o.shape}, {o.size}"]
    if len(objs) == 2:
        a, b = objs
        if relation(a, b) in ("right of", "below"):
            a, b = b, a  # a is left of / above b
        horizontal = relation(a, b) == "left of"
        rev = "to the right of" if horizontal else "below"
        fwd = "left of" if horizontal else "over"
        return [f"{b.phrase} {rev} {a.phrase}", f"there is {a.phrase} {fwd} {b.phrase}"]
    return [" and ".join(o.phrase for o in objs[::-1])]


def metric_agreement(per_item: dict, correct) -> dict:
    """How well each metric's per-caption score separates correct from wrong captions: ROC AUC per metric.

    Args:
        per_item: {metric: (N,) scores} (`mmkit.metrics.caption_scores_per_item`); correct: (N,) bool.
    """
    import numpy as np

    from ..metrics import roc_auc

    correct = np.asarray(correct, dtype=bool).ravel()  # (N,)
    if correct.all() or not correct.any():
        raise InputError(f"correct is {'empty' if not len(correct) else f'all {bool(correct[0])}'}: the agreement AUC "
                         "compares the scores of right and wrong captions, so it needs some of each")
    out = {}
    for k, v in per_item.items():
        v = np.asarray(v, dtype=np.float64).ravel()  # (N,)
        if len(v) != len(correct):
            raise InputError(f"per_item[{k!r}] has {len(v)} scores but correct has {len(correct)} entries; give one "
                             "score and one right/wrong flag per caption, in the same order")
        nan = np.flatnonzero(np.isnan(v))
        if len(nan):
            raise InputError(f"per_item[{k!r}] is NaN at item {nan[0]} ({len(nan)} NaN of {len(v)}); a NaN score "
                             "cannot be ranked: find where it comes from, or leave those captions out")
        out[k] = roc_auc(v[correct], v[~correct])
    return out


def attention_pointing(model, scenes: Sequence, **decoding) -> dict:
    """Does the per-word attention land on the object the word names? Pointing game over colour and shape words.

    For each scene the model captions the image (`attend`); each colour or shape word that names exactly one
    object is a trial: a hit when the peak of its map lies in that object's box. Returns {"pointing": hit rate,
    "uniform": what a uniform map scores (mean box share), "mass_in_box": mean attention mass inside, "n": trials}.
    """
    import numpy as np

    from ..data.targets import target_objects
    from ..metrics import box_share, mass_in_box, pointing_hit

    hits, mass, base = [], [], []
    for s in scenes:
        words, maps = model.attend(s.image, **decoding)  # maps: (T, G, G)
        W, H = s.image.size
        for i, obj in target_objects(s, list(words)):
            g = maps[i].numpy()
            heat = np.kron(g, np.ones((H // g.shape[0], W // g.shape[1])))  # (H, W) each cell a block of pixels
            hits.append(pointing_hit(heat, obj.box))
            mass.append(mass_in_box(heat, obj.box))
            base.append(box_share(obj.box, s.image.size))
    return {"pointing": float(np.mean(hits)) if hits else float("nan"), "uniform": float(np.mean(base)) if base else
            float("nan"), "mass_in_box": float(np.mean(mass)) if mass else float("nan"), "n": len(hits)}
