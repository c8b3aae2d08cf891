"""The bundled models on looks they never trained on: held-out backgrounds, renderers and canvas sizes.

Each test scores a model through the public task functions on ShapesWorld(split="test", style=...) scenes of
every held-out style (textures, photos never used in training, a hand-drawn renderer, 32-40 px and
320-512 px canvases), seed 3, so the scenes differ from the ones data/models/ROBUSTNESS.md reports. The
floors sit a few points under what the shipped models score there; the issue's targets, where a model
falls short of them, are written next to each floor.
"""
import pytest

import mmkit
from mmkit.data.styles import TEST_STYLES
from mmkit.train import robustness as R

N = 16  # held-out scenes per style (5 styles)
SEED = 3


def _model(name):
    if not (mmkit.config.models_dir() / name / "config.json").exists():
        pytest.skip(f"{name} is not built")
    return mmkit.load_model(name)


def held_out(objects=(1, 2)):
    return [s for style in TEST_STYLES for s in R.scenes(style, N, objects=objects, seed=SEED)]


@pytest.mark.parametrize("name,floor", [("shapes-clip", 0.55), ("shapes-align", 0.62)])
def test_zero_shot_on_held_out_looks(name, floor):
    acc = R.zero_shot_accuracy(_model(name), held_out(objects=1))
    assert acc >= floor, f"{name}: {acc:.3f}"  # ROBUSTNESS.md: 0.66 / 0.74 (targets 0.90 / 0.85)


def test_captions_name_colour_and_shape_on_held_out_looks():
    m = _model("shapes-blip-caption")
    assert R.caption_scores(m, held_out(objects=1))["names"] >= 0.65  # ROBUSTNESS.md: 0.80 (target 0.90)
    assert R.caption_scores(m, R.scenes("plain", 60, seed=SEED))["exact"] >= 0.95  # the plain look is kept


@pytest.mark.parametrize("name,floor", [("shapes-blip-vqa", 0.58), ("shapes-vilt-vqa", 0.62)])
def test_colour_and_shape_answers_on_held_out_looks(name, floor):
    acc = R.vqa_accuracy(_model(name), held_out())
    assert acc >= floor, f"{name}: {acc:.3f}"  # ROBUSTNESS.md: 0.73 / 0.74 (target 0.90)


def test_itm_separates_captions_from_negatives_on_held_out_looks():
    assert R.itm_auc(_model("shapes-blip-itm"), held_out()) >= 0.70  # ROBUSTNESS.md: 0.80 (target 0.95)


@pytest.mark.parametrize("name", ["shapes-blip-caption", "shapes-vilt-vqa"])
def test_pictures_with_no_shapes_get_an_honest_answer(name):
    empty = [s for style in TEST_STYLES for s in R.scenes(style, 8, seed=SEED, empty=1.0)]
    assert R.no_shape_score(_model(name), empty) >= 0.6


@pytest.mark.parametrize("name", ["shapes-blip-caption", "shapes-vilt-vqa"])
def test_word_maps_still_point_at_their_object_on_held_out_looks(name):
    from mmkit.attention.faithfulness import score_maps

    if not (mmkit.config.models_dir() / name / "config.json").exists():
        pytest.skip(f"{name} is not built")
    m = mmkit.load_model(name, attention=True)
    scenes = [s for style in TEST_STYLES for s in R.scenes(style, 5, objects=1, seed=SEED)]
    score = score_maps(m, scenes, "attention")
    assert score.words >= 20 and score.pointing >= 0.7 and score.pointing > 4 * score.baseline, score
