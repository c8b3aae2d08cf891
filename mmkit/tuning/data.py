"""Your own examples for `finetune`: every accepted data form -> one list of `Example`, with a report of bad rows.

Accepted forms:
- a folder with `captions.csv` (columns `image`, `caption`; several rows per image allowed) or `qa.csv`
  (`image`, `question`, `answer`), or both (read_examples' `kind`, the model's task, picks one); image paths are
  relative to the folder;
- a COCO caption JSON file (what `widgets.AnnotationPanel` writes), images resolved next to it;
- a list of `(image, text)` or `(image, question, answer)` tuples (image: path, bytes, PIL, array);
- a Hugging Face `datasets.Dataset` with an image column and a text (or question + answer) column.

A bad row (missing file, unreadable image, empty text, duplicate, a CSV row with more fields than its header) is
skipped and reported with the line it starts on and the reason, and a missing file's reason names its likely cause
(a URL, a name that differs only in case); an image path with spaces around it, Windows `\\` separators or
another Unicode normalisation of an existing file's name reads that file. `read_examples` raises `InputError` only
when nothing usable remains, or when the input as a whole is wrong (a CSV without the needed columns or with one
named twice, a picture or a file that is not a caption file).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError, describe
from .csv_rows import ACCEPTED, check_header, csv_text, declared, delimiter, records, row_problem
from ..data.image_files import is_url
from .files import Finder

CAPTION_COLUMNS = ("image", "caption")
QA_COLUMNS = ("image", "question", "answer")
TEXT_COLUMNS = ("caption", "captions", "text", "label", "sentence")  # accepted names of a Dataset's text column
IMAGE_COLUMNS = ("image", "img", "picture", "file_name", "path")


@dataclass
class Example:
    """One training example: an RGB image and its text (a caption), or a question and its answer."""

    image: object  # PIL.Image.Image (RGB)
    text: str = ""  # the caption (caption, contrastive and itm tasks)
    question: str = ""  # vqa
    answer: str = ""  # vqa
    source: str = ""  # where it came from, for reports: 'captions.csv row 3'
    key: str = ""  # the image's identity (path, or the first row with its pixels), so the split keeps its rows together


@dataclass
class Examples:
    """The usable examples and the rows that were skipped, each with its reason."""

    items: list[Example] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (where, why)
    kind: str = "caption"  # "caption" (image, text) or "qa" (image, question, answer)
    origin: str = ""  # a description of the data, for messages

    def __len__(self) -> int:
        return len(self.items)

    def report(self) -> str:
        """'120 usable examples from ...; 3 rows skipped: ...' (one line per skipped row)."""
        head = f"{len(self.items)} usable examples ({self.kind}) from {self.origin}"
        if not self.skipped:
            return head + "; no rows skipped"
        lines = [f"{head}; {len(self.skipped)} rows skipped:"]
        lines += [f"  {where}: {why}" for where, why in self.skipped[:20]]
        if len(self.skipped) > 20:
            lines.append(f"  ... and {len(self.skipped) - 20} more")
        return "\n".join(lines)


def _clean(t) -> str:
    return " ".join(str(t).split()) if isinstance(t, str) else ""


def _image(x, base: Path | None):
    """The RGB PIL image of x (a path relative to base, bytes, PIL, array, a datasets {'bytes','path'} dict)."""
    from ..data import load_image

    if isinstance(x, dict) and ("bytes" in x or "path" in x):  # datasets' Image feature without decoding
        x = x.get("bytes") or x.get("path")
    if isinstance(x, str) and not x.strip():
        raise InputError("the image path is empty")
    if isinstance(x, (str, os.PathLike)) and base is not None and not os.path.isabs(os.fspath(x)) and not is_url(x):
        x = base / os.fspath(x)
    return load_image(x)


def _reason(e: Exception, value=None) -> str:
    """A row's reason from the error reading its image: the message's first clause (a URL's message whole)."""
    if not isinstance(e, InputError):
        return f"{type(e).__name__}: {e}"
    return str(e) if is_url(value) else str(e).split("; ")[0]


class _Collector:
    """Adds rows, loading each distinct image once, skipping bad and duplicate rows with a reason."""

    def __init__(self, kind: str, origin: str, base: Path | None = None):
        self.out = Examples(kind=kind, origin=origin)
        self.base = base
        self.finder = Finder(base)
        self.images: dict = {}  # key -> PIL image or the InputError it raised
        self.seen: set = set()
        self.missing: set = set()  # the keys of images not found
        self.by_pixels: dict = {}  # fingerprint of a picture in memory -> the key of the first row with it

    def add(self, where: str, image, text: str = "", question: str = "", answer: str = "") -> None:
        written = image
        if isinstance(image, (str, os.PathLike)) and isinstance(os.fspath(image), str):
            image = self.finder.locate(os.fspath(image))
        key = os.path.normpath(image) if isinstance(image, str) and image.strip() else f"{where}"
        texts = (text,) if self.out.kind == "caption" else (question, answer)
        names = ("caption",) if self.out.kind == "caption" else ("question", "answer")
        for name, t in zip(names, texts):
            if not t:
                self.out.skipped.append((where, f"empty {name}"))
                return
        if key not in self.images:
            try:
                self.images[key] = _image(image, self.base)
            except (InputError, OSError, ValueError) as e:
                self.images[key] = e
            if not isinstance(image, str) and not isinstance(self.images[key], Exception):
                # a picture in memory: its rows (one per question or caption) share the key of the first row with
                # the same pixels, so the validation split never puts one picture on both sides
                first = self.by_pixels.setdefault(_fingerprint(self.images[key]), key)
                if first != key:
                    del self.images[key]
                    key = first
        im = self.images[key]
        if isinstance(im, Exception):
            why = _reason(im, image)
            if isinstance(image, str) and not is_url(image) and not os.path.lexists(self.finder.root / image):
                self.missing.add(key)
                why += self.finder.hint(image)
            self.out.skipped.append((where, f"image {describe(written)}: {why}"))
            return
        dup = (key, text, question, answer)
        if isinstance(image, (str, os.PathLike)) and dup in self.seen:
            self.out.skipped.append((where, "duplicate of an earlier row (same image and text)"))
            return
        self.seen.add(dup)
        self.out.items.append(Example(im, text, question, answer, where, key))


def _fingerprint(image) -> tuple:
    """A picture's identity by its pixels (the same picture in two rows, or under two paths, gives the same one)."""
    import hashlib

    return image.mode, image.size, hashlib.blake2b(image.tobytes(), digest_size=16).digest()


def _read_csv(path: Path) -> Examples:
    """captions.csv or qa.csv in a folder -> Examples (image paths relative to the folder)."""
    kind = "qa" if path.name.lower() == "qa.csv" else "caption"
    need = QA_COLUMNS if kind == "qa" else CAPTION_COLUMNS
    text = csv_text(path)
    sep, skip = declared(text)  # Excel's 'sep=;' first line
    sep = sep or delimiter(text, need)
    rows = records(text, sep, path)[skip:]  # rows keep the line they start on
    header = [h.strip().lower() for h in (rows[0][1] if rows else [])]
    check_header(path, header, need)
    col = _Collector(kind, str(path), base=path.parent)
    for n, fields in rows[1:]:  # n: the line the row starts on (line 1 is the header)
        where = f"{path.name} line {n}"
        if not any(c.strip() for c in fields):
            continue
        problem = row_problem(fields, header, sep, need, path.parent)
        if problem:
            col.out.skipped.append((where, problem))
            continue
        row = dict(zip(header, fields))
        if kind == "caption":
            col.add(where, row.get("image") or "", text=_clean(row.get("caption")))
        else:
            col.add(where, row.get("image") or "", question=_clean(row.get("question")),
                    answer=_clean(row.get("answer")))
    return col.out


def _read_coco(path: Path, image_dir=None) -> Examples:
    """A COCO caption JSON file (AnnotationPanel's, journal included) -> Examples; images resolved next to it."""
    if Path(str(path) + ".journal").exists():  # a large AnnotationPanel file keeps recent changes in its journal
        from ..annotations import AnnotationStore

        data = AnnotationStore(path, backup=False).data
    else:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise InputError(f"{str(path)!r} is not a readable JSON file ({e}); pass the COCO caption file "
                             "that AnnotationPanel writes") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("annotations"), list):
        raise InputError(f"{str(path)!r} is not a COCO caption file: it needs 'images' and 'annotations' lists")
    names = {im.get("id"): im.get("file_name") for im in data["images"] if isinstance(im, dict)}
    col = _Collector("caption", str(path), base=Path(image_dir) if image_dir is not None else path.parent)
    for n, a in enumerate(data["annotations"]):
        where = f"{path.name} annotations[{n}]"
        if not isinstance(a, dict) or a.get("image_id") not in names:
            col.out.skipped.append((where, "no image_id that 'images' lists"))
            continue
        col.add(where, names[a["image_id"]] or "", text=_clean(a.get("caption")))
    col.out.origin += _elsewhere(col, path, image_dir)
    return col.out


