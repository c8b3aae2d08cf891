"""The command line: `mmkit caption|answer|zero-shot|attention IMAGE... [--model NAME] [--json]`.

Images are files or folders (a folder means the image files directly inside it, sorted by name).
One line (or one JSON object with --json) per image goes to stdout; a progress bar and messages go
to stderr. Exit codes: 0 all fine (also when the reader of stdout stops early, as `head` does), 2 bad
input (an unknown model, an option out of range, no path given that exists: one line), or some images
missing or unreadable (one line each, and an error record with --json; the others are done), 1 an
unexpected error (one line too), 130 interrupted. Sub-folders (without --recursive) and hidden pictures
that folders held are named in one line at the end (cli_input.LeftOut).

Output never breaks a reader (mmkit/cli_output.py): one text line per image whatever a file name holds,
any terminal encoding, and --json always valid UTF-8 JSON Lines (`json_record`). An out-of-domain
notice (`mmkit.OutOfDomainWarning`, e.g. a bundled ShapesWorld model given a photo) is printed on
stderr once per distinct message, when it first comes; the JSON records of the images it concerns get a
"notice" field (a string: several notices one per line, cli_output.notice_text), and in text output a line at the end names
them (`concerned`).

Adding a command: write its `batch` function and register a `Command` in COMMANDS; `process` is the one
place where the per-file work of a command is chosen.
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .annotations.files import IMAGE_SUFFIXES
from .cli_input import LeftOut, animated_gif, expand, passed_over, read_image, reason
from .cli_output import Parser, encoding_of, json_record, say, show_path, some_names, text_line, write
from .data.video import is_video_path
from .errors import InputError

Record = tuple[list[str], dict]  # (text-mode fields, JSON fields) of one image


# -- the commands ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Command:
    """One sub-command: its options, its default model, and its work on one batch of images."""

    help: str
    model: str  # default model (a family name: pretrained when the hub is reachable, else bundled)
    task: str  # what the model must be able to do (mmkit.models.require)
    arguments: Callable  # (sub-parser) -> None: adds the command's own options
    batch: Callable  # (args, m, [(path, image)]) -> [Record], one per image, in order
    one_by_one: bool = False  # True: one image per batch (e.g. the command writes a file per image)
    attention: bool = False  # load the model with attention outputs
    check: Callable | None = None  # (args, m) -> None: InputError before any image is read
    early: Callable | None = None  # (args) -> None: InputError before the model is loaded
    noun: str = "result"  # what it returns, for out-of-domain notices ("caption", "answer", ...)


def _caption_args(p) -> None:
    p.add_argument("--beams", type=_number("num_beams", "--beams"), default=1,
                   help="beam search width (default 1: greedy)")
    p.add_argument("--sample", action="store_true", help="sample instead of greedy/beam decoding")
    p.add_argument("--temperature", type=_number("temperature", "--temperature"), default=1.0,
                   help="sampling temperature (with --sample)")
    p.add_argument("--top-p", type=_number("top_p", "--top-p"), default=0.9,
                   help="nucleus sampling threshold (with --sample)")
    p.add_argument("--seed", type=_number("seed", "--seed"), default=None,
                   help="seed for --sample, so runs repeat (default: unseeded)")
    p.add_argument("--max-tokens", type=_number("max_new_tokens", "--max-tokens"), default=30,
                   help="longest caption in tokens (default 30)")
    p.add_argument("--prompt", default=None, help="text the caption must start with")


def _caption(args, m, items) -> list[Record]:
    import mmkit

    kw = dict(max_new_tokens=args.max_tokens, num_beams=args.beams, do_sample=args.sample)
    if args.sample:
        kw.update(temperature=args.temperature, top_p=args.top_p, seed=args.seed)
    return [([c], {"caption": c}) for c in mmkit.caption(m, [im for _, im in items], prompt=args.prompt, **kw)]


def _check_caption(args, m) -> None:
    """InputError on a bad --prompt, or when --max-tokens (plus the prompt) would run past the model's positions."""
    from .families import adapter
    from .options import check_option

    args.prompt = check_option("prompt", args.prompt, label="--prompt") if args.prompt and args.prompt.strip() else None
    cfg = getattr(m.model.config, "text_config", m.model.config)
    limit = getattr(cfg, "max_position_embeddings", None)
    if not isinstance(limit, int) or not adapter(m).decoder_limits_new_tokens:
        return
    used = len(m.processor.tokenizer(args.prompt)["input_ids"]) - 1 if args.prompt else 1  # generate drops [SEP]
    if args.max_tokens > limit - used:
        raise InputError(f"--max-tokens {args.max_tokens} is more than {m.spec.name} can write ({limit} positions, "
                         f"{used} taken by the start{' and the prompt' if args.prompt else ''}); use --max-tokens "
                         f"{limit - used} or less")


