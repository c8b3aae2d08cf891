"""BLIP and CLIP speedups (fused vision attention, absorbed text cross-attention, lean decoder steps, in-place
encoder layers, one-pass PIL preprocessing, each distinct image of a batch encoded once, CLIP's last layer for
the CLS token alone): the same outputs as transformers' code, and used only where attention maps are not needed."""
import contextlib
import functools
import inspect

import pytest
import torch

import mmkit
from mmkit.speedups import cache_keyword, fuse_attention
from mmkit.tasks.inputs import pixel_inputs


def _fused(module) -> bool:
    return "forward" in vars(module)  # an instance-level forward replaces the class's


@pytest.mark.parametrize("family", ["blip-caption", "blip-vqa", "blip-itm"])
def test_fused_vision_attention_matches_eager(family, model_dirs, scenes):
    fast = mmkit.load_model(model_dirs(family))
    eager = mmkit.load_model(model_dirs(family), attention=True)  # maps need the weights: not fused
    attn = [mod for mod in fast.model.modules() if type(mod).__name__ == "BlipAttention"]
    assert attn and all(_fused(mod) for mod in attn)
    assert not any(_fused(mod) for mod in eager.model.modules() if type(mod).__name__ == "BlipAttention")
    assert type(attn[0]).forward is not vars(attn[0])["forward"]  # the class itself is untouched
    px = pixel_inputs(fast, scenes.images[:3])["pixel_values"]
    with torch.inference_mode():
        a = fast.model.vision_model(pixel_values=px).last_hidden_state
        b = eager.model.vision_model(pixel_values=px).last_hidden_state
        weights = fast.model.vision_model(pixel_values=px, output_attentions=True).attentions
    assert torch.allclose(a, b, atol=1e-5)
    assert weights and all(w is not None and w.shape[-1] == w.shape[-2] for w in weights)  # asked for: still given


def test_fused_attention_falls_back_in_training_and_with_positional_arguments(model_dirs, scenes):
    m = mmkit.load_model(model_dirs("blip-caption"))
    mod = next(mod for mod in m.model.modules() if type(mod).__name__ == "BlipAttention")
    h = torch.randn(2, 5, mod.embed_dim)
    with torch.no_grad():
        fused_out, fused_w = mod(h)
        mod.train()
        try:
            train_out, train_w = mod(h)  # dropout applies to the weights in training: the original forward runs
        finally:
            mod.eval()
    assert fused_w is None and train_w is not None and train_w.shape == (2, mod.num_heads, 5, 5)
    assert torch.allclose(fused_out, train_out, atol=1e-5)  # attention dropout is 0 in these configs


@pytest.mark.parametrize("family", ["align", "vilt-vqa"])
def test_fuse_attention_leaves_other_models_alone(family, model_dirs):
    m = mmkit.load_model(model_dirs(family))
    assert fuse_attention(m.model) == 0


def _class_forward_calls(monkeypatch, cls) -> list:
    """A list that gets an item for every call of cls's own forward (what the faster forwards fall back to)."""
    calls = []
    real = cls.forward

    @functools.wraps(real)  # generate reads the forward's signature
    def counted(self, *args, **kwargs):
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(cls, "forward", counted)
    return calls


def _layers(model):
    return [mod for mod in model.modules() if type(mod).__name__ in ("BlipEncoderLayer", "CLIPEncoderLayer")]


@contextlib.contextmanager
def _class_forwards(layers):
    """The layers run their class's forward inside the block; their in-place forwards come back after it."""
    forwards = [vars(mod).pop("forward") for mod in layers]
    try:
        yield
    finally:
        for mod, f in zip(layers, forwards):
            mod.forward = f


@pytest.mark.parametrize("name", ["shapes-blip-caption", "shapes-clip"])
def test_in_place_encoder_layers_give_the_same_numbers_and_leave_their_input_alone(name, scenes):
    m = mmkit.load_model(name)
    layers = _layers(m.model)
    assert layers and all(_fused(mod) for mod in layers)
    assert not any(_fused(mod) for mod in _layers(mmkit.load_model(name, attention=True).model))
    px = pixel_inputs(m, scenes.images)["pixel_values"]
    vision = m.model.vision_model
    mask = (None,) if name == "shapes-clip" else ()  # CLIP's layers take an attention mask, positionally
    with torch.inference_mode():
        fast = vision(pixel_values=px, output_hidden_states=True)
        x = fast.hidden_states[0].clone()
        y = layers[0](x, *mask)
        assert torch.equal(x, fast.hidden_states[0])  # the input is not written to
        with _class_forwards(layers):
            ref = vision(pixel_values=px, output_hidden_states=True)
            y_ref = layers[0](x, *mask)
    assert torch.equal(y, y_ref)
    assert torch.equal(fast.last_hidden_state, ref.last_hidden_state)  # bit for bit, not just close
    assert len(fast.hidden_states) == len(ref.hidden_states)
    assert all(torch.equal(a, b) for a, b in zip(fast.hidden_states, ref.hidden_states))
    if name == "shapes-clip":  # the text tower (a causal mask passed positionally) as well
        enc = m.processor.tokenizer(["a red circle", "two blue squares and a green triangle"], padding=True,
                                    return_tensors="pt")
        with torch.inference_mode():
            fast_text = m.model.text_model(**enc).last_hidden_state
            with _class_forwards(layers):
                assert torch.equal(fast_text, m.model.text_model(**enc).last_hidden_state)


