"""One validation layer for options: every numeric and text option of the task functions, the CLI and the panels.

Each option has one rule here (type, range, whether None is allowed). `check_option` and `check_options`
apply them and return the value in a plain Python type; a value outside the rule raises `InputError`
naming the option, the value and the allowed range. The CLI passes its flag name as `label`:

    check_option("num_beams", 2.5)                  # InputError: num_beams=2.5 is not allowed: ...
    check_option("num_beams", args.beams, label="--beams")
    check_options(max_new_tokens=20, temperature=0.7)   # -> {"max_new_tokens": 20, "temperature": 0.7}
    OPTIONS["temperature"].lo, OPTIONS["temperature"].hi  # bounds for a slider

Task functions call `check_generate_options` (decoding), `check_templates` (zero-shot prompts) and
`check_attention_options` (attention_maps keyword arguments).
"""
from __future__ import annotations

import math
import numbers
import operator
import string
from dataclasses import dataclass

import numpy as np

from .errors import InputError


@dataclass(frozen=True)
class Option:
    """The rule of one option."""

    kind: str  # "int", "float" (finite), "bool", "text" or "templates"
    lo: float | None = None  # smallest allowed value (numbers only)
    hi: float | None = None  # largest allowed value (numbers only)
    lo_open: bool = False  # True: lo itself is not allowed (top_p > 0)
    none: bool = False  # True: None is allowed (it means "off" or "the default")
    doc: str = ""  # what the option does, for help texts

    def describe(self) -> str:
        """The allowed values in words, e.g. 'a whole number from 1 to 64'."""
        if self.kind == "bool":
            text = "True or False"
        elif self.kind == "text":
            text = "a string"
        elif self.kind == "templates":
            text = "a string with one '{}' where the label goes, or a list of them"
        else:
            noun = "a whole number" if self.kind == "int" else "a finite number"
            low = f"greater than {_num(self.lo)}" if self.lo_open else f"from {_num(self.lo)}"
            text = f"{noun} {low} {'and at most' if self.lo_open else 'to'} {_num(self.hi)}"
        return text + (", or None" if self.none else "")


MAX_TOKENS = 4096  # generation length cap; each model's own text limit lowers it further, with a warning

OPTIONS: dict[str, Option] = {
    "max_new_tokens": Option("int", 1, MAX_TOKENS, doc="tokens to generate at most"),
    "min_new_tokens": Option("int", 0, MAX_TOKENS, doc="tokens to generate at least"),
    "num_beams": Option("int", 1, 64, doc="beam search width (1 = greedy)"),
    "do_sample": Option("bool", doc="sample instead of taking the most likely token"),
    "temperature": Option("float", 0.01, 100, doc="sampling temperature (low = safe, high = varied)"),
    "top_p": Option("float", 0, 1, lo_open=True, doc="nucleus sampling: keep the most likely tokens up to this mass"),
    "top_k": Option("int", 1, 1_000_000, none=True, doc="sample among the k most likely tokens (None: all)"),
    "length_penalty": Option("float", -100, 100, doc="beam search: > 1 favours longer captions"),
    "repetition_penalty": Option("float", 0.01, 100, doc="> 1 discourages repeated tokens"),
    "no_repeat_ngram_size": Option("int", 0, 100, doc="never repeat an n-gram of this size (0: off)"),
    "early_stopping": Option("bool", doc="beam search stops when enough beams are finished"),
    "seed": Option("int", 0, 2**63 - 1, none=True, doc="seeds sampling so results repeat (None: unseeded)"),
    "batch_size": Option("int", 1, 1_000_000, doc="items per forward pass"),
    "k": Option("int", 1, 1_000_000, doc="hits per query"),
    "paired": Option("bool", doc="score image i with text i only"),
    "layer": Option("int", -1000, 1000, none=True, doc="a layer index, negative from the end (None: default)"),
    "max_pixels": Option("int", 1, 2**40, doc="load_image: width x height above which an image is refused"),
    "max_bytes": Option("int", 1, 2**40, doc="load_image: most bytes read from a file or file object"),
    "prompt": Option("text", none=True, doc="text the caption must start with"),
    "templates": Option("templates", none=True, doc="zero-shot prompts, '{}' is replaced by each label"),
}

# caption(**generate_kwargs) also passes these objects to transformers' generate unchanged (widgets' Stop button)
GENERATE_OBJECTS = ("stopping_criteria", "logits_processor")
GENERATE_OPTIONS = ("max_new_tokens", "min_new_tokens", "num_beams", "do_sample", "temperature", "top_p", "top_k",
                    "length_penalty", "repetition_penalty", "no_repeat_ngram_size", "early_stopping")


