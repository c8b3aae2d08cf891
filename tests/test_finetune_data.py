"""finetune's data readers: every data form, bad rows reported with their row and skipped, InputError when nothing is
usable; new words grow the tokenizer and the embeddings. No training here (tests/test_finetune.py trains)."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image

import mmkit
from mmkit.tuning import read_examples
from mmkit.tuning.concepts import concept_scenes
from mmkit.tuning.vocab import grow_answers, grow_vocabulary, unknown_words


def _pictures(folder, n=4, size=64):
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i, s in enumerate(concept_scenes(n, "orange", 0.5, seed=3)):
        s.image.resize((size + 7 * i, size)).save(folder / f"p{i}.png")  # other sizes than ShapesWorld's
        names.append(f"p{i}.png")
    return names


def test_captions_csv_reports_each_bad_row_and_keeps_the_rest(tmp_path):
    names = _pictures(tmp_path)
    (tmp_path / "broken.png").write_bytes(b"not a png at all")
    rows = ["image,caption", f"{names[0]},a small orange circle", f"{names[0]},another caption of the same picture",
            "missing.png,a red square", "broken.png,a blue square", f"{names[1]},   ",
            f"{names[0]},a small orange circle", f"{names[2]},a green triangle"]
    (tmp_path / "captions.csv").write_text("\n".join(rows) + "\n")
    ex = read_examples(tmp_path)
    assert ex.kind == "caption" and len(ex) == 3
    assert [e.text for e in ex.items] == ["a small orange circle", "another caption of the same picture",
                                          "a green triangle"]
    why = dict(ex.skipped)
    assert set(why) == {"captions.csv line 4", "captions.csv line 5", "captions.csv line 6", "captions.csv line 7"}
    assert "no such file" in why["captions.csv line 4"]
    assert "broken.png" in why["captions.csv line 5"]
    assert why["captions.csv line 6"] == "empty caption"
    assert "duplicate" in why["captions.csv line 7"]
    assert "4 rows skipped" in ex.report() and "line 5" in ex.report()
    assert ex.items[0].image.mode == "RGB" and ex.items[0].key == ex.items[1].key  # one picture, two captions


def test_wrong_columns_and_empty_data_raise_input_error(tmp_path):
    _pictures(tmp_path, 1)
    (tmp_path / "captions.csv").write_text("file,text\np0.png,a red circle\n")
    with pytest.raises(mmkit.InputError, match=r"without \['image', 'caption'\]"):
        read_examples(tmp_path)
    (tmp_path / "captions.csv").write_text("image,caption\n")
    with pytest.raises(mmkit.InputError, match="no usable examples"):
        read_examples(tmp_path)
    (tmp_path / "captions.csv").write_text("image,caption\nnope.png,a cat\n")
    with pytest.raises(mmkit.InputError, match="no usable examples.*line 2.*no such file"):
        read_examples(tmp_path)
    with pytest.raises(mmkit.InputError, match="no captions.csv"):
        read_examples(tmp_path / "..")
    with pytest.raises(mmkit.InputError, match="no usable examples"):
        read_examples([])
    with pytest.raises(mmkit.InputError, match="cannot read examples"):
        read_examples(42)


def test_a_spreadsheet_csv_separated_by_semicolons_or_tabs_is_read(tmp_path):
    """Excel in a locale whose decimal mark is a comma saves 'CSV' with ';'; some tools save tabs."""
    names = _pictures(tmp_path, 2)
    for sep in (";", "\t", "|"):
        (tmp_path / "captions.csv").write_text(f"Image{sep}Caption\n{names[0]}{sep}\"a circle{sep} orange\"\n"
                                               f"{names[1]}{sep}a green triangle\n", encoding="utf-8-sig")
        ex = read_examples(tmp_path)
        quoted = " ".join(f"a circle{sep} orange".split())  # the separator inside quotes stays (a tab as a space)
        assert [e.text for e in ex.items] == [quoted, "a green triangle"] and not ex.skipped, sep
    (tmp_path / "captions.csv").unlink()
    (tmp_path / "qa.csv").write_text(f"image;question;answer\n{names[0]};what color is it?;orange\n")
    assert read_examples(tmp_path).items[0].answer == "orange"
    (tmp_path / "qa.csv").write_text(f"image;question\n{names[0]};what color is it?\n")  # a column missing
    with pytest.raises(mmkit.InputError, match=r"has columns \['image;question'\], without"):
        read_examples(tmp_path)


def test_qa_csv_and_tuples_of_three(tmp_path):
    names = _pictures(tmp_path, 2)
    (tmp_path / "qa.csv").write_text(f"image,question,answer\n{names[0]},what color is it?,orange\n"
                                     f"{names[1]},what shape is it?,\n")
    ex = read_examples(tmp_path)
    assert ex.kind == "qa" and len(ex) == 1 and ex.items[0].answer == "orange"
    assert ex.skipped == [("qa.csv line 3", "empty answer")]
    im = Image.open(tmp_path / names[0])
    ex = read_examples([(im, "what?", "orange"), (np.zeros((20, 30, 3), np.uint8), "q", "a"), ("x",)])
    assert ex.kind == "qa" and len(ex) == 2 and "row 2" in dict(ex.skipped)


def test_coco_file_written_by_the_annotation_store_with_sample_photos(tmp_path):
    from mmkit.annotations import AnnotationStore
    from mmkit.data.samples import sample_images

    folder = tmp_path / "mine"
    names = _pictures(folder, 2)
    photos = sample_images()
    for k, (name, im) in enumerate(list(photos.items())[:2]):
        im.convert("RGB").save(folder / f"photo{k}.jpg")
        names.append(f"photo{k}.jpg")
    store = AnnotationStore(folder / "captions.json")
    for i, n in enumerate(names):
        store.accept(n, f"picture number {i}")
    store.skip(names[0])
    (folder / names[1]).unlink()  # annotated, then deleted
    ex = read_examples(folder / "captions.json")
    assert ex.kind == "caption"
    assert [e.text for e in ex.items] == ["picture number 2", "picture number 3"]
    assert any("no such file" in why for _, why in ex.skipped)
    assert read_examples(folder).origin.endswith("captions.json")  # the folder finds AnnotationPanel's file
    (tmp_path / "bad.json").write_text(json.dumps({"images": 3}))
    with pytest.raises(mmkit.InputError, match="not a COCO caption file"):
        read_examples(tmp_path / "bad.json")


def test_a_datasets_dataset_with_an_image_feature_a_path_column_labels_and_lists(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    ims = [s.image for s in concept_scenes(3, seed=1)]
    ims[1] = ims[1].convert("L").resize((50, 31))  # grey, another size: RGB after reading
    feats = datasets.Features({"image": datasets.Image(), "text": datasets.Value("string")})
    ds = datasets.Dataset.from_dict({"image": ims, "text": ["a red circle", "  a  grey   one ", ""]}, features=feats)
    ex = read_examples(ds)
    assert [e.text for e in ex.items] == ["a red circle", "a grey one"] and ex.skipped == [("row 2", "empty caption")]
    assert [e.image.mode for e in ex.items] == ["RGB", "RGB"] and ex.items[1].image.size == (50, 31)
    assert len({e.key for e in ex.items}) == 2  # each row its own picture (for the validation split)
    # undecoded images ({'bytes', 'path'} dicts) and a streamed dataset read the same
    assert [e.text for e in read_examples(ds.cast_column("image", datasets.Image(decode=False))).items] == \
        ["a red circle", "a grey one"]
    streamed = read_examples(ds.to_iterable_dataset())
    assert len(streamed) == 2 and "3 streamed rows" in streamed.origin
    # a str path column: relative paths under image_dir (or the current folder), a missing file reported
    names = _pictures(tmp_path / "pics", n=3)
    paths = datasets.Dataset.from_dict({"file_name": names + ["gone.png", names[0]],
                                        "caption": ["one", "two", "three", "four", "one"]})
    ex = read_examples(paths, image_dir=tmp_path / "pics")
    assert [e.text for e in ex.items] == ["one", "two", "three"]
    assert dict(ex.skipped)["row 3"].startswith("image 'gone.png'") and "duplicate" in dict(ex.skipped)["row 4"]
    with pytest.raises(mmkit.InputError, match="image_dir= sets their folder"):
        read_examples(paths)  # relative to the current folder (the repository): none there
    monkeypatch.chdir(tmp_path / "pics")
    assert len(read_examples(paths)) == 3
    # class labels become their names; a list of captions gives one example per caption
    labelled = datasets.Dataset.from_dict(
        {"img": ims, "label": [1, 0, 1]},
        features=datasets.Features({"img": datasets.Image(), "label": datasets.ClassLabel(names=["cat", "dog"])}))
    assert [e.text for e in read_examples(labelled).items] == ["dog", "cat", "dog"]
    multi = datasets.Dataset.from_dict({"image": ims[:2], "captions": [["a red circle", "a round thing"], []]},
                                       features=datasets.Features({"image": datasets.Image(),
                                                                   "captions": datasets.List(datasets.Value("string"))}))
    ex = read_examples(multi)
    assert [(e.key, e.text) for e in ex.items] == [("row 0", "a red circle"), ("row 0", "a round thing")]
    qa = datasets.Dataset.from_dict({"image": ims[:2], "question": ["what color?", "what shape?"],
                                     "answer": ["red", ""]}, features=datasets.Features(
        {"image": datasets.Image(), "question": datasets.Value("string"), "answer": datasets.Value("string")}))
    ex = read_examples(qa)
    assert ex.kind == "qa" and [(e.question, e.answer) for e in ex.items] == [("what color?", "red")]
    # whole-input mistakes: InputError naming the fix
    with pytest.raises(mmkit.InputError, match=r"needs an image column.*rename_column"):
        read_examples(ds.rename_column("image", "pixels"))
    with pytest.raises(mmkit.InputError, match=r"DatasetDict .*ds\['train'\], val_data=ds\['test'\]"):
        read_examples(datasets.DatasetDict({"train": ds, "test": ds}))
    with pytest.raises(mmkit.InputError, match="no usable examples in a dataset of 0 rows"):
        read_examples(ds.select([]))


def test_new_words_grow_the_tokenizer_and_tied_embeddings():
    import copy

    import torch

    from mmkit.tuning.lora import unfuse

    m = mmkit.load_model("shapes-blip-caption")
    net, tok = copy.deepcopy(m.model), copy.deepcopy(m.processor.tokenizer)
    unfuse(net)  # a deep copy's speed-up forwards are still bound to the original's modules
    texts = ["a small orange circle", "a large orange square", "a red circle", "a purple circle", "a purple square"]
    words = unknown_words(tok, texts, min_count=2)
    assert words == ["orange", "purple"]
    pieces = tok("orange", add_special_tokens=False)["input_ids"]
    emb = net.text_decoder.bert.embeddings.word_embeddings
    expect = emb.weight[pieces].mean(0).detach().clone()
    grown = grow_vocabulary(net, tok, words)
    assert grown["added"] == ["orange", "purple"] and grown["new_size"] == grown["old_size"] + 2
    assert tok.tokenize("a small orange circle") == ["a", "small", "orange", "circle"]
    emb = net.text_decoder.bert.embeddings.word_embeddings
    head = net.text_decoder.cls.predictions.decoder
    assert emb.weight.shape[0] == grown["new_size"] and head.weight is emb.weight  # still tied
    assert head.bias.shape[0] == grown["new_size"] and net.text_decoder.cls.predictions.bias is head.bias
    assert torch.allclose(emb.weight[grown["ids"][0]], expect)
    assert net.config.text_config.vocab_size == grown["new_size"]
    ids = tok(["a small orange circle"], return_tensors="pt")["input_ids"]
    assert net.text_decoder(input_ids=ids, encoder_hidden_states=torch.zeros(1, 65, 128)).logits.shape[-1] == \
        grown["new_size"]
    assert m.model.text_decoder.bert.embeddings.word_embeddings.num_embeddings == grown["old_size"]  # the cache's copy


def test_vilt_answers_grow_without_changing_old_scores():
    import copy

    import torch

    m = mmkit.load_model("shapes-vilt-vqa")
    net = copy.deepcopy(m.model)
    enc = m.processor(images=concept_scenes(1)[0].image, text="what color is it?", return_tensors="pt")
    before = net(**enc).logits
    assert grow_answers(net, ["orange", "red", "orange"]) == ["orange"]
    after = net(**enc).logits
    assert after.shape[-1] == before.shape[-1] + 1 and net.config.id2label[before.shape[-1]] == "orange"
    assert torch.allclose(after[:, :-1], before)


def test_a_folder_with_both_csvs_is_read_for_the_task_and_a_missing_one_is_named(tmp_path):
    names = _pictures(tmp_path, 2)
    (tmp_path / "captions.csv").write_text(f"image,caption\n{names[0]},a small orange circle\n"
                                           f"{names[1]},a green triangle\n")
    (tmp_path / "qa.csv").write_text(f"image,question,answer\n{names[0]},what color is it?,orange\n")
    qa = read_examples(tmp_path, kind="qa")
    assert qa.kind == "qa" and [e.answer for e in qa.items] == ["orange"] and qa.origin.endswith("qa.csv")
    caps = read_examples(tmp_path, kind="caption")
    assert caps.kind == "caption" and len(caps) == 2
    assert read_examples(tmp_path).kind == "caption"  # no task given: captions.csv first, as before
    (tmp_path / "qa.csv").unlink()  # only the other task's file: the error names the file to write and its columns
    with pytest.raises(mmkit.InputError, match=r"no qa\.csv.*question, answer.*" + re.escape(str(tmp_path / "qa.csv"))):
        read_examples(tmp_path, kind="qa")
    (tmp_path / "captions.csv").unlink()
    (tmp_path / "qa.csv").write_text(f"image,question,answer\n{names[0]},what color is it?,orange\n")
    with pytest.raises(mmkit.InputError,
                       match=r"no captions\.csv.*image, caption.*" + re.escape(str(tmp_path / "captions.csv"))):
        read_examples(tmp_path, kind="caption")
    assert read_examples(tmp_path).kind == "qa"  # no task given: whichever file there is
