"""One decoding routine for every captioner: greedy, beam search, and temperature / top-k / top-p sampling.

A model takes part through a *step function*:

    step(prefix, state) -> (logits, state, attn)

    prefix: (B, t) long, every token so far (position 0 is the start token)
    state:  dict of tensors, each with the batch on dim 0 (LSTM memory, image features, ...)
    logits: (B, V) scores for the next token
    attn:   (B, N) attention over N image positions for this token, or None

Beam search reorders the state by indexing dim 0 of each tensor, so a state never holds anything else.
The option names are those of `mmkit.caption` (and of Hugging Face `generate`).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..errors import InputError
from ..tasks import check_decoding

Step = Callable[[torch.Tensor, dict], tuple[torch.Tensor, dict, "torch.Tensor | None"]]


@dataclass
class Decoded:
    """Decoder output for a batch: generated ids (start token dropped) and per-token attention."""

    tokens: list[list[int]]  # one list of ids per image, up to and including the end token
    attn: list[torch.Tensor] | None  # one (len(tokens[i]), N) tensor per image, or None


def check_options(max_new_tokens: int = 30, num_beams: int = 1, do_sample: bool = False, temperature: float = 1.0,
                  top_p: float = 1.0, top_k: int | None = None, length_penalty: float = 1.0) -> None:
    """Raise InputError, naming the fix, on option values decoding cannot use (mmkit.caption's rules, plus one)."""
    check_decoding(max_new_tokens, num_beams, temperature, top_p, top_k)
    if do_sample and num_beams > 1:
        raise InputError("do_sample=True with num_beams > 1 is not supported: pick sampling or beam search")


def _take(state: dict, idx: torch.Tensor) -> dict:
    """Select (and repeat) batch rows of every tensor in the state."""
    return {k: v[idx] for k, v in state.items()}


def filter_logits(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float = 1.0) -> torch.Tensor:
    """Temperature, then top-k, then top-p (nucleus) filtering; removed entries become -inf.

    Args:
        logits: (B, V) next-token scores.
    """
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]  # (B, 1) the k-th largest score
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)  # (B, V)
        cum = sorted_logits.softmax(-1).cumsum(-1)  # (B, V)
        drop = cum - sorted_logits.softmax(-1) >= top_p  # mass before this token already reaches top_p
        drop[:, 0] = False  # always keep the most likely token
        logits = logits.masked_fill(drop.scatter(1, order, drop), float("-inf"))
    return logits


def _finish(seqs: torch.Tensor, attns: torch.Tensor | None, eos_id: int) -> Decoded:
    """(B, T) generated ids (+ (B, T, N) attention) -> Decoded, each row cut after its first end token."""
    tokens, maps = [], [] if attns is not None else None
    for b, row in enumerate(seqs.tolist()):
        n = row.index(eos_id) + 1 if eos_id in row else len(row)
        tokens.append(row[:n])
        if maps is not None:
            maps.append(attns[b, :n])
    return Decoded(tokens, maps)


@torch.no_grad()
def greedy_or_sample(step: Step, state: dict, bos_id: int, eos_id: int, max_new_tokens: int = 30,
                     do_sample: bool = False, temperature: float = 1.0, top_k: int | None = None,
                     top_p: float = 1.0, generator: torch.Generator | None = None) -> Decoded:
    """Greedy decoding (argmax each step) or sampling from the filtered distribution.

    Args:
        state: the model's initial state; its first tensor's dim 0 is the batch size B.
        generator: a seeded torch.Generator makes sampling repeatable.
    """
    B = next(iter(state.values())).shape[0]
    prefix = torch.full((B, 1), bos_id, dtype=torch.long)  # (B, 1)
    done = torch.zeros(B, dtype=torch.bool)
    attns = []
    for _ in range(max_new_tokens):
        logits, state, attn = step(prefix, state)  # (B, V)
        if do_sample:
            probs = filter_logits(logits.float(), temperature, top_k, top_p).softmax(-1)  # (B, V)
            nxt = torch.multinomial(probs, 1, generator=generator).squeeze(1)  # (B,)
        else:
            nxt = logits.argmax(-1)  # (B,)
        nxt = nxt.masked_fill(done, eos_id)  # finished rows keep emitting the end token (cut later)
        prefix = torch.cat([prefix, nxt[:, None]], dim=1)  # (B, t + 1)
        if attn is not None:
            attns.append(attn)
        done |= nxt == eos_id
        if bool(done.all()):
            break
    return _finish(prefix[:, 1:], torch.stack(attns, 1) if attns else None, eos_id)


