"""Embedding tasks: embed_images, embed_texts, zero_shot (label embeddings cached), match, retrieve."""
from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

from ..domain import check as check_domain
from ..domain_words import check_captions, check_words
from ..errors import InputError
from ..families import adapter
from ..models import Loaded
from ..options import check_option, check_templates
from .inputs import BATCH_SIZE, batched, image_list, max_text_len, task_model, pixel_inputs, text_list, tokenize


def pooled_feature(out):
    """transformers 5 returns model outputs from get_*_features; older versions a tensor."""
    return out if hasattr(out, "dim") else out.pooler_output


def image_embeddings(m: Loaded, images: list, batch_size: int):
    """(N, E) L2-normalised image embeddings on the CPU, in batches."""
    import torch

    features = adapter(m).image_features

    def step(sl):
        px = pixel_inputs(m, images[sl])["pixel_values"]
        f = features(m, px)  # (B, E)
        return torch.nn.functional.normalize(f.float(), dim=-1).cpu()

    with torch.inference_mode():
        feats = batched(m, len(images), batch_size, step, "image embedding")
    return torch.cat(feats)  # outside inference mode: a normal tensor that autograd may use (Grad-CAM)


def text_embeddings(m: Loaded, texts: list[str], batch_size: int = 256):
    """(N, E) L2-normalised text embeddings on the CPU, in batches."""
    import torch

    features = adapter(m).text_features

    def step(sl):
        f = features(m, tokenize(m, texts[sl]))  # (B, E)
        return torch.nn.functional.normalize(f.float(), dim=-1).cpu()

    with torch.inference_mode():
        feats = batched(m, len(texts), batch_size, step, "text embedding")
    return torch.cat(feats)  # outside inference mode: a normal tensor that autograd may use (Grad-CAM)


def embed_images(m, images, batch_size: int = BATCH_SIZE):
    """L2-normalised image embeddings, a float32 CPU tensor of shape (N, D) (N = 1 for one image)."""
    m = task_model(m, "embed_images")
    ims, _ = image_list(images)
    check_domain(m, ims, "embedding")  # a bundled model warns on pictures with no shapes
    return image_embeddings(m, ims, batch_size)


def embed_texts(m, texts, batch_size: int = 256):
    """L2-normalised text embeddings, a float32 CPU tensor of shape (N, D) (N = 1 for one string)."""
    m = task_model(m, "embed_texts")
    ts, _ = text_list(texts)
    check_words(m, ts, "embedding")  # a bundled model warns on words that no ShapesWorld text uses
    return text_embeddings(m, ts, batch_size)


def logit_scale(m: Loaded) -> float:
    """The model's contrastive logit scale (mmkit.families)."""
    return adapter(m).logit_scale(m)


def _label_embeddings(m: Loaded, labels: tuple[str, ...], templates: tuple[str, ...]):
    """(L, D) prompt-ensembled label embeddings, cached on the Loaded object."""
    import torch

    cache: OrderedDict = m.cache.setdefault("zero_shot", OrderedDict())
    key = (labels, templates)
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    prompts = [t.format(lab) for lab in labels for t in templates]
    e = text_embeddings(m, prompts)  # (L * T, D)
    e = e.view(len(labels), len(templates), -1).mean(1)  # (L, D) average over templates
    e = torch.nn.functional.normalize(e, dim=-1)
    cache[key] = e
    while len(cache) > 16:
        cache.popitem(last=False)
    return e


def read_alike(tok, labels: list[str], templates, limit: int) -> list[list[str]]:
    """Groups of labels whose prompts `tok` turns into the same ids (cut at `limit`): one text to the model."""
    first = tok([templates[0].format(lab) for lab in labels], truncation=True, max_length=limit)["input_ids"]
    groups: dict = {}
    for lab, ids in zip(labels, first):
        groups.setdefault(tuple(ids), []).append(lab)
    out = []
    for g in (g for g in groups.values() if len(g) > 1):  # alike in the first template: check every template
        ids = tok([t.format(lab) for lab in g for t in templates], truncation=True, max_length=limit)["input_ids"]
        keys: dict = {}
        for i, lab in enumerate(g):
            keys.setdefault(tuple(map(tuple, ids[i * len(templates):(i + 1) * len(templates)])), []).append(lab)
        out += [k for k in keys.values() if len(k) > 1]
    return out


