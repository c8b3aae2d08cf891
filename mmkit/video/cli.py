"""The video commands of `mmkit`: `mmkit caption clip.mp4` (timed segments) and `mmkit search-video clip.mp4 TEXT`.

`mmkit caption` with video files (by suffix: .mp4, .webm, .mkv, .mov, ...) comes here instead of the image
command; a GIF that moves counts as a video when it comes alone or with videos, and as a picture among pictures.
Text output is one line per segment or moment (`start-end  caption`); `--json` is JSON Lines, one object per
segment or moment, with the video's name; notices (out of domain, a file cut short: Python warnings too) go
to stderr as `mmkit: note: ...` and into "notice".
Exit codes: 0 fine, 2 bad input (one line saying why and how to fix it), 130 interrupted.
"""
from __future__ import annotations

import argparse
import sys
import warnings

from ..cli_output import Parser, json_line, notice_text, show_path, text_line
from ..data.video import VIDEO_SUFFIXES, is_video_path
from ..errors import InputError


def handles(argv: list[str]) -> bool:
    """True when these arguments are a video command: `search-video ...`, or `caption` given video files."""
    if not argv:
        return False
    if argv[0] == "search-video":
        return True
    if argv[0] != "caption":
        return False
    import os

    from ..annotations import IMAGE_SUFFIXES
    from ..cli_input import animated_gif

    words = [a for a in argv[1:] if not a.startswith("-")]
    still = [a for a in words if a.lower().endswith(".gif") and os.path.isfile(a) and not animated_gif(a)]
    clips = [a for a in words if is_video_path(a) and a not in still]  # a GIF that does not move is a picture
    pictures = [a for a in words if os.path.isdir(a) or (os.path.splitext(a)[1].lower() in IMAGE_SUFFIXES
                                                         and not is_video_path(a))] + still
    # a GIF is a clip alone or among clips, and a picture among pictures (as in a folder, which lists GIFs)
    return any(not a.lower().endswith(".gif") for a in clips) or bool(clips) and not pictures


def build_parser() -> argparse.ArgumentParser:
    """The parser of the two video commands."""
    parser = Parser(prog="mmkit", description="Run mmkit models on videos.")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p, model: str) -> None:
        p.add_argument("--model", default=model, help=f"model name, family, directory or hub id (default: {model})")
        p.add_argument("--every", type=float, default=1.0, help="seconds between sampled frames (default 1.0)")
        p.add_argument("--max-frames", type=int, default=None, help="stop after this many sampled frames")
        p.add_argument("--json", action="store_true", help="JSON Lines: one object per segment or moment")
        p.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best available)")

    c = sub.add_parser("caption", help="Caption sampled frames of videos into timed segments.")
    c.add_argument("videos", nargs="+", metavar="VIDEO", help=f"video files ({', '.join(sorted(VIDEO_SUFFIXES))})")
    common(c, "blip-caption")
    c.add_argument("--max-tokens", type=int, default=30, help="longest caption in tokens (default 30)")
    s = sub.add_parser("search-video", help="Find the moments of a video that match a text.")
    s.add_argument("video", metavar="VIDEO", help="a video file")
    s.add_argument("text", metavar="TEXT", help="what to find, e.g. 'a red circle'")
    common(s, "clip")
    s.add_argument("-k", type=int, default=3, help="how many moments (default 3)")
    s.add_argument("--threshold", type=float, default=None,
                   help="score a frame needs to count (default: halfway between the clip's lowest and highest)")
    s.add_argument("--regions", choices=["halves", "frame"], default="halves",
                   help="score the frame and its four halves (default) or the whole frame only")
    return parser


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _emit(args, record: dict, fields: list[str], notices: list[str]) -> None:
    """One segment or moment: a JSON line (valid UTF-8 whatever the file name) or a tab-separated text line."""
    if args.json:
        if notices:
            record["notice"] = notice_text(notices)
        print(json_line(record), flush=True)
    else:
        print(text_line(record["video"], fields), flush=True)


