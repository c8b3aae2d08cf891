"""The command line: `mmkit caption|answer|zero-shot|attention IMAGE... [--model NAME] [--json]`.

Images are files or folders (a folder means the image files directly inside it, sorted by name).
One line (or one JSON object with --json) per image goes to stdout; a progress bar and messages go
to stderr. Exit codes: 0 all fine, 2 bad input (an unknown model, a missing file, an unreadable
image: each reported in one line), 130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .annotations import IMAGE_SUFFIXES  # the image files a folder contributes
from .errors import InputError

DEFAULT_MODEL = {"caption": "blip-caption", "answer": "blip-vqa", "zero-shot": "clip", "attention": "blip-caption"}


def expand(paths: list[str]) -> list[Path]:
    """Files as given and the image files inside folders (sorted); InputError for a missing path or empty folder."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise InputError(f"folder '{p}' has no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
            out += found
        elif p.exists():
            out.append(p)
        else:
            raise InputError(f"'{p}' does not exist; pass image files or folders of images")
    return out


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `mmkit` (one sub-command per task)."""
    parser = argparse.ArgumentParser(prog="mmkit", description="Run mmkit models on images from the command line.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{caption,answer,zero-shot,attention}")

    def command(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders of images")
        p.add_argument("--model", default=DEFAULT_MODEL[name],
                       help=f"model name, family, directory or hub id (default: {DEFAULT_MODEL[name]}; "
                            "see `python -c 'import mmkit; print(mmkit.list_models())'`)")
        p.add_argument("--json", action="store_true", help="one JSON object per image instead of a text line")
        p.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best available)")
        p.add_argument("--batch-size", type=int, default=8, help="images per forward pass (default: 8)")
        return p

    c = command("caption", "Caption each image.")
    c.add_argument("--beams", type=int, default=1, help="beam search width (default 1: greedy)")
    c.add_argument("--sample", action="store_true", help="sample instead of greedy/beam decoding")
    c.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (with --sample)")
    c.add_argument("--top-p", type=float, default=0.9, help="nucleus sampling threshold (with --sample)")
    c.add_argument("--max-tokens", type=int, default=30, help="longest caption in tokens (default 30)")
    c.add_argument("--prompt", default=None, help="text the caption must start with")
    a = command("answer", "Answer a question about each image.")
    a.add_argument("-q", "--question", required=True, help="the question, e.g. 'what color is the circle?'")
    z = command("zero-shot", "Classify each image among labels with CLIP-style zero-shot classification.")
    z.add_argument("-l", "--labels", required=True, help="comma-separated class names, e.g. 'cat,dog,bird'")
    z.add_argument("-t", "--template", action="append", default=None,
                   help="prompt template with {} (repeat to ensemble; default: the model's own)")
    t = command("attention", "Write a PNG of the per-word attention maps of each image.")
    t.add_argument("--text", default=None,
                   help="the text whose words are mapped (a prompt, question or caption); captioning models "
                        "caption the image when it is left out")
    t.add_argument("--out", default="attention", help="folder for the PNG files (default: ./attention)")
    t.add_argument("--method", default=None, help="map method: attention, rollout, gradcam, ... (default: the first)")
    return parser


def _progress(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="image", file=sys.stderr, leave=False)


def _emit(args, path: Path, text_fields: list[str], record: dict) -> None:
    line = json.dumps({"image": str(path), **record}, ensure_ascii=False) if args.json else \
        "\t".join([str(path)] + text_fields)
    print(line, flush=True)


def _run_batch(args, m, images: list) -> list[tuple[list[str], dict]]:
    """Run the command on one batch of loaded images: (text fields, JSON record) per image."""
    import mmkit

    if args.command == "caption":
        kw = dict(max_new_tokens=args.max_tokens, num_beams=args.beams, do_sample=args.sample,
                  temperature=args.temperature, top_p=args.top_p, prompt=args.prompt)
        return [([c], {"caption": c}) for c in mmkit.caption(m, images, **kw)]
    if args.command == "answer":
        return [([a], {"question": args.question, "answer": a}) for a in mmkit.answer(m, images, args.question)]
    if args.command == "zero-shot":
        labels = [x.strip() for x in args.labels.split(",") if x.strip()]
        if len(labels) < 2:
            raise InputError(f"--labels {args.labels!r}: give at least two comma-separated class names, e.g. 'cat,dog'")
        out = []
        for probs in mmkit.zero_shot(m, images, labels, templates=args.template):
            best = max(probs, key=probs.get)
            out.append(([best, f"{probs[best]:.3f}"], {"label": best, "probs": probs}))
        return out
    return [_attention_png(args, m, p, im) for p, im in images]


def _attention_png(args, m, path: Path, image) -> tuple[list[str], dict]:
    import mmkit

    maps = mmkit.attention_maps(m, image, text=args.text)
    if args.method is not None and args.method not in maps.methods:
        raise InputError(f"--method {args.method!r} is not available for {m.spec.name}; choose one of {maps.methods}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{path.stem}.png"
    k = 1
    while target in _WRITTEN:  # two inputs with the same name: keep both
        target, k = out / f"{path.stem}-{k}.png", k + 1
    _WRITTEN.add(target)
    fig = mmkit.viz.caption_strip(maps, method=args.method)
    fig.savefig(target, dpi=90)
    return [str(target), maps.text], {"png": str(target), "text": maps.text, "words": maps.words}


_WRITTEN: set[Path] = set()


def _check_length(m, max_tokens: int, prompt: str | None) -> None:
    """InputError when --max-tokens (plus the prompt) would run past the model's position table."""
    cfg = getattr(m.model.config, "text_config", m.model.config)
    limit = getattr(cfg, "max_position_embeddings", None)
    if not isinstance(limit, int) or m.spec.family != "blip-caption":
        return
    used = len(m.processor.tokenizer(prompt)["input_ids"]) - 1 if prompt else 1  # generate drops the final [SEP]
    if max_tokens > limit - used:
        raise InputError(f"--max-tokens {max_tokens} is more than {m.spec.name} can write ({limit} positions, "
                         f"{used} taken by the start{' and the prompt' if prompt else ''}); use --max-tokens "
                         f"{limit - used} or less")


