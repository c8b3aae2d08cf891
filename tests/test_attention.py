"""attention_maps on every family (tiny and real-size random-init), grid placement and determinism."""
import numpy as np
import pytest
import torch
from PIL import Image

import mmkit
from mmkit import InputError
from mmkit.attention import merge_pieces, rollout, to_grid

CASES = [("blip-caption", None), ("blip-caption", "a small red circle"), ("blip-vqa", "what color is the circle?"),
         ("blip-itm", "a small red circle"), ("vilt-vqa", "what color is the circle?"),
         ("vilt-itm", "a small red circle"), ("clip", "red circle"), ("align", "red circle")]


@pytest.mark.parametrize("family,text", CASES)
def test_maps_for_every_family(family, text, model_dirs, scenes):
    m = mmkit.load_model(model_dirs(family))
    kw = {"max_new_tokens": 5} if text is None else {}
    maps = mmkit.attention_maps(m, scenes[0].image, text, **kw)
    assert maps.tokens and len(maps.groups) == len(maps.tokens)
    gh, gw = maps.grid
    for method in maps.methods:
        heat = maps.for_token(0, method=method)
        assert heat.shape == (gh, gw) and np.isfinite(heat).all()
    assert maps.for_token(0, size="image").shape == (64, 64)
    assert maps.for_token(0, size=(10, 20)).shape == (10, 20)
    if maps.attn is not None:
        L, H = maps.layers, maps.heads
        assert maps.attn.shape[:2] == (L, H) and maps.attn.shape[-2:] == (gh, gw)
        assert np.allclose(maps.for_token(0, layer=-1, head=0), maps.attn[-1, 0, maps.groups[0]].mean(0))
        assert np.allclose(maps.for_token(0, agg="max"), maps.attn[:, :, maps.groups[0]].mean(2).mean(0).max(0))
    if text:
        first = text.split()[0]
        assert maps.index(first.upper()) == 0  # words resolve case-insensitively


@pytest.mark.parametrize("family,text", CASES)
def test_maps_in_half_precision(family, text, model_dirs, scenes):
    """bf16 is what load_model picks on a GPU: every family's maps must work in it (here on the CPU)."""
    m = mmkit.load_model(model_dirs(family), dtype="bf16")
    assert m.dtype == torch.bfloat16
    kw = {"max_new_tokens": 5} if text is None else {}
    maps = mmkit.attention_maps(m, scenes[0].image, text, **kw)
    for method in maps.methods:
        assert np.isfinite(maps.for_token(0, method=method)).all()


def test_text_words_are_readable_and_resolve_to_pieces():
    words, groups = merge_pieces(["a", "ze", "##b", "##ra", "is", "red"])
    assert words == ["a", "zebra", "is", "red"] and groups[1] == [1, 2, 3]
    words, groups = merge_pieces(["a</w>", "ze", "bra</w>", "red</w>"])
    assert words == ["a", "zebra", "red"] and groups[1] == [1, 2]


def test_maps_errors(model_dirs, scenes):
    m = mmkit.load_model(model_dirs("vilt-vqa"))
    maps = mmkit.attention_maps(m, scenes[0].image, "what color is the circle?")
    with pytest.raises(InputError, match="not one of the tokens"):
        maps.for_token("zebra")
    with pytest.raises(InputError, match="layer"):
        maps.for_token(0, layer=99)
    with pytest.raises(InputError, match="method"):
        maps.for_token(0, method="gradcam")
    with pytest.raises(InputError, match="needs a text"):
        mmkit.attention_maps(m, scenes[0].image)
    with pytest.raises(InputError, match="empty"):
        mmkit.attention_maps(m, scenes[0].image, "   ")


def test_to_grid_places_values_by_patch_index():
    index = np.array([[1, 2], [0, 0], [1, 0]])  # (row, col) of three kept patches, shuffled
    out = to_grid(np.array([5.0, 7.0, 9.0]), index, (2, 3))
    assert out.tolist() == [[7, 0, 0], [9, 0, 5]]


def test_rollout_of_identity_attention_is_identity():
    eye = np.broadcast_to(np.eye(4), (3, 2, 4, 4))
    assert np.allclose(rollout(eye), np.eye(4))


