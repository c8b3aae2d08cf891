"""mmkit.index: flat and IVF-PQ (exact re-ranking) indexes, saved and loaded, searched by text and image; the CLI."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import mmkit
from mmkit import InputError
from mmkit.index import build, load

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}


def clustered(n: int, d: int = 64, centres: int = 200, seed: int = 0) -> np.ndarray:
    """n unit vectors around random centres (embeddings cluster like this; uniform noise has no neighbours)."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, d)).astype(np.float32)
    x = c[rng.integers(0, centres, n)] + 0.35 * rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_ivfpq_with_rerank_finds_what_flat_finds(tmp_path):
    x = clustered(6000, d=32, centres=100)
    q = clustered(50, d=32, centres=100, seed=1)
    flat = build(x, flat_max=10**9)
    ivf = build(x, tmp_path / "g.index", flat_max=1000, nlist=24, pq_bytes=8, nprobe=12, rerank=20)
    assert flat.kind == "flat" and ivf.kind == "ivfpq" and len(ivf) == 6000
    fs, fi = flat.search(q, 10)
    s, i = ivf.search(q, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(fi, i)])
    assert recall >= 0.95, recall
    hit = i == fi
    assert np.allclose(s[hit], fs[hit], atol=1e-5)  # re-ranked scores are exact cosines
    assert ivf.bytes_per_vector()["ram"] < 32 * 4 / 2  # codes in memory, float32 vectors on disk
    again = load(tmp_path / "g.index")
    assert again.kind == "ivfpq" and np.array_equal(again.search(q, 10)[1], i)
    with pytest.raises(InputError, match="width"):
        again.search(np.ones((1, 3)), 5)
    with pytest.raises(InputError, match="not an mmkit index"):
        load(tmp_path)


