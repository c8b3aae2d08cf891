"""Is an attention map right? Pointing game and attention mass inside the named object's box.

ShapesWorld knows where every object is, so for each colour or shape word that names one object we
check (1) whether the map's peak falls inside that object's box (pointing game) and (2) what share of
the map's mass lies inside it, both against a uniform map (whose expected score is the box's share of
the image). A sanity check re-initialises the model's weights: maps that still score well would be
explaining the image, not the model.

Beside them, the perturbation test (perturbation.py, no boxes needed): the area under the model's score as
the map's top patches are deleted (lower is better) or inserted (higher is better), and the same for a
random order of patches; and the same over the text's tokens, ranked by the method's text-side reading
(text_perturbation.py), for the models whose text is an input.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from ..data.shapes import COLORS, SHAPES
from ..data.targets import target_objects
from ..families import adapter
from ..metrics import box_share, mass_in_box, pointing_hit


def _texts_for(family: str, scene) -> list[str]:
    """The texts a scene gives the family's maps (its row's scene_texts): the caption, the questions about
    colour, shape and size, or the objects' names ("red circle")."""
    which = adapter(family).scene_texts
    if which == "caption":
        return [scene.caption]
    if which == "questions":
        return [q.question for q in scene.qa if q.kind in ("color", "shape", "size")]
    return [o.name for o in scene.objects]


@dataclass
class Score:
    """Faithfulness of one model and method."""

    model: str
    method: str
    words: int  # how many (word, object) pairs were scored
    pointing: float  # share of maps whose peak lies in the object's box
    mass: float  # mean share of map mass inside the box
    baseline: float  # the uniform map's expected score (mean box share)
    deletion: float = float("nan")  # deletion AUC of the model's score, patches in the map's order (lower: better)
    insertion: float = float("nan")  # insertion AUC (higher: better)
    random_deletion: float = float("nan")  # the same for random orders of the patches
    random_insertion: float = float("nan")
    score: str = ""  # what the perturbation curves measure, e.g. "P(answer)"
    text_deletion: float = float("nan")  # the same over the text's tokens, in the method's text order
    text_insertion: float = float("nan")
    text_random_deletion: float = float("nan")
    text_random_insertion: float = float("nan")

    @property
    def deletion_margin(self) -> float:
        """Random deletion AUC minus the map's: > 0 when deleting the map's patches first hurts more."""
        return self.random_deletion - self.deletion

    @property
    def text_deletion_margin(self) -> float:
        """Random token-deletion AUC minus the method's (nan where the method has no text ranking)."""
        return self.text_random_deletion - self.text_deletion


def score_maps(m, scenes, method: str | None = None, randomized: bool = False) -> Score:
    """Pointing game and mass-in-box of one model's maps on ShapesWorld scenes (text from the ground truth)."""
    return score_maps_many(m, scenes, [method], randomized)[method]


def score_maps_many(m, scenes, methods: list, randomized: bool = False) -> dict:
    """`score_maps` for several methods, each scene's maps extracted once: {method: Score} (None: the first)."""
    from . import attention_maps

    found = {k: ([], [], []) for k in methods}  # hits, masses, box shares
    first = None
    for scene in scenes:
        for text in _texts_for(m.spec.family, scene):
            maps = attention_maps(m, scene.image, text)
            first = first or maps.methods[0]
            pairs = target_objects(scene, maps.words)
            for meth in methods:
                hits, masses, shares = found[meth]
                for i, obj in pairs:
                    heat = maps.for_token(i, method=meth or maps.methods[0], size="image")
                    box = maps.box(obj.box)  # the maps cover the picture as padded for the model
                    hits.append(pointing_hit(heat, box))
                    masses.append(mass_in_box(heat, box))
                    shares.append(box_share(box, maps.image.size))
    name = m.spec.name + (" (re-initialised)" if randomized else "")
    out = {}
    for meth, (hits, masses, shares) in found.items():
        if not hits:
            out[meth] = Score(name, meth or first or "?", 0, float("nan"), float("nan"), float("nan"))
        else:
            out[meth] = Score(name, meth or first, len(hits), float(np.mean(hits)), float(np.mean(masses)),
                              float(np.mean(shares)))
    return out


def perturbation_texts(family: str, scenes) -> list | None:
    """One text per scene for the perturbation test: the first question / caption / object name (None for a
    captioning model: it scores its own caption)."""
    return None if not adapter(family).maps_need_text else [_texts_for(family, s)[0] for s in scenes]


def perturb_scores(m, scenes, methods: list[str], over: str = "patches", **kwargs) -> dict:
    """Perturbation curves of each method on the scenes: {method: Perturbation}. CLIP and ALIGN score the
    prompt's zero-shot probability among every colour-shape name (their cosine falls whatever is deleted).
    over="tokens" perturbs the text instead, for the methods that rank its tokens (the others are left out)."""
    from .perturbation import perturbation_many

    fam = m.spec.family
    if adapter(m).dual_encoder:
        kwargs.setdefault("labels", [f"{c} {s}" for c in COLORS for s in SHAPES])
    if over == "tokens":
        methods = [x for x in methods if x in adapter(m).text_methods]
        if not methods:
            return {}
    return perturbation_many(m, [s.image for s in scenes], methods, perturbation_texts(fam, scenes), over=over,
                             **kwargs)