def test_vilt_placement_does_not_depend_on_the_patch_permutation(model_dirs, scenes, monkeypatch):
    """ViLT shuffles patches; placing by the captured index must give the same map for any shuffle."""
    m = mmkit.load_model(model_dirs("vilt-vqa"))
    q = "what color is the circle?"
    base = mmkit.attention_maps(m, scenes[1].image, q)
    again = mmkit.attention_maps(m, scenes[1].image, q)
    assert np.array_equal(base.attn, again.attn)  # deterministic across calls
    real = torch.multinomial
    monkeypatch.setattr(torch, "multinomial", lambda w, n, **k: real(w, n, **k).flip(0))  # another shuffle
    flipped = mmkit.attention_maps(m, scenes[1].image, q)
    assert np.allclose(base.attn, flipped.attn, atol=1e-5)


def test_vilt_non_square_grid(model_dirs):
    m = mmkit.load_model(model_dirs("vilt-vqa", "base"))
    maps = mmkit.attention_maps(m, Image.new("RGB", (576, 384), (200, 30, 30)), "what color is it?")
    assert maps.grid == (12, 18)  # 384 x 576 with patch 32


@pytest.mark.parametrize("family,grid", [("blip-caption", (24, 24)), ("clip", (7, 7))])
def test_real_size_grids(family, grid, model_dirs, scenes):
    m = mmkit.load_model(model_dirs(family, "base"))
    kw = {"max_new_tokens": 3} if family == "blip-caption" else {}
    maps = mmkit.attention_maps(m, scenes[0].image, None if family == "blip-caption" else "red circle", **kw)
    assert maps.grid == grid


def test_clip_b16_grid(tmp_path, scenes):
    import transformers as tf

    from mmkit.testing import _clip_bpe

    tok = _clip_bpe()
    cfg = tf.CLIPConfig(text_config=dict(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                         intermediate_size=64, eos_token_id=tok.eos_token_id),
                        vision_config=dict(image_size=224, patch_size=16, hidden_size=32, num_hidden_layers=1,
                                           num_attention_heads=2, intermediate_size=64), projection_dim=16)
    tf.CLIPModel(cfg).save_pretrained(tmp_path)
    tf.CLIPProcessor(image_processor=tf.CLIPImageProcessor(), tokenizer=tok).save_pretrained(tmp_path)
    maps = mmkit.attention_maps(mmkit.load_model(str(tmp_path)), scenes[0].image, "red")
    assert maps.grid == (14, 14)


def test_caption_strip_shows_one_map_when_a_method_gives_every_word_the_same(scenes):
    """CLIP's raw attention (the image's own, no longer its default map) is the same under every word; drawn once per
    word, a learner read it as a map per word (an outside tester did)."""
    maps = mmkit.attention_maps(mmkit.load_model("shapes-clip"), scenes[0].image, "a red circle")
    same = mmkit.viz.caption_strip(maps, method="attention")
    assert len(same.axes) == 1 and same.axes[0].get_title() == "'a red circle'"
    title = " ".join(same._suptitle.get_text().split())  # the title is wrapped to the figure's width
    assert "one map for the whole text" in title and "method='relevance' does" in title  # the method that localises
    assert len(mmkit.viz.caption_strip(maps, method="relevance").axes) == len(maps.words)


def test_figures_headless(model_dirs, scenes):
    m = mmkit.load_model(model_dirs("blip-caption"))
    maps = mmkit.attention_maps(m, scenes[0].image, "a small red circle")
    heats = [maps.for_token(i) for i in range(len(maps.words))]
    one = all(np.array_equal(h, heats[0]) for h in heats)  # a random-init model's maps can be uniform
    assert len(mmkit.viz.caption_strip(maps, boxes=scenes[0].objects).axes) == (1 if one else len(maps.words))
    assert len(mmkit.viz.layer_head_grid(maps, "red").axes) == maps.layers * maps.heads
    assert len([a for a in mmkit.viz.compare_methods(maps, "red").axes if a.images]) == len(maps.methods)
    fig = mmkit.viz.overlay(maps.image, maps.for_token("red"))
    assert len(fig.axes) == 2  # the image and its colour bar
