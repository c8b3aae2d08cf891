"""Robust image input: anything a user is likely to hand us becomes an RGB PIL image, or an InputError.

Accepted: a path (str or Path), bytes, a binary file object, a PIL image, a numpy array
(HxW, HxWx1, HxWx3, HxWx4; also CxHxW when unambiguous), or a torch tensor (CxHxW or HxW).
Conversions: EXIF orientation applied; palette, alpha (composited on white), CMYK, 16-bit and
float modes converted to 8-bit RGB; animated images give their first frame.
"""
from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from ..errors import InputError, describe

MAX_PIXELS = 64_000_000  # larger images are refused as decompression bombs (8000x8000)
MAX_ASPECT = 5  # models get thinner images padded with white to this width:height (or height:width) ratio
_URL_PREFIXES = ("http://", "https://", "ftp://", "s3://", "gs://")


def load_image(x, *, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Return `x` as an RGB PIL image, or raise InputError naming the input and the fix.

    Args:
        x: path | bytes | file object | PIL.Image | np.ndarray (HxW[xC], uint8 or float in [0, 1])
            | torch.Tensor (CxHxW or HxW).
        max_pixels: width*height above which an image is refused (decompression-bomb guard).
    """
    if isinstance(x, Image.Image):
        return _to_rgb(_first_frame(x), describe(x), max_pixels)
    if isinstance(x, np.ndarray):
        return _from_array(x, describe(x))
    if type(x).__module__.startswith("torch"):
        return _from_tensor(x)
    if isinstance(x, (bytes, bytearray, memoryview)):
        return _from_bytes(bytes(x), describe(x), max_pixels)
    if isinstance(x, (str, os.PathLike)):
        return _from_path(x, max_pixels)
    if hasattr(x, "read"):
        data = x.read()
        if isinstance(data, str):
            raise InputError(f"{describe(x)} was opened in text mode; open the image with open(path, 'rb')")
        return _from_bytes(bytes(data), f"file object {getattr(x, 'name', '')!s}".strip(), max_pixels)
    raise InputError(
        f"cannot read an image from {describe(x)}; pass a file path, bytes, a PIL image, "
        "a numpy array (HxW or HxWx3) or a torch tensor (3xHxW)"
    )


# ---------------------------------------------------------------------------------------------


def fit_aspect(im: Image.Image, max_ratio: float = MAX_ASPECT) -> Image.Image:
    """Pad a very thin image (e.g. 1x5000) with white, centred, to at most max_ratio : 1.

    Model processors resize the shorter side to a fixed size and cap the longer one, which would shrink
    the short side of a thin image to zero pixels; tasks and attention_maps call this before them.
    """
    w, h = im.size
    if max(w, h) <= max_ratio * min(w, h):
        return im
    size = (w, int(-(-w // max_ratio))) if w > h else (int(-(-h // max_ratio)), h)  # ceil: the short side grows
    canvas = Image.new("RGB", size, (255, 255, 255))
    canvas.paste(im, ((size[0] - w) // 2, (size[1] - h) // 2))
    return canvas


def _from_path(x, max_pixels: int) -> Image.Image:
    name = describe(x)
    s = os.fspath(x)
    if isinstance(s, str) and s.lower().startswith(_URL_PREFIXES):
        raise InputError(f"{name} is a URL; mmkit does not download images. Download it first and pass the file path")
    p = Path(s).expanduser()
    if not p.exists():
        raise InputError(f"{name}: no such file; check the path (relative paths start at {os.getcwd()!r})")
    if p.is_dir():
        raise InputError(f"{name} is a folder, not an image file; pass one image file, or a list of files")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise InputError(f"{name} could not be read ({e.strerror or e}); check its permissions") from None
    return _from_bytes(data, name, max_pixels)


def _sniff(data: bytes) -> str:
    head = data[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<svg")) or b"<html" in head:
        return " (it looks like an HTML/XML page, e.g. a web page saved under an image name)"
    try:
        data[:512].decode("utf-8")
        return " (it looks like a text file)"
    except UnicodeDecodeError:
        return ""


def _from_bytes(data: bytes, name: str, max_pixels: int) -> Image.Image:
    if len(data) == 0:
        raise InputError(f"{name} is empty (0 bytes); the file was not saved or uploaded completely")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise InputError(
            f"{name} is not an image PIL can read{_sniff(data)}; use a PNG, JPEG, GIF, BMP, TIFF or WebP file"
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(f"{name} is too large to decode safely (decompression bomb guard); resize it first") from None
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


def _to_rgb(im: Image.Image, name: str, max_pixels: int) -> Image.Image:
    w, h = im.size
    if w * h > max_pixels:
        raise InputError(
            f"{name} is {w}x{h} = {w * h / 1e6:.0f} megapixels, over the {max_pixels / 1e6:.0f} MP limit "
            "(a decompression-bomb guard); resize it first, or pass max_pixels= if you trust the file"
        )
    if w == 0 or h == 0:
        raise InputError(f"{name} has no pixels ({w}x{h}); pass a non-empty image")
    try:
        prev = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            im.load()
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = prev
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(f"{name} is too large to decode safely (decompression bomb guard); resize it first") from None
    except Exception as e:  # OSError, SyntaxError, ValueError, struct.error, EOFError... from a broken file
        raise InputError(
            f"{name} could not be decoded ({e}); the file is truncated or corrupt: re-save or re-upload it"
        ) from None
    try:
        im = ImageOps.exif_transpose(im)
    except Exception:  # a broken EXIF block should not lose the picture
        pass
    try:
        return _mode_to_rgb(im)
    except Exception as e:  # an exotic mode PIL cannot convert
        raise InputError(f"{name} (mode {im.mode}) could not be converted to RGB ({e}); re-save it as PNG or JPEG") from None


def _mode_to_rgb(im: Image.Image) -> Image.Image:
    mode = im.mode
    if mode == "RGB":
        return im.copy() if im.readonly else im
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        lo, hi = (0.0, 65535.0) if mode.startswith("I;16") else (float(a.min()), float(a.max()))
        if mode == "I" and a.min() >= 0 and a.max() <= 65535 and a.max() > 255:
            lo, hi = 0.0, 65535.0
        a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
        return Image.fromarray((np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8)).convert("RGB")
    if mode == "P":
        im = im.convert("RGBA") if "transparency" in im.info else im.convert("RGB")
        mode = im.mode
    if mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode in ("RGB", "L") and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV


def _from_array(a: np.ndarray, name: str) -> Image.Image:
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
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            raise InputError(f"{name} contains NaN or infinite values; clean it (np.nan_to_num) first")
        lo, hi = float(a.min()), float(a.max())
        if lo < 0 or hi > 1:
            if lo >= 0 and hi <= 255:
                raise InputError(
                    f"{name} is a float array with values up to {hi:g}; float images must be in [0, 1]: "
                    "divide by 255, or convert with .astype(np.uint8)"
                )
            raise InputError(f"{name} has values in [{lo:g}, {hi:g}]; float images must be in [0, 1]")
        a = (a * 255 + 0.5).astype(np.uint8)
    elif a.dtype == np.uint16:
        a = (a.astype(np.uint32) // 257).astype(np.uint8)  # 16-bit -> 8-bit
    elif np.issubdtype(a.dtype, np.integer):
        lo, hi = int(a.min()), int(a.max())
        if lo < 0 or hi > 255:
            raise InputError(
                f"{name} has integer values in [{lo}, {hi}]; use uint8 in [0, 255] or float in [0, 1]"
            )
        a = a.astype(np.uint8)
    else:
        raise InputError(f"{name} has an unsupported dtype; use uint8 in [0, 255] or float in [0, 1]")
    im = Image.fromarray(np.ascontiguousarray(a))
    return _mode_to_rgb(im)


def _from_tensor(t) -> Image.Image:
    name = describe(t)
    a = t.detach().cpu()
    if a.dtype.is_floating_point:
        a = a.float()
    a = a.numpy()
    if a.ndim == 4 and a.shape[0] == 1:
        a = a[0]  # (1, C, H, W) -> (C, H, W)
    if a.ndim == 3 and a.shape[0] in (1, 3, 4):
        a = a.transpose(1, 2, 0)  # (C, H, W) -> (H, W, C)
    elif a.ndim != 2:
        raise InputError(f"{name} is not an image tensor; expected CxHxW (C = 1, 3 or 4) or HxW")
    return _from_array(a, name)
