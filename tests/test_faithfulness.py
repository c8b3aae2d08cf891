"""Pointing game and mass-in-box: the scoring itself, and the plumbing on random-init models."""
import numpy as np
import pytest
import torch

import mmkit
from mmkit.attention.faithfulness import faithfulness, randomized_copy
from mmkit.data.targets import target_objects
from mmkit.metrics import box_share, mass_in_box, pointing_hit


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
    table = faithfulness([m], mmkit.ShapesWorld(3, seed=0, split="test"), steps=2, n_random=1)
    assert [r.method for r in table] == ["attention", "rollout", "relevance", "attention"]
    assert table[-1].model.endswith("(re-initialised)") and all(r.words > 0 for r in table)
    for r in table:  # the perturbation columns beside pointing and mass
        assert all(np.isfinite([r.deletion, r.insertion, r.random_deletion, r.random_insertion]))
        assert 0 <= r.deletion <= 1 and r.score == "P(answer)"
        assert all(np.isfinite([r.text_deletion, r.text_insertion, r.text_random_deletion, r.text_random_insertion]))
        assert 0 <= r.text_deletion <= 1 and np.isfinite(r.text_deletion_margin)
    assert table[0].random_deletion == table[1].random_deletion  # one set of random curves per model
    assert table[0].text_random_deletion == table[1].text_random_deletion  # and one set over the tokens
    assert all(k in str(table) for k in ("pointing", "del AUC", "ins AUC", "txt del", "txt ins"))
    md = table.markdown().splitlines()
    assert len(md) == 2 + len(table) and md[2].count("|") == md[0].count("|") == 15
    plain = faithfulness([m], mmkit.ShapesWorld(1, seed=0, split="test"), sanity=False, perturb=False)
    assert all(np.isnan(r.deletion) for r in plain)
    r = randomized_copy(m)
    assert r.model is not m.model
    before, after = m.model.state_dict(), r.model.state_dict()
    matrices = [k for k in before if before[k].dim() >= 2 and before[k].std() > 0]
    assert matrices and all(not torch.allclose(before[k], after[k]) for k in matrices)  # every weight matrix re-drawn


# The floors below were set on the models shipped 2026-11-24; the retrained models' AUCs, from a run, are in
# docs/faithfulness.md (scripts/faithfulness_table.py). Then, on 12 held-out scenes (seed 11), deletion margin of the best method
# over the random curve's full drop: BLIP caption rollout 0.45, ViLT rollout 0.63, BLIP-VQA attention 0.26,
# BLIP-ITM attention 0.23, CLIP attention 0.17 / relevance 0.12, ALIGN similarity 0.15 (its Grad-CAM 0.03;
# ALIGN on 20 scenes of seeds 11, 12, 0: similarity 0.17, 0.17, 0.10); re-initialised, every margin is under
# 0.01 of the trained model's units.
BUNDLED = ["shapes-blip-caption", "shapes-vilt-vqa", "shapes-blip-vqa", "shapes-blip-itm", "shapes-clip", "shapes-align"]


@pytest.mark.parametrize("name", BUNDLED)
def test_deleting_the_mapped_patches_first_hurts_more_than_random(name, one_thread):
    """Perturbation test on held-out scenes: for the family's best method, deleting patches in the map's order
    lowers the model's own score faster than random orders; re-initialised, that margin is gone."""
    from mmkit.attention.faithfulness import perturb_scores

    if not (mmkit.config.models_dir() / name / "config.json").exists():
        pytest.skip(f"{name} is not built")
    m = mmkit.load_model(name, attention=True)
    scenes = mmkit.ShapesWorld(16, seed=11, split="test", objects=(1, 2))
    methods = mmkit.attention_maps(m, scenes[0].image, None if "caption" in name else "red circle").methods
    curves = perturb_scores(m, scenes, methods, steps=8, n_random=2)
    drop = {k: np.abs(p.random_deletion[:, 0] - p.random_deletion[:, -1]).mean() for k, p in curves.items()}
    best = max(curves, key=lambda k: curves[k].deletion_margin / drop[k])
    p = curves[best]
    assert p.deletion_margin > 0.06 * drop[best], {k: c.deletion_margin / drop[k] for k, c in curves.items()}
    assert (p.aucs("deletion") < p.aucs("random_deletion")).mean() >= 0.5  # on half the images or more, not one outlier
    r = perturb_scores(randomized_copy(m), scenes, [best], steps=8, n_random=2)[best]
    assert abs(r.deletion_margin) < 0.3 * p.deletion_margin  # the trained weights make the ordering matter


TEXT_BUNDLED = ["shapes-vilt-vqa", "shapes-blip-vqa", "shapes-blip-itm", "shapes-clip"]


@pytest.mark.parametrize("name", TEXT_BUNDLED)
def test_deleting_the_ranked_tokens_first_hurts_more_than_random(name, one_thread):
    """The same test over the question / caption / prompt tokens: the best method's text ranking deletes faster
    than random orders on held-out scenes; re-initialised, the margin is gone. (ALIGN is left out: its text
    margins are small and vary with the scenes: none on 12 scenes of seed 11, 0.066 against random's 0.086 for
    its similarity on docs/faithfulness.md's 16.)"""
    from mmkit.attention.faithfulness import perturb_scores
    from mmkit.attention.text_perturbation import TEXT_METHODS

    if not (mmkit.config.models_dir() / name / "config.json").exists():
        pytest.skip(f"{name} is not built")
    m = mmkit.load_model(name, attention=True)
    scenes = mmkit.ShapesWorld(8, seed=11, split="test", objects=(1, 2))
    curves = perturb_scores(m, scenes, list(TEXT_METHODS[m.spec.family]), "tokens", steps=4, n_random=2)
    drop = {k: np.abs(p.random_deletion[:, 0] - p.random_deletion[:, -1]).mean() for k, p in curves.items()}
    best = max(curves, key=lambda k: curves[k].deletion_margin / drop[k])
    p = curves[best]
    assert p.over == "tokens" and p.deletion_margin > 0.1 * drop[best], {k: c.deletion_margin for k, c in curves.items()}
    assert (p.aucs("deletion") < p.aucs("random_deletion")).mean() >= 0.5
    r = perturb_scores(randomized_copy(m), scenes, [best], "tokens", steps=4, n_random=2)[best]
    assert abs(r.deletion_margin) < 0.3 * p.deletion_margin
