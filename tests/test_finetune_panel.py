"""FinetunePanel driven from code (ipywidgets 8 here; `make test-widgets7` runs it under 7.7.1): check the data,
train with a live curve, Stop keeps the best epoch, before/after pictures, save, open in CaptionApp."""
from __future__ import annotations

import pytest

import mmkit
from mmkit.testing import random_model_dir
from mmkit.tuning.concepts import concept_scenes
from widgets import CaptionApp, FinetunePanel


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A folder of pictures with captions.csv (one missing picture, one empty caption) and a tiny captioner."""
    root = tmp_path_factory.mktemp("mine")
    rows = ["image,caption"]
    for i, s in enumerate(concept_scenes(16, "orange", 0.5, seed=5)):
        s.image.save(root / f"{i}.png")
        rows.append(f"{i}.png,{s.caption}")
    rows += ["gone.png,a red circle", "0.png,"]
    (root / "captions.csv").write_text("\n".join(rows) + "\n")
    model = random_model_dir("blip-caption", "tiny", tmp_path_factory.mktemp("model") / "tiny")
    return root, str(model)


def test_check_data_shows_usable_count_and_skipped_rows(folder):
    root, model = folder
    p = FinetunePanel(str(root), model=model, background=False)
    p.check_button.click()
    assert "<b>16</b> usable examples" in p.usable.value
    assert "2 rows skipped" in p.usable.value and "line 18" in p.usable.value and "empty caption" in p.usable.value
    p.data.value = str(root / "nope")
    p.check()
    assert "does not exist" in p.error.value and "Traceback" not in p.error.value
    assert p.usable.value == "" and p.examples is None  # the earlier folder's count is gone with it


def test_train_compare_save_and_open_in_caption_app(folder, tmp_path):
    root, model = folder
    p = FinetunePanel(str(root), model=model, background=False, batch_size=8, lr=1e-3)
    p.epochs.value = 2
    p.train_button.click()
    assert p.error.value == "", p.error.value
    ft = p.result
    assert isinstance(ft, mmkit.Finetuned) and len(ft.history) == 3
    assert p.curve.value[:4] == b"\x89PNG" and "CIDEr" in p.scores_html.value and "orange" in p.scores_html.value
    assert len(p.steps) == 2 * 2 and len(p.epochs_seen) == 3  # 15 training pictures in batches of 8, 2 epochs
    assert "before" in p.compare.children[1].children[0].children[1].value
    p.save_path.value = str(tmp_path / "out")
    p.save_button.click()
    assert (tmp_path / "out" / "config.json").exists() and "load_model" in p.saved.value
    assert mmkit.caption(mmkit.load_model(str(tmp_path / "out")), ft.val[0].image) == mmkit.caption(ft.model, ft.val[0].image)
    assert not p.open_button.disabled
    p.open_button.click()
    app = p.app_box.children[0]
    assert isinstance(app, CaptionApp) and app.model.loaded is ft.model
    assert "note: the CIDEr rests on 2 validation pictures" in p.scores_html.value  # of 16 pictures


def test_check_data_reads_the_file_the_chosen_model_trains_on(folder, tmp_path):
    """A folder with captions.csv and qa.csv: the panel counted the captions for a VQA model too."""
    import shutil

    root, model = folder
    mine = tmp_path / "both"
    shutil.copytree(root, mine)
    (mine / "qa.csv").write_text("image,question,answer\n0.png,what color is the circle?,red\n"
                                 "1.png,how many objects are there?,one\n")
    p = FinetunePanel(str(mine), model="shapes-vilt-vqa", background=False)
    p.check_button.click()
    assert "<b>2</b> usable examples (qa)" in p.usable.value, p.usable.value
    p.model.name.value = model  # a captioner
    p.check_button.click()
    assert "<b>16</b> usable examples (caption)" in p.usable.value, p.usable.value


def test_stop_during_training_keeps_the_best_epoch(folder):
    root, model = folder
    p = FinetunePanel(str(root), model=model, background=False, batch_size=4)
    p.epochs.value = 10

    def stop_in_epoch_two(rec):
        if rec.get("step") == 6:  # 4 steps an epoch: the second epoch
            p.stop()

    original = p._progress
    p._progress = lambda rec, job: (original(rec, job), stop_in_epoch_two(rec))
    p.train()
    ft = p.result
    assert ft is not None and "stopped" in ft.stopped and len(ft.history) == 2  # epoch 0 and the one finished
    assert "stopped" in p.scores_html.value and p.save_button.disabled is False
    assert isinstance(mmkit.caption(ft.model, ft.val[0].image), str)
