"""Reading image files safely: only regular files, capped reads, file objects in any state -> bytes or InputError.

load_image calls these before decoding: a FIFO, a device or a folder is refused without a blocking open,
and no read goes past `max_bytes` (an endless stream such as /dev/zero stops there). A file:// URL of a local file
is read as its path; other URLs are refused (mmkit downloads nothing).
"""
from __future__ import annotations

import io
import os
import re
import stat
from pathlib import Path

from ..errors import InputError, describe

_CHUNK = 4 * 2**20  # read size: a small file never costs a max_bytes buffer


def is_url(x) -> bool:
    """Whether x is a string such as 'https://...' or 's3://...' (a scheme and '://'): never read as a file, except
    a file:// URL of a local file, which read_path reads as its path."""
    return isinstance(x, str) and re.match(r"\s*[A-Za-z][A-Za-z0-9+.-]*://", x) is not None


def mb(n: int) -> str:
    """A byte count for messages, a MB being 10^6 bytes (as the panels' upload limits count): '256 MB', '1.5 MB',
    or '73 bytes'."""
    if n < 10**6:
        return f"{n} bytes"
    x = n / 10**6
    return f"{x:.0f} MB" if abs(x - round(x)) < 0.05 else f"{x:.1f} MB"


def raise_limit(keyword: str, needed: int | None = None) -> str:
    """The advice for an input over one of load_image's limits (keyword: "max_pixels" or "max_bytes"), naming both
    ways to raise it: the module global, which every call reads (the task functions' too, which take no such
    keyword), and load_image's keyword. needed: the smallest value that lets this input through, when known."""
    glob = f"mmkit.data.images.{keyword.upper()}"
    if needed is None:
        return (f"if you trust the file, raise the limit: set {glob} (read by every call, the task functions' too), "
                f"or pass load_image(..., {keyword}=) for one call")
    return (f"if you trust the file, raise the limit: {glob} = {needed:_} (read by every call, the task functions' "
            f"too), or load_image(..., {keyword}={needed:_}) for one call")


def _kind(mode: int) -> str:
    for test, what in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return what
    return "not a regular file"


def read_path(x, max_bytes: int) -> tuple[bytes, str]:
    """(the bytes of the regular file at path x, its name for messages), or InputError."""
    name = describe(x)
    s = os.fspath(x)
    if isinstance(s, bytes):
        s = os.fsdecode(s)
    if re.match(r"\s*file://", s, re.IGNORECASE):
        s = _file_url_path(s, name)  # a local file named as a URL (a browser's address bar, Path.as_uri())
    elif is_url(s):
        raise InputError(f"{name} is a URL; mmkit does not download images. Download it first and pass the file path")
    if "\x00" in s:
        raise InputError(f"{name} contains a NUL character, which no file name can hold; check the path")
    p = Path(s).expanduser()
    if os.path.isdir(p):  # (Windows cannot open a folder to ask)
        raise InputError(f"{name} is a folder, not an image file; pass one image file, or a list of files")
    try:  # O_NONBLOCK: opening a FIFO returns at once instead of waiting for a writer
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise InputError(f"{name}: no such file; check the path (relative paths start at {os.getcwd()!r})") from None
    except OSError as e:
        raise InputError(f"{name} could not be opened ({e.strerror or e}); check the path and its permissions") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            if stat.S_ISDIR(info.st_mode):
                raise InputError(f"{name} is a folder, not an image file; pass one image file, or a list of files")
            raise InputError(f"{name} is {_kind(info.st_mode)}, not a regular file; mmkit reads images only from "
                             "regular files: save the picture to a file first")
        if info.st_size > max_bytes:
            raise InputError(f"{name} is {mb(info.st_size)} ({info.st_size:,} bytes), over the {mb(max_bytes)} limit; "
                             f"resize the image, or, {raise_limit('max_bytes', info.st_size)}")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = _read_capped(f.read, max_bytes, name)
    except OSError as e:
        raise InputError(f"{name} could not be read ({e.strerror or e}); check its permissions") from None
    finally:
        os.close(fd)
    return data, name


def _file_url_path(url: str, name: str) -> str:
    """The local path a file:// URL names ('file:///tmp/my%20cat.png' -> '/tmp/my cat.png'), or InputError when it
    names a file on another machine."""
    from urllib.parse import urlsplit
    from urllib.request import url2pathname

    parts = urlsplit(url.strip())
    if parts.netloc not in ("", "localhost"):
        raise InputError(f"{name} is a file:// URL of a file on another machine ({parts.netloc!r}); mmkit reads "
                         "local files only: copy the file here and pass its path")
    return url2pathname(parts.path)


def _read_capped(read, max_bytes: int, name: str) -> bytes:
    """Everything `read(n)` gives until it ends, in chunks; InputError past max_bytes (an endless stream)."""
    chunks, total = [], 0
    while True:
        chunk = read(min(_CHUNK, max_bytes + 1 - total))
        if chunk is None:  # a non-blocking stream with nothing ready
            raise InputError(f"{name} had no data ready (a non-blocking stream); pass the bytes, or a file path")
        if isinstance(chunk, str):
            raise InputError(f"{name} was opened in text mode; open the image with open(path, 'rb')")
        if not isinstance(chunk, (bytes, bytearray, memoryview)):
            raise InputError(f"{name}.read() returned {type(chunk).__name__}, not bytes; pass a binary file object")
        if not chunk:
            return b"".join(chunks)
        chunks.append(bytes(chunk))
        total += len(chunk)
        if total > max_bytes:
            raise InputError(f"{name} gives more than the {mb(max_bytes)} limit; resize the image, or, "
                             f"{raise_limit('max_bytes')}")


def read_file_object(f, max_bytes: int) -> tuple[bytes, str]:
    """(what f.read() gives from its position, capped, a name for messages), or InputError naming f's state."""
    name = f"file object {getattr(f, 'name', '')!s}".strip()
    if getattr(f, "closed", False) is True:
        raise InputError(f"{name} is closed; open the file again (or pass its path)")
    if isinstance(f, io.TextIOBase):
        raise InputError(f"{name} was opened in text mode; open the image with open(path, 'rb')")
    try:
        fd = f.fileno()
    except Exception:  # BytesIO, a wrapper without a descriptor: nothing to check
        fd = None
    if isinstance(fd, int):
        try:
            mode = os.fstat(fd).st_mode
        except OSError:
            mode = None
        if mode is not None and (stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISDIR(mode)):
            raise InputError(f"{name} is {_kind(mode)}, not an image file; pass a regular file")
    start = _tell(f)
    try:
        data = _read_capped(f.read, max_bytes, name)
    except InputError:
        raise
    except Exception as e:  # write-only, closed underneath, a broken stream
        raise InputError(f"{name} could not be read ({type(e).__name__}: {e}); pass a file opened with "
                         "open(path, 'rb'), or the path") from None
    if not data and start:
        raise InputError(f"{name} is at its end (position {start}): nothing left to read; call .seek(0) first")
    return data, name


def _tell(f) -> int:
    try:
        return int(f.tell())
    except Exception:
        return 0
