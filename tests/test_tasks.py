"""Task functions on random-init models: types, shapes, one-in/one-out, batching and input errors.

Tiny models cover every family; real-size random-init configs (CLIP ViT-B/32, ViLT-B/32, BLIP-base,
ALIGN-base) cover the pretrained architectures without the hub.
"""
import pytest
import torch
from PIL import Image

import mmkit
from mmkit import InputError

DUAL = ["clip", "align", "blip-itm"]


@pytest.mark.parametrize("family", DUAL)
def test_embeddings_zero_shot_match_retrieve(family, model_dirs, scenes):
    m = mmkit.load_model(model_dirs(family))
    ims = scenes.images
    e = mmkit.embed_images(m, ims)
    t = mmkit.embed_texts(m, ["a red circle", "a blue square", "a green triangle"])
    assert e.shape[0] == 4 and t.shape == (3, e.shape[1]) and e.dtype == torch.float32
    assert torch.allclose(e.norm(dim=-1), torch.ones(4), atol=1e-5)
    assert mmkit.embed_images(m, ims[0]).shape == (1, e.shape[1])
    # batching does not change the result
    assert torch.allclose(mmkit.embed_images(m, ims, batch_size=1), e, atol=1e-5)

    zs = mmkit.zero_shot(m, ims[0], ["red circle", "blue square", "green triangle"], templates=["a {}", "the {}"])
    assert isinstance(zs, dict) and list(zs) == ["red circle", "blue square", "green triangle"]
    assert abs(sum(zs.values()) - 1) < 1e-5
    many = mmkit.zero_shot(m, ims, ["red circle", "blue square"])
    assert isinstance(many, list) and len(many) == 4

    sim = mmkit.match(m, ims, ["a red circle", "a blue square"])
    assert sim.shape == (4, 2)
    paired = mmkit.match(m, ims[:2], ["a red circle", "a blue square"], paired=True)
    assert paired.shape == (2,)
    if family != "blip-itm":  # dual encoders: paired scores are the diagonal of the matrix
        assert torch.allclose(paired, sim[:2].diagonal(), atol=1e-5)

    hits = mmkit.retrieve(m, "a red circle", ims, k=2)
    assert len(hits) == 2 and hits[0].score >= hits[1].score and hits[0].item is ims[hits[0].index]
    gallery = mmkit.embed_images(m, ims)
    assert [h.index for h in mmkit.retrieve(m, "a red circle", gallery, k=2)] == [h.index for h in hits]
    back = mmkit.retrieve(m, [ims[0], ims[1]], ["a red circle", "a blue square", "a cat"], k=3)
    assert len(back) == 2 and len(back[0]) == 3 and isinstance(back[0][0].item, str)


def test_zero_shot_caches_label_embeddings(model_dirs, scenes, monkeypatch):
    m = mmkit.load_model(model_dirs("clip"))
    calls = []
    real = mmkit.tasks.embeddings.text_embeddings
    monkeypatch.setattr(mmkit.tasks.embeddings, "text_embeddings", lambda *a, **k: calls.append(1) or real(*a, **k))
    labels = [f"label {i}" for i in range(20)]
    first = mmkit.zero_shot(m, scenes.images, labels)
    second = mmkit.zero_shot(m, scenes.images, labels)
    assert len(calls) == 1 and first == second


def test_caption_decoding_options(model_dirs, scenes):
    m = mmkit.load_model(model_dirs("blip-caption"))
    one = mmkit.caption(m, scenes[0].image, max_new_tokens=4)
    many = mmkit.caption(m, scenes.images, max_new_tokens=4, batch_size=3)
    assert isinstance(one, str) and isinstance(many, list) and len(many) == 4 and many[0] == one
    assert mmkit.caption(m, scenes[0].image, max_new_tokens=4, num_beams=1) == one
    assert isinstance(mmkit.caption(m, scenes[0].image, max_new_tokens=4, num_beams=3, length_penalty=0.5), str)
    s1 = mmkit.caption(m, scenes[0].image, max_new_tokens=6, do_sample=True, temperature=1.5, top_p=0.9, seed=3)
    s2 = mmkit.caption(m, scenes[0].image, max_new_tokens=6, do_sample=True, temperature=1.5, top_p=0.9, seed=3)
    assert s1 == s2  # seeded sampling repeats
    assert mmkit.caption(m, scenes[0].image, prompt="a small", max_new_tokens=3).startswith("a small")