def _num(x) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _show(value) -> str:
    s = repr(value)
    return s if len(s) <= 60 else s[:57] + "..."


def _refuse(label: str, value, rule: Option, why: str = "") -> InputError:
    return InputError(f"{label}={_show(value)} is not allowed{why}: {label} must be {rule.describe()}")


def check_option(name: str, value, *, label: str | None = None, rule: Option | None = None):
    """`value` checked against the rule of option `name`, in a plain type (int, float, bool, str, tuple).

    Args:
        name: a key of OPTIONS, e.g. "num_beams" (any name when rule is given).
        value: what the user gave.
        label: the name to show in the error (e.g. the CLI flag "--beams"); default: name.
        rule: the Option to check against, for options of one function (finetune's RULES); default: OPTIONS[name].
    """
    if rule is None:
        if name not in OPTIONS:
            raise InputError(f"unknown option {name!r}; the options are {', '.join(OPTIONS)}")
        rule = OPTIONS[name]
    label = label or name
    if value is None:
        if rule.none:
            return None
        raise _refuse(label, value, rule)
    if rule.kind == "bool":
        if isinstance(value, (bool, np.bool_)):  # never 0/1 or "no"
            return bool(value)
        raise _refuse(label, value, rule, f" ({type(value).__name__})")
    if rule.kind == "text":
        from .tasks.inputs import clean_text

        return clean_text(value, label)
    if rule.kind == "templates":
        return check_templates(value, label=label)
    if rule.kind == "int":
        return _check_int(label, value, rule)
    return _check_float(label, value, rule)


def _check_int(label: str, value, rule: Option) -> int:
    if isinstance(value, bool):
        raise _refuse(label, value, rule, " (a bool)")
    try:
        n = operator.index(value)  # int, numpy integer, 0-d integer tensor; not 2.5, 3.0 or "3"
    except TypeError:
        raise _refuse(label, value, rule, f" ({type(value).__name__})") from None
    if not rule.lo <= n <= rule.hi:
        raise _refuse(label, value, rule)
    return int(n)


def _check_float(label: str, value, rule: Option) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):  # numpy floats and ints are Real; "0.5" is not
        raise _refuse(label, value, rule, f" ({type(value).__name__})")
    try:
        f = float(value)
    except (OverflowError, ValueError, TypeError):
        raise _refuse(label, value, rule) from None
    if not math.isfinite(f):
        raise _refuse(label, value, rule, " (not finite)")
    if f < rule.lo or f > rule.hi or (rule.lo_open and f == rule.lo):
        raise _refuse(label, value, rule)
    return f


def check_options(**kw) -> dict:
    """Every keyword checked with check_option; returns them in plain types (InputError on the first bad one)."""
    return {name: check_option(name, value) for name, value in kw.items()}


def check_templates(templates, *, label: str = "templates") -> tuple[str, ...] | None:
    """Zero-shot templates as a tuple of cleaned strings, each with exactly one '{}'; None stays None.

    Literal braces are written '{{' and '}}', as in str.format. Named or numbered fields ('{x}', '{0}'),
    two fields ('a {} or {}') and single braces are refused, naming the template.
    """
    from .tasks.inputs import clean_text

    if templates is None:
        return None
    if isinstance(templates, str):
        templates = [templates]
    if not isinstance(templates, (list, tuple)) or not templates:
        raise InputError(f"{label}={_show(templates)} is not allowed: {label} must be {OPTIONS['templates'].describe()}"
                         " (a non-empty list)")
    out = []
    for i, t in enumerate(templates):
        where = label if len(templates) == 1 else f"{label}[{i}]"
        if not isinstance(t, str):
            raise InputError(f"{where}={_show(t)} is not a string; each template is text with one '{{}}', "
                             "e.g. 'a photo of a {}'")
        t = clean_text(t, where)
        try:
            fields = [f for f in string.Formatter().parse(t) if f[1] is not None]
        except ValueError:
            raise InputError(f"{where}={_show(t)} has a single '{{' or '}}'; write '{{}}' where the label goes and "
                             "'{{{{' / '}}}}' for literal braces") from None
        if len(fields) != 1 or fields[0][1:] != ("", "", None):
            raise InputError(f"{where}={_show(t)} must contain exactly one plain '{{}}' where the label goes "
                             f"(found {len(fields)} field(s): {', '.join('{' + (f[1] or '') + '}' for f in fields) or 'none'}), "
                             "e.g. 'a photo of a {}'")
        out.append(t)
    return tuple(out)


