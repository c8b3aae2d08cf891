"""What a bundled model's notices say (mmkit.domain decides when they are said): a picture with no ShapesWorld
shapes, more shapes than its scenes held, a shape turned further, in another colour or smaller than ShapesWorld draws
it; who the model is (bundled, or fine-tuned from a bundled one: finetuned_from) and how to get a pretrained one.
mmkit.domain imports the notices it gives from here."""
from __future__ import annotations

from pathlib import Path

KNOWS = "filled red, green and blue circles, squares and triangles (ShapesWorld)"  # outlines: CLIP 2 of 9 right
SMALLEST_DRAWN = 0.147  # ShapesWorld's smallest shape: its longest side over its picture's short side (SmallShape)

# What the bundled models called shapes the notices name (the examples in their brackets), as measured:
# a turned square or triangle (an outside tester's PIL and matplotlib drawings on white, grey and black, all six
# models: every 45-degree square a circle; every triangle turned 180 degrees a square or a circle, 36 of 36 answers)
TURNED_CALLED = {"square": "a square turned 45 degrees a circle",
                 "triangle": "a triangle pointing down a square or a circle"}
# a colour outside ShapesWorld's bands, by mmkit.data.hues.colour_name's name: "mostly" (the bundled captioner,
# shapes-clip and shapes-vilt-vqa, 2 shades x 3 PIL shapes on white each: 18 of 18 answers for each name; the
# tester's pictures on white, grey and black, all six models: orange 32 of 36 red, brown 18 of 18, hot pink 16 of
# 18, deep sky blue 18 of 18 blue, indigo 14 of 18 blue, yellow-green 12 of 18 green); yellow, cyan and purple
# shapes got different colours from different models, and the notice says so
COLOUR_CALLED = {"orange-red": "red", "orange": "red", "brown": "red", "pink": "red", "yellow-green": "green",
                 "blue-green": "green", "sky blue": "blue", "blue-violet": "blue"}


def bundled_name(spec) -> str:
    """The name a notice gives a bundled model (or the Loaded model): its folder's name when it was loaded by path
    (as collection workers load it), so every notice names it the same way."""
    spec = getattr(spec, "spec", spec)
    return Path(spec.repo).name if spec.source == "path" else spec.name


FINETUNE_DEPTH = 8  # the most fine-tunes of fine-tunes followed back to their bundled base


def finetuned_from(m) -> tuple[str, list[str]] | None:
    """(the bundled model a fine-tuned model started from, the words fine-tuning taught it), or None for a model
    that is not a fine-tune of a bundled one.

    A saved fine-tune (Finetuned.save) names its base and added words in its mmkit.json ("finetuned", "base",
    "added_words"); a base that is itself a saved fine-tune is followed back. A fine-tune still in memory (source
    "finetuned") keeps its base's folder as its repo, and its new words are the tokenizer's added tokens.

    Args:
        m: the Loaded model (a ModelSpec alone gives the saved words only).
    """
    from .models import BUNDLED_NAMES, _meta, bundled_folder

    spec = getattr(m, "spec", m)
    if spec is None or spec.source not in ("path", "finetuned"):
        return None
    words, ref = [], spec.repo
    if spec.source == "finetuned":
        tokenizer = getattr(getattr(m, "processor", None), "tokenizer", None)
        if tokenizer is not None:  # the bundled tokenizers add no words of their own (only special tokens)
            special = set(tokenizer.all_special_tokens)
            words = [t for t in tokenizer.get_added_vocab() if t not in special]
    name = bundled_folder(ref) if spec.source == "finetuned" else None
    for _ in range(FINETUNE_DEPTH):
        if name is not None:
            return name, list(dict.fromkeys(str(w).lower() for w in words))
        meta = _meta(Path(ref)) if isinstance(ref, str) and Path(ref).is_dir() else {}
        base = meta.get("base")
        if not meta.get("finetuned") or not isinstance(base, str):
            return None
        words = list(meta.get("added_words") or ()) + words  # the earliest fine-tune's first
        name, ref = (base if base in BUNDLED_NAMES else bundled_folder(base)), base
    return None


def teaching_model(spec) -> str:
    """How a notice starts: 'shapes-clip is a bundled teaching model', or 'ft, fine-tuned from the bundled
    shapes-clip, is a teaching model' (spec: the ModelSpec or the Loaded model)."""
    lineage = finetuned_from(spec)
    if lineage is None:
        return f"{bundled_name(spec)} is a bundled teaching model"
    return f"{bundled_name(spec)}, fine-tuned from the bundled {lineage[0]}, is a teaching model"


