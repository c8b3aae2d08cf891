"""Task functions: caption, answer, zero_shot, embed_images, embed_texts, match, retrieve.

Each takes a `Loaded` model (or a name, loaded on first use) and one image or a list of images in any
form `load_image` accepts: one in -> one out, a list in -> a list out. Work is batched and runs on
the model's device. Bad input raises `InputError` with the fix.
"""
from __future__ import annotations

import warnings
from collections import OrderedDict
from typing import NamedTuple

from .data.images import fit_aspect, load_image
from .errors import InputError
from .models import Loaded, load_model, require
from .resources import run_batched

BATCH_SIZE = 32  # images per forward pass
PREPROCESS_ON_DEVICE = True  # resize images on the model's GPU when the processor can; benchmarks/gpu.py measures it


# ---------------------------------------------------------------------------------------------
# input handling
# ---------------------------------------------------------------------------------------------

def _model(m, task: str) -> Loaded:
    m = load_model(m) if isinstance(m, str) else m
    require(m, task)
    return m


def _images(images) -> tuple[list, bool]:
    """(list of RGB PIL images, whether a single image was given)."""
    if isinstance(images, (list, tuple)):
        if len(images) == 0:
            raise InputError("the image list is empty; pass at least one image")
        return [load_image(x) for x in images], False
    return [load_image(images)], True


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


def _texts(texts, what: str = "text") -> tuple[list[str], bool]:
    if isinstance(texts, str):
        return [_text(texts, what)], True
    if not isinstance(texts, (list, tuple)) or len(texts) == 0:
        raise InputError(f"pass a {what} string or a non-empty list of them")
    return [_text(t, what) for t in texts], False


def _max_len(m: Loaded) -> int:
    tok = getattr(m.processor, "tokenizer", m.processor)
    limits = [getattr(tok, "model_max_length", 10**9)]
    cfg = getattr(m.model.config, "text_config", m.model.config)
    limits.append(getattr(cfg, "max_position_embeddings", 10**9))
    if m.spec.family.startswith("vilt"):
        limits.append(getattr(m.model.config, "max_position_embeddings", 40))
    return int(min(limits))


def _tokenize(m: Loaded, texts: list[str]) -> dict:
    """Tokenize with padding and truncation to the model's limit, warning when text is cut."""
    tok = getattr(m.processor, "tokenizer", m.processor)
    limit = _max_len(m)
    long = [t for t in texts if len(t) > limit and _n_tokens(tok, t, limit) > limit]
    if long:
        warnings.warn(f"{len(long)} text(s) longer than this model's limit of {limit} tokens were truncated "
                      f"(first: {long[0][:40]!r}...)", stacklevel=3)
    enc = tok(texts, padding=True, truncation=True, max_length=limit, return_tensors="pt")
    return {k: v.to(m.device) for k, v in enc.items()}


def _with_image_tokens(m: Loaded, texts: list[str]) -> dict:
    """BLIP-2 prompts: left-padded text after the Q-Former's query placeholders, as its generate expects.

    Without the placeholders BLIP-2's generate has nowhere to put the image and silently ignores it.
    """
    import torch

    tok = m.processor.tokenizer
    side, tok.padding_side = tok.padding_side, "left"  # decoder-only: pad before the prompt, not before new tokens
    try:
        enc = _tokenize(m, texts)
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
    limit = _max_len(m) - reserve
    if limit < 3:
        raise InputError(f"no room left for the {what} in this model's {_max_len(m)}-token limit")
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
    warnings.warn(f"the {what} is longer than this model's limit of {limit} tokens and was truncated to "
                  f"{cut[:40]!r}...", stacklevel=3)
    return cut


def _on_device_preprocessing(m: Loaded) -> dict:
    """{"device": m.device} when the image processor can resize and normalise on the model's GPU, else {}.

    transformers' torchvision image processors take a `device`; the PIL ones (used when torchvision is not
    installed) cannot. On a GPU this keeps a batch from waiting for the CPU (benchmarks/README.md).
    """
    torchvision = getattr(m.processor.image_processor, "backend", None) == "torchvision"
    return {"device": m.device} if PREPROCESS_ON_DEVICE and torchvision and m.device.type != "cpu" else {}


