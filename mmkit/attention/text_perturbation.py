"""Perturbation over the text tokens: delete (or insert) the question / caption / prompt tokens in the order a
method ranks them, and watch the model's own score (the same scores as perturbation.py, the image untouched).

A deleted token becomes [MASK] (the sequence keeps its length); a tokenizer with no mask token (CLIP's) drops it
and pads the end. Each method's ranking of the tokens is its text-side counterpart, read at the output token
(ViLT's and BLIP's [CLS], CLIP's end token, BLIP-VQA's answer positions):

* attention: the output token's attention to each token, mean over layers and heads (BLIP-VQA: the answer
  decoder's cross-attention over the question);
* rollout: attention rollout's row of the output token;
* relevance: the output token's row of Chefer et al.'s relevance matrix (relevance.py; BLIP-VQA: the answer
  positions' relevance to the question tokens, summed);
* gradcam: BLIP-ITM: attention x its positive gradient at Grad-CAM's layer; ALIGN: Grad-CAM over the text
  tower's last hidden states;
* similarity (CLIP, ALIGN): each token's state through the text projection, cosine with the image embedding.

A captioning model's text is its output, not an input: it has no text curves.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..families import ADAPTERS, adapter, attention_function

# Derived from mmkit.families.ADAPTERS (its text_methods column): family -> the methods that rank its tokens.
TEXT_METHODS = {f: a.text_methods for f, a in ADAPTERS.items() if a.text_methods}


def text_inputs(m, text: str) -> dict:
    """The token ids the model scores (1, T), their mask, the positions of real tokens and of the output token."""
    import torch

    from .cross import content_positions

    how, tok = adapter(m), m.processor.tokenizer
    if how.dual_encoder:
        text = m.spec.zero_shot_template.format(text)  # the prompt as zero_shot and the maps embed it
    enc = tok(text, return_tensors="pt")
    ids = enc["input_ids"].to(m.device)
    mask = enc.get("attention_mask", torch.ones_like(ids)).to(m.device)
    content = content_positions(tok, ids[0])
    if not content:
        raise InputError(f"the text {text!r} has no tokens {m.spec.name} can delete; give a few words")
    out = ids.shape[1] - 1 if how.pools_end_token else 0  # CLIP pools its end token; the others their first
    return {"ids": ids, "mask": mask, "content": content, "out": out, "text": text}


# --- each family's state, score and token ranking (named in its row of mmkit.families.ADAPTERS) --------------

def _image_emb(m, enc):
    import torch

    from ..tasks.embeddings import pooled_feature

    f = pooled_feature(m.model.get_image_features(pixel_values=enc["pixel_values"])).float()
    return torch.nn.functional.normalize(f, dim=-1)  # (1, D)


def dual_text_state(m, enc: dict, state: dict) -> dict:
    """CLIP/ALIGN: the image's normalised embedding (1, D), which the text is scored against."""
    return {"image_emb": _image_emb(m, enc)}


def blip_text_state(m, enc: dict, state: dict) -> dict:
    """BLIP: the image's vision states (1, 1 + N, D), which the text encoder attends to."""
    return {"vis": m.model.vision_model(pixel_values=enc["pixel_values"]).last_hidden_state}


def blip_vqa_text_state(m, enc: dict, state: dict) -> dict:
    """BLIP-VQA: the vision states, and the decoder rows that predict the answer's real tokens."""
    from .cross import content_positions

    rows = [p - 1 for p in content_positions(m.processor.tokenizer, state["answer"][0]) if p > 0]
    return {**blip_text_state(m, enc, state), "answer_rows": rows or [0]}


def _dual_score(m, state, txt):
    """CLIP / ALIGN score of text embeddings txt (B, D): cosine with the image, or the zero-shot probability
    among the other labels when they were given."""
    sims = txt @ state["image_emb"].T  # (B, 1)
    others = state["text_emb"][1:]  # (L - 1, D) the other labels
    if len(others) == 0:
        return sims[:, 0]
    import torch

    rest = (state["image_emb"] @ others.float().T).expand(len(txt), -1)  # (B, L - 1)
    return (state["scale"] * torch.cat([sims, rest], -1)).softmax(-1)[:, 0]


