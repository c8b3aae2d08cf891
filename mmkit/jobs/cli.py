"""The collection commands of `mmkit`: a task over a folder into a results file, and the FAISS index commands.

    mmkit caption DIR --recursive --out captions.parquet [--resume] [--engine ray]
    mmkit embed DIR --out embeddings.parquet
    mmkit answer DIR -q "what color is the circle?" --out answers.jsonl
    mmkit zero-shot DIR -l "cat,dog" --out labels.csv
    mmkit index embeddings.parquet --out gallery.index
    mmkit search gallery.index "a red circle" -k 10      (or an image file as the query)

`caption`, `answer` and `zero-shot` come here when they are given --out (without it they print one line
per image: mmkit/cli.py). A progress bar (images/s, ETA) and the summary go to stderr. Exit codes: 0 the
job finished and every image was read; 2 bad input, or the job finished with images that could not be read
(every other image is done and written; a last stderr line says how many, and their rows in the output have
the reason in "error"; a resume that still has such rows, from this run or an earlier one, exits 2 too:
--retry-errors reads them again); 130 interrupted (the finished shards are kept: rerun with --resume).
"""
from __future__ import annotations

import argparse
import json

from ..cli_output import Parser, say, show_path
from .tasks import TASKS

JOB_COMMANDS = ("caption", "embed", "answer", "zero-shot")


def handles(argv: list[str]) -> bool:
    """True for `embed`, `index`, `search`, and for caption / answer / zero-shot given --out."""
    if not argv:
        return False
    if argv[0] in ("embed", "index", "search"):
        return True
    return argv[0] in JOB_COMMANDS and any(a == "--out" or a.startswith("--out=") for a in argv[1:])


def build_parser() -> argparse.ArgumentParser:
    """The parser of the job commands and of index / search."""
    from ..index.cli import add_commands

    parser = Parser(prog="mmkit", description="Caption, embed or search a whole image collection.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for name in JOB_COMMANDS:
        t = TASKS[name]
        p = sub.add_parser(name, help=f"{name} every image of a folder into a results file")
        p.add_argument("images", nargs="+", metavar="DIR", help="folders of images (or image files)")
        p.add_argument("--out", required=True, help="results file: .parquet, .jsonl or .csv")
        p.add_argument("--recursive", "-r", action="store_true", help="also read the images in sub-folders")
        p.add_argument("--resume", action="store_true", help="continue an earlier run of this job (only missing work)")
        p.add_argument("--overwrite", action="store_true", help="start again even if --out or its journal exists")
        p.add_argument("--retry-errors", action="store_true",
                       help="with --resume, also read again the images an earlier run could not read")
        p.add_argument("--model", default=t.model, help=f"model name, family, folder or hub id (default {t.model})")
        p.add_argument("--engine", choices=["local", "ray"], default="local", help="local pool (default) or Ray Data")
        p.add_argument("--ray-address", default=None, help="Ray cluster address (default: start a local one)")
        p.add_argument("--ray-workers", type=int, default=2, help="model actors on Ray (default 2)")
        p.add_argument("--batch-size", type=int, default=16, help="images per forward pass (default 16)")
        p.add_argument("--shard-size", type=int, default=256, help="images per shard file (default 256)")
        p.add_argument("--workers", type=int, default=None, help="decoding threads (default min(4, CPUs))")
        p.add_argument("--no-draft", action="store_true", help="decode JPEGs at full size (slower)")
        p.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best available)")
        p.add_argument("--json", action="store_true", help="print the summary as one JSON object on stdout")
        if name == "caption":
            p.add_argument("--beams", type=int, default=None, help="beam width (default 1: greedy)")
            p.add_argument("--max-tokens", type=int, default=None, help="longest caption in tokens (default 30)")
            p.add_argument("--prompt", default=None, help="text every caption starts with")
        if name == "answer":
            p.add_argument("-q", "--question", required=True, help="the question asked of every image")
        if name == "zero-shot":
            p.add_argument("-l", "--labels", required=True, action="append",
                           help="comma-separated class names, e.g. 'cat,dog' (or -l once per name)")
            p.add_argument("-t", "--template", action="append", default=None, help="prompt template with {}")
    add_commands(sub)
    return parser


def _options(args) -> dict:
    if args.command == "caption":
        return dict(num_beams=args.beams, max_new_tokens=args.max_tokens, prompt=args.prompt)
    if args.command == "answer":
        return dict(question=args.question)
    if args.command == "zero-shot":
        return dict(labels=",".join(args.labels), templates=args.template)
    return {}


def run_job(args) -> int:
    from .run import run

    source = args.images if len(args.images) > 1 else args.images[0]
    res = run(args.command, args.model, source, args.out, resume=args.resume, engine=args.engine,
              overwrite=args.overwrite, recursive=args.recursive, batch_size=args.batch_size,
              shard_size=args.shard_size, workers=args.workers, draft=not args.no_draft, device=args.device,
              ray_address=args.ray_address, ray_workers=args.ray_workers, retry_errors=args.retry_errors,
              **_options(args))
    if args.json:
        print(json.dumps({"out": str(res.out), "images": res.images, "errors": res.errors,
                          "errors_before": res.errors_before, "done_before": res.done_before,
                          "seconds": round(res.seconds, 3), "images_per_s": round(res.images_per_s, 2),
                          "timing": {k: round(v, 3) for k, v in res.timing.items()}}), flush=True)
    if res.errors:  # everything else is done and written; exit 2 as the plain `mmkit caption DIR` does
        earlier = (f" ({res.errors_before} of them by an earlier run: add --retry-errors to read them again)"
                   if res.errors_before else "")
        say(f"mmkit: {res.errors} of {res.images} images could not be read{earlier}; their rows in "
            f"{show_path(res.out)} give the reason in the \"error\" column")
        return 2
    return 0


def main(argv: list[str]) -> int:
    """Entry point for the job, index and search commands; returns the exit code. mmkit.cli.main calls it and
    turns errors into its exit codes (2 bad input, 1 unexpected, 130 interrupted)."""
    from ..index.cli import run_index_command

    args = build_parser().parse_args(argv)
    if args.command in ("index", "search"):
        return run_index_command(args)
    return run_job(args)