def taught(spec) -> str:
    """What fine-tuning added to what a fine-tuned model knows ("" for a bundled one): ', and the words fine-tuning
    taught it ('orange')'."""
    lineage = finetuned_from(spec)
    if lineage is None:
        return ""
    words = lineage[1]
    shown = ", ".join(repr(w) for w in words[:8]) + (", ..." if len(words) > 8 else "")
    return f", and the words fine-tuning taught it ({shown})" if words else ", and what fine-tuning taught it"


def pretrained_hint(spec) -> str:
    """The end of both notices: how to get the real model of the same family."""
    return (f"load a pretrained model: mmkit.load_model('{spec.family}') picks the real checkpoint when the "
            "Hugging Face hub is reachable (or cached).")


def _which(which: list[int], n: int, names: list[str] | None) -> str:
    """'3 of 10 pictures (index 2, 4, 7)', or with names (a video's frame times) '3 of 10 frames (at 2.0 s, ...)'."""
    shown = [names[i] for i in which] if names else list(map(str, which))
    listed = ", ".join(shown[:8]) + (", ..." if len(which) > 8 else "")
    return f"{len(which)} of {n} frames (at {listed})" if names else f"{len(which)} of {n} pictures (index {listed})"


def picture_notice(spec, which: list[int], n: int, task: str = "result", names: list[str] | None = None) -> str:
    """The out-of-domain message for `which` of `n` pictures given to the bundled (or fine-tuned bundled) model
    `spec`, its ModelSpec or the Loaded model (names: what to call each picture instead of its index, e.g. a video
    frame's time)."""
    if n == 1:
        where = "the picture seems to show"  # the detector's reading, not a certainty
    else:
        where = f"{_which(which, n, names)} seem to show"
    said = (" (unless it says 'there are no shapes', which is what it was taught to say of a picture without "
            "them)") if task == "caption" else ""
    lineage = finetuned_from(spec)
    flags_new = (f" The check was made for {lineage[0]}'s shapes, so it may flag pictures of the colours or shapes "
                 "fine-tuning added." if lineage else "")  # the detector learnt red, green and blue only
    return (f"{teaching_model(spec)} that only knows {KNOWS}{taught(spec)}; {where} no such shapes, so its {task} is "
            f"a guess{said}.{flags_new} For photos, {pretrained_hint(getattr(spec, 'spec', spec))}")


def _reading_notice(spec, learnt: str, where: str, task: str, risk: str, fix: str) -> str:
    """A notice about what the pictures seem to show beside what the model learnt: '<model> is a bundled teaching
    model that learnt <learnt>; <where>, so its <task> <risk>. <fix>, or load a pretrained model: ...'."""
    return (f"{teaching_model(spec)} that learnt {learnt}; {where}, so its {task} {risk}. {fix}, or "
            f"{pretrained_hint(getattr(spec, 'spec', spec))}")


def crowd_notice(spec, which: list[int], counts: list[int], n: int, task: str = "result",
                 names: list[str] | None = None) -> str:
    """The message for `which` of `n` pictures that seem to show `counts` shapes, more than MOST_SHAPES."""
    if n == 1:
        where = f"the picture seems to show {counts[0]} shapes"
    else:
        where = f"{_which(which, n, names)} seem to show more"
    return _reading_notice(spec, "from ShapesWorld scenes of one or two shapes", where, task,
                           "may leave some of them out (the bundled VQA models answer 'two' to 'how many objects are "
                           "there?')", "Draw one or two shapes")


def turned_notice(spec, which: list[int], turns: list[list], n: int, task: str = "result",
                  names: list[str] | None = None) -> str:
    """The message for `which` of `n` pictures that seem to show a square or triangle turned further than the
    training looks turn them (turns: each such picture's mmkit.data.turns.ShapeTurn list)."""
    from .data.turns import TURN_LIMIT

    if n == 1:
        where = "the picture seems to show " + " and ".join(  # a triangle's turn is read modulo 120 degrees
            f"a square turned {t.turn:.0f} degrees" if t.shape == "square" else "a triangle that does not point up"
            for t in turns[0][:2])
    else:
        where = f"{_which(which, n, names)} seem to show a square or triangle turned more than {TURN_LIMIT:.0f} degrees"
    shapes = {t.shape for t in turns[0][:2]} if n == 1 else {t.shape for found in turns for t in found}
    examples = [TURNED_CALLED[s] for s in ("square", "triangle") if s in shapes]
    return _reading_notice(spec, f"upright squares and triangles (few turned more than {TURN_LIMIT - 1:.0f} degrees)",
                           where, task,
                           f"may misname it (the bundled models call {', and '.join(examples)})"
                           if examples else "may misname it", "Draw the shapes upright")