@torch.no_grad()
def beam_search(step: Step, state: dict, bos_id: int, eos_id: int, max_new_tokens: int = 30, num_beams: int = 4,
                length_penalty: float = 1.0) -> Decoded:
    """Beam search: keep the num_beams best prefixes by sum of log-probs / length ** length_penalty.

    Finished beams (ended with the end token) stay in the beam with their score frozen and compete with the
    growing ones; the search stops when every beam has finished or after max_new_tokens. With num_beams=1
    this is exactly greedy decoding. length_penalty > 0 favours longer captions, < 0 shorter ones
    (the Hugging Face convention).
    """
    B = next(iter(state.values())).shape[0]
    K = num_beams
    state = _take(state, torch.arange(B).repeat_interleave(K))  # (B*K, ...) K copies of each image
    prefix = torch.full((B * K, 1), bos_id, dtype=torch.long)  # (B*K, 1)
    score = torch.full((B, K), float("-inf"))
    score[:, 0] = 0.0  # start from one live beam per image, not K identical ones
    score = score.view(-1)  # (B*K,) sum of log-probs
    length = torch.zeros(B * K)  # (B*K,) generated tokens so far
    done = torch.zeros(B * K, dtype=torch.bool)
    attn_hist = None  # (B*K, t, N)
    norm = lambda s, n: s / n.clamp(min=1) ** length_penalty  # noqa: E731  length-normalised score
    for _ in range(max_new_tokens):
        logits, state, attn = step(prefix, state)  # (B*K, V)
        logp = logits.float().log_softmax(-1)  # (B*K, V)
        V = logp.shape[-1]
        # a finished beam has one continuation: the end token again, free, with its length unchanged
        logp = torch.where(done[:, None], torch.full_like(logp, float("-inf")), logp)
        logp[done, eos_id] = 0.0
        cand = score[:, None] + logp  # (B*K, V) raw scores of every extension
        cand_len = (length + (~done).float())[:, None].expand(-1, V)  # (B*K, V)
        ranked = norm(cand, cand_len).view(B, K * V)  # (B, K*V) compared across beams of one image
        ranked = torch.where(torch.isnan(ranked), torch.full_like(ranked, float("-inf")), ranked)
        best = ranked.topk(K, dim=-1).indices  # (B, K) ties resolve to the lower index, as argmax does
        src = (best // V + torch.arange(B)[:, None] * K).view(-1)  # (B*K,) beam each winner extends
        tok = (best % V).view(-1)  # (B*K,)
        score = cand.view(B, K * V).gather(1, best).view(-1)  # (B*K,)
        length = cand_len.reshape(B, K * V).gather(1, best).view(-1)
        prefix = torch.cat([prefix[src], tok[:, None]], dim=1)  # (B*K, t + 1)
        state = _take(state, src)
        if attn is not None:
            a = attn[src][:, None]  # (B*K, 1, N)
            attn_hist = a if attn_hist is None else torch.cat([attn_hist[src], a], dim=1)
        done = done[src] | (tok == eos_id)
        if bool(done.all()):
            break
    final = norm(score, length).view(B, K)  # (B, K)
    pick = final.argmax(-1) + torch.arange(B) * K  # (B,) best beam of each image
    return _finish(prefix[pick, 1:], attn_hist[pick] if attn_hist is not None else None, eos_id)


def decode(step: Step, state: dict, bos_id: int, eos_id: int, max_new_tokens: int = 30, num_beams: int = 1,
           do_sample: bool = False, temperature: float = 1.0, top_p: float = 1.0, top_k: int | None = None,
           length_penalty: float = 1.0, seed: int | torch.Generator | None = 0) -> Decoded:
    """Decode a batch with the options of `mmkit.caption`: greedy, beam search or sampling.

    Args:
        step: the model's step function (see the module docstring); state: its initial state.
        seed: seeds sampling so results repeat (or a torch.Generator to draw from; None: torch's global one).
    """
    check_options(max_new_tokens, num_beams, do_sample, temperature, top_p, top_k, length_penalty)
    if num_beams > 1:
        return beam_search(step, state, bos_id, eos_id, max_new_tokens, num_beams, length_penalty)
    gen = seed if isinstance(seed, torch.Generator) or seed is None else torch.Generator().manual_seed(seed)
    return greedy_or_sample(step, state, bos_id, eos_id, max_new_tokens, do_sample, temperature, top_k, top_p, gen)
