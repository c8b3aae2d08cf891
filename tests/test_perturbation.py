"""Perturbation faithfulness (deletion / insertion curves): the pieces by hand, and the plumbing on every
family's tiny random-init model and on the sample photos with a real-size one."""
import numpy as np
import pytest
import torch

import mmkit
from mmkit import InputError
from mmkit.attention import Perturbation, perturbation
from mmkit.attention.perturbation import _masks, auc, explanation_map, perturbation_many

FAMILIES = [("blip-caption", None), ("blip-vqa", "what color is the circle?"), ("blip-itm", "a small red circle"),
            ("vilt-vqa", "what color is the circle?"), ("vilt-itm", "a small red circle"), ("clip", "red circle"),
            ("align", "red circle")]


def test_auc_is_the_trapezoid_area():
    f = np.linspace(0, 1, 5)
    assert auc(np.ones(5), f) == pytest.approx(1.0)
    assert auc(1 - f, f) == pytest.approx(0.5)  # a straight fall from 1 to 0
    assert auc(np.stack([f, 2 * f]), f).tolist() == pytest.approx([0.5, 1.0])


def test_masks_delete_and_reveal_patches_in_order():
    order = np.array([3, 0, 2, 1])  # patch 3 (bottom right of a 2x2 grid) first
    fr = np.array([0.0, 0.25, 0.5, 1.0])
    keep = _masks(order, (2, 2), fr, (4, 6), insert=False)[:, 0].numpy()  # (K, 4, 6)
    assert keep.shape == (4, 4, 6) and keep[0].all() and not keep[-1].any()
    assert keep[1, 2:, 3:].sum() == 0 and keep[1].sum() == 24 - 6  # only patch 3 deleted: rows 2-3, cols 3-5
    assert keep[2, :2, :3].sum() == 0 and keep[2].sum() == 12
    shown = _masks(order, (2, 2), fr, (4, 6), insert=True)[:, 0].numpy()
    assert np.array_equal(shown, 1 - keep)  # insertion reveals exactly what deletion removes


def test_the_map_of_the_whole_output_weighs_words_equally():
    class Maps:
        words = ["a", "red"]

        def for_token(self, i, method=None):
            return np.array([[1.0, 1.0], [0.0, 0.0]]) if i == 0 else np.array([[0.0, 0.0], [0.0, 10.0]])

    assert explanation_map(Maps(), "x").tolist() == [[0.5, 0.5], [0.0, 1.0]]


@pytest.mark.parametrize("family,text", FAMILIES)
def test_curves_for_every_family(family, text, model_dirs, scenes, one_thread):
    m = mmkit.load_model(model_dirs(family), attention=True)
    p = perturbation(m, [scenes[0].image, scenes[1].image], None, text, steps=4, n_random=2)
    assert isinstance(p, Perturbation) and p.fractions.tolist() == [0, 0.25, 0.5, 0.75, 1]
    for c in (p.deletion, p.insertion, p.random_deletion, p.random_insertion):
        assert c.shape == (2, 5) and np.isfinite(c).all()
    assert np.allclose(p.deletion[:, 0], p.random_deletion[:, 0], atol=1e-5)  # nothing deleted yet: same score
    assert np.allclose(p.deletion[:, -1], p.insertion[:, 0], atol=1e-5)  # all deleted == nothing inserted
    assert np.allclose(p.insertion[:, -1], p.deletion[:, 0], atol=1e-5)  # all inserted == the image
    assert np.isfinite([p.deletion_auc, p.insertion_auc, p.deletion_margin, p.insertion_margin]).all()
    assert len(p.texts) == 2 and all(p.texts) and p.score in repr(p)
    if family == "clip":
        z = perturbation(m, scenes[0].image, "similarity", text, steps=2, labels=["red circle", "blue square"])
        assert z.score.startswith("P(prompt)") and ((0 <= z.deletion) & (z.deletion <= 1)).all()


