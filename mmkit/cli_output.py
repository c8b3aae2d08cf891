"""How the command line writes: lines that never break their reader, in any encoding.

A text line is one line whatever a file name or a caption holds (control characters are escaped as \\n,
\\t, \\x1c, ...; bytes that are not UTF-8 as \\xff); characters the stream's encoding lacks are escaped;
a JSON record is valid UTF-8 (pure ASCII when stdout is not UTF-8) and never holds a raw line separator.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import re
import sys
from pathlib import Path

_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7f, *range(0x80, 0xa0)]}
_CONTROL.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t", 0x2028: "\\u2028", 0x2029: "\\u2029"})


def show_path(path) -> str:
    """A path as text for people: bytes that are not UTF-8 (surrogate-escaped by Python) become \\xff."""
    s = os.fspath(path)
    try:
        return os.fsencode(s).decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that is not an escaped byte
        return s.encode("utf-8", "backslashreplace").decode("utf-8")


def some_names(paths, shown: int = 5) -> str:
    """'a.png, b.png, c.png, d.png, e.png and 7 more': the first file names, then a count (never 'and 1 more')."""
    cut = shown if len(paths) > shown + 1 else len(paths)
    more = f" and {len(paths) - cut} more" if len(paths) > cut else ""
    return ", ".join(show_path(Path(p).name) for p in paths[:cut]) + more


def one_line(text: str) -> str:
    """text with every character that could end or split a line (\\n, \\r, \\t, \\x1c, \\u2028...) escaped."""
    return str(text).translate(_CONTROL)


def utf8(text: str) -> str:
    """text that encodes to UTF-8: lone surrogates (undecodable bytes of names) become U+FFFD."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        try:
            raw = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raw = text.encode("utf-8", "surrogatepass")
        return raw.decode("utf-8", "replace")


def _clean(x):
    if isinstance(x, str):
        return utf8(x)
    if isinstance(x, dict):
        return {utf8(str(k)): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def path_b64(path) -> str | None:
    """The exact bytes of a path whose name is not valid UTF-8, in base64; None when its text is exact."""
    raw = os.fsencode(path) if _encodable(path) else None
    if raw is not None and raw.decode("utf-8", "replace") != os.fspath(path):
        return base64.b64encode(raw).decode("ascii")
    return None


def json_record(path: Path, fields: dict, notices: list[str], ascii_only: bool = False) -> str:
    """One JSON Lines record: always valid UTF-8 (and pure ASCII with ascii_only), never more than one line.

    "image" is the path as text (bytes that are not UTF-8 shown as \\xff); when the name is not valid UTF-8,
    "image_b64" holds its exact bytes in base64. "notice" is there only when the image raised one or more, one per
    line (notice_text).
    """
    rec = {"image": show_path(path)}
    exact = path_b64(path)
    if exact is not None:
        rec["image_b64"] = exact
    rec.update(fields)
    if notices:
        rec["notice"] = notice_text(notices)
    return json_line(rec, ascii_only)


def json_line(record: dict, ascii_only: bool = False) -> str:
    """Any record as one JSON line that is valid UTF-8: lone surrogates become U+FFFD, and no character
    that str.splitlines() splits at (newline, CR, NEL, U+2028, U+2029, ...) is left unescaped."""
    line = json.dumps(_clean(record), ensure_ascii=ascii_only)  # escapes \n, \r and every character below 0x20
    return line.replace("\x85", "\\u0085").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _encodable(path) -> bool:
    try:
        os.fsencode(path)
        return True
    except UnicodeEncodeError:
        return False


def text_line(path: Path, fields: list[str]) -> str:
    """One tab-separated text line: the path, then the fields, each escaped onto one line."""
    return "\t".join(one_line(f) for f in [show_path(path), *fields])


def encoding_of(stream) -> str:
    import codecs

    try:
        return codecs.lookup(getattr(stream, "encoding", None) or "utf-8").name
    except LookupError:
        return "utf-8"


def write(stream, line: str) -> None:
    """Write one line, escaping what the stream's encoding cannot hold (PYTHONIOENCODING=ascii, a C locale)."""
    enc = encoding_of(stream)
    stream.write(line.encode(enc, "backslashreplace").decode(enc) + "\n")
    stream.flush()


def say(message: str) -> None:
    """One line on stderr."""
    write(sys.stderr, one_line(message))


class Parser(argparse.ArgumentParser):
    """argparse with its errors as one line on stderr (exit 2) instead of the usage block; `commands` (set by a
    subclass) are named when the command itself is unknown or missing."""

    commands: tuple[str, ...] = ()

    def error(self, message: str):
        message = re.sub(r"^argument (\S+): (?=\1[= ])", "", message)  # "argument --beams: --beams=2.5 ..."
        wrong = re.match(r"argument \{.*\}: invalid choice: '([^']*)'", message)
        if wrong and self.commands:  # an unknown command: name them all, and the nearest
            import difflib

            near = difflib.get_close_matches(wrong.group(1), self.commands, n=1)
            message = (f"{wrong.group(1)!r} is not a command" + (f" (did you mean {near[0]!r}?)" if near else "")
                       + f"; the commands are {', '.join(self.commands)}")
        elif message.startswith("the following arguments are required: {") and self.commands:
            message = f"name a command: {', '.join(self.commands)}"
        say(f"mmkit: error: {message} (see `{self.prog} --help`)")
        raise SystemExit(2)


NOTICE_SEP = "\n"  # between the out-of-domain notices of one record's "notice" (each is one line of text)


def notice_text(notices: list[str]) -> str | None:
    """A record's "notice": its notices one per line (a script splits them at NOTICE_SEP), a notice's own line
    breaks, if any, made spaces; None with none. The image and video CLIs' --json and the jobs' columns use it."""
    return NOTICE_SEP.join(" ".join(n.splitlines()) for n in notices) or None