def test_in_place_encoder_layers_step_aside_for_gradients_and_training(monkeypatch, scenes):
    from transformers.models.clip.modeling_clip import CLIPEncoderLayer

    calls = _class_forward_calls(monkeypatch, CLIPEncoderLayer)
    m = mmkit.load_model("shapes-clip")
    n = len(_layers(m.model.vision_model))
    px = pixel_inputs(m, scenes.images[:2])["pixel_values"].requires_grad_()
    m.model.vision_model(pixel_values=px).pooler_output.sum().backward()  # Grad-CAM-style use: gradients flow
    assert len(calls) == n and px.grad is not None and px.grad.abs().sum() > 0
    with torch.inference_mode():
        m.model.vision_model(pixel_values=px.detach())
    assert len(calls) == n  # without gradients: the in-place forward
    m.model.train()
    try:
        with torch.inference_mode():
            m.model.vision_model(pixel_values=px.detach())
    finally:
        m.model.eval()
    assert len(calls) == 2 * n


@pytest.mark.parametrize("name, size", [("shapes-clip", None), ("clip", "base")])
def test_clip_image_features_run_the_last_layer_for_cls_alone_with_the_same_embeddings(name, size, model_dirs,
                                                                                      scenes):
    from mmkit.speedups import clip_image_features

    m = mmkit.load_model(name if size is None else model_dirs(name, size))
    px = pixel_inputs(m, scenes.images)["pixel_values"]
    last = m.model.vision_model.encoder.layers[-1]
    fc1_rows = []  # rows of each input to the last layer's MLP
    hook = last.mlp.fc1.register_forward_pre_hook(lambda mod, args: fc1_rows.append(args[0][..., 0].numel()))
    try:
        with torch.inference_mode():
            ours = clip_image_features(m.model, px)
            ref = m.model.get_image_features(pixel_values=px)
    finally:
        hook.remove()
    ref = getattr(ref, "pooler_output", ref)
    assert ours.shape == ref.shape == (len(px), m.model.config.projection_dim)
    assert torch.allclose(ours, ref, rtol=1e-5, atol=1e-5 * ref.abs().max().item())
    n = m.model.vision_model.embeddings.num_positions  # CLS + patches
    assert fc1_rows == [len(px), len(px) * n]  # the last layer's MLP saw one row per image; transformers' all of them


def test_clip_image_features_step_aside_where_they_do_not_apply(scenes, monkeypatch):
    from mmkit.speedups import clip_image_features

    m = mmkit.load_model("shapes-clip")
    px = pixel_inputs(m, scenes.images[:2])["pixel_values"]
    assert clip_image_features(m.model, px) is None  # gradients recorded (Grad-CAM): transformers' code
    with torch.inference_mode():
        align = mmkit.load_model("shapes-align")
        assert clip_image_features(align.model, pixel_inputs(align, scenes.images[:2])["pixel_values"]) is None
        m.model.train()
        try:
            assert clip_image_features(m.model, px) is None
        finally:
            m.model.eval()
    # the task functions take it for CLIP (through mmkit.families), and not for a model loaded for attention maps
    import mmkit.speedups as emb

    used = []
    monkeypatch.setattr(emb, "clip_image_features", lambda model, px: used.append(len(px)))  # None: the fallback
    ref = mmkit.embed_images(m, scenes.images)
    assert used == [len(scenes.images)] and ref.shape[0] == len(scenes.images)
    mmkit.embed_images(mmkit.load_model("shapes-clip", attention=True), scenes.images)
    assert used == [len(scenes.images)]
    monkeypatch.undo()
    assert torch.allclose(mmkit.embed_images(m, scenes.images), ref, atol=1e-5)
    labels = ["red circle", "blue square", "green triangle"]
    probs = mmkit.zero_shot(m, scenes.images, labels)
    monkeypatch.setattr(emb, "clip_image_features", lambda model, px: None)
    m.cache.clear()
    plain = mmkit.zero_shot(m, scenes.images, labels)  # transformers' get_image_features
    assert [max(p, key=p.get) for p in probs] == [max(p, key=p.get) for p in plain]


def _processors():
    """The bundled models' PIL image processors, and the real models' settings in the same classes."""
    blip = mmkit.load_model("shapes-blip-caption").processor.image_processor
    clip = mmkit.load_model("shapes-clip").processor.image_processor
    return {"shapes-blip": blip, "shapes-clip": clip,
            "blip-base": type(blip)(size={"height": 384, "width": 384}),  # BLIP-base's 384 x 384
            "clip-b32": type(clip)(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224}),
            "no-normalize": type(blip)(size={"height": 40, "width": 56}, do_normalize=False),
            "scalar-mean": type(blip)(size={"height": 32, "width": 32}, image_mean=0.5, image_std=0.25,
                                      rescale_factor=1 / 127.5)}


