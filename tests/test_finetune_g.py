"""What finetune tells after a run (tiny random-init models, PIL pictures): a run cut short says it was stopped,
the few-pictures CIDEr warning comes once, symbols such as emoji used as words become tokens, a bundled base is
checked on ordinary ShapesWorld scenes for what it forgot, and one picture's questions stay on one side of the
validation split."""
from __future__ import annotations

import warnings

import pytest
from PIL import Image, ImageDraw

import mmkit
from mmkit.testing import random_model_dir
from mmkit.tuning.concepts import concept_scenes, qa_triples

COLOURS = {"red": (220, 20, 20), "blue": (20, 20, 220), "orange": (255, 140, 0), "🟧": (255, 140, 0),
           "🟪": (128, 0, 160)}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny random-init BLIP captioner whose tokenizer spells 'orange' in pieces and emoji as [UNK]."""
    return str(random_model_dir("blip-caption", "tiny", tmp_path_factory.mktemp("tiny") / "m"))


def _pairs(colours: list[str]) -> list[tuple]:
    """(picture, caption) pairs of one circle each, placed by its index so that no two pictures are the same."""
    out = []
    for i, c in enumerate(colours):
        im = Image.new("RGB", (48, 48), "white")
        x, y = 4 + i % 8, 4 + (i // 8) % 8
        ImageDraw.Draw(im).ellipse([x, y, x + 30, y + 30], fill=COLOURS[c])
        out.append((im, f"a {c} circle"))
    return out


def test_a_run_cut_short_says_it_was_stopped_not_that_the_batch_was_too_large(tiny):
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] >= 2

    data = _pairs(["red", "orange"] * 4)
    ft = mmkit.finetune(tiny, data, epochs=400, batch_size=4, progress=False, should_stop=stop)
    note = next(n for n in ft.notes if "optimiser steps" in n)
    assert "stopped by the user (Ctrl-C or Stop) after 2 of 800 optimiser steps (0 of 400 epochs)" in note, note
    assert "batch_size=" not in note and "train longer" in note
    ft = mmkit.finetune(tiny, data, epochs=400, batch_size=4, progress=False, max_seconds=1e-3)
    note = next(n for n in ft.notes if "optimiser steps" in n)
    assert "stopped by the time limit (max_seconds=0.001) after 2 of 800 optimiser steps (1 of 400 epochs)" in note
    assert "batch_size=" not in note and "max_seconds=" in note.split(":")[-1]


def test_the_few_pictures_cider_warning_comes_once_not_every_epoch(tiny):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mmkit.finetune(tiny, _pairs(["red", "blue", "orange"] * 4), epochs=3, batch_size=4, val_split=0.34,
                       progress=False)
    little = [str(w.message)[:80] for w in caught if "says little" in str(w.message)]
    assert len(little) == 1, little


def test_emoji_used_as_words_become_tokens_and_a_lone_one_is_named(tiny, capsys):
    data = _pairs(["🟧", "🟪", "red"] * 4) + [(_pairs(["blue"])[0][0], "a blue circle 🙂")]
    ft = mmkit.finetune(tiny, data, val_data=data[:3], epochs=1, progress=False)
    assert {"🟧", "🟪"} <= set(ft.added_words), ft.added_words
    assert ft.model.processor.tokenizer.tokenize("a 🟧 circle") == ["a", "🟧", "circle"]
    assert "🟧" in ft.scores["new_words"]
    note = next((n for n in ft.notes if "occur only once" in n), "")
    assert "'🙂'" in note, ft.notes


def test_a_bundled_base_is_checked_on_ordinary_scenes_and_a_drop_is_a_warned_caveat(tiny, monkeypatch):
    from mmkit.tuning import forgetting

    notes = forgetting.forgetting_notes({"metric": "exact match", "before": 0.7, "after": 0.07, "n": 30,
                                         "seconds": 3.0})
    assert len(notes) == 1 and notes[0][1], notes
    assert "forgot" in notes[0][0] and "70% -> 7%" in notes[0][0] and "concept_scenes" in notes[0][0]
    assert forgetting.forgetting_notes({"metric": "exact match", "before": 0.7, "after": 0.68, "n": 30,
                                        "seconds": 3.0})[0][1] is False  # said, not warned
    monkeypatch.setattr(forgetting, "is_bundled", lambda spec: True)  # the tiny model stands in for a bundled one
    ft = mmkit.finetune(tiny, _pairs(["red", "orange"] * 4), epochs=1, progress=False)
    old = ft.scores["old_scenes"]
    assert old["n"] == forgetting.N_SCENES and old["metric"] == "exact match"
    assert 0 <= old["before"] <= 1 and 0 <= old["after"] <= 1 and old["seconds"] >= 0
    assert any(n.startswith("on 30 ordinary ShapesWorld scenes") for n in ft.notes), ft.notes
    assert "old_scenes" not in mmkit.finetune(tiny, _pairs(["red", "orange"] * 2), epochs=1,
                                              progress=False, old_scenes=False).scores


def test_one_picture_s_questions_stay_on_one_side_of_the_split(tiny):
    from mmkit.tuning.data import read_examples
    from mmkit.tuning.loop import _split
    from mmkit.tuning.result import leak_notes

    rows = qa_triples(concept_scenes(20, "orange", 0.5, seed=3))  # several questions per picture
    ex = read_examples(rows)
    assert len({e.key for e in ex.items}) == 20
    train, val = _split(ex, None, 0.2, 0, ())
    assert not {e.key for e in train} & {e.key for e in val} and leak_notes(train, val) == []
