"""Exercises of notebooks 09 (captioning from scratch: decoding) and 10 (evaluating captions: BLEU by hand).

Decoding exercises run on toy next-token models: any function prefix -> log-probabilities over the
vocabulary, so a search can be checked exactly without training anything.
"""
from __future__ import annotations

import math
from collections import Counter

import numpy as np

from .core import Case, exercise

BOS, EOS = 0, 1  # token ids of the toy models: 0 starts a caption, 1 ends it


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max()
    return z - np.log(np.exp(z).sum())


class ToyLM:
    """A toy next-token model over `vocab` tokens: fixed random log-probabilities for every prefix.

    Call it with a prefix (a sequence of token ids starting with BOS = 0); it returns (vocab,) log-probs.
    `eos_bias` makes the end token (1) likelier as the prefix grows.
    """

    def __init__(self, vocab: int = 6, seed: int = 0, eos_bias: float = 0.5):
        self.vocab, self.seed, self.eos_bias = vocab, seed, eos_bias

    def __call__(self, prefix) -> np.ndarray:
        prefix = [int(t) for t in prefix]
        logits = np.random.default_rng([self.seed, len(prefix)] + prefix).standard_normal(self.vocab) * 2.0
        logits[EOS] += self.eos_bias * len(prefix)
        return _log_softmax(logits)

    def __repr__(self) -> str:
        return f"ToyLM(vocab={self.vocab}, seed={self.seed})"


class TrapLM:
    """A model where greedy decoding misses the likeliest caption: 'b <end>' (0.4 * 0.95) beats anything after 'a'."""

    vocab = 4  # 0 <start>, 1 <end>, 2 'a', 3 'b'

    def __call__(self, prefix) -> np.ndarray:
        prefix = tuple(int(t) for t in prefix)
        table = {(BOS,): [0.0, 0.0, 0.6, 0.4],  # greedy takes 'a'...
                 (BOS, 2): [0.0, 0.32, 0.36, 0.32],  # ...and then nothing is sure
                 (BOS, 3): [0.0, 0.95, 0.03, 0.02]}  # 'b' is almost surely followed by <end>
        p = np.array(table.get(prefix, [0.0, 0.5, 0.3, 0.2])) + 1e-12
        return np.log(p / p.sum())

    def __repr__(self) -> str:
        return "TrapLM()"


class EarlyEndLM:
    """A model where an early ending wins: 'b <end>' (1.0 * 0.3) beats 'b a <end>' (0.5 * 0.5), the best caption of
    the round where a finished caption first tops the candidates. A search that stops at that round, or ranks
    captions by score per word, returns the longer one."""

    vocab = 4  # 0 <start>, 1 <end>, 2 'a', 3 'b'

    def __call__(self, prefix) -> np.ndarray:
        prefix = tuple(int(t) for t in prefix)
        table = {(BOS,): [0.0, 0.0, 0.0, 1.0],  # 'b' for sure
                 (BOS, 3): [0.0, 0.3, 0.5, 0.2],  # <end> only second: it leaves the beam finished
                 (BOS, 3, 2): [0.0, 0.5, 0.25, 0.25]}  # 'b a <end>' tops its round, below 'b <end>'
        p = np.array(table.get(prefix, [0.0, 0.5, 0.3, 0.2])) + 1e-12
        return np.log(p / p.sum())

    def __repr__(self) -> str:
        return "EarlyEndLM()"


class EndlessLM(ToyLM):
    """A toy model whose end token never wins: decoding must stop at max_len."""

    def __init__(self, vocab: int = 5, seed: int = 7):
        super().__init__(vocab, seed, eos_bias=-50.0)

    def __repr__(self) -> str:
        return f"EndlessLM(vocab={self.vocab}, seed={self.seed})"