@pytest.mark.parametrize("family", ["vilt-vqa", "blip-vqa"])
def test_answer_broadcasting(family, model_dirs, scenes):
    m = mmkit.load_model(model_dirs(family))
    ims = scenes.images
    assert isinstance(mmkit.answer(m, ims[0], "what color is the circle?"), str)
    assert len(mmkit.answer(m, ims, "how many objects are there?")) == 4
    assert len(mmkit.answer(m, ims[0], ["is there a red circle?", "what shape is the red object?"])) == 2
    assert len(mmkit.answer(m, ims[:2], ["a?", "b?"])) == 2
    with pytest.raises(InputError, match="3 images but 2 questions"):
        mmkit.answer(m, ims[:3], ["a?", "b?"])


def test_vilt_answers_come_from_the_label_table(model_dirs, scenes):
    m = mmkit.load_model(model_dirs("vilt-vqa"))
    assert set(mmkit.answer(m, scenes.images, "what color is the circle?")) <= set(mmkit.data.ANSWERS)


def test_vilt_itm_match(model_dirs, scenes):
    m = mmkit.load_model(model_dirs("vilt-itm"))
    s = mmkit.match(m, scenes.images[:2], ["a red circle", "x", "y"])
    assert s.shape == (2, 3) and ((s >= 0) & (s <= 1)).all()


def test_wrong_family_names_the_right_one(model_dirs, scenes):
    clip = mmkit.load_model(model_dirs("clip"))
    with pytest.raises(InputError, match="cannot caption; try blip-caption"):
        mmkit.caption(clip, scenes[0].image)
    with pytest.raises(InputError, match="cannot answer"):
        mmkit.answer(clip, scenes[0].image, "what?")
    cap = mmkit.load_model(model_dirs("blip-caption"))
    with pytest.raises(InputError, match="cannot zero_shot; try clip, align or blip-itm"):
        mmkit.zero_shot(cap, scenes[0].image, ["a", "b"])


def test_bad_text_and_label_inputs(model_dirs, scenes):
    m = mmkit.load_model(model_dirs("clip"))
    im = scenes[0].image
    for labels, words in [([], "at least two"), (["cat"], "at least two"), (["cat", "cat"], "duplicate"), (["cat", "  "], "empty"),
                          ("cat", "list"), (["cat", 3], "string")]:
        with pytest.raises(InputError, match=words):
            mmkit.zero_shot(m, im, labels)
    with pytest.raises(InputError, match="'{}'"):
        mmkit.zero_shot(m, im, ["cat", "dog"], templates=["a photo"])
    with pytest.raises(InputError, match="empty"):
        mmkit.embed_images(m, [])
    with pytest.raises(InputError, match="paired"):
        mmkit.match(m, [im, im], ["a"], paired=True)
    with pytest.raises(InputError):
        mmkit.retrieve(m, "a", ["texts", "not images"])
    with pytest.warns(UserWarning, match="truncated") as caught:
        e = mmkit.embed_texts(m, ["red " * 5000])  # 20 kB of text: truncated with a warning
    assert e.shape[0] == 1
    assert caught[0].filename == __file__  # the warning points at the caller's line, not into mmkit's batching
    assert mmkit.embed_texts(m, ["a red\x00 circle 🙂 مرحبا"]).shape[0] == 1


def test_max_new_tokens_is_capped_at_the_decoder_limit(model_dirs, scenes):
    m = mmkit.load_model(model_dirs("blip-caption"))  # 40 text positions
    with pytest.warns(UserWarning, match="lowered to 38"):
        assert isinstance(mmkit.caption(m, scenes[0].image, max_new_tokens=100), str)


def test_bad_generation_options(model_dirs, scenes):
    m = mmkit.load_model(model_dirs("blip-caption"))
    for kw in [dict(num_beams=0), dict(do_sample=True, temperature=0), dict(do_sample=True, top_p=1.5)]:
        with pytest.raises(InputError):
            mmkit.caption(m, scenes[0].image, **kw)


# ---- the real architectures, random weights -------------------------------------------------

