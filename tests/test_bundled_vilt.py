"""Known-answer tests on the bundled ViLT VQA model data/models/shapes-vilt-vqa (built by scripts/build_vilt.py)."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import mmkit  # noqa: E402
from mmkit.config import models_dir  # noqa: E402
from mmkit.data import ANSWERS, QUESTION_KINDS, ShapesWorld  # noqa: E402

NAME = "shapes-vilt-vqa"
DIR = models_dir() / NAME
TARGET = 0.85  # held-out VQA accuracy the bundled model must reach

pytestmark = pytest.mark.skipif(not (DIR / "config.json").exists(), reason=f"{DIR} not built; run scripts/build_vilt.py")


@pytest.fixture(scope="module")
def m():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)  # ViLT shuffles image tokens with the global generator; answers must not care
    return mmkit.load_model(str(DIR), device="cpu", dtype="fp32")


def test_directory_contract():
    meta = json.loads((DIR / "mmkit.json").read_text())
    assert meta["family"] == "vilt-vqa" and meta["class"] == "ViltForQuestionAnswering"
    assert meta["trained_on"] == "ShapesWorld" and meta["image_size"] == 64
    assert meta["heldout"]["vqa_accuracy"] >= TARGET
    assert {f"vqa_accuracy_{k}" for k in QUESTION_KINDS} <= set(meta["heldout"])
    assert meta["train_seconds"] > 0 and meta["recipe"]["steps"] > 0
    readme = (DIR / "README.md").read_text()
    assert f"{meta['heldout']['vqa_accuracy']:.3f}" in readme and "split=\"test\"" in readme
    assert sum(f.stat().st_size for f in DIR.iterdir()) < 8 * 2**20  # small enough to ship


def test_config_labels_are_the_answer_vocabulary(m):
    cfg = m.model.config
    assert m.spec.family == "vilt-vqa" and type(m.model).__name__ == "ViltForQuestionAnswering"
    assert cfg.num_labels == len(ANSWERS)
    assert [cfg.id2label[i] for i in range(len(ANSWERS))] == list(ANSWERS)
    assert all(cfg.label2id[a] == i for i, a in enumerate(ANSWERS))


def test_tokenizer_round_trips(m):
    tok = m.processor.tokenizer
    q = "is the red circle to the left of the blue square?"
    ids = tok(q)["input_ids"]
    assert tok.unk_token_id not in ids
    assert tok.decode(ids, skip_special_tokens=True).replace(" ?", "?") == q


@pytest.mark.parametrize("wh, grid", [((64, 64), (8, 8)), ((96, 64), (8, 12)), ((64, 96), (12, 8)),
                                      ((32, 32), (8, 8)), ((128, 64), (6, 13))])
def test_processor_patch_grid(m, wh, grid):
    """Shortest side -> 64 px, longest capped at 1333/800 of it, both floored to the patch size (8)."""
    from PIL import Image

    enc = m.processor(images=Image.new("RGB", wh, (200, 30, 30)), text="is there a red circle?", return_tensors="pt")
    patch = m.model.config.patch_size
    assert tuple(enc["pixel_values"].shape[-2:]) == (grid[0] * patch, grid[1] * patch)
    assert tuple(enc["pixel_mask"].shape[-2:]) == (grid[0] * patch, grid[1] * patch)
    out = m.model(**enc, output_attentions=True)
    n_text = enc["input_ids"].shape[1]
    assert out.attentions[-1].shape[-1] == n_text + 1 + grid[0] * grid[1]  # text, image [CLS], patches


def test_patch_index_maps_image_tokens_to_the_grid(m):
    import torch

    from mmkit.train.vilt import record_patch_index

    scene = ShapesWorld(1, split="test")[0]
    enc = m.processor(images=scene.image, text=scene.qa[0].question, return_tensors="pt")
    with torch.inference_mode(), record_patch_index(m.model) as found:
        a = m.model(**enc).logits
        b = m.model(**enc).logits
    assert len(found) == 2 and found[0].shape == (1, 64, 2)
    cells = {tuple(rc) for rc in found[0][0].tolist()}
    assert cells == {(r, c) for r in range(8) for c in range(8)}  # every grid cell exactly once
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)  # the token order does not change the answer
    assert "visual_embed" not in vars(m.model.vilt.embeddings)  # the hook is removed


def test_heldout_vqa_accuracy(m):
    """A fresh held-out sample (seed 1 of split='test'; the build evaluated seed 0): >= 85 % overall."""
    scenes = ShapesWorld(40, seed=1, split="test")
    pairs = [(s, q) for s in scenes for q in s.qa]
    preds = mmkit.answer(m, [s.image for s, _ in pairs], [q.question for _, q in pairs], batch_size=128)
    assert set(preds) <= set(ANSWERS)
    hits = np.array([p == q.answer for p, (_, q) in zip(preds, pairs)])
    kinds = np.array([q.kind for _, q in pairs])
    per_kind = {k: round(float(hits[kinds == k].mean()), 3) for k in QUESTION_KINDS}
    assert len(pairs) >= 300
    assert hits.mean() >= TARGET, f"accuracy {hits.mean():.3f} < {TARGET} ({per_kind})"
    from mmkit.metrics import vqa_accuracy

    assert vqa_accuracy(preds, [q.answer for _, q in pairs]) == pytest.approx(hits.mean())