def greedy_decode_reference(step, bos: int, eos: int, max_len: int) -> list[int]:
    """Greedy decoding: from [bos], append the likeliest next token until eos or max_len new tokens.

    Returns the new tokens (bos left out, eos included when it was produced).
    """
    seq = [bos]
    for _ in range(max_len):
        tok = int(np.argmax(step(tuple(seq))))
        seq.append(tok)
        if tok == eos:
            break
    return seq[1:]


def beam_search_reference(step, bos: int, eos: int, beam_size: int, max_len: int) -> list[int]:
    """Beam search without length penalty.

    Each round extends every live beam by every token, keeps the `beam_size` best candidates by total
    log-probability, and moves those that end in eos to the finished list (they leave the beam). Stops
    after max_len rounds or when no beam is left; returns the new tokens of the best finished or live
    sequence (bos left out, eos included when it was produced).
    """
    beams = [((bos,), 0.0)]
    finished = []
    for _ in range(max_len):
        candidates = [(seq + (tok,), score + float(lp))
                      for seq, score in beams for tok, lp in enumerate(step(seq))]
        candidates.sort(key=lambda c: -c[1])
        beams = []
        for seq, score in candidates[:beam_size]:
            (finished if seq[-1] == eos else beams).append((seq, score))
        if not beams:
            break
    best = max(finished + beams, key=lambda c: c[1])
    return list(best[0][1:])


def _decode_cases(rng, with_beam: bool):
    if with_beam:
        yield Case("edge: beam 1 is greedy", (ToyLM(6, int(rng.integers(1000))), BOS, EOS, 1, 6))
        yield Case("edge: a trap greedy falls into (beam 2 must find 'b <end>')", (TrapLM(), BOS, EOS, 2, 5))
        yield Case("edge: one step only", (ToyLM(5, int(rng.integers(1000))), BOS, EOS, 3, 1))
        yield Case("edge: a caption finished in an earlier round beats the best of a later round",
                   (EarlyEndLM(), BOS, EOS, 2, 5))
        yield Case("edge: no beam ends within max_len (return the best unfinished one)", (EndlessLM(), BOS, EOS, 3, 4))
        for _ in range(6):
            yield Case("random", (ToyLM(int(rng.integers(3, 9)), int(rng.integers(10**6)), float(rng.uniform(0, 1))),
                                  BOS, EOS, int(rng.integers(2, 5)), int(rng.integers(2, 7))))
    else:
        yield Case("edge: the trap (greedy takes 'a')", (TrapLM(), BOS, EOS, 5))
        yield Case("edge: max_len 1", (ToyLM(5, int(rng.integers(1000))), BOS, EOS, 1))
        yield Case("edge: end token likely at once", (ToyLM(4, int(rng.integers(1000)), 5.0), BOS, EOS, 8))
        yield Case("edge: the end token never comes (stop after max_len tokens)", (EndlessLM(), BOS, EOS, 4))
        for _ in range(6):
            yield Case("random", (ToyLM(int(rng.integers(3, 9)), int(rng.integers(10**6))), BOS, EOS, int(rng.integers(2, 9))))


@exercise("greedy_decode", "09", "greedy decoding over a next-token function", greedy_decode_reference,
          hint="prefix starts as [bos]; each step append argmax(step(prefix)); stop after eos (keep it) or max_len tokens; "
               "return the tokens after bos")
def _greedy_cases(rng):
    yield from _decode_cases(rng, with_beam=False)


@exercise("beam_search", "09", "beam search over a next-token function (finished beams leave the beam)",
          beam_search_reference,
          hint="keep (sequence, total log-prob) pairs; extend every live beam by every token, keep the beam_size best, "
               "set aside those ending in eos; at the end return the best of finished + live (tokens after bos)")
def _beam_cases(rng):
    yield from _decode_cases(rng, with_beam=True)


# ----------------------------------------------------------------------------------------- 10 BLEU

