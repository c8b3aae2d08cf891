"""Search at scale: a FAISS index over a job's embeddings, exact up to a size you choose, IVF-PQ beyond it.

    idx = mmkit.index.build("embeddings.parquet", "gallery.index")   # flat below flat_max vectors, else IVF-PQ
    idx = mmkit.index.load("gallery.index")
    idx.search_text(m, "a red circle", k=10)  # [Hit(index, score, item=path), ...]
    mmkit.retrieve(m, "a red circle", idx, k=10)  # the same, through the task API

IVF-PQ keeps only short codes in memory (`pq_bytes` per vector, plus the list ids), visits an eighth of its
lists per query and re-ranks the top `k * rerank` (20 k) candidates exactly against the float32 vectors, which
stay on disk (memory-mapped); `idx.tune(nprobe=, rerank=)` trades recall for speed.
An index is a folder: faiss.index, vectors.npy (IVF-PQ only) and meta.json (model, kind, paths of the images).
A query embedded by another model than meta.json's is refused (checks.py). To add pictures, build it again (Index).
"""
from __future__ import annotations

from .store import Index, build, load

__all__ = ["Index", "build", "load"]