def _with_perturbation(score: Score, p, t=None) -> Score:
    score.deletion, score.insertion = p.deletion_auc, p.insertion_auc
    score.random_deletion, score.random_insertion, score.score = p.random_deletion_auc, p.random_insertion_auc, p.score
    if t is not None:
        score.text_deletion, score.text_insertion = t.deletion_auc, t.insertion_auc
        score.text_random_deletion, score.text_random_insertion = t.random_deletion_auc, t.random_insertion_auc
    return score


def randomized_copy(m):
    """A copy of a Loaded model with every weight re-initialised (the model-randomisation sanity check)."""
    import torch

    model = copy.deepcopy(m.model)
    torch.manual_seed(0)
    model.apply(model._init_weights)
    init = getattr(model, "init_weights", None)
    if callable(init):
        init()
    return type(m)(model, m.processor, m.spec, m.device, m.dtype, m.attention)


class FaithfulnessTable(list):
    """Rows of Score that print as a table."""

    def __str__(self) -> str:
        f = lambda x: f"{x:.3f}" if np.isfinite(x) else "-"  # noqa: E731
        w = max([38] + [len(s.model) for s in self])  # a longer name (a folder, "... (re-initialised)") widens it
        m = max([11] + [len(s.method) for s in self])
        head = (f"{'model':<{w}} {'method':<{m}} {'words':>5} {'pointing':>9} {'mass':>6} {'uniform':>8} "
                f"{'del AUC':>8} {'random':>7} {'ins AUC':>8} {'random':>7} "
                f"{'txt del':>8} {'random':>7} {'txt ins':>8} {'random':>7}")
        lines = [head] + [f"{s.model:<{w}} {s.method:<{m}} {s.words:>5} {s.pointing:>9.1%} {s.mass:>6.1%} "
                          f"{s.baseline:>8.1%} {f(s.deletion):>8} {f(s.random_deletion):>7} {f(s.insertion):>8} "
                          f"{f(s.random_insertion):>7} {f(s.text_deletion):>8} {f(s.text_random_deletion):>7} "
                          f"{f(s.text_insertion):>8} {f(s.text_random_insertion):>7}" for s in self]
        scores = {s.model.replace(" (re-initialised)", ""): s.score for s in self if s.score}
        lines += [f"AUC of {m}: {sc} (del/ins: image patches; txt: text tokens, '-' where the method ranks none)"
                  for m, sc in scores.items()]
        return "\n".join(lines)

    def markdown(self) -> str:
        """The table as Markdown, for docs."""
        f = lambda x: f"{x:.3f}" if np.isfinite(x) else "-"  # noqa: E731
        out = ["| model | method | words | pointing | mass | uniform | del AUC | random | ins AUC | random | "
               "txt del | random | txt ins | random |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        out += [f"| {s.model} | {s.method} | {s.words} | {s.pointing:.1%} | {s.mass:.1%} | {s.baseline:.1%} | "
                f"{f(s.deletion)} | {f(s.random_deletion)} | {f(s.insertion)} | {f(s.random_insertion)} | "
                f"{f(s.text_deletion)} | {f(s.text_random_deletion)} | {f(s.text_insertion)} | "
                f"{f(s.text_random_insertion)} |" for s in self]
        return "\n".join(out)

    def _repr_pretty_(self, p, cycle):
        p.text(str(self))


def faithfulness(models, scenes, methods: dict | None = None, sanity: bool = True,
                 perturb: bool = True, **perturb_kwargs) -> FaithfulnessTable:
    """Score every model and method on the scenes; with sanity=True also each model re-initialised.

    Args:
        models: Loaded models (or names).
        scenes: ShapesWorld scenes (the ground truth).
        methods: {family: [methods]}; default: every method the family's maps offer.
        perturb: add the deletion / insertion AUCs (perturbation.py), over the image's patches and, for the
            models with an input text, over its tokens; perturb_kwargs go to it (steps, n_random).
    """
    from ..models import load_model
    from . import attention_maps

    rows = FaithfulnessTable()
    for m in models:
        m = load_model(m, attention=True) if isinstance(m, str) else m
        probe = attention_maps(m, scenes[0].image, _texts_for(m.spec.family, scenes[0])[0])
        meths = (methods or {}).get(m.spec.family) or list(probe.methods)
        if probe.notes.get("attention_is_text_independent"):  # CLIP: text-dependent methods first
            meths = [x for x in meths if x not in ("attention", "rollout")] + [x for x in meths if x in ("attention", "rollout")]
        curves = perturb_scores(m, scenes, meths, **perturb_kwargs) if perturb else {}
        text = perturb_scores(m, scenes, meths, "tokens", **perturb_kwargs) if perturb else {}
        points = score_maps_many(m, scenes, meths)
        for meth in meths:
            row = points[meth]
            rows.append(_with_perturbation(row, curves[meth], text.get(meth)) if perturb else row)
        if sanity:
            r = randomized_copy(m)
            row = score_maps(r, scenes, meths[0], randomized=True)
            if perturb:
                t = perturb_scores(r, scenes, meths[:1], "tokens", **perturb_kwargs).get(meths[0])
                row = _with_perturbation(row, perturb_scores(r, scenes, meths[:1], **perturb_kwargs)[meths[0]], t)
            rows.append(row)
    return rows
