"""Caption annotations in COCO format, saved crash-safely after every accepted item.

`AnnotationStore(path)` opens (or creates) one COCO caption JSON file:
`{"info", "licenses", "images": [{id, file_name, width, height}], "annotations": [{id, image_id, caption,
tags, ...}]}` plus `"mmkit_skipped"`, the file names the annotator skipped. Every `accept` / `skip`
rewrites the whole file before it returns: write a temp file in the same folder, fsync it, `os.replace`
it over the old one, fsync the folder. A killed kernel therefore leaves either the old or the new file,
never half of one. A file that does not parse, or is not a caption file, or changed on disk while it was
open, raises `AnnotationFileError` and is never overwritten; the last good version is kept in `*.bak`.
Only the standard library is imported here (the crash test starts hundreds of writer processes).
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from .errors import InputError

FORMAT_VERSION = "1.0"  # of the mmkit extensions (tags, mmkit_skipped)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp")  # what a folder walk lists


class AnnotationFileError(InputError):
    """The annotation file is unreadable, not a caption file, or changed on disk; it was not modified."""


def image_files(folder) -> list[str]:
    """Image file names inside folder (sorted, recursive, as '/'-separated paths relative to folder)."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise InputError(f"{str(folder)!r} is not a folder; pass the folder that holds the images to annotate")
    found = sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
    if not found:
        raise InputError(f"folder {str(folder)!r} has no image files ({', '.join(IMAGE_SUFFIXES)})")
    return found