FORM_LOOKS = {  # what each of mmkit.data.forms.OtherForm's kinds looks like ("outline" is said apart)
    "long": "a long one, like an ellipse or a bar", "pointed": "one with points or dents, like a star or a cross",
    "hollow": "one with a hole, like a ring", "marked": "one with marks on it, like a letter or a face",
    "patterned": "one filled with lines or a pattern, not one flat colour",
    "leaning": "a triangle whose tip is not above the middle of its base, like a right-angled one"}


def form_notice(spec, which: list[int], forms: list[list], n: int, task: str = "result",
                names: list[str] | None = None) -> str:
    """The message for `which` of `n` pictures that seem to show a shape that is no filled circle, square or
    triangle (forms: each such picture's mmkit.data.forms.OtherForm list)."""
    kinds = list(dict.fromkeys(f.kind for found in (forms[:1] if n == 1 else forms) for f in found))
    shown = "the picture seems to show" if n == 1 else f"{_which(which, n, names)} seem to show"
    learnt = "filled circles, squares and triangles"
    if kinds == ["leaning"]:  # the learner drew a triangle: say which triangles the models know
        return _reading_notice(spec, learnt, f"{shown} {FORM_LOOKS['leaning']}", task,
                               "may call it a circle or a square (in tests every bundled model mostly did with "
                               "right-angled triangles, which they never saw: their triangles' tips are above the "
                               "middle of the base)", "Draw the triangle with its tip above the middle of its base")
    said = []
    if any(k != "outline" for k in kinds):
        looks = " or ".join(FORM_LOOKS[k] for k in kinds if k != "outline")
        said.append(f"a shape that is none of them ({looks})")
    if "outline" in kinds:
        said.append("a shape drawn as an outline, not filled")
    return _reading_notice(spec, learnt, f"{shown} {' and '.join(said)}", task,
                           "may call it the nearest of those, or see two shapes in it (in tests the bundled models "
                           "called stars and crosses circles or squares, most often with 0.9 or more of "
                           "shapes-clip's probability, and an outlined triangle a small triangle above a square)",
                           "Draw filled circles, squares or triangles")


def colour_notice(spec, which: list[int], odd: list[list], n: int, task: str = "result",
                  names: list[str] | None = None) -> str:
    """The message for `which` of `n` pictures that seem to show a shape in a colour ShapesWorld never draws (odd:
    each such picture's mmkit.data.hues.OddColour list)."""
    if n == 1:
        where = "the picture seems to show " + " and ".join(dict.fromkeys(
            f"{'an' if o.name[0] in 'aeiou' else 'a'} {o.name} shape" for o in odd[0][:2]))
    else:
        where = f"{_which(which, n, names)} seem to show shapes in other colours"
    seen = list(dict.fromkeys(o.name for found in (odd[:1] if n == 1 else odd) for o in found[:2]))[:3]  # as named
    return _reading_notice(spec, f"red, green and blue shapes{taught(spec)}", where, task,
                           f"may give it the nearest of those colours{_colours_called(seen)}",
                           "Draw red, green or blue shapes")


def _colours_called(names: list[str]) -> str:
    """What the bundled models were seen to call shapes of these colours (mmkit.data.hues.colour_name's names), in
    brackets: ' (in tests the bundled models mostly called orange shapes red)', or, for a colour they split on, that
    they differ, or for pale ones how often the captioner named them wrong; "" with no names."""
    called = [f"{name} shapes {COLOUR_CALLED[name]}" for name in names if name in COLOUR_CALLED]
    split = [name for name in names if name not in COLOUR_CALLED and not name.startswith("pale ")]
    said = ([f"the bundled models mostly called {' and '.join(called)}"] if called else []) + \
        ([f"{' and '.join(split)} shapes got different ones from different models"] if split else []) + \
        (["pale shapes drawn by an outside tester were captioned wrong 23 of 43 times"]
         if any(name.startswith("pale ") for name in names) else [])
    return f" (in tests {'; '.join(said)})" if said else ""


