"""What an annotation file may hold: bounded JSON reading, the COCO caption checks, and checks on every change.

Hand-edited files are read with limits (nesting depth, integer size, finite numbers) and every problem is an
`AnnotationFileError` that names the place (`annotations[3].tags[0]`). Changes are checked with the same rules
before they are written, so everything the store writes it can read back.
"""
from __future__ import annotations

import json
import math
import numbers

from ..errors import InputError
from .files import check_file_name

MAX_DEPTH = 16  # nesting levels of a whole file (a COCO caption file needs 4; extra fields may nest a little)
MAX_INT = 2 ** 53  # larger integers are not exact in JavaScript or float readers
MAX_FILE_BYTES = 1 << 30  # an annotation file larger than this is refused instead of read
RESERVED = ("id", "image_id", "caption", "tags")  # annotation keys the store sets itself


class AnnotationFileError(InputError):
    """The annotation file is unreadable, not a caption file, or changed on disk; it was not modified."""


class _Bad:
    """Stands in for a number the parser refused, so the check that follows can name its place."""

    def __init__(self, text: str, why: str):
        self.text, self.why = text[:40], why


def _float(s: str):
    v = float(s)
    return v if math.isfinite(v) else _Bad(s, "is not finite")


def loads(raw: bytes, where: str):
    """Parse JSON bytes (UTF-8 with or without a BOM, or UTF-16/32) with bounded numbers and depth.

    Raises AnnotationFileError naming the place (line and column, or the JSON path once parsed).
    """
    encoding = json.detect_encoding(raw)  # UTF-8 (a BOM allowed), or UTF-16/32 as some Windows editors save
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as e:
        raise AnnotationFileError(f"{where} is not {encoding.upper().replace('-SIG', '')} text (a bad byte at "
                                  f"{e.start}), so not an annotation file; save it as UTF-8") from None
    text = text.removeprefix("\ufeff")
    try:
        data = json.loads(text, parse_float=_float,
                          parse_constant=lambda s: _Bad(s, "is not finite (NaN and Infinity are not JSON)"))
    except json.JSONDecodeError as e:
        raise AnnotationFileError(f"{where} is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    except ValueError as e:  # an integer of thousands of digits (int() refuses them: sys.get_int_max_str_digits)
        import re
        import sys

        m = re.search(r"\d{%d,}" % (sys.get_int_max_str_digits() + 1), text)
        line, col = _line_col(text, m.start() if m else 0)
        raise AnnotationFileError(f"{where}: the number at line {line}, column {col} is too long ({e})") from None
    except RecursionError:
        line, col = _too_deep_at(text)
        raise AnnotationFileError(f"{where}: nested more than {MAX_DEPTH} levels deep at line {line}, column {col}"
                                  ) from None
    return data


def _line_col(text: str, pos: int) -> tuple[int, int]:
    return text.count("\n", 0, pos) + 1, pos - (text.rfind("\n", 0, pos) + 1) + 1


def _too_deep_at(text: str) -> tuple[int, int]:
    import re

    depth = 0
    for m in re.finditer(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', text):
        c = m.group()
        depth += 1 if c in "[{" else -1 if c in "]}" else 0
        if depth > MAX_DEPTH:
            return _line_col(text, m.start())
    return 1, 1


def _plain(v) -> bool:
    """True for the leaves that need no closer look (the fast path of check_value)."""
    t = type(v)
    return ((t is str and v.isascii()) or (t is int and -MAX_INT <= v <= MAX_INT) or v is None or t is bool
            or (t is float and math.isfinite(v)))


def check_value(x, where: str, place: str, error=InputError, depth: int = 0) -> None:
    """Raise error naming where/place unless x is JSON the store can write and read back.

    Allowed: dicts with string keys, lists, strings that are valid Unicode, bools, None, integers within
    ±2**53 and finite floats, nested at most MAX_DEPTH levels. Walks with a stack; places are spelled out
    only for the error message.
    """
    stack = [(x, place, depth)]
    while stack:
        v, at, d = stack.pop()
        t = type(v)
        if t is dict or t is list or t is tuple:
            if d > MAX_DEPTH:
                raise error(f"{where}: {_spell(at)} is nested more than {MAX_DEPTH} levels deep")
            for k, c in (v.items() if t is dict else enumerate(v)):
                if t is dict and not (type(k) is str and k.isascii()):
                    if type(k) is not str:
                        raise error(f"{where}: {_spell(at)} has the key {k!r}, which is not a string")
                    _leaf(k, where, (at, k), error)
                if not _plain(c):
                    stack.append((c, (at, k), d + 1))
        else:
            _leaf(v, where, at, error)


def _spell(at) -> str:
    """A place kept as nested (parent, key) pairs, spelled `annotations[3].tags[0]`."""
    keys = []
    while isinstance(at, tuple):
        at, k = at
        keys.append(k)
    out = at or ""
    for k in reversed(keys):
        out += f"[{k}]" if isinstance(k, int) else (f".{k}" if out else k)
    return out or "the top level"


def _leaf(x, where: str, at, error) -> None:
    if x is None or isinstance(x, bool):
        return
    if isinstance(x, str):
        if not x.isascii() and any("\ud800" <= c <= "\udfff" for c in x):
            place = _spell(at)
            try:  # file names may hold bytes that are not UTF-8, surrogate-escaped (os.fsdecode)
                if not (place.endswith("file_name") or place.startswith("mmkit_skipped[")):
                    raise UnicodeError
                x.encode("utf-8", "surrogateescape")
            except UnicodeError:
                raise error(f"{where}: {place} holds a lone surrogate "
                            f"({x.encode('utf-8', 'backslashreplace')[:60]!r}), which is not Unicode text") from None
        return
    if isinstance(x, _Bad):
        raise error(f"{where}: {_spell(at)}: the number {x.text} {x.why}; numbers must be finite and within ±2**53")
    if isinstance(x, int):
        if abs(x) > MAX_INT:
            raise error(f"{where}: {_spell(at)}: the number {str(x)[:40]} is larger than {MAX_INT} (2**53)")
        return
    if isinstance(x, float):
        if not math.isfinite(x):
            raise error(f"{where}: {_spell(at)} is {x}; numbers must be finite")
        return
    raise error(f"{where}: {_spell(at)} is a {type(x).__name__}, which JSON cannot hold "
                "(use str, int, float, bool, list or dict)")


def _is_id(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def validate(data, where: str = "the file") -> None:
    """Raise AnnotationFileError naming the first problem when data is not a COCO caption file mmkit can extend."""
    def bad(problem: str):
        raise AnnotationFileError(f"{where}: {problem}")

    if not isinstance(data, dict):
        bad(f"expected a JSON object with 'images' and 'annotations', found a {type(data).__name__}")
    check_value(data, where, "", AnnotationFileError)
    for key in ("images", "annotations"):
        if not isinstance(data.get(key), list):
            bad(f"'{key}' is missing or not a list")
    ids, names = set(), set()
    for i, im in enumerate(data["images"]):
        if not isinstance(im, dict) or not _is_id(im.get("id")) or not isinstance(im.get("file_name"), str):
            bad(f"images[{i}] needs an integer 'id' and a string 'file_name'")
        if not im["file_name"].isascii() or not im["file_name"] or "\x00" in im["file_name"]:
            try:
                check_file_name(im["file_name"])
            except InputError as e:
                bad(f"images[{i}]: {e}")
        for side in ("width", "height"):
            if side in im and not (_is_id(im[side]) and im[side] >= 0):
                bad(f"images[{i}].{side} must be a whole number of pixels, not {im[side]!r}")
        if im["id"] in ids:
            bad(f"images[{i}]: image id {im['id']} appears twice")
        if im["file_name"] in names:
            bad(f"images[{i}]: file_name {im['file_name']!r} appears twice")
        ids.add(im["id"])
        names.add(im["file_name"])
    ann_ids = set()
    for i, a in enumerate(data["annotations"]):
        if not isinstance(a, dict) or not _is_id(a.get("id")) or not _is_id(a.get("image_id")):
            bad(f"annotations[{i}] needs an integer 'id' and 'image_id'")
        if not isinstance(a.get("caption"), str):
            bad(f"annotations[{i}] has no 'caption' string")
        if a["image_id"] not in ids:
            bad(f"annotations[{i}] refers to image_id {a['image_id']}, which is not in 'images'")
        if a["id"] in ann_ids:
            bad(f"annotations[{i}]: annotation id {a['id']} appears twice")
        if not isinstance(a.get("tags", []), list) or not all(isinstance(t, str) for t in a.get("tags", [])):
            bad(f"annotations[{i}]: 'tags' must be a list of strings")
        ann_ids.add(a["id"])
    skipped = data.get("mmkit_skipped", [])
    if not isinstance(skipped, list) or not all(isinstance(s, str) for s in skipped):
        bad("'mmkit_skipped' must be a list of file names")
    for i, s in enumerate(skipped):
        try:
            check_file_name(s)
        except InputError as e:
            bad(f"mmkit_skipped[{i}]: {e}")
    if not _is_id(data.get("mmkit_journal_seq", 0)) or data.get("mmkit_journal_seq", 0) < 0:
        bad("'mmkit_journal_seq' must be a whole number")


# -- changes -----------------------------------------------------------------------------------------
def tag_list(tags) -> list[str]:
    """Tags as a clean list: a string is split on commas; entries stripped, empty ones dropped, unique, in order."""
    if tags is None:
        return []
    if isinstance(tags, str):
        tags = tags.split(",")
    if isinstance(tags, (bytes, dict)) or not hasattr(tags, "__iter__"):
        raise InputError(f"tags must be a list of strings or one comma-separated string, not {type(tags).__name__}")
    out = []
    for i, t in enumerate(tags):
        if not isinstance(t, str):
            raise InputError(f"tags[{i}] is a {type(t).__name__} ({t!r:.40}); tags must be strings")
        out.append(" ".join(t.split()))
    return list(dict.fromkeys(t for t in out if t))


def _size(v, name: str):
    if v is None:
        return None
    if isinstance(v, numbers.Integral) and not isinstance(v, bool):
        v = int(v)  # numpy integers too
    if not _is_id(v) or not 0 < v <= MAX_INT:
        raise InputError(f"{name} must be a positive whole number of pixels, not {v!r:.40}")
    return v


def accept_op(file_name, caption, tags=(), width=None, height=None, extra=None) -> dict:
    """The journal record of an accept, checked: InputError naming the argument when it could not be read back."""
    check_file_name(file_name)
    if not isinstance(caption, str):
        raise InputError(f"the caption of {file_name!r} must be a string, not {type(caption).__name__}")
    caption = " ".join(caption.split())
    if not caption:
        raise InputError(f"the caption of {file_name!r} is empty; type one, or skip the image")
    check_value(caption, "accept", "caption")
    tags = tag_list(tags)
    check_value(tags, "accept", "tags")
    width, height = _size(width, "width"), _size(height, "height")
    if (width is None) != (height is None):
        raise InputError("give both width and height of the image, or neither")
    if extra is not None and not isinstance(extra, dict):
        raise InputError(f"extra fields must be a dict, not {type(extra).__name__}")
    extra = dict(extra or {})
    taken = [k for k in extra if k in RESERVED]
    if taken:
        raise InputError(f"{taken[0]!r} cannot be passed as an extra field: the store sets {', '.join(RESERVED)} "
                         "itself (give extra fields other names, e.g. suggested_caption=..., model=...)")
    check_value(extra, "accept", "extra", depth=2)  # an annotation's fields sit 3 levels deep in the file
    op = {"op": "accept", "file_name": file_name, "caption": caption, "tags": tags, "extra": extra}
    if width is not None:
        op.update(width=width, height=height)
    return op


def skip_op(file_name) -> dict:
    """The journal record of a skip, checked."""
    return {"op": "skip", "file_name": check_file_name(file_name)}


def check_op(op, where: str) -> dict:
    """A journal record read back from disk, checked again (AnnotationFileError naming the line)."""
    try:
        if not isinstance(op, dict) or op.get("op") not in ("accept", "skip") or not _is_id(op.get("seq")):
            raise InputError("not an mmkit journal record ({'seq': n, 'op': 'accept' | 'skip', ...})")
        if op["op"] == "skip":
            return {"seq": op["seq"], **skip_op(op.get("file_name"))}
        return {"seq": op["seq"], **accept_op(op.get("file_name"), op.get("caption"), op.get("tags", []),
                                              op.get("width"), op.get("height"), op.get("extra"))}
    except AnnotationFileError:
        raise
    except InputError as e:
        raise AnnotationFileError(f"{where}: {e}") from None
