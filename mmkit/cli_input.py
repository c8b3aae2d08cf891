"""The command line's inputs: paths expanded to image files, and one image read, each failure an InputError
that names the file (FIFOs, devices and folders are refused before anything is opened)."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from .annotations import IMAGE_SUFFIXES  # the image files a folder contributes
from .annotations.files import heic_hint
from .cli_output import show_path, some_names
from .errors import InputError


def expand(paths: list[str], passed_over: list | None = None, recursive: bool = False) -> list[Path]:
    """Files as given and the image files inside folders (sorted); InputError for a missing path or empty folder.

    Only stat() is used (never open()), so a FIFO or a device among the paths cannot hang the listing; one with an
    image name inside a folder is listed, and refused by read_image with its reason, as when it is named.
    passed_over, when given, receives the files inside the folders that were left out (no image suffix).
    recursive: also list the sub-folders' images (hidden sub-folders, starting with ".", are left out).
    """
    from .jobs.source import _walk

    out: list[Path] = []
    for p in map(Path, paths):
        try:
            st = os.stat(p)
        except FileNotFoundError:
            raise InputError(f"{show_path(p)!r} does not exist; pass image files or folders of images") from None
        except (OSError, ValueError) as e:  # permission, a name too long, a NUL byte, a symlink loop, ...
            raise InputError(f"{show_path(p)!r} cannot be read ({reason(e)}); pass image files or folders") from None
        if not stat.S_ISDIR(st.st_mode):
            out.append(p)  # non-image files are reported one by one when they are read
            continue
        try:
            os.listdir(p)  # os.walk would pass over a folder it cannot list without a word
        except OSError as e:
            raise InputError(f"folder {show_path(p)!r} cannot be listed ({reason(e)})") from None
        found, other = (sorted(map(Path, names)) for names in _walk(os.fspath(p), recursive))
        if passed_over is not None:
            passed_over += other
        if not found:
            raise InputError(f"folder {show_path(p)!r} has no image files ({', '.join(sorted(IMAGE_SUFFIXES))})"
                             + (heic_hint(other) or ("" if recursive or not _has_folders(p) else
                                                     "; its sub-folders are read with --recursive")))
        out += found
    return out


def _has_folders(p: Path) -> bool:
    try:
        return any(e.is_dir() and not e.name.startswith(".") for e in os.scandir(p))
    except OSError:
        return False


def reason(e: BaseException) -> str:
    """The short reason of an OS error (its strerror), else its message or its type."""
    return getattr(e, "strerror", None) or str(e) or type(e).__name__


def read_image(path: Path):
    """The image of one file, or InputError; FIFOs, devices and folders are refused before anything is opened."""
    from .data import load_image

    try:
        st = os.stat(path)
    except (OSError, ValueError) as e:
        raise InputError(f"{show_path(path)!r} cannot be read ({reason(e)})") from None
    if not stat.S_ISREG(st.st_mode):
        kind = ("a FIFO" if stat.S_ISFIFO(st.st_mode) else "a folder" if stat.S_ISDIR(st.st_mode)
                else "a device or socket")
        raise InputError(f"{show_path(path)!r} is {kind}, not a regular file; pass image files")
    return load_image(path)


def animated_gif(path: Path) -> bool:
    """Whether a .gif file holds more than one frame (False for any other file, or one that cannot be read)."""
    if Path(path).suffix.lower() != ".gif":
        return False
    from PIL import Image

    try:
        with Image.open(path) as im:
            return bool(getattr(im, "is_animated", False))
    except Exception:  # unreadable: its own error line says so
        return False


def passed_over(paths: list) -> str:
    """What a listing passed over, in one line: "2 files in the folders passed over, not named as a picture
    mmkit reads (notes.txt, scan); name them .png, .jpg, ... or pass them one by one" (or how to read HEIC)."""
    n = len(paths)
    fix = heic_hint(paths) or ("; name them .png, .jpg, ... or pass them one by one" if n > 1
                               else "; name it .png, .jpg, ... or pass it by its name")
    return (f"{n} file{'s' * (n != 1)} in the folders passed over, not named as a picture mmkit reads "
            f"({some_names(paths)}){fix}")
