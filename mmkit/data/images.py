"""Robust image input: anything a user is likely to hand us becomes an RGB PIL image, or an InputError.

Accepted: a path (str or Path, or a file:// URL of a local file) to a regular file, bytes, a binary file object,
a PIL image, a numpy array (HxW, HxWx1, HxWx3, HxWx4; also CxHxW when unambiguous), or a torch tensor (CxHxW, HxW,
1xCxHxW, or HxWxC when C is 1, 3 or 4 and the first side is not).
Conversions: EXIF orientation applied; palette, alpha (composited on white), CMYK and YCbCr converted to
8-bit RGB; animated images give their first frame. Numbers follow one rule whatever their container, so a
PIL image and the equal numpy array give the same pixels:

    uint8 (PIL L, RGB, RGBA)      as they are
    bool (PIL 1)                  False -> 0, True -> 255
    uint16, any byte order (I;16) round(v * 255 / 65535)
    other integers (PIL I)        0..255 as they are, 256..65535 as 16-bit; negative or larger: refused
    floats (PIL F)                finite and in [0, 1]: round(v * 255); anything else: refused

Limits, stated and settable (module globals, read at every call, or per call as keywords):
MAX_BYTES caps what is read from a file or file object before any decoding; MAX_PIXELS caps width x height
as declared in a file's header (a picture small on disk but huge in pixels is refused before it is
decoded), of a PIL image, an array or a tensor. Only regular files are read: FIFOs, devices and folders
are refused without opening them for a blocking read.
"""
from __future__ import annotations

import io
import os
import re
import sys
import warnings
from collections.abc import ItemsView, KeysView, ValuesView

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from ..errors import InputError, describe
from .image_files import mb, raise_limit, read_file_object, read_path

MAX_PIXELS = 64_000_000  # width * height above which an image is refused (decompression-bomb guard, 8000x8000)
MAX_BYTES = 256 * 10**6  # bytes (256 MB) read at most from a file or file object, before decoding
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "DIB", "TIFF", "WEBP", "AVIF", "PPM", "TGA", "QOI")  # decoders tried


def load_image(x, *, max_pixels: int | None = None, max_bytes: int | None = None) -> Image.Image:
    """Return `x` as an RGB PIL image, or raise InputError naming the input and the fix.

    Args:
        x: path | bytes | binary file object | PIL.Image | np.ndarray (HxW[xC], see the module docstring)
            | torch.Tensor (CxHxW, HxW or 1xCxHxW).
        max_pixels: width*height above which an image is refused; default MAX_PIXELS.
        max_bytes: most bytes read from a file or file object; default MAX_BYTES.
    """
    from ..options import check_option

    max_pixels = check_option("max_pixels", MAX_PIXELS if max_pixels is None else max_pixels)
    max_bytes = check_option("max_bytes", MAX_BYTES if max_bytes is None else max_bytes)
    if isinstance(x, Image.Image):
        return _to_rgb(_first_frame(x), describe(x), max_pixels)
    if isinstance(x, np.ndarray):
        return _from_array(x, describe(x), max_pixels)
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        return _from_tensor(x, max_pixels)
    if isinstance(x, (bytes, bytearray, memoryview)):
        name = describe(x)
        if len(x) > max_bytes:
            raise InputError(f"{name} is over the {mb(max_bytes)} limit; resize the image, or, "
                             f"{raise_limit('max_bytes', len(x))}")
        return _from_bytes(bytes(x), name, max_pixels)
    if isinstance(x, (str, os.PathLike)):
        return _from_bytes(*read_path(x, max_bytes), max_pixels)
    if hasattr(x, "read"):
        return _from_bytes(*read_file_object(x, max_bytes), max_pixels)
    if several(x):
        raise InputError(f"load_image reads one image, and {describe(x)} holds several: load each "
                         "([mmkit.load_image(x) for x in images]), or pass a list to a task function (list(images))")
    raise InputError(
        f"cannot read an image from {describe(x)}; pass a file path, bytes, a PIL image, "
        "a numpy array (HxW or HxWx3) or a torch tensor (3xHxW)"
    )