def atomic_write(path, data: bytes) -> None:
    """Replace path by data so that a crash leaves the old or the new content, never a mix.

    Write a temp file next to it, flush and fsync it, os.replace it over path, then fsync the folder
    (so the rename itself survives a power cut).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows cannot open folders; its rename is durable enough there
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _empty() -> dict:
    return {"info": {"description": "image captions made with mmkit (widgets.AnnotationPanel)",
                     "version": FORMAT_VERSION, "contributor": "mmkit"},
            "licenses": [], "images": [], "annotations": [], "mmkit_skipped": []}


def validate(data, where: str = "the file") -> None:
    """Raise AnnotationFileError naming the first problem when data is not a COCO caption file."""
    def bad(problem: str):
        raise AnnotationFileError(f"{where}: {problem}")

    if not isinstance(data, dict):
        bad(f"expected a JSON object with 'images' and 'annotations', found a {type(data).__name__}")
    for key in ("images", "annotations"):
        if not isinstance(data.get(key), list):
            bad(f"'{key}' is missing or not a list")
    ids, names = set(), set()
    for i, im in enumerate(data["images"]):
        if not isinstance(im, dict) or not isinstance(im.get("id"), int) or not isinstance(im.get("file_name"), str):
            bad(f"images[{i}] needs an integer 'id' and a string 'file_name'")
        if im["id"] in ids:
            bad(f"images[{i}]: image id {im['id']} appears twice")
        if im["file_name"] in names:
            bad(f"images[{i}]: file_name {im['file_name']!r} appears twice")
        ids.add(im["id"])
        names.add(im["file_name"])
    ann_ids = set()
    for i, a in enumerate(data["annotations"]):
        if not isinstance(a, dict) or not isinstance(a.get("id"), int) or not isinstance(a.get("image_id"), int):
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


class AnnotationStore:
    """One COCO caption JSON file; `accept` and `skip` persist before they return.

    Args:
        path: the JSON file (created with its folder when missing).
        backup: keep a copy of an existing file as `<name>.bak` before the first change.
    """

    def __init__(self, path, backup: bool = True):
        self.path = Path(path).expanduser()
        self.backup_path = self.path.with_name(self.path.name + ".bak")
        self.backup = backup
        self._backed_up = False
        self._digest: str | None = None  # sha256 of the bytes this store last read or wrote (None: no file)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._remove_stale_temps()
        if self.path.exists():
            raw = self._read_bytes()
            self.data = self._parse(raw)
            self._digest = hashlib.sha256(raw).hexdigest()
        else:
            self.data = _empty()

    # -- reading ---------------------------------------------------------------------------------
    def _read_bytes(self) -> bytes:
        try:
            return self.path.read_bytes()
        except OSError as e:
            raise AnnotationFileError(f"{self.path} could not be read ({e.strerror or e})") from None

    def _parse(self, raw: bytes) -> dict:
        hint = (" The file was not changed. Fix it by hand, or move it away to start a new one"
                + (f"; the last version mmkit saved before this session is {self.backup_path}"
                   if self.backup_path.exists() else "") + ".")
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise AnnotationFileError(f"{self.path} is not UTF-8 text, so not an annotation file.{hint}") from None
        except json.JSONDecodeError as e:
            raise AnnotationFileError(f"{self.path} is not valid JSON ({e.msg} at line {e.lineno}, column "
                                      f"{e.colno}): it was damaged or edited by hand.{hint}") from None
        try:
            validate(data, str(self.path))
        except AnnotationFileError as e:
            raise AnnotationFileError(f"{e} (not a COCO caption file mmkit can extend).{hint}") from None
        data.setdefault("mmkit_skipped", [])
        data.setdefault("licenses", [])
        data.setdefault("info", _empty()["info"])
        return data

    def _remove_stale_temps(self) -> None:
        """Delete temp files left by a writer killed mid-save (they never replaced the real file)."""
        for p in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            try:
                p.unlink()
            except OSError:
                pass

    # -- queries ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.data["annotations"])

    def _image(self, file_name: str) -> dict | None:
        return next((im for im in self.data["images"] if im["file_name"] == file_name), None)

    def annotation(self, file_name: str) -> dict | None:
        """The annotation of an image (caption, tags, ...), or None."""
        im = self._image(file_name)
        if im is None:
            return None
        return next((a for a in self.data["annotations"] if a["image_id"] == im["id"]), None)

    @property
    def done(self) -> set[str]:
        """File names accepted or skipped."""
        names = {im["file_name"] for im in self.data["images"]
                 if any(a["image_id"] == im["id"] for a in self.data["annotations"])}
        return names | set(self.data["mmkit_skipped"])

    def first_pending(self, files: list[str]) -> int:
        """Index of the first file not yet accepted or skipped (len(files) when all are done)."""
        done = self.done
        return next((i for i, f in enumerate(files) if f not in done), len(files))

    # -- changes (each one saved before it returns) ------------------------------------------------
    def accept(self, file_name: str, caption: str, tags=(), width: int | None = None, height: int | None = None,
               **extra) -> dict:
        """Record (or replace) the caption and tags of an image and save; returns the annotation.

        Args:
            file_name: the image's path relative to the annotated folder.
            caption: the accepted caption (stripped; must not be empty).
            tags: accepted tags (strings).
            extra: more JSON fields for the annotation, e.g. suggested_caption=..., model=...
        """
        if not isinstance(file_name, str) or not file_name:
            raise InputError("file_name must be a non-empty string")
        if not isinstance(caption, str) or not caption.strip():
            raise InputError(f"the caption of {file_name!r} is empty; type one, or skip the image")
        tags = [str(t).strip() for t in tags if str(t).strip()]
        tags = list(dict.fromkeys(tags))  # unique, in order
        d = self.data
        im = self._image(file_name)
        if im is None:
            im = {"id": max((i["id"] for i in d["images"]), default=0) + 1, "file_name": file_name}
            d["images"].append(im)
        if width is not None and height is not None:
            im.update(width=int(width), height=int(height))
        d["annotations"] = [a for a in d["annotations"] if a["image_id"] != im["id"]]
        ann = {"id": max((a["id"] for a in self.data["annotations"]), default=0) + 1, "image_id": im["id"],
               "caption": " ".join(caption.split()), "tags": tags, **extra}
        d["annotations"].append(ann)
        d["mmkit_skipped"] = [s for s in d["mmkit_skipped"] if s != file_name]
        self.save()
        return ann

    def skip(self, file_name: str) -> None:
        """Mark an image as skipped (no caption) and save."""
        d = self.data
        im = self._image(file_name)
        if im is not None:
            d["annotations"] = [a for a in d["annotations"] if a["image_id"] != im["id"]]
        if file_name not in d["mmkit_skipped"]:
            d["mmkit_skipped"].append(file_name)
        self.save()

    def save(self) -> None:
        """Write the file atomically; AnnotationFileError (and nothing written) if it changed on disk."""
        self._check_unchanged()
        if self.backup and not self._backed_up and self._digest is not None:
            atomic_write(self.backup_path, self.path.read_bytes())  # the version found when opened
            self._backed_up = True
        raw = json.dumps(self.data, ensure_ascii=False, indent=1).encode("utf-8")
        atomic_write(self.path, raw)
        self._digest = hashlib.sha256(raw).hexdigest()

    def _check_unchanged(self) -> None:
        exists = self.path.exists()
        now = hashlib.sha256(self.path.read_bytes()).hexdigest() if exists else None
        if now == self._digest:
            return
        conflict = self.path.with_name(self.path.name + ".unsaved.json")
        atomic_write(conflict, json.dumps(self.data, ensure_ascii=False, indent=1).encode("utf-8"))
        what = "was changed on disk (edited by hand, or by another panel?)" if exists else "was deleted"
        raise AnnotationFileError(
            f"{self.path} {what} since this store read it, so it was not overwritten. This session's "
            f"annotations are in {conflict}; open the store again (AnnotationStore(path)) to continue from the "
            "file as it is now")
