"""Index benchmark: IVF-PQ with exact re-ranking against exact (flat) search, on 100k vectors.

recall@10 of IVF-PQ + re-rank against flat for image queries (held-out points of the gallery's distribution)
and text queries (points moved by a constant "modality gap" vector, as CLIP's text embeddings sit apart
from its image embeddings), build time, p50/p95 query latency (one query at a time) and bytes per vector.

The vectors are synthetic: 512-dim (CLIP-B/32's width), clustered around 2,000 random centres with noise,
L2-normalised; embedding 100k real pictures does not fit this machine's time budget. Uniform random vectors
would be the worst case (no neighbourhood structure), real embeddings usually an easier one.

    python benchmarks/index.py [--n 100000] [--out benchmarks/index_results.json]
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


def data(n: int, d: int, q: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((2000, d)).astype(np.float32)

    def around(m, noise):
        x = centres[rng.integers(0, len(centres), m)] + noise * rng.standard_normal((m, d)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    gallery = around(n, 0.9)
    image_q = around(q, 0.9)
    gap = rng.standard_normal(d).astype(np.float32) * 0.6
    text_q = around(q, 0.6) + gap / np.sqrt(d) * 8
    text_q /= np.linalg.norm(text_q, axis=1, keepdims=True)
    return gallery, image_q, text_q


def main() -> None:
    from mmkit.index import build

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "index_results.json"))
    args = ap.parse_args()
    x, iq, tq = data(args.n, 512, args.queries)
    t = time.perf_counter()
    flat = build(x, flat_max=10**9)
    flat_build = time.perf_counter() - t
    t = time.perf_counter()
    ivf = build(x, flat_max=0)
    ivf_build = time.perf_counter() - t
    res = {"n": args.n, "dim": 512, "load": os.getloadavg(), "flat_build_s": flat_build, "ivfpq_build_s": ivf_build,
           "nlist": int(__import__("faiss").extract_index_ivf(ivf.index).nlist), "pq_bytes": 64,
           "bytes_per_vector": {"flat": flat.bytes_per_vector()["ram"], "ivfpq": ivf.bytes_per_vector()}, "runs": []}
    __import__("faiss").omp_set_num_threads(1)  # one query at a time: threads only add waiting on a shared CPU
    for nprobe, rerank in ((16, 10), (32, 10), (64, 10), (64, 50), (128, 100)):
        ivf.nprobe, ivf.rerank = nprobe, rerank
        __import__("faiss").extract_index_ivf(ivf.index).nprobe = nprobe
        row = {"nprobe": nprobe, "rerank": rerank}
        for name, q in (("image", iq), ("text", tq)):
            _, want = flat.search(q, 10)
            lat, got = [], []
            for v in q:
                t = time.perf_counter()
                got.append(ivf.search(v[None], 10)[1][0])
                lat.append(time.perf_counter() - t)
            flat_lat = []
            for v in q[:50]:
                t = time.perf_counter()
                flat.search(v[None], 10)
                flat_lat.append(time.perf_counter() - t)
            row[name] = {"recall@10": float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(want, got)])),
                         "p50_ms": 1000 * float(np.percentile(lat, 50)), "p95_ms": 1000 * float(np.percentile(lat, 95)),
                         "flat_p50_ms": 1000 * float(np.percentile(flat_lat, 50))}
        res["runs"].append(row)
        print(json.dumps(row), flush=True)
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps({k: v for k, v in res.items() if k != "runs"}))


if __name__ == "__main__":
    main()
