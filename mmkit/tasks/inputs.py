"""What every task function does first: turn any accepted input into model inputs, or raise InputError.

Images (any form `load_image` takes) become pixel tensors on the model's device and dtype, texts are
cleaned, fitted to the model's token limit and tokenised, and work is split into batches that shrink on
out-of-memory.
"""
from __future__ import annotations

import os

from ..data.images import load_image, several
from ..domain import fit_picture
from ..errors import InputError, warn
from ..families import adapter
from ..models import Loaded, load_model, require
from ..options import check_option
from ..resources import run_batched
from ..speedups import pil_pixels

BATCH_SIZE = 32  # images per forward pass
PREPROCESS_ON_DEVICE = True  # resize images on the model's GPU when the processor can; benchmarks/gpu.py measures it


def task_model(m, task: str) -> Loaded:
    m = load_model(os.fspath(m)) if isinstance(m, (str, os.PathLike)) else m  # a name, or a model folder
    require(m, task)
    return m


def image_list(images) -> tuple[list, bool]:
    """(list of RGB PIL images, whether a single image was given)."""
    if isinstance(images, (list, tuple)):
        if len(images) == 0:
            raise InputError("the image list is empty; pass at least one image")
        loaded = {}  # an input given several times (one image, many questions) is loaded, and later resized, once
        return [loaded[id(x)] if id(x) in loaded else loaded.setdefault(id(x), load_image(x)) for x in images], False
    if several(images):
        raise InputError(f"the images came as {_several_kind(images)}; pass a list or tuple of images "
                         f"({_as_list(images, 'images')})")
    return [load_image(images)], True


def _several_kind(x) -> str:
    """'a set, which has no order (the results come back in the order given)', 'a generator', ... for messages."""
    if isinstance(x, (set, frozenset)):
        return f"a {type(x).__name__}, which has no order (the results come back in the order given)"
    if isinstance(x, dict):
        return "a dict"
    return f"a {type(x).__name__} object (read once, it cannot be indexed)" if hasattr(x, "__next__") else \
        f"a {type(x).__name__} object"


def _as_list(x, what: str) -> str:
    """How to turn the collection x into a list, for messages."""
    if isinstance(x, (set, frozenset)):
        return f"e.g. sorted({what}) for a fixed order" if what != "images" else "in the order you want the results"
    if isinstance(x, dict):
        return f"list({what}.values()) or list({what})"
    return f"list({what})"


def clean_text(t, what: str = "text") -> str:
    """`t` stripped, with NUL bytes removed and broken unicode (lone surrogates) replaced by U+FFFD;
    InputError when it is not a string or nothing is left."""
    if not isinstance(t, str):
        raise InputError(f"{what} must be a string, got {type(t).__name__}")
    clean = t.replace("\x00", "")
    try:
        clean.encode("utf-8")
    except UnicodeEncodeError:  # e.g. half of an emoji pair cut off: tokenizers refuse it
        clean = clean.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    clean = clean.strip()
    if not clean:
        raise InputError(f"{what} is empty; type a word or a sentence")
    return clean


_text = clean_text


def text_list(texts, what: str = "text") -> tuple[list[str], bool]:
    """(list of cleaned texts, whether a single string was given); InputError naming what to pass instead."""
    if isinstance(texts, str):
        return [_text(texts, what)], True
    if not isinstance(texts, (list, tuple)) and several(texts):
        many = what[:-1] + "ies" if what.endswith("y") else what + "s"  # labels, queries, gallery texts
        raise InputError(f"the {many} came as {_several_kind(texts)}; pass a list or tuple of them "
                         f"({_as_list(texts, many.replace(' ', '_'))})")
    if not isinstance(texts, (list, tuple)) or len(texts) == 0:
        raise InputError(f"pass a {what} string or a non-empty list of them")
    return [_text(t, what) for t in texts], False


def max_text_len(m: Loaded) -> int:
    tok = getattr(m.processor, "tokenizer", m.processor)
    limits = [getattr(tok, "model_max_length", 10**9)]
    cfg = getattr(m.model.config, "text_config", m.model.config)
    limits.append(getattr(cfg, "max_position_embeddings", 10**9))
    extra = adapter(m).text_limit
    if extra is not None:
        limits.append(extra(m))
    return int(min(limits))


def fit_new_tokens(m, kwargs: dict) -> dict:
    """Lower max_new_tokens, silently, to the room that mmkit.caption leaves (so caption has nothing to warn about).

    The room is the model's text limit less the prompt's tokens, or less 2 (the start token and a spare) without
    one, as in mmkit.tasks.generation.caption. The caption app's decoding controls and the classroom server both
    ask for captions so. A value that is not a whole number is left for caption to refuse.
    """
    from ..options import check_option

    n = kwargs.get("max_new_tokens")
    if isinstance(n, float) and n.is_integer():
        n = int(n)
    if not isinstance(n, int) or isinstance(n, bool):
        return kwargs
    prompt = kwargs.get("prompt")
    prompt = check_option("prompt", prompt) if isinstance(prompt, str) else None  # as caption cleans it
    room = new_token_room(m, prompt)
    if room < 1 or n <= room:  # a prompt that fills the limit: caption says so
        return kwargs
    return dict(kwargs, max_new_tokens=room)


def new_token_room(m, prompt: str | None) -> int:
    """How many tokens a caption may add: the model's text limit less the prompt's tokens (counted as tokenize
    counts them, cut at the limit), or less 2 (the start token and a spare) without a prompt."""
    if not prompt:
        return max_text_len(m) - 2
    limit, tok = max_text_len(m), getattr(m.processor, "tokenizer", m.processor)
    return limit - len(tok(prompt, truncation=True, max_length=limit)["input_ids"])


