"""Cross-modal maps of the fusion models: BLIP (caption, VQA, ITM) and ViLT.

BLIP's `generate` returns no cross-attention, so the text side is re-run on the generated ids with
the image states. ViLT samples and permutes image patches; the patch index it used is captured
so every map lands on the right grid cell.
"""
from __future__ import annotations

import numpy as np

from .maps import AttentionMaps, merge_pieces, rollout, to_grid
from .relevance import blip_relevance, lazy, vilt_relevance


def to_numpy(t) -> np.ndarray:
    return t.detach().float().cpu().numpy()


def stack_layers(attns) -> np.ndarray:
    """Tuple of L tensors (1, H, Q, K) -> (L, H, Q, K) numpy."""
    if not attns or attns[0] is None:
        from ..errors import InputError

        raise InputError("no attentions returned: load the model with attention=True "
                         "(mmkit.load_model(name, attention=True)) so eager attention is used")
    return np.stack([to_numpy(a[0]) for a in attns])


def image_inputs(m, image):
    """One image's processor inputs on the model's device and dtype (the task functions' preprocessing)."""
    from ..tasks.inputs import pixel_inputs

    return pixel_inputs(m, [image])


def square_grid(n_patches: int, px) -> tuple[int, int]:
    h, w = px.shape[-2:]
    side = int(round((n_patches * h / w) ** 0.5))
    return side, n_patches // side  # (rows, cols) for the processor's H x W input


def text_pieces(tok, ids) -> list[str]:
    ids = [int(i) for i in ids]
    pieces = tok.convert_ids_to_tokens(ids)
    return [p if p is not None else f"<{i}>" for p, i in zip(pieces, ids)]  # ids beyond the vocabulary


def content_positions(tok, ids) -> list[int]:
    """Positions of real text tokens (not [CLS]/[SEP]/[PAD]/BOS/EOS)."""
    special = set(tok.all_special_ids) | {tok.cls_token_id, tok.sep_token_id, tok.pad_token_id}
    return [i for i, t in enumerate(ids) if int(t) not in special]


def blip_caption_maps(m, image, text: str | None = None, **generate_kwargs) -> AttentionMaps:
    """Per caption word, the decoder's cross-attention over the image at the step that produced it."""
    import torch

    from ..speedups.blip import can_decode_greedily, greedy_caption

    model, tok = m.model, m.processor.tokenizer
    px = image_inputs(m, image)["pixel_values"]
    with torch.inference_mode():
        vis = model.vision_model(pixel_values=px).last_hidden_state  # (1, 1 + N, D)
        if text is None:
            generate_kwargs.setdefault("max_new_tokens", 30)
            if set(generate_kwargs) <= {"max_new_tokens", "min_new_tokens"} and can_decode_greedily(model):
                # what mmkit.caption writes, from the states above (the vision tower runs once)
                ids = greedy_caption(model, px, None, image_states=vis, **generate_kwargs)[0]  # (T,) BOS first
            else:
                ids = model.generate(pixel_values=px, **generate_kwargs)[0]  # (T,) starts with BOS
        else:
            limit = model.config.text_config.max_position_embeddings
            ids = tok(text, return_tensors="pt", truncation=True, max_length=limit)["input_ids"][0].to(m.device)
            ids[0] = model.config.text_config.bos_token_id  # BLIP's decoder starts from its BOS token
        ids = ids[None]  # (1, T)
        out = model.text_decoder(input_ids=ids, attention_mask=torch.ones_like(ids), encoder_hidden_states=vis,
                                 output_attentions=True, return_dict=True)
    cross = stack_layers(out.cross_attentions)[..., 1:]  # (L, H, T, N) drop the image CLS
    grid = square_grid(cross.shape[-1], px)
    pos = [p for p in content_positions(tok, ids[0]) if p > 0]
    query = [p - 1 for p in pos]  # the word at position p was predicted from position p - 1
    attn = cross[:, :, query].reshape(cross.shape[:2] + (len(pos),) + grid)  # (L, H, n, gh, gw)
    r = rollout(stack_layers(out.attentions))  # (T, T) text self-attention rollout
    rolled = r[query] @ cross.mean(axis=(0, 1))  # (n, N): each word's rolled-out mix of its tokens' maps
    words, groups = merge_pieces(text_pieces(tok, ids[0][pos]))
    ids = ids.clone()  # a normal tensor: relevance runs autograd on it when first read (relevance.py)
    relevance = lazy(m, lambda: blip_relevance(m, px, "caption", ids)[query].reshape((len(pos),) + grid))
    return AttentionMaps(image, words, groups, text_pieces(tok, ids[0][pos]), grid, attn,
                         {"rollout": rolled.reshape((len(pos),) + grid),
                          "relevance": relevance}, m.spec.name, " ".join(words))


