"""mmkit.index refuses what retrieve refuses: a bad k, a query embedded by another model; and says what is missing.

The tester's setup: 50 ShapesWorld pictures embedded by shapes-clip, an index over them, searched by text and image.
"""
import os

import numpy as np
import pytest

import mmkit
from mmkit import InputError
from mmkit.index import Index, build, load


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    """(shapes-clip, its (50, D) image embeddings, the 50 paths, a saved index over them, the index folder)."""
    from mmkit.data import ShapesWorld

    d = tmp_path_factory.mktemp("pics")
    paths = []
    for i, item in enumerate(ShapesWorld(50, seed=4)):
        paths.append(str(d / f"img{i}.png"))
        item.image.save(paths[-1])
    clip = mmkit.load_model("shapes-clip")
    vecs = mmkit.embed_images(clip, paths)
    folder = d / "g.index"
    idx = build(vecs, folder, items=paths, model="shapes-clip")
    return clip, vecs, paths, idx, folder


def message(call) -> str:
    with pytest.raises(InputError) as e:
        call()
    return str(e.value)


# 1. k is checked as retrieve checks it ------------------------------------------------------------

@pytest.mark.parametrize("k", [0, -3, True, 2.5, "3", None, 1_000_001])
def test_index_search_refuses_the_k_retrieve_refuses_with_the_same_words(gallery, k):
    clip, vecs, paths, idx, _ = gallery
    want = message(lambda: mmkit.retrieve(clip, "a red circle", paths[:5], k=k))
    assert "k must be a whole number from 1 to 1000000" in want
    assert message(lambda: idx.search_text(clip, "a red circle", k=k)) == want
    assert message(lambda: idx.search_image(clip, paths[0], k=k)) == want
    assert message(lambda: idx.search(vecs[:1].numpy(), k)) == want
    assert message(lambda: mmkit.retrieve(clip, "a red circle", idx, k=k)) == want


def test_a_good_k_still_works_and_is_capped_at_the_gallery(gallery):
    clip, vecs, paths, idx, _ = gallery
    assert len(idx.search_text(clip, "a red circle", k=np.int64(3))) == 3
    assert len(idx.search_text(clip, "a red circle", k=1000)) == 50  # more than there are: all of them


def test_cli_search_checks_k_with_the_same_rule(gallery, capsys):
    from mmkit.cli import main

    folder = gallery[4]
    assert main(["search", str(folder), "a red circle", "-k", "0"]) == 2
    err = capsys.readouterr().err
    assert "-k=0 is not allowed: -k must be a whole number from 1 to 1000000" in err and "Traceback" not in err


# 2. the query must be embedded by the index's model -----------------------------------------------

def test_search_refuses_another_model_of_the_same_width(gallery):
    clip, vecs, paths, idx, _ = gallery
    itm = mmkit.load_model("shapes-blip-itm")
    assert mmkit.embed_texts(itm, "a red circle").shape[1] == idx.dim  # the width check cannot tell them apart
    for call in (lambda: idx.search_text(itm, "a red circle"),
                 lambda: idx.search_text("shapes-blip-itm", ["a red circle", "a blue square"]),
                 lambda: idx.search_image(itm, paths[0]),
                 lambda: mmkit.retrieve(itm, "a red circle", idx),
                 lambda: mmkit.retrieve(itm, mmkit.load_image(paths[0]), idx)):  # an image query
        text = message(call)
        assert "'shapes-clip'" in text and "'shapes-blip-itm'" in text, text
        assert "mmkit.load_model('shapes-clip')" in text, text


def test_the_same_model_by_name_by_folder_and_in_any_case_is_accepted(gallery):
    from mmkit.config import models_dir

    clip, vecs, paths, idx, _ = gallery
    want = [h.item for h in idx.search_text(clip, "a red circle", k=5)]
    folder = models_dir() / "shapes-clip"
    for m in ("shapes-clip", str(folder), os.path.relpath(folder), mmkit.load_model(str(folder))):
        assert [h.item for h in idx.search_text(m, "a red circle", k=5)] == want, m
    by_path = build(vecs, items=paths, model=os.path.relpath(folder))  # an index that names the model's folder
    assert [h.item for h in by_path.search_text(clip, "a red circle", k=5)] == want
    upper = build(vecs, items=paths, model="Shapes-CLIP/")
    assert [h.item for h in upper.search_text(clip, "a red circle", k=5)] == want
    assert [h.item for h in build(vecs, items=paths, model=clip).search_text(clip, "a red circle", k=5)] == want
    assert build(vecs, items=paths, model=clip).model == "shapes-clip"
    anon = build(vecs, items=paths)  # no model named: nothing to compare, the query is searched
    assert [h.item for h in anon.search_text(clip, "a red circle", k=5)] == want


