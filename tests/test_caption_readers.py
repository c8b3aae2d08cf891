"""Readers for COCO caption files, COCO results and Karpathy splits, on small hand-written files."""
import json

import pytest

from mmkit.data.captions import read_coco_captions, read_coco_results, read_karpathy_split
from mmkit.errors import InputError

COCO = {"info": {}, "images": [{"id": 7, "file_name": "COCO_val_7.jpg"}, {"id": 9, "file_name": "COCO_val_9.jpg"},
                               {"id": 11, "file_name": "no_captions.jpg"}],
        "annotations": [{"id": 1, "image_id": 7, "caption": "A dog on a  sofa."},
                        {"id": 2, "image_id": 9, "caption": "Two cats."},
                        {"id": 3, "image_id": 7, "caption": "a brown dog sleeping"}]}
KARPATHY = {"dataset": "coco", "images": [
    {"filepath": "val2014", "filename": "a.jpg", "imgid": 0, "cocoid": 100, "split": "test",
     "sentences": [{"raw": "A man riding a horse.", "tokens": ["a", "man"]}, {"raw": "a rider"}]},
    {"filepath": "val2014", "filename": "b.jpg", "imgid": 1, "cocoid": 101, "split": "val",
     "sentences": [{"raw": "A bowl of fruit."}]},
    {"filepath": "train2014", "filename": "c.jpg", "imgid": 2, "cocoid": 102, "split": "restval",
     "sentences": [{"tokens": ["a", "red", "bus"]}]}]}


def write(tmp_path, name, obj):
    p = tmp_path / name
    p.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return p


def test_coco_captions(tmp_path):
    cs = read_coco_captions(write(tmp_path, "captions.json", COCO), image_dir="/data/val2014")
    assert cs.ids == [7, 9] and len(cs) == 2  # the image without captions is dropped
    assert cs.refs[7] == ["A dog on a sofa.", "a brown dog sleeping"]
    assert cs.images[9] == "/data/val2014/COCO_val_9.jpg"


def test_coco_results_and_scoring(tmp_path):
    from mmkit.metrics import caption_scores

    hyps = read_coco_results(write(tmp_path, "res.json", [{"image_id": 7, "caption": "a dog on a sofa"},
                                                          {"image_id": 9, "caption": "two cats"}]))
    assert hyps == {7: ["a dog on a sofa"], 9: ["two cats"]}
    refs = read_coco_captions(write(tmp_path, "captions.json", COCO)).refs
    assert caption_scores(hyps, refs)["BLEU-1"] == pytest.approx(1.0)


def test_karpathy_split(tmp_path):
    p = write(tmp_path, "dataset_coco.json", KARPATHY)
    test = read_karpathy_split(p, "test", image_dir="/coco")
    assert test.refs == {100: ["A man riding a horse.", "a rider"]}
    assert test.images[100] == "/coco/val2014/a.jpg"
    train = read_karpathy_split(p, ("train", "restval"))
    assert train.refs == {102: ["a red bus"]} and train.images[102] == "train2014/c.jpg"
    flickr = {"images": [{"filename": "1.jpg", "imgid": 5, "split": "test", "sentences": [{"raw": "x y"}]}]}
    assert read_karpathy_split(write(tmp_path, "f.json", flickr)).images == {5: "1.jpg"}


@pytest.mark.parametrize("content, match", [
    ("{not json", "not valid JSON"),
    ([1, 2], "missing 'images'"),
    ({"images": [{"id": 1, "file_name": "a.jpg"}]}, "missing 'annotations'"),
    ({"images": [{"id": 1}], "annotations": []}, "file_name"),
    ({"images": [{"id": 1, "file_name": "a"}], "annotations": [{"image_id": 2, "caption": "x"}]}, "image_id 2"),
    ({"images": [{"id": 1, "file_name": "a"}], "annotations": [{"image_id": 1, "caption": ""}]}, "non-empty"),
])
def test_malformed_coco_files(tmp_path, content, match):
    with pytest.raises(InputError, match=match):
        read_coco_captions(write(tmp_path, "bad.json", content))


def test_malformed_results_and_karpathy_files(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_coco_captions(tmp_path / "missing.json")
    with pytest.raises(InputError, match="JSON list"):
        read_coco_results(write(tmp_path, "r.json", {"image_id": 1}))
    with pytest.raises(InputError, match="two captions"):
        read_coco_results(write(tmp_path, "r.json", [{"image_id": 1, "caption": "a"}, {"image_id": 1, "caption": "b"}]))
    p = write(tmp_path, "k.json", KARPATHY)
    with pytest.raises(InputError, match="not one of"):
        read_karpathy_split(p, "dev")
    only_val = {"images": [KARPATHY["images"][1]]}
    with pytest.raises(InputError, match=r"splits are \['val'\]"):
        read_karpathy_split(write(tmp_path, "v.json", only_val), "test")
    with pytest.raises(InputError, match="no sentences"):
        read_karpathy_split(write(tmp_path, "s.json", {"images": [{"filename": "a", "imgid": 1, "split": "test",
                                                                   "sentences": []}]}))