def test_the_ordering_comes_from_the_map(model_dirs, scenes, monkeypatch):
    """A planted map ranks the last patch first: the first deletion step blanks exactly that patch."""
    import sys

    P = sys.modules["mmkit.attention.perturbation"]
    m = mmkit.load_model(model_dirs("clip"), attention=True)
    seen = []
    real = P._scores

    def record(m_, enc, px, state):
        seen.append(px.detach().clone())
        return real(m_, enc, px, state)

    monkeypatch.setattr(P, "explanation_map", lambda maps, meth: np.arange(np.prod(maps.grid), dtype=float)
                        .reshape(maps.grid))
    monkeypatch.setattr(P, "_scores", record)
    gh, gw = mmkit.attention_maps(m, scenes[0].image, "red circle").grid
    K = gh * gw + 1  # one patch per step
    perturbation(m, scenes[0].image, "similarity", "red circle", steps=gh * gw, n_random=1, batch_size=1000)
    copies = torch.cat(seen)  # the whole image and the blank one (every curve's ends) once, then the inner steps
    inner = K - 2  # of map deletion, map insertion, random deletion, random insertion
    assert len(copies) == 2 + 4 * inner and not copies[1].any()
    full, first = copies[0], copies[2]
    H, W = full.shape[-2:]
    blank = (first == 0).all(0)  # (H, W) pixels deleted at the first step
    assert blank[H - H // gh:, W - W // gw:].all() and blank.sum() == (H // gh) * (W // gw)
    assert torch.equal(first[:, ~blank], full[:, ~blank])
    shown = copies[2 + inner]  # insertion's first step: only the top patch revealed
    assert torch.equal(shown[:, blank], full[:, blank]) and not shown[:, ~blank].any()
    p = perturbation_many(m, scenes[0].image, ["similarity", "relevance"], "red circle", steps=2)
    assert np.array_equal(p["similarity"].random_deletion, p["relevance"].random_deletion)  # shared random curves


def test_errors_name_the_fix(model_dirs, scenes):
    m = mmkit.load_model(model_dirs("vilt-vqa"), attention=True)
    with pytest.raises(InputError, match="not available"):
        perturbation(m, scenes[0].image, "gradcam", "what color is it?")
    with pytest.raises(InputError, match="one text per image"):
        perturbation(m, [scenes[0].image] * 2, "attention", ["a?", "b?", "c?"])
    with pytest.raises(InputError, match="at least 1"):
        perturbation(m, scenes[0].image, "attention", "what?", steps=0)


def test_sample_photos_with_a_real_size_model(model_dirs):
    """Plumbing on real photos (no boxes) with CLIP-B/32's architecture, random weights: 7x7 patch grid; and over
    the prompt's tokens (the end token pooled, deleted tokens dropped: CLIP has no [MASK])."""
    photos = list(mmkit.data.sample_images().values())[:2]
    m = mmkit.load_model(model_dirs("clip", "base"), attention=True)
    p = perturbation(m, photos, "relevance", "a photo of a cat", steps=4, n_random=1, batch_size=16)
    assert p.deletion.shape == (2, 5) and np.isfinite(p.deletion).all() and np.isfinite(p.insertion).all()
    t = perturbation(m, photos, "relevance", "a photo of a cat", steps=2, n_random=1, over="tokens",
                     labels=["a photo of a dog", "a photo of a car"])
    assert t.deletion.shape == (2, 3) and np.isfinite(t.deletion).all() and np.isfinite(t.insertion).all()
    assert ((0 <= t.deletion) & (t.deletion <= 1)).all() and t.score.startswith("P(prompt)") and t.over == "tokens"


def test_curves_figure():
    f = np.linspace(0, 1, 3)
    p = Perturbation("m", "attention", "P(answer)", f, np.array([[1, 0.2, 0.0]]), np.array([[0, 0.8, 1.0]]),
                     np.array([[1, 0.6, 0.0]]), np.array([[0, 0.4, 1.0]]))
    assert p.deletion_margin == pytest.approx(0.2) and p.insertion_margin == pytest.approx(0.2)
    fig = mmkit.viz.perturbation_curves({"attention": p})
    assert len(fig.axes) == 2 and all(len(a.lines) == 2 for a in fig.axes)
    assert "AUC 0.35" in fig.axes[0].get_legend().get_texts()[0].get_text()
    with pytest.raises(ValueError, match="no perturbation"):
        mmkit.viz.perturbation_curves([])


# --- over the text's tokens ---------------------------------------------------------------------------------

def test_token_copies_mask_or_drop_tokens_in_order():
    from mmkit.attention.text_perturbation import token_copies

    t = {"ids": torch.tensor([[101, 7, 8, 9, 102]]), "mask": torch.ones(1, 5, dtype=torch.long), "content": [1, 2, 3]}
    order = np.array([2, 0, 1])  # token 9 first, then 7, then 8
    fr = np.array([0.0, 1 / 3, 2 / 3, 1.0])
    ids, mask = token_copies(t, order, fr, insert=False, mask_id=4, pad_id=0)
    assert ids.tolist() == [[101, 7, 8, 9, 102], [101, 7, 8, 4, 102], [101, 4, 8, 4, 102], [101, 4, 4, 4, 102]]
    assert mask.tolist() == [[1] * 5] * 4
    ids, _ = token_copies(t, order, fr, insert=True, mask_id=4, pad_id=0)
    assert ids.tolist() == [[101, 4, 4, 4, 102], [101, 4, 4, 9, 102], [101, 7, 4, 9, 102], [101, 7, 8, 9, 102]]
    ids, mask = token_copies(t, order, fr, insert=False, mask_id=None, pad_id=0)  # no [MASK]: dropped, padded
    assert ids.tolist() == [[101, 7, 8, 9, 102], [101, 7, 8, 102, 0], [101, 8, 102, 0, 0], [101, 102, 0, 0, 0]]
    assert mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 1, 0], [1, 1, 1, 0, 0], [1, 1, 0, 0, 0]]


