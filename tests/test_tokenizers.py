"""Every bundled model's tokenizer (data/models/*/) reloads from its folder and round-trips ShapesWorld text."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from mmkit.config import models_dir  # noqa: E402

DIRS = sorted(p for p in models_dir().glob("*/") if (p / "config.json").exists())
SENTENCES = [
    "a small red circle to the left of a large blue square",
    "a large green triangle above a small blue circle",
    "how many objects are there?",
    "what color is the triangle?",
]


def _words(text: str) -> list[str]:
    return text.replace("?", " ?").split()


def test_tokenizer_training_is_deterministic():
    from mmkit.train.tokenizer import train_clip_bpe, train_wordpiece

    assert train_clip_bpe().backend_tokenizer.to_str() == train_clip_bpe().backend_tokenizer.to_str()
    assert train_wordpiece().backend_tokenizer.to_str() == train_wordpiece().backend_tokenizer.to_str()


def test_clip_bpe_round_trips_and_never_needs_unk(tmp_path):
    from transformers import AutoTokenizer

    from mmkit.data import ShapesWorld
    from mmkit.train.tokenizer import train_clip_bpe

    train_clip_bpe().save_pretrained(tmp_path)
    tok = AutoTokenizer.from_pretrained(tmp_path)
    assert type(tok).__name__ == "CLIPTokenizer"
    assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (0, 1, 1)
    for word in ShapesWorld.vocabulary():  # every ShapesWorld word is one token
        ids = tok(word)["input_ids"]
        assert len(ids) == 3 and tok.convert_ids_to_tokens(ids[1]) == word + "</w>", word
    ids = tok("a zebra played 42 tunes!")["input_ids"]  # unseen words are spelled out, not unknown
    assert tok.unk_token_id not in ids[1:-1]
    assert tok.decode(ids, skip_special_tokens=True).split()[:3] == ["a", "zebra", "played"]


@pytest.mark.skipif(not DIRS, reason="no bundled models under data/models yet")
@pytest.mark.parametrize("path", DIRS, ids=[p.name for p in DIRS])
def test_bundled_tokenizer_round_trips(path):
    from transformers import AutoProcessor, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    proc_tok = getattr(AutoProcessor.from_pretrained(path), "tokenizer", None)
    assert proc_tok is not None and proc_tok.get_vocab() == tok.get_vocab()
    for s in SENTENCES:
        enc = tok(s, return_special_tokens_mask=True)
        ids = enc["input_ids"]
        body = [i for i, special in zip(ids, enc["special_tokens_mask"]) if not special]  # the sentence's own tokens
        assert body and tok.unk_token_id not in body, (path.name, s, tok.convert_ids_to_tokens(ids))
        assert _words(tok.decode(ids, skip_special_tokens=True)) == _words(s), path.name
