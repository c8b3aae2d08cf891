"""finetune plumbing at real size with random weights (configs only, no hub): BLIP-base, CLIP-B/32 and ViLT, with and
without LoRA, a few steps each. Every saved folder (merged, and the adapter folder of LoRA runs) loads back in the
same process and in a fresh one with the same outputs: the task function's output and the task loss on a fixed
batch. LoRA on BLIP-base trains < 5% of the weights. Slow (30 s to 3 min a case on a 2-core CPU, up to 8 GB):
run with MMKIT_FINETUNE_REAL=1, `make test-finetune-real`; one case with -k, e.g. -k "True-clip".
benchmarks/finetune.py measures the peak memory of BLIP-base's steps."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.environ.get("MMKIT_FINETUNE_REAL") != "1",
                                reason="real-size fine-tuning is slow: set MMKIT_FINETUNE_REAL=1")

CASES = ["blip-caption", "clip", "vilt-vqa"]


def probe(m, rows: list) -> dict:
    """What a model says about rows [(image path, text) or (image path, question, answer)]: the task function's
    output and the fine-tuning loss of the batch (eval mode, no gradients), as JSON-ready values."""
    import torch

    import mmkit
    from mmkit.families import adapter
    from mmkit.tuning.data import Example
    from mmkit.tuning.losses import loss_fn, pixels

    images = [mmkit.data.load_image(r[0]) for r in rows]
    tunes = adapter(m).tunes
    task = "vqa" if len(rows[0]) == 3 else ("caption" if "caption" in tunes else "contrastive")
    batch = [Example(im, text=r[1] if task != "vqa" else "", question=r[1] if task == "vqa" else "",
                     answer=r[2] if task == "vqa" else "", key=str(r[0])) for im, r in zip(images, rows)]
    with torch.no_grad():
        m.model.eval()
        loss = float(loss_fn(task, adapter(m))(m.model, m, batch, pixels(m, images, m.device)))
        if task == "caption":
            out = mmkit.caption(m, images)
        elif task == "vqa":
            out = mmkit.answer(m, images, [r[1] for r in rows])
        else:  # (images + texts, E) embeddings
            out = torch.cat([mmkit.embed_images(m, images), mmkit.embed_texts(m, [r[1] for r in rows])]).tolist()
    return {"loss": loss, "out": out}


def same(a: dict, b: dict) -> bool:
    import numpy as np

    if abs(a["loss"] - b["loss"]) > 1e-3 * max(1.0, abs(a["loss"])):
        return False
    if isinstance(a["out"][0], str):
        return a["out"] == b["out"]
    return bool(np.allclose(a["out"], b["out"], atol=1e-4))


@pytest.mark.parametrize("family", CASES)
@pytest.mark.parametrize("lora", [False, True])
def test_real_size_few_steps_save_and_reload(family, lora, tmp_path):
    import mmkit
    from mmkit.testing import random_model_dir
    from mmkit.tuning.concepts import caption_pairs, concept_scenes, label_pairs, qa_triples

    make = {"blip-caption": caption_pairs, "clip": label_pairs, "vilt-vqa": qa_triples}[family]
    folder = random_model_dir(family, "base", tmp_path / "base")
    data = make(concept_scenes(6, "orange", 0.5, seed=1, objects=1))[:6]
    # 'orange' is not in the small test tokenizers: the embeddings (and ViLT's classifier) grow, so the saved
    # folders must carry the grown tokenizer and sizes (validation: the last rows, an orange picture)
    ft = mmkit.finetune(str(folder), data, val_data=data[4:], epochs=1, batch_size=2, progress=False, lora=lora)
    assert len(ft.history) == 2 and ft.history[1]["train_loss"] > 0
    assert ft.added_words == ["orange"] and ft.answers_added == (["orange"] if family == "vilt-vqa" else [])
    train, total = ft.trainable
    assert (train < 0.05 * total) if lora else (train == total), (train, total)
    # the probe rows are image files, so this process and a fresh one read the same pixels
    rows = []
    for i, r in enumerate(data[:2]):
        path = tmp_path / f"probe{i}.png"
        r[0].save(path)
        rows.append((str(path), *r[1:]))
    want = probe(ft.model, rows)
    saved = {"merged": ft.save(tmp_path / "merged", merge=True)}
    if lora:
        saved["adapter"] = ft.save(tmp_path / "adapter", merge=False)
        assert (saved["adapter"] / "adapter_config.json").exists()
        assert not (saved["adapter"] / "model.safetensors").exists()
    for kind, path in saved.items():
        got = probe(mmkit.load_model(path), rows)
        assert same(got, want), (kind, got, want)
    # a fresh process: nothing of this one's caches, patched modules or grown tokenizer
    env = dict(os.environ, HF_HUB_OFFLINE="1", TQDM_DISABLE="1")
    res = subprocess.run([sys.executable, __file__, json.dumps(rows), *map(str, saved.values())], env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    fresh = json.loads(res.stdout.strip().splitlines()[-1])
    for (kind, _), got in zip(saved.items(), fresh):
        assert same(got, want), ("fresh process", kind, got, want)


if __name__ == "__main__":  # the fresh process of the test: probe each saved folder, print a JSON list
    import mmkit

    rows = [tuple(r) for r in json.loads(sys.argv[1])]
    print(json.dumps([probe(mmkit.load_model(Path(p)), rows) for p in sys.argv[2:]]))
