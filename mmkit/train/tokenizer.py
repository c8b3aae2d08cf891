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

    Every ShapesWorld word is a whole token; other words split into characters, never [UNK].
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertTokenizerFast

    texts = list(texts) if texts is not None else shapes_corpus()
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=BERT_SPECIALS,
                                        initial_alphabet=ALPHABET, min_frequency=1)
    tok.train_from_iterator(texts, trainer)
    # continuation pieces for every letter, so unseen words are spelled out instead of becoming [UNK]
    vocab = tok.get_vocab()
    for c in string.ascii_lowercase + string.digits:
        if "##" + c not in vocab:
            vocab["##" + c] = len(vocab)
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