def check_args(args) -> None:
    """The number options checked before the model loads: InputError naming the flag and what it takes."""
    from ..options import check_option

    if args.every is not None and not args.every > 0:
        raise InputError(f"--every {args.every} must be a number of seconds > 0")
    if args.max_frames is not None and args.max_frames < 1:
        raise InputError(f"--max-frames {args.max_frames} must be a whole number >= 1 (leave it out for no limit)")
    if args.command == "caption":
        check_option("max_new_tokens", args.max_tokens, label="--max-tokens")
    else:
        check_option("k", args.k, label="-k")


def no_moment(res, args) -> str:
    """The note for a search whose threshold no frame reached: the best score seen, and what to change."""
    import numpy as np

    best = int(np.argmax(res.scores))
    return (f"no frame reached --threshold {args.threshold:g}: the best score was {res.scores[best]:.3f} (at "
            f"{res.times[best]:.2f} s); lower --threshold, or leave it out for halfway between the clip's lowest "
            "and highest score")


def caught_notes(caught: list, notices: list[str]) -> list[str]:
    """The notices followed by the messages of the Python warnings caught, each message once."""
    out = list(notices)
    for w in caught:
        if str(w.message) not in out:
            out.append(str(w.message))
    return out


def _show_note(message, category, filename, lineno, file=None, line=None) -> None:
    """warnings.showwarning for the command line: `mmkit: note: ...`, not a source line and a class name."""
    _say(f"mmkit: note: {' '.join(str(message).split())}")


def run(args) -> int:
    """Run a parsed video command; 0 when every video worked, 2 when one could not be read."""
    import mmkit
    from ..notices import capture_notices

    check_args(args)
    videos = args.videos if args.command == "caption" else [args.video]
    other = [p for p in videos if not is_video_path(p)]
    if other:  # before any work: a command that captions the videos, then stops at a picture, loses its turn
        names = ", ".join(f"'{show_path(p)}'" for p in other[:3]) + (", ..." if len(other) > 3 else "")
        raise InputError(f"{names} {'is not a video file name' if len(other) == 1 else 'are not video file names'} "
                         f"({', '.join(sorted(VIDEO_SUFFIXES))}); caption images and videos in separate commands "
                         "(`mmkit caption IMAGES_OR_FOLDERS`, then `mmkit caption VIDEOS`)")
    m = mmkit.load_model(args.model, device=args.device)
    failed = 0
    for path in videos:
        try:
            with capture_notices() as notices, warnings.catch_warnings(record=True) as caught:
                if args.command == "caption":
                    res = mmkit.caption_video(m, path, every=args.every, max_frames=args.max_frames,
                                              max_new_tokens=args.max_tokens)
                    rows = [({"video": show_path(path), "start": s.start, "end": s.end, "caption": s.caption},
                             [f"{s.start:.2f}-{s.end:.2f}", s.caption]) for s in res.segments]
                else:
                    res = mmkit.search_video(m, path, args.text, k=args.k, every=args.every,
                                             threshold=args.threshold, regions=args.regions,
                                             max_frames=args.max_frames)
                    rows = [({"video": show_path(path), "text": args.text, "start": mo.start, "end": mo.end,
                              "score": mo.score}, [f"{mo.start:.2f}-{mo.end:.2f}", f"{mo.score:.3f}"])
                            for mo in res.moments]
                    if not res.moments and args.threshold is not None:
                        notices.append(no_moment(res, args))
            notices = caught_notes(caught, notices)
        except InputError as e:  # one bad video does not stop the others
            failed += 1
            _say(f"mmkit: skipped {show_path(path)}: {' '.join(str(e).split())}")
            if args.json:
                print(json_line({"video": show_path(path), "error": str(e)}), flush=True)
            continue
        for note in notices:
            _say(f"mmkit: note: {note}")  # as the image commands say it
        for record, text in rows:
            _emit(args, record, text, notices)
    return 2 if failed else 0


def main(argv: list[str]) -> int:
    """Entry point for the video commands (mmkit.cli.main hands them over); returns the exit code."""
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_note  # warnings outside a video's work (loading the model, say)
            return run(build_parser().parse_args(argv))
    except SystemExit as e:  # argparse: --help (0) or a bad argument (2, already reported)
        return e.code if isinstance(e.code, int) else 2
    except InputError as e:
        _say(f"mmkit: error: {' '.join(str(e).split())}")
        return 2
    except KeyboardInterrupt:
        _say("mmkit: interrupted")
        return 130