def _odd_images():
    """Scenes, photos, and shapes that stress the resize and crop arithmetic (after load_image and fit_aspect)."""
    import numpy as np

    from mmkit.data import sample_images
    from mmkit.data.framing import fit_aspect

    rng = np.random.default_rng(0)
    odd = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in [(1, 5000), (3, 3), (500, 7), (223, 225)]]
    photos = list(sample_images().values())[:3]
    return [fit_aspect(mmkit.load_image(x)) for x in mmkit.ShapesWorld(3, seed=4).images + photos + odd]


def test_pil_pixels_are_the_processors_pixels_bit_for_bit():
    from mmkit.speedups import pil_pixels

    images = _odd_images()
    for name, p in _processors().items():
        ours = pil_pixels(p, images)
        ref = p(images=images, return_tensors="pt")["pixel_values"]
        assert ours is not None, name
        assert ours.dtype == ref.dtype == torch.float32 and ours.shape == ref.shape, name
        assert torch.equal(ours, ref), name


def test_pil_pixels_leave_what_they_do_not_cover_to_the_processor(monkeypatch):
    import mmkit.tasks.inputs as inputs
    from mmkit.speedups import pil_pixels

    procs = _processors()
    image = mmkit.ShapesWorld(1, seed=4).images[0]
    declined = [
        (procs["shapes-blip"], [image.convert("L")]),  # not RGB
        (type(procs["shapes-clip"])(size={"height": 10, "width": 10}, crop_size={"height": 20, "width": 20}),
         [image]),  # a crop larger than the image: the processor pads
        (type(procs["shapes-blip"])(do_resize=False), [image, image.resize((20, 30))]),  # sizes would differ
        (type(procs["shapes-blip"])(size={"shortest_edge": 30, "longest_edge": 40}), [image]),  # another size rule
        (type(procs["shapes-blip"])(do_rescale=False), [image]),
        (mmkit.load_model("shapes-vilt-vqa").processor.image_processor, [image]),  # its own steps (padding, masks)
        (mmkit.load_model("shapes-align").processor.image_processor, [image]),
    ]
    for p, ims in declined:
        assert pil_pixels(p, ims) is None, type(p).__name__

    taken = []
    real = inputs.pil_pixels
    monkeypatch.setattr(inputs, "pil_pixels", lambda *a: taken.append(real(*a)) or taken[-1])
    m = mmkit.load_model("shapes-vilt-vqa")  # declined: pixel_inputs asks the processor, pixel mask and all
    assert set(pixel_inputs(m, [image])) == {"pixel_values", "pixel_mask"} and taken == [None]
    m = mmkit.load_model("shapes-blip-caption")
    taken.clear()
    out = pixel_inputs(m, [image, mmkit.load_image(image.convert("RGBA"))])  # task functions load every input as RGB
    assert taken[0] is not None and torch.equal(out["pixel_values"], taken[0])


def _cross_attention(m, layer: int = 0):
    """The self-attention module of a BLIP text layer's cross-attention block (the one given image states)."""
    text = getattr(m.model, "text_decoder", None) or m.model.text_encoder
    encoder = text.bert.encoder if hasattr(text, "bert") else text.encoder
    return encoder.layer[layer].crossattention.self


@pytest.fixture
def absorbed_calls(monkeypatch):
    """Records, for every BLIP text attention call, whether the absorbed cross-attention was used."""
    import mmkit.speedups.blip as speedups

    calls = []
    real = speedups._absorb
    monkeypatch.setattr(speedups, "_absorb", lambda *a: calls.append(real(*a)) or calls[-1])
    return calls


@pytest.mark.parametrize("lq", [1, 6])
def test_absorbed_cross_attention_matches_projected_keys_and_values(lq, model_dirs, absorbed_calls):
    torch.manual_seed(0)
    m = mmkit.load_model(model_dirs("blip-caption", "base"))  # 577 image tokens, as BLIP-base
    mod = _cross_attention(m)
    assert _fused(mod)
    with torch.no_grad():  # make the attention peaked and the key bias large: the derivation must hold anyway
        mod.query.weight.normal_(0, 0.1)
        mod.key.weight.normal_(0, 0.1)
        mod.key.bias.normal_(0, 1)
        mod.value.bias.normal_(0, 1)
        x = torch.randn(2, 577, mod.key.in_features)
        h = torch.randn(2, lq, mod.query.in_features)
        out, probs = mod(h, encoder_hidden_states=x)
        ref_out, ref_probs = type(mod).forward(mod, h, encoder_hidden_states=x)
    assert absorbed_calls == [True]
    assert probs.shape == ref_probs.shape == (2, mod.num_attention_heads, lq, 577)
    assert ref_probs.max(-1).values.mean() > 0.5  # peaked: a wrong bias or head layout would show
    assert torch.allclose(probs, ref_probs, atol=1e-5) and torch.allclose(out, ref_out, atol=1e-4)


