"""The images of a collection job: listing a folder (recursively), and decoding one file fast and safely.

Listing uses only stat() (never open()), so a FIFO or a device among the files cannot hang it; every entry
with an image suffix is listed, whatever it really is, and becomes an error row later if it cannot be read.
Decoding reads the file with mmkit's capped, non-blocking reader, asks PIL for a JPEG *draft* at the model's
input size (the decoder scales by 1/2, 1/4 or 1/8 in the DCT, which is several times faster on photos, and
the result is never smaller than the size asked for), and hands the picture to `load_image`'s checks.
"""
from __future__ import annotations

import io
import os
import stat
import time
import warnings
from pathlib import Path

from ..annotations import IMAGE_SUFFIXES
from ..annotations.files import heic_hint
from ..cli_output import show_path
from ..data import load_image
from ..data.image_files import read_path
from ..errors import InputError, describe

MAX_BYTES = 256 * 2**20  # largest file read (the same cap load_image uses by default)


def source_paths(source) -> list[str]:
    """The absolute paths a job's source names (a folder, a file, or a list of them), sorted: what a journal records,
    so that resuming it on another folder is refused rather than mixing the two in one output."""
    return sorted({os.path.abspath(os.fspath(x)) for x in _items(source)})


def _items(source) -> list:
    """A job's source as a list: a folder or file alone, or the list given."""
    return [source] if isinstance(source, (str, os.PathLike)) else list(source or [])


def list_images(source, recursive: bool = True) -> tuple[list[str], list[str]]:
    """(absolute paths of the image files in `source`, sorted; the other files in its folders, passed over).

    Args:
        source: a folder, one file, or a list of files and folders.
        recursive: also look inside sub-folders (hidden ones, starting with ".", are skipped).
    """
    items = _items(source)
    if not items:
        raise InputError("no images given; pass a folder of images, a file, or a list of them")
    out: list[str] = []
    passed: list[str] = []  # the files in the folders without an image suffix
    for x in items:
        p = os.path.abspath(os.fspath(x))
        try:
            st = os.stat(p)
        except FileNotFoundError:
            raise InputError(f"{show_path(x)!r} does not exist; pass a folder of images or image files") from None
        except (OSError, ValueError) as e:
            raise InputError(f"{show_path(x)!r} cannot be read ({getattr(e, 'strerror', None) or e}); "
                             "pass a folder of images or image files") from None
        if not stat.S_ISDIR(st.st_mode):
            out.append(p)  # a file named explicitly is always tried (and reported if it is not an image)
            continue
        found, other = _walk(p, recursive)
        out += found
        passed += other
    if not out:
        raise InputError(f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) in {show_path(source)!r}"
                         + (heic_hint(passed) or ("" if recursive else
                                                   "; pass recursive=True (--recursive) to look in sub-folders")))
    return sorted(dict.fromkeys(out)), sorted(passed)


SKIPPED_FOLDERS = ("__MACOSX",)  # what a zip made on a Mac adds: '._name.png' files of metadata, not pictures


def _walk(root: str, recursive: bool, left_out: tuple[list, list] | None = None) -> tuple[list[str], list[str]]:
    """(the image files under root, the other files); hidden files and folders (starting with '.', e.g. macOS's
    '._name.png' metadata) and SKIPPED_FOLDERS are left out, as the annotation panel leaves them out.

    left_out: a (folders, hidden) pair of lists that receives what the walk did not read: the sub-folders of root
    (without recursive; not the hidden ones, nor SKIPPED_FOLDERS, which recursive does not read either) and the
    hidden pictures of the folders read (hidden_picture), in walking order."""
    found, other = [], []
    for top, dirs, files in os.walk(root, onerror=None):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIPPED_FOLDERS)
        if not recursive:
            if left_out is not None:
                left_out[0].extend(os.path.join(top, d) for d in dirs)
            dirs[:] = []
        for f in files:
            if f.startswith("."):
                if left_out is not None and hidden_picture(f):
                    left_out[1].append(os.path.join(top, f))
                continue
            (found if Path(f).suffix.lower() in IMAGE_SUFFIXES else other).append(os.path.join(top, f))
    return found, other


def hidden_picture(name: str) -> bool:
    """A hidden file named as a picture; not macOS's '._name.png' metadata files, which are not pictures."""
    return name.startswith(".") and not name.startswith("._") and Path(name).suffix.lower() in IMAGE_SUFFIXES


def input_size(m) -> int:
    """The side, in pixels, a model's image processor resizes to (the draft size); 0 when unknown."""
    proc = getattr(getattr(m, "processor", None), "image_processor", None)
    size = getattr(proc, "size", None)
    if isinstance(size, int):
        return size
    get = (lambda k: size.get(k)) if isinstance(size, dict) else (lambda k: getattr(size, k, None))  # dict or SizeDict
    side = get("shortest_edge") or min(get("height") or 0, get("width") or 0) or 0
    return int(side)


def decode(path: str, size: int = 0, draft: bool = True):
    """(RGB PIL image, decode seconds) of one file, or InputError saying why it cannot be read.

    Args:
        size: the model's input side; a JPEG is decoded at the smallest 1/2^k scale not below it.
        draft: False decodes every file at full size (what `mmkit.load_image` does).
    """
    t = time.perf_counter()
    data, name = read_path(path, MAX_BYTES)  # regular files only, non-blocking open: a FIFO cannot hang
    x = data
    if draft and size and data[:3] == b"\xff\xd8\xff":  # a JPEG: decode it at the model's scale
        from PIL import Image

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                im = Image.open(io.BytesIO(data), formats=["JPEG"])
                im.draft("RGB", (size, size))  # DCT scaling: each side >= size
            x = im
        except Exception:
            pass  # load_image names what is wrong with the file
    try:
        return load_image(x), time.perf_counter() - t
    except InputError as e:  # name the file, not the bytes or the PIL object it was read into
        raise InputError(str(e).replace(describe(x), name, 1)) from None


def file_stat(path: str) -> list[int] | None:
    """[size, mtime_ns] of a file (what tells a resume it changed, cheaply), or None when it cannot be stat'ed."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return [st.st_size, st.st_mtime_ns]


def reason(e: BaseException) -> str:
    """One line saying why a file could not be read (for the error column)."""
    return " ".join(str(e).split()) or type(e).__name__
