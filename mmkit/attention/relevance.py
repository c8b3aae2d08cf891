"""Generic attention relevance (Chefer, Gur & Wolf, ICCV 2021) for one-stream and encoder-decoder models.

Every attention map A (heads, Q, K) is weighted by the gradient of the model's output: Ā = mean over heads of
(∇A ⊙ A)⁺. Relevance matrices start as the identity (a token is relevant to itself) and are updated layer by layer:

* self-attention of a stream s:   R_ss += Ā R_ss,   and R_sq += Ā R_sq for what s already draws from q
* cross-attention of s over q:    R_sq += R̂_ssᵀ Ā R̂_qq   (R̂: R - I rows normalised, plus I; the paper's eq. 10)

ViLT is one stream over [text, image] (self rule only). BLIP's image encoder gives R_ii; its text stack does
self- then cross-attention each layer. The clip/dual.py relevance is the same self rule on CLIP's vision tower.
"""
from __future__ import annotations

import numpy as np


def lazy(m, fn):
    """fn as a function AttentionMaps calls on first use, with eager attention (as attention_maps has it)."""

    def compute():
        from . import eager_attention

        with eager_attention(m):
            return fn()

    return compute


def avg_heads(attn, grad):
    """Ā = mean over heads of (grad ⊙ attn)⁺: (H, Q, K) torch tensors -> (Q, K) float64."""
    return (grad.double() * attn.double()).clamp(min=0).mean(0)


def residual_normalise(r):
    """R̂ = (R - I) with each row scaled to sum 1 (rows of zeros stay 0), plus I: (N, N) -> (N, N)."""
    import torch

    eye = torch.eye(r.shape[-1], dtype=r.dtype)
    x = r - eye
    s = x.sum(-1, keepdim=True)
    return torch.where(s != 0, x / torch.where(s != 0, s, torch.ones_like(s)), x) + eye


def self_relevance(attns, grads):
    """One stream's relevance through its self-attention layers: lists of (H, S, S) -> R (S, S) float64."""
    import torch

    r = torch.eye(attns[0].shape[-1], dtype=torch.float64)
    for a, g in zip(attns, grads):
        r = r + avg_heads(a, g) @ r
    return r


def stream_relevance(self_attns, self_grads, cross_attns, cross_grads, r_other):
    """A text stack whose layers do self-attention then cross-attention over another stream.

    Args:
        self_attns, self_grads: per layer (H, T, T).
        cross_attns, cross_grads: per layer (H, T, K) over the other stream's K tokens.
        r_other: (K, K) the other stream's own relevance (identity if unknown).
    Returns (R_tt (T, T), R_tk (T, K)) float64.
    """
    import torch

    T, K = cross_attns[0].shape[-2:]
    r_tt = torch.eye(T, dtype=torch.float64)
    r_tk = torch.zeros(T, K, dtype=torch.float64)
    r_kk = residual_normalise(r_other.double())
    for a_s, g_s, a_c, g_c in zip(self_attns, self_grads, cross_attns, cross_grads):
        cam = avg_heads(a_s, g_s)  # (T, T)
        r_tt = r_tt + cam @ r_tt
        r_tk = r_tk + cam @ r_tk
        r_tk = r_tk + residual_normalise(r_tt).T @ avg_heads(a_c, g_c) @ r_kk  # (T, K)
    return r_tt, r_tk


def _grads(target, tensors):
    import torch

    return torch.autograd.grad(target, tensors, retain_graph=True, allow_unused=True)


def first_item(ts):
    """Batch item 0 of each tensor: (1, H, Q, K) -> (H, Q, K); a missing gradient becomes zeros."""
    return [t[0].detach().cpu() if t is not None else None for t in ts]


def vilt_relevance(m, enc) -> np.ndarray:
    """ViLT's relevance matrix (S, S) over [text, image CLS, patches] for its output: the predicted answer's
    logit (VQA) or the match score (ITM). Patches are drawn with seed 0, as vilt_maps draws them."""
    import torch

    with torch.enable_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        out = m.model(**enc, output_attentions=True)
        logits = out.logits[0]
        target = logits[logits.argmax()] if logits.numel() > 1 else logits[0]
        atts = list(out.attentions)
        grads = _grads(target, atts)
    return self_relevance(first_item(atts), _zeros_for(first_item(grads), first_item(atts))).float().numpy()


def _zeros_for(grads, like):
    import torch

    return [g if g is not None else torch.zeros_like(a) for g, a in zip(grads, like)]


