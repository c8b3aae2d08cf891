"""Generative tasks: caption (greedy, beam, sampling) and answer (VQA), plus the decoding-option check."""
from __future__ import annotations

from ..domain import check as check_domain
from ..domain_words import as_asked, check_positions, check_questions, check_words
from ..errors import InputError, warn
from ..families import adapter
from ..options import check_generate_options, check_option
from ..speedups import can_decode_greedily, greedy_caption
from .inputs import BATCH_SIZE, batched, image_list, max_text_len, new_token_room, pixel_inputs, task_model, text_list


def check_decoding(max_new_tokens: int = 30, num_beams: int = 1, temperature: float = 1.0, top_p: float = 1.0,
                   top_k: int | None = None) -> None:
    """Raise InputError, naming the fix, on decoding options no decoder can use (shared with mmkit.captioning)."""
    check_generate_options(dict(max_new_tokens=max_new_tokens, num_beams=num_beams, temperature=temperature,
                                top_p=top_p, top_k=top_k))


def _generate_kwargs(opts: dict) -> dict:
    """generate's keyword arguments from checked options: sampling and beam options only where they apply."""
    kw = dict(opts)
    if not kw["do_sample"]:
        for name in ("temperature", "top_p", "top_k"):
            kw.pop(name, None)
    elif kw.get("top_k") is None:
        kw.pop("top_k", None)
    if kw["num_beams"] == 1:
        kw.pop("length_penalty", None)
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

    m = task_model(m, "caption")
    kw = _generate_kwargs(check_generate_options(dict(
        max_new_tokens=max_new_tokens, num_beams=num_beams, do_sample=do_sample, temperature=temperature, top_p=top_p,
        top_k=top_k, length_penalty=length_penalty, **generate_kwargs)))
    seed = check_option("seed", seed)
    batch_size = check_option("batch_size", batch_size)
    prompt = check_option("prompt", prompt)  # cleaned text, or None
    ims, single = image_list(images)
    check_domain(m, ims, "caption")  # a bundled model warns on pictures with no shapes
    if prompt:
        check_words(m, [prompt], "caption")  # and on words that no ShapesWorld text uses
    room = new_token_room(m, prompt)
    if kw["max_new_tokens"] > room:  # the decoder has no position embeddings past its limit
        if room < 1:
            raise InputError(f"the prompt fills the model's {max_text_len(m)}-token limit; shorten it")
        warn(f"max_new_tokens={kw['max_new_tokens']} lowered to {room}: this model's text limit is "
                      f"{max_text_len(m)} tokens")
        kw["max_new_tokens"] = room
        if kw.get("min_new_tokens", 0) > room:
            kw["min_new_tokens"] = room
    if kw["do_sample"] and seed is not None:
        torch.manual_seed(seed)
    tok = m.processor.tokenizer
    # plain greedy BLIP captioning skips generate's per-token bookkeeping, with the same result (mmkit/speedups/blip.py)
    greedy = (kw["num_beams"] == 1 and not kw["do_sample"] and set(generate_kwargs) <= {"min_new_tokens"}
              and can_decode_greedily(m.model))

    def step(sl):
        inputs = pixel_inputs(m, ims[sl])
        if prompt is not None:
            enc = adapter(m).prompt(m, [prompt] * len(ims[sl]))
            inputs.update(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
        if greedy and set(inputs) <= {"pixel_values", "input_ids", "attention_mask"}:
            ids = greedy_caption(m.model, inputs["pixel_values"], inputs.get("input_ids"), kw["max_new_tokens"],
                                 kw.get("min_new_tokens") or 0)
        else:
            ids = m.model.generate(**inputs, **kw)
        return [" ".join(t.split()) for t in tok.batch_decode(ids, skip_special_tokens=True)]

    with torch.inference_mode():
        out = [c for batch in batched(m, len(ims), batch_size, step, "captioning") for c in batch]
    return out[0] if single else out


def answer(m, images, questions, batch_size: int = BATCH_SIZE, max_new_tokens: int = 10):
    """Visual question answering: one image + one question -> str; lists -> list[str].

    One image with several questions, or several images with one question, are broadcast.
    """
    import torch

    m = task_model(m, "answer")
    max_new_tokens = check_option("max_new_tokens", max_new_tokens)
    batch_size = check_option("batch_size", batch_size)
    ims, single_im = image_list(images)
    check_domain(m, ims, "answer")
    qs, single_q = text_list(questions, "question")
    qs = [as_asked(m, q) for q in qs]  # a bundled model's questions end in '?', as ShapesWorld's do
    check_words(m, qs, "answer")
    check_questions(m, qs)  # and on questions in its words but not in ShapesWorld's forms
    check_positions(m, qs)  # and on where-questions, which the bundled VQA models answer at about chance
    if len(ims) == 1 and len(qs) > 1:
        ims = ims * len(qs)
    elif len(qs) == 1 and len(ims) > 1:
        qs = qs * len(ims)
    elif len(ims) != len(qs):
        raise InputError(f"{len(ims)} images but {len(qs)} questions; pass one question per image, "
                         "or one image / one question to share")
    how = adapter(m)
    room = max_text_len(m) - 2  # BLIP's answer decoder starts from its own BOS: the question takes no room
    if how.decoder_limits_new_tokens and max_new_tokens > room:  # no position embeddings past the limit
        warn(f"max_new_tokens={max_new_tokens} lowered to {room}: this model's text limit is {max_text_len(m)} tokens")
        max_new_tokens = room

    def step(sl):
        enc = how.prompt(m, [how.question.format(q=q) for q in qs[sl]])
        return how.answer(m, enc, pixel_inputs(m, ims[sl]), max_new_tokens)

    with torch.inference_mode():
        out = [a for batch in batched(m, len(ims), batch_size, step, "question answering") for a in batch]
    return out[0] if (single_im and single_q) else out
