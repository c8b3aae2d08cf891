"""CLIP's maps after they were made cheaper: the same maps as the per-word computation they replace.

Before: one forward pass with gradients, then one backward pass per word. Now: a forward pass without gradients
for similarity / attention / rollout, and relevance when first read, in one backward pass batched over the words
(weights frozen meanwhile). `reference` below is the old computation, kept here to compare with.
"""
import numpy as np
import pytest
import torch

import mmkit
from mmkit.attention import dual
from mmkit.attention.cross import image_inputs, stack_layers
from mmkit.data.framing import fit_aspect
from mmkit.data.samples import sample_images


def reference(m, image, text):
    """The old clip_maps arithmetic: {"similarity", "relevance", "rollout"} and attn, one backward per word."""
    from mmkit.attention import eager_attention
    from mmkit.attention.maps import rollout

    with eager_attention(m):
        words, texts = dual._prompts(m, text)
        t = dual.prompt_embeddings(m, texts)
        px = image_inputs(m, image)["pixel_values"]
        vm = m.model.vision_model
        with torch.enable_grad():
            out = vm(pixel_values=px, output_attentions=True, return_dict=True)
            atts = list(out.attentions)
            patches = m.model.visual_projection(vm.post_layernorm(out.last_hidden_state[:, 1:])).float()
            emb = torch.nn.functional.normalize(m.model.visual_projection(out.pooler_output).float(), dim=-1)
            scores = (emb @ t.T)[0]
            relevance = []
            for w in range(len(words)):
                grads = torch.autograd.grad(scores[w], atts, retain_graph=True)
                r = torch.eye(atts[0].shape[-1])
                for a, g in zip(atts, grads):
                    r = r + (g[0] * a[0]).clamp(min=0).mean(0).detach().float() @ r
                relevance.append(r[0, 1:].numpy())
        att = stack_layers(atts)
        sim = (torch.nn.functional.normalize(patches[0], dim=-1) @ t.T).T.detach().numpy()
        return {"similarity": sim, "relevance": np.stack(relevance), "rollout": rollout(att)[0, 1:], "attn": att}


@pytest.fixture(scope="module")
def images(scenes):
    photos = sample_images()
    return [scenes[0].image, next(iter(photos.values())).resize((97, 41))]  # a scene, and a thin photo


@pytest.mark.parametrize("which", ["tiny", "bundled"])
def test_clip_maps_equal_the_per_word_computation(which, model_dirs, images):
    m = mmkit.load_model(str(model_dirs("clip")) if which == "tiny" else "shapes-clip")
    for image, text in ((images[0], "small red circle"), (images[1], "cat")):
        ref = reference(m, fit_aspect(image), text)
        maps = mmkit.attention_maps(m, image, text)
        grid = maps.grid
        n = len(maps.words)
        assert callable(dict.__getitem__(maps.extra, "relevance"))  # not computed until read
        assert np.array_equal(maps.extra["similarity"], ref["similarity"].reshape((n,) + grid))  # bit for bit
        assert np.array_equal(maps.extra["rollout"][0], ref["rollout"].reshape(grid))
        cls = ref["attn"][:, :, :1, 1:].reshape(ref["attn"].shape[:2] + (1,) + grid)
        assert np.array_equal(maps.attn[:, :, :1], cls)
        rel = maps.extra["relevance"]  # read after attention_maps has returned the model to sdpa
        assert rel.shape == (n,) + grid and rel.dtype == np.float32
        scale = np.abs(ref["relevance"]).max()
        assert np.abs(rel.reshape(n, -1) - ref["relevance"]).max() <= 1e-5 * scale  # float rounding only
        assert all(p.requires_grad for p in m.model.parameters())  # the weights are unfrozen again


def test_relevance_falls_back_to_one_pass_per_word(monkeypatch, model_dirs, images):
    """Where autograd cannot batch the backward pass, one pass per word gives the same relevance."""
    m = mmkit.load_model(str(model_dirs("clip")), attention=True)
    px = image_inputs(m, images[0])["pixel_values"]
    t = dual.prompt_embeddings(m, ["a red", "a circle", "a red circle"])
    batched = dual.clip_relevance(m, px, t)
    grad = torch.autograd.grad
    calls = []

    def no_batching(*args, is_grads_batched=False, **kw):
        calls.append(is_grads_batched)
        if is_grads_batched:
            raise RuntimeError("vmap: batching rule not implemented")
        return grad(*args, **kw)

    monkeypatch.setattr(torch.autograd, "grad", no_batching)
    looped = dual.clip_relevance(m, px, t)
    assert calls == [True, False, False, False]
    assert np.abs(batched - looped).max() <= 1e-5 * np.abs(looped).max() and looped.shape == (3, 16)


def test_prompt_embeddings_are_kept_and_bounded(model_dirs, images):
    m = mmkit.load_model(str(model_dirs("clip")))
    m.cache.pop("map_prompts", None)
    first = mmkit.attention_maps(m, images[0], "red circle")
    tpl = m.spec.zero_shot_template.format
    assert list(m.cache["map_prompts"]) == [(tpl("red"), tpl("circle"), tpl("red circle"))]
    again = mmkit.attention_maps(m, images[0], "red circle")  # from the kept embeddings: the same maps
    assert np.array_equal(first.extra["similarity"], again.extra["similarity"])
    for i in range(20):
        mmkit.attention_maps(m, images[0], f"word{i}")
    assert len(m.cache["map_prompts"]) == 16 and (tpl("word19"),) in m.cache["map_prompts"]
