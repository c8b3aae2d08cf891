"""Pointing game and mass-in-box: the scoring itself, and the plumbing on random-init models."""
import numpy as np
import torch

import mmkit
from mmkit.attention.faithfulness import (target_objects, box_share, faithfulness, mass_in_box, pointing_hit,
                                          randomized_copy)


def test_scores_of_planted_maps():
    heat = np.zeros((10, 10))
    heat[2:4, 5:8] = 1.0  # all mass inside the box (x 5..8, y 2..4)
    box = (5, 2, 8, 4)
    assert pointing_hit(heat, box) and mass_in_box(heat, box) == 1.0
    assert not pointing_hit(heat, (0, 0, 3, 3)) and mass_in_box(heat, (0, 0, 3, 3)) == 0.0
    assert box_share(box, (10, 10)) == 0.06
    assert abs(mass_in_box(np.ones((10, 10)), box) - 0.06) < 1e-9  # a uniform map scores the box share


def test_words_are_matched_to_the_object_they_name():
    scene = mmkit.ShapesWorld(40, seed=0, objects=2)[0]
    a, b = scene.objects
    words = scene.caption.split()
    pairs = target_objects(scene, words)
    assert {(words[i], o.name) for i, o in pairs} >= {(a.color, a.name), (a.shape, a.name), (b.color, b.name)}
    q = next(q for q in scene.qa if q.kind == "color")
    pairs = target_objects(scene, q.question.split())
    assert len(pairs) == 1 and pairs[0][1].shape in q.question


def test_faithfulness_table_and_sanity_rows(model_dirs):
    m = mmkit.load_model(model_dirs("vilt-vqa"))
    table = faithfulness([m], mmkit.ShapesWorld(3, seed=0, split="test"))
    assert [r.method for r in table] == ["attention", "rollout", "attention"]
    assert table[-1].model.endswith("(re-initialised)") and all(r.words > 0 for r in table)
    assert "pointing" in str(table)
    r = randomized_copy(m)
    assert r.model is not m.model
    before, after = m.model.state_dict(), r.model.state_dict()
    matrices = [k for k in before if before[k].dim() >= 2 and before[k].std() > 0]
    assert matrices and all(not torch.allclose(before[k], after[k]) for k in matrices)  # every weight matrix re-drawn