def test_clip_b32_random_init(model_dirs, scenes):
    m = mmkit.load_model(model_dirs("clip", "base"))
    assert m.model.config.vision_config.patch_size == 32 and m.model.config.vision_config.hidden_size == 768
    assert mmkit.embed_images(m, scenes.images[:2]).shape == (2, 512)
    zs = mmkit.zero_shot(m, scenes.images[:2], ["red circle", "blue square"])
    assert len(zs) == 2 and abs(sum(zs[0].values()) - 1) < 1e-5
    assert mmkit.match(m, scenes.images[:2], ["a", "b", "c"]).shape == (2, 3)


def test_align_base_random_init(model_dirs, scenes):
    m = mmkit.load_model(model_dirs("align", "base"))
    e = mmkit.embed_images(m, scenes[0].image)
    assert e.shape == (1, 640) and torch.isfinite(e).all()
    assert mmkit.embed_texts(m, ["a red circle"]).shape == (1, 640)


def test_vilt_b32_random_init(model_dirs, scenes):
    m = mmkit.load_model(model_dirs("vilt-vqa", "base"))
    assert m.model.config.hidden_size == 768
    a = mmkit.answer(m, scenes.images[:2], "what color is the circle?")
    assert len(a) == 2 and set(a) <= set(mmkit.data.ANSWERS)


def test_blip_base_random_init(model_dirs, scenes):
    m = mmkit.load_model(model_dirs("blip-caption", "base"))
    px = m.processor.image_processor(images=scenes[0].image, return_tensors="pt")["pixel_values"]
    assert px.shape[-2:] == (384, 384)
    caps = mmkit.caption(m, scenes.images[:2], max_new_tokens=3)
    assert len(caps) == 2 and all(isinstance(c, str) for c in caps)


def test_images_are_preprocessed_on_the_gpu_only_by_torchvision_processors(monkeypatch):
    """On a GPU, torchvision image processors resize on the model's device; PIL ones and CPUs stay as they were."""
    from types import SimpleNamespace

    from mmkit.tasks import inputs

    def loaded(processor, device):
        return SimpleNamespace(processor=SimpleNamespace(image_processor=processor), device=torch.device(device))

    torchvision = SimpleNamespace(backend="torchvision")
    gpu = torch.device("cuda")
    assert inputs._on_device_preprocessing(loaded(torchvision, "cuda")) == {"device": gpu}
    assert inputs._on_device_preprocessing(loaded(SimpleNamespace(backend="pil"), "cuda")) == {}
    assert inputs._on_device_preprocessing(loaded(torchvision, "cpu")) == {}
    monkeypatch.setattr(inputs, "PREPROCESS_ON_DEVICE", False)
    assert inputs._on_device_preprocessing(loaded(torchvision, "cuda")) == {}


def test_images_the_gpu_cannot_resize_are_preprocessed_on_the_cpu(model_dirs, monkeypatch):
    """A GPU resize kernel refuses extreme scale factors ("Too much shared memory required" for a 1x5000 line
    on an H100); such a batch falls back to the CPU resize instead of failing."""
    from mmkit.tasks import inputs

    m = mmkit.load_model(model_dirs("clip"))
    process = m.processor.image_processor
    devices = []

    def gpu_like(*args, device=None, **kwargs):
        devices.append(device)
        if device is not None:
            raise RuntimeError("Too much shared memory required: 99020 vs 49152")
        return process(*args, **kwargs)

    monkeypatch.setattr(inputs, "_on_device_preprocessing", lambda m: {"device": "cuda"})
    monkeypatch.setattr(m.processor, "image_processor", gpu_like)
    px = inputs.pixel_inputs(m, [Image.new("RGB", (1, 5000), (0, 255, 0))])["pixel_values"]
    assert devices == ["cuda", None] and px.shape[0] == 1 and torch.isfinite(px).all()
    monkeypatch.setattr(inputs, "_on_device_preprocessing", lambda m: {})  # already on the CPU: the error stands
    monkeypatch.setattr(m.processor, "image_processor", lambda *a, **k: gpu_like(device="cuda"))
    with pytest.raises(RuntimeError, match="shared memory"):
        inputs.pixel_inputs(m, [Image.new("RGB", (8, 8))])


def test_model_given_as_a_path(model_dirs):
    from pathlib import Path

    assert mmkit.embed_texts(Path(model_dirs("clip")), "a red circle").shape[0] == 1  # like its str
    with pytest.raises(InputError, match="needs a model"):
        mmkit.embed_texts(3, "a red circle")