def _answer_args(p) -> None:
    p.add_argument("-q", "--question", required=True, help="the question, e.g. 'what color is the circle?'")


def _check_answer(args) -> None:
    if not args.question.strip():
        raise InputError("-q/--question is empty; ask a question, e.g. -q 'what color is the circle?'")


def _answer(args, m, items) -> list[Record]:
    import mmkit

    answers = mmkit.answer(m, [im for _, im in items], args.question)  # one question for every image
    return [([a], {"question": args.question, "answer": a}) for a in answers]


def _zero_shot_args(p) -> None:
    p.add_argument("-l", "--labels", required=True, action="append",
                   help="comma-separated class names, e.g. 'cat,dog,bird' (or -l once per name)")
    p.add_argument("-t", "--template", action="append", default=None,
                   help="prompt template with {} (repeat to ensemble; default: the model's own)")


def _check_zero_shot(args) -> None:
    from .options import check_option

    given = ",".join(args.labels)  # -l 'cat,dog' or -l cat -l dog
    args.label_list = list(dict.fromkeys(x.strip() for x in given.split(",") if x.strip()))
    if len(args.label_list) < 2:
        raise InputError(f"--labels {given!r}: give at least two different class names, comma-separated or one "
                         "per -l, e.g. 'cat,dog'")
    args.template = check_option("templates", args.template, label="--template")


def _zero_shot(args, m, items) -> list[Record]:
    import mmkit

    out = []
    for probs in mmkit.zero_shot(m, [im for _, im in items], args.label_list, templates=args.template):
        best = max(probs, key=probs.get)
        out.append(([best, f"{probs[best]:.3f}"], {"label": best, "probs": probs}))
    return out


def _attention_args(p) -> None:
    p.add_argument("--text", default=None,
                   help="the text whose words are mapped (a prompt, question or caption); captioning models "
                        "caption the image when it is left out")
    p.add_argument("--out", default="attention", help="folder for the PNG files (default: ./attention)")
    p.add_argument("--method", default=None, help="map method: attention, rollout, relevance, gradcam, ... (default: "
                   "raw attention, or relevance where raw attention ignores the text, as CLIP's does)")


def _check_attention(args, m) -> None:
    args.written = set()  # PNGs written by this run: two inputs with the same name keep both
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {show_path(args.out)!r} is a file; --out is the folder the PNGs go in (one per "
                         "image): pass a folder")
    if not out.exists() and out.suffix.lower() in IMAGE_SUFFIXES:
        raise InputError(f"--out {show_path(args.out)!r} reads as a file name; --out is the folder the PNGs go in "
                         f"(one per image, named after it), e.g. --out {show_path(out.with_suffix(''))!r}")


def _out_folder(args) -> Path:
    """--out, made on the first PNG (a run that fails before it leaves no empty folder behind)."""
    try:
        Path(args.out).mkdir(parents=True, exist_ok=True)
    except (OSError, ValueError) as e:
        raise InputError(f"--out {show_path(args.out)!r} cannot be made a folder ({reason(e)}); "
                         "pass a folder you can write to") from None
    return Path(args.out)


