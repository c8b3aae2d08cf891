"""The ViLT training recipe's targets: patch labels and the word-grounding labels of question words."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

torch = pytest.importorskip("torch")

from mmkit.data import ShapesWorld  # noqa: E402
from mmkit.train import vilt  # noqa: E402


@pytest.fixture(scope="module")
def processor():
    return vilt.build_processor()


def _labelled(processor, data, row):
    tokens = processor.tokenizer.convert_ids_to_tokens(data["input_ids"][row].tolist())
    return [(t, int(o)) for t, o in zip(tokens, data["word_obj"][row]) if o != -100]


def test_word_targets_name_the_one_object_a_word_refers_to(processor):
    scenes = [s for s in ShapesWorld(40, seed=0, size=64, objects=(2, 2)) if len({o.color for o in s.objects}) == 2
              and len({o.shape for o in s.objects}) == 2][:3]
    data = vilt.encode_qa(processor, scenes)
    seen = 0
    for row, q in enumerate(q for s in scenes for q in s.qa):
        scene = scenes[int(data["scene"][row])]
        for token, label in _labelled(processor, data, row):
            named = [o for o in scene.objects if token in (o.color, o.shape)]
            assert len(named) == 1 and label == vilt.object_label(named[0]), (q.question, token)
            seen += 1
    assert seen >= 10


def test_words_that_name_no_single_object_are_unlabelled(processor):
    scene = next(s for s in ShapesWorld(200, seed=1, size=64, objects=(2, 2))
                 if s.objects[0].color == s.objects[1].color and s.objects[0].shape != s.objects[1].shape)
    data = vilt.encode_qa(processor, [scene])
    colour = scene.objects[0].color
    ambiguous = 0
    for row in range(len(scene.qa)):
        tokens = processor.tokenizer.convert_ids_to_tokens(data["input_ids"][row].tolist())
        for pos, (token, label) in enumerate(zip(tokens, data["word_obj"][row].tolist())):
            nxt = tokens[pos + 1] if pos + 1 < len(tokens) else ""
            if token == colour and nxt in ("object", "objects"):  # "the red object": there are two
                assert label == -100
                ambiguous += 1
            if token in ("what", "is", "[CLS]", "?", "[PAD]"):
                assert label == -100
    assert ambiguous >= 1


def test_object_labels_match_patch_labels():
    scene = ShapesWorld(1, seed=2, size=64, objects=(1, 1))[0]
    cells = vilt.patch_labels(scene, 8)
    assert set(cells.flatten().tolist()) == {0, vilt.object_label(scene.objects[0])}
    assert 1 <= vilt.object_label(scene.objects[0]) < vilt.N_PATCH_LABELS


def test_training_steps_use_both_auxiliary_losses(processor, monkeypatch):
    calls = []
    original = vilt._forward_with_aux_losses

    def spy(*args):
        logits, aux, word = original(*args)
        calls.append((aux.item(), word.item()))
        return logits, aux, word

    monkeypatch.setattr(vilt, "_forward_with_aux_losses", spy)
    arch = vilt.ViltShapesConfig(hidden=32, heads=2, mlp=64, layers=1)
    vilt.train_vilt_vqa(arch, vilt.ViltTrainConfig(steps=3, batch_size=16, n_train=30), progress=False, processor=processor)
    assert len(calls) == 3 and all(a > 0 for a, _ in calls) and any(w > 0 for _, w in calls)
