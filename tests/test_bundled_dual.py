"""Known-answer tests on the bundled dual encoders data/models/shapes-clip and shapes-align.

Each is evaluated on a fresh held-out sample (split="test", seed 1; the model cards use seed 0):
180 one-object scenes for 9-way zero-shot, 100 two-object scenes with distinct captions for retrieval.
"""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import mmkit  # noqa: E402
from mmkit.config import models_dir  # noqa: E402
from mmkit.data import ShapesWorld  # noqa: E402
from mmkit.train.contrastive import LABELS  # noqa: E402  the 9 colour x shape labels

# name -> (family, HF class, zero-shot target, image->text and text->image R@1 target or None)
MODELS = {
    "shapes-clip": ("clip", "CLIPModel", 0.95, 0.60),
    "shapes-align": ("align", "AlignModel", 0.90, None),
}


def _dir(name):
    return models_dir() / name


def _skip_missing(name):
    if not (_dir(name) / "config.json").exists():
        pytest.skip(f"{_dir(name)} not built; run scripts/build_{name.split('-')[1]}.py")


@pytest.fixture(scope="module")
def zs_scenes():
    return ShapesWorld(180, seed=1, objects=1, split="test")


@pytest.fixture(scope="module")
def gallery():
    from mmkit.train.contrastive import distinct_caption_scenes

    return distinct_caption_scenes(100, seed=1, objects=2, split="test")


@pytest.fixture(scope="module", params=list(MODELS))
def m(request):
    _skip_missing(request.param)
    return mmkit.load_model(request.param, device="cpu", dtype="fp32")


@pytest.mark.parametrize("name", list(MODELS))
def test_directory_contract(name):
    _skip_missing(name)
    family, cls, zs_target, r1_target = MODELS[name]
    d = _dir(name)
    meta = json.loads((d / "mmkit.json").read_text())
    assert meta["name"] == name and meta["family"] == family and meta["class"] == cls
    assert meta["trained_on"] == "ShapesWorld" and meta["image_size"] == 64 and meta["zero_shot_template"] == "a {}"
    assert meta["heldout"]["zero_shot_acc"] >= zs_target
    assert {"image_to_text_r@1", "text_to_image_r@1", "negative_auc"} <= set(meta["heldout"])
    if r1_target is not None:
        assert min(meta["heldout"]["image_to_text_r@1"], meta["heldout"]["text_to_image_r@1"]) >= r1_target
    assert meta["train_seconds"] > 0 and meta["recipe"]["steps"] > 0 and meta["params"] > 0
    readme = (d / "README.md").read_text()
    assert f"{meta['heldout']['zero_shot_acc']:.3f}" in readme and "split='test'" in readme
    assert json.loads((d / "config.json").read_text())["architectures"] == [cls]
    assert (d / "model.safetensors").exists() and (d / "tokenizer.json").exists()
    assert sum(f.stat().st_size for f in d.iterdir()) < 8 * 2**20  # small enough to ship


def test_loads_as_the_real_classes(m):
    family, cls, _, _ = MODELS[m.spec.name]
    assert m.spec.family == family and m.spec.source == "bundled" and type(m.model).__name__ == cls
    assert m.spec.zero_shot_template == "a {}"
    expected = {"clip": "CLIPProcessor", "align": "AlignProcessor"}[family]
    assert type(m.processor).__name__ == expected
    px = m.processor.image_processor(images=ShapesWorld(1, seed=0).images, return_tensors="pt")["pixel_values"]
    assert tuple(px.shape) == (1, 3, 64, 64)
    if family == "clip":  # text pooling must use the tokenizer's real end-of-text id, not the legacy argmax
        tc, tok = m.model.config.text_config, m.processor.tokenizer
        assert tc.eos_token_id == tok.eos_token_id != 2 and tc.bos_token_id == tok.bos_token_id
        assert m.model.config.vision_config.image_size // m.model.config.vision_config.patch_size >= 8


def test_zero_shot_heldout(m, zs_scenes):
    _, _, target, _ = MODELS[m.spec.name]
    probs = mmkit.zero_shot(m, zs_scenes.images, LABELS)  # the model's own template, "a {}"
    pred = [max(p, key=p.get) for p in probs]
    acc = np.mean([p == s.objects[0].name for p, s in zip(pred, zs_scenes)])
    assert acc >= target, f"{m.spec.name}: zero-shot accuracy {acc:.3f} < {target}"
    assert abs(sum(probs[0].values()) - 1) < 1e-4


def test_caption_retrieval_heldout(m, gallery):
    from mmkit.metrics import recall_at_k, roc_auc

    _, _, _, target = MODELS[m.spec.name]
    sim = mmkit.match(m, [s.image for s in gallery], [s.caption for s in gallery])  # (100, 100)
    i2t, t2i = recall_at_k(sim, 1), recall_at_k(sim.T, 1)
    floor = target if target is not None else 0.2  # ALIGN has no target; still far above chance (0.01)
    assert min(i2t, t2i) >= floor, f"{m.spec.name}: R@1 image->text {i2t:.2f}, text->image {t2i:.2f} < {floor}"
    neg = mmkit.match(m, [s.image for s in gallery], [s.negative for s in gallery], paired=True)  # (100,)
    assert roc_auc(sim.diagonal().numpy(), neg.numpy()) > 0.7  # the true caption beats its attribute swap (chance: 0.5)


def test_similarity_tracks_the_scene(m):
    scene = ShapesWorld(1, seed=3, objects=1, split="test")[0]
    o = scene.objects[0]
    wrong_color = next(c for c in ("red", "green", "blue") if c != o.color)
    sim = mmkit.match(m, scene.image, [f"a {o.color} {o.shape}", f"a {wrong_color} {o.shape}"])
    assert sim.shape == (1, 2) and sim[0, 0] > sim[0, 1]
