"""mmkit.exercises.check against the ways a student's answer can slip through or hang it.

- a result of the wrong type (a numeric string) is refused like any other non-number;
- a function that changes its inputs in place fails, naming the argument and the fix;
- the likeliest wrong answer to each exercise fails on every seed (the fixed edge cases catch it, not luck);
- an endless loop is stopped after a time limit, with a message, and stops burning CPU;
- in a notebook, a failed check shows its message without a traceback through mmkit's internals.
"""
import math
import re
import threading
import time
from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmkit.exercises import ExerciseFailed, check, list_exercises, reference
from mmkit.exercises.captioning import clipped_precision_reference, greedy_decode_reference

pytestmark = pytest.mark.usefixtures("one_thread")
NAMES = [name for _, name, _ in list_exercises()]


# ------------------------------------------------------------------------------ 1. a string is not a number

@pytest.mark.parametrize("name,as_text", [
    ("conv_out_size", lambda h, k, s, p: str((h + 2 * p - k) // s + 1)),
    ("image_share", lambda att, T: str(float(att[:T, T:].sum(1).mean()))),
    ("recall_at_k", lambda sim, k: str(reference("recall_at_k")(sim, k))),
    ("roc_auc", lambda pos, neg: np.str_(reference("roc_auc")(pos, neg))),
    ("greedy_decode", lambda *a: [str(t) for t in greedy_decode_reference(*a)]),  # a list of numeric strings
])
def test_a_number_written_as_text_is_refused(name, as_text):
    with pytest.raises(ExerciseFailed, match=r"should be a number, got '[0-9.]+' \(text\): return the number itself"):
        check(name, as_text, seed=0)


def test_other_non_numbers_keep_their_message():
    with pytest.raises(ExerciseFailed, match=r"should be a number, got '32 px'"):
        check("conv_out_size", lambda h, k, s, p: f"{(h + 2 * p - k) // s + 1} px", seed=0)
    with pytest.raises(ExerciseFailed, match=r"should be a number, got \[32\]"):
        check("conv_out_size", lambda h, k, s, p: [(h + 2 * p - k) // s + 1], seed=0)
    check("conv_out_size", lambda h, k, s, p: float((h + 2 * p - k) // s + 1), seed=0, verbose=False)  # 32.0 is fine


# ------------------------------------------------------------------------------ 2. inputs changed in place

def _masked_mean_in_place(x, mask):
    x.mul_(mask[..., None].to(x.dtype))  # zeroes the caller's padded tokens
    return x.sum(1) / mask.sum(1, keepdim=True).to(x.dtype)


def _temperature_in_place(logits, tau):
    logits /= tau
    return logits.softmax(-1)


def _roc_auc_sorting(pos, neg):
    pos.sort()
    neg.sort()
    return reference("roc_auc")(pos, neg)


def _rollout_adding_identity(self_attn):
    n = self_attn.shape[-1]
    r = np.eye(n)
    for a in self_attn:
        a += np.eye(n)  # a is a view into the caller's array
        a = a.mean(0) / 2
        r = (a / a.sum(-1, keepdims=True)) @ r
    return r


def _embed_words_shifting_positions(input_ids, E, P):
    T = input_ids.shape[1]
    P[:T] += E[input_ids].mean(0)  # changes P, then undoes it in the result
    return E[input_ids] + P[:T] - E[input_ids].mean(0)


def _bleu1_sorting_refs(hyp, refs):
    refs.sort(key=len)
    return reference("bleu1")(hyp, refs)


def _gated_scaling_weights(t, v, gated):
    gated.gate.weight.data.mul_(1.0)  # no change in value: must pass
    out = gated(t, v)
    gated.text_proj.bias.data.add_(1.0)  # changes the caller's module
    return out


@pytest.mark.parametrize("name,fn,arg,fix", [
    ("masked_mean", _masked_mean_in_place, "x", "x = x.clone()"),
    ("temperature_softmax", _temperature_in_place, "logits", "logits = logits.clone()"),
    ("roc_auc", _roc_auc_sorting, "pos", "pos = pos.copy()"),
    ("rollout", _rollout_adding_identity, "self_attn", "self_attn = self_attn.copy()"),
    ("embed_words", _embed_words_shifting_positions, "P", "P = P.clone()"),
    ("bleu1", _bleu1_sorting_refs, "refs", "refs = copy.deepcopy(refs)"),
    ("gated_fusion", _gated_scaling_weights, "gated", "copy.deepcopy(gated)"),
])
def test_changing_an_input_in_place_fails_and_names_it(name, fn, arg, fix):
    with pytest.raises(ExerciseFailed) as info:
        check(name, fn, seed=0)
    msg = str(info.value)
    assert re.match(rf"{name}, case \d+ of \d+ \(", msg), msg
    assert f"your function changed its argument `{arg}` in place" in msg, msg
    assert fix in msg and "out-of-place" in msg, msg


def test_an_input_changed_and_put_back_passes():
    def masked_mean(x, mask):
        x.mul_(2.0)
        x.div_(2.0)  # exactly the same values afterwards
        return reference("masked_mean")(x, mask)

    check("masked_mean", masked_mean, seed=0, verbose=False)


@pytest.mark.parametrize("name", NAMES)
def test_references_pass_and_do_not_change_their_inputs(name, capsys):
    """Every reference passes its own check on 5 seeds (with the in-place and time checks active)."""
    for seed in range(5):
        check(name, reference(name), seed=seed)
    assert capsys.readouterr().out.count("\u2713") == 5


# ------------------------------------------------------------------------------ 3. wrong answers fail on every seed
# For each exercise the likeliest wrong answers. Each must fail on every one of 30 seeds: a wrong answer that a
# lucky draw lets through means the fixed edge cases miss that mistake.

def _conv(f):
    return lambda h, k, s, p: f(h, k, s, p)


def _ew(fn):
    return fn


def _mm_total(x, mask):  # divides by the number of real tokens of the whole batch
    w = mask.to(x.dtype)[..., None]
    return (x * w).sum(1) / w.sum()


def _gf(g_of, combine):
    def f(t, v, gated):
        g = g_of(gated, t, v)
        return combine(g, gated.text_proj(t), gated.image_proj(v))
    return f


_sig = lambda gated, t, v: torch.sigmoid(gated.gate(torch.cat([t, v], -1)))  # noqa: E731


def _film(gamma_scale=True, pool="mean", inner_relu=True, last_relu=True, swap=False):
    def f(t, v, film):
        a, b = film.film(t).chunk(2, dim=-1)
        gamma, beta = (b, a) if swap else (a, b)
        h = ((1 + gamma[:, None]) if gamma_scale else gamma[:, None]) * v + beta[:, None]
        h = torch.relu(h) if inner_relu else h
        h = torch.relu(film.conv(h))
        h = h.mean(1) if pool == "mean" else h.sum(1) if pool == "sum" else h.max(1).values
        out = film.out(h)
        return torch.relu(out) if last_relu else out
    return f


def _xattn(scale=lambda q, k, v: q.shape[-1] ** 0.5, mask="fill", dim=-1):
    def f(q, k, v, key_mask=None):
        s = q @ k.transpose(1, 2) / scale(q, k, v)
        if key_mask is not None and mask == "fill":
            s = s.masked_fill(~key_mask.bool()[:, None, :], float("-inf"))
        if key_mask is not None and mask == "multiply":
            s = s * key_mask[:, None, :].to(s.dtype)
        if key_mask is not None and mask == "inverted":
            s = s.masked_fill(key_mask.bool()[:, None, :], float("-inf"))
        a = s.softmax(dim)
        if key_mask is not None and mask == "after":
            a = a * key_mask[:, None, :].to(a.dtype)
        return a @ v, a
    return f


def _cell(attn, grid, size):
    row, col = divmod(int(np.argmax(attn)), grid)
    c = size / grid
    return col * c, row * c, (col + 1) * c, (row + 1) * c


def _pph_centre(attn, box, grid, size):
    cx0, cy0, cx1, cy1 = _cell(attn, grid, size)
    x0, y0, x1, y1 = box
    return bool(x0 <= (cx0 + cx1) / 2 <= x1 and y0 <= (cy0 + cy1) / 2 <= y1)


def _pph_contained(attn, box, grid, size):
    cx0, cy0, cx1, cy1 = _cell(attn, grid, size)
    x0, y0, x1, y1 = box
    return bool(cx0 >= x0 and cx1 <= x1 and cy0 >= y0 and cy1 <= y1)


def _pph_corner(attn, box, grid, size):  # only the cell's top-left pixel
    cx0, cy0, _, _ = _cell(attn, grid, size)
    x0, y0, x1, y1 = box
    return bool(x0 <= cx0 < x1 and y0 <= cy0 < y1)


def _pph_transposed(attn, box, grid, size):
    col, row = divmod(int(np.argmax(attn)), grid)
    c = size / grid
    x0, y0, x1, y1 = box
    return bool(col * c < x1 and (col + 1) * c > x0 and row * c < y1 and (row + 1) * c > y0)


def _pph_inclusive(attn, box, grid, size):
    cx0, cy0, cx1, cy1 = _cell(attn, grid, size)
    x0, y0, x1, y1 = box
    return bool(cx0 <= x1 and cx1 >= x0 and cy0 <= y1 and cy1 >= y0)


def _infonce(a, b, s, how):
    logits = s * a @ b.T
    y = torch.arange(len(a))
    if how == "one way":
        return F.cross_entropy(logits, y)
    if how == "sum":
        return F.cross_entropy(logits, y) + F.cross_entropy(logits.T, y)
    if how == "no scale":
        return (F.cross_entropy(a @ b.T, y) + F.cross_entropy((a @ b.T).T, y)) / 2
    if how == "divide":
        return (F.cross_entropy(a @ b.T / s, y) + F.cross_entropy((a @ b.T / s).T, y)) / 2
    e = torch.exp(logits)  # "by hand"
    return (-(e.diag() / e.sum(1)).log().mean() - (e.diag() / e.sum(0)).log().mean()) / 2


def _recall(sim, k, how):
    sim = torch.as_tensor(sim)
    c = sim.diag()[:, None]
    if how == "ties against":
        rank = (sim >= c).sum(1)
    elif how == "columns":
        sq = sim[:, : len(sim)]
        rank = (sq > sq.diag()[None, :]).sum(0) + 1
    elif how == "< k":
        return float((((sim > c).sum(1) + 1) < k).float().mean())
    elif how == "top-1":
        return float((sim.argmax(1) == torch.arange(len(sim))).float().mean())
    elif how == "topk":
        top = sim.topk(min(k, sim.shape[1]), dim=1).indices
        return float((top == torch.arange(len(sim))[:, None]).any(1).float().mean())
    else:  # percent
        return 100 * float((((sim > c).sum(1) + 1) <= k).float().mean())
    return float((rank <= k).float().mean())


def _zs(renorm=True, dim=-1, over=1, average_probs=False, scale=True):
    def f(image_emb, text_emb, s):
        s = s if scale else 1.0
        if average_probs:
            return torch.stack([(s * image_emb @ text_emb[:, j].T).softmax(-1) for j in range(text_emb.shape[1])]).mean(0)
        lab = text_emb.mean(over)
        lab = F.normalize(lab, dim=-1) if renorm else lab
        return (s * image_emb @ lab.T).softmax(dim)
    return f


def _cam(alpha_of=lambda g: g.mean((1, 2)), post=torch.relu):
    def f(fmap, grads):
        return post((alpha_of(grads)[:, None, None] * fmap).sum(0))
    return f


def _auc(tie, swapped=False):
    def f(pos, neg):
        p, n = (np.asarray(neg), np.asarray(pos)) if swapped else (np.asarray(pos), np.asarray(neg))
        return float(((p[:, None] > n[None]) + tie * (p[:, None] == n[None])).mean())
    return f


def _to_grid(how):
    def f(values, index, grid):
        values = np.asarray(values, dtype=np.float32)
        gh, gw = grid
        index = np.asarray(index)
        if how == "reshape":
            return values.reshape(values.shape[:-1] + (gh, gw))
        out = np.zeros(values.shape[:-1] + (gh * gw,), dtype=np.float32)
        flat = index[:, 0] * gh + index[:, 1] if how == "row stride" else index[:, 1] * gh + index[:, 0]
        out[..., flat] = values
        return out.reshape(values.shape[:-1] + (gh, gw))
    return f


WRONG = {
    "conv_out_size": [
        ("no + 1", lambda h, k, s, p: (h + 2 * p - k) // s),
        ("true division", lambda h, k, s, p: (h + 2 * p - k) / s + 1),
        ("round", lambda h, k, s, p: round((h + 2 * p - k) / s) + 1),
        ("ceil", lambda h, k, s, p: math.ceil((h + 2 * p - k) / s) + 1),
        ("p, not 2p", lambda h, k, s, p: (h + p - k) // s + 1),
        ("no padding", lambda h, k, s, p: (h - k) // s + 1),
    ],
    "embed_words": [
        ("P[:B]", lambda ids, E, P: E[ids] + P[: ids.shape[0]]),
        ("no positions", lambda ids, E, P: E[ids]),
        ("P[1:T+1]", lambda ids, E, P: E[ids] + P[1: ids.shape[1] + 1]),
        ("P[ids]", lambda ids, E, P: E[ids] + P[ids]),
    ],
    "masked_mean": [
        ("plain mean", lambda x, mask: x.mean(1)),
        ("divides by L", lambda x, mask: (x * mask[..., None]).sum(1) / x.shape[1]),
        ("divides by the batch's real tokens", _mm_total),
        ("sum, no division", lambda x, mask: (x * mask[..., None]).sum(1)),
    ],
    "gated_fusion": [
        ("g and 1 - g swapped", _gf(_sig, lambda g, a, b: (1 - g) * a.tanh() + g * b.tanh())),
        ("[v; t]", _gf(lambda gd, t, v: torch.sigmoid(gd.gate(torch.cat([v, t], -1))),
                       lambda g, a, b: g * a.tanh() + (1 - g) * b.tanh())),
        ("no tanh", _gf(_sig, lambda g, a, b: g * a + (1 - g) * b)),
        ("tanh after mixing", _gf(_sig, lambda g, a, b: torch.tanh(g * a + (1 - g) * b))),
        ("softmax gate", _gf(lambda gd, t, v: gd.gate(torch.cat([t, v], -1)).softmax(-1),
                             lambda g, a, b: g * a.tanh() + (1 - g) * b.tanh())),
        ("no sigmoid", _gf(lambda gd, t, v: gd.gate(torch.cat([t, v], -1)),
                           lambda g, a, b: g * a.tanh() + (1 - g) * b.tanh())),
    ],
    "film_fusion": [
        ("gamma, not 1 + gamma", _film(gamma_scale=False)),
        ("max pool", _film(pool="max")),
        ("sum pool", _film(pool="sum")),
        ("no relu before conv", _film(inner_relu=False)),
        ("no final relu", _film(last_relu=False)),
        ("beta and gamma swapped", _film(swap=True)),
    ],
    "soft_vote": [
        ("softmax over the batch", lambda a, b: ((a.softmax(0) + b.softmax(0)) / 2).log()),
        ("probabilities, not log", lambda a, b: (a.softmax(-1) + b.softmax(-1)) / 2),
        ("averages scores", lambda a, b: ((a + b) / 2).log_softmax(-1)),
        ("sums log-probs", lambda a, b: a.log_softmax(-1) + b.log_softmax(-1)),
        ("averages log-probs", lambda a, b: (a.log_softmax(-1) + b.log_softmax(-1)) / 2),
    ],
    "cross_attention": [
        ("no mask", _xattn(mask="none")),
        ("no scale", _xattn(scale=lambda q, k, v: 1.0)),
        ("divides by d", _xattn(scale=lambda q, k, v: q.shape[-1])),
        ("sqrt of the number of keys", _xattn(scale=lambda q, k, v: k.shape[1] ** 0.5)),
        ("softmax over the queries", _xattn(dim=1)),
        ("mask multiplies the scores", _xattn(mask="multiply")),
        ("mask after the softmax", _xattn(mask="after")),
        ("mask inverted", _xattn(mask="inverted")),
    ],
    "patch_pointing_hit": [
        ("row and column swapped", _pph_transposed),
        ("touching counts (<=)", _pph_inclusive),
        ("the cell's centre in the box", _pph_centre),
        ("the whole cell in the box", _pph_contained),
        ("the cell's top-left corner in the box", _pph_corner),
    ],
    "infonce": [(how, lambda a, b, s, how=how: _infonce(a, b, s, how))
                for how in ("one way", "sum", "no scale", "divide", "by hand")],
    "recall_at_k": [(how, lambda sim, k, how=how: _recall(sim, k, how))
                    for how in ("ties against", "columns", "< k", "top-1", "topk", "percent")],
    "zero_shot_probs": [
        ("no re-normalising", _zs(renorm=False)),
        ("softmax over the images", _zs(dim=0)),
        ("mean over the labels", _zs(over=0)),
        ("averages probabilities over templates", _zs(average_probs=True)),
        ("no scale", _zs(scale=False)),
    ],
    "grad_cam": [
        ("no relu", _cam(post=lambda x: x)),
        ("abs", _cam(post=torch.abs)),
        ("sum of gradients", _cam(alpha_of=lambda g: g.sum((1, 2)))),
        ("normalised to [0, 1]", _cam(post=lambda x: torch.relu(x) / torch.relu(x).max().clamp_min(1e-12))),
        ("elementwise grads * fmap", lambda f, g: torch.relu((g * f).sum(0))),
        ("relu on the weights", _cam(alpha_of=lambda g: torch.relu(g.mean((1, 2))), post=lambda x: x)),
    ],
    "roc_auc": [
        ("ties count 0", _auc(0.0)),
        ("ties count 1", _auc(1.0)),
        ("swapped", _auc(0.5, swapped=True)),
        ("means compared", lambda p, n: float(np.mean(p) > np.mean(n))),
    ],
    "to_grid": [(how, _to_grid(how)) for how in ("reshape", "row stride", "column-major")],
    "image_share": [
        ("image rows, text columns", lambda a, T: float(a[T:, :T].sum(1).mean())),
        ("T + 1 (skips a token)", lambda a, T: float(a[:T, T + 1:].sum(1).mean())),
        ("sum over the wrong axis", lambda a, T: float(a[:T, T:].sum(0).mean())),
        ("every row", lambda a, T: float(a[:, T:].sum(1).mean())),
        ("mean of the entries", lambda a, T: float(a[:T, T:].mean())),
        ("text share", lambda a, T: float(a[:T, :T].sum(1).mean())),
    ],
    "temperature_softmax": [
        ("multiplies by tau", lambda l, t: (l * t).softmax(-1)),
        ("softmax over dim 0", lambda l, t: (l / t).softmax(0)),
        ("log-probabilities", lambda l, t: (l / t).log_softmax(-1)),
        ("exp by hand", lambda l, t: (l / t).exp() / (l / t).exp().sum(-1, keepdim=True)),
        ("divides after the softmax", lambda l, t: l.softmax(-1) / t),
    ],
    "entropy": [
        ("log2", lambda p: -torch.special.xlogy(p, p).sum(-1) / math.log(2)),
        ("0 log 0 = nan", lambda p: -(p * p.log()).sum(-1)),
        ("sum over dim 0", lambda p: -torch.special.xlogy(p, p).sum(0)),
        ("no minus", lambda p: torch.special.xlogy(p, p).sum(-1)),
        ("mean, not sum", lambda p: -torch.special.xlogy(p, p).mean(-1)),
    ],
    "top_p_filter": [],  # filled below
    "rollout": [],
    "pointing_hit": [],
    "mass_in_box": [],
    "greedy_decode": [],
    "beam_search": [],
    "clipped_precision": [],
    "bleu1": [],
}


def _top_p(how):
    def f(probs, p):
        order = probs.argsort(descending=how != "ascending")
        sp = probs[order]
        cum = sp.cumsum(0)
        if how == "cum <= p":
            ks = cum <= p
            ks[0] = True
        elif how == "before <= p":
            ks = (cum - sp) <= p
        else:
            ks = (cum - sp) < p
        if how == "sorted order":
            out = torch.where(ks, sp, torch.zeros_like(sp))
            return out / out.sum()
        keep = torch.zeros_like(ks)
        keep[order] = ks
        out = torch.where(keep, probs, torch.zeros_like(probs))
        return out if how == "no renormalising" else out / out.sum()
    return f


WRONG["top_p_filter"] = [(h, _top_p(h)) for h in ("cum <= p", "before <= p", "ascending", "sorted order", "no renormalising")]


def _rollout(how):
    def f(A):
        A = np.asarray(A, dtype=np.float64)
        n = A.shape[-1]
        eye = np.eye(n)
        r = eye if how != "start from layer 0" else None
        for i, layer in enumerate(A):
            a = layer.max(0) if how == "max over heads" else layer.mean(0)
            if how != "no identity":
                a = 0.5 * a + 0.5 * eye
            a = a / a.sum(-1, keepdims=True)
            if r is None:
                r = a
            r = r @ a if how == "wrong order" else a @ r
        if how == "last layer only":
            a = 0.5 * A[-1].mean(0) + 0.5 * eye
            r = a / a.sum(-1, keepdims=True)
        return r
    return f


WRONG["rollout"] = [(h, _rollout(h)) for h in ("wrong order", "no identity", "max over heads", "start from layer 0",
                                               "last layer only")]


def _ph(how):
    def f(heat, box):
        h = np.asarray(heat)
        if how == "last of the tied pixels":
            i = h.size - 1 - int(np.argmax(h.ravel()[::-1]))
        else:  # "first of the tied pixels" is np.argmax alone, the reference before plateaus were handled
            i = int(np.argmax(h)) if how != "argmin" else int(np.argmin(h))
        shape = h.shape[::-1] if how == "shape reversed" else h.shape
        y, x = np.unravel_index(i, shape)
        if how == "x and y swapped":
            x, y = y, x
        x0, y0, x1, y1 = box
        if how == "inclusive":
            return bool(x0 <= x <= x1 and y0 <= y <= y1)
        return bool(x0 <= x < x1 and y0 <= y < y1)
    return f


WRONG["pointing_hit"] = [(h, _ph(h)) for h in ("x and y swapped", "inclusive", "argmin", "shape reversed",
                                               "first of the tied pixels", "last of the tied pixels")]


def _mib(how):
    def f(heat, box):
        h = np.asarray(heat, dtype=np.float64)
        h = np.abs(h) if how == "abs" else h if how == "no clipping" else np.clip(h, 0, None)
        x0, y0, x1, y1 = box
        t = h.sum()
        if how == "x and y swapped":
            inside = h[x0:x1, y0:y1].sum()
        elif how == "inclusive":
            inside = h[y0:y1 + 1, x0:x1 + 1].sum()
        else:
            inside = h[y0:y1, x0:x1].sum()
        if how == "no zero guard":
            return float(inside / t)
        return float(inside / t) if t > 0 else 0.0
    return f


WRONG["mass_in_box"] = [(h, _mib(h)) for h in ("no clipping", "abs", "x and y swapped", "inclusive", "no zero guard")]


def _greedy(how):
    def f(step, bos, eos, max_len):
        seq = [bos]
        n = max_len - 1 if how == "max_len - 1" else max_len + 1 if how == "max_len + 1" else max_len
        for _ in range(n):
            tok = int(np.argmax(step(tuple(seq))))
            if tok == eos and how == "drops eos":
                break
            seq.append(tok)
            if tok == eos and how != "never stops":
                break
        return seq if how == "keeps bos" else seq[1:]
    return f


WRONG["greedy_decode"] = [(h, _greedy(h)) for h in ("never stops", "drops eos", "keeps bos", "max_len - 1", "max_len + 1")]


def _beam(how):
    def f(step, bos, eos, beam_size, max_len):
        beams, finished = [((bos,), 0.0)], []
        for _ in range(max_len):
            cands = []
            for s, sc in beams:
                if how == "finished stay" and s[-1] == eos:
                    cands.append((s, sc))
                    continue
                cands += [(s + (t,), sc + float(lp)) for t, lp in enumerate(step(s))]
            cands.sort(key=lambda c: -c[1])
            if how == "finished stay":
                beams = cands[:beam_size]
                if all(s[-1] == eos for s, _ in beams):
                    break
                continue
            if how == "stop at first finished" and cands[0][0][-1] == eos:
                return list(cands[0][0][1:])
            beams = [c for c in cands[:beam_size] if c[0][-1] != eos]
            finished += [c for c in cands[:beam_size] if c[0][-1] == eos]
            if not beams:
                break
        pool = beams if how == "finished stay" else finished + beams
        key = (lambda c: c[1] / (len(c[0]) - 1)) if how == "length-normalised" else (lambda c: c[1])
        if how == "best live beam":
            pool = beams or finished
        return list(max(pool, key=key)[0][1:])
    return f


# "finished stay" (Hugging Face's way: a finished caption keeps its slot with a frozen score) is not here: it
# returns the same caption as the reference on every case tried, so it counts as a correct alternative.
WRONG["beam_search"] = [(h, _beam(h)) for h in ("length-normalised", "stop at first finished", "best live beam")] + [
    ("greedy", lambda step, bos, eos, beam_size, max_len: greedy_decode_reference(step, bos, eos, max_len))]


def _ngrams(t, n):
    return Counter(tuple(t[i:i + n]) for i in range(len(t) - n + 1))


def _cp(how):
    def f(hyp, refs, n):
        h = _ngrams(hyp, n) if how != "off by one" else Counter(tuple(hyp[i:i + n]) for i in range(len(hyp) - n))
        total = sum(h.values())
        if total == 0:
            return 0.0
        most = Counter()
        for r in (refs[:1] if how == "first reference only" else refs):
            g = _ngrams(r, n)
            most = most + g if how == "sum over references" else most | g
        if how == "no clipping":
            return sum(c for g, c in h.items() if most[g]) / total
        if how == "recall":
            return sum(min(c, most[g]) for g, c in h.items()) / max(1, sum(_ngrams(refs[0], n).values()))
        return sum(min(c, most[g]) for g, c in h.items()) / total
    return f


WRONG["clipped_precision"] = [(h, _cp(h)) for h in ("no clipping", "sum over references", "off by one",
                                                   "first reference only", "recall")]


def _bleu(how):
    def f(hyp, refs):
        c = len(hyp)
        if c == 0:
            return 0.0
        lens = [len(x) for x in refs]
        r = {"shortest": min(lens), "longest": max(lens), "first reference": lens[0],
             "ties to the longer": min(lens, key=lambda L: (abs(L - c), -L))}.get(how, min(lens, key=lambda L: (abs(L - c), L)))
        bp = 1.0 if c >= r else (math.exp(1 - c / r) if how == "inverted" else math.exp(1 - r / c))
        if how == "no brevity penalty":
            bp = 1.0
        return bp * clipped_precision_reference(hyp, refs, 1)
    return f


WRONG["bleu1"] = [(h, _bleu(h)) for h in ("no brevity penalty", "shortest", "longest", "first reference",
                                         "ties to the longer", "inverted")]

SEEDS = range(30)


def test_every_exercise_has_wrong_answers():
    assert set(WRONG) == set(NAMES) and all(len(v) >= 3 for v in WRONG.values())


@pytest.mark.parametrize("name", NAMES)
def test_likely_wrong_answers_fail_on_every_seed(name):
    passed = []
    for label, wrong in WRONG[name]:
        lucky = []
        for seed in SEEDS:
            try:
                check(name, wrong, seed=seed, verbose=False)
                lucky.append(seed)
            except ExerciseFailed:
                pass
        if lucky:
            passed.append(f"{label!r} passes on seeds {lucky}")
    assert not passed, f"{name}: " + "; ".join(passed)


def test_patch_pointing_hit_edge_cases_alone_catch_the_centre_and_containment_mistakes():
    from mmkit.exercises.core import REGISTRY

    ex = REGISTRY["patch_pointing_hit"]
    edges = [c for c in ex.cases(np.random.default_rng(0)) if c.label.startswith("edge")]
    for wrong in (_pph_centre, _pph_contained):
        assert any(bool(wrong(*c.args)) != ex.reference(*c.args) for c in edges), wrong.__name__


# ------------------------------------------------------------------------------ 4. a time limit per call

def test_an_endless_loop_is_stopped_with_a_message():
    spins = []

    def conv_out_size(h, k, s, p):
        n = 0
        while h + 2 * p - k >= 0:  # h never shrinks
            n += 1
            spins.append(n) if n % 100_000 == 0 else None
        return n

    t0 = time.perf_counter()
    with pytest.raises(ExerciseFailed, match=r"conv_out_size, case 1 of \d+ .*: your function took longer than 0.5 s "
                                             r"\(an endless loop\?\)") as info:
        check("conv_out_size", conv_out_size, seed=0, time_limit=0.5)
    assert time.perf_counter() - t0 < 5
    assert "time_limit=" in str(info.value)  # says how to allow a slow but correct solution more time
    n = len(spins)
    time.sleep(0.3)
    assert len(spins) == n, "the student's loop is still running after check returned"


def test_a_loop_that_swallows_exceptions_is_still_stopped():
    def masked_mean(x, mask):
        while True:
            try:
                time.sleep(0.01)
            except Exception:  # noqa: BLE001  a student's catch-all
                pass

    t0 = time.perf_counter()
    with pytest.raises(ExerciseFailed, match="took longer than 0.3 s"):
        check("masked_mean", masked_mean, seed=0, time_limit=0.3)
    assert time.perf_counter() - t0 < 5


def test_time_limit_default_is_generous_and_works_off_the_main_thread():
    from mmkit.exercises.core import TIME_LIMIT

    assert 2 <= TIME_LIMIT <= 30  # the slowest reference call takes ~10 ms on the 2-core CI machine
    result = {}

    def run():
        try:
            check("entropy", lambda p: sum(1 for _ in iter(int, 1)), seed=0, time_limit=0.3)  # never ends
        except ExerciseFailed as e:
            result["msg"] = str(e)

    th = threading.Thread(target=run)
    th.start()
    th.join(10)
    assert not th.is_alive() and "took longer than 0.3 s" in result.get("msg", ""), result


def test_keyboard_interrupt_still_stops_check():
    def conv_out_size(h, k, s, p):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        check("conv_out_size", conv_out_size, seed=0)
    time.sleep(0.1)
    check("conv_out_size", reference("conv_out_size"), seed=0, verbose=False)  # nothing left behind


# ------------------------------------------------------------------------------ 5. how a failure reads in a notebook

def test_failure_renders_as_its_message_in_ipython():
    def gated_fusion(t, v, gated):
        raise NotImplementedError("exercise: gated_fusion")

    with pytest.raises(ExerciseFailed) as info:
        check("gated_fusion", gated_fusion)
    e = info.value
    assert isinstance(e, AssertionError)
    shown = "\n".join(e._render_traceback_())
    assert "not done yet" in shown and "ExerciseFailed" in shown
    assert "Traceback" not in shown and "core.py" not in shown


def test_failure_in_a_kernel_shows_no_traceback(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells.append(nbformat.v4.new_code_cell(
        "from mmkit.exercises import check\n"
        "def gated_fusion(t, v, gated):\n"
        "    raise NotImplementedError('exercise: gated_fusion')\n"
        "check('gated_fusion', gated_fusion)"))
    nb.cells.append(nbformat.v4.new_code_cell(  # an endless loop in the kernel's main thread
        "def conv_out_size(h, k, s, p):\n"
        "    while True:\n"
        "        pass\n"
        "check('conv_out_size', conv_out_size, time_limit=1)"))
    nb.cells.append(nbformat.v4.new_code_cell("from mmkit.exercises import reference\n"
                                              "check('conv_out_size', reference('conv_out_size'))"))
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    (err,) = [o for o in nb.cells[0].outputs if o.output_type == "error"]
    assert err.ename == "ExerciseFailed" and "not done yet" in err.evalue  # graders and CI still see the failure
    shown = "\n".join(err.traceback)
    assert "not done yet" in shown
    assert "core.py" not in shown and "Traceback" not in shown and "check(" not in shown, shown

    (err,) = [o for o in nb.cells[1].outputs if o.output_type == "error"]
    assert err.ename == "ExerciseFailed" and "took longer than 1 s (an endless loop?)" in err.evalue, err.evalue
    assert "\u2713" in "".join(o.get("text", "") for o in nb.cells[2].outputs)  # the kernel goes on working


# ------------------------------------------------------------------------------ 6. no answer given away earlier

def _expressions(code: str) -> list[str]:
    """The expressions of a cell's lines (assignment targets, `return` and comments dropped), without spaces,
    `dim=` or indexing, so `(logits[step] / tau).softmax(-1)` and `(logits / tau).softmax(dim=-1)` read the same."""
    out = []
    for line in code.split("\n"):
        line = re.sub(r"#.*", "", line).strip()
        line = re.sub(r"^return\s+", "", line)
        line = re.sub(r"^[\w\[\]\., ]+?\s*[-+*/]?=\s*(?!=)", "", line)  # drop a leading assignment target
        n = re.sub(r"\s+|dim=", "", line)
        n = re.sub(r"\[[^\[\]]*\]", "", n)
        if len(n) >= 20:  # shorter ones (x.sum(1)) are everyday code, not an answer
            out.append(n)
    return out


def _given_away(nb) -> list[str]:
    """Solution expressions of the notebook's exercises that a lesson cell (kept in the student version) contains."""
    lesson = set()
    for c in nb.cells:
        tags = c.get("metadata", {}).get("tags", [])
        if c.cell_type == "code" and "exercise" not in tags and "ci-check" not in tags:
            lesson |= set(_expressions(c.source))
    hits = []
    for c in nb.cells:
        for m in re.finditer(r"### BEGIN SOLUTION\n(.*?)\n\s*### END SOLUTION", c.source, re.S):
            hits += [e for e in _expressions(m.group(1)) if any(e in line for line in lesson)]
    return hits


def test_no_lesson_cell_writes_out_an_exercise_answer():
    from pathlib import Path

    nbformat = pytest.importorskip("nbformat")
    notebooks = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
    assert notebooks
    found = {p.name: _given_away(nbformat.read(p, 4)) for p in notebooks}
    assert not any(found.values()), {k: v for k, v in found.items() if v}

    # the detector finds the three give-aways that notebooks 06 and 07 used to have
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell('print(f"{float(att[:T, T:].sum(1).mean()):.0%}")\n'
                                  "entropy = -(probs * probs.clamp_min(1e-12).log()).sum(-1)  # (steps,)\n"
                                  "p = (logits[step] / tau).softmax(-1)"),
        nbformat.v4.new_code_cell("def f(att, T, probs, logits, tau):\n    ### BEGIN SOLUTION\n"
                                  "    a = float(att[:T, T:].sum(dim=1).mean())\n"
                                  "    b = -(probs * probs.clamp_min(1e-12).log()).sum(dim=-1)\n"
                                  "    return (logits / tau).softmax(dim=-1)\n    ### END SOLUTION")])
    nb.cells[1].metadata["tags"] = ["exercise"]
    assert len(_given_away(nb)) == 3
