"""mmkit.testing.simulated_hub: random-weight checkpoints under the registry's real hub ids, in a Hugging Face cache
that `load_model` finds offline exactly as it finds a cached download. (`make test-hub` then runs the whole
pretrained path on it: tests/test_hub_path.py and every notebook.)"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import mmkit
from mmkit.testing import hub_repos, simulated_hub

REPOS = ["openai/clip-vit-base-patch32", "Salesforce/blip-image-captioning-base", "Salesforce/blip2-opt-2.7b"]


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hub")
    t0 = time.perf_counter()
    simulated_hub(folder, repos=REPOS)
    return folder, time.perf_counter() - t0


def test_every_registry_hub_id_is_simulated():
    from mmkit.models import PRETRAINED

    assert set(hub_repos()) == {s.repo for s in PRETRAINED.values()}
    with pytest.raises(mmkit.InputError, match="not a hub id"):
        simulated_hub("/nonexistent", repos=["someone/else"])
    with pytest.raises(mmkit.InputError, match="tiny"):
        simulated_hub("/nonexistent", size="huge")


def test_the_cache_has_the_hub_layout(hub):
    folder, _ = hub
    for repo in REPOS:
        base = folder / ("models--" + repo.replace("/", "--"))
        commit = (base / "refs" / "main").read_text()
        snap = base / "snapshots" / commit
        assert len(commit) == 40 and (snap / "config.json").is_file() and (snap / "model.safetensors").is_file()
        assert not list(snap.glob("*.bin"))  # safetensors only, as mmkit loads
        for f in snap.iterdir():  # each file is a blob named by its content's sha256
            assert f.resolve().parent == base / "blobs" and len(f.resolve().name) == 64
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(REPOS[0], "config.json", cache_dir=folder)
    assert isinstance(found, str) and json.loads(Path(found).read_text())["architectures"] == ["CLIPModel"]


def test_a_built_checkpoint_is_kept(hub):
    folder, first = hub
    stamp = {p: p.stat().st_mtime_ns for p in folder.rglob("refs/main")}
    t0 = time.perf_counter()
    simulated_hub(folder, repos=REPOS)
    assert time.perf_counter() - t0 < max(1.0, first / 5)
    assert stamp == {p: p.stat().st_mtime_ns for p in folder.rglob("refs/main")}


# what each tokenizer must be, as the hub repository has it: class, special tokens, padding side
TOKENIZERS = {
    "clip": ("CLIPTokenizer", {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
                               "pad_token": "<|endoftext|>"}, "right", 77),
    "blip-caption": ("BertTokenizer", {"bos_token": "[DEC]", "cls_token": "[CLS]", "sep_token": "[SEP]",
                                       "pad_token": "[PAD]"}, "right", 512),
    # transformers 5 loads the tokenizer of the real id Salesforce/blip2-opt-* as TokenizersBackend whatever its
    # tokenizer_config.json says (MODEL_IDS_TO_TOKENIZERS_BACKEND): so does the simulated one, under that id
    "blip2": ("TokenizersBackend", {"bos_token": "</s>", "eos_token": "</s>", "pad_token": "<pad>"}, "right", 2048),
}


def check_checkpoint(folder, repo: str, family: str) -> None:
    """The checkpoint loads, offline, with the family's class, processor and tokenizer (raises otherwise)."""
    import transformers

    from mmkit.models import CLASS_FAMILY

    snap = Path(transformers.utils.cached_file(repo, "config.json", cache_dir=folder)).parent
    cfg = json.loads((snap / "config.json").read_text())
    assert [CLASS_FAMILY.get(a) for a in cfg["architectures"]] == [family], cfg["architectures"]
    proc = transformers.AutoProcessor.from_pretrained(repo, cache_dir=folder)
    assert type(proc).__name__.replace("2", "") in {"CLIPProcessor", "AlignProcessor", "ViltProcessor",
                                                     "BlipProcessor"}, type(proc).__name__
    tok = proc.tokenizer
    sentence = "a photo of a cat sitting on a red sofa"
    ids = tok(sentence)["input_ids"]
    assert tok.unk_token_id not in ids or tok.unk_token == tok.eos_token  # nothing unknown (CLIP's unk is its eos)
    assert tok.decode(ids, skip_special_tokens=True).strip() == sentence  # round-trips
    if family in TOKENIZERS:
        cls, specials, side, length = TOKENIZERS[family]
        assert type(tok).__name__ == cls
        assert {k: getattr(tok, k) for k in specials} == specials
        assert tok.padding_side == side and tok.model_max_length == length
    if family == "blip2":
        assert json.loads((snap / "tokenizer_config.json").read_text())["tokenizer_class"] == "GPT2Tokenizer"
        assert proc.num_query_tokens == 32 and tok.convert_tokens_to_ids("<image>") == cfg["image_token_index"]
        assert ids[0] == tok.bos_token_id  # OPT starts every text with </s>
    if family.startswith("blip") and family != "blip2":
        assert cfg["text_config"]["bos_token_id"] == tok.bos_token_id  # the decoder starts from [DEC]


@pytest.mark.parametrize("repo", REPOS)
def test_each_checkpoint_has_the_real_class_processor_and_tokenizer(hub, repo):
    check_checkpoint(hub[0], repo, hub_repos()[repo])


def test_load_model_resolves_family_names_through_the_simulated_cache(hub):
    """A fresh process with HF_HUB_CACHE there and HF_HUB_OFFLINE=1: 'clip' is the pretrained CLIP, and says why."""
    folder, _ = hub
    code = ("import mmkit; m = mmkit.load_model('clip'); print(m.spec.source, m.spec.repo, type(m.model).__name__);"
            "b = mmkit.load_model('blip-caption'); print(b.spec.source, b.spec.repo)")
    env = {**os.environ, "HF_HUB_CACHE": str(folder), "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}
    env.pop("HF_HOME", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["pretrained openai/clip-vit-base-patch32 CLIPModel",
                                          "pretrained Salesforce/blip-image-captioning-base"]
    assert ("mmkit: 'clip' -> clip-b32 (pretrained): openai/clip-vit-base-patch32 is in your local Hugging Face cache"
            in out.stderr)
    assert "Traceback" not in out.stderr and "Warning" not in out.stderr
