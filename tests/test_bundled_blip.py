"""Known-answer tests on the shipped BLIP checkpoints (data/models/shapes-blip-*), offline and fast.

Each model is loaded from its directory and evaluated on a fresh held-out sample
(ShapesWorld split="test", a seed the build script did not evaluate on).
"""
import json
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import mmkit  # noqa: E402
from mmkit.config import models_dir  # noqa: E402
from mmkit.train import blip  # noqa: E402

NAMES = ("shapes-blip-caption", "shapes-blip-vqa", "shapes-blip-itm")
TEST_SEED = 7  # the build script evaluates on seed 0; these scenes are fresh


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def heldout():
    return list(mmkit.ShapesWorld(150, seed=TEST_SEED, split="test"))


@pytest.mark.parametrize("name", NAMES)
def test_directory_is_a_complete_small_hf_checkpoint(name):
    path = models_dir() / name
    for f in ("config.json", "model.safetensors", "mmkit.json", "README.md", "tokenizer.json"):
        assert (path / f).exists(), f"{name}/{f} missing: run python scripts/build_blip.py"
    size = sum(p.stat().st_size for p in path.iterdir())
    assert size < 8.5 * 2**20, f"{name} is {size / 2**20:.1f} MB"
    meta = json.loads((path / "mmkit.json").read_text())
    assert meta["name"] == name and meta["trained_on"] == "ShapesWorld" and meta["image_size"] == 64
    assert meta["class"] == json.loads((path / "config.json").read_text())["architectures"][0]
    assert meta["train_seconds"] > 0 and meta["heldout"]
    readme = (path / "README.md").read_text()
    assert "## Held-out evaluation" in readme and str(meta["train_seconds"]) in readme


@pytest.mark.parametrize("name", NAMES)
def test_tokenizer_and_special_tokens_agree(name):
    m = mmkit.load_model(name, device="cpu")
    tok, t = m.processor.tokenizer, m.model.config.text_config
    s = "a small red circle to the left of a large blue square"
    ids = tok(s)["input_ids"]
    assert tok.unk_token_id not in ids and tok.decode(ids, skip_special_tokens=True) == s
    assert t.bos_token_id == tok.convert_tokens_to_ids("[DEC]") == tok.bos_token_id
    assert t.sep_token_id == tok.sep_token_id and t.pad_token_id == tok.pad_token_id
    assert m.model.config.vision_config.image_size // m.model.config.vision_config.patch_size >= 8


def test_caption_exact_match(heldout):
    m = mmkit.load_model("shapes-blip-caption", device="cpu")
    r = blip.evaluate_caption(m, heldout[:100])
    assert r["exact_match"] >= 0.80, r
    assert r["CIDEr"] > 5.0, r


def test_plain_generate_gives_a_clean_caption(heldout):
    m = mmkit.load_model("shapes-blip-caption", device="cpu")
    s = next(x for x in heldout if len(x.objects) == 1)
    ids = m.model.generate(**m.processor(images=s.image, return_tensors="pt"))
    text = m.processor.decode(ids[0], skip_special_tokens=True)
    assert text == s.caption


def test_vqa_accuracy(heldout):
    m = mmkit.load_model("shapes-blip-vqa", device="cpu")
    r = blip.evaluate_vqa(m, heldout[:45], max_questions=300)
    assert r["n"] == 300
    assert r["accuracy"] >= 0.85, r
    assert mmkit.answer(m, heldout[0].image, "how many objects are there?") == heldout[0].qa[0].answer


def test_itm_auc_against_attribute_swapped_negatives(heldout):
    m = mmkit.load_model("shapes-blip-itm", device="cpu")
    r = blip.evaluate_itm(m, heldout[:150])
    assert r["auc"] >= 0.95, r
    assert r["pair_accuracy"] >= 0.9, r


def test_itm_match_encodes_each_image_once_and_scores_as_transformers_does():
    """BlipForImageTextRetrieval's forward runs the vision tower for every (image, text) pair; mmkit.match runs
    it once per image and must still give that forward's P(match) for every pair."""
    import torch

    from mmkit.tasks.inputs import pixel_inputs, tokenize

    scenes = list(mmkit.ShapesWorld(5, seed=TEST_SEED + 1, split="test"))
    images = [s.image for s in scenes]
    texts = [scenes[0].caption, scenes[0].negative, scenes[1].caption, scenes[3].caption]
    m = mmkit.load_model("shapes-blip-itm", device="cpu")
    encoded = []  # images per vision tower call
    hook = m.model.vision_model.register_forward_hook(
        lambda mod, args, kwargs, out: encoded.append(len(out.last_hidden_state)), with_kwargs=True)
    try:
        grid = mmkit.match(m, images, texts, batch_size=3)  # batches of 3 pairs cut across images
        n_grid = sum(encoded)
        paired = mmkit.match(m, images[:4], texts, paired=True, batch_size=3)
    finally:
        hook.remove()
    assert n_grid == 5 and sum(encoded) - n_grid == 4  # not 20 and 4
    assert grid.shape == (5, 4) and paired.shape == (4,)

    plain = mmkit.load_model("shapes-blip-itm", device="cpu", attention=True)  # transformers' code throughout
    pairs = [(i, j) for i in range(5) for j in range(4)]
    enc = tokenize(plain, [texts[j] for _, j in pairs])
    with torch.inference_mode():
        out = plain.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], use_itm_head=True,
                          pixel_values=pixel_inputs(plain, [images[i] for i, _ in pairs])["pixel_values"])
    ref = out.itm_score.softmax(-1)[:, 1].view(5, 4)
    assert ref.max() - ref.min() > 0.5  # trained scores that tell pairs apart, so the comparison means something
    assert torch.allclose(grid, ref, atol=1e-5)
    assert torch.allclose(paired, ref[:4].diagonal(), atol=1e-5)
