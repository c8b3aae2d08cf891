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


@pytest.mark.parametrize("name,floor", [("shapes-clip", 0.60), ("shapes-align", 0.65)])
def test_zero_shot_on_held_out_looks(name, floor):
    acc = R.zero_shot_accuracy(_model(name), held_out(objects=1))
    assert acc >= floor, f"{name}: {acc:.3f}"  # ROBUSTNESS.md: 0.72 / 0.79 (targets 0.90 / 0.85)


def test_captions_name_colour_and_shape_on_held_out_looks():
    m = _model("shapes-blip-caption")
    assert R.caption_scores(m, held_out(objects=1))["names"] >= 0.70  # ROBUSTNESS.md: 0.83 (target 0.90)
    assert R.caption_scores(m, R.scenes("plain", 60, seed=SEED))["exact"] >= 0.95  # the plain look is kept


@pytest.mark.parametrize("name,floor", [("shapes-blip-vqa", 0.66), ("shapes-vilt-vqa", 0.66)])
def test_colour_and_shape_answers_on_held_out_looks(name, floor):
    acc = R.vqa_accuracy(_model(name), held_out())
    assert acc >= floor, f"{name}: {acc:.3f}"  # ROBUSTNESS.md: 0.81 / 0.81 (target 0.90)


def test_itm_separates_captions_from_negatives_on_held_out_looks():
    assert R.itm_auc(_model("shapes-blip-itm"), held_out()) >= 0.75  # ROBUSTNESS.md: 0.85 (target 0.95)


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


def test_align_grad_cam_points_at_its_object_on_held_out_looks():
    """ALIGN's Grad-CAM reads an 8x8 last feature map (the sixth EfficientNet stage unstrided). On these scenes it
    peaks in the named object's box for 0.28 of 148 words, against 0.08 for a uniform map; with the 4x4 map it
    shipped with before, 0.13."""
    from mmkit.attention.faithfulness import score_maps

    if not (mmkit.config.models_dir() / "shapes-align" / "config.json").exists():
        pytest.skip("shapes-align is not built")
    m = mmkit.load_model("shapes-align", attention=True)
    assert m.model.config.vision_config.strides == [1, 2, 2, 1, 1, 1, 1]
    score = score_maps(m, [s for style in TEST_STYLES for s in R.scenes(style, 8, seed=SEED)], "gradcam")
    assert score.words >= 100 and score.pointing > 2.5 * score.baseline, score