TEXT_FAMILIES = [f for f in FAMILIES if f[0] != "blip-caption"]


@pytest.mark.parametrize("family,text", TEXT_FAMILIES)
def test_token_curves_for_every_family_with_a_text(family, text, model_dirs, scenes, one_thread):
    from mmkit.attention.text_perturbation import TEXT_METHODS

    m = mmkit.load_model(model_dirs(family), attention=True)
    methods = list(TEXT_METHODS[family])
    res = perturbation_many(m, [scenes[0].image, scenes[1].image], methods, text, steps=4, n_random=2,
                            over="tokens")
    assert list(res) == methods
    for p in res.values():
        assert p.over == "tokens" and "tokens" in repr(p) and p.texts == [text, text]
        for c in (p.deletion, p.insertion, p.random_deletion, p.random_insertion):
            assert c.shape == (2, 5) and np.isfinite(c).all()
        assert np.allclose(p.deletion[:, 0], p.insertion[:, -1], atol=1e-5)  # the whole text
        assert np.allclose(p.deletion[:, -1], p.insertion[:, 0], atol=1e-5)  # every token deleted
        assert np.allclose(p.deletion[:, 0], p.random_deletion[:, 0], atol=1e-5)


def test_token_order_comes_from_the_method(model_dirs, scenes, monkeypatch):
    """A planted ranking puts the last real token first: the first deletion step masks exactly that token."""
    import mmkit.attention.text_perturbation as T

    m = mmkit.load_model(model_dirs("vilt-vqa"), attention=True)
    seen = []
    real = T.token_scores

    def record(m_, enc, state, ids, mask):
        seen.append(ids.clone())
        return real(m_, enc, state, ids, mask)

    monkeypatch.setattr(T, "token_ranking", lambda m_, enc, state, t, methods: {
        k: np.arange(len(t["content"]), dtype=float) for k in methods})
    monkeypatch.setattr(T, "token_scores", record)
    q = "what color is the circle?"
    p = perturbation(m, scenes[0].image, "attention", q, steps=6, n_random=1, over="tokens")
    ids = torch.cat(seen)
    tok = m.processor.tokenizer
    full = tok(q)["input_ids"]
    last = len(full) - 2  # the last real token ("?") before [SEP]
    one = [row for row in ids.tolist() if row.count(tok.mask_token_id) == 1]
    assert [*full[:last], tok.mask_token_id, *full[last + 1:]] in one
    assert p.deletion.shape == (1, 7)


def test_token_errors_name_the_fix(model_dirs, scenes):
    cap = mmkit.load_model(model_dirs("blip-caption"), attention=True)
    with pytest.raises(InputError, match="output"):
        perturbation(cap, scenes[0].image, "attention", over="tokens")
    clip = mmkit.load_model(model_dirs("clip"), attention=True)
    with pytest.raises(InputError, match="no text ranking"):
        perturbation(clip, scenes[0].image, "gradcam", "red circle", over="tokens")
    with pytest.raises(InputError, match="over="):
        perturbation(clip, scenes[0].image, "similarity", "red circle", over="words")