def test_absorbed_cross_attention_is_used_only_where_it_is_cheaper(model_dirs, absorbed_calls):
    from transformers import DynamicCache, EncoderDecoderCache

    m = mmkit.load_model(model_dirs("blip-caption", "base"))
    mod = _cross_attention(m)
    x = torch.randn(1, 577, mod.key.in_features)
    with torch.no_grad():
        mod(torch.randn(1, 400, mod.query.in_features), encoder_hidden_states=x)  # 400 queries: projecting is cheaper
        mod(torch.randn(1, 1, mod.query.in_features))  # self-attention
        cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
        cache.is_updated[mod.layer_idx] = True
        kv = torch.randn(1, mod.num_attention_heads, 577, mod.attention_head_size)
        cache.cross_attention_cache.update(kv, kv, mod.layer_idx)
        key = cache_keyword(mod)
        mod(torch.randn(1, 1, mod.query.in_features), encoder_hidden_states=x, **{key: cache})  # cached
        mod(torch.randn(1, 1, mod.query.in_features), encoder_hidden_states=x, **{key: DynamicCache()})  # not cross
        mod.train()
        try:
            mod(torch.randn(1, 1, mod.query.in_features), encoder_hidden_states=x)  # dropout: as written
        finally:
            mod.eval()
    assert absorbed_calls == [False] * 5


@pytest.fixture
def original_decoder_calls(monkeypatch):
    """Counts the calls of transformers' own BlipTextLMHeadModel.forward (the lean forward's fallback)."""
    from transformers.models.blip.modeling_blip_text import BlipTextLMHeadModel

    return _class_forward_calls(monkeypatch, BlipTextLMHeadModel)


@pytest.mark.parametrize("family,size", [("blip-caption", "base"), ("blip-vqa", "tiny")])
def test_lean_decoder_steps_match_transformers_step_by_step(family, size, model_dirs, original_decoder_calls,
                                                           absorbed_calls):
    from transformers import DynamicCache

    m = mmkit.load_model(model_dirs(family, size))
    dec = m.model.text_decoder
    assert _fused(dec) and inspect.signature(dec.forward) == inspect.signature(type(dec).forward.__get__(dec))
    torch.manual_seed(0)
    x = torch.randn(2, 577 if size == "base" else 9, dec.config.encoder_hidden_size)  # (B, S, E) image/question
    x_mask = torch.ones(x.shape[:2], dtype=torch.long)  # (B, S) nothing padded
    caches, key = (DynamicCache(), DynamicCache()), cache_keyword(dec)
    prompt = 4 if size == "base" else 12  # 12 queries over 9 states: projecting them is cheaper than absorbing
    ids = torch.randint(5, dec.config.vocab_size, (2, prompt))  # a prompt, then 3 steps of one token
    with torch.no_grad():
        for step in range(4):
            kw = dict(input_ids=ids, encoder_hidden_states=x, encoder_attention_mask=x_mask, use_cache=True)
            lean = dec(**kw, **{key: caches[0]}).logits
            n = len(original_decoder_calls)
            ref = type(dec).forward(dec, **kw, **{key: caches[1]}).logits
            assert len(original_decoder_calls) == n + 1  # only the reference ran transformers' code
            assert lean.shape == ref.shape == (2, prompt if step == 0 else 1, dec.config.vocab_size)
            torch.testing.assert_close(lean, ref, rtol=1e-4, atol=1e-4)
            ids = ref[:, -1:].argmax(-1)  # (B, 1) the next token
    assert caches[0].get_seq_length() == caches[1].get_seq_length() == prompt + 3
    torch.testing.assert_close(caches[0].layers[-1].keys, caches[1].layers[-1].keys, rtol=1e-4, atol=1e-4)
    assert len(original_decoder_calls) == 4
    assert True in absorbed_calls and (size == "base" or False in absorbed_calls)  # both cross-attention paths ran


def test_lean_decoder_runs_transformers_code_for_anything_but_a_plain_step(model_dirs, original_decoder_calls):
    from transformers import DynamicCache, EncoderDecoderCache

    m = mmkit.load_model(model_dirs("blip-caption"))
    dec = m.model.text_decoder
    key = cache_keyword(dec)
    x = torch.randn(2, 9, dec.config.encoder_hidden_size)
    ids = torch.randint(5, dec.config.vocab_size, (2, 3))

    def step(cache=None, **kw):
        with torch.no_grad():
            return dec(input_ids=kw.pop("input_ids", ids), encoder_hidden_states=x, use_cache=True,
                       **{key: DynamicCache() if cache is None else cache}, **kw)

    step()
    assert original_decoder_calls == []  # a plain step: the lean forward
    step(output_attentions=True)  # maps asked for
    step(labels=ids)  # a loss
    step(attention_mask=torch.tensor([[1, 1, 1], [0, 1, 1]]))  # a padded prompt
    step(encoder_attention_mask=torch.tensor([[1] * 9, [1] * 5 + [0] * 4]))  # padded encoder states (VQA questions)
    step(EncoderDecoderCache(DynamicCache(), DynamicCache()))  # a cache it does not fill
    with torch.no_grad():
        dec(input_ids=ids, encoder_hidden_states=x, use_cache=False)  # no cache
    cache = DynamicCache()
    step(cache)
    step(cache)  # three new tokens after cached ones: needs a mask the lean step does not build
    dec.train()
    try:
        step()  # dropout
    finally:
        dec.eval()
    assert len(original_decoder_calls) == 8


