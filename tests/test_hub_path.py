"""The pretrained path, executed: family names resolve to the real hub ids through a simulated hub (random weights
under the real repo ids, mmkit.testing.simulated_hub), and every surface runs on real photos: the task functions,
attention maps, the panels and the caption app driven from code, the CLI on a folder, BLIP-2 through its real id.

Runs under `make test-hub`, which builds the hub and starts pytest with HF_HUB_CACHE pointing at it
(MMKIT_SIMULATED_HUB names the folder); skipped anywhere else. The weights are random, so nothing here asserts
quality (the notebooks' quality checks sit under `if BUNDLED:`); everything else holds: types, shapes, grids,
that each call answers, and that no error or warning escapes.
"""
import io
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

HUB = os.environ.get("MMKIT_SIMULATED_HUB")
pytestmark = pytest.mark.skipif(
    not HUB or os.environ.get("HF_HUB_CACHE") != HUB,
    reason="the pretrained path runs under `make test-hub` (a simulated hub in HF_HUB_CACHE)")

import mmkit  # noqa: E402
from mmkit.models import FAMILIES, PRETRAINED  # noqa: E402

CAPTION = "a photo of"  # prompts and texts for the random models: only types and shapes are checked


@pytest.fixture(autouse=True)
def no_warning_escapes():
    """Every test here fails on a warning a user would see (a pretrained model on photos has nothing to warn
    about); libraries' DeprecationWarnings, which Python hides outside __main__, are left out."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    shown = [f"{w.category.__name__}: {w.message}" for w in caught
             if not issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning))]
    assert not shown, shown


@pytest.fixture(scope="module")
def photos():
    return mmkit.data.sample_images()


def test_every_checkpoint_in_the_hub_is_the_real_one_in_form():
    from test_hub import check_checkpoint

    from mmkit.testing import hub_repos

    for repo, family in hub_repos().items():
        check_checkpoint(HUB, repo, family)


def test_family_names_resolve_to_the_pretrained_ids(capsys):
    from mmkit.models import _resolve_family

    for family, (pre, _) in FAMILIES.items():
        spec = _resolve_family(family)
        assert (spec.source, spec.repo) == ("pretrained", PRETRAINED[pre].repo)
        assert spec.chosen_by == f"'{family}' -> {pre} (pretrained): {PRETRAINED[pre].repo} is in your local " \
                                 "Hugging Face cache"


@pytest.mark.parametrize("name", list(PRETRAINED))
def test_every_pretrained_name_runs_its_tasks_on_photos(name, photos):
    m = mmkit.load_model(name)
    assert (m.spec.source, m.spec.repo) == ("pretrained", PRETRAINED[name].repo)
    ims = list(photos.values())[:3]
    fam = m.spec.family
    if "caption" in m.spec.tasks:
        caps = mmkit.caption(m, ims, max_new_tokens=8)
        assert isinstance(caps, list) and len(caps) == 3 and all(isinstance(c, str) for c in caps)
        assert isinstance(mmkit.caption(m, ims[0], prompt=CAPTION, max_new_tokens=4), str)
    if "answer" in m.spec.tasks:
        answers = mmkit.answer(m, ims, ["what is this?", "what animal is this?", "what color is it?"])
        assert len(answers) == 3 and all(isinstance(a, str) for a in answers)
    if "zero_shot" in m.spec.tasks:
        probs = mmkit.zero_shot(m, ims, ["a cat", "a rocket", "a cup of coffee"])
        assert len(probs) == 3 and all(abs(sum(p.values()) - 1) < 1e-4 for p in probs)
        emb = mmkit.embed_images(m, ims)
        assert emb.shape[0] == 3 and abs(float(emb.norm(dim=-1).mean()) - 1) < 1e-4
    if "match" in m.spec.tasks:
        scores = mmkit.match(m, ims, ["a cat", "a rocket"])
        assert tuple(scores.shape) == (3, 2)
    text = None if fam in ("blip-caption", "blip2") else ("what is this?" if "vqa" in fam else "a cat")
    maps = mmkit.attention_maps(m, ims[1], text)
    assert maps.grid == _patch_grid(m, ims[1]), (maps.grid, name)
    assert maps.words and maps.for_token(0).shape == maps.grid


def _patch_grid(m, image) -> tuple:
    """The model's patch grid for this image: its side over the patch size (ALIGN: its last feature map)."""
    from mmkit.data.framing import fit_aspect

    cfg = m.model.config.vision_config if hasattr(m.model.config, "vision_config") else m.model.config
    if m.spec.family == "align":
        px = m.processor.image_processor(images=image, return_tensors="pt")["pixel_values"]
        import torch

        with torch.inference_mode():
            return tuple(m.model.vision_model(pixel_values=px).last_hidden_state.shape[-2:])
    px = m.processor.image_processor(images=fit_aspect(image), return_tensors="pt")["pixel_values"]
    return px.shape[-2] // cfg.patch_size, px.shape[-1] // cfg.patch_size