def several(x) -> bool:
    """Whether x is an unordered collection or a stream of inputs (a set, a dict or one of its views, a generator,
    map(...), iter(...)) rather than one image; lists and tuples are not counted (the task functions take them)."""
    if isinstance(x, (set, frozenset, dict, KeysView, ValuesView, ItemsView)):
        return True
    return hasattr(x, "__next__") and hasattr(x, "__iter__") and not hasattr(x, "read")  # an iterator, no file


_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1")
# what load_image's errors and the folder listings (mmkit.annotations.files.heic_hint) say of HEIC/HEIF photos
HEIC_FIX = "which this Pillow cannot decode: export {it} as JPEG, or set the camera to 'Most Compatible'"
_VIDEO = (" (it is a video: `mmkit caption FILE` captions it in timed segments, and so does the video panel of "
          "notebook 14; for one picture, save a frame as PNG)")


def _sniff(data: bytes) -> str:
    """What a file PIL cannot open seems to be, from its first bytes, as a parenthesis for the message."""
    if data[4:8] == b"ftyp":  # the ISO media family: MP4, MOV, M4A, HEIC, AVIF
        brand = data[8:12].lower()
        if brand in _HEIF_BRANDS:
            return f" (it is a HEIC/HEIF photo, the format iPhones save by default, {HEIC_FIX.format(it='it')})"
        if brand.startswith(b"m4a") or brand.startswith(b"m4b"):
            return " (it is an audio file)"
        if not brand.startswith(b"avi"):  # a broken AVIF is left to the general message
            return _VIDEO
    if data.startswith(b"\x1a\x45\xdf\xa3") or (data[:4] == b"RIFF" and data[8:12] == b"AVI "):
        return _VIDEO  # Matroska / WebM, AVI
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE" or data[:3] == b"ID3":
        return " (it is an audio file)"
    if data.startswith(b"%PDF"):
        return " (it is a PDF document: export the page as PNG)"
    if data.startswith(b"PK\x03\x04"):
        return " (it is a ZIP archive: unpack it and pass the pictures, or the folder, instead)"
    head = data[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<svg")) or b"<html" in head:
        return " (it looks like an HTML/XML page, e.g. a web page saved under an image name)"
    if b"\x00" in data[:512]:  # NUL bytes decode as UTF-8, but text files do not hold them
        return ""
    try:
        data[:512].decode("utf-8")
        return " (it looks like a text file)"
    except UnicodeDecodeError:
        return ""


def _formats() -> list[str]:
    Image.init()
    return [f for f in FORMATS if f in Image.OPEN]


def _bomb(name: str, max_pixels: int, e: Exception) -> InputError:
    """PIL's own guard refused the header (over 2 x PIL.Image.MAX_IMAGE_PIXELS, whatever max_pixels says)."""
    size = re.search(r"\((\d+) pixels\)", str(e))  # PIL: "Image size (900000000 pixels) exceeds limit of ..."
    n = f"{int(size.group(1)):_}" if size else "N"
    return InputError(f"{name} is too large to decode safely (decompression bomb guard: mmkit's limit is "
                      f"{max_pixels / 1e6:g} megapixels, PIL's {2 * (Image.MAX_IMAGE_PIXELS or 0) / 1e6:.0f}); resize it "
                      f"first, or, if you trust the file, raise both limits: PIL.Image.MAX_IMAGE_PIXELS = {n} and "
                      f"mmkit.data.images.MAX_PIXELS = {n} (read by every call, the task functions' too)")


def _from_bytes(data: bytes, name: str, max_pixels: int) -> Image.Image:
    if len(data) == 0:
        raise InputError(f"{name} is empty (0 bytes); the file was not saved or uploaded completely")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit is checked next
            im = Image.open(io.BytesIO(data), formats=_formats())
    except UnidentifiedImageError:
        raise InputError(
            f"{name} is not an image PIL can read{_sniff(data)}; use a PNG, JPEG, GIF, BMP, TIFF or WebP file"
        ) from None
    except Image.DecompressionBombError as e:
        raise _bomb(name, max_pixels, e) from None
    except Exception as e:  # PIL raises OSError, SyntaxError, struct.error, ... on a broken header
        raise InputError(
            f"{name} could not be opened ({type(e).__name__}: {e}); the file is truncated or corrupt: "
            "re-save or re-upload it"
        ) from None
    return _to_rgb(_first_frame(im), name, max_pixels)


def _first_frame(im: Image.Image) -> Image.Image:
    try:
        if getattr(im, "is_animated", False):
            im.seek(0)
    except Exception as e:  # counting frames reads the file: a truncated animation fails here
        raise InputError(f"{describe(im)}: its frames could not be read ({e}); the file is truncated or corrupt: "
                         "re-save or re-upload it") from None
    return im


def megapixels(n: int, limit: int) -> str:
    """n pixels in megapixels, with the decimals that tell it from the limit (64.02, not 64.0, over a 64 MP limit)."""
    side = (n > limit) - (n < limit)
    for decimals in range(1, 7):  # n and limit are whole pixels: six decimals always tell them apart
        text = f"{n / 1e6:.{decimals}f}"
        if (float(text) > limit / 1e6) - (float(text) < limit / 1e6) == side:  # on the limit's same side as n
            return text
    return f"{n / 1e6:.6f}"


def _check_pixels(w: int, h: int, name: str, max_pixels: int) -> None:
    if w * h > max_pixels:
        raise InputError(
            f"{name} is {w}x{h} = {megapixels(w * h, max_pixels)} megapixels, over the {max_pixels / 1e6:g} MP limit "
            f"({w * h:,} pixels > {max_pixels:,}; a decompression-bomb guard); resize it first, or, "
            f"{raise_limit('max_pixels', w * h)}"
        )
    if w == 0 or h == 0:
        raise InputError(f"{name} has no pixels ({w}x{h}); pass a non-empty image")


def _to_rgb(im: Image.Image, name: str, max_pixels: int) -> Image.Image:
    _check_pixels(*im.size, name, max_pixels)  # the header's size: checked before a single pixel is decoded
    try:
        prev = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                im.load()
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = prev
    except Image.DecompressionBombError as e:
        raise _bomb(name, max_pixels, e) from None
    except Exception as e:  # OSError, SyntaxError, ValueError, struct.error, EOFError... from a broken file
        if "closed" in str(e):  # a PIL image after .close(), or read from a file object closed since
            raise InputError(f"{name} is closed ({e}); open the image again") from None
        raise InputError(
            f"{name} could not be decoded ({e}); the file is truncated or corrupt: re-save or re-upload it"
        ) from None
    _check_pixels(*im.size, name, max_pixels)  # a decoder may change the size on load
    try:
        im = ImageOps.exif_transpose(im)
    except Exception:  # a broken EXIF block should not lose the picture
        pass
    try:
        return _mode_to_rgb(im, name)
    except InputError:
        raise
    except Exception as e:  # an exotic mode PIL cannot convert
        raise InputError(f"{name} (mode {im.mode}) could not be converted to RGB ({e}); re-save it as PNG or JPEG") from None


_NUMERIC_MODES = ("I", "F", "I;16", "I;16L", "I;16B", "I;16N")  # read as numbers: the array rule applies


def _mode_to_rgb(im: Image.Image, name: str) -> Image.Image:
    mode = im.mode
    if mode == "RGB":
        return im.copy() if im.readonly else im
    if mode in _NUMERIC_MODES:
        fix = f"it is a mode-{mode} picture (numbers, not colours): re-save it with 8 bits per channel (PNG or JPEG)"
        return Image.fromarray(_to_uint8(np.asarray(im), name, fix)).convert("RGB")
    if mode == "P":
        im = im.convert("RGBA") if "transparency" in im.info else im.convert("RGB")
        mode = im.mode
    if mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode in ("RGB", "L") and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")  # L, 1, CMYK, YCbCr, RGBX


# -- arrays and tensors -------------------------------------------------------------------------------

def _to_uint8(a: np.ndarray, name: str, fix: str | None = None) -> np.ndarray:
    """The one number rule (module docstring): any bool, integer or float array -> uint8, or InputError.

    fix: the advice for numbers out of range when they did not come as an array (a file of PIL mode F or I),
    where "divide by 255" cannot be done.
    """
    if a.dtype.byteorder not in ("=", "|") and a.dtype.byteorder != sys.byteorder[0]:
        a = a.astype(a.dtype.newbyteorder("="))  # big-endian '>u2' means the same numbers as '<u2'
    if a.dtype == bool:
        return a.astype(np.uint8) * 255
    if np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise InputError(f"{name} contains NaN or infinite values; clean it (np.nan_to_num) first")
        lo, hi = float(a.min()), float(a.max())
        if lo < 0 or hi > 1:
            if fix:
                raise InputError(f"{name} has values in [{lo:g}, {hi:g}]; float images must be in [0, 1], and {fix}")
            if lo >= 0 and hi <= 255:
                raise InputError(f"{name} is a float array with values up to {hi:g}; float images must be in [0, 1]: "
                                 "divide by 255, or convert with .astype(np.uint8)")
            raise InputError(f"{name} has values in [{lo:g}, {hi:g}]; float images must be in [0, 1]"
                             f"{' (it looks normalised: undo the mean/std normalisation)' if lo < 0 else ''}")
        return (a.astype(np.float64) * 255 + 0.5).astype(np.uint8)
    if a.dtype == np.uint16:
        return ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)  # round(v * 255 / 65535)
    if np.issubdtype(a.dtype, np.integer):
        lo, hi = int(a.min()), int(a.max())
        if lo < 0 or hi > 65535:
            raise InputError(f"{name} has integer values in [{lo}, {hi}]; "
                             + (fix or "use uint8 in [0, 255], uint16 in [0, 65535] or float in [0, 1]"))
        if hi > 255:
            return ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)  # 16-bit values
        return a.astype(np.uint8)
    raise InputError(f"{name} has an unsupported dtype ({a.dtype}); use uint8 in [0, 255] or float in [0, 1]")


