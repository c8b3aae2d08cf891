"""Cross-modal attention maps for CLIP, ALIGN, ViLT and BLIP, on each model's true patch grid.

`attention_maps(m, image, text=None)` returns an `AttentionMaps`; see `maps.py` for its helpers.
"""
from __future__ import annotations

from ..data.images import fit_aspect, load_image
from ..errors import InputError
from ..models import Loaded, load_model, require
from .maps import AttentionMaps, merge_pieces, rollout, to_grid

__all__ = ["AttentionMaps", "attention_maps", "merge_pieces", "rollout", "to_grid"]


def _eager(m: Loaded) -> Loaded:
    """Switch the model to eager attention (sdpa returns no attention weights); a no-op if it is."""
    if not m.attention and getattr(m.model.config, "_attn_implementation", "eager") != "eager":
        m.model.set_attn_implementation("eager")
    m.attention = True
    return m


def attention_maps(m, image, text: str | None = None, **kwargs) -> AttentionMaps:
    """Cross-modal maps of one image and one text.

    Args:
        m: a Loaded model (or a name) of family clip, align, vilt-vqa, vilt-itm, blip-caption, blip-vqa, blip-itm or blip2.
        image: anything load_image accepts.
        text: the prompt (CLIP/ALIGN), question (VQA), caption (ITM, ViLT-ITM); for captioning models
            (and BLIP-2, whose maps are per Q-Former query) None generates the caption first (kwargs go to generate), or give a caption to inspect.
    """
    from .cross import blip_caption_maps, blip_itm_maps, blip_vqa_maps, vilt_maps
    from .dual import align_maps, clip_maps

    from ..options import check_attention_options
    from ..tasks import clean_text, fit_text

    m = load_model(m, attention=True) if isinstance(m, str) else m
    require(m, "attention_maps")
    kwargs = check_attention_options(m, kwargs)  # which options each family takes, and their values (mmkit/options.py)
    image = fit_aspect(load_image(image))  # very thin images padded with white (see fit_aspect)
    fam = m.spec.family
    if text is not None:
        if isinstance(text, str) and not text.replace("\x00", "").strip():
            raise InputError("text is empty; type a prompt, a question or a caption")
        text = " ".join(clean_text(text, "text").split())  # NUL bytes and broken unicode cleaned
        text = fit_text(m, text, what="text")  # longer than the model's limit: cut, with a warning
    elif fam not in ("blip-caption", "blip2"):
        raise InputError(f"{m.spec.name} needs a text: a prompt for {fam} maps, e.g. attention_maps(m, image, 'red circle')")
    m = _eager(m)
    if fam == "blip2":
        from .qformer import blip2_maps

        return blip2_maps(m, image, text, **kwargs)
    if fam == "blip-caption":
        return blip_caption_maps(m, image, text, **kwargs)
    if fam == "blip-vqa":
        return blip_vqa_maps(m, image, text, **kwargs)
    if fam == "blip-itm":
        return blip_itm_maps(m, image, text, **kwargs)
    if fam.startswith("vilt"):
        return vilt_maps(m, image, text)
    if fam == "clip":
        return clip_maps(m, image, text)
    return align_maps(m, image, text)
