"""Are these ShapesWorld's words and questions? The text-side checks a bundled model runs first (mmkit.domain does
the pictures).

The text a bundled model is given (a question, labels, a query) is checked: a word no ShapesWorld text uses ("what
is the capital of France?", "a photo of a cat") gets `mmkit.OutOfDomainWarning`, since the model has never read it.
A question in ShapesWorld's words but not in one of the forms ShapesWorld asks ("what color is the shape?" where it
asks "what color is the circle?") gets the warning too: the VQA models were only taught those forms, and ViLT
answers that question with a shape. For common rewordings the warning names the ShapesWorld question that asks the
same (suggested_form); the model still answers the question as typed. A model fine-tuned from a bundled one is
checked as its base is, with the words fine-tuning taught it known (mmkit.domain_notices.finetuned_from). Pretrained models
are never checked.
"""
from __future__ import annotations

from functools import lru_cache

from .domain import checked, is_bundled
from .domain_notices import bundled_name, finetuned_from, pretrained_hint, taught, teaching_model


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


def _tokens(text: str) -> list[str]:
    """A text's words (runs of letters and digits) and symbols (runs of emoji, arrows, maths or currency signs:
    what no ShapesWorld text holds, and which tokenizers often drop without a word), lower-cased, in order.
    Punctuation ('?', ',', a curly apostrophe) is neither."""
    import re
    import unicodedata

    out = []
    for m in re.finditer(r"[^\W_]+|[^\w\s]+", str(text).lower()):
        run = m.group()
        if run[0].isalnum():
            out.append(run)
            continue
        symbols = "".join(c for c in run if unicodedata.category(c)[0] == "S" or unicodedata.category(c) in ("Co", "Cn"))
        if symbols:
            out.append(symbols)
    return out


def unknown_words(texts, also=()) -> list[str]:
    """The words (and symbols: emoji, arrows, signs) of the texts that no ShapesWorld text uses, nor `also` (the
    words a fine-tune taught, lower-cased), lower-cased, each once, in order of appearance."""
    known, seen = known_words(), {}
    also = frozenset(also)
    for t in texts:
        for word in _tokens(t):
            if word not in known and word not in also:
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
    new = _taught_words(m)
    unknown = unknown_words(texts, new)
    if unknown:
        spec = m.spec
        shown = ", ".join(repr(w) for w in unknown[:8]) + (", ..." if len(unknown) > 8 else "")
        near = [f"{form!r} for {w!r}" for w in unknown if (form := known_form(w))]
        asked = _suggestions([t for t in texts if unknown_words([t], new)])  # reworded as ShapesWorld asks it
        warn(f"{teaching_model(m)} that has only read ShapesWorld's {len(known_words())} words "
             f"(colours, shapes, sizes, places, counts, yes and no: mmkit.data.ShapesWorld.vocabulary(styled=True))"
             f"{taught(m)}; {_never_read(m, shown, len(unknown), task)}. Say it in those words"
             + (f" ({', '.join(near)})" if near else "") + (f"; ask {'; '.join(asked)}" if asked else "")
             + f", or {pretrained_hint(spec)}", OutOfDomainWarning)
    return unknown


def _and_fine_tuning(m) -> str:
    """', and those its fine-tuning data used' for a fine-tuned model, whose data's forms are not recorded."""
    return ", and those its fine-tuning data used" if finetuned_from(m) else ""


def _never_read(m, shown: str, n: int, task: str) -> str:
    """'it has never read 'cat', so its answer is a guess'; for a fine-tuned model, which may have read words its
    data used that the tokenizer knew (its mmkit.json lists only the words it added), a 'may'."""
    if not finetuned_from(m):
        return f"it has never read {shown}, so its {task} is a guess"
    return (f"{shown} {'is' if n == 1 else 'are'} none of those, so its {task} may be a guess (unless the fine-tuning "
            "data used them: only the words it added to the tokenizer are recorded)")


def _taught_words(m) -> list[str]:
    """The words a model fine-tuned from a bundled one was taught ([] for a bundled model)."""
    lineage = finetuned_from(m)
    return lineage[1] if lineage else []


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


@lru_cache(maxsize=1)
def position_forms() -> frozenset:
    """The forms of ShapesWorld's where-questions ('is the red circle above the blue square?')."""
    from .data import ShapesWorld

    return frozenset(question_form(qa.question) for scene in ShapesWorld(300, seed=0) for qa in scene.qa
                     if qa.kind == "position")


@lru_cache(maxsize=1)
def caption_forms() -> frozenset:
    """The forms of ShapesWorld's captions ('a {size} {color} {shape}', with a second object and where it lies,
    'there are no shapes'), read off its own scenes as question_forms reads its questions."""
    from .data import ShapesWorld

    worlds = (ShapesWorld(300, seed=0), ShapesWorld(60, seed=0, style="light", empty=0.3))
    return frozenset(question_form(scene.caption) for world in worlds for scene in world)