def _pixels(m: Loaded, images: list) -> dict:
    images = [fit_aspect(im) for im in images]  # 1x5000 would be resized to zero pixels
    process = m.processor.image_processor
    on_device = _on_device_preprocessing(m)
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


def _batched(m: Loaded, n: int, batch_size: int, step, what: str) -> list:
    """run_batched with the model's name, device and dtype in its messages (smaller batches on OOM)."""
    return run_batched(n, _whole(batch_size, "batch_size"), step, f"{what} on {m.spec.name}", m.device, m.dtype)


def _whole(x, what: str) -> int:
    """x as an int >= 1, or InputError."""
    import operator

    try:
        n = operator.index(x)  # int or numpy integer; not float, str or bool-like text
    except TypeError:
        n = None
    if n is None or isinstance(x, bool) or n < 1:
        raise InputError(f"{what}={x!r} must be a whole number of at least 1")
    return n


def _feature(out):
    """transformers 5 returns model outputs from get_*_features; older versions a tensor."""
    return out if hasattr(out, "dim") else out.pooler_output


# ---------------------------------------------------------------------------------------------
# embeddings, zero-shot, match, retrieve
# ---------------------------------------------------------------------------------------------

def _embed_images(m: Loaded, images: list, batch_size: int):
    import torch

    def step(sl):
        px = _pixels(m, images[sl])["pixel_values"]
        if m.spec.family == "blip-itm":
            h = m.model.vision_model(pixel_values=px).last_hidden_state  # (B, 1 + patches, D)
            f = m.model.vision_proj(h[:, 0, :])  # (B, E) from the CLS token
        else:
            f = _feature(m.model.get_image_features(pixel_values=px))  # (B, E)
        return torch.nn.functional.normalize(f.float(), dim=-1).cpu()

    with torch.inference_mode():
        feats = _batched(m, len(images), batch_size, step, "image embedding")
    return torch.cat(feats)  # outside inference mode: a normal tensor that autograd may use (Grad-CAM)


