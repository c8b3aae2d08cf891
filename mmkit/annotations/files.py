"""The file-system side of the annotation store: crash-safe writes, the writers' lock, temp files, file names.

Only the standard library is imported on POSIX (`fcntl`); elsewhere the lock comes from `filelock`.
"""
from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path

from ..errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".gif", ".bmp", ".tif", ".tiff", ".webp",
                  ".avif")  # what a folder walk lists (.jfif: JPEGs as Windows saves them from the web)
CANNOT_DECODE = (".heic", ".heif")  # photos Pillow reads only with a plug-in (pillow-heif): named in messages
LOCK_TIMEOUT = 60.0  # seconds a writer waits for another one's save before giving up with an error
_HOST = (os.uname().nodename if hasattr(os, "uname") else os.environ.get("COMPUTERNAME", "")).replace(".", "_") \
    or "host"  # temp files name their owner: host and pid


def image_files(folder) -> list[str]:
    """Image file names inside folder (sorted, recursive, as '/'-separated paths relative to folder).

    Names that are not valid UTF-8 come back surrogate-escaped (os.fsdecode); `name_bytes` recovers the bytes.
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise InputError(f"{str(folder)!r} is not a folder; pass the folder that holds the images to annotate")
    found = sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                   if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file())
    if not found:
        note = left_out_note(left_out(root))
        raise InputError(f"folder {str(folder)!r} has no image files ({', '.join(IMAGE_SUFFIXES)})"
                         + (f"; {note}" if note else ""))
    return found


NOT_PICTURES = (".pdf",)  # documents a folder of pictures often holds: named, with the fix, when left out


def left_out(folder) -> list[str]:
    """The files image_files passes over that someone meant as pictures: HEIC/HEIF photos (CANNOT_DECODE) and
    PDFs (NOT_PICTURES), as sorted '/'-separated paths relative to folder."""
    root = Path(folder).expanduser()
    kinds = CANNOT_DECODE + NOT_PICTURES
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.suffix.lower() in kinds and not p.name.startswith(".") and p.is_file())


def left_out_note(files) -> str:
    """'4 files left out: IMG_1.HEIC, ...: 3 are HEIC photos (...), ...; scan.pdf (it is a PDF document: export the
    page as PNG)', in load_image's own words (mmkit.data.images); '' when there are none."""
    from ..data.images import _sniff

    def names(some):
        shown = [display_name(f) for f in some[:5]]
        return ", ".join(shown) + (f", ... ({len(some)} in all)" if len(some) > 5 else "")

    heic = [f for f in files if Path(f).suffix.lower() in CANNOT_DECODE]
    pdf = [f for f in files if Path(f).suffix.lower() in NOT_PICTURES]
    parts = [f"{names(heic)}: {heic_hint(heic)[2:]}"] if heic else []
    if pdf:
        why = _sniff(b"%PDF")  # ' (it is a PDF document: export the page as PNG)'
        parts.append(names(pdf) + (why if len(pdf) == 1 else why.replace("(it is", "(each is", 1)))
    n = len(heic) + len(pdf)
    return f"{n} file{'' if n == 1 else 's'} left out: " + "; ".join(parts) if parts else ""


def check_file_name(name, what: str = "file_name") -> str:
    """Return name if it can be stored and turned back into the original bytes; InputError otherwise."""
    if not isinstance(name, str) or not name:
        raise InputError(f"{what} must be a non-empty string (the image's path relative to the folder), "
                         f"not {type(name).__name__} {name!r}"[:200])
    if "\x00" in name:
        raise InputError(f"{what} {display_name(name)!r} contains a NUL character, which no file name can hold")
    try:
        os.fsencode(name)
    except UnicodeEncodeError:
        raise InputError(f"{what} {display_name(name)!r} holds a lone surrogate that is not an escaped byte; "
                         "pass the name as image_files() or os.fsdecode() return it") from None
    return name


def name_bytes(name: str) -> bytes:
    """The original bytes of a stored file name (names that are not UTF-8 are kept surrogate-escaped)."""
    return os.fsencode(name)


def display_name(name: str) -> str:
    """A file name as printable text: bytes that are not UTF-8 are shown as \\xff escapes."""
    try:
        return os.fsencode(name).decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return name.encode("utf-8", "backslashreplace").decode("ascii")


def regular_file_or_missing(path: Path) -> bool:
    """True when path is a regular file, False when it is missing; InputError for a FIFO, device or folder."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    except OSError as e:
        raise InputError(f"{path} cannot be checked ({e.strerror or e})") from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{path} is not a regular file (a folder, FIFO or device); pass the path of a .json file")
    return True


