"""The command line's inputs: paths expanded to image files, and one image read, each failure an InputError
that names the file (FIFOs, devices and folders are refused before anything is opened)."""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from .annotations import IMAGE_SUFFIXES  # the image files a folder contributes
from .annotations.files import heic_hint
from .cli_output import show_path, some_names
from .errors import InputError


def expand(paths: list[str], passed_over: list | None = None, recursive: bool = False,
           left_out: LeftOut | None = None) -> list[Path]:
    """Files as given and the image files inside folders (sorted); InputError when no path given can be found, or
    for an empty folder.

    A path that cannot be found among others that can is listed as given: read_image refuses it with its reason,
    in its own error record, as it refuses a broken file inside a folder, and the others are read.
    Only stat() is used (never open()), so a FIFO or a device among the paths cannot hang the listing; one with an
    image name inside a folder is listed, and refused by read_image with its reason, as when it is named.
    passed_over, when given, receives the files inside the folders that were left out (no image suffix).
    left_out, when given, receives the sub-folders not read (without recursive) and the hidden pictures left out.
    recursive: also list the sub-folders' images (hidden sub-folders, starting with ".", are left out).
    """
    from .jobs.source import _walk

    out: list[Path] = []
    lost: list[tuple[Path, BaseException]] = []  # the paths stat() refused, with its error
    for p in map(Path, paths):
        try:
            st = os.stat(p)
        except (OSError, ValueError) as e:  # missing, permission, a name too long, a NUL byte, a symlink loop, ...
            lost.append((p, e))
            out.append(p)  # read_image says why, in its own error record
            continue
        if not stat.S_ISDIR(st.st_mode):
            out.append(p)  # non-image files are reported one by one when they are read
            continue
        try:
            os.listdir(p)  # os.walk would pass over a folder it cannot list without a word
        except OSError as e:
            raise InputError(f"folder {show_path(p)!r} cannot be listed ({reason(e)})") from None
        left: tuple[list, list] = ([], [])  # the sub-folders not read (without recursive), the hidden pictures
        found, other = (sorted(map(Path, names)) for names in _walk(os.fspath(p), recursive, left))
        folders, hidden = (sorted(map(Path, names)) for names in left)
        if passed_over is not None:
            passed_over += other
        if left_out is not None:
            left_out.folders += folders
            left_out.hidden += hidden
        if not found:
            raise InputError(_no_images(p, other, folders, hidden))
        out += found
    if lost and len(lost) == len(paths):
        raise InputError(_none_found(lost))
    return out


def _no_images(folder: Path, other: list, folders: list, hidden: list) -> str:
    """Why a folder gave no image: the suffixes read, then the likeliest fix (HEIC, sub-folders, hidden files)."""
    fix = heic_hint(other)
    if not fix and folders:
        fix = "; its sub-folders are read with --recursive"
    if not fix and hidden:
        fix = f"; its hidden files ({some_names(hidden)}) are read only when passed by name"
    return f"folder {show_path(folder)!r} has no image files ({', '.join(sorted(IMAGE_SUFFIXES))}){fix or ''}"


def _none_found(lost: list) -> str:
    """The error when not one path given can be found: each named (the first 3) with its reason."""
    why = [_not_found(p) if isinstance(e, FileNotFoundError) else f"{show_path(p)!r} cannot be read ({reason(e)})"
           for p, e in lost[:3]]
    more = f" and {len(lost) - 3} more" if len(lost) > 3 else ""
    found = "exists" if all(isinstance(e, FileNotFoundError) for _, e in lost) else "can be read"
    head = "" if len(lost) == 1 else f"none of the {len(lost)} paths given {found}: "
    return f"{head}{'; '.join(why)}{more}; pass image files or folders of images"


def _not_found(path: Path) -> str:
    """What a path stat() cannot find is: a broken link (naming its target) or a name that does not exist."""
    try:
        target = os.readlink(path)
    except (OSError, ValueError):
        return f"{show_path(path)!r} does not exist (check the name)"
    return f"{show_path(path)!r} is a broken link: its target {show_path(target)!r} does not exist"


@dataclass
class LeftOut:
    """What folders held that the listing did not read, besides files not named as pictures (passed_over)."""

    folders: list = field(default_factory=list)  # sub-folders, without --recursive
    hidden: list = field(default_factory=list)  # hidden pictures ('.name.png'): left out as the panels leave them

    def line(self) -> str | None:
        """One line naming them: "passed over 1 sub-folder (sub), read with --recursive, and 1 hidden file
        (.x.png), read only when passed by name"; None when nothing was left out."""
        parts = []
        if self.folders:
            parts.append(f"{_count(self.folders, 'sub-folder')} ({some_names(self.folders)}), read with --recursive")
        if self.hidden:
            parts.append(f"{_count(self.hidden, 'hidden file')} ({some_names(self.hidden)}), read only when passed "
                         "by name")
        return "passed over " + ", and ".join(parts) if parts else None


def _count(items: list, noun: str) -> str:
    return f"{len(items)} {noun}{'s' * (len(items) != 1)}"


def reason(e: BaseException) -> str:
    """The short reason of an OS error (its strerror), else its message or its type."""
    return getattr(e, "strerror", None) or str(e) or type(e).__name__


def read_image(path: Path):
    """The image of one file, or InputError; FIFOs, devices and folders are refused before anything is opened."""
    from .data import load_image

    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError(_not_found(path)) from None
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