def _embed_texts(m: Loaded, texts: list[str], batch_size: int = 256):
    import torch

    def step(sl):
        enc = _tokenize(m, texts[sl])
        if m.spec.family == "blip-itm":
            h = m.model.text_encoder(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
            f = m.model.text_proj(h.last_hidden_state[:, 0, :])  # (B, E) from the CLS token
        else:
            if m.spec.family == "clip":
                enc.pop("token_type_ids", None)  # CLIP's text tower takes no segment ids
            f = _feature(m.model.get_text_features(**enc))  # (B, E)
        return torch.nn.functional.normalize(f.float(), dim=-1).cpu()

    with torch.inference_mode():
        feats = _batched(m, len(texts), batch_size, step, "text embedding")
    return torch.cat(feats)  # outside inference mode: a normal tensor that autograd may use (Grad-CAM)


def embed_images(m, images, batch_size: int = BATCH_SIZE):
    """L2-normalised image embeddings, a float32 CPU tensor of shape (N, D) (N = 1 for one image)."""
    m = _model(m, "embed_images")
    ims, _ = _images(images)
    return _embed_images(m, ims, batch_size)


def embed_texts(m, texts, batch_size: int = 256):
    """L2-normalised text embeddings, a float32 CPU tensor of shape (N, D) (N = 1 for one string)."""
    m = _model(m, "embed_texts")
    ts, _ = _texts(texts)
    return _embed_texts(m, ts, batch_size)


def _logit_scale(m: Loaded) -> float:
    if m.spec.family == "blip-itm":
        return 1.0 / 0.07  # BLIP's contrastive temperature (transformers does not store it)
    scale = getattr(m.model, "logit_scale", None)
    if scale is not None:
        return float(scale.detach().exp())
    temp = getattr(m.model, "temperature", None)  # ALIGN divides by a learned temperature
    return 1.0 / float(temp.detach()) if temp is not None else 100.0


def _label_embeddings(m: Loaded, labels: tuple[str, ...], templates: tuple[str, ...]):
    """(L, D) prompt-ensembled label embeddings, cached on the Loaded object."""
    import torch

    cache: OrderedDict = m.cache.setdefault("zero_shot", OrderedDict())
    key = (labels, templates)
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    prompts = [t.format(lab) for lab in labels for t in templates]
    e = _embed_texts(m, prompts)  # (L * T, D)
    e = e.view(len(labels), len(templates), -1).mean(1)  # (L, D) average over templates
    e = torch.nn.functional.normalize(e, dim=-1)
    cache[key] = e
    while len(cache) > 16:
        cache.popitem(last=False)
    return e


def zero_shot(m, images, labels, templates=None, batch_size: int = BATCH_SIZE):
    """Zero-shot classification: {label: probability} for one image, or a list of such dicts.

    Args:
        labels: the class names, e.g. ["red circle", "blue square"].
        templates: prompt templates with "{}" (several are averaged: prompt ensembling);
            default: the model's own (see mmkit.list_models()).
    """
    import torch

    m = _model(m, "zero_shot")
    labs, _ = _texts(labels, "label")
    if isinstance(labels, str) or len(labs) < 2:
        raise InputError("labels must be a list of at least two class names, e.g. ['cat', 'dog'] "
                         "(with one label the probability is always 1)")
    dup = sorted({x for x in labs if labs.count(x) > 1})
    if dup:
        raise InputError(f"duplicate labels {dup}: each class name must appear once")
    if templates is None:
        templates = [m.spec.zero_shot_template]
    elif isinstance(templates, str):
        templates = [templates]
    if not templates or any(not isinstance(t, str) or "{}" not in t for t in templates):
        raise InputError(f"templates {templates!r}: each must be a string containing '{{}}' where the label goes")
    ims, single = _images(images)
    text_emb = _label_embeddings(m, tuple(labs), tuple(templates))  # (L, D)
    image_emb = _embed_images(m, ims, batch_size)  # (N, D)
    probs = (_logit_scale(m) * image_emb @ text_emb.T).softmax(dim=-1)  # (N, L)
    out = [{lab: float(p) for lab, p in zip(labs, row)} for row in probs]
    return out[0] if single else out


def match(m, images, texts, paired: bool = False, batch_size: int = BATCH_SIZE):
    """Image-text scores: an (N_images, N_texts) tensor, or (N,) for paired=True (image i with text i).

    Dual encoders (CLIP, ALIGN) give cosine similarity; matching heads (BLIP-ITM, ViLT-ITM) give P(match).
    """
    import torch

    m = _model(m, "match")
    ims, _ = _images(images)
    ts, _ = _texts(texts)
    if paired and len(ims) != len(ts):
        raise InputError(f"paired=True needs as many images as texts, got {len(ims)} images and {len(ts)} texts")
    fam = m.spec.family
    if fam in ("clip", "align"):
        ie, te = _embed_images(m, ims, batch_size), _embed_texts(m, ts)
        return (ie * te).sum(-1) if paired else ie @ te.T
    pairs = list(zip(range(len(ims)), range(len(ts)))) if paired else [(i, j) for i in range(len(ims)) for j in range(len(ts))]

    def step(sl):
        chunk = pairs[sl]
        px = _pixels(m, [ims[i] for i, _ in chunk])
        enc = _tokenize(m, [ts[j] for _, j in chunk])
        if fam == "blip-itm":
            out = m.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                          pixel_values=px["pixel_values"], use_itm_head=True)
            return out.itm_score.float().softmax(-1)[:, 1].cpu()  # (B,) P(match)
        out = m.model(**enc, **px)  # vilt-itm
        return out.logits.float()[:, 0].sigmoid().cpu()  # (B,)

    with torch.inference_mode():
        scores = _batched(m, len(pairs), batch_size, step, "matching")
    s = torch.cat(scores)
    return s if paired else s.view(len(ims), len(ts))  # (N_images, N_texts)