def test_model_identity_rules_without_loading_weights():
    from mmkit.index.checks import same_model
    from mmkit.models import PRETRAINED, ModelSpec, bundled_spec

    hub = PRETRAINED["clip-b32"]
    copy = ModelSpec("/data/copies/clip-vit-base-patch32", "clip", "path", "/data/copies/clip-vit-base-patch32")
    assert same_model("openai/clip-vit-base-patch32", copy)  # a hub id and its local copy
    assert same_model("clip-b32", copy) and same_model("clip-b32", hub)  # a registered name and its hub id
    assert same_model("openai/CLIP-vit-base-patch32", hub)
    other = ModelSpec("laion/clip-vit-base-patch32", "clip", "pretrained", "laion/clip-vit-base-patch32")
    assert not same_model("openai/clip-vit-base-patch32", other) and not same_model("clip-b32", other)
    assert same_model("laion/clip-vit-base-patch32", copy)  # a folder copy: only its name is known
    assert same_model("clip", hub) and same_model("clip", bundled_spec("shapes-clip"))  # a family name: its members
    assert not same_model("clip-b32", bundled_spec("shapes-clip"))
    assert not same_model("shapes-clip", bundled_spec("shapes-blip-itm"))
    tuned = ModelSpec("shapes-clip+finetuned", "clip", "finetuned", bundled_spec("shapes-clip").repo)
    assert not same_model("shapes-clip", tuned)  # fine-tuned in memory: other weights in the same folder's name
    assert same_model("shapes-clip+finetuned", tuned)


def test_cli_search_refuses_another_model(gallery, capsys):
    from mmkit.cli import main

    folder = gallery[4]
    assert main(["search", str(folder), "a red circle", "--model", "shapes-blip-itm"]) == 2
    err = capsys.readouterr().err
    assert "'shapes-clip'" in err and "'shapes-blip-itm'" in err and "--model" in err and "Traceback" not in err
    assert main(["search", str(folder), "a red circle", "-k", "2", "--model", "data/models/shapes-clip"]) == 0
    capsys.readouterr()


def test_build_refuses_a_model_that_is_not_a_name(gallery):
    vecs = gallery[1]
    assert "model=3" in message(lambda: build(vecs, model=3))


# 3. retrieve takes numpy embeddings, as build does ---------------------------------------------------

def test_retrieve_takes_a_numpy_gallery(gallery):
    clip, vecs, paths, idx, _ = gallery
    want = mmkit.retrieve(clip, "a red circle", vecs, k=3)
    got = mmkit.retrieve(clip, "a red circle", vecs.numpy(), k=3)
    assert [h.index for h in got] == [h.index for h in want]
    assert np.allclose([h.score for h in got], [h.score for h in want])
    assert [h.index for h in mmkit.retrieve(clip, "a red circle", vecs.numpy().astype(np.float64), k=3)] == \
        [h.index for h in want]
    ro = np.load(_saved(vecs.numpy(), gallery[4].parent / "v.npy"), mmap_mode="r")  # read-only, memory-mapped
    assert [h.index for h in mmkit.retrieve(clip, "a red circle", ro, k=3)] == [h.index for h in want]
    assert "dtype" in message(lambda: mmkit.retrieve(clip, "a red circle", np.ones((50, vecs.shape[1]), int)))


def _saved(x, path):
    np.save(path, x)
    return path


# 4. load says when the folder is not there -------------------------------------------------------------

def test_load_says_no_such_folder_for_a_missing_path(tmp_path):
    text = message(lambda: load(tmp_path / "no" / "such" / "folder"))
    assert "no such folder" in text and "folder" in text and "check the path" in text
    (tmp_path / "empty").mkdir()
    text = message(lambda: load(tmp_path / "empty"))
    assert "is not an mmkit index (no meta.json / faiss.index)" in text and "no such folder" not in text
    (tmp_path / "file.txt").write_text("x")
    text = message(lambda: load(tmp_path / "file.txt"))
    assert "is a file" in text and "no such folder" not in text


# 5. adding pictures: the docstring's recipe works -----------------------------------------------------------

def test_the_docstring_says_how_to_add_pictures_and_the_recipe_works(tmp_path):
    from mmkit.data import ShapesWorld

    assert not hasattr(Index, "add")
    doc = " ".join(Index.__doc__.split())
    assert "add pictures" in doc.lower() and "resume" in doc and "build" in doc
    d = tmp_path / "pics"
    d.mkdir()
    items = list(ShapesWorld(5, seed=9))
    for i, item in enumerate(items[:3]):
        item.image.save(d / f"{i}.png")
    mmkit.jobs.run("embed", "shapes-clip", d, tmp_path / "e.parquet", progress=False)
    assert len(build(tmp_path / "e.parquet", tmp_path / "g.index")) == 3
    for i, item in enumerate(items[3:], 3):
        item.image.save(d / f"{i}.png")
    mmkit.jobs.run("embed", "shapes-clip", d, tmp_path / "e.parquet", resume=True, progress=False)
    build(tmp_path / "e.parquet", tmp_path / "g.index")
    again = load(tmp_path / "g.index")
    assert len(again) == 5 and sorted(os.path.basename(p) for p in again.items) == [f"{i}.png" for i in range(5)]
