"""BLIP-2 on a tiny random-init model: tasks run, and Q-Former query maps are labelled, shaped and placed right."""
import types

import numpy as np
import pytest
import torch

import mmkit
from mmkit.attention import qformer


@pytest.fixture(scope="module")
def blip2(model_dirs, one_thread):
    return mmkit.load_model(model_dirs("blip2"), attention=True)


def test_blip2_tasks_run(blip2, scenes):
    images = [s.image for s in scenes[:2]]
    caps = mmkit.caption(blip2, images, max_new_tokens=4)
    assert isinstance(caps, list) and len(caps) == 2 and all(isinstance(c, str) for c in caps)
    assert isinstance(mmkit.caption(blip2, images[0], prompt="a photo of", max_new_tokens=3), str)
    answers = mmkit.answer(blip2, images, ["what colour is it?", "how many shapes?"], max_new_tokens=3)
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)


def test_blip2_maps_are_per_query(blip2, scenes):
    maps = mmkit.attention_maps(blip2, scenes[0].image, "a small red circle")
    cfg = blip2.model.config
    n_cross = len(range(0, cfg.qformer_config.num_hidden_layers, cfg.qformer_config.cross_attention_frequency))
    assert maps.kind == "queries" and repr(maps).count("33 queries") == 1
    assert maps.tokens[:32] == [f"q{i}" for i in range(32)] and maps.tokens[-1] == qformer.WEIGHTED
    assert maps.attn.shape == (n_cross, cfg.qformer_config.num_attention_heads, 33, 4, 4)  # 32 px / 8 px patches
    assert maps.notes["qformer_layers"] == [0, 2]  # cross-attention in every second layer
    w = maps.notes["query_weight"]
    assert w.shape == (32,) and np.isclose(w.sum(), 1.0) and (w >= 0).all()
    mixed = np.einsum("q,lhqyx->lhyx", w, maps.attn[:, :, :32])
    assert np.allclose(maps.attn[:, :, 32], mixed, atol=1e-6)  # the weighted map is the LM's mix of queries
    one = maps.for_token("q0", layer=-1, head=0)
    assert one.shape == (4, 4) and 0 < one.sum() <= 1.0 + 1e-5  # a softmax row, less the CLS token's share
    assert maps.for_token(qformer.WEIGHTED, size="image").shape == (64, 64)


def test_blip2_caption_is_generated_when_no_text(blip2, scenes):
    maps = mmkit.attention_maps(blip2, scenes[0].image, max_new_tokens=3)
    assert isinstance(maps.text, str) and maps.kind == "queries"


def test_blip2_planted_query_attention_lands_on_its_patch(blip2, scenes, monkeypatch):
    """A cross-attention that puts query q on patch (row r, col c) must come out at grid cell (r, c)."""
    n_queries, rows, cols = 32, 4, 4
    planted = torch.zeros(1, 2, n_queries, 1 + rows * cols)  # (B, heads, queries, CLS + patches)
    spots = {}
    for q in range(n_queries):
        r, c = (q * 5) % rows, (q * 3 + q // 4) % cols
        planted[0, :, q, 1 + r * cols + c] = 1.0  # patch tokens follow the CLS token in row-major order
        spots[q] = (r, c)

    def fake_forward(*args, **kwargs):
        return types.SimpleNamespace(cross_attentions=(planted, planted))

    monkeypatch.setattr(blip2.model.qformer, "forward", fake_forward)
    monkeypatch.setattr(qformer, "_query_weights", lambda *a: None)
    maps = mmkit.attention_maps(blip2, scenes[0].image, "a red circle")
    assert maps.tokens == [f"q{i}" for i in range(n_queries)]  # no LM weights -> no weighted map
    for q, (r, c) in spots.items():
        heat = maps.for_token(f"q{q}")
        assert np.unravel_index(heat.argmax(), heat.shape) == (r, c)


def test_blip2_prompts_carry_the_image_placeholders(blip2, scenes, monkeypatch):
    """BLIP-2's generate puts the image where the <image> ids are; a prompt without them would ignore the image."""
    seen = []
    original = blip2.model.generate

    def spy(*args, **kwargs):
        seen.append((kwargs["input_ids"].clone(), kwargs["attention_mask"].clone()))
        return original(*args, **kwargs)

    monkeypatch.setattr(blip2.model, "generate", spy)
    image_id, n = blip2.model.config.image_token_id, blip2.model.config.num_query_tokens
    mmkit.answer(blip2, [scenes[0].image, scenes[1].image], ["what colour is the small circle?", "how many?"],
                 max_new_tokens=2)
    mmkit.caption(blip2, scenes[0].image, prompt="a photo of", max_new_tokens=2)
    assert len(seen) == 2
    for ids, _ in seen:
        assert ((ids == image_id).sum(dim=1) == n).all()  # every row carries all 32 query placeholders
        assert (ids[:, :n] == image_id).all()  # first, before the (left-padded) prompt
    mask = seen[0][1]
    assert mask[1, n] == 0 and (mask[:, -1] == 1).all()  # the shorter question is padded on the left
