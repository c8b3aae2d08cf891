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



def test_cli_search_of_a_missing_index_says_so(tmp_path, capsys):
    from mmkit.cli import main

    assert main(["search", str(tmp_path / "none.index"), "x"]) == 2
    err = capsys.readouterr().err
    assert "not an mmkit index" in err and "Traceback" not in err


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