class Hit(NamedTuple):
    """One retrieval result."""

    index: int  # position in the gallery
    score: float  # similarity
    item: object  # the gallery entry (image or text), or None for precomputed embeddings


def retrieve(m, query, gallery, k: int = 5, batch_size: int = BATCH_SIZE):
    """Top-k retrieval: a text query searches a gallery of images, an image query a gallery of texts.

    Args:
        query: a string (text -> image), an image (image -> text), or a list of either (-> list of lists).
        gallery: a list of images or texts, or an (N, D) tensor of precomputed L2-normalised embeddings.
        k: how many hits to return per query.
    """
    import torch

    m = _model(m, "retrieve")
    k = _whole(k, "k")
    many = isinstance(query, (list, tuple))
    queries = list(query) if many else [query]
    if not queries:
        raise InputError("the query list is empty")
    text_query = isinstance(queries[0], str)
    if any(isinstance(q, str) != text_query for q in queries):
        raise InputError("mix of text and image queries; pass only texts or only images")
    q_emb = _embed_texts(m, _texts(queries, "query")[0]) if text_query else _embed_images(m, _images(queries)[0], batch_size)
    if isinstance(gallery, torch.Tensor):
        if gallery.dim() != 2 or gallery.shape[1] != q_emb.shape[1]:
            raise InputError(f"gallery embeddings of shape {tuple(gallery.shape)} do not fit queries of width "
                             f"{q_emb.shape[1]}; compute them with embed_images/embed_texts of the same model")
        if len(gallery) == 0 or not torch.isfinite(gallery).all():
            raise InputError("the gallery embeddings are empty or contain NaN/inf; recompute them with embed_images")
        g_emb, items = torch.nn.functional.normalize(gallery.float().cpu(), dim=-1), [None] * len(gallery)
    else:
        if not isinstance(gallery, (list, tuple)) or not gallery:
            raise InputError("the gallery must be a non-empty list of images or texts, or an (N, D) tensor")
        items = list(gallery)
        if text_query:
            if any(isinstance(g, str) for g in items):
                raise InputError("a text query searches a gallery of images, but the gallery has text in it")
            g_emb = _embed_images(m, _images(items)[0], batch_size)
        else:
            g_emb = _embed_texts(m, _texts(items, "gallery text")[0])
    sim = q_emb @ g_emb.T  # (Q, N)
    top = sim.topk(min(k, sim.shape[1]), dim=-1)
    res = [[Hit(int(i), float(s), items[int(i)]) for s, i in zip(vs, ix)] for vs, ix in zip(top.values, top.indices)]
    return res if many else res[0]


# ---------------------------------------------------------------------------------------------
# generation: caption and answer
# ---------------------------------------------------------------------------------------------

def check_decoding(max_new_tokens: int = 30, num_beams: int = 1, temperature: float = 1.0, top_p: float = 1.0,
                   top_k: int | None = None) -> None:
    """Raise InputError, naming the fix, on decoding options no decoder can use (shared with mmkit.captioning)."""
    if num_beams < 1 or max_new_tokens < 1:
        raise InputError("num_beams and max_new_tokens must be at least 1")
    if temperature <= 0:
        raise InputError(f"temperature={temperature} must be > 0 (use do_sample=False for greedy decoding)")
    if not 0 < top_p <= 1:
        raise InputError(f"top_p={top_p} must be in (0, 1]")
    if top_k is not None and top_k < 1:
        raise InputError(f"top_k={top_k} must be >= 1 (or None for no top-k filter)")


def _generate_kwargs(max_new_tokens, num_beams, do_sample, temperature, top_p, top_k, length_penalty, extra):
    check_decoding(max_new_tokens, num_beams, temperature, top_p, top_k)
    kw = dict(max_new_tokens=max_new_tokens, num_beams=num_beams, do_sample=do_sample)
    if do_sample:
        kw.update(temperature=temperature, top_p=top_p)
        if top_k is not None:
            kw["top_k"] = top_k
    if num_beams > 1:
        kw["length_penalty"] = length_penalty
    kw.update(extra)
    return kw