def _all_grads(target, stacks: list[list]) -> list[list]:
    """Gradients of target for several lists of attention tensors in one backward pass: the same nesting."""
    flat = [t for st in stacks for t in st]
    g = _zeros_for(first_item(_grads(target, flat)), first_item(flat))
    out, i = [], 0
    for st in stacks:
        out.append(g[i:i + len(st)])
        i += len(st)
    return out


def _text_stack(out, grads_self, grads_cross):
    """Self and cross attentions of a BLIP text model's output with their gradients: 4 lists of (H, Q, K)."""
    return first_item(list(out.attentions)), grads_self, first_item(list(out.cross_attentions)), grads_cross


def blip_relevance(m, px, kind: str, ids=None, mask=None, answer_ids=None) -> np.ndarray:
    """BLIP relevance of text positions to image patches (image CLS dropped).

    Args:
        px: (1, C, H, W) pixel values.
        kind: "caption" (ids: the caption (1, T) from BOS; row t - 1 is word t's map, its own log-probability
            the target), "itm" (ids, mask: the text; P(match) the target; row t is token t's map) or "vqa"
            (ids, mask: the question; answer_ids (1, A); the answer's log-probability the target; rows: the
            question tokens, then answer position a - 1 for answer token a).
    Returns (rows, N) float32 relevance over the N patches.
    """
    import torch

    if kind == "caption":
        model = m.model
        with torch.enable_grad():
            vis = model.vision_model(pixel_values=px, output_attentions=True, return_dict=True)
            v_atts = list(vis.attentions)
            h = vis.last_hidden_state  # (1, 1 + N, D)
            out = model.text_decoder(input_ids=ids, attention_mask=torch.ones_like(ids), encoder_hidden_states=h,
                                     output_attentions=True, return_dict=True)
            logp = out.logits[0, :-1].float().log_softmax(-1)  # (T - 1, V): position t - 1 predicts token t
            rows = []
            for t in range(1, ids.shape[1]):
                target = logp[t - 1, ids[0, t]]
                gv, gs, gc = _all_grads(target, [v_atts, list(out.attentions), list(out.cross_attentions)])
                _, r_ti = stream_relevance(*_text_stack(out, gs, gc), self_relevance(first_item(v_atts), gv))
                rows.append(r_ti[t - 1, 1:])
        return torch.stack(rows).float().numpy() if rows else np.zeros((0, h.shape[1] - 1), np.float32)
    r = blip_streams(m, px, kind, ids, mask, answer_ids)
    if kind == "itm":
        return r["qi"][:, 1:].float().numpy()
    return torch.cat([r["qi"], r["aq"] @ r["qi"]])[:, 1:].float().numpy()  # (Tq + A, N)


def blip_streams(m, px, kind: str, ids, mask, answer_ids=None) -> dict:
    """The relevance matrices of BLIP's ITM ("itm": target P(match)) or VQA ("vqa": target the answer's
    log-probability) model, float64 torch: "qq" (Tq, Tq) question to question, "qi" (Tq, 1 + N) question to
    image tokens, and for VQA "aq" (A, Tq) answer positions to question tokens."""
    import torch

    model = m.model
    with torch.enable_grad():
        vis = model.vision_model(pixel_values=px, output_attentions=True, return_dict=True)
        v_atts = list(vis.attentions)
        h = vis.last_hidden_state  # (1, 1 + N, D)
        q = model.text_encoder(input_ids=ids, attention_mask=mask, encoder_hidden_states=h, output_attentions=True,
                               return_dict=True)
        if kind == "itm":
            target = model.itm_head(q.last_hidden_state[:, 0]).float().softmax(-1)[0, 1]
            a = None
        else:  # vqa: the answer decoder over the question encoder's states
            a = model.text_decoder(input_ids=answer_ids, attention_mask=torch.ones_like(answer_ids),
                                   encoder_hidden_states=q.last_hidden_state, encoder_attention_mask=mask,
                                   output_attentions=True, return_dict=True)
            logp = a.logits[0, :-1].float().log_softmax(-1)
            target = logp.gather(-1, answer_ids[0, 1:, None]).sum()
        stacks = [v_atts, list(q.attentions), list(q.cross_attentions)]
        if a is not None:
            stacks += [list(a.attentions), list(a.cross_attentions)]
        g = _all_grads(target, stacks)
    r_qq, r_qi = stream_relevance(*_text_stack(q, g[1], g[2]), self_relevance(first_item(v_atts), g[0]))
    out = {"qq": r_qq, "qi": r_qi}
    if a is not None:
        out["aq"] = stream_relevance(*_text_stack(a, g[3], g[4]), r_qq)[1]
    return out