def dual_token_scorer(m, enc: dict, state: dict, ids, mask):
    """CLIP/ALIGN: each text row's score against the image (cosine, or P(prompt) among the labels), (B,)."""
    import torch

    from ..tasks.embeddings import pooled_feature

    f = pooled_feature(m.model.get_text_features(input_ids=ids, attention_mask=mask)).float()
    return _dual_score(m, state, torch.nn.functional.normalize(f, dim=-1))


def _vilt_logits(m, enc: dict, ids, mask):
    """ViLT's logits (B, labels) or (B, 1) with each row of text beside the image."""
    B = ids.shape[0]
    kw = {k: (ids if k == "input_ids" else mask if k == "attention_mask" else v.expand(B, *v.shape[1:]))
          for k, v in enc.items()}
    return m.model(**kw).logits.float()


def vilt_vqa_token_scorer(m, enc: dict, state: dict, ids, mask):
    """ViLT-VQA: P(the answer on the whole text), (B,)."""
    return _vilt_logits(m, enc, ids, mask).softmax(-1)[:, state["label"]]


def vilt_itm_token_scorer(m, enc: dict, state: dict, ids, mask):
    """ViLT-ITM: the matching score (a logit), (B,)."""
    return _vilt_logits(m, enc, ids, mask)[:, 0]


def _blip_text_states(m, state: dict, ids, mask):
    """BLIP's text encoder over each row of text, attending to the image: (B, T, D)."""
    vis = state["vis"].expand(ids.shape[0], *state["vis"].shape[1:])  # (B, 1 + N, D)
    return m.model.text_encoder(input_ids=ids, attention_mask=mask, encoder_hidden_states=vis,
                                return_dict=True).last_hidden_state


def blip_itm_token_scorer(m, enc: dict, state: dict, ids, mask):
    """BLIP-ITM: P(match) from the ITM head, (B,)."""
    return m.model.itm_head(_blip_text_states(m, state, ids, mask)[:, 0]).float().softmax(-1)[:, 1]


def blip_vqa_token_scorer(m, enc: dict, state: dict, ids, mask):
    """BLIP-VQA: P(answer) teacher-forced through the answer decoder, (B,)."""
    import torch

    h = _blip_text_states(m, state, ids, mask)
    a = state["answer"].expand(ids.shape[0], *state["answer"].shape[1:])  # (B, A)
    logits = m.model.text_decoder(input_ids=a, attention_mask=torch.ones_like(a), encoder_hidden_states=h,
                                  encoder_attention_mask=mask, return_dict=True).logits.float()
    return logits[:, :-1].log_softmax(-1).gather(-1, a[:, 1:, None])[..., 0].sum(-1).exp()


