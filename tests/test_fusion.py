"""Unit tests of mmkit.fusion modules: shapes, gradients, masks, attention weights, registry, errors."""
import pytest
import torch

import mmkit
from mmkit import fusion

B, T, N, DT, DI, OUT = 3, 6, 16, 24, 32, 10
NAMES = list(fusion.list())


def inputs(b=B, seed=0):
    g = torch.Generator().manual_seed(seed)
    text = torch.randn(b, T, DT, generator=g)
    image = torch.randn(b, N, DI, generator=g)
    tmask = torch.ones(b, T, dtype=torch.bool)
    tmask[0, 4:] = False  # the first example has 4 real words and 2 padding tokens
    imask = torch.ones(b, N, dtype=torch.bool)
    return text, image, tmask, imask


def test_list_names_every_required_method_with_a_description():
    required = {"concat", "sum", "weighted", "gated", "bilinear", "tensor", "film", "cross_attention",
                "co_attention", "late_mean", "late_weighted", "late_vote", "late_stacking"}
    assert required <= set(fusion.list())
    assert all(isinstance(d, str) and 10 < len(d) < 120 for d in fusion.list().values())


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("b", [1, B])
def test_output_shape_tokens_and_vectors(name, b):
    torch.manual_seed(0)
    m = fusion.build(name, text_dim=DT, image_dim=DI, out_dim=OUT)
    text, image, tmask, imask = inputs(b)
    assert m(text, image, tmask, imask).shape == (b, OUT)
    assert m(text.mean(1), image.mean(1)).shape == (b, OUT)  # one vector per example also works


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_both_modalities(name):
    torch.manual_seed(0)
    m = fusion.build(name, text_dim=DT, image_dim=DI, out_dim=OUT)
    text, image, tmask, imask = inputs()
    text.requires_grad_(True)
    image.requires_grad_(True)
    m(text, image, tmask, imask).pow(2).sum().backward()
    for x in (text, image):
        assert x.grad is not None and x.grad.abs().sum() > 0
    # padded words get no gradient: they do not take part
    assert text.grad[0, 4:].abs().sum() == 0