def ngrams(tokens, n: int) -> Counter:
    """Counter of the n-grams (tuples) of a token list."""
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def clipped_precision_reference(hyp: list[str], refs: list[list[str]], n: int) -> float:
    """BLEU's modified n-gram precision: each hypothesis n-gram counts at most as often as in the reference that
    has it most; divided by the number of hypothesis n-grams (0.0 when there are none)."""
    h = ngrams(hyp, n)
    total = sum(h.values())
    if total == 0:
        return 0.0
    most = Counter()
    for r in refs:
        for g, c in ngrams(r, n).items():
            most[g] = max(most[g], c)
    return sum(min(c, most[g]) for g, c in h.items()) / total


def bleu1_reference(hyp: list[str], refs: list[list[str]]) -> float:
    """Sentence BLEU-1: brevity penalty * clipped unigram precision; the reference length is the closest one
    (the shorter on a tie), BP = exp(1 - r / c) when the hypothesis (length c) is shorter, else 1."""
    c = len(hyp)
    if c == 0:
        return 0.0
    r = min((len(x) for x in refs), key=lambda L: (abs(L - c), L))
    bp = 1.0 if c >= r else math.exp(1 - r / c)
    return bp * clipped_precision_reference(hyp, refs, 1)


WORDS = "a the small large red green blue circle square triangle left right of above below".split()


def _sentence(rng, lo: int = 3, hi: int = 10) -> list[str]:
    return [str(w) for w in rng.choice(WORDS[:8], size=int(rng.integers(lo, hi)))]


def _bleu_edges(n: int | None):
    extra = () if n is None else (n,)
    yield Case("edge: a repeated word is clipped", (["the"] * 6, [["the", "cat", "is", "on", "the", "mat"]]) + extra)
    yield Case("edge: several references (max count over them)",
               (["a", "red", "red", "circle"], [["a", "red", "circle"], ["a", "red", "red", "square"]]) + extra)
    yield Case("edge: nothing in common", (["blue", "square"], [["a", "red", "circle"]]) + extra)
    yield Case("edge: a repeated word counts as often as in the one reference that has it most (not the sum)",
               (["red", "red", "circle"], [["a", "red", "circle"], ["red", "square"]]) + extra)


@exercise("clipped_precision", "10", "BLEU's clipped n-gram precision", clipped_precision_reference,
          hint="count hypothesis n-grams; clip each count by the largest count of that n-gram in any one reference; "
               "divide by the number of hypothesis n-grams; a hypothesis shorter than n has none: return 0.0")
def _precision_cases(rng):
    yield from _bleu_edges(1)
    yield Case("edge: bigrams, a hypothesis of one word (no bigrams: 0.0)", (["circle"], [["a", "circle"]], 2))
    yield Case("edge: bigrams", (["a", "red", "circle", "red", "circle"], [["a", "red", "circle"]], 2))
    for _ in range(8):
        yield Case("random", (_sentence(rng), [_sentence(rng) for _ in range(int(rng.integers(1, 4)))], int(rng.integers(1, 4))))


@exercise("bleu1", "10", "sentence BLEU-1: brevity penalty times clipped unigram precision", bleu1_reference,
          hint="r is the reference length closest to the hypothesis length c (the shorter one on a tie); "
               "BP = exp(1 - r / c) if c < r else 1; an empty hypothesis scores 0.0")
def _bleu_cases(rng):
    yield from _bleu_edges(None)
    yield Case("edge: shorter than every reference (brevity penalty)", (["a", "circle"], [["a", "red", "circle", "left"]]))
    yield Case("edge: reference lengths 3 and 5 equally close to 4: the shorter counts",
               (["a", "red", "big", "circle"], [["a", "red", "circle"], ["a", "red", "circle", "on", "left"]]))
    yield Case("edge: an empty hypothesis", ([], [["a", "circle"]]))
    yield Case("edge: the closest reference length (5) is neither the shortest nor the first",
               (["a", "red", "small", "circle"], [["a", "circle"], ["a", "red", "small", "circle", "left"]]))
    for _ in range(8):
        yield Case("random", (_sentence(rng, 1, 9), [_sentence(rng) for _ in range(int(rng.integers(1, 4)))]))
