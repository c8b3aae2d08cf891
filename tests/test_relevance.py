"""Generic relevance (Chefer et al. 2021) for ViLT and BLIP, checked against the closed form of a 1-layer model.

With one layer the rules give, by hand: ViLT R = I + Ā; BLIP (image stream R_ii = I + Ā_v, text self-attention
R_tt = I + Ā_s, text-to-image R_ti = 0 before the cross-attention) R_ti = R̂_ttᵀ Ā_c R̂_ii, with
Ā = mean over heads of (∇A ⊙ A)⁺ and R̂ = I + (R - I) rows normalised to 1.
"""
import numpy as np
import pytest
import torch

import mmkit
from mmkit.attention.relevance import residual_normalise, stream_relevance


def _abar(a, g):
    """(1, H, Q, K) attention and its gradient -> (Q, K) numpy, heads averaged after the positive part."""
    return np.maximum(g[0].detach().double().numpy() * a[0].detach().double().numpy(), 0).mean(0)


def _hat(r):
    x = r - np.eye(len(r))
    s = x.sum(-1, keepdims=True)
    return np.eye(len(r)) + np.divide(x, s, out=np.zeros_like(x), where=s != 0)


def _one_layer(m, *stacks):
    """A copy that keeps only the first layer of each named layer list (a 1-layer toy of the same architecture;
    load_model's cached model is left whole for the other tests)."""
    import copy

    m = type(m)(copy.deepcopy(m.model), m.processor, m.spec, m.device, m.dtype, m.attention)
    for path in stacks:
        parent, name = path.rsplit(".", 1)
        owner = m.model.get_submodule(parent)
        setattr(owner, name, getattr(owner, name)[:1])
    return m


def test_residual_normalisation_and_an_empty_stream():
    r = torch.tensor([[2.0, 1.0], [0.0, 1.0]], dtype=torch.float64)
    assert residual_normalise(r).tolist() == [[1.5, 0.5], [0.0, 1.0]]  # row 0: (1, 1) / 2 + I; row 1 stays I
    a = torch.rand(2, 3, 3)
    c = torch.rand(2, 3, 4)
    r_tt, r_tk = stream_relevance([a], [torch.zeros_like(a)], [c], [torch.zeros_like(c)], torch.eye(4))
    assert torch.equal(r_tt, torch.eye(3, dtype=torch.float64)) and not r_tk.any()  # no gradient: no relevance


def test_vilt_relevance_matches_the_one_layer_closed_form(model_dirs, scenes):
    from mmkit.attention.relevance import vilt_relevance

    m = _one_layer(mmkit.load_model(model_dirs("vilt-vqa"), attention=True), "vilt.encoder.layer")
    q = "what color is the circle?"
    enc = m.processor(images=scenes[0].image, text=q, return_tensors="pt")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        out = m.model(**enc, output_attentions=True)
    (att,) = out.attentions
    (g,) = torch.autograd.grad(out.logits[0].max(), att)
    hand = np.eye(att.shape[-1]) + _abar(att, g)  # R = I + Ā
    ours = vilt_relevance(m, enc)
    assert np.abs(ours - hand).max() < 1e-5
    maps = mmkit.attention_maps(m, scenes[0].image, q)
    T = enc["input_ids"].shape[1]
    pos = [i for i, t in enumerate(enc["input_ids"][0].tolist()) if t not in m.processor.tokenizer.all_special_ids]
    placed = maps.extra["relevance"]  # (n, gh, gw) on the grid, whatever order ViLT drew the patches in
    assert np.allclose(placed.sum((1, 2)), hand[pos][:, T + 1:].sum(1), atol=1e-5)


