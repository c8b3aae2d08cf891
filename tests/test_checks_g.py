"""Outside tester G's findings 3, 7 and 10: models fine-tuned from a bundled one keep the domain and word checks
(with their new words known); the annotation panel names the HEIC photos and PDFs it leaves out; upload limits
count MB as 10^6 bytes, as they say."""
from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

import mmkit
from mmkit.errors import InputError

HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 100  # the first bytes of an iPhone photo


def noise() -> Image.Image:
    return Image.fromarray((np.random.default_rng(0).random((128, 128, 3)) * 255).astype("uint8"))


def ood(fn, *args, **kw) -> tuple:
    """(fn's result, the OutOfDomainWarning messages it gave)."""
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        out = fn(*args, **kw)
    return out, [str(x.message) for x in got if issubclass(x.category, mmkit.OutOfDomainWarning)]


# -- finding 3: fine-tuned from a bundled model --------------------------------------------------------------------

@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """(the Finetuned of shapes-blip-caption taught 'orange', one epoch on 6 pictures; its saved folder)."""
    from mmkit.tuning.concepts import caption_pairs, concept_scenes

    data = caption_pairs(concept_scenes(6, "orange", 0.5, seed=1, objects=1))[:6]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ft = mmkit.finetune("shapes-blip-caption", data, val_data=data[4:], epochs=1, batch_size=2, progress=False)
    assert ft.added_words == ["orange"]
    folder = tmp_path_factory.mktemp("ft") / "ft_cap"
    ft.save(folder)
    return ft, folder


def copied_finetune(folder: Path, base: str, words: list[str]) -> Path:
    """A folder as Finetuned.save writes it (the bundled captioner's weights, mmkit.json's fine-tune fields)."""
    from mmkit.config import models_dir

    shutil.copytree(models_dir() / "shapes-blip-caption", folder)
    meta = json.loads((folder / "mmkit.json").read_text())
    meta.update(name="shapes-blip-caption-finetuned", base=base, finetuned=True, adapter=False, added_words=words,
                answers_added=[])
    meta.pop("heldout", None)
    (folder / "mmkit.json").write_text(json.dumps(meta))
    return folder


def test_a_saved_finetuned_model_warns_on_noise_and_says_what_it_knows(tuned):
    from mmkit.domain import checked

    _, folder = tuned
    m = mmkit.load_model(str(folder))
    assert checked(m)
    _, said = ood(mmkit.caption, m, noise())
    assert len(said) == 1, said
    msg = said[0]
    assert "ft_cap" in msg and "fine-tuned from the bundled shapes-blip-caption" in msg and "'orange'" in msg
    assert "may flag" in msg  # the detector learnt the base's colours: said, not hidden


def test_a_finetuned_model_in_memory_is_checked_too(tuned):
    ft, _ = tuned
    _, said = ood(mmkit.caption, ft.model, noise())
    assert len(said) == 1, said
    assert "fine-tuned from the bundled shapes-blip-caption" in said[0] and "'orange'" in said[0], said


def test_the_taught_words_are_known_and_others_are_not(tuned):
    from mmkit.domain_words import check_words

    ft, folder = tuned
    for m in (ft.model, mmkit.load_model(str(folder))):
        assert ood(check_words, m, ["what color is the orange circle?"]) == ([], [])
        unknown, said = ood(check_words, m, ["a cat on the orange mat"])
        assert unknown == ["cat", "on", "mat"] and len(said) == 1
        assert "fine-tuned from the bundled shapes-blip-caption" in said[0] and "'orange'" in said[0], said


def test_a_chain_of_finetunes_by_folder_knows_every_taught_word(tmp_path):
    from mmkit.config import models_dir
    from mmkit.domain import checked
    from mmkit.domain_words import check_words

    first = copied_finetune(tmp_path / "first", str((models_dir() / "shapes-blip-caption").resolve()), ["orange"])
    second = copied_finetune(tmp_path / "second", str(first.resolve()), ["purple"])
    m = mmkit.load_model(str(second))
    assert checked(m)
    assert ood(check_words, m, ["a purple circle", "what color is the orange square?"]) == ([], [])
    _, said = ood(mmkit.caption, m, noise())
    assert len(said) == 1 and "second" in said[0] and "shapes-blip-caption" in said[0]
    assert "'orange'" in said[0] and "'purple'" in said[0]


def test_a_finetune_of_a_pretrained_model_is_not_checked(tmp_path):
    import dataclasses

    from mmkit.domain import checked

    m = mmkit.load_model(str(copied_finetune(tmp_path / "ft", "Salesforce/blip-image-captioning-base", ["orange"])))
    assert not checked(m)
    hub = dataclasses.replace(m, spec=dataclasses.replace(m.spec, source="finetuned", repo="Salesforce/blip-x"))
    assert not checked(hub)