@pytest.mark.parametrize("name", NAMES)
def test_masks_change_the_result_only_where_they_should(name):
    torch.manual_seed(0)
    m = fusion.build(name, text_dim=DT, image_dim=DI, out_dim=OUT).eval()
    text, image, tmask, imask = inputs()
    base = m(text, image, tmask, imask)
    changed = text.clone()
    changed[0, 4:] = 100.0  # rewrite the padded words of example 0
    same = m(changed, image, tmask, imask)
    assert torch.allclose(base, same, atol=1e-5), "padding must not change the output"
    full = torch.ones_like(tmask)
    unmasked = m(changed, image, full, imask)
    assert not torch.allclose(base[0], unmasked[0], atol=1e-4), "unmasked words must change example 0"
    assert torch.allclose(base[1:], unmasked[1:], atol=1e-5), "other examples are untouched"
    # image masks too
    imask2 = imask.clone()
    imask2[1, N // 2:] = False
    img2 = image.clone()
    img2[1, N // 2:] = -50.0
    a, b_ = m(text, image, tmask, imask2), m(text, img2, tmask, imask2)
    assert torch.allclose(a, b_, atol=1e-5)


def test_attention_weights_per_head_sum_to_one_over_unmasked_keys():
    torch.manual_seed(0)
    m = fusion.build("co_attention", text_dim=DT, image_dim=DI, out_dim=OUT, heads=4)
    text, image, tmask, imask = inputs()
    imask[2, :5] = False
    _, attn = m(text, image, tmask, imask, return_attention=True)
    t2i, i2t = attn["text_to_image"], attn["image_to_text"]
    assert t2i.shape == (B, 4, T, N) and i2t.shape == (B, 4, N, T)
    assert torch.allclose(t2i.sum(-1), torch.ones(B, 4, T), atol=1e-5)
    assert torch.allclose(i2t.sum(-1), torch.ones(B, 4, N), atol=1e-5)
    assert t2i[2, :, :, :5].abs().max() == 0  # masked image keys get no attention
    assert i2t[0, :, :, 4:].abs().max() == 0  # padded words get no attention

    x = fusion.build("cross_attention", text_dim=DT, image_dim=DI, out_dim=OUT, heads=2)
    _, a = x(text, image, tmask, imask, return_attention=True)
    assert a.shape == (B, 2, T, N) and torch.allclose(a.sum(-1), torch.ones(B, 2, T), atol=1e-5)
    assert torch.equal(x.last_attn, a.detach())
    y = fusion.build("image_to_text", text_dim=DT, image_dim=DI, out_dim=OUT)
    _, a = y(text, image, tmask, imask, return_attention=True)
    assert a.shape == (B, 4, N, T) and a[0, :, :, 4:].abs().max() == 0


def test_film_accepts_a_feature_map_and_equals_the_token_view():
    torch.manual_seed(0)
    m = fusion.build("film", text_dim=DT, image_dim=DI, out_dim=OUT)
    text, image, tmask, _ = inputs()
    fmap = image.transpose(1, 2).reshape(B, DI, 4, 4)  # (B, N, Di) -> (B, Di, 4, 4)
    assert torch.allclose(m(text, fmap, tmask), m(text, image, tmask), atol=1e-6)


def test_hand_written_gmu_matches_the_library():
    torch.manual_seed(0)
    m = fusion.GatedFusion(DT, DI, OUT)
    t, v = torch.randn(B, DT), torch.randn(B, DI)
    g = torch.sigmoid(m.gate(torch.cat([t, v], -1)))
    mine = g * torch.tanh(m.text_proj(t)) + (1 - g) * torch.tanh(m.image_proj(v))
    assert torch.allclose(mine, m(t, v))


def test_late_fusion_combines_the_unimodal_heads_and_drops_a_missing_one():
    torch.manual_seed(0)
    text, image, tmask, _ = inputs()
    mean = fusion.build("late_mean", text_dim=DT, image_dim=DI, out_dim=OUT)
    s_t, s_v = mean.unimodal(text, image, tmask)
    assert torch.allclose(mean(text, image, tmask), (s_t + s_v) / 2)
    assert torch.allclose(mean(text, None, tmask), s_t)
    assert torch.allclose(mean(None, image), s_v)
    vote = fusion.build("late_vote", text_dim=DT, image_dim=DI, out_dim=OUT)
    p = vote(text, image, tmask).exp()
    assert torch.allclose(p.sum(-1), torch.ones(B), atol=1e-5)
    vote.hard = True
    vote.eval()
    s_t, s_v = vote.unimodal(text, image, tmask)
    agree = s_t.argmax(-1) == s_v.argmax(-1)
    hard = vote(text, image, tmask).argmax(-1)
    assert torch.equal(hard[agree], s_t.argmax(-1)[agree])  # two agreeing voters win
    w = fusion.build("late_weighted", text_dim=DT, image_dim=DI, out_dim=OUT)
    assert torch.allclose(w.weights, torch.tensor([0.5, 0.5]))


def test_errors_name_the_fix():
    with pytest.raises(mmkit.InputError, match="choose one of"):
        fusion.build("nope", text_dim=4, image_dim=4, out_dim=2)
    m = fusion.build("concat", text_dim=DT, image_dim=DI, out_dim=OUT)
    text, image, tmask, _ = inputs()
    with pytest.raises(mmkit.InputError, match="text_dim=7"):
        m(torch.randn(B, T, 7), image)
    with pytest.raises(mmkit.InputError, match="batch size"):
        m(text, image[:2])
    with pytest.raises(mmkit.InputError, match="one True/False per token"):
        m(text, image, tmask[:, :3])
    with pytest.raises(mmkit.InputError, match="tensor"):
        m("a red circle", image)
    with pytest.raises(mmkit.InputError, match="positive int"):
        fusion.build("sum", text_dim=0, image_dim=4, out_dim=2)
    with pytest.raises(mmkit.InputError, match="unexpected keyword"):
        fusion.build("sum", text_dim=4, image_dim=4, out_dim=2, rank=3)