def _elsewhere(col: _Collector, path: Path, image_dir) -> str:
    """' (... pass image_dir= ...)' when most of a COCO file's pictures are not where they are looked up, else ''."""
    if 2 * len(col.missing) <= len(col.images):
        return ""
    where = f"image_dir {str(col.base)!r}" if image_dir is not None else f"the COCO file's folder {str(path.parent)!r}"
    return (f" ({len(col.missing)} of its {len(col.images)} pictures are not found: their file names are read "
            f"relative to {where}; pass image_dir= the folder that holds the pictures, e.g. finetune(model, "
            f"{str(path)!r}, image_dir='my_pictures/'))")


def _read_tuples(rows) -> Examples:
    rows = list(rows)
    sizes = [len(r) for r in rows if isinstance(r, (tuple, list))]
    kind = "qa" if sizes.count(3) > sizes.count(2) else "caption"  # the form most rows have
    col = _Collector(kind, f"a list of {len(rows)} tuples")
    for n, r in enumerate(rows):
        where = f"row {n}"
        if not isinstance(r, (tuple, list)) or len(r) != (3 if kind == "qa" else 2):
            want = "(image, question, answer)" if kind == "qa" else "(image, text)"
            col.out.skipped.append((where, f"{describe(r)} is not an {want} tuple"))
            continue
        if kind == "qa":
            col.add(where, r[0], question=_clean(r[1]), answer=_clean(r[2]))
        else:
            col.add(where, r[0], text=_clean(r[1]))
    return col.out