def token_scores(m, enc: dict, state: dict, ids, mask) -> np.ndarray:
    """The model's score with each row of token ids: ids, mask (B, T) -> (B,) float numpy."""
    import torch

    scorer = attention_function(adapter(m).token_scorer)
    with torch.inference_mode(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # ViLT samples patches: the same draw for every copy and call
        s = scorer(m, enc, state, ids, mask)
    return s.detach().cpu().numpy().astype(np.float64)


def vilt_token_ranking(m, enc: dict, state: dict, t: dict, methods) -> dict:
    """ViLT: the output token's attention to each text token, its rollout row and its relevance row."""
    import torch

    from .cross import stack_layers
    from .maps import rollout
    from .relevance import vilt_relevance

    pos, o = t["content"], t["out"]
    with torch.inference_mode(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        att = stack_layers(m.model(**enc, output_attentions=True).attentions)  # (L, H, S, S) text first
    out = {"attention": att[:, :, o, pos].mean((0, 1)), "rollout": rollout(att)[o, pos]}
    if "relevance" in methods:
        out["relevance"] = vilt_relevance(m, enc)[o, pos]
    return out


def _blip_question(m, state: dict, t: dict):
    """BLIP's text encoder over the text, attending to the image, with its attentions (B = 1)."""
    return m.model.text_encoder(input_ids=t["ids"], attention_mask=t["mask"], encoder_hidden_states=state["vis"],
                                output_attentions=True, return_dict=True)


def blip_itm_token_ranking(m, enc: dict, state: dict, t: dict, methods) -> dict:
    """BLIP-ITM: the [CLS] row's attention, attention x gradient at Grad-CAM's layer, and relevance."""
    import torch

    from .cross import stack_layers
    from .relevance import avg_heads, blip_streams

    pos, o = t["content"], t["out"]
    with torch.enable_grad():
        q = _blip_question(m, state, t)
        att = stack_layers(q.attentions)  # (L, H, T, T)
        out = {"attention": att[:, :, o, pos].mean((0, 1))}
        if "gradcam" in methods:  # the layer Grad-CAM reads on the image side (cross.py)
            layer = min((2 * len(att)) // 3, len(att) - 2) if len(att) > 1 else 0
            p = m.model.itm_head(q.last_hidden_state[:, 0]).float().softmax(-1)[0, 1]
            (g,) = torch.autograd.grad(p, [q.attentions[layer]])
            out["gradcam"] = avg_heads(q.attentions[layer][0].detach(), g[0].clamp(min=0))[o, pos].numpy()
        if "relevance" in methods:
            out["relevance"] = blip_streams(m, enc["pixel_values"], "itm", t["ids"], t["mask"])["qq"][o, pos].numpy()
    return out


def blip_vqa_token_ranking(m, enc: dict, state: dict, t: dict, methods) -> dict:
    """BLIP-VQA: the answer decoder's cross-attention over the question, and the answer's relevance to it."""
    import torch

    from .cross import stack_layers
    from .relevance import blip_streams

    pos, ans, rows = t["content"], state["answer"], state["answer_rows"]
    with torch.enable_grad():
        q = _blip_question(m, state, t)
        a = m.model.text_decoder(input_ids=ans, attention_mask=torch.ones_like(ans),
                                 encoder_hidden_states=q.last_hidden_state, encoder_attention_mask=t["mask"],
                                 output_attentions=True, return_dict=True)
        out = {"attention": stack_layers(a.cross_attentions)[:, :, rows][..., pos].mean((0, 1, 2))}
        if "relevance" in methods:
            aq = blip_streams(m, enc["pixel_values"], "vqa", t["ids"], t["mask"], ans)["aq"]  # (A, Tq)
            out["relevance"] = aq[rows][:, pos].sum(0).numpy()
    return out


def _projected(m, x):
    """CLIP/ALIGN text states (..., D) through the text projection, normalised: (..., E)."""
    import torch

    return torch.nn.functional.normalize(m.model.text_projection(x).float(), dim=-1)


def _text_tower(m, state: dict, t: dict, attentions: bool, pool):
    """CLIP/ALIGN's text tower alone: (its output, the score of the pooled text, each token's similarity)."""
    res = m.model.text_model(input_ids=t["ids"], attention_mask=t["mask"], output_attentions=attentions,
                             return_dict=True)
    last = res.last_hidden_state  # (1, T, D)
    target = _dual_score(m, state, _projected(m, pool(res)))[0]
    similarity = (_projected(m, last[0, t["content"]]) @ state["image_emb"][0]).detach().numpy()
    return res, target, similarity


def clip_token_ranking(m, enc: dict, state: dict, t: dict, methods) -> dict:
    """CLIP: the end token's attention, rollout and relevance rows in the text tower; each token's similarity."""
    import torch

    from .cross import stack_layers
    from .maps import rollout
    from .relevance import first_item, self_relevance

    pos, o = t["content"], t["out"]
    with torch.enable_grad():
        res, target, similarity = _text_tower(m, state, t, True, lambda r: r.pooler_output)
        atts = list(res.attentions)
        grads = torch.autograd.grad(target, atts)
        att = stack_layers(atts)  # (L, H, T, T)
        return {"similarity": similarity, "attention": att[:, :, o, pos].mean((0, 1)), "rollout": rollout(att)[o, pos],
                "relevance": self_relevance(first_item(atts), first_item(grads))[o, pos].numpy()}


def align_token_ranking(m, enc: dict, state: dict, t: dict, methods) -> dict:
    """ALIGN: Grad-CAM over the tokens (gradient-weighted last hidden states) and each token's similarity."""
    import torch

    with torch.enable_grad():
        res, target, similarity = _text_tower(m, state, t, False, lambda r: r.last_hidden_state[:, 0])
        last = res.last_hidden_state  # (1, T, D)
        (g,) = torch.autograd.grad(target, [last])
        w = g[0].mean(0)  # (D,) token-averaged gradient
        return {"similarity": similarity, "gradcam": torch.relu((last[0].detach() * w).sum(-1))[t["content"]].numpy()}


def token_ranking(m, enc: dict, state: dict, t: dict, methods) -> dict:
    """Each method's score of each real token, {method: (n,)}: the higher, the earlier it is deleted."""
    out = attention_function(adapter(m).token_ranking)(m, enc, state, t, methods)
    return {k: np.asarray(out[k], dtype=np.float64) for k in methods}


def token_copies(t: dict, order: np.ndarray, fractions, insert: bool, mask_id, pad_id):
    """Token ids (K, T) and masks (K, T) with the real tokens in `order` deleted (or revealed) step by step:
    replaced by mask_id, or dropped and the end padded with pad_id (mask 0) when mask_id is None."""
    import torch

    ids, pos = t["ids"][0].tolist(), t["content"]
    n = len(pos)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    rows, masks = [], []
    for c in np.rint(np.asarray(fractions) * n).astype(int):
        gone = {pos[i] for i in range(n) if (rank[i] >= c if insert else rank[i] < c)}
        if mask_id is not None:
            row = [mask_id if j in gone else x for j, x in enumerate(ids)]
            keep = [1] * len(ids)
        else:
            row = [x for j, x in enumerate(ids) if j not in gone]
            keep = [1] * len(row) + [0] * (len(ids) - len(row))
            row = row + [pad_id] * (len(ids) - len(row))
        rows.append(row), masks.append(keep)
    dev = t["ids"].device
    return torch.tensor(rows, device=dev), torch.tensor(masks, device=dev, dtype=t["mask"].dtype)


def text_perturbation_many(m, images, methods, texts, fractions, n_random: int, batch_size: int, seed: int,
                           labels=None, used=None) -> dict:
    """Token deletion / insertion curves of several methods: {method: {curve name: (N, K)}}; `used` collects
    the texts. The random curves (method-independent) are computed once per image."""
    import torch

    from . import eager_attention
    from .perturbation import model_inputs

    fam, how = m.spec.family, adapter(m)
    if not how.text_methods:
        raise InputError(f"{m.spec.name} ({fam}) has no input text to perturb (a caption is the model's output); "
                         "use over='patches'")
    for meth in methods:
        if meth not in how.text_methods:
            raise InputError(f"method {meth!r} has no text ranking for {fam}; choose one of {how.text_methods}")
    tok = m.processor.tokenizer
    mask_id, pad_id = tok.mask_token_id, tok.pad_token_id if tok.pad_token_id is not None else 0
    curves = {k: {x: [] for x in ("deletion", "insertion", "random_deletion", "random_insertion")} for k in methods}
    with eager_attention(m):
        for n, (image, text) in enumerate(zip(images, texts)):
            if not text:
                raise InputError(f"image {n} has no text; give the question / caption / prompt to perturb")
            enc, state = model_inputs(m, image, text, labels)
            state = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in state.items()}  # usable under autograd
            t = text_inputs(m, text)
            if how.joint_inputs:  # the ids and mask the processor made, with the image's
                t["ids"], t["mask"] = enc["input_ids"], enc["attention_mask"]
            if how.text_state is not None:
                with torch.no_grad():
                    state.update(attention_function(how.text_state)(m, enc, state))
            rank = token_ranking(m, enc, state, t, methods)
            rng = np.random.default_rng(seed + n)
            k = len(t["content"])
            orders = [np.argsort(-rank[x], kind="stable") for x in methods] + [rng.permutation(k) for _ in range(n_random)]
            pairs = [token_copies(t, o, fractions, ins, mask_id, pad_id) for o in orders for ins in (False, True)]
            ids, mask = torch.cat([p[0] for p in pairs]), torch.cat([p[1] for p in pairs])
            rows, back = torch.unique(torch.cat([ids, mask], 1), dim=0, return_inverse=True)  # each text once
            ids, mask = rows[:, :ids.shape[1]], rows[:, ids.shape[1]:]
            scores = np.concatenate([token_scores(m, enc, state, ids[i:i + batch_size], mask[i:i + batch_size])
                                     for i in range(0, len(ids), batch_size)])
            out = scores[back.cpu().numpy()].reshape(len(orders), 2, len(fractions))
            rand = out[len(methods):].mean(axis=0)
            for j, meth in enumerate(methods):
                c = curves[meth]
                c["deletion"].append(out[j, 0]), c["insertion"].append(out[j, 1])
                c["random_deletion"].append(rand[0]), c["random_insertion"].append(rand[1])
            if used is not None:
                used.append(text)
    return curves