def test_retrieve_and_cli_search_an_embed_job(tmp_path):
    from mmkit.data import ShapesWorld

    d = tmp_path / "imgs"
    d.mkdir()
    for i, item in enumerate(ShapesWorld(24, seed=5)):
        item.image.save(d / f"{i:02d}.png")
    (d / "broken.png").write_bytes(b"junk")
    m = mmkit.load_model("shapes-clip")
    mmkit.jobs.run("embed", m, d, tmp_path / "e.parquet", progress=False)
    idx = build(tmp_path / "e.parquet", tmp_path / "g.index")
    assert len(idx) == 24 and idx.model == "shapes-clip" and not any("broken" in p for p in idx.items)
    paths = [str(d / f"{i:02d}.png") for i in range(24)]
    want = mmkit.retrieve(m, "a red circle", [mmkit.load_image(p) for p in paths], k=5)
    got = mmkit.retrieve(m, "a red circle", idx, k=5)
    assert [paths[h.index] for h in want] == [h.item for h in got]  # the same top 5 as the brute-force path
    assert np.allclose([h.score for h in want], [h.score for h in got], atol=1e-5)
    by_image = idx.search_image(m, paths[3], k=1)
    assert by_image[0].item == paths[3] and by_image[0].score > 0.999  # an image finds itself first
    p = subprocess.run([sys.executable, "-m", "mmkit", "search", str(tmp_path / "g.index"), "a red circle", "-k", "5",
                        "--json"], env=ENV, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    lines = [json.loads(x) for x in p.stdout.splitlines()]
    assert [x["path"] for x in lines] == [h.item for h in got] and [x["rank"] for x in lines] == [1, 2, 3, 4, 5]
    assert all("notice" not in x for x in lines) and "note" not in p.stderr
    p = subprocess.run([sys.executable, "-m", "mmkit", "search", str(tmp_path / "g.index"), "a photo of a cat", "-k", "2",
                        "--json"], env=ENV, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr  # words the bundled model never read: said once, as the other commands say it
    assert p.stderr.count("mmkit: note: ") == 1 and "'photo'" in p.stderr and "OutOfDomainWarning" not in p.stderr
    assert all("'cat'" in json.loads(x)["notice"] for x in p.stdout.splitlines())



def test_cli_search_of_a_missing_index_says_so(tmp_path, capsys):
    from mmkit.cli import main

    assert main(["search", str(tmp_path / "none.index"), "x"]) == 2
    err = capsys.readouterr().err
    assert "not an mmkit index" in err and "Traceback" not in err


def test_cli_search_refuses_a_query_that_looks_like_a_missing_image(tmp_path, capsys):
    """A mistyped image path was searched for as the words 'pics red cirle png', with exit 0."""
    from mmkit.cli import main

    assert main(["search", str(tmp_path / "g.index"), str(tmp_path / "pics" / "red_cirle.PNG")]) == 2
    err = capsys.readouterr().err
    assert "no such image file" in err and "red_cirle.PNG" in err and "--text" in err and "Traceback" not in err
    assert main(["search", str(tmp_path / "g.index"), str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main(["search", str(tmp_path / "g.index"), "red_cirle.png", "--text"]) == 2  # as text: on to the index
    assert "not an mmkit index" in capsys.readouterr().err


def test_retrieval_panel_searches_an_index(tmp_path):
    from mmkit.data import ShapesWorld
    from widgets import RetrievalPanel

    m = mmkit.load_model("shapes-clip")
    paths = []
    for i, item in enumerate(ShapesWorld(12, seed=2)):
        paths.append(str(tmp_path / f"{i}.png"))
        item.image.save(paths[-1])
    idx = build(mmkit.embed_images(m, paths), items=paths, model="shapes-clip")
    panel = RetrievalPanel(m, background=False)
    panel.set_gallery(idx)
    panel.search("a red circle")
    assert panel.result is not None
    want = mmkit.retrieve(m, "a red circle", idx, k=panel.k.value)
    assert [h.index for h in panel.result] == [h.index for h in want] and panel.grid.value
    assert paths[want[0].index] in panel.output.value


def recall(want, got) -> float:
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(want, got)]))


def test_default_effort_finds_text_queries_in_their_own_cone_and_tune_changes_it(tmp_path):
    """Text queries sit in a cone of their own (CLIP's modality gap; benchmarks/index.py measures its size on
    shapes-clip): the default nprobe (an eighth of the lists, at least 32) and re-ranking still find flat's top 10."""
    from mmkit.index.store import default_nlist, default_nprobe

    assert default_nlist(100_000) == 2529 and default_nprobe(2529) == 316 and default_nprobe(20) == 20
    assert default_nlist(3000) == 76  # small galleries: at least 39 training vectors per list
    with pytest.raises(InputError, match="too few for IVF-PQ.*flat_max >= 100"):
        build(clustered(100, d=32), flat_max=0)
    rng = np.random.default_rng(3)
    x = clustered(6000, d=64, centres=100)
    u_img, u_txt = rng.standard_normal(64), rng.standard_normal(64)
    x = x + 0.22 * u_img / np.linalg.norm(u_img)  # the image cone (|mean| about 0.21, as shapes-clip's)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = clustered(60, d=64, centres=100, seed=1) + 0.63 * u_txt / np.linalg.norm(u_txt)  # text cone (|mean| 0.53)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    ivf = build(x, tmp_path / "g.index", flat_max=1000, nlist=128, pq_bytes=16)
    assert ivf.nprobe == 32 and ivf.rerank == 20
    want = build(x, flat_max=10**9).search(q, 10)[1]
    assert recall(want, ivf.search(q, 10)[1]) >= 0.95
    assert load(tmp_path / "g.index").nprobe == 32  # saved with the index
    low = recall(want, ivf.tune(nprobe=1, rerank=1).search(q, 10)[1])
    assert low < 0.9 and ivf.nprobe == 1  # less effort, fewer of flat's hits: the knob reaches FAISS
    with pytest.raises(InputError, match="nprobe=0"):
        ivf.tune(nprobe=0)
    with pytest.raises(InputError, match="rerank"):
        ivf.tune(rerank=2.5)


def test_an_index_keeps_file_names_that_are_not_utf8_openable(tmp_path):
    """The embed job keeps such a name's exact bytes in image_b64; the index used its '\\xff' text, which opens
    nothing, so a hit could not be shown."""
    import os

    from mmkit.data import ShapesWorld

    d = tmp_path / "imgs"
    d.mkdir()
    odd = os.fsdecode(os.fsencode(str(d)) + b"/r\xffd.png")
    for i, item in enumerate(ShapesWorld(3, seed=2)):
        item.image.save(odd if i == 0 else d / f"{i}.png", format="PNG")
    mmkit.jobs.run("embed", "shapes-clip", d, tmp_path / "e.jsonl", progress=False)
    idx = build(tmp_path / "e.jsonl", tmp_path / "g.index")
    assert odd in idx.items and all(os.path.exists(p) for p in idx.items)
    assert odd in load(tmp_path / "g.index").items  # and after a save and a load
    p = subprocess.run([sys.executable, "-m", "mmkit", "search", str(tmp_path / "g.index"), "a red circle", "-k", "3",
                        "--json"], env=ENV, capture_output=True, text=True, timeout=300)
    rows = [json.loads(x) for x in p.stdout.splitlines()]
    assert p.returncode == 0 and len(rows) == 3, p.stderr
    (row,) = [r for r in rows if "image_b64" in r]
    assert os.fsdecode(__import__("base64").b64decode(row["image_b64"])) == odd and row["path"].endswith("r\\xffd.png")