def _label_names(ds, column: str):
    """The class names of a datasets ClassLabel column (ints -> words), or None for a text column."""
    feature = getattr(ds, "features", None) and ds.features.get(column)
    return getattr(feature, "names", None)


def _texts(value, names) -> list[str]:
    """The texts of one dataset cell: a string, a ClassLabel int (its name), or a list of captions."""
    if names is not None and isinstance(value, int) and 0 <= value < len(names):
        return [names[value]]
    if isinstance(value, (list, tuple)):  # several captions of one picture (COCO-style datasets)
        return [_clean(v) for v in value] or [""]
    return [_clean(value)]


def _read_dataset(ds, image_dir=None) -> Examples:
    """A Hugging Face datasets.Dataset (or IterableDataset) with an image column and text (or question + answer)
    columns. Image cells may be decoded pictures (the Image feature), {'bytes', 'path'} dicts or path strings
    (relative ones under image_dir, default the current folder); a ClassLabel column gives its class names; a
    list of strings gives one example per caption."""
    if isinstance(ds, dict) or type(ds).__name__ in ("DatasetDict", "IterableDatasetDict"):
        splits = list(ds)
        raise InputError(f"the data is a DatasetDict with splits {splits}; pass one split, e.g. finetune(model, "
                         f"ds[{splits[0]!r}]" + (f", val_data=ds[{splits[1]!r}])" if len(splits) > 1 else ")"))
    names = list(ds.column_names or [])
    if not names:  # a streamed dataset whose columns are only known from its first row
        first = next(iter(ds), None)
        names = list(first) if isinstance(first, dict) else []
    cols = [c.lower() for c in names]
    real = dict(zip(cols, names))
    image = next((real[c] for c in IMAGE_COLUMNS if c in cols), None)
    qa = "question" in cols and "answer" in cols
    text = next((real[c] for c in TEXT_COLUMNS if c in cols), None)
    if image is None or not (qa or text):
        raise InputError(f"the dataset has columns {names}; it needs an image column ({', '.join(IMAGE_COLUMNS)}) "
                         f"and a text column ({', '.join(TEXT_COLUMNS)}) or 'question' and 'answer'; rename "
                         "columns with ds.rename_column(old, new)")
    labels = None if qa else _label_names(ds, text)
    size = f"{len(ds)} rows" if hasattr(ds, "__len__") else "streamed rows"
    col = _Collector("qa" if qa else "caption", f"a dataset of {size}",
                     base=Path(image_dir) if image_dir is not None else None)
    n = -1
    for n, row in enumerate(ds):
        if qa:
            col.add(f"row {n}", row[image], question=_clean(row[real["question"]]), answer=_clean(row[real["answer"]]))
        else:
            for t in _texts(row[text], labels):
                col.add(f"row {n}", row[image], text=t)
    if not hasattr(ds, "__len__"):
        col.out.origin = f"a dataset of {n + 1} streamed rows"
    if image_dir is None and any("no such file" in why for _, why in col.out.skipped):
        col.out.origin += f" (relative image paths are read from {os.getcwd()!r}; image_dir= sets their folder)"
    return col.out