def test_bundled_blip_models_give_the_same_results_with_and_without_the_speedups(absorbed_calls,
                                                                                 original_decoder_calls):
    scenes = mmkit.ShapesWorld(24, seed=11, split="test")
    images = scenes.images
    fast = {n: mmkit.load_model(f"shapes-blip-{n}") for n in ("caption", "vqa", "itm")}
    plain = {n: mmkit.load_model(f"shapes-blip-{n}", attention=True) for n in ("caption", "vqa", "itm")}
    questions = [s.qa[i % len(s.qa)].question for i, s in enumerate(scenes)]  # every kind of question
    for kw in ({}, {"num_beams": 3}, {"do_sample": True, "top_p": 0.9, "seed": 3}, {"prompt": "a large"}):
        n = len(original_decoder_calls)
        fast_captions = mmkit.caption(fast["caption"], images, **kw)
        assert len(original_decoder_calls) == n  # every decoding step took the lean forward
        assert fast_captions == mmkit.caption(plain["caption"], images, **kw)
    # questions of different lengths are padded, and those steps run transformers' code (speedups.py)
    assert mmkit.answer(fast["vqa"], images, questions) == mmkit.answer(plain["vqa"], images, questions)
    n = len(original_decoder_calls)
    fast_answers = mmkit.answer(fast["vqa"], images, questions[0])  # one question for all: nothing padded
    assert len(original_decoder_calls) == n
    assert fast_answers == mmkit.answer(plain["vqa"], images, questions[0])
    captions = mmkit.caption(plain["caption"], images)
    a = mmkit.match(fast["itm"], images, captions, paired=True)
    b = mmkit.match(plain["itm"], images, captions, paired=True)
    assert torch.allclose(a, b, atol=1e-4)
    assert any(absorbed_calls)  # the fast models did take the absorbed path


