"""A user's CSV of training rows: its text (UTF-8, or a picture passed by mistake), its separator, its rows with the
line each starts on, its header, and what is wrong with a row that cannot be read as the header says."""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from ..errors import InputError

SEPARATORS = (",", ";", "\t", "|")  # a CSV's column separators: ',' and what spreadsheets also write
ACCEPTED = ("a folder with captions.csv (columns image, caption), qa.csv (image, question, answer) or captions.json, "
            "such a CSV itself, a COCO caption JSON file (AnnotationPanel's), a list of (image, text) or (image, "
            "question, answer) tuples, or a datasets.Dataset")


def delimiter(text: str, need) -> str:
    """The separator whose header line names the needed columns: ',' or what spreadsheets also write (';' where
    the decimal mark is a comma, a tab, '|'); ',' when none does, so the error names the columns found."""
    first = text.split("\n", 1)[0].rstrip("\r")
    for sep in SEPARATORS:
        header = [h.strip().lower() for h in next(csv.reader([first], delimiter=sep), [])]
        if all(c in header for c in need):
            return sep
    return ","


def _is_picture(path: Path, data: bytes | None = None) -> bool:
    """Whether a data path is a picture: by its suffix, or (data given) by its bytes, which PIL recognises."""
    from PIL import Image

    if path.suffix.lower() in Image.registered_extensions():
        return True
    try:
        with Image.open(io.BytesIO(data)):
            return True
    except Exception:  # not a picture, or no bytes given
        return False


def _picture_error(path: Path) -> InputError:
    """The error for a picture passed where the training data goes."""
    return InputError(f"{str(path)!r} is a picture, not training data; pass {ACCEPTED} (to train on this picture, "
                      "write its file name and caption in captions.csv)")


def csv_text(path: Path) -> str:
    """The text of a CSV file; InputError for a picture, a file that is not UTF-8 or cannot be read."""
    if _is_picture(path):
        raise _picture_error(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputError(f"{str(path)!r} could not be read as CSV ({e})") from None
    utf16 = data[:2] in (b"\xff\xfe", b"\xfe\xff")  # Excel's "Unicode text" and some exports: UTF-16 with a BOM
    head = data[:400]
    if not utf16 and head.count(0) > len(head) // 3:  # ASCII in UTF-16 is valid UTF-8, one NUL a letter
        raise InputError(f"{str(path)!r} is not UTF-8 text (it looks like UTF-16 text without its byte-order mark); "
                         "save the CSV as UTF-8 (in Excel: Save As, 'CSV UTF-8')")
    try:
        return io.TextIOWrapper(io.BytesIO(data), encoding="utf-16" if utf16 else "utf-8-sig", newline="").read()
    except UnicodeDecodeError:
        if _is_picture(path, data):
            raise _picture_error(path) from None
        raise InputError(f"{str(path)!r} is not UTF-8 text; save the CSV as UTF-8 (in Excel: Save As, "
                         "'CSV UTF-8')") from None


def declared(text: str) -> tuple[str | None, int]:
    """(the separator Excel's first line 'sep=;' declares, 1) when there is one, else (None, 0)."""
    first = text.split("\n", 1)[0].rstrip("\r").strip().strip('"')
    if first.lower().startswith("sep=") and len(first) == 5:
        return first[4], 1
    return None, 0


def records(text: str, sep: str, path: Path) -> list[tuple[int, list[str]]]:
    """(the line a row starts on, its fields) for each row of a CSV text: a quoted line break stays in its row."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    out, end = [], 0
    try:
        for fields in reader:
            out.append((end + 1, fields))
            end = reader.line_num  # the line the row ended on
    except csv.Error as e:
        raise InputError(f"{str(path)!r} could not be read as CSV (line {end + 1}: {e}); check that each quote "
                         "is closed") from None
    return out


def check_header(path: Path, header: list[str], need) -> None:
    """InputError when a needed column is missing or named twice (the second would hide the first)."""
    missing = [c for c in need if c not in header]
    if missing:
        raise InputError(f"{str(path)!r} has columns {header}, without {missing}; the first line must name the "
                         f"columns {', '.join(need)}")
    twice = [c for c in need if header.count(c) > 1]
    if twice:
        raise InputError(f"{str(path)!r} names the column {twice[0]!r} {header.count(twice[0])} times ({header}); "
                         f"keep one {twice[0]!r} column: another {twice[0]} of the same picture goes on a row of its "
                         "own")


def _swallowed(fields: list[str], header: list[str], sep: str, folder: Path) -> str:
    """A line inside a quoted value that reads as a row of its own (its image an existing file): what a quote never
    closed takes in; '' when there is none."""
    at = header.index("image")
    for line in (ln for f in fields for ln in f.splitlines()[1:]):
        row = next(csv.reader([line], delimiter=sep), [])
        if len(row) > at + 1 and row[at].strip() and os.path.isfile(folder / row[at].strip()):
            return line
    return ""


def row_problem(fields: list[str], header: list[str], sep: str, need, folder: Path) -> str:
    """Why a CSV row cannot be read as its header says ('' when it can): a value the header has no column for
    (an unquoted separator in a text), a quote never closed, or a row separated by another separator than the
    header."""
    inside = _swallowed(fields, header, sep, folder)
    if inside:
        return (f"a quoted value runs on over the next lines and takes in {inside!r}, which reads as a row of its "
                "own; close the quote that opens on this line")
    lost = [f.strip() for i, f in enumerate(fields) if (i >= len(header) or not header[i]) and f.strip()]
    if lost:
        texts = "caption" if "caption" in need else "question or answer"
        others = {",": "; or a tab", ";": "a tab", "\t": ";"}.get(sep, "; or a tab")
        return (f"{len(fields)} fields where the header names {sum(1 for h in header if h)} columns: {lost[0]!r} "
                f"would be lost (a {sep!r} in the {texts}?); quote the {texts}, or use {others} as the separator")
    if all(header.index(c) < len(fields) for c in need):
        return ""
    for other in SEPARATORS:
        split = next(csv.reader([sep.join(fields)], delimiter=other), [])
        if other != sep and all(header.index(c) < len(split) for c in need):
            return (f"this row is separated by {other!r} but the header line by {sep!r}; use one separator in the "
                    "whole file")
    return ""