FOLDER_FILES = {"caption": ("captions.csv", "captions.json"), "qa": ("qa.csv",)}  # what a folder may hold, by kind
FILE_COLUMNS = {"caption": "image, caption", "qa": "image, question, answer"}


def _folder_file(folder: Path, kind: str | None) -> Path:
    """The data file of a folder: the first of captions.csv, qa.csv, captions.json there, or with `kind` ("caption",
    "qa": what the model's task reads) the first of that kind's files; InputError naming the file to write when the
    folder has only the other kind's."""
    try:  # by name whatever its case ('Captions.CSV', as some editors and Windows save it)
        names = {n.lower(): n for n in sorted(os.listdir(folder))}  # the lower-case name wins when both exist
    except OSError:
        names = {}
    found = [names.get(n, n) for n in ("captions.csv", "qa.csv", "captions.json") if (folder / names.get(n, n)).exists()]
    if not found:
        raise InputError(f"{str(folder)!r} has no captions.csv (columns image, caption), qa.csv (image, question, "
                         "answer) or captions.json (AnnotationPanel's file); add one")
    if kind is None:
        return folder / found[0]
    mine = [n for n in found if n.lower() in FOLDER_FILES[kind]]
    if mine:
        return folder / mine[0]
    want = FOLDER_FILES[kind][0]
    task = "VQA" if kind == "qa" else "captioning and image-text matching"
    raise InputError(f"{str(folder)!r} has {' and '.join(found)} but no {want}: fine-tuning for {task} needs "
                     f"{want} (columns {FILE_COLUMNS[kind]}); write it as {str(folder / want)!r} (image paths "
                     f"relative to the folder) and pass the folder again, or pass that file itself")


def read_examples(data, image_dir=None, kind: str | None = None) -> Examples:
    """Every accepted form of `data` (module docstring) -> Examples; InputError when nothing is usable.

    Args:
        data: folder | captions.csv / qa.csv | COCO JSON | list of tuples | datasets.Dataset | Examples.
        image_dir: for a COCO file, the folder its file names are relative to (default: the file's folder); for a
            dataset with a path column, the folder of its relative paths (default: the current folder).
        kind: "caption" or "qa": which file a folder holding both captions.csv and qa.csv is read from (what the
            model's task needs; finetune passes it); a folder with only the other kind's file is an InputError
            naming the file to add. None: captions.csv, else qa.csv, else captions.json.
    """
    if kind not in (None, "caption", "qa"):
        raise InputError(f"kind={kind!r}: pass 'caption', 'qa' or None")
    if isinstance(data, Examples):
        out = data
    elif isinstance(data, (str, os.PathLike)):
        p = Path(data).expanduser()
        if p.is_dir():
            p = _folder_file(p, kind)
        if not p.exists():
            raise InputError(f"{str(p)!r} does not exist; pass {ACCEPTED}")
        out = _read_coco(p, image_dir) if p.suffix.lower() == ".json" else _read_csv(p)
    elif hasattr(data, "column_names") and hasattr(data, "__iter__"):
        out = _read_dataset(data, image_dir)
    elif isinstance(data, (list, tuple)):
        out = _read_tuples(data)
    else:
        raise InputError(f"cannot read examples from {describe(data)}; pass {ACCEPTED}")
    if not out.items:
        why = f" ({len(out.skipped)} rows skipped; first: {out.skipped[0][0]}: {out.skipped[0][1]})" if out.skipped else ""
        raise InputError(f"no usable examples in {out.origin or describe(data)}{why}; fix the rows or pass other data")
    return out
