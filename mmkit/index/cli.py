"""`mmkit index embeddings.parquet --out gallery.index` and `mmkit search gallery.index QUERY -k 10`.

A query is text, or an image when it names an existing image file. Results are one line per hit
(`rank  score  path`), or JSON Lines with --json.
"""
from __future__ import annotations

import json
import os
import sys

from ..cli_output import one_line, path_b64, say, show_path, utf8
from ..errors import InputError


def add_commands(sub) -> None:
    """Add the index and search sub-commands to an argparse sub-parser set."""
    from .store import FLAT_MAX

    p = sub.add_parser("index", help="build a FAISS index from an embed job's output")
    p.add_argument("embeddings", help="the .parquet / .jsonl / .csv file of `mmkit embed`")
    p.add_argument("--out", required=True, help="index folder to write, e.g. gallery.index")
    p.add_argument("--flat-max", type=int, default=FLAT_MAX,
                   help=f"exact (flat) index up to this many vectors, IVF-PQ beyond (default {FLAT_MAX})")
    p.add_argument("--nlist", type=int, default=None, help="IVF lists (default about 8 * sqrt(N))")
    p.add_argument("--pq-bytes", type=int, default=64, help="PQ code bytes per vector (default 64)")
    p.add_argument("--nprobe", type=int, default=None,
                   help="IVF lists searched per query (default an eighth of the lists, at least 32)")
    p.add_argument("--rerank", type=int, default=20, help="candidates re-ranked exactly per hit (default 20)")
    p.add_argument("--model", default=None, help="the model that made the embeddings (default: from the job)")
    s = sub.add_parser("search", help="search an index by text or by an image file")
    s.add_argument("index", help="index folder made by `mmkit index`")
    s.add_argument("query", help="a text, or the path of an image file")
    s.add_argument("-k", type=int, default=10, help="how many hits (default 10)")
    s.add_argument("--model", default=None, help="model to embed the query (default: the index's)")
    s.add_argument("--json", action="store_true", help="one JSON object per hit")
    s.add_argument("--device", default=None, help="cpu, cuda or mps")


def run_index_command(args) -> int:
    """Run `index` or `search`; returns the exit code."""
    from . import store

    if args.command == "index":
        idx = store.build(args.embeddings, args.out, flat_max=args.flat_max, nlist=args.nlist,
                          pq_bytes=args.pq_bytes, nprobe=args.nprobe, rerank=args.rerank, model=args.model)
        say(f"mmkit index: {len(idx)} vectors ({idx.kind}, {idx.dim} dims, model {idx.model}) -> "
            f"{show_path(args.out)}")
        return 0
    import mmkit
    from ..jobs.source import list_images

    if not isinstance(args.k, int) or args.k < 1:
        raise InputError(f"-k {args.k}: pass a positive number of hits")
    idx = store.load(args.index)
    name = args.model or idx.model
    if not name:
        raise InputError(f"the index {show_path(args.index)!r} does not name its model; pass --model NAME")
    m = mmkit.load_model(name, device=args.device)
    is_image = os.path.isfile(args.query)
    if is_image:
        list_images(args.query)  # InputError for a file that is not an image by name
    hits = idx.search_image(m, args.query, args.k) if is_image else idx.search_text(m, args.query, args.k)
    for rank, h in enumerate(hits, 1):
        if args.json:
            rec = {"rank": rank, "score": round(h.score, 6), "path": show_path(h.item)}
            exact = path_b64(h.item)  # a name that is not UTF-8: its bytes, as `mmkit caption --json` gives them
            sys.stdout.write(utf8(json.dumps({**rec, "image_b64": exact} if exact else rec, ensure_ascii=False)) + "\n")
        else:
            sys.stdout.write(f"{rank}\t{h.score:.4f}\t{one_line(show_path(h.item))}\n")
    sys.stdout.flush()
    return 0