def run(args) -> int:
    """Run a parsed command; returns the exit code (2 when any image failed)."""
    import mmkit
    from .data import load_image

    if args.batch_size < 1:
        raise InputError(f"--batch-size {args.batch_size} must be at least 1")
    paths = expand(args.images)
    task = {"caption": "caption", "answer": "answer", "zero-shot": "zero_shot", "attention": "attention_maps"}
    m = mmkit.load_model(args.model, device=args.device, attention=args.command == "attention")
    from .models import require

    require(m, task[args.command])
    if args.command == "caption":
        _check_length(m, args.max_tokens, args.prompt)
    _WRITTEN.clear()
    failed = 0
    bar = _progress(len(paths), args.command)
    try:
        for i in range(0, len(paths), args.batch_size):
            batch = paths[i:i + args.batch_size]
            loaded: dict[int, object] = {}
            errors: dict[int, str] = {}
            for j, p in enumerate(batch):
                try:
                    loaded[j] = load_image(p)
                except InputError as e:  # one bad file does not stop the others
                    errors[j] = str(e)
            items = [(batch[j], im) for j, im in loaded.items()] if args.command == "attention" else list(loaded.values())
            results = dict(zip(loaded, _run_batch(args, m, items))) if loaded else {}
            for j, p in enumerate(batch):  # print in input order
                if j in errors:
                    failed += 1
                    bar.write(f"mmkit: skipped {p}: {errors[j]}", file=sys.stderr)
                    if args.json:
                        print(json.dumps({"image": str(p), "error": errors[j]}, ensure_ascii=False), flush=True)
                else:
                    _emit(args, p, *results[j])
            bar.update(len(batch))
    finally:
        bar.close()
    if failed:
        print(f"mmkit: {failed} of {len(paths)} images could not be read", file=sys.stderr)
    return 2 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of `mmkit` and `python -m mmkit`; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except InputError as e:
        print(f"mmkit: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mmkit: interrupted", file=sys.stderr)
        return 130
