"""The index folder: build (flat or IVF-PQ), save, load, and search with exact re-ranking."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..cli_output import show_path
from ..errors import InputError
from ..options import check_option
from .checks import check_model, model_name

if TYPE_CHECKING:
    from ..models import Loaded

FLAT_MAX = 50_000  # vectors up to which build() makes an exact (flat) index


def _faiss():
    try:
        import faiss
    except ImportError:
        raise InputError("the index needs faiss: pip install 'mmkit[scale]' (faiss-cpu)") from None
    return faiss


def read_embeddings(path) -> tuple[np.ndarray, list[str], str | None]:
    """(vectors (N, D) float32, image paths, model name or None) from an embed job's output file.

    Rows with an error (unreadable files) are left out. The model is read from the job's journal.
    """
    from ..jobs.output import read_output

    rows = [r for r in read_output(path) if r.get("embedding") is not None and not r.get("error")]
    if not rows:
        raise InputError(f"{show_path(path)!r} has no embeddings; make it with `mmkit embed DIR --out FILE`")
    vecs = [json.loads(r["embedding"]) if isinstance(r["embedding"], str) else r["embedding"] for r in rows]
    model = None
    job = Path(os.fspath(path) + ".parts") / "job.json"
    if job.exists():
        model = json.loads(job.read_text(encoding="utf-8")).get("model")
    return np.asarray(vecs, dtype=np.float32), [_exact_path(r) for r in rows], model


def _exact_path(row: dict) -> str:
    """A job row's path as the file system names it: from its image_b64 when the name is not UTF-8 (its "path"
    then shows those bytes as \\xff text, which opens nothing)."""
    import base64

    return os.fsdecode(base64.b64decode(row["image_b64"])) if row.get("image_b64") else row["path"]


def _pq_bytes(d: int, want: int) -> int:
    """The largest number of PQ sub-quantizers <= want that divides d (FAISS needs a divisor)."""
    return max(m for m in range(1, min(d, want) + 1) if d % m == 0)


class Index:
    """A searchable gallery: `search(vectors, k)` -> (scores (Q, k), ids (Q, k)); `items` are the image paths.

    Queries must be embedded by the index's model (`model`, checked by name when the index knows it).
    To add pictures, build the index again: `mmkit embed DIR --out e.parquet --resume` embeds only the files new
    to the folder, then `mmkit index e.parquet --out gallery.index` writes the index over all of them. From
    arrays: build(np.concatenate([old, mmkit.embed_images(m, new_paths)]), items=old_paths + new_paths, model=m),
    with `old` the array the index was built from.
    """

    def __init__(self, index, items: list, kind: str, model: str | None, vectors=None, nprobe: int = 32,
                 rerank: int = 20, folder: Path | None = None):
        self.index, self.items, self.kind, self.model = index, list(items), kind, model_name(model)
        self.vectors = vectors  # (N, D) float32, memory-mapped, for exact re-ranking (IVF-PQ)
        self.folder, self.nprobe, self.rerank = folder, nprobe, rerank
        self.tune(nprobe, rerank)

    def tune(self, nprobe: int | None = None, rerank: int | None = None) -> "Index":
        """Set the search effort of an IVF-PQ index: `nprobe` lists visited per query, `rerank` candidates
        re-ranked exactly per hit. More of either: higher recall, slower queries. Returns the index."""
        for name, value in (("nprobe", nprobe), ("rerank", rerank)):
            if value is not None and (not isinstance(value, (int, np.integer)) or value < 1):
                raise InputError(f"{name}={value!r}: pass a positive whole number")
        self.nprobe = int(nprobe or self.nprobe)
        self.rerank = int(rerank or self.rerank)
        if self.kind == "ivfpq":
            _faiss().extract_index_ivf(self.index).nprobe = self.nprobe
        return self

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        return int(self.index.d)

    def __repr__(self) -> str:
        return f"Index({self.kind}, {len(self)} vectors of {self.dim} dims, model={self.model!r})"

    def bytes_per_vector(self) -> dict:
        """Memory per vector: {'ram': in the FAISS index, 'disk_rerank': float32 vectors kept on disk}."""
        faiss = _faiss()
        ram = len(faiss.serialize_index(self.index)) / max(1, len(self))
        return {"ram": ram, "disk_rerank": 4 * self.dim if self.kind == "ivfpq" else 0}

    def search(self, queries, k: int = 10):
        """(scores (Q, k) cosine, ids (Q, k)) for L2-normalised queries (Q, D); ids -1 where fewer exist."""
        q = np.asarray(queries, dtype=np.float32)
        q = q.reshape(1, -1) if q.ndim == 1 else q
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise InputError(f"queries of width {q.shape[-1]} do not fit this index of {self.dim}-dim vectors "
                             f"(model {self.model}); embed the query with the index's model")
        q = np.ascontiguousarray(q)
        k = min(check_option("k", k), len(self))  # retrieve's rule: a whole number from 1; capped at the gallery
        if self.kind == "flat":
            return self.index.search(q, k)
        _, cand = self.index.search(q, min(len(self), k * self.rerank))  # (Q, k * rerank) PQ candidates
        scores = np.full((len(q), k), -np.inf, dtype=np.float32)
        ids = np.full((len(q), k), -1, dtype=np.int64)
        for i, row in enumerate(cand):
            row = row[row >= 0]
            exact = np.asarray(self.vectors[np.sort(row)]) @ q[i]  # exact cosine of the candidates
            order = np.argsort(-exact, kind="stable")[:k]
            ids[i, :len(order)], scores[i, :len(order)] = np.sort(row)[order], exact[order]
        return scores, ids

    def check_model(self, m):
        """The loaded model m (a Loaded, or a name to load); InputError when it is not the index's model."""
        from ..tasks.inputs import task_model

        m = task_model(m, "embed_texts")  # a name or a folder is loaded, as the task functions do
        check_model(self.model, m.spec)
        return m

    def hits(self, queries, k: int = 10, model=None) -> list[list]:
        """[[Hit(index, score, item=path), ...] per query] for L2-normalised query vectors.

        Args:
            queries: (Q, D) or (D,) query embeddings.
            model: the model that embedded them; when given, it must be the index's model (InputError).
        """
        from ..tasks import Hit

        if model is not None:
            self.check_model(model)
        scores, ids = self.search(queries, k)
        return [[Hit(int(i), float(s), self.items[int(i)]) for s, i in zip(sr, ir) if i >= 0]
                for sr, ir in zip(scores, ids)]

    def search_text(self, m, text, k: int = 10):
        """Hits for a text (or a list of texts) embedded by model m, which must be the index's model."""
        import mmkit

        k, m = check_option("k", k), self.check_model(m)  # before any embedding
        many = isinstance(text, (list, tuple))
        res = self.hits(mmkit.embed_texts(m, text).numpy(), k)
        return res if many else res[0]

    def search_image(self, m, image, k: int = 10):
        """Hits for an image (path, PIL, ...) or a list of them, embedded by model m, the index's model."""
        import mmkit

        k, m = check_option("k", k), self.check_model(m)  # before any embedding
        many = isinstance(image, (list, tuple))
        res = self.hits(mmkit.embed_images(m, image).numpy(), k)
        return res if many else res[0]

    def save(self, folder) -> Path:
        """Write the index folder (faiss.index, meta.json, vectors.npy for IVF-PQ); returns its path."""
        faiss = _faiss()
        folder = Path(os.fspath(folder))
        try:
            folder.mkdir(parents=True, exist_ok=True)
            faiss.write_index(self.index, str(folder / "faiss.index"))
            if self.kind == "ivfpq" and (self.folder is None or Path(self.folder) != folder):
                np.save(folder / "vectors.npy", np.asarray(self.vectors, dtype=np.float32))
            meta = {"kind": self.kind, "model": self.model, "dim": self.dim, "count": len(self),
                    "nprobe": self.nprobe, "rerank": self.rerank, "items": self.items}
            (folder / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
        except OSError as e:
            raise InputError(f"cannot write the index to {show_path(folder)!r} ({e.strerror or e}); "
                             "choose another --out") from None
        self.folder = folder
        return folder


def default_nlist(n: int) -> int:
    """IVF lists for n vectors: about 8 * sqrt(n) (about 40 vectors per list at 100k), at most n / 39 (the
    fewest training vectors per list FAISS accepts without a warning)."""
    return max(16, min(int(8 * n ** 0.5), n // 39))


def default_nprobe(nlist: int) -> int:
    """Lists visited per query: an eighth of them, at least 32 (all of them when there are fewer)."""
    return min(nlist, max(32, nlist // 8))


def build(embeddings, out=None, *, flat_max: int = FLAT_MAX, nlist: int | None = None, pq_bytes: int = 64,
          nprobe: int | None = None, rerank: int = 20, items=None, model: "str | Loaded | None" = None,
          seed: int = 0) -> Index:
    """An index over embeddings: exact (flat) up to `flat_max` vectors, IVF-PQ with exact re-ranking beyond.

    Args:
        embeddings: an embed job's output file, or an (N, D) array of L2-normalised vectors.
        out: folder to save it in (optional).
        nlist: IVF lists (default about 8 * sqrt(N)); pq_bytes: code bytes per vector (a divisor of D is used).
        nprobe: lists searched per query (default nlist / 8, at least 32); rerank: candidates re-ranked
            exactly per result (default 20: k * rerank in all). Both can be changed later with Index.tune.
        items: what each row is (default: the image paths of the job file, else row numbers).
        model: the model that made the embeddings, a name or the loaded model (default: the job's); searches
            then refuse queries embedded by another model.
    """
    faiss = _faiss()
    model = model_name(model)  # InputError for what is not a name, before any work
    if isinstance(embeddings, (str, os.PathLike)):
        vecs, paths, found = read_embeddings(embeddings)
        items, model = items or paths, model or found
    else:
        vecs = np.asarray(getattr(embeddings, "numpy", lambda: embeddings)(), dtype=np.float32)
    if vecs.ndim != 2 or len(vecs) == 0 or not np.isfinite(vecs).all():
        raise InputError(f"embeddings of shape {vecs.shape}: pass an (N, D) array of finite numbers, or the "
                         "output file of `mmkit embed`")
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    if (norms == 0).any():
        raise InputError("some embeddings are all zeros; make them with mmkit.embed_images (L2-normalised)")
    vecs = np.ascontiguousarray(vecs / norms)
    items = list(range(len(vecs))) if items is None else list(items)
    if len(items) != len(vecs):
        raise InputError(f"{len(items)} items for {len(vecs)} vectors; pass one item per row")
    n, d = vecs.shape
    if n <= flat_max:
        index = faiss.IndexFlatIP(d)
        index.add(vecs)
        idx = Index(index, items, "flat", model)
    else:
        nlist = nlist or default_nlist(n)
        if n < max(256, nlist):  # PQ learns 256 centroids per sub-vector, IVF nlist lists
            raise InputError(f"{n} vectors are too few for IVF-PQ (it needs at least {max(256, nlist)} to train); "
                             f"use an exact index: flat_max >= {n} (--flat-max)")
        m = _pq_bytes(d, pq_bytes)
        index = faiss.index_factory(d, f"IVF{nlist},PQ{m}x8", faiss.METRIC_INNER_PRODUCT)
        faiss.downcast_index(index).do_polysemous_training = False  # minutes of annealing, unused here
        rng = np.random.default_rng(seed)
        train = vecs[rng.choice(n, size=min(n, max(40 * nlist, 256 * 40)), replace=False)]  # >= 39 per list
        index.train(train)
        index.add(vecs)
        idx = Index(index, items, "ivfpq", model, vectors=vecs, nprobe=nprobe or default_nprobe(nlist),
                    rerank=rerank)
    if out is not None:
        idx.save(out)
    return idx


def load(folder) -> Index:
    """An index saved by build(..., out=) or `mmkit index`; InputError when the folder is not one."""
    faiss = _faiss()
    folder = Path(os.fspath(folder))
    make = "make one with `mmkit index embeddings.parquet --out gallery.index`"
    if not folder.exists():
        raise InputError(f"{show_path(folder)!r} is not an mmkit index: no such folder; check the path, or {make}")
    if not folder.is_dir():
        raise InputError(f"{show_path(folder)!r} is a file, not an mmkit index; pass the folder that `mmkit index "
                         f"--out` wrote (it holds meta.json and faiss.index), or {make}")
    if not (folder / "meta.json").is_file() or not (folder / "faiss.index").is_file():
        raise InputError(f"{show_path(folder)!r} is not an mmkit index (no meta.json / faiss.index); {make}")
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        index = faiss.read_index(str(folder / "faiss.index"))
        vectors = np.load(folder / "vectors.npy", mmap_mode="r") if meta["kind"] == "ivfpq" else None
    except Exception as e:
        raise InputError(f"the index {show_path(folder)!r} could not be read ({type(e).__name__}: {e}); "
                         "build it again") from None
    return Index(index, meta["items"], meta["kind"], meta.get("model"), vectors, meta.get("nprobe", 32),
                 meta.get("rerank", 10), folder)
