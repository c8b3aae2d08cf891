"""Index benchmark: IVF-PQ with exact re-ranking against exact (flat) search, on 100k vectors.

recall@10 of IVF-PQ + re-rank against flat for image queries and text queries, build time, p50/p95 query
latency (one query at a time) and bytes per vector.

The vectors are synthetic (embedding 100k real pictures does not fit this machine's time budget): 512-dim
(CLIP-B/32's width), clustered around 2,000 random centres with noise. What makes text queries harder than
image queries is CLIP's *modality gap*: each modality's unit embeddings sit in their own cone, around a mean
of their own. The gap is measured, not guessed: `gap_stats` embeds 200 ShapesWorld pictures and their
captions with a trained contrastive model (the bundled shapes-clip by default) and reads

    m_img = |mean image embedding|, m_txt = |mean text embedding|, rho = cos(mean image, mean text).

The synthetic gallery gets the image cone (x = normalise(a * u_img + c), |mean x| = m_img) and each text
query the text cone (q = normalise(b * u_txt + c'), |mean q| = m_txt, cos(u_img, u_txt) = rho), with c' from
the cluster of its matching picture. Image queries are held-out points of the gallery's distribution.
A third query set, "text_wide", is the earlier benchmark's offset (a fixed vector 4.8 times a query's own
length added to it: 98% of every query is the same direction), kept as a stress case far beyond any
measured gap.

    python benchmarks/index.py [--n 100000] [--per-centre 50,10] [--gap-model shapes-clip] [--out FILE]
    HF_HUB_CACHE=DIR python benchmarks/index.py --gap-only --gap-model openai/clip-vit-base-patch32
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np



def gap_stats(model: str = "shapes-clip", n: int = 200) -> dict:
    """The modality gap of a contrastive model on ShapesWorld pictures and their captions (unit embeddings)."""
    import mmkit
    from mmkit.data import ShapesWorld

    items = list(ShapesWorld(n, seed=3))
    m = mmkit.load_model(model)
    img = mmkit.embed_images(m, [it.image for it in items]).numpy()  # (n, D)
    txt = mmkit.embed_texts(m, [it.caption for it in items]).numpy()  # (n, D)
    mi, mt = img.mean(0), txt.mean(0)
    return {"model": model, "pairs": n, "m_img": float(np.linalg.norm(mi)), "m_txt": float(np.linalg.norm(mt)),
            "rho": float(mi @ mt / np.linalg.norm(mi) / np.linalg.norm(mt)), "gap": float(np.linalg.norm(mi - mt)),
            "matched_cos": float(np.mean(np.sum(img * txt, 1))), "unmatched_cos": float(np.mean(img @ txt.T))}


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def data(n: int, d: int, q: int, gap: dict, per_centre: int = 50, seed: int = 0) -> tuple[np.ndarray, dict, dict]:
    """(gallery (n, d), {query kind: (q, d)}): clustered content in each modality's measured cone."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(1, n // per_centre), d)).astype(np.float32)
    u_img = unit(rng.standard_normal(d)).astype(np.float32)
    r = rng.standard_normal(d)
    side = unit(r - (r @ u_img) * u_img)  # a unit vector orthogonal to u_img
    u_txt = (gap["rho"] * u_img + np.sqrt(1 - gap["rho"] ** 2) * side).astype(np.float32)  # cos(u_img, u_txt) = rho

    def around(which, noise):
        return unit(centres[which] + noise * rng.standard_normal((len(which), d)).astype(np.float32))

    def cone(x, u, m):  # |mean of the result| is about m when x has no mean of its own
        return unit(x + m / np.sqrt(1 - m * m) * u).astype(np.float32)

    gallery = cone(around(rng.integers(0, len(centres), n), 0.9), u_img, gap["m_img"])
    which = rng.integers(0, len(centres), q)
    queries = {"image": cone(around(which, 0.9), u_img, gap["m_img"]),
               "text": cone(around(which, 0.6), u_txt, gap["m_txt"])}
    offset = rng.standard_normal(d).astype(np.float32) * 0.6 / np.sqrt(d) * 8  # the earlier benchmark's offset
    queries["text_wide"] = unit(around(which, 0.6) + offset).astype(np.float32)
    stats = {k: {"mean_norm": float(np.linalg.norm(v.mean(0)))} for k, v in (("gallery", gallery), *queries.items())}
    return gallery, queries, stats


def main() -> None:
    import faiss

    from mmkit.index import build

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--per-centre", default="50,10", help="gallery structures: vectors per cluster centre")
    ap.add_argument("--gap-model", default="shapes-clip")
    ap.add_argument("--gap-only", action="store_true", help="print the model's gap and stop")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "index_results.json"))
    args = ap.parse_args()
    gap = gap_stats(args.gap_model)
    print("gap", json.dumps(gap), flush=True)
    if args.gap_only:
        return
    res = {"n": args.n, "dim": 512, "pq_bytes": 64, "gap": gap, "structures": []}
    for per_centre in map(int, args.per_centre.split(",")):
        x, queries, stats = data(args.n, 512, args.queries, gap, per_centre=per_centre)
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        t = time.perf_counter()
        flat = build(x, flat_max=10**9)
        flat_build = time.perf_counter() - t
        load_build = os.getloadavg()[0]
        t = time.perf_counter()
        ivf = build(x, flat_max=0)
        ivf_build = time.perf_counter() - t
        nlist = int(faiss.extract_index_ivf(ivf.index).nlist)
        s = {"per_centre": per_centre, "synthetic": stats, "load_at_build": load_build, "flat_build_s": flat_build,
             "ivfpq_build_s": ivf_build, "nlist": nlist, "defaults": {"nprobe": ivf.nprobe, "rerank": ivf.rerank},
             "bytes_per_vector": {"flat": flat.bytes_per_vector()["ram"], "ivfpq": ivf.bytes_per_vector()},
             "runs": []}
        faiss.omp_set_num_threads(1)  # one query at a time: threads only add waiting on a shared CPU
        want, s["neighbours"] = {}, {}
        for name, q in queries.items():
            sc, want[name] = flat.search(q, 10)
            s["neighbours"][name] = {"cos_1st": float(np.median(sc[:, 0])), "cos_10th": float(np.median(sc[:, 9]))}
        flat_lat = []
        for v in queries["image"][:50]:
            t = time.perf_counter()
            flat.search(v[None], 10)
            flat_lat.append(time.perf_counter() - t)
        s["flat_p50_ms"] = 1000 * float(np.percentile(flat_lat, 50))
        print(json.dumps({k: v for k, v in s.items() if k != "runs"}), flush=True)
        default = ivf.nprobe
        for nprobe, rerank in ((default, 20), (32, 10), (default, 10), (default // 2, 20), (default * 2, 20), (default, 50)):
            ivf.tune(nprobe=nprobe, rerank=rerank)
            row = {"nprobe": nprobe, "rerank": rerank, "load": os.getloadavg()[0]}
            for name, q in queries.items():
                lat, got = [], []
                for v in q:
                    t = time.perf_counter()
                    got.append(ivf.search(v[None], 10)[1][0])
                    lat.append(time.perf_counter() - t)
                row[name] = {"recall@10": float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(want[name], got)])),
                             "p50_ms": 1000 * float(np.percentile(lat, 50)),
                             "p95_ms": 1000 * float(np.percentile(lat, 95))}
            s["runs"].append(row)
            print(json.dumps(row), flush=True)
        res["structures"].append(s)
        del x, flat, ivf
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
