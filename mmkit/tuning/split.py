"""finetune's validation split (by picture, with a picture of each new word where it can) and its batch order
(one picture's rows together)."""
from __future__ import annotations

import random
import sys

from ..errors import InputError
from .data import Examples, read_examples
from .vocab import word_pictures


def _split(ex: Examples, val_data, share: float, seed: int, words=()) -> tuple[list, list]:
    """(train, val) examples; without val_data, `share` of the distinct images are held out (_held_keys)."""
    if val_data is not None:
        held = read_examples(val_data, kind=ex.kind)  # a folder with both CSVs: the training data's kind
        if held.skipped:
            print("validation data: " + held.report(), file=sys.stderr)
        if held.kind != ex.kind:
            raise InputError(f"the training data has {ex.kind} rows but val_data has {held.kind} rows; give both the "
                             "same form ((image, text) or (image, question, answer))")
        return ex.items, held.items
    keys = list(dict.fromkeys(e.key for e in ex.items))
    if len(keys) < 2:
        raise InputError(f"only {len(keys)} usable image(s): finetune needs at least 2 (one to train on, one to "
                         "validate); add pictures or pass val_data=")
    random.Random(seed).shuffle(keys)
    held = _held_keys(keys, word_pictures(ex.items, words), max(1, min(len(keys) - 1, round(share * len(keys)))))
    return [e for e in ex.items if e.key not in held], [e for e in ex.items if e.key in held]


def _held_keys(keys: list, has: dict, n: int) -> set:
    """n of the (shuffled) picture keys to validate on. First, for each new word (has: word -> its pictures' keys),
    rarest first, one picture with it (the one with the most words not yet held), so the metric can see it, unless
    that would leave fewer than 2 training pictures with a new word (it would not become a token); then the other
    keys in order, those that keep every new word on 2+ training pictures first."""
    words_of: dict = {}
    for w, ks in has.items():
        for k in ks:
            words_of.setdefault(k, []).append(w)
    left = {w: len(ks) for w, ks in has.items()}  # training pictures with each word
    held: dict = {}  # key -> None, in the order held

    def keeps(k) -> bool:
        return all(left[w] > 2 for w in words_of.get(k, ()))

    def hold(k) -> None:
        held[k] = None
        for w in words_of.get(k, ()):
            left[w] -= 1

    for w in sorted(has, key=lambda w: (len(has[w]), w)):
        if len(held) < n and left[w] == len(has[w]):  # none of its pictures held yet
            pick = [k for k in keys if k in has[w] and k not in held and keeps(k)]
            if pick:
                hold(max(pick, key=lambda k: sum(left[v] == len(has[v]) for v in words_of[k])))
    for anyway in (False, True):
        for k in keys:
            if len(held) < n and k not in held and (anyway or keeps(k)):
                hold(k)
    return set(held)


def _grouped_order(train: list, rng: random.Random) -> list[int]:
    """A shuffled order of the examples in which one picture's rows follow each other (its questions share a
    batch, so BLIP-VQA encodes the picture once for all of them); pictures and rows within one are shuffled."""
    by_key: dict = {}
    for i, e in enumerate(train):
        by_key.setdefault(e.key, []).append(i)
    groups = list(by_key.values())
    rng.shuffle(groups)
    for g in groups:
        rng.shuffle(g)
    return [i for g in groups for i in g]