def caption(m, images, prompt: str | None = None, max_new_tokens: int = 30, num_beams: int = 1,
            do_sample: bool = False, temperature: float = 1.0, top_p: float = 1.0, top_k: int | None = None,
            length_penalty: float = 1.0, seed: int | None = 0, batch_size: int = 16, **generate_kwargs):
    """Caption one image (-> str) or a list (-> list[str]).

    Args:
        prompt: text the caption must start with (conditional captioning), e.g. "a photography of".
        num_beams: beam search width (1 = greedy); do_sample, temperature, top_p, top_k: sampling.
        seed: seeds sampling so results repeat; None leaves the generator alone.
    """
    import torch

    m = _model(m, "caption")
    ims, single = _images(images)
    kw = _generate_kwargs(max_new_tokens, num_beams, do_sample, temperature, top_p, top_k, length_penalty,
                          generate_kwargs)
    if prompt is not None:
        prompt = _text(prompt, "prompt")
    room = _max_len(m) - (len(_tokenize(m, [prompt])["input_ids"][0]) if prompt else 2)
    if kw["max_new_tokens"] > room:  # the decoder has no position embeddings past its limit
        if room < 1:
            raise InputError(f"the prompt fills the model's {_max_len(m)}-token limit; shorten it")
        warnings.warn(f"max_new_tokens={kw['max_new_tokens']} lowered to {room}: this model's text limit is "
                      f"{_max_len(m)} tokens", stacklevel=2)
        kw["max_new_tokens"] = room
    if do_sample and seed is not None:
        torch.manual_seed(seed)
    tok = m.processor.tokenizer

    def step(sl):
        inputs = _pixels(m, ims[sl])
        if prompt is not None:
            if m.spec.family == "blip2":
                enc = _with_image_tokens(m, [prompt] * len(ims[sl]))
            else:
                enc = _tokenize(m, [prompt] * len(ims[sl]))  # BLIP's generate drops the final [SEP] itself
            inputs.update(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
        ids = m.model.generate(**inputs, **kw)
        return [" ".join(t.split()) for t in tok.batch_decode(ids, skip_special_tokens=True)]

    with torch.inference_mode():
        out = [c for batch in _batched(m, len(ims), batch_size, step, "captioning") for c in batch]
    return out[0] if single else out


def answer(m, images, questions, batch_size: int = BATCH_SIZE, max_new_tokens: int = 10):
    """Visual question answering: one image + one question -> str; lists -> list[str].

    One image with several questions, or several images with one question, are broadcast.
    """
    import torch

    m = _model(m, "answer")
    ims, single_im = _images(images)
    qs, single_q = _texts(questions, "question")
    if len(ims) == 1 and len(qs) > 1:
        ims = ims * len(qs)
    elif len(qs) == 1 and len(ims) > 1:
        qs = qs * len(ims)
    elif len(ims) != len(qs):
        raise InputError(f"{len(ims)} images but {len(qs)} questions; pass one question per image, "
                         "or one image / one question to share")
    fam = m.spec.family

    def step(sl):
        px = _pixels(m, ims[sl])
        if fam == "blip2":
            enc = _with_image_tokens(m, [f"Question: {q} Answer:" for q in qs[sl]])
        else:
            enc = _tokenize(m, qs[sl])
        if fam == "vilt-vqa":
            logits = m.model(**enc, **px).logits  # (B, num_answers)
            return [m.model.config.id2label[int(i)] for i in logits.argmax(-1)]
        ids = m.model.generate(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                               max_new_tokens=max_new_tokens, **px)
        if fam == "blip2":
            ids = ids[:, enc["input_ids"].shape[1]:]
        return [" ".join(t.split()) for t in m.processor.tokenizer.batch_decode(ids, skip_special_tokens=True)]

    with torch.inference_mode():
        out = [a for batch in _batched(m, len(ims), batch_size, step, "question answering") for a in batch]
    return out[0] if (single_im and single_q) else out