def test_greedy_caption_gives_what_generate_gives(scenes, model_dirs):
    from mmkit.speedups import can_decode_greedily, greedy_caption
    from mmkit.tasks.inputs import tokenize

    bundled = mmkit.load_model("shapes-blip-caption")  # trained: captions end at different lengths, then pad
    base = mmkit.load_model(model_dirs("blip-caption", "base"))  # real size: 12 layers, 577 image tokens
    images = mmkit.ShapesWorld(16, seed=5, split="test").images
    cases = [(bundled, images, None, dict(max_new_tokens=30)),
             (bundled, images, None, dict(max_new_tokens=4)),  # cut off before the end
             (bundled, images, None, dict(max_new_tokens=20, min_new_tokens=12)),  # the end held back
             (bundled, images, "a large", dict(max_new_tokens=30)),
             (base, scenes.images[:2], "a picture of", dict(max_new_tokens=5))]
    with torch.inference_mode():
        for m, ims, prompt, kw in cases:
            assert can_decode_greedily(m.model)
            px = pixel_inputs(m, ims)["pixel_values"]
            enc = tokenize(m, [prompt] * len(ims)) if prompt else {}
            enc = {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask")}  # what caption passes
            ours = greedy_caption(m.model, px, enc.get("input_ids"), kw["max_new_tokens"], kw.get("min_new_tokens", 0))
            ref = m.model.generate(pixel_values=px, **enc, **kw)
            assert torch.equal(ours, ref), (prompt, kw)
            if m is bundled and kw["max_new_tokens"] == 30:  # captions of several lengths: pad ids after the ends
                assert (ours == m.model.config.text_config.pad_token_id).any()


def test_caption_maps_decode_from_their_own_vision_states_and_write_the_caption(monkeypatch):
    from mmkit.data.samples import sample_images

    m = mmkit.load_model("shapes-blip-caption")
    tower = m.model.vision_model
    calls = []
    hook = tower.register_forward_hook(lambda *a: calls.append(1))
    try:
        photo = next(iter(sample_images().values()))  # a real photo, out of the bundled model's domain: it warns
        images = mmkit.ShapesWorld(6, seed=9, split="test").images + [photo.resize((300, 200))]
        for image in images:
            for kw in ({}, {"max_new_tokens": 4}, {"min_new_tokens": 9, "max_new_tokens": 12}):
                with pytest.warns() if image is images[-1] else contextlib.nullcontext():
                    expected = mmkit.caption(m, image, **kw)
                calls.clear()
                with pytest.warns() if image is images[-1] else contextlib.nullcontext():
                    maps = mmkit.attention_maps(m, image, **kw)
                assert maps.text == expected, kw
                assert len(calls) == 1  # the tower's states serve the decoding and the maps
        calls.clear()
        mmkit.attention_maps(m, images[0], num_beams=2)  # beam search: transformers' generate, a second pass
        assert len(calls) == 2
    finally:
        hook.remove()


def test_captioning_decodes_greedily_only_where_that_is_what_generate_does(model_dirs, monkeypatch):
    import mmkit.tasks.generation as generation
    from mmkit.speedups import can_decode_greedily

    used = []
    real = generation.greedy_caption
    monkeypatch.setattr(generation, "greedy_caption", lambda *a, **k: used.append(1) or real(*a, **k))
    m = mmkit.load_model("shapes-blip-caption")
    image = mmkit.ShapesWorld(1, seed=2, split="test").images[0]
    for kw, expected in (({}, 1), ({"prompt": "a"}, 1), ({"min_new_tokens": 3}, 1), ({"num_beams": 2}, 0),
                         ({"do_sample": True}, 0), ({"repetition_penalty": 1.3}, 0)):
        used.clear()
        mmkit.caption(m, image, **kw)
        assert len(used) == expected, kw
    assert not can_decode_greedily(mmkit.load_model("shapes-blip-caption", attention=True).model)  # transformers' code
    assert not can_decode_greedily(mmkit.load_model("shapes-blip-vqa").model)
    assert not can_decode_greedily(mmkit.load_model(model_dirs("clip")).model)
    mmkit.models.clear_cache()
    m = mmkit.load_model("shapes-blip-caption")
    m.model.text_decoder.generation_config.no_repeat_ngram_size = 2  # a checkpoint that sets a logits processor
    assert not can_decode_greedily(m.model)
    mmkit.models.clear_cache()


def test_first_equal_rows_finds_copies_and_only_copies():
    from mmkit.speedups.blip import _first_equal_rows

    x = torch.randn(5, 3, 40, 40)
    assert _first_equal_rows(x) is None  # all different
    x[2], x[4] = x[0], x[1]
    assert _first_equal_rows(x) == [0, 1, 0, 3, 1]
    x[3] = x[0]
    x[3, 0, 0, 1] += 1  # one value off, between the probed positions
    assert _first_equal_rows(x) == [0, 1, 0, 3, 1]


@pytest.mark.parametrize("name", ["shapes-blip-caption", "shapes-blip-vqa"])
def test_vision_tower_encodes_each_distinct_image_of_a_batch_once(name, scenes):
    fast, plain = mmkit.load_model(name), mmkit.load_model(name, attention=True)  # plain: transformers' code
    a, b = scenes.images[:2]
    seen = []  # images per run of the patch embedding
    hook = fast.model.vision_model.embeddings.register_forward_hook(lambda mod, args, out: seen.append(len(out)))
    px = pixel_inputs(fast, [a, b, a, a])["pixel_values"]  # rows 0, 2 and 3 are the same image
    with torch.inference_mode():
        out = fast.model.vision_model(pixel_values=px)
        ref = plain.model.vision_model(pixel_values=px)
        hidden = fast.model.vision_model(pixel_values=px, output_hidden_states=True)  # asked for: every row
    hook.remove()
    assert seen == [2, 4]
    assert torch.allclose(out.last_hidden_state, ref.last_hidden_state, atol=1e-5)
    assert torch.allclose(out.pooler_output, ref.pooler_output, atol=1e-5)
    assert len(hidden.hidden_states) == len(plain.model.vision_model.encoder.layers) + 1


def test_one_image_many_texts_gives_the_same_results_with_one_vision_pass(monkeypatch):
    scenes = list(mmkit.ShapesWorld(3, seed=12, split="test"))
    image = scenes[0].image
    questions = [q.question for q in scenes[0].qa]
    loaded = []
    real = mmkit.tasks.inputs.load_image
    monkeypatch.setattr(mmkit.tasks.inputs, "load_image", lambda x: loaded.append(x) or real(x))
    results = {}
    for plain in (False, True):
        cap = mmkit.load_model("shapes-blip-caption", attention=plain)
        vqa = mmkit.load_model("shapes-blip-vqa", attention=plain)
        seen = []
        hooks = [m.model.vision_model.embeddings.register_forward_hook(lambda mod, args, out: seen.append(len(out)))
                 for m in (cap, vqa)]
        results[plain] = (mmkit.caption(cap, [image] * 6, do_sample=True, temperature=3.0, seed=3),
                          mmkit.answer(vqa, image, questions),
                          mmkit.answer(vqa, [s.image for s in scenes for _ in s.qa],
                                       [q.question for s in scenes for q in s.qa]),
                          seen)
        for h in hooks:
            h.remove()
    captions, answers, all_answers, seen = results[False]
    assert seen == [1, 1, 3]  # each image encoded once: 6 samples, a scene's questions, three scenes' questions
    assert results[True][3] == [6, len(questions), sum(len(s.qa) for s in scenes)]  # transformers: once per row
    assert (captions, answers, all_answers) == results[True][:3]
    assert len(set(captions)) > 1  # sampled: the rows really are decoded apart
    assert len(loaded) == 2 * (1 + 1 + 3)  # a repeated input is loaded once per call (an image list)


# ---------------------------------------------------------------------------------------------
# every patched path against transformers' own code; the switch; arguments a faster forward does not handle
# ---------------------------------------------------------------------------------------------

@pytest.fixture
def switch(monkeypatch):
    """config.set_speedups for one test: back to $MMKIT_SPEEDUPS (unset) afterwards."""
    from mmkit import config

    monkeypatch.setattr(config, "_SPEEDUPS", None)
    monkeypatch.delenv("MMKIT_SPEEDUPS", raising=False)
    return config.set_speedups


def _module(model, cls_name: str, nth: int = 0):
    return [mod for mod in model.modules() if type(mod).__name__ == cls_name][nth]


def _patched_cases(model_dirs, scenes):
    """name -> (a call of the patched path, whether its outputs are transformers' bit for bit, the class whose own
    forward it replaces, or the patch embedding of a vision tower that encodes fewer rows, or None). Each call
    returns a tensor; run with the speed-ups on, then off."""
    from transformers import DynamicCache

    from mmkit.speedups import clip_image_features, greedy_caption, pil_pixels

    torch.manual_seed(0)
    cap = mmkit.load_model(model_dirs("blip-caption"))
    clip = mmkit.load_model("shapes-clip")
    blip2 = mmkit.load_model(model_dirs("blip2"))
    bundled = mmkit.load_model("shapes-blip-caption")
    attn = _module(cap.model, "BlipAttention")
    h = torch.randn(2, 17, attn.embed_dim)  # (B, N, D) vision tokens
    clip_layer = _module(clip.model.vision_model, "CLIPEncoderLayer")
    hc = torch.randn(2, 17, clip_layer.embed_dim)
    cross = _cross_attention(cap)
    dec = cap.model.text_decoder
    x = torch.randn(2, 17, dec.config.encoder_hidden_size)  # (B, S, E) image states
    ids = torch.randint(5, dec.config.vocab_size, (2, 3))
    key = cache_keyword(dec)
    blip_px = pixel_inputs(cap, [scenes.images[0], scenes.images[1], scenes.images[0]])["pixel_values"]  # a repeat
    blip2_px = pixel_inputs(blip2, [scenes.images[2], scenes.images[2]])["pixel_values"]
    clip_px = pixel_inputs(clip, scenes.images)["pixel_values"]
    proc = bundled.processor.image_processor
    photos = _odd_images()
    bundled_px = pixel_inputs(bundled, scenes.images)["pixel_values"]
    return {
        "BlipAttention": (lambda: attn(h)[0], False, type(attn)),
        "BlipEncoderLayer": (lambda: _module(cap.model, "BlipEncoderLayer")(h), False, None),  # its attention fused
        "CLIPEncoderLayer": (lambda: clip_layer(hc, None), True, type(clip_layer)),
        "BlipTextSelfAttention": (lambda: cross(torch.randn(2, 1, cross.query.in_features, generator=torch.Generator()
                                                            .manual_seed(1)), encoder_hidden_states=x)[0],
                                  False, type(cross)),
        "BlipTextLMHeadModel": (lambda: dec(input_ids=ids, encoder_hidden_states=x, use_cache=True,
                                            **{key: DynamicCache()}).logits, False, type(dec)),
        # the vision towers call their class's forward for the distinct images: told apart by the rows encoded
        "BlipVisionModel": (lambda: cap.model.vision_model(pixel_values=blip_px).last_hidden_state, False,
                            cap.model.vision_model.embeddings),
        "Blip2VisionModel": (lambda: blip2.model.vision_model(pixel_values=blip2_px).last_hidden_state, False,
                             blip2.model.vision_model.embeddings),
        "clip_image_features": (lambda: _or(clip_image_features(clip.model, clip_px),
                                            lambda: clip.model.get_image_features(pixel_values=clip_px)), False, None),
        "pil_pixels": (lambda: _or(pil_pixels(proc, photos), lambda: proc(images=photos, return_tensors="pt")
                                   ["pixel_values"]), True, None),
        "greedy_caption": (lambda: greedy_caption(bundled.model, bundled_px, None, 20)
                           if mmkit.speedups.can_decode_greedily(bundled.model)
                           else bundled.model.generate(pixel_values=bundled_px, max_new_tokens=20), True, None),
    }


def _or(value, fallback):
    """value, or fallback() where a speed-up declined (returned None), as the task functions do."""
    out = value if value is not None else fallback()
    return getattr(out, "pooler_output", out)


def test_every_patched_path_gives_transformers_outputs_and_the_switch_turns_it_off(model_dirs, scenes, switch,
                                                                                    monkeypatch):
    """On the installed transformers (CI: the oldest and the newest tested): bit-identical where the speed-up keeps
    transformers' operations, within 1e-5 of the largest value where it changes their order; off, transformers'
    own forward runs on the very same modules."""
    from mmkit.speedups import _FORWARDS

    cases = _patched_cases(model_dirs, scenes)
    assert set(_FORWARDS) <= set(cases), "a new patched forward needs its case here"
    for name, (call, exact, cls) in cases.items():
        rows, hook = [], None
        if isinstance(cls, torch.nn.Module):  # a vision tower's patch embedding: count the rows it encodes
            hook = cls.register_forward_hook(lambda mod, args, out: rows.append(len(out)))
        calls = _class_forward_calls(monkeypatch, cls) if isinstance(cls, type) else []
        switch(True)
        with torch.inference_mode():
            fast = call()
        taken = not calls  # the class's own forward did not run: the faster path did
        switch(False)
        with torch.inference_mode():
            ref = call()
        if isinstance(cls, type):
            assert taken and calls, f"{name}: the speed-up did not run on, or transformers' forward did not run off"
            monkeypatch.setattr(cls, "forward", cls.forward.__wrapped__)
        if hook is not None:
            hook.remove()
            assert rows[0] < rows[1] == len(fast), f"{name}: rows encoded on / off {rows}"
        assert fast.shape == ref.shape and fast.dtype == ref.dtype, name
        if exact:
            assert torch.equal(fast, ref), name
        else:
            scale = ref.abs().max().item()
            assert torch.allclose(fast.float(), ref.float(), rtol=1e-5, atol=1e-5 * scale), \
                f"{name}: {(fast - ref).abs().max().item()} apart, largest value {scale}"


def test_speedups_off_decline_every_path_that_is_not_a_module_forward(switch, scenes):
    from mmkit.speedups import can_decode_greedily, clip_image_features, pil_pixels

    clip, cap = mmkit.load_model("shapes-clip"), mmkit.load_model("shapes-blip-caption")
    px = pixel_inputs(clip, scenes.images[:2])["pixel_values"]
    switch(False)
    with torch.inference_mode():
        assert clip_image_features(clip.model, px) is None
    assert pil_pixels(cap.processor.image_processor, scenes.images[:2]) is None
    assert not can_decode_greedily(cap.model)
    switch(True)  # on again: each of them runs (the equivalence test above compares them with transformers)
    with torch.inference_mode():
        assert clip_image_features(clip.model, px) is not None
    assert pil_pixels(cap.processor.image_processor, scenes.images[:2]) is not None
    assert can_decode_greedily(cap.model)


def test_models_loaded_with_speedups_off_are_plain_transformers_and_give_its_outputs(monkeypatch, scenes):
    """MMKIT_SPEEDUPS=0: nothing patched, and mmkit's results are what transformers itself computes."""
    import transformers

    from mmkit import config
    from mmkit.models import clear_cache

    monkeypatch.setattr(config, "_SPEEDUPS", None)
    monkeypatch.setenv("MMKIT_SPEEDUPS", "0")
    clear_cache()
    try:
        clip, cap = mmkit.load_model("shapes-clip"), mmkit.load_model("shapes-blip-caption")
        assert not any(_fused(mod) for m in (clip, cap) for mod in m.model.modules())
        images = scenes.images
        plain_clip = transformers.CLIPModel.from_pretrained(clip.spec.repo).eval()
        with torch.inference_mode():
            px = clip.processor.image_processor(images=images, return_tensors="pt")["pixel_values"]
            ref = torch.nn.functional.normalize(plain_clip.get_image_features(pixel_values=px).pooler_output, dim=-1)
        assert torch.equal(mmkit.embed_images(clip, images), ref)
        given = []  # the arguments mmkit gives generate, replayed on a model transformers loads itself
        real = cap.model.generate
        monkeypatch.setattr(cap.model, "generate", lambda **kw: given.append(kw) or real(**kw))
        captions = mmkit.caption(cap, images)
        plain_cap = transformers.BlipForConditionalGeneration.from_pretrained(cap.spec.repo).eval()
        with torch.inference_mode():
            ids = plain_cap.generate(**given[0])
        assert captions == [" ".join(t.split()) for t in cap.processor.tokenizer.batch_decode(ids,
                                                                                             skip_special_tokens=True)]
        assert torch.equal(given[0]["pixel_values"],
                           cap.processor.image_processor(images=images, return_tensors="pt")["pixel_values"])
    finally:
        clear_cache()


def test_faster_forwards_hand_arguments_they_do_not_handle_to_transformers(monkeypatch, model_dirs):
    """Never dropped: a keyword the faster forward does not know reaches transformers' forward, unchanged."""
    m = mmkit.load_model(model_dirs("blip-caption"))
    attn, cross = _module(m.model, "BlipAttention"), _cross_attention(m)
    seen = []
    for cls in (type(attn), type(cross)):
        real = cls.forward

        def spy(self, *args, _real=real, **kwargs):
            seen.append(kwargs)
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(cls, "forward", spy)
    h = torch.randn(1, 17, attn.embed_dim)
    marker = torch.ones(1)
    with torch.inference_mode():
        attn(h)
        assert seen == []  # plain: the fused forward
        attn(h, some_new_argument=marker)
        attn(h, head_mask=torch.ones(attn.num_heads))  # what an older forward took: not silently ignored
        x = torch.randn(1, 17, cross.key.in_features)
        cross(torch.randn(1, 1, cross.query.in_features), encoder_hidden_states=x)
        assert len(seen) == 2
        cross(torch.randn(1, 1, cross.query.in_features), encoder_hidden_states=x, some_new_argument=marker)
    assert seen[0]["some_new_argument"] is marker and seen[1]["head_mask"] is not None
    assert seen[2]["some_new_argument"] is marker