def zero_shot(m, images, labels, templates=None, batch_size: int = BATCH_SIZE):
    """Zero-shot classification: {label: probability} for one image, or a list of such dicts.

    Args:
        labels: the class names, e.g. ["red circle", "blue square"].
        templates: prompt templates with "{}" (several are averaged: prompt ensembling);
            default: the model's own (see mmkit.list_models()).
    """
    m = task_model(m, "zero_shot")
    if not isinstance(labels, (list, tuple)) or len(labels) < 2:
        if not isinstance(labels, (str, list, tuple)):
            text_list(labels, "label")  # its message for a set, a generator, ...
        raise InputError("labels must be a list or tuple of at least two class names, e.g. ['cat', 'dog'] "
                         "(with one label the probability is always 1)")
    labs, _ = text_list(labels, "label")
    dup = sorted({x for x in labs if labs.count(x) > 1})
    if dup:
        raise InputError(f"duplicate labels {dup}: each class name must appear once")
    templates = check_templates(templates) or (m.spec.zero_shot_template,)
    alike = read_alike(getattr(m.processor, "tokenizer", m.processor), labs, templates, max_text_len(m))
    if alike:
        same = " and ".join(repr(x) for x in alike[0])
        case = " (it does not tell upper from lower case)" if len({x.lower() for x in alike[0]}) == 1 else ""
        raise InputError(f"duplicate labels {same}: {m.spec.name} reads them alike{case}, as its tokenizer gives "
                         "their prompts the same tokens; each class must appear once, so keep one spelling")
    batch_size = check_option("batch_size", batch_size)
    ims, single = image_list(images)
    check_domain(m, ims, "zero-shot result")
    check_words(m, [t.format(lab) for lab in labs for t in templates], "zero-shot result")
    text_emb = _label_embeddings(m, tuple(labs), tuple(templates))  # (L, D)
    image_emb = image_embeddings(m, ims, batch_size)  # (N, D)
    probs = (logit_scale(m) * image_emb @ text_emb.T).softmax(dim=-1)  # (N, L)
    out = [{lab: float(p) for lab, p in zip(labs, row)} for row in probs]
    return out[0] if single else out


def match(m, images, texts, paired: bool = False, batch_size: int = BATCH_SIZE):
    """Image-text scores: an (N_images, N_texts) tensor, or (N,) for paired=True (image i with text i).

    Dual encoders (CLIP, ALIGN) give cosine similarity; matching heads (BLIP-ITM, ViLT-ITM) give P(match).
    """
    import torch

    m = task_model(m, "match")
    paired, batch_size = check_option("paired", paired), check_option("batch_size", batch_size)
    ims, _ = image_list(images)
    check_domain(m, ims, "match score")
    ts, _ = text_list(texts)
    check_words(m, ts, "match score")
    if adapter(m).pair_scores is not None:  # a matching head (BLIP-ITM) learnt its captions' form
        check_captions(m, ts)
    if paired and len(ims) != len(ts):
        raise InputError(f"paired=True needs as many images as texts, got {len(ims)} images and {len(ts)} texts")
    pair_scores = adapter(m).pair_scores
    if pair_scores is None:  # an embedding space: cosine similarity
        ie, te = image_embeddings(m, ims, batch_size), text_embeddings(m, ts)
        return (ie * te).sum(-1) if paired else ie @ te.T
    pairs = list(zip(range(len(ims)), range(len(ts)))) if paired else [(i, j) for i in range(len(ims)) for j in range(len(ts))]
    step = {"blip": _blip_itm_step, "vilt": _vilt_itm_step}[pair_scores](m, ims, ts, pairs)
    with torch.inference_mode():
        scores = batched(m, len(pairs), batch_size, step, "matching")
    s = torch.cat(scores)
    return s if paired else s.view(len(ims), len(ts))  # (N_images, N_texts)


def _vilt_itm_step(m: Loaded, ims: list, ts: list[str], pairs: list):
    """A batch of pairs -> (B,) P(match) from ViLT's ITM head: one joint forward pass per pair (single stream)."""
    def step(sl):
        chunk = pairs[sl]
        out = m.model(**tokenize(m, [ts[j] for _, j in chunk]), **pixel_inputs(m, [ims[i] for i, _ in chunk]))
        return out.logits.float()[:, 0].sigmoid().cpu()  # (B,)

    return step


def _blip_itm_step(m: Loaded, ims: list, ts: list[str], pairs: list):
    """A batch of pairs -> (B,) P(match) from BLIP's ITM head, each image through the vision tower once.

    `BlipForImageTextRetrieval(..., use_itm_head=True)` runs the vision tower on the image of every pair, so
    scoring one image against N texts would encode it N times. Only the text encoder, which cross-attends to
    the image states, depends on the pair: this encodes each image once, in batches, keeps its states until its
    last pair, and runs the same text encoder and head.
    """
    import torch

    states: dict = {}  # image index -> (1 + patches, D) vision states, for images of this batch and after

    def step(sl):
        chunk = pairs[sl]
        need = [i for i in dict.fromkeys(i for i, _ in chunk) if i not in states]
        if need:  # pairs come grouped by image, in order: encode as many images ahead as the batch has pairs
            ahead = list(range(need[0], min(len(ims), need[0] + len(chunk))))
            px = pixel_inputs(m, [ims[i] for i in ahead])["pixel_values"]
            states.update(zip(ahead, m.model.vision_model(pixel_values=px).last_hidden_state))
        x = torch.stack([states[i] for i, _ in chunk])  # (B, 1 + patches, D)
        for i in [i for i in states if i < chunk[-1][0]]:
            del states[i]  # done with: later pairs have later images
        enc = tokenize(m, [ts[j] for _, j in chunk])
        h = m.model.text_encoder(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                                 encoder_hidden_states=x,
                                 encoder_attention_mask=torch.ones(x.shape[:2], dtype=torch.long, device=x.device))
        return m.model.itm_head(h.last_hidden_state[:, 0, :]).float().softmax(-1)[:, 1].cpu()  # (B,) P(match)

    return step


