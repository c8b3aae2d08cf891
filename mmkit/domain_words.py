"""Are these ShapesWorld's words and questions? The text-side checks a bundled model runs first (mmkit.domain does
the pictures).

The text a bundled model is given (a question, labels, a query) is checked: a word no ShapesWorld text uses ("what
is the capital of France?", "a photo of a cat") gets `mmkit.OutOfDomainWarning`, since the model has never read it.
A question in ShapesWorld's words but not in one of the forms ShapesWorld asks ("what color is the shape?" where it
asks "what color is the circle?") gets the warning too: the VQA models were only taught those forms, and ViLT
answers that question with a shape. For common rewordings the warning names the ShapesWorld question that asks the
same (suggested_form); the model still answers the question as typed. Pretrained models are never checked.
"""
from __future__ import annotations

from functools import lru_cache

from .domain import bundled_name, checked, is_bundled, pretrained_hint


def as_asked(m, question: str) -> str:
    """The question as ShapesWorld spells it, for a bundled model: ending in one question mark ('what color is the
    circle' -> 'what color is the circle?'), and 'colour' spelt 'color'. Every question the bundled VQA models were
    taught ends so: typed without it, shapes-blip-vqa answered colour and shape questions right 0.31 of the time,
    against 1.00 with it; 'what colour is the circle?' was a word they never read, answered right 0 times in 18 by
    both VQA models. Only spelling and punctuation change, never the wording (check_questions suggests a form for
    that). Other models get the question as typed."""
    import re

    spec = getattr(m, "spec", None)
    if spec is None or not is_bundled(spec):
        return question
    return re.sub(r"\bcolour\b", "color", question.rstrip(" \t.!?"), flags=re.IGNORECASE) + "?"


@lru_cache(maxsize=1)
def known_words() -> frozenset:
    """Every word a ShapesWorld text uses (plain and many looks): the words the bundled models have read."""
    from .data import ShapesWorld

    return frozenset(ShapesWorld.vocabulary(styled=True))


def unknown_words(texts) -> list[str]:
    """The words of the texts that no ShapesWorld text uses, lower-cased, each once, in order of appearance."""
    import re

    known, seen = known_words(), {}
    for t in texts:
        for word in re.findall(r"[^\W_]+", str(t).lower()):  # letters and digits; punctuation is not a word
            if word not in known:
                seen.setdefault(word)
    return list(seen)


SPELLINGS = {"colour": "color", "colours": "color", "colors": "color"}  # other spellings -> ShapesWorld's word


def known_form(word: str) -> str | None:
    """The ShapesWorld word an unknown word most likely means ('circles' -> 'circle', 'colour' -> 'color'), if any."""
    known = known_words()
    guess = SPELLINGS.get(word) or (word[:-1] if word.endswith("s") else None)
    return guess if guess in known else None


def check_words(m, texts, task: str = "result") -> list[str]:
    """Warn (mmkit.OutOfDomainWarning) when a bundled model is given words that no ShapesWorld text uses.

    Args:
        m: the Loaded model; only bundled models are checked.
        texts: the question(s), labels, prompts or queries the task is about to read.
        task: what the model returns, for the message ("answer", "zero-shot result", ...).
    Returns: the unknown words (empty for models that are not checked).
    """
    from .errors import OutOfDomainWarning, warn

    if not checked(m):
        return []
    unknown = unknown_words(texts)
    if unknown:
        spec = m.spec
        shown = ", ".join(repr(w) for w in unknown[:8]) + (", ..." if len(unknown) > 8 else "")
        near = [f"{form!r} for {w!r}" for w in unknown if (form := known_form(w))]
        asked = _suggestions([t for t in texts if unknown_words([t])])  # a question reworded as ShapesWorld asks it
        name = bundled_name(spec)
        warn(f"{name} is a bundled teaching model that has only read ShapesWorld's {len(known_words())} words "
             f"(colours, shapes, sizes, places, counts, yes and no: mmkit.data.ShapesWorld.vocabulary(styled=True)); "
             f"it has never read {shown}, so its {task} is a guess. Say it in those words"
             + (f" ({', '.join(near)})" if near else "") + (f"; ask {'; '.join(asked)}" if asked else "")
             + f", or {pretrained_hint(spec)}", OutOfDomainWarning)
    return unknown


def question_form(question: str) -> str:
    """A question with its colour, shape, size and count words replaced by their class, for comparing forms:
    'what color is the circle?' -> 'what color is the {shape}'."""
    import re

    from .data.shapes import COLORS, COUNT_WORDS, SHAPES, SIZES

    classes = {**dict.fromkeys(COLORS, "{color}"), **dict.fromkeys(SHAPES, "{shape}"),
               **dict.fromkeys(SIZES, "{size}"), **dict.fromkeys(COUNT_WORDS, "{count}")}
    return " ".join(classes.get(w, w) for w in re.findall(r"[^\W_]+", str(question).lower()))