def tokenize(m: Loaded, texts: list[str]) -> dict:
    """Tokenize with padding and truncation to the model's limit, warning when text is cut."""
    tok = getattr(m.processor, "tokenizer", m.processor)
    limit = max_text_len(m)
    long = [t for t in texts if len(t) > limit and _n_tokens(tok, t, limit) > limit]
    if long:
        warn(f"{len(long)} text(s) longer than this model's limit of {limit} tokens were truncated "
                      f"(first: {long[0][:40]!r}...)")
    enc = tok(texts, padding=True, truncation=True, max_length=limit, return_tensors="pt")
    return {k: v.to(m.device) for k, v in enc.items()}


def tokenize_with_image_tokens(m: Loaded, texts: list[str]) -> dict:
    """BLIP-2 prompts: left-padded text after the Q-Former's query placeholders, as its generate expects.

    Without the placeholders BLIP-2's generate has nowhere to put the image and silently ignores it.
    """
    import torch

    tok = m.processor.tokenizer
    side, tok.padding_side = tok.padding_side, "left"  # decoder-only: pad before the prompt, not before new tokens
    try:
        enc = tokenize(m, texts)
    finally:
        tok.padding_side = side
    n = m.processor.num_query_tokens or m.model.config.num_query_tokens
    image = torch.full((len(texts), n), m.model.config.image_token_id, dtype=enc["input_ids"].dtype,
                       device=enc["input_ids"].device)  # (B, Q)
    return {"input_ids": torch.cat([image, enc["input_ids"]], dim=1),  # (B, Q + T)
            "attention_mask": torch.cat([torch.ones_like(image), enc["attention_mask"]], dim=1)}


def _n_tokens(tok, text: str, limit: int) -> int:
    """Token count of text, counted only up to limit + 1 (so no "sequence too long" chatter)."""
    return len(tok(text, truncation=True, max_length=limit + 1)["input_ids"])


def fit_text(m: Loaded, text: str, reserve: int = 0, what: str = "text") -> str:
    """`text` cut at a word boundary to fit the model's token limit (minus `reserve`), with a warning."""
    tok = getattr(m.processor, "tokenizer", m.processor)
    limit = max_text_len(m) - reserve
    if limit < 3:
        raise InputError(f"no room left for the {what} in this model's {max_text_len(m)}-token limit")
    if len(text) <= limit or _n_tokens(tok, text, limit) <= limit:
        return text
    words, lo, hi = text.split(), 0, len(text.split())
    while lo < hi:  # the most leading words that fit
        mid = (lo + hi + 1) // 2
        if _n_tokens(tok, " ".join(words[:mid]), limit) <= limit:
            lo = mid
        else:
            hi = mid - 1
    cut = " ".join(words[:lo])
    if not cut:  # one enormous word: cut it by characters
        lo, hi = 1, len(words[0])
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if _n_tokens(tok, words[0][:mid], limit) <= limit else (lo, mid - 1)
        cut = words[0][:lo]
    warn(f"the {what} is longer than this model's limit of {limit} tokens and was truncated to "
                  f"{cut[:40]!r}...")
    return cut


def _on_device_preprocessing(m: Loaded) -> dict:
    """{"device": m.device} when the image processor can resize and normalise on the model's GPU, else {}.

    transformers' torchvision image processors take a `device`; the PIL ones (used when torchvision is not
    installed) cannot. On a GPU this keeps a batch from waiting for the CPU (benchmarks/README.md).
    """
    torchvision = getattr(m.processor.image_processor, "backend", None) == "torchvision"
    return {"device": m.device} if PREPROCESS_ON_DEVICE and torchvision and m.device.type != "cpu" else {}


def pixel_inputs(m: Loaded, images: list) -> dict:
    """Model inputs for the images, each image object that appears several times processed once."""
    import torch

    place = {}  # id -> row among the distinct images
    rows = [place.setdefault(id(im), len(place)) for im in images]
    if len(place) == len(images):
        return _distinct_pixels(m, images)
    distinct = list({id(im): im for im in images}.values())
    back = torch.tensor(rows)
    return {k: v[back.to(v.device)] if torch.is_tensor(v) else v for k, v in _distinct_pixels(m, distinct).items()}


def _distinct_pixels(m: Loaded, images: list) -> dict:
    images = [fit_picture(m, im) for im in images]  # 1x5000 would be resized to zero pixels (and see fit_picture)
    process = m.processor.image_processor
    on_device = _on_device_preprocessing(m)
    pixels = None if on_device else pil_pixels(process, images)  # the PIL processors' steps in one pass
    if pixels is not None:
        return {"pixel_values": pixels.to(m.device, m.dtype)}
    try:
        enc = process(images=images, return_tensors="pt", **on_device)
    except RuntimeError:  # a GPU resize kernel refuses extreme scale factors (a 5000-pixel line, a huge photo)
        if not on_device:
            raise
        enc = process(images=images, return_tensors="pt")  # the CPU resize handles any size
    out = {}
    for k, v in enc.items():
        v = v.to(m.device)
        out[k] = v.to(m.dtype) if v.is_floating_point() else v
    return out


def batched(m: Loaded, n: int, batch_size: int, step, what: str) -> list:
    """run_batched with the model's name, device and dtype in its messages (smaller batches on OOM)."""
    return run_batched(n, check_option("batch_size", batch_size), step, f"{what} on {m.spec.name}", m.device, m.dtype)