def test_the_cli_gives_a_saved_finetuned_model_the_notice(tuned, tmp_path, capsys):
    from mmkit.cli import main

    _, folder = tuned
    noise().save(tmp_path / "noise.png")
    assert main(["caption", str(tmp_path / "noise.png"), "--model", str(folder), "--json"]) == 0
    row = json.loads(capsys.readouterr().out.splitlines()[0])
    assert "fine-tuned from the bundled shapes-blip-caption" in row["notice"]


def test_caption_app_shows_the_notice_for_a_saved_finetuned_model(tuned):
    import html

    from widgets import CaptionApp

    _, folder = tuned
    app = CaptionApp(str(folder), background=False)
    app.picker.set_image(noise())
    app.caption()
    assert "fine-tuned from the bundled shapes-blip-caption" in html.unescape(app.notice.value)


# -- finding 7: the annotation panel names what it leaves out -----------------------------------------------------

def student_folder(root: Path, pngs: int = 2) -> Path:
    root.mkdir()
    for i in range(pngs):
        im = Image.new("RGB", (64, 64), (235, 235, 235))
        ImageDraw.Draw(im).ellipse((16, 16, 48, 48), fill=(220, 30, 30))
        im.save(root / f"p{i}.png")
    for i in range(3):
        (root / f"IMG_000{i}.HEIC").write_bytes(HEIC)
    Image.new("RGB", (50, 50)).save(root / "scan.pdf")
    return root


def test_the_annotation_panel_names_the_heic_and_pdf_files_it_leaves_out(tmp_path):
    import html

    from widgets import AnnotationPanel

    p = AnnotationPanel(student_folder(tmp_path / "class"), caption_model=None, tag_model=None, background=False)
    assert p.files == ["p0.png", "p1.png"]
    note = html.unescape(p.left_out.value)
    assert "4 files left out" in note and "IMG_0000.HEIC" in note and "scan.pdf" in note
    assert "export them as JPEG" in note and "PDF document" in note


def test_a_folder_of_only_heic_photos_says_so(tmp_path):
    from mmkit.annotations import image_files

    folder = student_folder(tmp_path / "only", pngs=0)
    with pytest.raises(InputError, match="has no image files") as e:
        image_files(folder)
    assert "3 are HEIC photos" in str(e.value) and "export them as JPEG" in str(e.value)
    assert "scan.pdf" in str(e.value)


# -- finding 10: MB means 10^6 bytes --------------------------------------------------------------------------------

def test_the_upload_limit_counts_megabytes_as_it_says(tmp_path):
    from html import unescape

    from widgets import ImagePicker
    from widgets.picker import simulate_upload

    p = ImagePicker(source=None)
    simulate_upload(p.upload, "big.png", b"\0" * 27_021_126)
    assert "'big.png' is 27.0 MB; the limit is 20 MB" in unescape(p.error.value)
    p = ImagePicker(source=None)
    simulate_upload(p.upload, "over.png", b"\0" * 20_500_000)  # 20.5 MB, 19.6 MiB: over the limit
    assert "is 20.5 MB; the limit is 20 MB" in p.error.value and p.image is None
    (tmp_path / "over.png").write_bytes(b"\0" * 20_500_000)
    p.open_file(str(tmp_path / "over.png"))
    assert "is 20.5 MB; the limit is 20 MB" in p.error.value
    p = ImagePicker(source=None)
    simulate_upload(p.upload, "just.png", b"\0" * 20_000_001)  # over by one byte: not shown as '20.0 MB'
    assert "20.0 MB;" not in p.error.value and "20,000,001 bytes" in p.error.value


def test_the_video_upload_limit_counts_megabytes_as_it_says():
    from widgets.video import MAX_UPLOAD_MB, VideoPanel

    from types import SimpleNamespace

    p = VideoPanel.__new__(VideoPanel)  # only the upload check runs: no clips, no models
    shown = []
    p.show_error, p.upload = shown.append, SimpleNamespace(value=())
    p.clear_error, p.picked, p._label = (lambda: None), SimpleNamespace(value=""), (lambda: "")  # an accepted upload
    p._on_upload([{"name": "clip.mp4", "size": 201_000_000, "content": b"\0"}])  # 201 MB, 191.7 MiB
    assert MAX_UPLOAD_MB == 200 and shown and "is 201.0 MB; the limit is 200 MB" in shown[0], shown
