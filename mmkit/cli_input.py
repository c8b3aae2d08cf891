"""The command line's inputs: paths expanded to image files, and one image read, each failure an InputError
that names the file (FIFOs, devices and folders are refused before anything is opened)."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from .annotations import IMAGE_SUFFIXES  # the image files a folder contributes
from .annotations.files import heic_hint
from .cli_output import show_path
from .errors import InputError


def expand(paths: list[str], passed_over: list | None = None) -> list[Path]:
    """Files as given and the image files inside folders (sorted); InputError for a missing path or empty folder.

    Only stat() is used (never open()), so a FIFO or a device among the paths cannot hang the listing.
    passed_over, when given, receives the files inside the folders that were left out (no image suffix).
    """
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
            files = sorted(f for f in p.iterdir() if f.is_file())
        except OSError as e:
            raise InputError(f"folder {show_path(p)!r} cannot be listed ({reason(e)})") from None
        found = [f for f in files if f.suffix.lower() in IMAGE_SUFFIXES]
        if passed_over is not None:
            passed_over += [f for f in files if f.suffix.lower() not in IMAGE_SUFFIXES]
        if not found:
            raise InputError(f"folder {show_path(p)!r} has no image files ({', '.join(sorted(IMAGE_SUFFIXES))})"
                             + heic_hint(files))
        out += found
    return out


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