def test_blip2_captions_and_answers_through_its_real_id(photos):
    m = mmkit.load_model("blip2-opt-2.7b")
    assert m.spec.repo == "Salesforce/blip2-opt-2.7b" and type(m.model).__name__ == "Blip2ForConditionalGeneration"
    cat = photos["cat"]
    caption = mmkit.caption(m, cat, max_new_tokens=6, min_new_tokens=6)
    assert isinstance(caption, str) and caption.strip()  # six new tokens: something was written
    assert isinstance(mmkit.answer(m, cat, "what animal is this?"), str)
    maps = mmkit.attention_maps(m, cat)
    assert maps.kind == "queries" and len(maps.words) >= 32 and maps.grid == (4, 4)


# -- the panels and the caption app, driven from code on the sample photos --------------------------------------

def _ok(panel):
    assert panel.error.value == "", panel.error.value
    assert "Traceback" not in str(getattr(panel, "output", ""))


def test_panels_run_on_sample_photos_with_the_pretrained_models():
    pytest.importorskip("ipywidgets")
    from widgets import CaptionPanel, ImagePicker, RetrievalPanel, VQAPanel, ZeroShotPanel

    picker = ImagePicker(source=None)
    picker.choose_sample("cat")
    cap = CaptionPanel(picker=picker, background=False)
    cap.decoding.max_tokens.value = 6
    cap.button.click()
    _ok(cap)
    assert isinstance(cap.result, str) and "(pretrained)" in cap.model.info.value
    vqa = VQAPanel(picker=picker, background=False)
    vqa.ask("what animal is this?")
    _ok(vqa)
    assert isinstance(vqa.result, str) and "ground truth" not in vqa.output.value  # a photo has none
    zs = ZeroShotPanel(labels=("a cat", "a dog", "a rocket"), background=False)
    zs.picker.choose_sample("rocket")
    zs.button.click()
    _ok(zs)
    assert list(zs.result) == ["a cat", "a dog", "a rocket"] and abs(sum(zs.result.values()) - 1) < 1e-4
    ret = RetrievalPanel(gallery_size=4, background=False)
    ret.set_gallery(mmkit.data.sample_images())
    ret.k.value = 3
    ret.search("a cup of coffee")
    _ok(ret)
    assert len(ret.result) == 3


def test_caption_app_and_attention_explorer_on_a_photo(tmp_path):
    pytest.importorskip("ipywidgets")
    from widgets import AttentionExplorer, CaptionApp

    app = CaptionApp(background=False)
    app.picker.choose_sample("astronaut")
    app.decoding.max_tokens.value = 6
    app.button.click()
    assert not app.dialog_open and app.error.value == "", app.dialog_message.value
    assert isinstance(app.result, str) and app.maps is not None
    assert app.maps.grid == (4, 4)  # BLIP-base's grid at the tiny checkpoint's 64 px: 64 / 16
    if app.words.children:
        app.words.children[0].click()
        assert app.attention.value[:4] == b"\x89PNG"
    records = json.loads(app.export_json(tmp_path / "h.json"))
    assert records and records[0]["caption"] == app.result and records[0]["ground_truth"] in ("", None)
    ex = AttentionExplorer("clip", mmkit.data.sample_images()["cat"], "a cat on a blanket")
    ex.show_button.click()
    assert ex.maps is not None and bytes(ex.picture.value[:4]) == b"\x89PNG", ex.message.value


def test_annotation_panel_suggests_with_the_pretrained_models(tmp_path):
    pytest.importorskip("ipywidgets")
    from widgets import AnnotationPanel

    folder = _photo_folder(tmp_path)
    p = AnnotationPanel(folder, labels=("cat", "rocket", "coffee"), background=False)
    assert isinstance(p.suggestion.get("caption"), str) and set(p.suggestion["tags"]) == {"cat", "rocket", "coffee"}
    p.accept("a cat")
    saved = json.loads((folder / "captions.json").read_text())
    assert [im["file_name"] for im in saved["images"]] == [p.files[0]]


def _photo_folder(tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name, im in mmkit.data.sample_images().items():
        buf = io.BytesIO()
        im.save(buf, format="JPEG")
        (folder / f"{name}.jpg").write_bytes(buf.getvalue())
    return folder


# -- the CLI on a folder of photos -------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [["caption", "--max-tokens", "5"], ["answer", "--question", "what is this?"],
                                  ["zero-shot", "--labels", "a cat,a rocket,a cup of coffee"]])
def test_cli_on_a_folder_of_photos(args, tmp_path):
    folder = _photo_folder(tmp_path)
    out = subprocess.run([sys.executable, "-m", "mmkit", args[0], str(folder), "--json", *args[1:]],
                         capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONWARNINGS": "error"})
    assert out.returncode == 0, out.stderr
    records = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(records) == len(list(folder.iterdir()))
    assert all("notice" not in r and "error" not in r for r in records), records  # pretrained: no out-of-domain
    assert "(pretrained)" in out.stderr and "Traceback" not in out.stderr
