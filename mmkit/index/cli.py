"""`mmkit index embeddings.parquet --out gallery.index` and `mmkit search gallery.index QUERY -k 10`.

A query is text, or an image when it names an existing image file; a query that looks like an image's path
(it ends in an image suffix, or names a folder) but is not a file is refused, rather than searched for as text
(--text searches for it as text). Results are one line per hit (`rank  score  path`), or JSON Lines with --json.
"""
from __future__ import annotations

import json
import os
import shlex
import sys

from ..cli_output import one_line, path_b64, say, show_path, utf8
from ..errors import InputError
from ..options import check_option


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
    s.add_argument("--text", action="store_true",
                   help="search for the query as text even when it looks like a file's path")


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
    from ..notices import capture_notices

    check_option("k", args.k, label="-k")  # the rule of mmkit.retrieve and Index.search
    is_image = not args.text and os.path.isfile(args.query)
    if not args.text and not is_image:
        _refuse_missing_path(args.query)
    idx = store.load(args.index)
    name = args.model or idx.model
    if not name:
        raise InputError(f"the index {show_path(args.index)!r} does not name its model; pass --model NAME")
    if args.model and idx.model:  # another model's embeddings do not compare: refused before its weights load
        from ..models import resolve
        from .checks import check_model

        check_model(idx.model, resolve(args.model),
                    fix=f"leave out --model to use the index's model, or pass --model {shlex.quote(idx.model)} (if "
                    "it is the same model under another name, build the index again with `mmkit index ... --model "
                    f"{shlex.quote(args.model)}`)")
    m = mmkit.load_model(name, device=args.device)
    if is_image:
        list_images(args.query)  # InputError for a file that is not an image by name
    with capture_notices() as notices:  # a bundled model's out-of-domain notice, said as the other commands say it
        hits = idx.search_image(m, args.query, args.k) if is_image else idx.search_text(m, args.query, args.k)
    for n in notices:
        say(f"mmkit: note: {n}")
    for rank, h in enumerate(hits, 1):
        if args.json:
            rec = {"rank": rank, "score": round(h.score, 6), "path": show_path(h.item)}
            if notices:  # about the query, so every hit carries it
                rec["notice"] = " ".join(notices)
            exact = path_b64(h.item)  # a name that is not UTF-8: its bytes, as `mmkit caption --json` gives them
            sys.stdout.write(utf8(json.dumps({**rec, "image_b64": exact} if exact else rec, ensure_ascii=False)) + "\n")
        else:
            sys.stdout.write(f"{rank}\t{h.score:.4f}\t{one_line(show_path(h.item))}\n")
    sys.stdout.flush()
    return 0


def _refuse_missing_path(query: str) -> None:
    """InputError when a query that is not a file looks like a path: a folder, or a name with an image suffix (a
    mistyped file name would otherwise be searched for as the words 'inputs pics red cirle png')."""
    from pathlib import Path

    from ..annotations import IMAGE_SUFFIXES

    if os.path.isdir(query):
        raise InputError(f"{show_path(query)!r} is a folder; search takes one image file (or a text) as its query")
    if Path(query.strip()).suffix.lower() in IMAGE_SUFFIXES:
        raise InputError(f"no such image file: {show_path(query)!r}; check the path, or pass --text to search for "
                         "these words")
