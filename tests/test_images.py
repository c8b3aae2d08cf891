"""load_image on good and bad input: every good kind gives an RGB image, every bad one an InputError.

Also: only regular files are read (FIFOs, devices and folders refused at once, never a hang), reads are
capped before decoding, the pixel limit covers headers, PIL images, arrays and tensors, every PIL mode and
numpy dtype / byte order converts by one rule (a PIL image and the equal array give the same pixels), and
file objects and tensors in odd states give InputError.
"""
import io
import os
import struct
import sys
import threading
import time
import zlib

import numpy as np
import pytest
from PIL import Image

import mmkit
from mmkit import InputError, load_image


def _png(im: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


RED = Image.new("RGB", (8, 6), (255, 0, 0))


def test_input_error_is_value_error():
    assert issubclass(InputError, ValueError)


GOOD = {
    "pil_rgb": lambda tmp: RED,
    "path_str": lambda tmp: _save(tmp / "a.png", RED),
    "pathlib": lambda tmp: tmp.joinpath("b.png") if _save(tmp / "b.png", RED) else None,
    "bytes_png": lambda tmp: _png(RED),
    "bytearray_jpeg": lambda tmp: bytearray(_png(RED, "JPEG", quality=95)),
    "file_object": lambda tmp: io.BytesIO(_png(RED)),
    "webp": lambda tmp: _png(RED, "WEBP", lossless=True),
    "bmp": lambda tmp: _png(RED, "BMP"),
    "tiff": lambda tmp: _png(RED, "TIFF"),
    "array_uint8_hwc": lambda tmp: np.asarray(RED),
    "array_float01": lambda tmp: np.asarray(RED) / 255.0,
    "array_rgba": lambda tmp: np.dstack([np.asarray(RED), np.full((6, 8), 255, np.uint8)]),
    "array_chw": lambda tmp: np.asarray(RED).transpose(2, 0, 1).copy(),
    "array_hwc1": lambda tmp: np.full((6, 8, 1), 128, np.uint8),
}


def _save(path, im, fmt=None, **kw):
    im.save(path, fmt, **kw)
    return str(path)


@pytest.mark.parametrize("kind", sorted(GOOD))
def test_good_inputs_give_rgb(kind, tmp_path):
    im = load_image(GOOD[kind](tmp_path))
    assert im.mode == "RGB" and im.size == (8, 6)
    if kind != "array_hwc1":
        r, g, b = im.getpixel((3, 3))
        assert r > 240 and g < 15 and b < 15  # still red (JPEG within tolerance)


def test_grey_array_becomes_grey_rgb():
    im = load_image(np.full((5, 7), 100, np.uint8))
    assert im.mode == "RGB" and im.size == (7, 5) and im.getpixel((0, 0)) == (100, 100, 100)


def test_torch_tensor_chw():
    torch = pytest.importorskip("torch")
    t = torch.zeros(3, 6, 8)
    t[0] = 1.0
    im = load_image(t)
    assert im.size == (8, 6) and im.getpixel((0, 0)) == (255, 0, 0)


def test_exif_orientation_is_applied():
    im = Image.new("RGB", (20, 10), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 CW to display
    data = _png(im, "JPEG", exif=exif.tobytes())
    out = load_image(data)
    assert out.size == (10, 20)


def test_palette_with_transparency_is_composited_on_white():
    im = Image.new("P", (4, 4), 0)
    im.putpalette([255, 0, 0] + [0, 0, 0] * 255)
    im.info["transparency"] = 0
    out = load_image(_png(im))
    assert out.mode == "RGB" and out.getpixel((0, 0)) == (255, 255, 255)


def test_la_and_rgba_alpha_composited_on_white():
    la = Image.new("LA", (4, 4), (0, 0))  # fully transparent black
    assert load_image(_png(la)).getpixel((1, 1)) == (255, 255, 255)
    rgba = Image.new("RGBA", (4, 4), (0, 0, 255, 255))
    assert load_image(rgba).getpixel((1, 1)) == (0, 0, 255)


def test_cmyk_converted():
    out = load_image(_png(Image.new("CMYK", (4, 4), (0, 255, 255, 0)), "JPEG"))
    r, g, b = out.getpixel((1, 1))
    assert out.mode == "RGB" and r > 200 and g < 60 and b < 60


def test_16bit_grey_scaled_to_8bit():
    a = np.full((4, 4), 65535, np.uint16)
    a[0, 0] = 0
    im = Image.fromarray(a)
    assert im.mode.startswith("I;16")
    out = load_image(_png(im))
    assert out.getpixel((1, 1)) == (255, 255, 255) and out.getpixel((0, 0)) == (0, 0, 0)


def test_animated_gif_gives_first_frame():
    frames = [Image.new("RGB", (4, 4), c) for c in ((255, 0, 0), (0, 255, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    r, g, b = load_image(buf.getvalue()).getpixel((1, 1))
    assert r > 200 and g < 50


def test_tiny_and_thin_images_work():
    assert load_image(Image.new("RGB", (1, 1))).size == (1, 1)
    assert load_image(_png(Image.new("RGB", (1, 5000)))).size == (1, 5000)


BAD = {
    "empty_bytes": (b"", "empty"),
    "html_as_jpg": (b"<!DOCTYPE html><html><body>404</body></html>", "HTML"),
    "text_bytes": (b"just some text, not a picture", "text"),
    "random_binary": (bytes(range(256)) * 4, "not an image"),
    "truncated_png": (_png(Image.effect_noise((64, 64), 50).convert("RGB"))[:300], "truncated"),
    "missing_file": ("/no/such/file.png", "no such file"),
    "url": ("https://example.com/cat.jpg", "URL"),
    "name_too_long": ("a" * 5000 + ".png", "could not be opened"),
    "nul_in_path": ("cat\x00.png", "NUL character"),
    "nan_array": (np.full((4, 4, 3), np.nan), "NaN"),
    "float_0_255": (np.full((4, 4, 3), 200.0), "divide by 255"),
    "int_out_of_range": (np.full((4, 4), 70000, np.int32), "uint8"),
    "negative_int": (np.full((4, 4), -1, np.int16), "uint8"),
    "two_channels": (np.zeros((4, 4, 2), np.uint8), "HxWx3"),
    "four_dims": (np.zeros((2, 4, 4, 3), np.uint8), "HxWx3"),
    "empty_array": (np.zeros((0, 4, 3), np.uint8), "empty"),
    "complex_dtype": (np.zeros((4, 4), np.complex64), "dtype"),
    "wrong_type": (12345, "cannot read an image"),
    "none": (None, "cannot read an image"),
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_inputs_raise_input_error(kind):
    x, words = BAD[kind]
    with pytest.raises(InputError) as e:
        load_image(x)
    assert words.lower() in str(e.value).lower()


def test_folder_and_text_file(tmp_path):
    with pytest.raises(InputError, match="folder"):
        load_image(tmp_path)
    p = tmp_path / "notes.jpg"
    p.write_text("<html>hello</html>")
    with pytest.raises(InputError, match="notes.jpg"):  # the message names the input
        load_image(p)


def test_decompression_bomb_refused_before_decoding():
    # a 30000x30000 PNG header: refused from the header alone, without allocating 2.7 GB
    big = _png(Image.new("1", (30000, 30000)))
    with pytest.raises(InputError, match="decompression|megapixels"):
        load_image(big)


def test_max_pixels_is_configurable():
    with pytest.raises(InputError, match="megapixels"):
        load_image(Image.new("RGB", (200, 200)), max_pixels=10_000)


def test_top_level_export():
    assert mmkit.load_image is load_image and mmkit.data.load_image is load_image


# -- only regular files, with no hang --------------------------------------------------------------

def _within(seconds: float, fn):
    """fn() in a thread: (its result or exception, seconds taken); fails the test if it has not returned in time."""
    out = {}

    def go():
        try:
            out["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed back to the test
            out["value"] = e

    t = threading.Thread(target=go, daemon=True)
    start = time.perf_counter()
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"still running after {seconds} s (a hang)"
    return out["value"], time.perf_counter() - start


@pytest.fixture
def odd_paths(tmp_path):
    paths = {"folder": (tmp_path, "folder"), "dev_zero": ("/dev/zero", "character device"),
             "dev_null": ("/dev/null", "character device")}
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "x.png")  # a FIFO named like an image, with no writer: open() would block
        paths["fifo"] = (tmp_path / "x.png", "FIFO")
        os.symlink("/dev/zero", tmp_path / "zero.png")
        paths["symlink_to_dev_zero"] = (tmp_path / "zero.png", "character device")
    return paths


@pytest.mark.skipif(sys.platform == "win32", reason="FIFOs and /dev/zero are POSIX")
def test_fifo_devices_and_folders_refused_at_once(odd_paths):
    for kind, (path, words) in odd_paths.items():
        err, took = _within(10, lambda p=path: load_image(p))
        assert isinstance(err, InputError) and words in str(err), (kind, err)
        assert os.path.basename(path) in str(err) and took < 5, (kind, took)


@pytest.mark.skipif(sys.platform == "win32", reason="FIFOs and /dev/zero are POSIX")
def test_task_functions_refuse_fifo_and_dev_zero(odd_paths):
    """Issue 28, reproduction 4: a FIFO named x.png hung load_image and caption forever; /dev/zero read unbounded."""
    m = mmkit.load_model("shapes-blip-caption")
    clip = mmkit.load_model("shapes-clip")
    for kind in ("fifo", "dev_zero"):
        path, words = odd_paths[kind]
        for fn in (lambda p: mmkit.caption(m, p), lambda p: mmkit.zero_shot(clip, [RED, p], ["a", "b"]),
                   lambda p: mmkit.attention_maps(clip, p, "red")):
            err, _ = _within(20, lambda f=fn, p=path: f(p))
            assert isinstance(err, InputError) and words in str(err), (kind, err)


def test_reads_are_capped_before_decoding(tmp_path):
    data = _png(RED)
    p = tmp_path / "red.png"
    p.write_bytes(data)
    for x in (data, p, io.BytesIO(data)):
        with pytest.raises(InputError, match="limit"):
            load_image(x, max_bytes=len(data) - 1)
        assert load_image(x.seek(0) or x if hasattr(x, "seek") else x, max_bytes=len(data)).size == (8, 6)

    class Endless:  # a stream that never ends: refused at the cap, not read for ever
        def read(self, n=-1):
            return b"\0" * max(n, 1)

    err, took = _within(10, lambda: load_image(Endless(), max_bytes=2**20))
    assert isinstance(err, InputError) and "1 MB limit" in str(err) and took < 5


def test_limits_are_stated_settable_and_checked(monkeypatch):
    from mmkit.data import images

    assert images.MAX_PIXELS == 64_000_000 and images.MAX_BYTES == 256 * 10**6
    monkeypatch.setattr(images, "MAX_PIXELS", 40)  # the module global is read at every call: tasks follow it
    with pytest.raises(InputError, match="over the 4e-05 MP limit"):
        load_image(RED)
    with pytest.raises(InputError, match="megapixels"):
        mmkit.embed_images(mmkit.load_model("shapes-clip"), RED)
    assert load_image(RED, max_pixels=48).size == (8, 6)
    for bad in (0, 2.5, "1000", -1):
        with pytest.raises(InputError, match="max_pixels"):
            load_image(RED, max_pixels=bad)
    with pytest.raises(InputError, match="max_bytes"):
        load_image(RED, max_bytes=0)


# -- small on disk, huge in pixels ------------------------------------------------------------------

def _png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _bmp_header(width: int, height: int) -> bytes:
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + 40 + 16, 0, 0, 54) + info + b"\0" * 16


def _gif_header(width: int, height: int) -> bytes:
    screen = struct.pack("<HHBBB", width, height, 0, 0, 0)
    frame = b"," + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00;"
    return b"GIF89a" + screen + frame


BOMBS = {  # a few hundred bytes each, declaring 10000 x 10000 = 100 megapixels (under PIL's own 179 MP refusal)
    "png": _png_header(10000, 10000),
    "bmp": _bmp_header(10000, 10000),
    "gif": _gif_header(10000, 10000),
    "ppm": b"P6 10000 10000 255\n" + b"\0" * 64,
    "tiff": None,  # built in the test: PIL writes the header of a 1-bit image cheaply
}


@pytest.mark.parametrize("fmt", sorted(BOMBS))
def test_small_on_disk_huge_in_pixels_refused_from_the_header(fmt):
    data = BOMBS[fmt]
    if data is None:
        buf = io.BytesIO()
        Image.new("1", (10000, 10000)).save(buf, "TIFF", compression="group4")  # 12 MB in memory, ~1 kB on disk
        data = buf.getvalue()
    assert len(data) < 20_000
    err, took = _within(10, lambda: load_image(data))
    assert isinstance(err, InputError), err
    # the pixel count in the message comes from the header check, which runs before a single pixel is decoded
    assert "10000x10000 = 100.0 megapixels, over the 64 MP limit" in str(err), err
    assert took < 5, took
    with pytest.raises(InputError, match="PIL's 179"):  # past PIL's own refusal, both limits are named
        load_image(_png_header(20000, 20000), max_pixels=10**9)


def test_pixel_limit_covers_arrays_tensors_and_pil_images():
    torch = pytest.importorskip("torch")
    view = np.broadcast_to(np.uint8(7), (9000, 9000, 3))  # 81 MP, a few bytes of memory
    with pytest.raises(InputError, match="megapixels"):
        load_image(view)
    with pytest.raises(InputError, match="megapixels"):
        load_image(torch.zeros(1, dtype=torch.uint8).expand(3, 9000, 9000))
    with pytest.raises(InputError, match="megapixels"):
        load_image(Image.new("1", (9000, 9000)))


def test_exotic_formats_are_not_decoded():
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"  # PIL would start Ghostscript
    with pytest.raises(InputError, match="not an image PIL can read"):
        load_image(eps)
    buf = io.BytesIO()
    RED.save(buf, "ICO")  # an icon holds images of other sizes than its header says
    with pytest.raises(InputError, match="not an image PIL can read"):
        load_image(buf.getvalue())


# -- one number rule: PIL images and the equal arrays -----------------------------------------------

RNG = np.random.default_rng(0)
ARRAYS = {
    "uint8": RNG.integers(0, 256, (5, 6)).astype(np.uint8),
    "uint8_rgb": RNG.integers(0, 256, (5, 6, 3)).astype(np.uint8),
    "uint8_rgba": RNG.integers(0, 256, (5, 6, 4)).astype(np.uint8),
    "bool": RNG.integers(0, 2, (5, 6)).astype(bool),
    "uint16_le": RNG.integers(0, 65536, (5, 6)).astype("<u2"),
    "uint16_be": RNG.integers(0, 65536, (5, 6)).astype(">u2"),
    "int16_be_8bit": RNG.integers(0, 256, (5, 6)).astype(">i2"),
    "int8": RNG.integers(0, 128, (5, 6)).astype(np.int8),
    "int32_8bit": RNG.integers(0, 256, (5, 6)).astype(np.int32),
    "int32_16bit": RNG.integers(0, 65536, (5, 6)).astype(np.int32),
    "int32_be": RNG.integers(0, 65536, (5, 6)).astype(">i4"),
    "uint32": RNG.integers(0, 256, (5, 6)).astype(np.uint32),
    "float32": RNG.random((5, 6)).astype(np.float32),
    "float32_be": RNG.random((5, 6)).astype(">f4"),
    "float64": RNG.random((5, 6)),
    "float32_ends": np.array([[0.0, 1.0, 0.5, 1 / 510, 0.998]], np.float32),
    "float32_out_of_range": RNG.random((5, 6)).astype(np.float32) * 3 - 1,
    "float32_nan": np.full((5, 6), np.nan, np.float32),
    "int32_negative": np.full((5, 6), -3, np.int32),
    "int32_too_large": np.full((5, 6), 70000, np.int32),
}


def _pixels(x):
    try:
        return np.asarray(load_image(x))
    except InputError as e:
        return str(e).split(" ", 1)[1] if " " in str(e) else str(e)  # the reason, without the input's own name


@pytest.mark.parametrize("case", sorted(ARRAYS))
def test_pil_image_and_equal_array_give_the_same_pixels(case, tmp_path):
    a = ARRAYS[case]
    im = Image.fromarray(a)  # PIL's own mode for the array (L, 1, I;16, I;16B, I, F, RGB, RGBA)
    from_array, from_pil = _pixels(a), _pixels(im)
    if isinstance(from_array, str) or isinstance(from_pil, str):  # refused: then both are, for the same reason
        assert isinstance(from_array, str) and isinstance(from_pil, str), (from_array, from_pil)
        assert from_array.split(";")[0].endswith(from_pil.split(";")[0].split(")")[-1]), (from_array, from_pil)
        return
    assert np.array_equal(from_array, from_pil), (case, im.mode)
    if im.mode in ("I", "F", "I;16", "I;16B"):  # and the same again after a round trip through a TIFF file
        im.save(tmp_path / "a.tif")
        assert np.array_equal(_pixels(tmp_path / "a.tif"), from_array), (case, Image.open(tmp_path / "a.tif").mode)


def test_the_number_rule():
    assert load_image(np.array([[0, 128, 255]], np.uint16)).getpixel((1, 0)) == (0, 0, 0)  # 16-bit: 128 is dark
    assert load_image(np.array([[0, 128, 65535]], "<u2")).getpixel((2, 0))[0] == 255
    assert load_image(np.array([[0, 128, 65535]], ">u2")).getpixel((2, 0))[0] == 255  # byte order does not matter
    assert load_image(np.array([[32896]], np.uint16)).getpixel((0, 0))[0] == 128  # round(32896 * 255 / 65535)
    assert load_image(np.array([[128]], np.int32)).getpixel((0, 0))[0] == 128  # 0..255: as it is
    assert load_image(np.array([[1000]], np.int32)).getpixel((0, 0))[0] == 4  # 256..65535: 16-bit
    assert load_image(np.array([[0.5]], ">f8")).getpixel((0, 0))[0] == 128


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "RGBA", "RGBX", "RGBa", "CMYK", "YCbCr", "LAB", "HSV", "I",
                                  "F", "LA", "La", "PA", "I;16", "I;16L", "I;16B", "I;16N"])
def test_every_pil_mode_gives_rgb_or_input_error(mode):
    try:
        im = Image.new(mode, (3, 2))
    except ValueError:
        pytest.skip(f"this Pillow cannot make mode {mode}")
    try:
        out = load_image(im)
    except InputError as e:
        assert mode in str(e)
        return
    assert out.mode == "RGB" and out.size == (3, 2)
    if mode not in ("LAB", "HSV", "YCbCr", "CMYK"):  # colour spaces whose zero is not black
        assert out.getpixel((0, 0)) in ((0, 0, 0), (255, 255, 255)), mode  # black, or transparent on white


def test_non_finite_values_refused_everywhere():
    torch = pytest.importorskip("torch")
    bad = [np.full((4, 4), np.nan), np.full((4, 4, 3), np.inf, np.float16), Image.fromarray(np.full((4, 4), np.nan,
           np.float32)), torch.full((3, 4, 4), float("-inf")), torch.full((3, 4, 4), float("nan")).bfloat16()]
    for x in bad:
        with pytest.raises(InputError, match="NaN or infinite"):
            load_image(x)


def test_odd_arrays_refused():
    for a, words in [(np.ma.masked_array(np.zeros((4, 4), np.uint8)), "masked"),
                     (np.zeros((4, 4), "datetime64[s]"), "dtype"), (np.zeros((4, 4), "U3"), "dtype"),
                     (np.zeros((4, 4), [("r", "u1")]), "dtype"), (np.array(5), "HxW"),
                     (np.full((4, 4), 2**63, np.uint64), "uint16")]:
        with pytest.raises(InputError, match=words):
            load_image(a)


# -- tensors of unusual layout, device and dtype ----------------------------------------------------

def test_tensors_of_every_layout_and_dtype():
    torch = pytest.importorskip("torch")
    base = torch.rand(3, 4, 5)
    expected = np.asarray(load_image(base))
    same = {
        "requires_grad": base.clone().requires_grad_(True),
        "batch_of_one": base[None],
        "channels_last": base[None].contiguous(memory_format=torch.channels_last),
        "non_contiguous": base.permute(1, 2, 0).contiguous().permute(2, 0, 1),
        "float64": base.double(),
    }
    for kind, t in same.items():
        assert np.array_equal(np.asarray(load_image(t)), expected), kind
    for kind, t in {"bfloat16": base.bfloat16(), "float16": base.half()}.items():  # rounded once more: within 1 step
        assert np.abs(np.asarray(load_image(t)).astype(int) - expected).max() <= 2, kind
    chw = torch.rand(3, 6, 5)
    assert np.array_equal(np.asarray(load_image(chw.permute(1, 2, 0))), np.asarray(load_image(chw)))  # (H, W, C)
    u8 = (base * 255).to(torch.uint8)
    assert np.array_equal(np.asarray(load_image(u8)), np.asarray(load_image(u8.numpy().transpose(1, 2, 0))))
    assert load_image(torch.ones(4, 5, dtype=torch.bool)).getpixel((0, 0)) == (255, 255, 255)
    refused = {
        "sparse": (base.to_sparse(), "layout"),
        "meta": (torch.zeros(3, 4, 5, device="meta"), "meta device"),
        "complex": (torch.zeros(3, 4, 5, dtype=torch.complex64), "complex"),
        "five_dims": (torch.zeros(1, 1, 3, 4, 5), "CxHxW"),
        "normalised": (base - 0.5, "normalis"),
    }
    for kind, (t, words) in refused.items():
        with pytest.raises(InputError, match=words):
            load_image(t)
    with pytest.raises(InputError, match="cannot read an image from Size"):
        load_image(torch.Size([3, 4, 5]))  # a torch object that is not a tensor


# -- file objects in odd states ---------------------------------------------------------------------

def test_file_objects_in_odd_states(tmp_path):
    data = _png(RED)
    p = tmp_path / "red.png"
    p.write_bytes(data)
    closed = open(p, "rb")
    closed.close()
    at_end = io.BytesIO(data)
    at_end.read()
    write_only = open(tmp_path / "out.bin", "wb")

    class NotReady:  # a non-blocking stream: read() gives None
        def read(self, n=-1):
            return None

    class Broken:
        def read(self, n=-1):
            raise OSError("device went away")

    class Lists:
        def read(self, n=-1):
            return [1, 2]

    cases = {"closed": (closed, "closed"), "at_end": (at_end, "seek(0)"), "text_mode": (open(p), "text mode"),
             "write_only": (write_only, "could not be read"), "not_ready": (NotReady(), "no data ready"),
             "broken": (Broken(), "device went away"), "lists": (Lists(), "returned list")}
    if os.path.exists("/dev/zero"):
        cases["dev_zero"] = (open("/dev/zero", "rb"), "character device")
    try:
        for kind, (f, words) in cases.items():
            err, _ = _within(10, lambda f=f: load_image(f))
            assert isinstance(err, InputError) and words in str(err), (kind, err)
    finally:
        for f, _ in cases.values():
            getattr(f, "close", lambda: None)()
    half = io.BytesIO(b"junk" + data)
    half.seek(4)  # a stream positioned at the image: read from there, as PIL does
    assert load_image(half).size == (8, 6)
    with open(p, "rb") as f:
        assert load_image(f).size == (8, 6)
    im = Image.open(io.BytesIO(data))
    im.close()
    with pytest.raises(InputError, match="closed"):
        load_image(im)


def test_a_file_of_numbers_out_of_range_is_told_to_be_resaved_not_divided(tmp_path):
    """'divide by 255' helps an array; a float or 32-bit TIFF from a scanner or a lab needs re-saving."""
    Image.fromarray(np.full((8, 8), 200.0, np.float32)).save(tmp_path / "f.tif")
    Image.fromarray(np.full((8, 8), -5, np.int32)).save(tmp_path / "i.tif")
    for name, mode in (("f.tif", "F"), ("i.tif", "I")):
        with pytest.raises(InputError) as e:
            load_image(tmp_path / name)
        assert f"mode-{mode} picture" in str(e.value) and "re-save it with 8 bits" in str(e.value)
        assert "divide" not in str(e.value) and "uint8" not in str(e.value)
    with pytest.raises(InputError, match="divide by 255"):  # an array still gets the array's advice
        load_image(np.full((8, 8), 200.0, np.float32))
