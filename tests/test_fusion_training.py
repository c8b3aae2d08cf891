"""Short real training runs: the cross-attention model answers from the image and looks at the named object."""
import pytest
import torch

from mmkit.data import ShapesWorld
from mmkit.fusion.compare import Budget, Results, prepare, robustness, text_only_baseline
from mmkit.fusion.encoders import cell_accuracy, pretrain_image_encoder
from mmkit.fusion.model import FusionModel, FusionTrainConfig, evaluate, train
from mmkit.fusion.pointing import box_fraction, pointing_game

BUDGET = Budget(n_train=1000, n_test=200)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def vqa():
    return prepare("vqa", BUDGET)


def test_pretrained_image_encoder_knows_every_cell():
    enc = pretrain_image_encoder()
    acc = cell_accuracy(enc, ShapesWorld(100, split="test", objects=(1, 3))[:])
    assert min(acc.values()) > 0.9, acc


def test_box_fraction():
    f = box_fraction((8, 0, 24, 8), grid=8, size=64).reshape(8, 8)
    assert f[0, 1] == 1 and f[0, 2] == 1 and f.sum() == 2
    assert box_fraction((4, 4, 12, 12), grid=8, size=64).sum() == pytest.approx(1.0)  # 8x8 px = one cell of area
    # attention mass per patch, weighted by the patch's share in the box = mass_in_box of the upsampled map
    import numpy as np

    from mmkit.metrics import mass_in_box

    a = np.random.default_rng(0).dirichlet(np.ones(64))  # (64,) attention over an 8x8 grid
    heat = np.kron(a.reshape(8, 8), np.ones((8, 8)) / 64)  # (64, 64) image-sized
    box = (5, 11, 30, 47)
    assert mass_in_box(heat, box) == pytest.approx(float((a * box_fraction(box, 8, 64)).sum()))


def test_cross_attention_answers_and_points_at_the_named_object(vqa):
    _, tr, te = vqa
    torch.manual_seed(0)
    model = FusionModel("cross_attention", len(tr.classes))
    res = train(model, tr, FusionTrainConfig(steps=400))
    assert res.history[-1]["loss"] < res.history[0]["loss"] * 0.5
    acc = evaluate(model, te)
    baseline = text_only_baseline("vqa", BUDGET)
    assert acc["all"] > baseline + 0.1, (acc, baseline)  # it uses the image, not just the question
    score = pointing_game(model, te.scenes, te.image_emb)
    # attention of "red circle" in "what size is the red circle?" falls inside that object's box
    assert score["mass"] > 2.5 * score["mass_random"], score
    assert score["hit"] > score["hit_random"] + 0.4, score


def test_training_is_deterministic_and_stoppable(vqa):
    import threading

    _, tr, _ = vqa
    torch.manual_seed(0)
    a = FusionModel("gated", len(tr.classes))
    torch.manual_seed(0)
    b = FusionModel("gated", len(tr.classes))
    ra = train(a, tr, FusionTrainConfig(steps=20, log_every=10, seed=3))
    rb = train(b, tr, FusionTrainConfig(steps=20, log_every=10, seed=3))
    assert [p["loss"] for p in ra.history] == [p["loss"] for p in rb.history]
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    stop = threading.Event()
    stop.set()
    r = train(FusionModel("sum", len(tr.classes)), tr, FusionTrainConfig(steps=20), stop_event=stop)
    assert r.stopped and r.history == []


def test_late_fusion_falls_back_to_the_question_when_the_image_is_missing():
    tiny = Budget(n_train=600, n_test=150, steps=300)
    r = robustness(["late_mean"], "vqa", tiny, dropouts=(0.0,))
    assert isinstance(r, Results) and len(r) == 1
    row = r["late_mean"]
    assert all(0 <= row[k] <= 1 for k in ("clean", "no_image", "no_text", "noisy_image", "noisy_text"))
    baseline = text_only_baseline("vqa", tiny)
    assert row["no_image"] < row["clean"] - 0.05, r  # the image matters ...
    assert abs(row["no_image"] - baseline) < 0.08, (r, baseline)  # ... without it, the question prior is left
    assert row["no_text"] < row["no_image"], r  # without the question the model cannot know what is asked
    assert "<table>" in r._repr_html_() and "late_mean" in repr(r)
