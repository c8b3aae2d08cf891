"""load_image on good and bad input: every good kind gives an RGB image, every bad one an InputError."""
import io

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
    "nan_array": (np.full((4, 4, 3), np.nan), "NaN"),
    "float_0_255": (np.full((4, 4, 3), 200.0), "divide by 255"),
    "int_out_of_range": (np.full((4, 4), 1000, np.int32), "uint8"),
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
