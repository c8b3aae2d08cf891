"""Teach a bundled model a new colour, and measure what it learnt and what it forgot, on held-out pictures.

Each study fine-tunes on at most `n_new + n_old` pictures drawn by `concepts.concept_scenes` from ShapesWorld's
train stream (n_new with one object in the new colour; n_old unchanged scenes, replayed so the old concepts
are not forgotten) and scores on pictures from the test stream, which training never sees:

- caption_study: share of new-colour pictures whose caption names the new colour with the right shape
  ("learnt"); exact match on old pictures after / before ("kept");
- vqa_study: VQA accuracy on colour, shape and existence questions about new-colour pictures ("learnt") and
  on old pictures, after / before ("kept");
- clip_study: zero-shot accuracy over every colour-shape label (old colours and the new one) on one-object
  new-colour pictures ("learnt"), and on old pictures after / before ("kept").
"""
from __future__ import annotations

import time
import warnings

from ..errors import OutOfDomainWarning
from .concepts import NEW_COLORS, caption_pairs, concept_scenes, label_pairs, qa_triples


def _finetune(model, data, **options):
    from .loop import finetune

    t, c = time.perf_counter(), time.process_time()
    ft = finetune(model, data, **options)
    return ft, {"train_seconds": round(ft.train_seconds, 1), "train_cpu_seconds": round(ft.train_cpu_seconds, 1),
                "finetune_seconds": round(time.perf_counter() - t, 1),
                "finetune_cpu_seconds": round(time.process_time() - c, 1), "epochs": len(ft.history) - 1,
                "pictures": len({id(x[0]) for x in data}), "examples": len(data), "added_words": ft.added_words,
                "stopped": ft.stopped}


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OutOfDomainWarning)
        return fn(*args, **kwargs)


def caption_study(model="shapes-blip-caption", color: str = "orange", n_new: int = 200, n_old: int = 100,
                  n_test: int = 100, epochs: int = 4, seed: int = 0, **options) -> tuple:
    """(Finetuned, {learnt, kept, old_exact_before, old_exact_after, ...}) for a captioner and a new colour."""
    from .. import caption, load_model

    train = concept_scenes(n_new, color, 1.0, seed=seed) + concept_scenes(n_old, color, 0.0, seed=seed + 1)
    ft, out = _finetune(model, caption_pairs(train), epochs=epochs, seed=seed, **options)
    new = concept_scenes(n_test, color, 1.0, seed=seed + 7, split="test")
    old = concept_scenes(n_test, color, 0.0, seed=seed + 7, split="test")
    caps = _quiet(caption, ft.model, [s.image for s in new])
    shape = [next(o.shape for o in s.objects if o.color == color) for s in new]
    learnt = sum(f"{color} {sh}" in c for c, sh in zip(caps, shape)) / len(new)
    before = _quiet(caption, load_model(model), [s.image for s in old])
    after = _quiet(caption, ft.model, [s.image for s in old])
    eb = sum(c == s.caption for c, s in zip(before, old)) / len(old)
    ea = sum(c == s.caption for c, s in zip(after, old)) / len(old)
    out.update(learnt=learnt, old_exact_before=eb, old_exact_after=ea, kept=ea / eb if eb else float("nan"),
               n_test=n_test, examples_new=[(s.caption, c) for s, c in list(zip(new, caps))[:5]])
    return ft, out


def _vqa_accuracy(m, scenes, kinds=("color", "shape", "exists")) -> float:
    from .. import answer
    from ..metrics import vqa_accuracy

    rows = [(s.image, q, a) for s in scenes for q, a, k in s.qa if k in kinds]
    preds = _quiet(answer, m, [r[0] for r in rows], [r[1] for r in rows])
    return vqa_accuracy(preds, [r[2] for r in rows])


def vqa_study(model="shapes-blip-vqa", color: str = "orange", n_new: int = 200, n_old: int = 100,
              n_test: int = 100, epochs: int = 3, seed: int = 0, kinds=("color", "shape"), **options) -> tuple:
    """(Finetuned, {learnt, kept, old_before, old_after, ...}) for a VQA model and a new colour."""
    from .. import load_model

    train = concept_scenes(n_new, color, 1.0, seed=seed) + concept_scenes(n_old, color, 0.0, seed=seed + 1)
    ft, out = _finetune(model, qa_triples(train, kinds), epochs=epochs, seed=seed, **options)
    new = concept_scenes(n_test, color, 1.0, seed=seed + 7, split="test")
    old = concept_scenes(n_test, color, 0.0, seed=seed + 7, split="test")
    before, after = _vqa_accuracy(load_model(model), old, kinds), _vqa_accuracy(ft.model, old, kinds)
    out.update(learnt=_vqa_accuracy(ft.model, new, kinds), new_before=_vqa_accuracy(load_model(model), new, kinds),
               old_before=before, old_after=after, kept=after / before if before else float("nan"), n_test=n_test)
    return ft, out


def clip_labels(color: str) -> list[str]:
    """Every colour-shape label: the three ShapesWorld colours and the new one, times the three shapes."""
    from ..data.shapes import COLORS, SHAPES

    return [f"{c} {s}" for c in [*COLORS, color] for s in SHAPES]


def _zero_shot_accuracy(m, scenes, labels) -> float:
    from .. import zero_shot

    probs = _quiet(zero_shot, m, [s.image for s in scenes], labels)
    truth = [f"{s.objects[0].color} {s.objects[0].shape}" for s in scenes]
    return sum(max(p, key=p.get) == t for p, t in zip(probs, truth)) / len(scenes)


def clip_study(model="shapes-clip", color: str = "orange", n_new: int = 200, n_old: int = 100, n_test: int = 100,
               epochs: int = 4, seed: int = 0, **options) -> tuple:
    """(Finetuned, {learnt, kept, ...}): zero-shot on every colour-shape label after contrastive fine-tuning."""
    from .. import load_model

    base = load_model(model)
    template = base.spec.zero_shot_template
    train = (concept_scenes(n_new, color, 1.0, seed=seed, objects=1)
             + concept_scenes(n_old, color, 0.0, seed=seed + 1, objects=1))
    ft, out = _finetune(model, label_pairs(train, template), epochs=epochs, seed=seed, **options)
    labels = clip_labels(color)
    new = concept_scenes(n_test, color, 1.0, seed=seed + 7, split="test", objects=1)
    old = concept_scenes(n_test, color, 0.0, seed=seed + 7, split="test", objects=1)
    before, after = _zero_shot_accuracy(base, old, labels), _zero_shot_accuracy(ft.model, old, labels)
    out.update(learnt=_zero_shot_accuracy(ft.model, new, labels), new_before=_zero_shot_accuracy(base, new, labels),
               old_before=before, old_after=after, kept=after / before if before else float("nan"), n_test=n_test,
               labels=labels)
    return ft, out


__all__ = ["caption_study", "vqa_study", "clip_study", "clip_labels", "NEW_COLORS"]