def blip_vqa_maps(m, image, question: str, max_new_tokens: int = 10) -> AttentionMaps:
    """Question words: the question encoder's cross-attention over the image. Answer words: the answer
    decoder's attention over the question tokens, composed with those tokens' image maps."""
    import torch

    model, tok = m.model, m.processor.tokenizer
    px = image_inputs(m, image)["pixel_values"]
    enc = tok(question, return_tensors="pt").to(m.device)
    with torch.inference_mode():
        vis = model.vision_model(pixel_values=px).last_hidden_state  # (1, 1 + N, D)
        answer_ids = model.generate(pixel_values=px, input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                                    max_new_tokens=max_new_tokens)  # (1, A)
        q = model.text_encoder(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                               encoder_hidden_states=vis, output_attentions=True, return_dict=True)
        a = model.text_decoder(input_ids=answer_ids, attention_mask=torch.ones_like(answer_ids),
                               encoder_hidden_states=q.last_hidden_state, encoder_attention_mask=enc["attention_mask"],
                               output_attentions=True, return_dict=True)
    q_cross = stack_layers(q.cross_attentions)[..., 1:]  # (L, H, Tq, N)
    grid = square_grid(q_cross.shape[-1], px)
    qpos = content_positions(tok, enc["input_ids"][0])
    apos = [p for p in content_positions(tok, answer_ids[0]) if p > 0]
    q_maps = q_cross.mean(axis=(0, 1))  # (Tq, N) every question token's image map
    a_cross = stack_layers(a.cross_attentions)  # (L, H, A, Tq)
    a_maps = a_cross[:, :, [p - 1 for p in apos]] @ q_maps  # (L, H, na, N) composed through the question
    attn = np.concatenate([q_cross[:, :, qpos], a_maps], axis=2)
    attn = attn.reshape(attn.shape[:3] + grid)  # (L, H, nq + na, gh, gw)
    pieces = text_pieces(tok, enc["input_ids"][0][qpos]) + text_pieces(tok, answer_ids[0][apos])
    qwords, qgroups = merge_pieces(pieces[: len(qpos)])
    awords, agroups = merge_pieces(pieces[len(qpos):])
    groups = qgroups + [[i + len(qpos) for i in g] for g in agroups]
    answer_ids = answer_ids.clone()
    rows = qpos + [enc["input_ids"].shape[1] + p - 1 for p in apos]  # answer token p comes from position p - 1
    rel = lazy(m, lambda: blip_relevance(m, px, "vqa", enc["input_ids"], enc["attention_mask"], answer_ids)[rows]
               .reshape((len(pieces),) + grid))  # (Tq + A, N) rows -> (n, gh, gw), computed when first read
    return AttentionMaps(image, qwords + awords, groups, pieces, grid, attn,
                         {"relevance": rel}, m.spec.name, question,
                         notes={"answer": " ".join(awords), "answer_words": list(range(len(qwords), len(groups)))})


