"""The registry and load_model: names, families, offline behaviour, caching, safety."""
import json
import os
import shutil
import time

import pytest

import mmkit
from mmkit import InputError, models


def test_list_models_has_every_kind_of_name():
    table = mmkit.list_models()
    names = table.names()
    for n in ["clip", "blip-caption", "clip-b32", "clip-l14", "align-base", "vilt-b32-vqa", "vilt-itm",
              "blip-caption-base", "blip-caption-large", "blip-vqa-base", "blip-itm-base", "blip2-opt-2.7b",
              "shapes-clip", "shapes-align", "shapes-vilt-vqa", "shapes-blip-caption", "shapes-blip-vqa",
              "shapes-blip-itm"]:
        assert n in names
    text = str(table)
    assert "openai/clip-vit-base-patch32" in text and "8-bit" in text  # BLIP-2 memory guidance
    assert {r[0] for r in mmkit.list_models("bundled")} == {"bundled"}


def test_unknown_name_lists_close_matches():
    with pytest.raises(InputError, match="blip-caption"):
        models.resolve("blip-captoin")
    with pytest.raises(InputError, match="list_models"):
        models.resolve("zzzz")


def test_unreachable_hub_id_fails_fast_with_offline_advice(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(mmkit.config, "_HUB", None)
    import huggingface_hub  # noqa: F401  (one-time import cost is not what is measured)

    t0 = time.perf_counter()
    with pytest.raises(InputError) as e:
        mmkit.load_model("blip-caption-base")
    assert time.perf_counter() - t0 < 2.0
    msg = str(e.value)
    assert "shapes-blip-caption" in msg and "not reachable" in msg
    with pytest.raises(InputError, match="not reachable|could not") as e:
        mmkit.load_model("someone/some-model")
    assert "here either" not in str(e.value)


def test_a_mistyped_path_that_reads_as_a_hub_id_says_there_is_no_such_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(mmkit.config, "_HUB", None)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()  # `finetune(..., save="out/my-model")` was meant, "out/my-modle" typed
    with pytest.raises(InputError, match="no folder 'out/my-modle' here either"):
        mmkit.load_model("out/my-modle")


def _fake_models_dir(tmp_path, monkeypatch, model_dirs, names=("shapes-clip",), family="clip"):
    root = tmp_path / "models"
    for n in names:
        shutil.copytree(model_dirs(family), root / n)
        (root / n / "mmkit.json").write_text(json.dumps({"family": family, "zero_shot_template": "a {}"}))
    monkeypatch.setattr(mmkit.config, "models_dir", lambda: root)
    return root


def test_family_name_falls_back_to_bundled_offline_and_says_so(tmp_path, monkeypatch, model_dirs, capsys):
    _fake_models_dir(tmp_path, monkeypatch, model_dirs)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(mmkit.config, "_HUB", None)
    monkeypatch.setattr(models, "_ANNOUNCED", set())
    m = mmkit.load_model("clip")
    assert m.spec.name == "shapes-clip" and m.spec.source == "bundled"
    assert "'clip' -> shapes-clip (bundled)" in capsys.readouterr().err
    assert m.spec.zero_shot_template == "a {}"
    assert mmkit.load_model("clip") is m  # cached per process
    models.resolve("clip")
    assert capsys.readouterr().err == ""  # announced once


def test_family_name_prefers_a_cached_pretrained_model(monkeypatch):
    monkeypatch.setattr(mmkit.config, "is_cached", lambda repo: repo == "openai/clip-vit-base-patch32")
    spec = models.resolve("clip")
    assert spec.name == "clip-b32" and spec.source == "pretrained" and "cache" in spec.chosen_by


def test_missing_bundled_model_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(mmkit.config, "models_dir", lambda: tmp_path)
    with pytest.raises(InputError, match="make models"):
        mmkit.load_model("shapes-vilt-vqa")


def test_path_loading_cache_and_eager_attention(model_dirs):
    d = model_dirs("blip-caption")
    a = mmkit.load_model(d)
    assert a.spec.source == "path" and a.spec.family == "blip-caption"
    assert mmkit.load_model(d) is a
    b = mmkit.load_model(d, attention=True)
    assert b is not a and b.attention
    assert b.model.config._attn_implementation == "eager"
    assert mmkit.load_model(a) is a


def test_only_safetensors_are_loaded(tmp_path, model_dirs):
    import torch
    from safetensors.torch import load_file

    d = tmp_path / "pickled"
    shutil.copytree(model_dirs("vilt-vqa"), d)
    torch.save(load_file(d / "model.safetensors"), d / "pytorch_model.bin")
    (d / "model.safetensors").unlink()
    with pytest.raises(InputError, match="safetensors"):
        mmkit.load_model(str(d))


def test_folder_that_is_not_a_model(tmp_path):
    with pytest.raises(InputError, match="config.json"):
        mmkit.load_model(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["GPT2LMHeadModel"]}))
    with pytest.raises(InputError, match="supported classes"):
        mmkit.load_model(str(tmp_path))