def _from_array(a: np.ndarray, name: str, max_pixels: int) -> Image.Image:
    if isinstance(a, np.ma.MaskedArray):
        raise InputError(f"{name} is a masked array; fill the masked pixels first (a.filled(0))")
    if a.size == 0:
        raise InputError(f"{name} is empty; pass an HxW or HxWx3 array with at least one pixel")
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[2] > 4:
        a = a.transpose(1, 2, 0)  # (C, H, W) -> (H, W, C): the torch layout, unambiguous here
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        raise InputError(
            f"{name} is not an image array; expected HxW (grey), HxWx3 (RGB) or HxWx4 (RGBA)"
        )
    _check_pixels(a.shape[1], a.shape[0], name, max_pixels)  # before any copy: a broadcast view can be huge
    im = Image.fromarray(np.ascontiguousarray(_to_uint8(a, name)))
    return _mode_to_rgb(im, name)


def _from_tensor(t, max_pixels: int) -> Image.Image:
    import torch

    name = describe(t)
    if t.is_meta:
        raise InputError(f"{name} is on the meta device and holds no values; pass a tensor with data")
    if t.layout != torch.strided or getattr(t, "is_nested", False):
        raise InputError(f"{name} has the {t.layout} layout; pass a dense tensor (t.to_dense())")
    shape = tuple(t.shape)
    if len(shape) == 4 and shape[0] == 1:
        shape = shape[1:]  # (1, C, H, W)
    channels_first = len(shape) == 3 and shape[0] in (1, 3, 4)  # torch's layout, preferred when ambiguous
    if channels_first:
        h, w = shape[1:]  # (C, H, W)
    elif len(shape) == 2 or (len(shape) == 3 and shape[2] in (1, 3, 4)):
        h, w = shape[:2]  # (H, W) or (H, W, C), e.g. torch.from_numpy(np.asarray(pil_image))
    else:
        raise InputError(f"{name} is not an image tensor; expected CxHxW (C = 1, 3 or 4), HxW or 1xCxHxW")
    _check_pixels(w, h, name, max_pixels)  # before copying it to the CPU
    try:
        a = t.detach()
        if a.is_quantized:
            a = a.dequantize()
        if a.is_complex():
            raise InputError(f"{name} has a complex dtype; use uint8 in [0, 255] or float in [0, 1]")
        a = a.cpu().resolve_conj().resolve_neg()
        a = (a.float() if a.dtype.is_floating_point and a.dtype != torch.float64 else a).numpy()
    except InputError:
        raise
    except Exception as e:  # dtypes numpy has no match for, exotic tensor subclasses
        raise InputError(f"{name} could not be read as numbers ({type(e).__name__}: {e}); pass "
                         "t.float().cpu() or a numpy array") from None
    a = a.reshape(shape)
    if channels_first:
        a = a.transpose(1, 2, 0)  # (C, H, W) -> (H, W, C)
    return _from_array(a, name, max_pixels)