def check_generate_options(kw: dict, *, task: str = "caption") -> dict:
    """Decoding keyword arguments checked (GENERATE_OPTIONS, plus GENERATE_OBJECTS passed through).

    Unknown names are refused (transformers would raise its own error, or ignore them silently); so is
    min_new_tokens > max_new_tokens.
    """
    out = {}
    for name, value in kw.items():
        if name in GENERATE_OPTIONS:
            out[name] = check_option(name, value)
        elif name in GENERATE_OBJECTS:
            if not isinstance(value, list) or not all(callable(c) for c in value):
                raise InputError(f"{name} must be a list of callables (transformers' {name.title().replace('_', '')}"
                                 f"List), got {type(value).__name__}")
            out[name] = value
        else:
            raise InputError(f"{task} got an unknown option {name!r}; its decoding options are "
                             f"{', '.join(GENERATE_OPTIONS + GENERATE_OBJECTS)}")
    lo, hi = out.get("min_new_tokens"), out.get("max_new_tokens")
    if lo is not None and hi is not None and lo > hi:
        raise InputError(f"min_new_tokens={lo} is more than max_new_tokens={hi}; lower min_new_tokens or raise "
                         "max_new_tokens")
    return out


def check_attention_options(m, kwargs: dict) -> dict:
    """attention_maps' keyword arguments for model `m`, checked: which ones a family takes, and their values.

    blip-caption and blip2 take decoding options (used when the caption is generated), blip-vqa takes
    max_new_tokens, blip-itm takes layer (the Grad-CAM layer); the other families take none.
    """
    from .families import adapter

    fam, how = m.spec.family, adapter(m)
    if not how.maps_need_text:  # the model writes its own caption first: generate's options
        return _fit_tokens(m, check_generate_options(kwargs, task=f"attention_maps on {m.spec.name}"))
    allowed = how.map_options
    extra = [k for k in kwargs if k not in allowed]
    if extra:
        takes = f"takes only {', '.join(allowed)}" if allowed else "takes no keyword options"
        raise InputError(f"attention_maps on {m.spec.name} ({fam}) got {', '.join(map(repr, extra))}; it {takes}")
    out = _fit_tokens(m, {k: check_option(k, v) for k, v in kwargs.items()})
    if out.get("layer") is not None:
        n = _cross_layers(m)
        if n and not -n <= out["layer"] < n:
            raise InputError(f"layer={out['layer']} is not allowed: {m.spec.name} has {n} cross-attention layers, "
                             f"so layer must be a whole number from {-n} to {n - 1}, not the last ({n - 1} or -1: "
                             "every word's Grad-CAM there is 0), or None")
        if n and out["layer"] % n == n - 1:  # blip-itm's Grad-CAM layer (the one family that takes layer)
            works = ("it has no other: read method='relevance' or 'attention' instead" if n == 1
                     else "pass layer=0 (or -2), or None (the default)" if n == 2
                     else f"pass a layer from 0 to {n - 2} ({-n} to -2 from the end), or None (the default)")
            raise InputError(f"layer={out['layer']} is the last of {m.spec.name}'s {n} cross-attention layers: only "
                             f"its [CLS] row reaches the ITM head, so every word's Grad-CAM there is 0; {works}")
    return out


def _fit_tokens(m, kw: dict) -> dict:
    """max_new_tokens (and min_new_tokens) lowered, with a warning, to what a BLIP decoder's positions hold."""
    from .errors import warn

    cfg = getattr(m.model.config, "text_config", None)
    room = int(getattr(cfg, "max_position_embeddings", 0) or 0) - 2  # the start token and one spare
    from .families import adapter

    if adapter(m).decoder_limits_new_tokens and room > 0 and kw.get("max_new_tokens", 0) > room:
        warn(f"max_new_tokens={kw['max_new_tokens']} lowered to {room}: this model's text limit is {room + 2} tokens")
        kw["max_new_tokens"] = room
        if "min_new_tokens" in kw:
            kw["min_new_tokens"] = min(kw["min_new_tokens"], room)
    return kw


def _cross_layers(m) -> int:
    """How many text-encoder layers of a BLIP model attend to the image (0 when unknown)."""
    cfg = getattr(m.model.config, "text_config", None)
    return int(getattr(cfg, "num_hidden_layers", 0) or 0)