def _attention(args, m, items) -> list[Record]:
    import mmkit

    out = []
    for path, image in items:
        maps = mmkit.attention_maps(m, image, text=args.text)
        if args.method is not None and args.method not in maps.methods:
            raise InputError(f"--method {args.method!r} is not available for {m.spec.name}; "
                             f"choose one of {maps.methods}")
        folder = _out_folder(args)
        target, k = folder / f"{path.stem}.png", 1
        while str(target).casefold() in args.written:  # 'A.png' and 'a.png' are one file on macOS and Windows
            target, k = folder / f"{path.stem}-{k}.png", k + 1
        args.written.add(str(target).casefold())
        try:
            mmkit.viz.caption_strip(maps, method=args.method).savefig(target, dpi=90)
        except OSError as e:
            raise InputError(f"cannot write {show_path(target)!r} ({reason(e)}); pass another --out") from None
        out.append(([show_path(target), maps.text], {"png": show_path(target), "text": maps.text, "words": maps.words}))
    return out


COMMANDS: dict[str, Command] = {
    "caption": Command("Caption each image.", "blip-caption", "caption", _caption_args, _caption,
                       check=_check_caption, noun="caption"),
    "answer": Command("Answer a question about each image.", "blip-vqa", "answer", _answer_args, _answer,
                      early=_check_answer, noun="answer"),
    "zero-shot": Command("Classify each image among labels with CLIP-style zero-shot classification.", "clip",
                         "zero_shot", _zero_shot_args, _zero_shot, early=_check_zero_shot, noun="zero-shot result"),
    "attention": Command("Write a PNG of the per-word attention maps of each image.", "blip-caption",
                         "attention_maps", _attention_args, _attention, one_by_one=True, attention=True,
                         check=_check_attention, noun="attention map"),
}
ROUTED = {  # commands that other modules parse (mmkit/video/cli.py, mmkit/jobs/cli.py); listed in the help
    "search-video": "Find the moments of a video that match a text (see `mmkit search-video --help`).",
    "embed": "Embed a whole collection of images into a results file, resumable (see `mmkit embed --help`).",
    "index": "Build a search index from the embeddings of `mmkit embed`.",
    "search": "Search an index with a text or an image.",
}
ALL_COMMANDS = [*COMMANDS, *ROUTED]
_COLLECTION = ("A whole collection into one results file, resumable: mmkit {name} DIR --recursive --out FILE "
               "(.parquet, .jsonl or .csv) [--resume] [--engine ray]; `mmkit {name} DIR --out FILE --help` lists "
               "those options.")
_VIDEOS = (" Videos: mmkit caption CLIP.mp4 [--every SECONDS] [--max-frames N], timed segments (see `mmkit caption "
           "CLIP.mp4 --help`).")


def _more(name: str) -> str:
    """The end of a command's --help: the ways of running it that other parsers take (collections, videos)."""
    return "" if name == "attention" else _COLLECTION.format(name=name) + (_VIDEOS if name == "caption" else "")


# -- parsing ---------------------------------------------------------------------------------------------
class _Parser(Parser):
    """argparse with its errors as one line on stderr (exit 2), naming mmkit's commands."""

    commands = tuple(ALL_COMMANDS)