def test_the_bound_write_up_follows_its_runs(tmp_path, monkeypatch):
    """scripts/robustness_bound.py: the variants change one thing each, and the write-up's sentences come from
    the runs' numbers (here made up), not from text typed beside them."""
    from pathlib import Path

    from mmkit.testing import load_script

    root = Path(__file__).resolve().parents[1]
    monkeypatch.syspath_prepend(str(root / "scripts"))
    bound = load_script(root / "scripts" / "robustness_bound.py")
    shipped, v = __import__("build_robust").RECIPES["shapes-clip"], bound.variants()
    assert [r["steps"] for r in v["budget3"]] == [3 * r["steps"] for r in shipped]
    assert all(set(r["style"]) == set(s["style"]) | set(TEST_STYLES) and r["steps"] == s["steps"]
               for r, s in zip(v["oracle"], shipped))
    looks = bound.SEEN + TEST_STYLES
    monkeypatch.setattr(bound, "OUT", tmp_path)
    row = lambda seen, held: {**{s: seen for s in bound.SEEN}, **{s: held for s in TEST_STYLES}}  # noqa: E731
    (tmp_path / "inout.json").write_text(__import__("json").dumps(
        {"n": 10, "scores": {name: row(0.8, 0.7) for name in bound.MODELS}}))
    for tower, score in (("vit-stage1", 0.61), ("cnn", 0.93), ("cnn-mean", 0.42), ("align-stage1", 0.75),
                         ("align-max", 0.72), ("cnn-bn", 0.96), ("align-fine", 0.77), ("align-128", 0.83)):
        (tmp_path / f"tower-{tower}.json").write_text(__import__("json").dumps(
            {"tower": tower, "steps": 5, "parameters": 9, "cpu_seconds": 1.0, "final_loss": 0.5, "n": 10,
             "scores": {"plain": 1.0, **{s: score for s in looks}}}))
    canv = ["1024x512", "500x500"]
    (tmp_path / "aspect.json").write_text(__import__("json").dumps({"n": 4, "canvases": canv, "padded": [
        "shapes-blip-caption"], "scores": {
        "shapes-blip-caption": {f: {"all": a, **{c: a for c in canv}} for f, a in
                                (("as given", 0.5), ("4:3", 0.75), ("square", 0.625), ("crop", 0.875))},
        "shapes-clip": {f: {"all": a, **{c: a for c in canv}} for f, a in
                        (("as given", 0.5), ("4:3", 0.25), ("square", 0.5), ("crop", 1.0))}}}))
    text = bound.table()
    assert "| shapes-blip-caption | 4:3 | 0.75 | 0.75 | **0.75** |" in text
    assert ("names 0.50 of the drawings right squeezed, 0.75 padded to 4:3 and 0.62 padded to a square; padding to "
            "4:3 changes the models' scores by shapes-blip-caption +0.25, shapes-clip -0.25.") in text
    assert "every model gains: shapes-blip-caption 0.50 -> 0.88, shapes-clip 0.50 -> 1.00 (squeezed -> cropped" in text
    assert "score 0.80-0.80 (means over those looks); on the held-out looks 0.70-0.70" in text
    assert "the small CNN 0.93" in text and "0.42 against 0.93" in text
    assert "| cnn | 9 | 5 | 1 | 0.50 | 10 |" in text
    assert "0.72 against 0.75. Max pooling does not help this tower" in text
    assert "batch norm after each convolution: 0.96 held-out against 0.93 without" in text
    assert "(against 0.75): its sixth stage unstrided (an 8x8 last map instead of 4x4) 0.77;" in text
    assert "Resolution is the lever: the best of these (align-128)" in text
    assert "added to its training: held-out mean" not in text  # no oracle run, no oracle sentence


def drawn_shapes(draw_shape):
    """One shape that fills most of the picture, drawn with PIL's own primitives (not ShapesWorld's renderer), as a
    learner draws one: 9 colour-shape pairs x white, dark or cream background x 60% or 75% of the short side x a
    200 x 150 or 128 x 128 canvas (108 pictures)."""
    import itertools

    rgb = draw_shape.known
    pictures, truth = [], []
    for shape, colour, bg, frac, size in itertools.product(
            ("circle", "square", "triangle"), rgb, ((255, 255, 255), (25, 25, 35), (230, 220, 200)), (0.6, 0.75),
            ((200, 150), (128, 128))):
        pictures.append(draw_shape(shape, rgb[colour], bg, size, frac))
        truth.append(f"{colour} {shape}")
    return pictures, truth


def test_one_big_drawn_shape_is_one_shape(draw_shape):
    # the models before big shapes in training (ShapesWorld(big_shapes=...)) invented a second object ("a large
    # red circle above a large red square") for most of these, and counted "one" about half the time
    pictures, truth = drawn_shapes(draw_shape)
    caps = mmkit.caption(_model("shapes-blip-caption"), pictures)
    relations = (" above ", " below ", " left of ", " right of ")
    right = [t in c and not any(w in c for w in relations) for c, t in zip(caps, truth)]
    assert sum(right) / len(right) >= 0.8, list(zip(caps, truth))  # measured: 0.91 (before: 0.20)
    for name in ("shapes-blip-vqa", "shapes-vilt-vqa"):  # measured: 0.94 and 0.93 (before: 0.55 and 0.81)
        answers = mmkit.answer(_model(name), pictures, "how many objects are there?")
        assert answers.count("one") / len(answers) >= 0.8, (name, answers)
    labels = sorted(set(truth))
    # zero-shot, measured: CLIP 0.82, ALIGN 1.00 (with its 4x4 map before: 0.94)
    for name, floor in (("shapes-clip", 0.7), ("shapes-align", 0.95)):
        probs = mmkit.zero_shot(_model(name), pictures, labels)
        right = [max(p, key=p.get) == t for p, t in zip(probs, truth)]
        assert sum(right) / len(right) >= floor, name
