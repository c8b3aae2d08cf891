"""AnnotationStore: a COCO caption JSON file that several writers extend safely, one change at a time.

Every `accept` / `skip` takes the writers' lock (`<file>.lock`), reads what other writers saved since
(the file, and the journal), applies the change on top of that, saves it and fsyncs before it returns.
Small files are rewritten whole (temp file, fsync, rename, fsync the folder). Once the file passes
`journal_above` bytes, a change is one appended, fsynced line of `<file>.journal`; the journal is folded back
into the JSON file when it grows past a quarter of it, after `COMPACT_AFTER` seconds, and on `flush()`.
"""
from __future__ import annotations

import json
import os
import stat
import time
from contextlib import contextmanager
from pathlib import Path

from ..errors import InputError
from .files import WriterLock, atomic_write, display_name, regular_file_or_missing, remove_stale_temps
from .schema import MAX_FILE_BYTES, AnnotationFileError, accept_op, check_op, loads, skip_op, validate

FORMAT_VERSION = "1.1"  # of the mmkit extensions (tags, mmkit_skipped, mmkit_journal_seq)
# bytes: a larger file (about 1,000 images) is not rewritten per save; changes go to the journal. Measured
# (benchmarks/annotations.py, a loaded 2-core host): a rewrite of 0.26 MB runs 31 saves/s, of 2.6 MB 5-6/s, of
# 27 MB 0.6-0.7/s; a journal line 110-210 saves/s at any size (fsync-bound).
JOURNAL_ABOVE = 256 * 1024
COMPACT_RATIO = 4  # the journal is folded into the file when it passes 1/COMPACT_RATIO of the file's size...
COMPACT_AFTER = 60.0  # ...or when its oldest change (made by this store) is this many seconds old
COMPACT_MIN = 64 * 1024  # bytes: a smaller journal is only folded in by age or flush()
_LISTS = ("images", "annotations", "mmkit_skipped", "mmkit_journal_seq")  # keys the store writes itself


def _empty() -> dict:
    return {"info": {"description": "image captions made with mmkit (widgets.AnnotationPanel)",
                     "version": FORMAT_VERSION, "contributor": "mmkit"},
            "licenses": [], "images": [], "annotations": [], "mmkit_skipped": []}


_dumps = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode  # the C encoder, one record at a time


def _encode(obj) -> bytes:
    """JSON bytes; file names that are not UTF-8 (surrogate-escaped) are written as \\udcXX escapes."""
    return _dumps(obj).encode("utf-8", "backslashreplace")


def _encode_file(data: dict) -> bytes:
    """The whole file, one image or annotation per line (readable, and ~10x faster than json's indent)."""
    parts = []
    for k, v in data.items():
        if isinstance(v, list) and v:
            parts.append(f" {_dumps(k)}: [\n  " + ",\n  ".join(map(_dumps, v)) + "\n ]")
        else:
            parts.append(f" {_dumps(k)}: {_dumps(v)}")
    return ("{\n" + ",\n".join(parts) + "\n}\n").encode("utf-8", "backslashreplace")


class _NoLock(AnnotationFileError):
    """The lock file cannot be created (a read-only folder)."""


def _sig(st: os.stat_result) -> tuple:
    return st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