def test_no_remote_code_anywhere():
    import pathlib

    for f in pathlib.Path(mmkit.__file__).parent.rglob("*.py"):
        assert "trust_remote_code=True" not in f.read_text(), f


def _state(m) -> tuple:
    """What attention_maps must leave as it found it: the attention implementation of the model and of each
    sub-config, the Loaded's attention flag, and which modules run a faster forward (mmkit.speedups)."""
    from mmkit.attention import _implementations

    return (_implementations(m.model), m.attention,
            sorted(n for n, mod in m.model.named_modules() if "forward" in vars(mod)))


@pytest.mark.parametrize("family", ["clip", "blip-caption", "vilt-vqa", "blip2"])
def test_attention_maps_leave_the_cached_model_as_they_found_it(family, model_dirs):
    """CLIP and BLIP-2 load with sdpa attention: maps switch to eager for the call only, then back, so the
    shared model that zero_shot / caption use stays fast; BLIP's speed-ups stay in place."""
    from mmkit.config import speedups_enabled

    m = mmkit.load_model(model_dirs(family))
    before, on = _state(m), speedups_enabled()
    assert not before[1]
    if family in ("clip", "blip2"):
        assert "sdpa" in before[0].values()  # the case the switch-back is for
    if family == "blip-caption":
        assert before[2]  # patched forwards that the call must not remove
    image = mmkit.ShapesWorld(1, seed=3).images[0]
    maps = mmkit.attention_maps(m, image, None if family in ("blip-caption", "blip2") else "red circle")
    assert maps.attn is not None and maps.grid[0] > 0  # the call did get its attention weights
    assert _state(m) == before and speedups_enabled() == on
    assert mmkit.load_model(model_dirs(family)) is m  # still the one cached model
    eager = mmkit.load_model(model_dirs(family), attention=True)  # loaded for maps: stays eager
    mmkit.attention_maps(eager, image, None if family in ("blip-caption", "blip2") else "red circle")
    assert eager.attention and set(_state(eager)[0].values()) == {"eager"}


def test_attention_maps_restore_the_model_after_an_error(model_dirs, monkeypatch):
    import mmkit.attention.dual as dual

    m = mmkit.load_model(model_dirs("clip"))
    before = _state(m)

    def broken(*args):
        assert m.attention and set(_state(m)[0].values()) == {"eager"}  # switched during the call
        raise RuntimeError("inside the maps")

    monkeypatch.setattr(dual, "clip_maps", broken)
    with pytest.raises(RuntimeError, match="inside the maps"):
        mmkit.attention_maps(m, mmkit.ShapesWorld(1).images[0], "red circle")
    assert _state(m) == before


def test_a_model_folder_without_its_tokenizer_or_with_damaged_weights_is_refused(tmp_path):
    """A copy of shapes-clip without tokenizer*.json loaded, read every word as one unknown token and scored every
    label the same (an outside tester got 0.333 for three labels, exit 0); damaged weights raised safetensors' own
    error."""
    src = mmkit.config.models_dir() / "shapes-clip"
    no_tok = shutil.copytree(src, tmp_path / "no-tokenizer")
    for f in no_tok.glob("tokenizer*.json"):
        f.unlink()
    with pytest.raises(InputError, match="reads every word as unknown.*tokenizer files"):
        mmkit.load_model(str(no_tok))
    damaged = shutil.copytree(src, tmp_path / "damaged")
    (damaged / "model.safetensors").write_bytes(b"\xff" * 64)
    with pytest.raises(InputError, match="could not be read.*damaged or incomplete"):
        mmkit.load_model(str(damaged))
    assert mmkit.load_model(str(shutil.copytree(src, tmp_path / "whole"))).spec.family == "clip"


def test_a_registered_hub_id_offline_names_its_bundled_stand_in_and_a_missing_path_says_no_such_folder(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(mmkit.config, "_HUB", None)
    with pytest.raises(InputError, match="'shapes-clip' works offline"):  # as 'clip-b32' does
        mmkit.load_model("openai/clip-vit-base-patch32")
    for path in ("./saved/my-model", "/no/such/model", "runs/a/model"):
        with pytest.raises(InputError, match="no such model folder"):
            mmkit.load_model(path)



def test_a_bundled_model_given_by_its_folder_is_that_bundled_model():
    """data/models/shapes-clip by path resolves to shapes-clip itself: one spec and one cache entry, so a panel
    that later asks for it by name does not show it as "local model: <path>" (it did when the path came first)."""
    folder = mmkit.config.models_dir() / "shapes-clip"
    by_path = models.resolve(str(folder))
    assert by_path.source == "bundled" and by_path.name == "shapes-clip"
    assert models.resolve(os.path.relpath(folder)) == models.resolve("shapes-clip") == by_path
    assert models.bundled_folder(folder) == "shapes-clip" and models.bundled_folder(folder.parent) is None
    m = mmkit.load_model(str(folder))
    assert mmkit.load_model("shapes-clip") is m and m.spec.source == "bundled"