def _number(name: str, flag: str):
    """An argparse type: the text parsed as a number, then checked by mmkit.options (type, range, finite)."""
    from .options import OPTIONS, check_option

    def parse(text: str):
        value = text
        for convert in ((int, float) if OPTIONS[name].kind == "int" else (float,)):
            try:
                value = convert(text)
                break
            except ValueError:
                pass
        try:
            return check_option(name, value, label=flag)
        except InputError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    parse.__name__ = OPTIONS[name].kind  # argparse names the type in some messages
    return parse


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `mmkit` (one sub-command per entry of COMMANDS)."""
    parser = _Parser(prog="mmkit", description="Run mmkit models on images from the command line.",
                     epilog="Whole collections: mmkit caption|answer|zero-shot|embed DIR --recursive --out FILE "
                            "[--resume], then mmkit index and mmkit search. Videos: mmkit caption CLIP.mp4, "
                            "mmkit search-video CLIP TEXT. Each command has its own --help.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{" + ",".join(ALL_COMMANDS) + "}",
                                parser_class=_Parser)
    for name, cmd in COMMANDS.items():
        p = sub.add_parser(name, help=cmd.help, description=cmd.help, epilog=_more(name))
        p.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders of images")
        p.add_argument("--recursive", "-r", action="store_true", help="also read the images in sub-folders")
        p.add_argument("--model", default=cmd.model,
                       help=f"model name, family, directory or hub id (default: {cmd.model}; "
                            "see `python -c 'import mmkit; print(mmkit.list_models())'`)")
        p.add_argument("--json", action="store_true", help="one JSON object per image instead of a text line")
        p.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best available)")
        p.add_argument("--batch-size", type=_number("batch_size", "--batch-size"), default=8,
                       help="images per forward pass (default: 8)")
        cmd.arguments(p)
    for name, text in ROUTED.items():  # parsed by their own modules (main routes them there first)
        sub.add_parser(name, help=text, add_help=False)
    return parser


# -- running ---------------------------------------------------------------------------------------------
def _progress(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="image", file=sys.stderr, leave=False)


def process(cmd: Command, args, m, items: list) -> list[tuple[Record, list[str]]]:
    """Run the command on one batch of (path, image): each image's record and its out-of-domain notices.

    A notice about the words (the question, the labels) concerns every image; a notice about the pictures
    concerns the ones the detector flags (mmkit.domain.notices_per_image).
    """
    from .domain import notices_per_image

    records, notices = notices_per_image(m, [item[1] for item in items], cmd.noun, lambda: cmd.batch(args, m, items))
    return list(zip(records, notices))


def run(args) -> int:
    """Run a parsed command; returns the exit code (2 when any image failed)."""
    import mmkit
    from .models import require

    cmd = COMMANDS[args.command]
    other: list[Path] = []
    left = LeftOut()  # sub-folders (without --recursive) and hidden pictures: named at the end
    paths = expand(args.images, other, args.recursive, left)
    if cmd.early is not None:
        cmd.early(args)
    m = mmkit.load_model(args.model, device=args.device, attention=cmd.attention)
    require(m, cmd.task)
    if cmd.check is not None:
        cmd.check(args, m)
    ascii_only = encoding_of(sys.stdout) != "utf-8"  # then \\u escapes keep the JSON valid in any encoding
    failed, told = 0, {}  # told: each distinct notice -> the images it concerns, in input order
    step = 1 if cmd.one_by_one else args.batch_size
    bar = _progress(len(paths), args.command)
    try:
        for i in range(0, len(paths), step):
            batch = paths[i:i + step]
            loaded: dict[int, object] = {}
            errors: dict[int, str] = {}
            for j, p in enumerate(batch):
                try:
                    loaded[j] = read_image(p)
                except InputError as e:  # one bad file does not stop the others
                    errors[j] = " ".join(str(e).split())
            done = process(cmd, args, m, [(batch[j], im) for j, im in loaded.items()]) if loaded else []
            results = dict(zip(loaded, done))
            for j, p in enumerate(batch):  # print in input order
                if j in errors:
                    failed += 1
                    bar.clear()
                    say(f"mmkit: skipped {show_path(p)}: {errors[j]}")
                    if args.json:
                        write(sys.stdout, json_record(p, {"error": errors[j]}, [], ascii_only))
                    continue
                (fields, record), notices = results[j]
                for n in notices:
                    if n not in told:  # each distinct notice once on stderr
                        told[n] = []
                        bar.clear()
                        say(f"mmkit: note: {n}")
                    told[n].append(p)
                write(sys.stdout, json_record(p, record, notices, ascii_only) if args.json else text_line(p, fields))
            bar.update(len(batch))
    finally:
        bar.close()
    for line in concerned(told, len(paths) - failed):
        say(line)
    moving = [p for p in paths if animated_gif(p)]
    if moving:  # alone (or with videos) a GIF is captioned as a video: say why these were not
        say(f"mmkit: note: {len(moving)} animated GIF{'s' * (len(moving) > 1)} ({some_names(moving)}) "
            f"{'were' if len(moving) > 1 else 'was'} read as a picture, by the first frame, since pictures came with "
            f"{'them' if len(moving) > 1 else 'it'}; pass a GIF alone to caption it as a video, frame by frame")
    clips = [p for p in other if is_video_path(p)]
    if clips:
        say(f"mmkit: {len(clips)} video{'s' * (len(clips) > 1)} in the folders passed over ({some_names(clips)}); "
            "videos are captioned in a command of their own, by name: mmkit caption "
            + " ".join(shlex.quote(show_path(p)) for p in clips[:2]) + (" ..." if len(clips) > 2 else ""))
    other = [p for p in other if not is_video_path(p)]
    if other:
        say(f"mmkit: {passed_over(other)}")
    unread = left.line()  # sub-folders without --recursive, hidden pictures
    if unread is not None:
        say(f"mmkit: {unread}")
    if failed:
        say(f"mmkit: {failed} of {len(paths)} images could not be read")
    return 2 if failed else 0


ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")


def ordinal(n: int) -> str:
    """The n-th (from 1) in words while ORDINALS last, then in figures: 'first', ..., 'tenth', '11th', '21st'."""
    if n <= len(ORDINALS):
        return ORDINALS[n - 1]
    return f"{n}{'th' if n % 100 in (11, 12, 13) else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def concerned(told: dict, n: int, shown: int = 5) -> list[str]:
    """After the run, which images each printed note concerns: in text output nothing else says so.

    told maps each distinct notice (printed once, when it first came) to the images it concerns. One line per
    notice when more than one image was read; the first `shown` names, then a count.
    """
    if n <= 1:
        return []  # one image: the note can only be about it
    lines = []
    for k, paths in enumerate(told.values()):
        label = "the note" if len(told) == 1 else f"the {ordinal(k + 1)} note"  # "the first note", "the 11th note"
        if len(paths) == n:
            lines.append(f"mmkit: {label} concerns all {n} images read")
            continue
        lines.append(f"mmkit: {label} concerns {len(paths)} of {n} images read: {some_names(paths, shown)} "
                     "(--json gives each image its notice)")
    return lines


def _stdout_gone() -> None:
    """After a broken pipe: point stdout at /dev/null so Python's exit-time flush does not complain."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (tests capture stdout)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `mmkit` and `python -m mmkit`; returns the exit code."""
    from .jobs import cli as jobs_cli
    from .video.cli import handles, main as video_main

    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if handles(argv):  # `caption` given video files, `search-video`: mmkit/video/cli.py
            return video_main(argv)
        if jobs_cli.handles(argv):  # `embed`, `index`, `search`, or a task with --out: mmkit/jobs/cli.py
            return jobs_cli.main(argv)
        args = build_parser().parse_args(argv)
        return run(args)
    except SystemExit as e:  # argparse: --help (0) or a bad argument (2, already reported)
        return e.code if isinstance(e.code, int) else 2
    except BrokenPipeError:  # the reader stopped early (`mmkit ... | head`): not an error
        _stdout_gone()
        return 0
    except InputError as e:
        say(f"mmkit: error: {' '.join(str(e).split())}")
        return 2
    except KeyboardInterrupt:
        say("mmkit: interrupted")
        return 130
    except Exception as e:  # never a traceback: one line naming the error
        say(f"mmkit: error: {type(e).__name__}: {' '.join(str(e).split()) or 'no details'} "
            "(unexpected; please report it with the command that caused it)")
        return 1