class AnnotationStore:
    """One COCO caption JSON file; `accept` and `skip` persist before they return, whoever else writes it.

    Args:
        path: the JSON file (created with its folder when missing).
        backup: keep the content found before this store's first change as `<name>.bak`.
        journal_above: file size in bytes above which changes are appended to `<name>.journal` instead of
            rewriting the file (0: always; None: never).
    """

    def __init__(self, path, backup: bool = True, journal_above: int | None = JOURNAL_ABOVE):
        if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
            raise InputError(f"path must be the annotation .json file, not {type(path).__name__} {path!r:.60}")
        self.path = Path(path).expanduser()
        self.backup_path = self.path.with_name(self.path.name + ".bak")
        self.journal_path = self.path.with_name(self.path.name + ".journal")
        self.backup, self.journal_above = backup, journal_above
        self._backed_up = False
        for p in (self.path, self.journal_path):
            try:
                regular_file_or_missing(p)
            except InputError as e:
                raise AnnotationFileError(str(e)) from None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise AnnotationFileError(f"the folder of {self.path} cannot be created ({e.strerror or e})") from None
        self._lock = WriterLock(self.path.with_name(self.path.name + ".lock"))
        self._snap_sig: tuple | None | str = "unread"  # stat of the file this store last read or wrote
        self._journal_since: float | None = None  # when this store first appended to the journal
        try:
            with self._locked():
                remove_stale_temps(self.path)
                self._refresh()
        except _NoLock:
            self._refresh()  # a read-only folder: read without the lock (writes are atomic), fail on save

    # -- reading ---------------------------------------------------------------------------------
    @contextmanager
    def _locked(self):
        try:
            self._lock.__enter__()
        except OSError as e:
            raise _NoLock(f"the lock file {self._lock.path} cannot be created ({e.strerror or e}); "
                          "annotations need a folder you can write to") from None
        try:
            yield
        finally:
            self._lock.__exit__()

    def _hint(self) -> str:
        return (" The file was not changed. Fix it by hand, or move it away to start a new one"
                + (f"; the last version mmkit saved before a session is {self.backup_path}"
                   if self.backup_path.exists() else "") + ".")

    def _read_snapshot(self) -> tuple[bytes | None, tuple | None]:
        try:
            regular_file_or_missing(self.path)
            with open(self.path, "rb") as f:
                st = os.fstat(f.fileno())
                if st.st_size > MAX_FILE_BYTES:
                    raise AnnotationFileError(f"{self.path} is {st.st_size} bytes, over the {MAX_FILE_BYTES} "
                                              "that an annotation file may have")
                return f.read(), _sig(st)
        except FileNotFoundError:
            return None, None
        except AnnotationFileError:
            raise
        except (OSError, InputError) as e:
            raise AnnotationFileError(f"{self.path} could not be read ({getattr(e, 'strerror', None) or e})"
                                      ) from None

    def _load(self, raw: bytes | None) -> None:
        """Replace the in-memory state by the file's content (or an empty file)."""
        if raw is None:
            data = _empty()
        else:
            try:
                data = loads(raw, str(self.path))
                validate(data, str(self.path))
            except AnnotationFileError as e:
                raise AnnotationFileError(f"{e} (not a COCO caption file mmkit can extend).{self._hint()}") from None
        self._meta = {k: data.get(k) for k in data if k not in _LISTS}
        self._meta.setdefault("info", _empty()["info"])
        self._meta.setdefault("licenses", [])
        self._images = {im["file_name"]: im for im in data["images"]}  # file name -> image record
        self._names = {im["id"]: im["file_name"] for im in data["images"]}  # image id -> file name
        self._anns = {a["id"]: a for a in data["annotations"]}  # annotation id -> record, in file order
        self._by_image: dict[int, list[int]] = {}  # image id -> its annotation ids
        for a in data["annotations"]:
            self._by_image.setdefault(a["image_id"], []).append(a["id"])
        self._skipped = dict.fromkeys(data.get("mmkit_skipped", []))
        self._seq = data.get("mmkit_journal_seq", 0)  # the last change the file holds
        self._next_image = max(self._names, default=0) + 1
        self._next_ann = max(self._anns, default=0) + 1
        self._journal_off = 0  # bytes of the journal applied

    def _refresh(self) -> None:
        """Bring the in-memory state up to what is on disk (call under the lock to see every finished save)."""
        self._refresh_changed()
        if self._lock.read_seq() > self._seq:  # a save the file's stat did not show: read everything again
            self._snap_sig = "unread"
            self._refresh_changed()

    def _refresh_changed(self) -> None:
        """Re-read the file if its stat changed, then the journal lines past the ones applied."""
        try:
            st = os.stat(self.path)
            sig = _sig(st)
        except FileNotFoundError:
            sig = None
        if sig != self._snap_sig:
            if sig is None and self._snap_sig not in (None, "unread"):
                raise AnnotationFileError(f"{self.path} was deleted since this store read it")
            raw, sig = self._read_snapshot()
            self._load(raw)
            self._snap_sig, self._snap_size = sig, len(raw or b"")
        try:
            st = os.stat(self.journal_path)
        except FileNotFoundError:
            st = None
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise AnnotationFileError(f"{self.journal_path} is not a regular file (a folder, FIFO or device); "
                                      "move it away")
        size = st.st_size if st is not None else 0
        if size < self._journal_off:  # the journal was cut by hand: start over from the file
            self._snap_sig = "unread"
            return self._refresh_changed()
        if size > self._journal_off:
            self._replay()

    def _replay(self) -> None:
        with open(self.journal_path, "rb") as f:
            f.seek(self._journal_off)
            tail = f.read()
        end = tail.rfind(b"\n") + 1  # bytes after the last newline: a save killed mid-write, never acknowledged
        at = self._journal_off
        for line in tail[:end].split(b"\n")[:-1]:
            where, at = f"{self.journal_path} (the line at byte {at})", at + len(line) + 1
            if not line.strip():
                continue
            try:
                op = check_op(loads(line, where), where)
            except AnnotationFileError as e:
                raise AnnotationFileError(f"{e}. The journal holds the latest saves of {self.path.name}, one per "
                                          "line, and was not changed: fix that line by hand, or delete it") from None
            if op["seq"] > self._seq:
                self._apply(op)
                self._seq = op["seq"]
        self._journal_off += end

    def refresh(self) -> None:
        """Re-read the file (and journal) to see what other writers saved since."""
        with self._locked():
            self._refresh()

    # -- queries ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._anns)

    def annotation(self, file_name: str) -> dict | None:
        """The annotation of an image (caption, tags, ...), or None."""
        with self._lock.mutex:
            im = self._images.get(file_name)
            ids = self._by_image.get(im["id"]) if im is not None else None
            return json.loads(json.dumps(self._anns[ids[0]])) if ids else None

    @property
    def done(self) -> set[str]:
        """File names accepted or skipped."""
        with self._lock.mutex:
            return {self._names[i] for i, ids in self._by_image.items() if ids} | set(self._skipped)

    @property
    def skipped(self) -> set[str]:
        """File names skipped (no caption)."""
        with self._lock.mutex:
            return set(self._skipped)

    def first_pending(self, files: list[str]) -> int:
        """Index of the first file not yet accepted or skipped (len(files) when all are done)."""
        done = self.done
        return next((i for i, f in enumerate(files) if f not in done), len(files))

    @property
    def data(self) -> dict:
        """The whole file as a COCO caption dict (a copy)."""
        with self._lock.mutex:
            return json.loads(json.dumps(self._coco()))

    # -- changes (each one saved before it returns) ------------------------------------------------
    def accept(self, file_name: str, caption: str, tags=(), width: int | None = None, height: int | None = None,
               **extra) -> dict:
        """Record (or replace) the caption and tags of an image and save; returns the annotation.

        Args:
            file_name: the image's path relative to the annotated folder (as image_files() returns it).
            caption: the accepted caption (whitespace collapsed; must not be empty).
            tags: accepted tags: a list of strings, or one comma-separated string.
            width, height: the image size in pixels (both or neither).
            extra: more JSON fields for the annotation, e.g. suggested_caption=..., model=...
        """
        return self._commit(accept_op(file_name, caption, tags, width, height, extra))

    def skip(self, file_name: str) -> None:
        """Mark an image as skipped (no caption) and save."""
        self._commit(skip_op(file_name))

    def flush(self) -> None:
        """Fold the journal into the JSON file, so that the file alone holds every save."""
        with self._locked():
            self._refresh()
            if self._journal_off:
                self._write_snapshot()

    def _apply(self, op: dict) -> dict | None:
        name = op["file_name"]
        im = self._images.get(name)
        if im is not None:
            for i in self._by_image.pop(im["id"], []):
                del self._anns[i]
        if op["op"] == "skip":
            self._skipped[name] = None
            return None
        if im is None:
            im = self._images[name] = {"id": self._next_image, "file_name": name}
            self._names[im["id"]] = name
            self._next_image += 1
        if "width" in op:
            im.update(width=op["width"], height=op["height"])
        ann = {"id": self._next_ann, "image_id": im["id"], "caption": op["caption"], "tags": list(op["tags"]),
               **json.loads(json.dumps(op["extra"]))}
        self._next_ann += 1
        self._anns[ann["id"]] = ann
        self._by_image[im["id"]] = [ann["id"]]
        self._skipped.pop(name, None)
        return ann

    def _commit(self, op: dict) -> dict | None:
        with self._locked():
            try:
                self._refresh()
            except AnnotationFileError as e:
                self._conflict(op, e)
            if self.backup and not self._backed_up:
                if self._snap_sig is not None:  # (a file this store creates needs no backup)
                    atomic_write(self.backup_path, self._coco_bytes())  # the content found before this change
                self._backed_up = True
            op = {"seq": max(self._seq, self._lock.read_seq()) + 1, **op}
            ann = self._apply(op)
            self._seq = op["seq"]
            try:
                self._persist(op)
            except BaseException:
                self._snap_sig = "unread"  # not saved: the next change starts again from the disk
                raise
            self._lock.write_seq(self._seq)
            return dict(ann) if ann is not None else None

    def _persist(self, op: dict) -> None:
        if self.journal_above is None or self._snap_size <= self.journal_above or self._snap_sig is None:
            return self._write_snapshot()
        with open(self.journal_path, "ab") as f:
            if f.tell() != self._journal_off:  # a torn line of a killed writer (no one else holds the lock)
                f.truncate(self._journal_off)
            line = _encode(op) + b"\n"
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        if self._journal_off == 0:
            self._journal_since = time.monotonic()
        self._journal_off += len(line)
        if (self._journal_off > max(COMPACT_MIN, self._snap_size / COMPACT_RATIO)
                or time.monotonic() - (self._journal_since or 0) > COMPACT_AFTER):
            try:
                self._write_snapshot()
            except OSError:  # the change is saved in the journal; folding it in can wait for the next save
                self._snap_sig = "unread"

    def _coco(self) -> dict:
        out = dict(self._meta)
        out.update(images=list(self._images.values()), annotations=list(self._anns.values()),
                   mmkit_skipped=list(self._skipped), mmkit_journal_seq=self._seq)
        return out

    def _coco_bytes(self) -> bytes:
        return _encode_file(self._coco())

    def _write_snapshot(self) -> None:
        raw = self._coco_bytes()
        atomic_write(self.path, raw)
        self._snap_sig, self._snap_size = _sig(os.stat(self.path)), len(raw)
        if self._journal_off:  # every journal line is in the file now (mmkit_journal_seq says up to where)
            with open(self.journal_path, "r+b") as f:
                f.truncate(0)
                os.fsync(f.fileno())
            self._journal_off, self._journal_since = 0, None

    def _conflict(self, op: dict, e: AnnotationFileError):
        """The file changed on disk into something unreadable, or vanished: keep this session's work aside."""
        self._apply({"seq": self._seq + 1, **op})
        conflict = self.path.with_name(self.path.name + ".unsaved.json")
        self._snap_sig = "unread"
        try:
            atomic_write(conflict, self._coco_bytes())
        except OSError as why:
            conflict = f"no file: {conflict} could not be written either ({why.strerror or why})"
        raise AnnotationFileError(
            f"{e}; it changed on disk (edited by hand, or by another program?) since this store read it, so it "
            f"was not overwritten. This session's annotations, with this change "
            f"({op['op']} {display_name(op['file_name'])!r}), are in {conflict}; fix or move the file, then "
            "open the store again (AnnotationStore(path))") from None