# -- crash-safe writes ---------------------------------------------------------------------------
def _temp_prefix(path: Path) -> str:
    return f".{path.name}.{_HOST}-{os.getpid()}."


def atomic_write(path, data: bytes) -> None:
    """Replace path by data so that a crash leaves the old or the new content, never a mix.

    Write a temp file next to it (named after this host and process), flush and fsync it, os.replace it over
    path, then fsync the folder (so the rename itself survives a power cut).
    """
    path = Path(path)
    while True:
        tmp = path.parent / f"{_temp_prefix(path)}{os.urandom(6).hex()}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o644)
            break
        except FileExistsError:
            continue
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
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):  # exists but belongs to someone else (or cannot tell): keep its file
        return True
    return True


def remove_stale_temps(path: Path) -> list[Path]:
    """Delete temp files of path (and of its .bak / .unsaved.json) left by a writer killed mid-save.

    A temp file names its owner (`.<name>.<host>-<pid>.<random>.tmp`); it is stale when that process is gone,
    and a live writer's temp file is kept.
    Files from another host, or in an older format, are left alone. Returns the files removed.
    """
    removed, prefix = [], f".{path.name}."
    for p in path.parent.iterdir():  # not glob: a file name may hold [ ] * ?
        if not (p.name.startswith(prefix) and p.name.endswith(".tmp")):
            continue
        rest = p.name[len(prefix):]
        for sibling in ("bak.", "unsaved.json."):  # the temp files of the backup and of the unsaved copy
            rest = rest.removeprefix(sibling)
        owner = rest.split(".", 1)[0]
        host, _, pid = owner.rpartition("-")
        if host != _HOST or not pid.isdigit() or _alive(int(pid)):
            continue
        try:
            p.unlink()
            removed.append(p)
        except OSError:
            pass
    return removed


# -- the writers' lock ---------------------------------------------------------------------------
class WriterLock:
    """An exclusive lock between processes and threads on `<file>.lock` (flock; filelock where there is none).

    Every store object opens its own lock file, so two stores in one process exclude each other too.
    """

    def __init__(self, path: Path, timeout: float = LOCK_TIMEOUT):
        self.path, self.timeout = path, timeout
        self.mutex = threading.RLock()  # one store used from several threads (queries take it too)
        self._depth = 0
        self._fd: int | None = None
        self._filelock = None

    def __enter__(self) -> "WriterLock":
        if not self.mutex.acquire(timeout=self.timeout):
            raise self._busy()
        try:
            if self._depth == 0:
                self._acquire()
            self._depth += 1
        except BaseException:
            self.mutex.release()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._depth -= 1
        try:
            if self._depth == 0:
                self._release()
        finally:
            self.mutex.release()

    def _busy(self) -> InputError:
        return InputError(f"another program has held {self.path} for {self.timeout:.0f} s, so this save waited and "
                          "gave up; close the other annotation panel or script and try again")

    def _acquire(self) -> None:
        try:
            import fcntl
        except ImportError:  # Windows
            import filelock

            self._filelock = self._filelock or filelock.FileLock(str(self.path))
            try:
                self._filelock.acquire(timeout=self.timeout)
            except filelock.Timeout:
                raise self._busy() from None
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        deadline, pause = time.monotonic() + self.timeout, 0.0005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise self._busy() from None
                time.sleep(pause)
                pause = min(pause * 2, 0.02)
            except OSError:
                os.close(fd)
                raise
        self._fd = fd

    def read_seq(self) -> int:
        """The number of the last change any writer saved, kept in the lock file (0 when unknown).

        A stat of the JSON file can miss a change: timestamps are as coarse as a kernel tick, and a freed inode
        number can come back. This counter cannot; it is read and written only under the lock.
        """
        if self._fd is None:
            return 0
        raw = os.pread(self._fd, 32, 0)
        return int(raw) if raw.strip().isdigit() else 0

    def write_seq(self, seq: int) -> None:
        if self._fd is not None:
            os.pwrite(self._fd, b"%020d\n" % seq, 0)

    def _release(self) -> None:
        if self._filelock is not None:
            self._filelock.release()
        elif self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None


def heic_hint(files) -> str:
    """'; 3 are HEIC photos (...)' when some of the files are in a photo format that cannot be decoded here."""
    heic = [f for f in files if Path(f).suffix.lower() in CANNOT_DECODE]
    if not heic:
        return ""
    from ..data.images import HEIC_FIX

    one = len(heic) == 1
    what = "is a HEIC photo" if one else "are HEIC photos"
    return f"; {len(heic)} {what} (what iPhones save), {HEIC_FIX.format(it='it' if one else 'them')}"