@lru_cache(maxsize=1)
def question_forms() -> frozenset:
    """The forms of the questions ShapesWorld asks, read off its own scenes: the plain look's, and a many-looks
    world's with pictures without shapes (which adds 'how many shapes are there?'). About 0.2 s, once."""
    from .data import ShapesWorld

    worlds = (ShapesWorld(300, seed=0), ShapesWorld(60, seed=0, style="light", empty=0.3))
    return frozenset(question_form(qa.question) for world in worlds for scene in world for qa in scene.qa)


_IT = r"(?:it|this|that|the (?:shape|object|thing|one)|this (?:shape|object|thing|one))"
_REWORDINGS = (  # (a question's words, as a pattern) -> the ShapesWorld question that asks the same
    (r"(?:what|which) (?:is|s) the color of the (?P<s>{shape})", "what color is the {s}?"),  # "what's" too
    (r"(?:which|what) color does the (?P<s>{shape}) have", "what color is the {s}?"),
    (r"which color is the (?P<s>{shape})", "what color is the {s}?"),
    (rf"(?:what|which) color is {_IT}", "what color is the circle? (with its shape)"),
    (r"(?:what|which) shape is the (?P<c>{color}) (?:shape|thing|one)", "what shape is the {c} object?"),
    (r"(?:what|which) is the shape of the (?P<c>{color}) (?:shape|object|thing|one)", "what shape is the {c} object?"),
    (rf"(?:what|which) shape is {_IT}", "what shape is the red object? (with its colour)"),
    (r"how many (?P<c>{color}) (?:shapes|things) are there", "how many {c} objects are there?"),
    (r"how many (?:things|objects|shapes) (?:are )?(?:there )?in (?:the|this) (?:picture|image|photo)",
     "how many objects are there?"),
    (r"is there an? (?P<c>{color}) (?P<s>{shape}) in (?:the|this) (?:picture|image|photo)", "is there a {c} {s}?"),
    (r"how (?:big|large) is the (?P<c>{color}) (?P<s>{shape})", "what size is the {c} {s}?"),
)


def suggested_form(question: str) -> str | None:
    """The ShapesWorld question that asks what `question` asks in other words, when it is one of a few common
    rewordings ('what is the color of the circle?' -> 'what color is the circle?'); None otherwise. A suggestion
    for the notice, never a rewrite: the model answers what it is asked."""
    import re

    from .data.shapes import COLORS, SHAPES

    words = " ".join(re.findall(r"[^\W_]+", re.sub(r"\bcolour\b", "color", str(question).lower())))
    classes = {"color": "|".join(COLORS), "shape": "|".join(SHAPES)}
    for pattern, form in _REWORDINGS:
        hit = re.fullmatch(pattern.replace("{color}", classes["color"]).replace("{shape}", classes["shape"]), words)
        if hit:
            return form.format(**hit.groupdict())
    return None


def _suggestions(texts) -> list[str]:
    """"'form' for 'question'" for each of the first three texts that is a common rewording of a ShapesWorld question."""
    out = {}
    for q in list(texts)[:3]:
        if form := suggested_form(q):
            asked, mark, hint = form.partition("?")  # 'what color is the circle?' and ' (with its shape)'
            out.setdefault(f"{asked + mark!r}{hint} for {q!r}")
    return list(out)


def check_questions(m, questions) -> list[str]:
    """Warn (mmkit.OutOfDomainWarning) when a bundled model is asked, in words it knows, a question that is not
    in one of ShapesWorld's forms. Questions with unknown words are left to check_words' warning.

    Returns: the questions warned about (empty for models that are not checked).
    """
    from .errors import OutOfDomainWarning, warn

    if not checked(m):
        return []
    forms = question_forms()
    odd = list(dict.fromkeys(q for q in questions if not unknown_words([q]) and question_form(q) not in forms))
    if odd:
        shown = ", ".join(repr(q) for q in odd[:3]) + (", ..." if len(odd) > 3 else "")
        near = _suggestions(odd)
        warn(f"{bundled_name(m.spec)} is a bundled teaching model taught ShapesWorld's question forms only ('what "
             "color is the circle?', 'what shape is the red object?', 'what size is the blue square?', 'how many "
             "objects are there?', 'is there a green triangle?', 'is the red circle above the blue square?'); "
             f"{shown} {'is not one of them' if len(odd) == 1 else 'are not'}, so its answer may be a guess. Ask in "
             "one of those forms" + (f" ({'; '.join(near)})" if near else "") + f", or {pretrained_hint(m.spec)}",
             OutOfDomainWarning)
    return odd