class Hit(NamedTuple):
    """One retrieval result."""

    index: int  # position in the gallery
    score: float  # similarity
    item: object  # the gallery entry (image or text), or None for precomputed embeddings


def _gallery_embeddings(gallery, width: int):
    """Precomputed gallery embeddings (N, D) as L2-normalised float32 CPU rows, or InputError naming the fix."""
    import torch

    how = "compute them with embed_images/embed_texts of the same model"
    if gallery.layout != torch.strided or gallery.is_meta:
        raise InputError(f"the gallery embeddings are a {gallery.layout} tensor on {gallery.device}, with no values to "
                         f"read; pass a dense tensor with values (e.g. gallery.to_dense()), or {how}")
    if not gallery.is_floating_point():
        raise InputError(f"the gallery embeddings have dtype {gallery.dtype}; they must be floats: {how}")
    if gallery.dim() != 2 or gallery.shape[1] != width:
        raise InputError(f"gallery embeddings of shape {tuple(gallery.shape)} do not fit queries of width {width}; {how}")
    g = gallery.detach().float().cpu()
    if len(g) == 0 or not torch.isfinite(g).all():
        raise InputError(f"the gallery embeddings are empty or contain NaN/inf; {how}")
    zero = (g.norm(dim=-1) == 0).nonzero().flatten().tolist()
    if zero:
        raise InputError(f"gallery rows {zero[:5]} are all zeros and have no direction to compare; {how}")
    return torch.nn.functional.normalize(g, dim=-1)


def retrieve(m, query, gallery, k: int = 5, batch_size: int = BATCH_SIZE):
    """Top-k retrieval: a text query searches a gallery of images, an image query a gallery of texts.

    Args:
        query: a string (text -> image), an image (image -> text), or a list of either (-> list of lists).
        gallery: a list of images or texts, an (N, D) tensor of precomputed L2-normalised embeddings,
            or an mmkit.index.Index (FAISS; its hits carry the image paths).
        k: how many hits to return per query.
    """
    import numpy as np
    import torch

    m = task_model(m, "retrieve")
    k, batch_size = check_option("k", k), check_option("batch_size", batch_size)
    many = isinstance(query, (list, tuple))
    queries = list(query) if many else [query]
    if not queries:
        raise InputError("the query list is empty")
    text_query = isinstance(queries[0], str)
    if any(isinstance(q, str) != text_query for q in queries):
        raise InputError("mix of text and image queries; pass only texts or only images")
    if text_query:
        queries = text_list(queries, "query")[0]
        check_words(m, queries, "search result")
        q_emb = text_embeddings(m, queries)
    else:
        queries = image_list(queries)[0]
        check_domain(m, queries, "search result")
        q_emb = image_embeddings(m, queries, batch_size)
    if hasattr(gallery, "hits") and hasattr(gallery, "search"):  # an mmkit.index.Index: FAISS search
        res = gallery.hits(q_emb.numpy(), k, model=m)
        return res if many else res[0]
    if isinstance(gallery, np.ndarray) and gallery.dtype.kind in "biuf":  # (N, D) numbers, as mmkit.index.build takes
        gallery = torch.tensor(gallery)
    if isinstance(gallery, torch.Tensor):
        g_emb, items = _gallery_embeddings(gallery, q_emb.shape[1]), [None] * len(gallery)
    else:
        if not isinstance(gallery, (list, tuple)) or not gallery:
            raise InputError("the gallery must be a non-empty list of images or texts, or an (N, D) tensor or array")
        items = list(gallery)
        if text_query:
            if any(isinstance(g, str) for g in items):
                raise InputError("a text query searches a gallery of images, but the gallery has text in it")
            pictures = image_list(items)[0]
            check_domain(m, pictures, "search result")
            g_emb = image_embeddings(m, pictures, batch_size)
        else:
            texts = text_list(items, "gallery text")[0]
            check_words(m, texts, "search result")
            g_emb = text_embeddings(m, texts)
    sim = q_emb @ g_emb.T  # (Q, N)
    top = sim.topk(min(k, sim.shape[1]), dim=-1)
    res = [[Hit(int(i), float(s), items[int(i)]) for s, i in zip(vs, ix)] for vs, ix in zip(top.values, top.indices)]
    return res if many else res[0]
