"""finetune on tiny random-init models (fast): history, scores, plot, stop keeps the best epoch, the cached base model
is untouched, saves load back in a fresh process with the same outputs, LoRA outputs through mmkit's task functions
equal peft's own forward, every trainable family runs. Real sizes: tests/test_finetune_real.py."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import torch

import mmkit
from mmkit.testing import random_model_dir
from mmkit.tuning.concepts import caption_pairs, concept_scenes, label_pairs, qa_triples

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """family -> folder of a tiny random-init model."""
    root = tmp_path_factory.mktemp("tiny")
    return {f: str(random_model_dir(f, "tiny", root / f)) for f in ("blip-caption", "blip-vqa", "clip", "vilt-vqa")}


@pytest.fixture(scope="module")
def scenes():
    return concept_scenes(24, "orange", 0.5, seed=2)


def _captions_in_fresh_process(paths, images_dir) -> list[list[str]]:
    """For each saved model folder, its captions of the pictures in images_dir, in one new Python process."""
    code = ("import json, sys, mmkit, warnings; warnings.simplefilter('ignore');"
            "from pathlib import Path; ims = [str(p) for p in sorted(Path(sys.argv[1]).glob('*.png'))];"
            "print(json.dumps([mmkit.caption(mmkit.load_model(p), ims) for p in sys.argv[2:]]))")
    out = subprocess.run([sys.executable, "-c", code, str(images_dir), *map(str, paths)], capture_output=True,
                         text=True, env=ENV, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_finetune_caption_history_scores_save_and_reload(tiny, scenes, tmp_path):
    base = mmkit.load_model(tiny["blip-caption"])
    before = {k: v.clone() for k, v in base.model.state_dict().items()}
    steps = []
    ft = mmkit.finetune(base, caption_pairs(scenes), epochs=2, batch_size=8, lr=1e-3, progress=False,
                        callback=steps.append)
    assert isinstance(ft, mmkit.Finetuned) and ft.task == "caption"
    assert [h["epoch"] for h in ft.history] == [0, 1, 2]
    assert all(k in ft.history[1] for k in ("train_loss", "val_loss", "CIDEr", "seconds", "cpu_seconds"))
    assert ft.history[2]["val_loss"] < ft.history[0]["val_loss"]  # it learnt something
    assert set(ft.scores) >= {"before", "after", "metric", "n_val"} and ft.scores["metric"] == "CIDEr"
    assert ft.scores["n_val"] + ft.scores["n_train"] == len(scenes)
    assert "orange" in ft.added_words and ft.trainable[0] == ft.trainable[1]
    assert any("step" in s for s in steps) and any(s.get("epoch") == 2 for s in steps)
    assert all(torch.equal(v, base.model.state_dict()[k]) for k, v in before.items())  # the cached model is untouched
    assert ft.plot().axes and "finetuned" in repr(ft) or "Finetuned(" in repr(ft)
    images = tmp_path / "ims"
    images.mkdir()
    for i, s in enumerate(concept_scenes(4, "orange", 1.0, seed=9, split="test")):
        s.image.save(images / f"{i}.png")
    mine = mmkit.caption(ft.model, [str(p) for p in sorted(images.glob("*.png"))])
    saved = ft.save(tmp_path / "saved")
    assert json.loads((saved / "mmkit.json").read_text())["added_words"] == ft.added_words
    assert _captions_in_fresh_process([saved], images) == [mine]


def test_stop_keeps_the_best_epoch_and_the_model_works(tiny, scenes):
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] >= 2  # in the first epoch: no epoch finished, the weights before training are kept

    base = mmkit.load_model(tiny["blip-caption"])
    ft = mmkit.finetune(base, caption_pairs(scenes), epochs=5, batch_size=4, progress=False, should_stop=stop)
    assert "stopped" in ft.stopped and len(ft.history) == 1 and ft.scores["best_epoch"] == 0
    got = ft.model.model.state_dict()
    ref = base.model.state_dict()
    grown = ft.history and ft.added_words  # new words add rows; every old weight is as it was
    assert all(torch.equal(got[k][:ref[k].shape[0]] if grown else got[k], ref[k]) for k in ref)
    assert isinstance(mmkit.caption(ft.model, scenes[0].image), str)


def test_bad_options_and_data_raise_input_error(tiny, scenes):
    with pytest.raises(mmkit.InputError, match="unknown option"):
        mmkit.finetune(tiny["blip-caption"], caption_pairs(scenes), epoch=3)
    with pytest.raises(mmkit.InputError, match="needs .*caption.* but the data has qa rows"):
        mmkit.finetune(tiny["blip-caption"], qa_triples(scenes[:3]))
    with pytest.raises(mmkit.InputError, match="cannot be fine-tuned for task='vqa'"):
        mmkit.finetune(tiny["clip"], caption_pairs(scenes), task="vqa")
    with pytest.raises(mmkit.InputError, match="at least 2"):
        mmkit.finetune(tiny["blip-caption"], caption_pairs(scenes[:1]))
    with pytest.raises(mmkit.InputError, match="no usable examples"):
        mmkit.finetune(tiny["blip-caption"], [(b"garbage", "a caption")])


def test_lora_outputs_through_mmkit_equal_peft_forward_and_saves_load_back(tiny, scenes, tmp_path):
    base = mmkit.load_model(tiny["blip-caption"])
    ft = mmkit.finetune(base, caption_pairs(scenes), epochs=2, batch_size=8, lr=5e-3, lora=True, progress=False)
    assert ft.peft_model is not None and ft.trainable[0] < ft.trainable[1] * 0.5
    net = ft.model.model
    assert not any("forward" in vars(mod) for mod in net.modules())  # no speed-up forward bypasses an adapter
    lora_b = [p for n, p in net.named_parameters() if "lora_B" in n]
    assert lora_b and any(float(p.detach().abs().max()) > 0 for p in lora_b)  # the adapters moved away from zero
    ims = [s.image for s in scenes[:4]]
    px = ft.model.processor.image_processor(images=ims, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        ids = ft.peft_model.generate(pixel_values=px, max_new_tokens=30)
    peft_caps = [" ".join(t.split()) for t in ft.model.processor.tokenizer.batch_decode(ids, skip_special_tokens=True)]
    assert mmkit.caption(ft.model, ims) == peft_caps
    # and the adapters matter: the base model with the same tokenizer says something else on some picture
    with torch.no_grad():
        enc = ft.model.processor.tokenizer(["a small orange circle"] * 4, return_tensors="pt")
        a = ft.peft_model(pixel_values=px, input_ids=enc["input_ids"]).logits
        with ft.peft_model.disable_adapter():
            b = ft.peft_model(pixel_values=px, input_ids=enc["input_ids"]).logits
    assert not torch.allclose(a, b)
    images = tmp_path / "ims"
    images.mkdir()
    for i, im in enumerate(ims):
        im.save(images / f"{i}.png")
    mine = mmkit.caption(ft.model, [str(p) for p in sorted(images.glob("*.png"))])
    merged, adapter = ft.save(tmp_path / "merged"), ft.save(tmp_path / "adapter", merge=False)
    assert (adapter / "adapter_config.json").exists() and not (merged / "adapter_config.json").exists()
    assert (adapter / "adapter_model.safetensors").stat().st_size < (merged / "model.safetensors").stat().st_size
    assert _captions_in_fresh_process([merged, adapter], images) == [mine, mine]
    # load_in_8bit=True needs CUDA, its save path does not: a run marked as trained over an 8-bit base merges through
    # its adapter folder into the base read again in fp32, the same weights as the plain merge
    ft.quantized = True
    via_adapter = ft.save(tmp_path / "via-adapter")
    assert not (via_adapter / "adapter_config.json").exists()
    a, b = mmkit.load_model(merged).model.state_dict(), mmkit.load_model(via_adapter).model.state_dict()
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


@pytest.mark.parametrize("family,make,lora", [
    ("blip-vqa", qa_triples, False), ("blip-vqa", qa_triples, True), ("clip", label_pairs, False),
    ("clip", label_pairs, True), ("vilt-vqa", qa_triples, False), ("vilt-vqa", qa_triples, True)])
def test_each_family_trains_and_scores(tiny, family, make, lora):
    data = make(concept_scenes(16, "purple", 0.5, seed=4, objects=1))
    ft = mmkit.finetune(tiny[family], data, epochs=1, batch_size=8, lora=lora, progress=False)
    m = ft.scores["metric"]
    assert 0.0 <= ft.scores["after"][m] <= 1.0 and ft.history[1]["train_loss"] > 0
    if family == "vilt-vqa":
        assert "purple" in ft.model.model.config.label2id  # the new answer is a class now
        assert isinstance(mmkit.answer(ft.model, data[0][0], "what color is the circle?"), str)
    elif family == "clip":
        probs = mmkit.zero_shot(ft.model, data[0][0], ["purple circle", "red square"])
        assert abs(sum(probs.values()) - 1) < 1e-5
    if lora:
        assert ft.trainable[0] < ft.trainable[1]


def _probe_embeddings(m, images, texts) -> torch.Tensor:
    """(images + texts, E) embeddings of a model with an embedding space."""
    return torch.cat([mmkit.embed_images(m, images), mmkit.embed_texts(m, texts)])


@pytest.mark.parametrize("name,task,lora", [("shapes-align", "contrastive", True), ("shapes-blip-itm", "itm", False),
                                            ("shapes-blip-itm", "contrastive", True)])
def test_align_and_blip_itm_learn_the_new_labels_and_load_back(name, task, lora, tmp_path):
    # ALIGN's EfficientNet has BatchNorm: under LoRA its statistics must not move, or the adapter folder (which
    # holds only what was trained) would load back onto a base with other statistics and embed differently
    data = label_pairs(concept_scenes(16, "orange", 0.5, seed=4, objects=1))
    ft = mmkit.finetune(name, data, task=task, epochs=2, batch_size=8, lora=lora, progress=False)
    assert ft.task == task and "orange" in ft.added_words
    val = [h["val_loss"] for h in ft.history]
    assert val[-1] < val[0] and ft.history[-1]["train_loss"] > 0, val
    images, texts = [d[0] for d in data[:3]], [d[1] for d in data[:3]]
    want = _probe_embeddings(ft.model, images, texts)
    saved = [ft.save(tmp_path / "merged")] + ([ft.save(tmp_path / "adapter", merge=False)] if lora else [])
    for path in saved:
        back = mmkit.load_model(path)
        assert torch.allclose(_probe_embeddings(back, images, texts), want, atol=1e-4), path.name
        if task == "itm":
            assert torch.allclose(torch.as_tensor(mmkit.match(back, images, texts)),
                                  torch.as_tensor(mmkit.match(ft.model, images, texts)), atol=1e-4)


def test_load_in_8bit_errors_name_what_is_missing(tiny, scenes, monkeypatch):
    import importlib.util

    data = caption_pairs(scenes[:6])
    with pytest.raises(mmkit.InputError, match="needs lora=True"):
        mmkit.finetune(tiny["blip-caption"], data, load_in_8bit=True, progress=False)
    if not torch.cuda.is_available():
        with pytest.raises(mmkit.InputError, match="needs a CUDA GPU .*drop load_in_8bit"):
            mmkit.finetune(tiny["blip-caption"], data, lora=True, load_in_8bit=True, progress=False)
    base = mmkit.load_model(tiny["blip-caption"])  # loaded before CUDA is faked (load_model would pick it)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "bitsandbytes" else real(n, *a))
    with pytest.raises(mmkit.InputError, match="needs the bitsandbytes package.*pip install bitsandbytes"):
        mmkit.finetune(base, data, lora=True, load_in_8bit=True, progress=False)
    # bitsandbytes "present" but not importable: transformers' own error comes back as an InputError
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda n, *a: real("json") if n == "bitsandbytes" else real(n, *a))
    if real("bitsandbytes") is None:
        with pytest.raises(mmkit.InputError, match=r"in 8-bit failed \(.*bitsandbytes.*pip install -U bitsandbytes"):
            mmkit.finetune(base, data, lora=True, load_in_8bit=True, progress=False)
    ft = mmkit.finetune(base, data, epochs=1, progress=False)  # a model that exists only in memory
    with pytest.raises(mmkit.InputError, match="save it first"):
        mmkit.finetune(ft.model, data, lora=True, load_in_8bit=True, progress=False)


def test_memory_estimate_prints_full_lora_and_8bit_lines():
    from mmkit.tuning import memory_estimate

    full = memory_estimate("blip-caption-base", batch_size=8)
    lora = memory_estimate("blip-caption-base", lora=True, batch_size=8)
    eight = lora.eight_bit
    assert full.eight_bit is None and eight is not None and eight.dtype == "8bit" and eight.trained == lora.trained
    assert 200e6 < full.params < 250e6 and lora.trained < 0.05 * lora.params  # BLIP-base: 224M weights
    assert eight.total < lora.total < full.total and eight.weights < lora.weights / 2
    text = str(lora)
    assert "LoRA" in text and "fits on a 16 GB T4" in text and "with load_in_8bit=True" in text
    assert "with load_in_8bit" not in str(full) and not memory_estimate("blip-caption-base", batch_size=512).fits(16)
    with pytest.raises(mmkit.InputError, match="pass lora=True"):
        memory_estimate("blip-caption-base", dtype="8bit")


def test_validation_answers_the_classifier_never_saw_and_mismatched_val_data(tiny, capsys):
    train = qa_triples(concept_scenes(8, "orange", 0.0, seed=1, objects=1))  # old colours only
    val = qa_triples(concept_scenes(2, "purple", 1.0, seed=2, objects=1))  # 'purple': no class, none in training
    ft = mmkit.finetune(tiny["vilt-vqa"], train, val_data=val, epochs=1, batch_size=8, progress=False)
    assert "purple" not in ft.model.model.config.label2id and ft.history[1]["val_loss"] > 0
    assert "validation answers no training row has" in capsys.readouterr().err
    with pytest.raises(mmkit.InputError, match="val_data has caption rows"):
        mmkit.finetune(tiny["vilt-vqa"], train, val_data=caption_pairs(concept_scenes(2, seed=2)), progress=False)


def test_finetune_on_a_datasets_dataset(tiny):
    datasets = pytest.importorskip("datasets")
    pairs = label_pairs(concept_scenes(12, "orange", 0.5, seed=5, objects=1))
    ds = datasets.Dataset.from_dict({"image": [p[0] for p in pairs], "text": [p[1] for p in pairs]},
                                    features=datasets.Features({"image": datasets.Image(),
                                                                "text": datasets.Value("string")}))
    ft = mmkit.finetune(tiny["clip"], ds, val_data=ds.select(range(3)), epochs=1, batch_size=4, progress=False)
    assert ft.scores["n_train"] == 12 and ft.scores["n_val"] == 3 and "orange" in ft.added_words


def test_an_adapter_names_its_base_so_any_folder_can_load_it(tiny, tmp_path, monkeypatch):
    import shutil

    data = label_pairs(concept_scenes(8, "orange", 0.5, seed=6, objects=1))
    shutil.copytree(tiny["clip"], tmp_path / "models" / "my-clip")
    monkeypatch.chdir(tmp_path / "models")
    ft = mmkit.finetune("my-clip", data, epochs=1, batch_size=4, lora=True, progress=False)  # a relative folder
    adapter = ft.save(tmp_path / "adapter", merge=False)
    assert json.loads((adapter / "mmkit.json").read_text())["base"] == str((tmp_path / "models" / "my-clip").resolve())
    monkeypatch.chdir(tmp_path)  # elsewhere: the relative name would find nothing (or another model)
    im = data[0][0]
    assert torch.allclose(mmkit.embed_images(mmkit.load_model(adapter), im), mmkit.embed_images(ft.model, im),
                          atol=1e-5)
    again = mmkit.finetune(ft.model, data, epochs=1, batch_size=4, lora=True, progress=False)  # a base in memory
    with pytest.raises(mmkit.InputError, match="exists only in memory.*merge=True"):
        again.save(tmp_path / "adapter2", merge=False)
    assert mmkit.load_model(again.save(tmp_path / "merged2")).spec.family == "clip"


def _folder_with_captions_and_qa(root, scenes):
    """Pictures in root with both captions.csv and qa.csv (as a tester's folder had)."""
    root.mkdir(parents=True, exist_ok=True)
    caps, qa = ["image,caption"], ["image,question,answer"]
    for i, s in enumerate(scenes):
        s.image.save(root / f"{i}.png")
        caps.append(f"{i}.png,{s.caption}")
        qa += [f"{i}.png,{q},{a}" for q, a, _ in s.qa]
    (root / "captions.csv").write_text("\n".join(caps) + "\n")
    (root / "qa.csv").write_text("\n".join(qa) + "\n")
    return root


def test_a_folder_with_captions_and_qa_trains_each_model_on_its_own_file(tiny, tmp_path):
    scenes = concept_scenes(8, "orange", 0.5, seed=7, objects=1)
    root = _folder_with_captions_and_qa(tmp_path / "pics", scenes)
    n_qa = sum(len(s.qa) for s in scenes)
    vqa = mmkit.finetune(tiny["vilt-vqa"], root, epochs=1, batch_size=8, progress=False)
    assert vqa.task == "vqa" and vqa.scores["n_train"] + vqa.scores["n_val"] == n_qa
    cap = mmkit.finetune(tiny["blip-caption"], str(root) + "/", epochs=1, batch_size=8, progress=False)
    assert cap.task == "caption" and cap.scores["n_train"] + cap.scores["n_val"] == len(scenes)
    # a caption file passed to a VQA model: the error names the qa.csv beside it
    with pytest.raises(mmkit.InputError, match="task 'vqa' needs .*" + re.escape(repr(str(root / "qa.csv")))):
        mmkit.finetune(tiny["vilt-vqa"], root / "captions.csv", epochs=1, progress=False)
    (root / "qa.csv").unlink()  # only captions: the error names the file to write, before any picture is read
    with pytest.raises(mmkit.InputError, match=r"no qa\.csv.*" + re.escape(str(root / "qa.csv"))):
        mmkit.finetune(tiny["vilt-vqa"], root, epochs=1, progress=False)


def _says(text: str, word: str) -> bool:
    return word in re.findall(r"[a-z][a-z'-]*", text.lower())


def test_a_tiny_validation_set_is_flagged_and_new_words_are_checked_in_the_outputs(tiny):
    train = caption_pairs(concept_scenes(12, "orange", 0.5, seed=11))
    val_new = caption_pairs(concept_scenes(3, "orange", 1.0, seed=12, split="test"))
    with pytest.warns(UserWarning, match=r"CIDEr rests on 3 validation pictures"):
        ft = mmkit.finetune(tiny["blip-caption"], train, val_data=val_new, epochs=1, batch_size=8, progress=False)
    assert "orange" in ft.added_words
    said = sum(_says(c, "orange") for c in mmkit.caption(ft.model, [im for im, _ in val_new]))
    assert ft.scores["new_words"]["orange"] == {"produced": said, "of": 3, "on": "validation"}
    assert ft.scores["few_val"] is True
    text = str(ft)
    assert "rests on 3 validation pictures" in text and f"'orange' in {said} of 3" in text
    assert repr(ft) == text and any("orange" in n for n in ft.notes)
    # no validation picture is captioned with the new word: it is checked on the training pictures that are
    val_old = caption_pairs(concept_scenes(20, "orange", 0.0, seed=13, split="test"))
    ft = mmkit.finetune(tiny["blip-caption"], train, val_data=val_old, epochs=1, batch_size=8, progress=False)
    shown = [im for im, c in train if _says(c, "orange")]
    said = sum(_says(c, "orange") for c in mmkit.caption(ft.model, shown))
    assert ft.scores["new_words"]["orange"] == {"produced": said, "of": len(shown), "on": "training"}
    assert ft.scores["few_val"] is False and not any("rests on" in n for n in ft.notes)  # 20 pictures: enough