@pytest.mark.parametrize("family", ["blip-itm", "blip-caption", "blip-vqa"])
def test_blip_relevance_matches_the_one_layer_closed_form(family, model_dirs, scenes):
    text = {"blip-itm": "a small red circle", "blip-caption": "a small red circle",
            "blip-vqa": "what color is the circle?"}[family]
    stacks = {"blip-itm": ["text_encoder.encoder.layer"], "blip-caption": ["text_decoder.bert.encoder.layer"],
              "blip-vqa": ["text_encoder.encoder.layer", "text_decoder.bert.encoder.layer"]}[family]
    m = _one_layer(mmkit.load_model(model_dirs(family), attention=True), "vision_model.encoder.layers", *stacks)
    maps = mmkit.attention_maps(m, scenes[0].image, text, **({"max_new_tokens": 3} if family == "blip-vqa" else {}))
    model, tok = m.model, m.processor.tokenizer
    px = m.processor.image_processor(images=[scenes[0].image], return_tensors="pt")["pixel_values"]
    vis = model.vision_model(pixel_values=px, output_attentions=True)
    h = vis.last_hidden_state
    enc = tok(text, return_tensors="pt")

    def cross_rel(target, out, r_other):
        """The closed form through one text layer: R_ti = R̂_ttᵀ Ā_c R̂_other; returns (R_tt, R_ti)."""
        gs, gc = torch.autograd.grad(target, [out.attentions[0], out.cross_attentions[0]], retain_graph=True)
        r_tt = np.eye(out.attentions[0].shape[-1]) + _abar(out.attentions[0], gs)
        return r_tt, _hat(r_tt).T @ _abar(out.cross_attentions[0], gc) @ _hat(r_other)

    def r_image(target):
        (gv,) = torch.autograd.grad(target, [vis.attentions[0]], retain_graph=True)
        return np.eye(h.shape[1]) + _abar(vis.attentions[0], gv)

    if family == "blip-caption":
        ids = enc["input_ids"].clone()
        ids[0, 0] = model.config.text_config.bos_token_id
        out = model.text_decoder(input_ids=ids, attention_mask=torch.ones_like(ids), encoder_hidden_states=h,
                                 output_attentions=True)
        t = 3  # the word at position 3 ("red"), predicted at position 2, is the target
        target = out.logits[0, t - 1].float().log_softmax(-1)[ids[0, t]]
        _, r_ti = cross_rel(target, out, r_image(target))
        expected, ours = r_ti[t - 1, 1:], maps.for_token("red", method="relevance").ravel()
    elif family == "blip-itm":
        q = model.text_encoder(**enc, encoder_hidden_states=h, output_attentions=True)
        target = model.itm_head(q.last_hidden_state[:, 0]).softmax(-1)[0, 1]
        _, r_ti = cross_rel(target, q, r_image(target))
        expected, ours = r_ti[3, 1:], maps.for_token("red", method="relevance").ravel()  # [CLS] a small red
    else:
        q = model.text_encoder(**enc, encoder_hidden_states=h, output_attentions=True)
        answer = model.generate(pixel_values=px, input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                                max_new_tokens=3)
        a = model.text_decoder(input_ids=answer, attention_mask=torch.ones_like(answer),
                               encoder_hidden_states=q.last_hidden_state, encoder_attention_mask=enc["attention_mask"],
                               output_attentions=True)
        target = a.logits[0, :-1].float().log_softmax(-1).gather(-1, answer[0, 1:, None]).sum()
        r_qq, r_qi = cross_rel(target, q, r_image(target))
        _, r_aq = cross_rel(target, a, r_qq)
        word = maps.notes["answer_words"][0] if maps.notes["answer_words"] else None
        if word is None:
            pytest.skip("the random model answered with no word")
        ap = [p for p, t in enumerate(answer[0].tolist()) if t not in set(tok.all_special_ids)][0]
        expected = (r_aq @ r_qi)[ap - 1, 1:]  # the first answer word, from the position before it
        ours = maps.extra["relevance"][maps.groups[word][0]].ravel()
        assert np.abs(maps.for_token("color", method="relevance").ravel() - r_qi[2, 1:]).max() < 1e-5
    assert np.abs(ours - expected).max() < 1e-5 and np.abs(expected).max() > 0


def test_relevance_is_computed_when_first_read_with_eager_attention(model_dirs, scenes):
    """The backward passes are paid only when relevance is read, and work after attention_maps has given the
    model back its own attention implementation."""
    from mmkit.attention import _implementations

    m = mmkit.load_model(model_dirs("blip-itm"))  # not loaded with attention=True
    before = _implementations(m.model)
    maps = mmkit.attention_maps(m, scenes[0].image, "a small red circle")
    assert callable(dict.__getitem__(maps.extra, "relevance"))  # not computed yet
    heat = maps.for_token("red", method="relevance")
    assert heat.shape == maps.grid and np.isfinite(heat).all() and heat.max() > 0
    assert isinstance(dict.__getitem__(maps.extra, "relevance"), np.ndarray)  # computed once, kept
    assert _implementations(m.model) == before and not m.attention
