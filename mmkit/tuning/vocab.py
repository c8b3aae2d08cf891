"""New words: grow a model's tokenizer and its word embeddings (and output layer) for words it does not know.

The bundled models know about 150 words; any other word is spelled out in characters ('orange' ->
o ##r ##a ##n ##g ##e), which a caption decoder can learn, but slowly. `grow_vocabulary` adds each new word
as one token, and gives it an embedding row initialised at the mean of the rows of the pieces it used to be
spelled with (so it starts close to what the model read before), in every word-embedding table and every
output layer over the vocabulary (BLIP's decoder head, tied or not). ViLT's answer classifier grows with
`grow_answers` when answers are new. Symbols used as words (emoji such as 🟧 for a colour), which the tokenizer
reads as [UNK], count as words too and become tokens the same way.
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter

WORD = re.compile(r"[a-z][a-z'-]*")
# a symbol outside ASCII with its variation selector, skin tone and zero-width-joined parts (🟧, 👩‍🔬)
_ONE = r"[^\w\s\x00-\x7f][\ufe0f\U0001F3FB-\U0001F3FF]*"  # a non-ASCII non-letter, its selector and skin tone
SYMBOL = re.compile(rf"{_ONE}(?:\u200d{_ONE})*")


def words_of(text: str) -> list[str]:
    """The words of a text (lower-cased) that new_words may add: runs of letters, and symbols (emoji, ©, €; not
    punctuation such as curly quotes or dashes), each on its own."""
    text = text.lower()
    return WORD.findall(text) + [s for s in SYMBOL.findall(text) if unicodedata.category(s[0]).startswith("S")]


def text_vocab_size(config) -> int:
    """The vocabulary size of a model's text side (BLIP/CLIP: text_config, ViLT: the config itself)."""
    text = getattr(config, "text_config", None)
    return int(getattr(text, "vocab_size", None) or config.vocab_size)


def unknown_words(tokenizer, texts, min_count: int = 1, max_pieces: int = 2) -> list[str]:
    """Words of texts (lower-cased) the tokenizer has no single token for: [UNK] or more than max_pieces pieces.

    Args:
        min_count: a word must occur at least this often to be added (typos are left alone).
    """
    return [w for w, c in unknown_word_counts(tokenizer, texts, max_pieces).items() if c >= min_count]


def unknown_word_counts(tokenizer, texts, max_pieces: int = 2) -> dict[str, int]:
    """{word: occurrences in texts} of the words (lower-cased, sorted) the tokenizer spells as [UNK] or in more
    than max_pieces pieces."""
    counts = Counter(w for t in texts for w in words_of(t))
    out = {}
    for w, c in sorted(counts.items()):
        pieces = tokenizer.tokenize(w)
        if tokenizer.unk_token in pieces or len(pieces) > max_pieces:
            out[w] = c
    return out


def word_pictures(items, words) -> dict[str, set]:
    """{word: keys of the pictures whose texts (caption, question or answer) have it} for each of words that items
    (tuning.data.Example) have."""
    wanted, out = set(words), {}
    for e in items:
        for w in wanted.intersection(words_of(f"{e.text} {e.question} {e.answer}")):
            out.setdefault(w, set()).add(e.key)
    return out


def grow_vocabulary(model, tokenizer, words) -> dict:
    """Add words to tokenizer (one token each) and grow model's embeddings to match; in place.

    Returns {'added': [word, ...], 'ids': [id, ...], 'old_size': V, 'new_size': V'} (empty 'added' when every
    word was known). Embedding rows (V', D) and output rows (V', D) of the new ids start at the mean of the
    rows of the word's old pieces."""
    import torch

    old_size = text_vocab_size(model.config)
    words = [w for w in dict.fromkeys(words) if w and w not in tokenizer.get_vocab()]
    if not words:
        return {"added": [], "ids": [], "old_size": old_size, "new_size": old_size}
    pieces = {w: tokenizer(w, add_special_tokens=False)["input_ids"] for w in words}
    tokenizer.add_tokens(words)
    ids = tokenizer.convert_tokens_to_ids(words)
    new_size = max(old_size, max(ids) + 1)
    swaps = {}  # id(old Parameter) -> (old, new Parameter): tied weights stay tied (old kept alive: ids stay unique)
    with torch.no_grad():
        for module in list(model.modules()):
            if isinstance(module, torch.nn.Embedding) and module.num_embeddings == old_size:
                module.weight = _grown(module.weight, new_size, ids, pieces, words, swaps)
                module.num_embeddings = new_size
            elif isinstance(module, torch.nn.Linear) and module.out_features == old_size:
                module.weight = _grown(module.weight, new_size, ids, pieces, words, swaps)
                if module.bias is not None:
                    module.bias = _grown(module.bias, new_size, ids, pieces, words, swaps)
                module.out_features = new_size
        for module in model.modules():  # other references to a grown parameter (BLIP's head keeps `bias` twice)
            for name, p in list(module._parameters.items()):
                if p is not None and id(p) in swaps and swaps[id(p)][0] is p:
                    module._parameters[name] = swaps[id(p)][1]
    _set_vocab_size(model.config, new_size)
    return {"added": words, "ids": list(ids), "old_size": old_size, "new_size": new_size}


def _grown(p, new_size: int, ids, pieces, words, swaps):
    """p (V, ...) grown to (V', ...), new rows the mean of the old pieces' rows; one new Parameter per old one."""
    import torch

    if id(p) in swaps and swaps[id(p)][0] is p:
        return swaps[id(p)][1]
    data = torch.cat([p.data, p.data.new_zeros((new_size - p.shape[0],) + tuple(p.shape[1:]))])  # (V', ...)
    for w, i in zip(words, ids):
        old = [j for j in pieces[w] if j < p.shape[0]]
        if old:
            data[i] = p.data[old].mean(0)
    new = torch.nn.Parameter(data, requires_grad=p.requires_grad)
    swaps[id(p)] = (p, new)
    return new


def _set_vocab_size(config, n: int) -> None:
    text = getattr(config, "text_config", None)
    if text is not None and hasattr(text, "vocab_size"):
        text.vocab_size = n
    elif hasattr(config, "vocab_size"):
        config.vocab_size = n


def grow_answers(model, answers) -> list[str]:
    """ViLT-VQA: add answers its classifier does not have as new classes (rows of the last Linear); in place.

    Returns the added answers. New rows start at zero weight and the mean bias, so the old answers' scores
    are unchanged until training moves them."""
    import torch

    label2id = dict(model.config.label2id)
    new = [a for a in dict.fromkeys(answers) if a not in label2id]
    if not new:
        return []
    head = [m for m in model.classifier.modules() if isinstance(m, torch.nn.Linear)][-1]  # (A, D) answers x hidden
    n_old = head.out_features
    with torch.no_grad():
        w = torch.cat([head.weight.data, head.weight.data.new_zeros(len(new), head.in_features)])
        b = torch.cat([head.bias.data, head.bias.data.new_full((len(new),), float(head.bias.data.mean()))])
    head.weight, head.bias = torch.nn.Parameter(w), torch.nn.Parameter(b)
    head.out_features = n_old + len(new)
    id2label = {int(k): v for k, v in model.config.id2label.items()}
    for j, a in enumerate(new):
        id2label[n_old + j] = a
    model.config.id2label = id2label
    model.config.label2id = {v: k for k, v in id2label.items()}
    model.config.num_labels = len(id2label)
    return new
