"""The WordPiece tokenizer builder: deterministic, every ShapesWorld word whole, round-trips through save/load."""
from transformers import AutoTokenizer

from mmkit.data import ShapesWorld
from mmkit.train.tokenizer import train_wordpiece


def test_deterministic_whole_words_and_round_trip(tmp_path):
    a, b = train_wordpiece(), train_wordpiece()
    assert a.get_vocab() == b.get_vocab()
    assert all(len(a.tokenize(w)) == 1 for w in ShapesWorld.vocabulary())
    a.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    s = "is the small red circle to the left of the large blue square?"
    ids = loaded(s)["input_ids"]
    assert loaded.unk_token_id not in ids and loaded.decode(ids, skip_special_tokens=True) == s
    assert loaded.unk_token_id not in loaded("a zebra!")["input_ids"]  # unseen words are spelled out