@lru_cache(maxsize=32)
def _held_out(spec, kind: str) -> float | None:
    """A bundled model's held-out accuracy on one question kind, from its mmkit.json ('heldout'), or None (read
    once per model and kind: a where-question is asked again and again)."""
    from pathlib import Path

    from .models import _meta

    held = _meta(Path(spec.repo)).get("heldout", {})
    value = held.get(f"vqa_accuracy_{kind}", held.get(f"accuracy_{kind}"))
    return float(value) if isinstance(value, (int, float)) else None


def _off_form(texts, forms: frozenset) -> tuple[list[str], str]:
    """(the texts in known words whose form is not among `forms`, each once; the first three quoted, for a
    notice). Texts with unknown words are left to check_words; so are texts with words a fine-tune taught (their
    forms are the fine-tune's, which are not recorded)."""
    odd = list(dict.fromkeys(t for t in texts if not unknown_words([t]) and question_form(t) not in forms))
    return odd, ", ".join(repr(t) for t in odd[:3]) + (", ..." if len(odd) > 3 else "")


def check_captions(m, texts, task: str = "match score") -> list[str]:
    """Warn (mmkit.OutOfDomainWarning) when a bundled image-text matching model scores a text in its words that is
    not in one of ShapesWorld's caption forms. shapes-blip-itm was trained on those captions, which always name a
    size: it scored 'a red circle' 0.025 on a red circle ('a large red circle' 0.997). Texts with unknown words
    are left to check_words. Returns the texts warned about (empty for models that are not checked)."""
    from .errors import OutOfDomainWarning, warn

    if not checked(m):
        return []
    odd, shown = _off_form(texts, caption_forms())
    if odd:
        warn(f"{teaching_model(m)} that learnt to match ShapesWorld's captions ('a "
             "large red circle', 'a small blue square to the left of a large green triangle', 'there are no "
             f"shapes'), which always name each shape's size{_and_fine_tuning(m)}; {shown} "
             f"{'is' if len(odd) == 1 else 'are'} not in "
             f"that form, so its {task} may be far off (it scores 'a red circle' low even on a red circle). Write "
             f"the text as its captions are ('a large red circle' or 'a small red circle'), or "
             f"{pretrained_hint(m.spec)}", OutOfDomainWarning)
    return odd


def check_positions(m, questions) -> list[str]:
    """Warn (mmkit.OutOfDomainWarning) when a bundled VQA model is asked a where-question ('is the red circle
    above the blue square?'): the bundled VQA models answer those at about chance (their held-out accuracy is
    in their mmkit.json). Returns the questions warned about."""
    from .errors import OutOfDomainWarning, warn

    if not checked(m):
        return []
    forms = position_forms()
    where = list(dict.fromkeys(q for q in questions if question_form(q) in forms))
    if where:
        from .models import bundled_spec

        lineage = finetuned_from(m)
        acc = _held_out(bundled_spec(lineage[0]) if lineage else m.spec, "position")
        measured = (f"right {acc:.2f} of the time on held-out ShapesWorld scenes" if acc is not None
                    else "at about chance")
        shown = ", ".join(repr(q) for q in where[:2]) + (", ..." if len(where) > 2 else "")
        who = (f"{bundled_name(m)} was fine-tuned from the bundled {lineage[0]}, which" if lineage
               else bundled_name(m))
        guess = "likely a guess, unless fine-tuning taught it where shapes lie" if lineage else "a guess"
        warn(f"{who} answers where-questions ({shown}) {measured}, where guessing yes or no is "
             f"right half the time: its answer is {guess}. The bundled captioner says where shapes lie more often "
             f"right (mmkit.caption with shapes-blip-caption), or {pretrained_hint(m.spec)}", OutOfDomainWarning)
    return where


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
    odd, shown = _off_form(questions, question_forms())
    if odd:
        near = _suggestions(odd)
        warn(f"{teaching_model(m)} taught ShapesWorld's question forms{'' if finetuned_from(m) else ' only'} ('what "
             "color is the circle?', 'what shape is the red object?', 'what size is the blue square?', 'how many "
             "objects are there?', 'is there a green triangle?', 'is the red circle above the blue square?')"
             f"{_and_fine_tuning(m)}; "
             f"{shown} {'is not one of them' if len(odd) == 1 else 'are not'}, so its answer may be a guess. Ask in "
             "one of those forms" + (f" ({'; '.join(near)})" if near else "") + f", or {pretrained_hint(m.spec)}",
             OutOfDomainWarning)
    return odd
