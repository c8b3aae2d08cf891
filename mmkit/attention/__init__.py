"""Cross-modal attention maps for CLIP, ALIGN, ViLT and BLIP, on each model's true patch grid.

`attention_maps(m, image, text=None)` returns an `AttentionMaps`; see `maps.py` for its helpers.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager

from ..data.images import load_image
from ..domain import check as check_domain
from ..domain import fit_picture_at, repainted
from ..domain_words import as_asked, check_words
from ..errors import InputError
from ..models import Loaded, load_model, require
from .maps import AttentionMaps, merge_pieces, rollout, to_grid
from .perturbation import Perturbation, perturbation

__all__ = ["AttentionMaps", "Perturbation", "attention_maps", "merge_pieces", "perturbation", "rollout", "to_grid"]


_SWITCH = threading.RLock()  # one switched call at a time: a second call must not switch back under the first


@contextmanager
def eager_attention(m: Loaded):
    """Eager attention for the call (sdpa returns no attention weights), and the model as it was after it.

    A model loaded with attention=True is used as it is. Any other (the shared cached model that zero_shot,
    caption... use) runs the call with eager attention and the `attention` flag set (the task functions skip
    the speed-ups that give no weights), and gets its attention implementation and flag back afterwards, so
    later task calls run as fast as before (benchmarks/after_maps.py)."""
    if m.attention:
        yield m
        return
    with _SWITCH:
        before = _implementations(m.model)
        if any(v != "eager" for v in before.values()):
            m.model.set_attn_implementation("eager")
        m.attention = True
        try:
            yield m
        finally:
            m.attention = False
            if _implementations(m.model) != before:
                m.model.set_attn_implementation(before.get("", "sdpa") if len(set(before.values())) == 1
                                                else {k: v for k, v in before.items() if k})
                if _implementations(m.model) != before:  # a sub-model its setter does not reach
                    for key, cfg in _configs(m.model).items():
                        cfg._attn_implementation = before[key]


def _configs(model) -> dict:
    """The model's config and its sub-configs (text_config, vision_config, ...) by key ("" for the model's)."""
    cfg = model.config
    subs = {k: getattr(cfg, k, None) for k in getattr(cfg, "sub_configs", {}) or {}}
    return {"": cfg, **{k: c for k, c in subs.items() if c is not None}}


def _implementations(model) -> dict:
    """The attention implementation of the model's config and of each sub-config, by key."""
    return {k: getattr(c, "_attn_implementation", None) or "eager" for k, c in _configs(model).items()}


def _size_of(size, key: str):
    """A processor size entry (a dict or transformers' SizeDict) by key, or None."""
    return size.get(key) if isinstance(size, dict) else getattr(size, key, None)


def processor_window(m, image) -> tuple[int, int, int, int] | None:
    """The part (x0, y0, x1, y1) of `image` that the model's image processor keeps when it centre-crops (the real
    CLIP resizes the short side to 224 and keeps the middle 224 x 224, so of a 2:1 picture it sees the middle
    half); None when the processor keeps the whole picture."""
    ip = getattr(m.processor, "image_processor", m.processor)
    crop = getattr(ip, "crop_size", None)
    if not getattr(ip, "do_center_crop", False) or crop is None:
        return None
    ch, cw = _size_of(crop, "height"), _size_of(crop, "width")
    size, (w, h) = getattr(ip, "size", None), image.size
    short = _size_of(size, "shortest_edge") if size is not None else None
    if not ch or not cw:
        return None
    if not getattr(ip, "do_resize", True) or size is None:
        rw, rh = w, h
    elif short:  # the short side resized to `short`, the long side in proportion (transformers rounds it down)
        rw, rh = (short, int(short * h / w)) if w <= h else (int(short * w / h), short)
    elif _size_of(size, "height") and _size_of(size, "width"):
        rw, rh = _size_of(size, "width"), _size_of(size, "height")
    else:
        return None
    if cw >= rw and ch >= rh:  # nothing cut (a smaller picture is padded)
        return None
    x0, y0 = max(0.0, (rw - cw) / 2), max(0.0, (rh - ch) / 2)
    x1, y1 = min(rw, x0 + cw), min(rh, y0 + ch)
    sx, sy = w / rw, h / rh
    return round(x0 * sx), round(y0 * sy), round(x1 * sx), round(y1 * sy)


def attention_maps(m, image, text: str | None = None, **kwargs) -> AttentionMaps:
    """Cross-modal maps of one image and one text.

    Args:
        m: a Loaded model (or a name) of family clip, align, vilt-vqa, vilt-itm, blip-caption, blip-vqa, blip-itm or blip2.
        image: anything load_image accepts.
        text: the prompt (CLIP/ALIGN), question (VQA), caption (ITM, ViLT-ITM); for captioning models
            (and BLIP-2, whose maps are per Q-Former query) None generates the caption first (kwargs go to generate), or give a caption to inspect.
            A word of a text you give gets a map whether or not the picture shows what it names: given "a blue
            square" for a red circle, the maps of "blue" and "square" lie on the circle, where the model looked. A map
            says where the model looked for a word, not that the word is true of the picture.
    """
    from ..families import adapter, map_function
    from ..options import check_attention_options
    from ..tasks import clean_text, fit_text

    m = load_model(m, attention=True) if isinstance(m, str) else m
    require(m, "attention_maps")
    kwargs = check_attention_options(m, kwargs)  # which options each family takes, and their values (mmkit/options.py)
    given = load_image(image)
    check_domain(m, [given], "attention map")  # a bundled model warns on pictures with no shapes
    shown, offset = fit_picture_at(m, given, repaint=False)  # as the task functions give it: very thin pictures
    image, plain = repainted(m, shown)  # padded, and more (fit_picture_at); the maps are drawn on `shown`
    fam = m.spec.family
    if text is not None:
        if isinstance(text, str) and not text.replace("\x00", "").strip():
            raise InputError("text is empty; type a prompt, a question or a caption")
        text = " ".join(clean_text(text, "text").split())  # NUL bytes and broken unicode cleaned
        if adapter(m).answer is not None:  # a VQA model's text is a question: asked as its answers ask it
            text = as_asked(m, text)
        text = fit_text(m, text, what="text")  # longer than the model's limit: cut, with a warning
        check_words(m, [text], "attention map")  # and on words that no ShapesWorld text uses
    elif adapter(m).maps_need_text:
        raise InputError(f"{m.spec.name} needs a text: a prompt for {fam} maps, e.g. attention_maps(m, image, 'red circle')")
    with eager_attention(m):  # the model's attention implementation and flag come back after the call
        maps = map_function(m)(m, image, text, **kwargs)  # the family's extractor (mmkit.families)
    maps.image = shown  # the user's picture, where the model saw it repainted (the same pixels' places)
    window = processor_window(m, image)
    if window is not None:  # the maps cover the part the processor kept
        maps.image = shown.crop(window)
        offset = (offset[0] - window[0], offset[1] - window[1])
        maps.notes["centre_crop"] = window
    maps.repainted = plain
    maps.offset = offset  # where the given picture lies in maps.image (negative along a cropped side)
    maps.given_size = tuple(given.size) if given.size != maps.image.size else ()
    return maps