def _said_of(spec, which: list[int], n: int, task: str, names, one: str, many: str, learnt: str, risk: str,
             fix: str) -> str:
    """A reading's notice (_reading_notice) that says `one` of a single picture, or `many` after naming `which`."""
    return _reading_notice(spec, learnt, one if n == 1 else f"{_which(which, n, names)} {many}", task, risk, fix)


def grey_notice(spec, which: list[int], n: int, task: str = "result", names: list[str] | None = None) -> str:
    """The message for `which` of `n` pictures that are drawings in grey (mmkit.domain.GreyPicture)."""
    return _said_of(spec, which, n, task, names, "the picture has no colours (its shapes are black, white or grey)",
                    "have no colours", "red, green and blue shapes", "may name colours the picture does not have (in "
                    "tests a grey circle and square were captioned green and red)", "Use a colour picture")


def size_notice(spec, which: list[int], sizes: list[tuple[int, int]], n: int, task: str = "result",
                names: list[str] | None = None, enlarged: list | None = None) -> str:
    """The message for `which` of `n` pictures smaller than ShapesWorld draws (mmkit.domain.TinyPicture; sizes: each
    one's (width, height); enlarged: each one's own size when it is a drawing that small enlarged, else None)."""
    from .domain import SMALLEST_CANVAS

    grown = any(enlarged or [])
    if n == 1 and grown:
        where = (f"the picture seems to be a drawing of {sizes[0][0]} x {sizes[0][1]} pixels enlarged to "
                 f"{enlarged[0][0]} x {enlarged[0][1]} (its pixels are blocks)")
    elif n == 1:
        where = f"the picture is {sizes[0][0]} x {sizes[0][1]} pixels"
    else:
        where = (f"{_which(which, n, names)} are smaller than {SMALLEST_CANVAS} pixels a side"
                 + (", or enlarged from drawings that small" if grown else ""))
    tests = ("shapes-clip named 8 of 18 drawn shapes right at 8 pixels and 13 of 18 at 16, against 16 of 18 at 32"
             + ("; circles and triangles drawn at 12-16 pixels and enlarged were called squares" if grown else ""))
    return _reading_notice(spec, f"pictures of {SMALLEST_CANVAS} to 512 pixels a side", where, task,
                           f"may misname its shapes (in tests {tests})",
                           f"Use a picture of {SMALLEST_CANVAS} pixels a side or more"
                           + (", drawn at that size" if grown else ""))


def words_notice(spec, which: list[int], n: int, task: str = "result", names: list[str] | None = None) -> str:
    """The message for `which` of `n` pictures that seem to show words beside their shapes (mmkit.data.turns.Words)."""
    return _said_of(spec, which, n, task, names, "the picture seems to show words beside its shapes (a title or a "
                    "label)", "seem to show words beside their shapes", "pictures of shapes alone", "may read the "
                    "letters as a shape (in tests a title above one shape drew a second, made-up shape into 16 of 52 "
                    "captions)", "Crop the picture to its shapes")


def small_notice(spec, which: list[int], n: int, task: str = "result", names: list[str] | None = None,
                 beside: bool = False) -> str:
    """The message for `which` of `n` pictures whose shapes are all smaller than ShapesWorld draws them, or, with
    beside, that show such a shape beside a larger one (mmkit.data.turns.small_beside)."""
    from .data.turns import SMALL

    under = f"smaller than that (under {SMALL:.1%} of the picture's short side)"
    learnt = f"shapes at least {SMALLEST_DRAWN:.1%} of their picture's short side across"
    if beside:
        where = (f"the picture seems to show a shape {under} beside a larger one" if n == 1 else
                 f"{_which(which, n, names)} seem to show a shape {under} beside a larger one")
        return _reading_notice(spec, learnt, where, task, "may leave it out or misname it (the bundled captioner did "
                               "with 24 of 54 such drawings)", "Draw the small shape larger")
    where = ("the picture's shapes seem" if n == 1 else f"{_which(which, n, names)} seem to show shapes") + f" {under}"
    return _reading_notice(spec, learnt, where, task,
                           "may miss or misname them (the bundled captioner named 0.72 of such drawings right at a "
                           "tenth)", "Crop the picture around the shapes")