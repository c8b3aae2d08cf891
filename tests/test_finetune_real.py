"""finetune plumbing at real size with random weights (configs only, no hub): BLIP-base, CLIP-B/32 and ViLT, with and
without LoRA, a few steps each; saved folders load back with the same outputs; LoRA on BLIP-base trains < 5% of
the weights. Slow (minutes on a 2-core CPU): run with MMKIT_FINETUNE_REAL=1, `make test-finetune-real`.
benchmarks/finetune.py measures the peak memory."""
from __future__ import annotations

import os

import pytest
import torch

import mmkit
from mmkit.testing import random_model_dir
from mmkit.tuning.concepts import caption_pairs, concept_scenes, label_pairs, qa_triples

pytestmark = pytest.mark.skipif(os.environ.get("MMKIT_FINETUNE_REAL") != "1",
                                reason="real-size fine-tuning is slow: set MMKIT_FINETUNE_REAL=1")

CASES = [("blip-caption", caption_pairs), ("clip", label_pairs), ("vilt-vqa", qa_triples)]


@pytest.mark.parametrize("family,make", CASES)
@pytest.mark.parametrize("lora", [False, True])
def test_real_size_few_steps_save_and_reload(family, make, lora, tmp_path):
    folder = random_model_dir(family, "base", tmp_path / "base")
    data = make(concept_scenes(6, "orange", 0.5, seed=1, objects=1))[:6]
    ft = mmkit.finetune(str(folder), data, epochs=1, batch_size=2, progress=False, lora=lora, max_val=2,
                        new_words=False)
    assert len(ft.history) == 2 and ft.history[1]["train_loss"] > 0
    train, total = ft.trainable
    if lora:
        assert train < 0.05 * total, (train, total)
    saved = ft.save(tmp_path / "saved", merge=True)
    again = mmkit.load_model(saved)
    im = data[0][0]
    if family == "blip-caption":
        assert mmkit.caption(again, im) == mmkit.caption(ft.model, im)
    elif family == "clip":
        assert torch.allclose(mmkit.embed_images(again, im), mmkit.embed_images(ft.model, im), atol=1e-4)
    else:
        assert mmkit.answer(again, im, data[0][1]) == mmkit.answer(ft.model, im, data[0][1])
    if lora:
        adapter = ft.save(tmp_path / "adapter", merge=False)
        assert (adapter / "adapter_config.json").exists()
        back = mmkit.load_model(adapter)
        if family == "blip-caption":
            assert mmkit.caption(back, im) == mmkit.caption(ft.model, im)
