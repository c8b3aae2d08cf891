"""What finetune checks and tells before its scores are trusted (tiny random-init models, PIL pictures): its options,
a validation split that holds out pictures of the new words, early stopping off on a tiny validation set, validation
pictures that are training pictures, and new words too rare to become tokens."""
from __future__ import annotations

import re

import pytest
from PIL import Image, ImageDraw

import mmkit
from mmkit.testing import random_model_dir

COLOURS = {"red": (220, 20, 20), "blue": (20, 20, 220), "orange": (255, 140, 0), "purple": (128, 0, 160)}
SHAPES = ("circle", "square", "triangle")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny random-init BLIP captioner whose tokenizer spells 'orange' and 'purple' in pieces."""
    return str(random_model_dir("blip-caption", "tiny", tmp_path_factory.mktemp("tiny") / "m"))


def _draw(colour: str, shape: str, i: int) -> Image.Image:
    """A 48 px picture of one shape, placed by i so that no two pictures are the same."""
    im = Image.new("RGB", (48, 48), "white")
    x, y = 4 + i % 8, 4 + (i // 8) % 8
    box, fill = [x, y, x + 30, y + 30], COLOURS[colour]
    d = ImageDraw.Draw(im)
    if shape == "circle":
        d.ellipse(box, fill=fill)
    elif shape == "square":
        d.rectangle(box, fill=fill)
    else:
        d.polygon([(x + 15, y), (x + 30, y + 30), (x, y + 30)], fill=fill)
    return im


def _pairs(colours: list[str], start: int = 0) -> list[tuple]:
    """(picture, caption) pairs, one per colour, shapes in turn."""
    return [(_draw(c, SHAPES[i % 3], start + i), f"a large {c} {SHAPES[i % 3]}") for i, c in enumerate(colours)]


@pytest.mark.parametrize("name,value,allowed", [
    ("lr", -1, "a finite number greater than 0"), ("lr", "1e-3", "a finite number greater than 0"),
    ("epochs", 2.5, "a whole number from 1"), ("epochs", 0, "a whole number from 1"),
    ("batch_size", 0, "a whole number from 1"), ("val_split", 0.0, "a finite number greater than 0 and at most 0.9"),
    ("val_split", 1.0, "a finite number greater than 0 and at most 0.9"), ("lora_r", 0, "a whole number from 1"),
    ("max_seconds", -5, "a finite number greater than 0"), ("patience", 0, "a whole number from 1"), ("lora", 1, "True or False"),
    ("new_words", "orange", "'auto'")])
def test_a_bad_option_names_itself_its_value_and_the_allowed_values_before_any_model_work(name, value, allowed):
    # the model and the data do not exist: the option is checked before either is looked at
    with pytest.raises(mmkit.InputError, match=re.escape(f"{name}={value!r} is not allowed") + ".*"
                       + re.escape(f"{name} must be {allowed}")):
        mmkit.finetune("no-such-model", "no/such/folder", **{"lora": True, name: value})


def test_the_default_split_holds_out_a_picture_of_each_new_word(tiny):
    # 30 pictures, 3 orange and 3 purple: a random 10% (3 pictures) seldom has both
    data = _pairs(["red", "blue"] * 12 + ["orange", "purple"] * 3)
    ft = mmkit.finetune(tiny, data, epochs=1, progress=False)
    assert ft.scores["n_val"] == 3 and {"orange", "purple"} <= set(ft.added_words)
    for word in ("orange", "purple"):
        assert any(word in e.text for e in ft.val), [e.text for e in ft.val]
        assert ft.scores["new_words"][word]["on"] == "validation"


def test_a_new_word_on_two_pictures_keeps_both_for_training():
    from mmkit.tuning.loop import _held_keys

    has = {"orange": {"o1", "o2"}, "purple": {"p1", "p2", "p3"}}
    keys = ["o1", "o2", "p1", "p2", "p3", "r1", "r2", "r3"]
    held = _held_keys(keys, has, 3)
    assert len(held) == 3 and not held & has["orange"] and len(held & has["purple"]) == 1


def test_a_tiny_validation_set_turns_early_stopping_off_and_says_why_a_word_was_not_learnt(tiny):
    ft = mmkit.finetune(tiny, _pairs(["red", "blue", "orange"] * 4), epochs=3, patience=1, batch_size=8, lr=1e-3,
                        progress=False)
    assert len(ft.history) == 4 and ft.scores["best_epoch"] == 3 and ft.stopped == "finished"
    assert any(n.startswith("early stopping was off and the last epoch (3) is kept") for n in ft.notes), ft.notes
    if ft.scores["new_words"]["orange"]["produced"] < ft.scores["new_words"]["orange"]["of"]:
        assert any("training ran only 6 optimiser steps" in n and "raise epochs=" in n for n in ft.notes), ft.notes


def test_validation_pictures_that_are_training_pictures_are_flagged(tiny, tmp_path):
    data = _pairs(["red", "blue", "orange"] * 2)
    for folder in ("train", "val"):
        (tmp_path / folder).mkdir()
    rows = ["image,caption"]
    for i, (im, cap) in enumerate(data):
        im.save(tmp_path / "train" / f"{i}.png")
        rows.append(f"{i}.png,{cap}")
    (tmp_path / "train" / "captions.csv").write_text("\n".join(rows) + "\n")
    data[0][0].save(tmp_path / "val" / "copy_a.png")  # training pictures under other names
    data[1][0].save(tmp_path / "val" / "copy_b.png")
    _draw("purple", "circle", 40).save(tmp_path / "val" / "new.png")
    (tmp_path / "val" / "captions.csv").write_text(
        f"image,caption\ncopy_a.png,{data[0][1]}\ncopy_b.png,{data[1][1]}\nnew.png,a large purple circle\n")
    ft = mmkit.finetune(tiny, tmp_path / "train", val_data=tmp_path / "val", epochs=1, progress=False)
    assert any(n.startswith("2 of the 3 validation pictures are also training pictures") for n in ft.notes), ft.notes
    with pytest.warns(UserWarning, match="6 of the 6 validation pictures are also training pictures"):
        same = mmkit.finetune(tiny, tmp_path / "train", val_data=tmp_path / "train", epochs=1, progress=False)
    assert "not held-out scores" in str(same)


def test_new_words_that_occur_once_are_named_with_the_fix(tiny, capsys):
    once = ["cherry", "kiwi", "lemon", "mango", "olive", "pink", "plum", "ruby", "violet", "zebra"]
    data = _pairs(["orange", "red"] * 4) + [(_draw("blue", "circle", 20 + i), f"a {w} circle")
                                            for i, w in enumerate(once)]
    ft = mmkit.finetune(tiny, data, val_data=data[:2], epochs=1, progress=False)
    note = next((n for n in ft.notes if "occur only once" in n), "")
    shown = ", ".join(map(repr, once[:8]))
    assert note.startswith("10 new word(s) occur only once") and f"{shown}, ...;" in note, ft.notes
    assert "add more examples with them" in note and "zebra" not in note and "orange" not in note
    assert "orange" in ft.added_words and not set(once) & set(ft.added_words)
    assert f"finetune: {note}" in capsys.readouterr().err and f"note: {note}" in str(ft)


def test_the_default_batch_size_gives_a_small_data_set_enough_steps(tiny):
    """batch_size=None: 16, or fewer (down to 4) so that an epoch has 8 steps; 27 pictures in batches of 16 made 2
    steps an epoch, too few to learn a new word in 8 epochs."""
    from mmkit.tuning.loop import auto_batch

    assert [auto_batch(n) for n in (1, 27, 64, 100, 128, 10_000)] == [4, 4, 8, 13, 16, 16]
    steps = []
    ft = mmkit.finetune(tiny, _pairs(["red", "blue"] * 9), epochs=1, lr=1e-3, progress=False,
                        callback=lambda r: steps.append(r["step"]) if "step" in r else None)
    n_train = 18 - ft.scores["n_val"]
    assert steps == list(range(1, -(-n_train // 4) + 1))  # batches of 4: one step per 4 pictures (was one step)