def blip_itm_maps(m, image, text: str, layer: int | None = None) -> AttentionMaps:
    """Grad-CAM on the ITM encoder's cross-attention: attention weighted by the positive gradient of P(match)."""
    import torch

    model, tok = m.model, m.processor.tokenizer
    px = image_inputs(m, image)["pixel_values"]
    enc = tok(text, return_tensors="pt").to(m.device)
    with torch.no_grad():
        vis = model.vision_model(pixel_values=px).last_hidden_state  # (1, 1 + N, D)
    with torch.enable_grad():
        out = model.text_encoder(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                                 encoder_hidden_states=vis, output_attentions=True, return_dict=True)
        if not out.cross_attentions or out.cross_attentions[0] is None:
            stack_layers(out.cross_attentions)  # raises the eager-attention advice
        p_match = model.itm_head(out.last_hidden_state[:, 0]).softmax(-1)[0, 1]
        grads = torch.autograd.grad(p_match, list(out.cross_attentions))
    cross = stack_layers(out.cross_attentions)[..., 1:]  # (L, H, T, N)
    cams = np.stack([np.clip(to_numpy(g[0]), 0, None) for g in grads])[..., 1:] * cross  # (L, H, T, N)
    n_layers = cross.shape[0]
    # a late-middle layer, as LAVIS uses for BLIP-base (8 of 12); never the last of a deeper stack: there only the
    # [CLS] row reaches the ITM head, so every word's gradient (and map) is 0 (the 2-layer bundled model's was)
    layer = (min((2 * n_layers) // 3, n_layers - 2) if n_layers > 1 else 0) if layer is None else layer
    grid = square_grid(cross.shape[-1], px)
    pos = content_positions(tok, enc["input_ids"][0])
    words, groups = merge_pieces(text_pieces(tok, enc["input_ids"][0][pos]))
    attn = cross[:, :, pos].reshape(cross.shape[:2] + (len(pos),) + grid)
    gradcam = cams[layer][:, pos].mean(axis=0).reshape((len(pos),) + grid)
    relevance = lazy(m, lambda: blip_relevance(m, px, "itm", enc["input_ids"], enc["attention_mask"])[pos]
                     .reshape((len(pos),) + grid))  # (n, gh, gw), computed when first read
    return AttentionMaps(image, words, groups, text_pieces(tok, enc["input_ids"][0][pos]), grid, attn,
                         {"gradcam": gradcam, "relevance": relevance}, m.spec.name, text,
                         notes={"gradcam_layer": layer, "p_match": float(p_match.detach())})


def vilt_maps(m, image, text: str) -> AttentionMaps:
    """Text-token -> image-patch attention in ViLT's single stream, placed by the captured patch index."""
    import torch

    model, tok = m.model, m.processor.tokenizer
    enc = m.processor(images=image, text=text, return_tensors="pt")
    enc = {k: (v.to(m.device, m.dtype) if v.is_floating_point() else v.to(m.device)) for k, v in enc.items()}
    emb = model.vilt.embeddings
    seen = {}
    original = emb.visual_embed

    def capture(*args, **kwargs):
        out = original(*args, **kwargs)
        seen["index"], seen["grid"] = out[2]  # (1, P, 2) row/col of each kept patch, (rows, cols) of the grid
        return out

    emb.visual_embed = capture
    try:
        with torch.inference_mode(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)  # ViLT samples patches at random: fix it, and record where each went
            out = model(**enc, output_attentions=True)
    finally:
        del emb.visual_embed
    att = stack_layers(out.attentions)  # (L, H, S, S), S = T text + 1 image CLS + P patches
    T = enc["input_ids"].shape[1]
    grid = tuple(int(g) for g in seen["grid"])
    index = to_numpy(seen["index"][0]).astype(int)  # (P, 2)
    pos = content_positions(tok, enc["input_ids"][0])
    attn = to_grid(att[:, :, pos, T + 1:], index, grid)  # (L, H, n, gh, gw)
    rolled = to_grid(rollout(att)[pos][:, T + 1:], index, grid)  # (n, gh, gw)
    relevant = lazy(m, lambda: to_grid(vilt_relevance(m, enc)[pos][:, T + 1:], index, grid))  # (n, gh, gw) seed 0
    pieces = text_pieces(tok, enc["input_ids"][0][pos])
    words, groups = merge_pieces(pieces)
    notes = {}
    if hasattr(out, "logits") and getattr(model.config, "id2label", None) and out.logits.shape[-1] > 1:
        notes["answer"] = model.config.id2label[int(out.logits[0].argmax())]
    return AttentionMaps(image, words, groups, pieces, grid, attn, {"rollout": rolled, "relevance": relevant},
                         m.spec.name, text, notes=notes)
