"""Tokenizers for the bundled models, trained on ShapesWorld text with the `tokenizers` library.

transformers 5 silently ignores `BertTokenizerFast(vocab_file=...)`, so tokenizers are built as
`tokenizers.Tokenizer` objects, wrapped, saved with `save_pretrained` and reloaded from the folder.
"""
from __future__ import annotations

import string
from collections.abc import Iterable

BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
ALPHABET = list(string.ascii_lowercase + string.digits + string.punctuation)


def shapes_corpus(n: int = 2000, seed: int = 0) -> list[str]:
    """Captions, negatives, questions and answers of n ShapesWorld scenes (1-3 objects)."""
    from ..data import ShapesWorld

    lines = []
    for s in ShapesWorld(n, seed=seed, objects=(1, 3)):
        lines += [s.caption, s.negative] + [q.question for q in s.qa] + [q.answer for q in s.qa]
    return lines


def train_wordpiece(texts: Iterable[str] | None = None, vocab_size: int = 200):
    """A BERT-style WordPiece tokenizer (lower-cased, [CLS] ... [SEP]) as a transformers BertTokenizer.

    The vocabulary is learned from the corpus deterministically: the special tokens, every character
    (alone and as a '##' continuation), then the corpus's words by frequency (ties alphabetical) up to
    vocab_size. With the default corpus every ShapesWorld word is one token; other words are spelled
    out in characters, never [UNK]. (The `tokenizers` WordPiece trainer breaks frequency ties
    differently from run to run, so it is not used here.)
    """
    from collections import Counter

    from tokenizers import decoders, normalizers, pre_tokenizers, processors
    from transformers import BertTokenizerFast

    from ..data import ShapesWorld

    texts = list(texts) if texts is not None else shapes_corpus() + ShapesWorld.vocabulary()
    norm, pre = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
    counts = Counter(w for t in texts for w, _ in pre.pre_tokenize_str(norm.normalize_str(t)))
    chars = ALPHABET + ["##" + c for c in string.ascii_lowercase + string.digits]
    vocab: dict[str, int] = {}
    for w in BERT_SPECIALS + chars + [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]:
        if len(vocab) >= max(vocab_size, len(BERT_SPECIALS) + len(chars)):
            break
        vocab.setdefault(w, len(vocab))
    tok = _rebuild_wordpiece(vocab)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    tok.decoder = decoders.WordPiece()
    return BertTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                             sep_token="[SEP]", mask_token="[MASK]", model_max_length=40)


def _rebuild_wordpiece(vocab: dict[str, int]):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return tok


CLIP_SPECIALS = ["<|startoftext|>", "<|endoftext|>"]
# CLIP's own pre-tokenizer: specials, contractions, letter runs, single digits, punctuation runs
CLIP_SPLIT = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


def train_clip_bpe(texts: Iterable[str] | None = None, vocab_size: int = 600, model_max_length: int = 32):
    """A CLIP-style byte-level BPE tokenizer (lower-cased, words end in '</w>') as a transformers CLIPTokenizer.

    Ids: <|startoftext|> = 0, <|endoftext|> = 1 (also pad and unk, as in CLIP), then the 256 byte symbols,
    the 256 byte symbols with '</w>', then the merges. Every byte string is encodable, so nothing is unknown.
    """
    import json

    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import CLIPTokenizer

    from ..data import ShapesWorld

    # the corpus plus every vocabulary word ("four", "it" never occur in it), so each is one token
    texts = list(texts) if texts is not None else shapes_corpus() + ShapesWorld.vocabulary()
    tok = Tokenizer(models.BPE(continuing_subword_prefix="", end_of_word_suffix="</w>", unk_token=CLIP_SPECIALS[1]))
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(CLIP_SPLIT), behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False)])
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=CLIP_SPECIALS, initial_alphabet=alphabet,
                                  end_of_word_suffix="</w>", min_frequency=1, show_progress=False)
    tok.train_from_iterator(texts, trainer)
    model = json.loads(tok.to_str())["model"]
    learned = [w for w in sorted(model["vocab"], key=model["vocab"].get) if w not in CLIP_SPECIALS]
    symbols = sorted(alphabet)
    vocab: dict[str, int] = {}
    for w in CLIP_SPECIALS + symbols + [s + "</w>" for s in symbols] + learned:
        vocab.setdefault(w, len(vocab))
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=model_max_length)
