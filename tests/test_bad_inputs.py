"""Every public entry point against the inputs students really give it.

Images (truncated, empty, HTML named .jpg, 1x1, 1x5000, a 30000x30000 bomb, CMYK, 16-bit grey, LA,
palette with transparency, EXIF-rotated, animated GIF, WebP), texts (empty, whitespace, 20 kB, emoji,
RTL, NUL bytes, broken unicode), label lists, list lengths and wrong-family models go through
load_image, each task function, attention_maps, the CLI and the panels. Each case either works (with
the documented conversion) or raises mmkit.InputError whose message names the problem; a panel shows the
error inside itself and then handles the next input. Hypothesis adds random texts, arrays and bytes.
Tiny random-init models keep it fast (one torch thread).
"""
import html
import io
import struct
import warnings
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

import mmkit
from mmkit.cli import main as cli_main
from mmkit.errors import InputError

pytestmark = pytest.mark.usefixtures("one_thread")
HYPO = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


# -- images ---------------------------------------------------------------------------------------

def encode(im: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR claiming width x height, with one tiny IDAT: a decompression bomb."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit grey
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def exif_rotated() -> bytes:
    im = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees to display
    return encode(im, "JPEG", exif=exif.tobytes())


def palette_transparent() -> bytes:
    im = Image.new("P", (8, 8), 0)
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    im.putpixel((0, 0), 1)
    return encode(im, "PNG", transparency=0)  # index 0 (black) is transparent


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    return buf.getvalue()


def tiny_mp4() -> bytes:
    """Five frames of MPEG-4 video in an MP4 container (PyAV)."""
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("mpeg4", rate=5)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for _ in range(5):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")))
        out.mux(stream.encode())
    return buf.getvalue()


def tiny_zip() -> bytes:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a.png", encode(Image.new("RGB", (4, 4))))
    return buf.getvalue()


NOISE = Image.effect_noise((64, 64), 60).convert("RGB")
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)  # an iPhone photo's first bytes

# name -> (file name, bytes, expected): expected is a check of the loaded RGB image, or words of the error
IMAGES = {
    "truncated_jpeg": ("cut.jpg", encode(NOISE, "JPEG")[:700], "truncated"),
    "truncated_header": ("cut2.jpg", encode(NOISE, "JPEG")[:120], "truncated"),
    "zero_bytes": ("empty.png", b"", "empty"),
    "html_as_jpg": ("page.jpg", b"<!DOCTYPE html><html><head><title>404</title></head></html>", "HTML"),
    "1x1": ("dot.png", encode(Image.new("RGB", (1, 1), (9, 9, 9))), lambda im: im.size == (1, 1)),
    "1x5000": ("line.png", encode(Image.new("RGB", (1, 5000), (0, 255, 0))), lambda im: im.size == (1, 5000)),
    "bomb_30000": ("bomb.png", png_header(30000, 30000), "decompression"),
    "cmyk": ("cmyk.jpg", encode(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG"),
             lambda im: im.getpixel((8, 8))[0] > 200 and im.getpixel((8, 8))[1] < 60),
    "grey_16bit": ("deep.png", encode(Image.fromarray(np.full((16, 16), 65535, np.uint16))),
                   lambda im: im.getpixel((3, 3)) == (255, 255, 255)),
    "LA": ("la.png", encode(Image.new("LA", (8, 8), (0, 0))), lambda im: im.getpixel((1, 1)) == (255, 255, 255)),
    "palette_transparency": ("pal.png", palette_transparent(),
                             lambda im: im.getpixel((1, 1)) == (255, 255, 255) and im.getpixel((0, 0)) == (255, 0, 0)),
    "exif_rotated": ("rot.jpg", exif_rotated(), lambda im: im.size == (20, 40)),
    "animated_gif": ("anim.gif", animated_gif(), lambda im: im.getpixel((4, 4))[0] > 200 > im.getpixel((4, 4))[2]),
    "webp": ("pic.webp", encode(Image.new("RGB", (24, 12), (0, 0, 255)), "WEBP"), lambda im: im.size == (24, 12)),
    "heic": ("photo.heic", HEIC, "HEIC/HEIF photo"),
    "video_named_png": ("clip.png", tiny_mp4(), "it is a video"),
    "pdf": ("scan.jpg", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + bytes(40), "PDF document"),
    "zip": ("pictures.png", tiny_zip(), "ZIP archive"),
}


def test_binary_bytes_are_not_called_a_text_file():
    """NUL bytes decode as UTF-8, so a file of zeros and ASCII (a broken AVIF, a raw dump) read as 'text'."""
    with pytest.raises(InputError) as e:
        mmkit.load_image(b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1" + bytes(60))
    assert "text file" not in str(e.value) and "None" not in str(e.value)
    with pytest.raises(InputError, match="text file"):
        mmkit.load_image(b"just some notes\n")


@pytest.fixture(scope="module")
def models(model_dirs):
    return {f: mmkit.load_model(model_dirs(f)) for f in ("clip", "blip-caption", "blip-vqa", "vilt-vqa", "blip-itm")}


@pytest.fixture(scope="module")
def good():
    return Image.new("RGB", (32, 32), (200, 30, 30))


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad_images")
    for name, data, _ in IMAGES.values():
        (d / name).write_bytes(data)
    return d


def image_entry_points(models, good):
    """entry point name -> function of an image path running it."""
    return {
        "load_image": lambda x: mmkit.load_image(x),
        "caption": lambda x: mmkit.caption(models["blip-caption"], x, max_new_tokens=3),
        "answer_blip": lambda x: mmkit.answer(models["blip-vqa"], x, "what color?", max_new_tokens=3),
        "answer_vilt": lambda x: mmkit.answer(models["vilt-vqa"], [x, good], "what color?"),
        "zero_shot": lambda x: mmkit.zero_shot(models["clip"], [good, x], ["red", "blue"]),
        "embed_images": lambda x: mmkit.embed_images(models["clip"], x),
        "match": lambda x: mmkit.match(models["blip-itm"], x, "a red circle"),
        "retrieve": lambda x: mmkit.retrieve(models["clip"], "a red circle", [good, x], k=1),
        "attention_maps": lambda x: mmkit.attention_maps(models["clip"], x, "red circle"),
    }


ENTRY_POINTS = ("load_image", "caption", "answer_blip", "answer_vilt", "zero_shot", "embed_images", "match",
                "retrieve", "attention_maps")


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("case", list(IMAGES))
def test_image_case(case, entry, models, good, image_dir):
    name, _, expected = IMAGES[case]
    fn = image_entry_points(models, good)[entry]
    if isinstance(expected, str):
        with pytest.raises(InputError) as e:
            fn(image_dir / name)
        assert expected.lower() in str(e.value).lower() and name in str(e.value)  # names the problem and the file
    else:
        out = fn(image_dir / name)
        assert out is not None
        if entry == "load_image":
            assert out.mode == "RGB" and expected(out), f"{case}: conversion not as documented"


@pytest.mark.parametrize("case", list(IMAGES))
def test_image_case_from_bytes(case):
    _, data, expected = IMAGES[case]
    if isinstance(expected, str):
        with pytest.raises(InputError, match=f"(?i){expected}"):
            mmkit.load_image(data)
    else:
        assert expected(mmkit.load_image(data))


@pytest.mark.parametrize("case", list(IMAGES))
def test_image_case_cli(case, image_dir, model_dirs, capsys):
    name, _, expected = IMAGES[case]
    code = cli_main(["caption", str(image_dir / name), "--model", model_dirs("blip-caption"), "--max-tokens", "3"])
    out, err = capsys.readouterr()
    if isinstance(expected, str):
        assert code == 2 and out == "" and expected.lower() in err.lower() and name in err
        assert "Traceback" not in err
    else:
        assert code == 0 and out.startswith(str(image_dir / name) + "\t"), err


@pytest.fixture(scope="module")
def caption_panel(models):
    from widgets import CaptionPanel

    return CaptionPanel(models["blip-caption"], background=False)


@pytest.mark.parametrize("case", list(IMAGES))
def test_image_case_panel(case, caption_panel, good):
    from widgets.picker import simulate_upload

    p = caption_panel
    name, data, expected = IMAGES[case]
    simulate_upload(p.picker.upload, name, data)
    if isinstance(expected, str):
        assert expected.lower() in p.picker.error.value.lower() and p.picker.label != f"upload: {name}"
        assert repr(name) in html.unescape(p.picker.error.value)  # the upload's name, not "bytes input (N bytes)"
    else:
        assert p.picker.error.value == "" and p.picker.label == f"upload: {name}"
    before = p.result
    p.caption()
    if isinstance(expected, str):  # no picture now: the panel says so rather than captioning the previous one
        assert "could not be used" in p.error.value and p.result == before and p.picker.image is None
    else:
        assert p.error.value == "" and isinstance(p.result, str)
    simulate_upload(p.picker.upload, "good.png", encode(good))  # and takes the next input
    assert p.picker.error.value == "" and p.picker.label == "upload: good.png"


# -- arrays -----------------------------------------------------------------------------------------

ARRAYS = {
    "nan": (np.full((8, 8, 3), np.nan, np.float32), "NaN"),
    "inf": (np.full((8, 8), np.inf), "NaN or infinite"),
    "float_0_255": (np.full((8, 8, 3), 128.0), "divide by 255"),
    "int64_out_of_range": (np.full((8, 8, 3), -5, np.int64), "uint8"),
    "complex": (np.zeros((8, 8, 3), np.complex64), "dtype"),
    "object": (np.empty((8, 8, 3), object), "dtype"),
    "two_channels": (np.zeros((8, 8, 2), np.uint8), "HxWx3"),
    "five_channels": (np.zeros((8, 8, 5), np.uint8), "HxWx3"),
    "batch_of_two": (np.zeros((2, 8, 8, 3), np.uint8), "HxWx3"),
    "one_dim": (np.zeros(64, np.uint8), "HxWx3"),
    "empty": (np.zeros((0, 8, 3), np.uint8), "empty"),
    "float_ok": (np.full((8, 8, 3), 0.5, np.float32), lambda im: im.getpixel((0, 0)) == (128, 128, 128)),
    "uint16_ok": (np.full((8, 8, 3), 65535, np.uint16), lambda im: im.getpixel((0, 0)) == (255, 255, 255)),
    "bool_ok": (np.ones((8, 8), bool), lambda im: im.getpixel((0, 0)) == (255, 255, 255)),
    "chw_ok": (np.zeros((3, 8, 9), np.uint8), lambda im: im.size == (9, 8)),
    "rgba_ok": (np.zeros((8, 8, 4), np.uint8), lambda im: im.getpixel((0, 0)) == (255, 255, 255)),
}


@pytest.mark.parametrize("case", list(ARRAYS))
def test_array_case(case, models):
    a, expected = ARRAYS[case]
    if isinstance(expected, str):
        with pytest.raises(InputError, match=f"(?i){expected}") as e:
            mmkit.embed_images(models["clip"], a)
        assert "ndarray" in str(e.value)  # names the input
    else:
        assert expected(mmkit.load_image(a))
        assert mmkit.embed_images(models["clip"], a).shape[0] == 1


DTYPES = st.sampled_from([np.uint8, np.uint16, np.int8, np.int32, np.int64, np.float16, np.float32, np.float64,
                          np.bool_, np.complex64])


@HYPO
@given(a=hnp.arrays(DTYPES, hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=6)))
def test_any_array_gives_rgb_or_input_error(a):
    try:
        im = mmkit.load_image(a)
    except InputError as e:
        assert str(e)
        return
    assert im.mode == "RGB" and im.size[0] * im.size[1] > 0


MAGICS = [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"GIF89a", b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"BM", b"II*\x00"]


@HYPO
@given(head=st.sampled_from(MAGICS), body=st.binary(max_size=300))
def test_any_bytes_give_rgb_or_input_error(head, body):
    try:
        im = mmkit.load_image(head + body)
    except InputError:
        return
    assert im.mode == "RGB"


@HYPO
@given(cut=st.integers(min_value=0, max_value=2000), fmt=st.sampled_from(["PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF"]))
def test_any_truncation_gives_rgb_or_input_error(cut, fmt):
    data = encode(NOISE, fmt)
    try:
        im = mmkit.load_image(data[: cut % (len(data) + 1)])
    except InputError:
        return
    assert im.mode == "RGB"


# -- text -------------------------------------------------------------------------------------------

LONG = "a red circle left of a blue square " * 600  # ~21 kB
TEXTS = {
    "empty": ("", "empty"),
    "whitespace": (" \t\n  ", "empty"),
    "only_nul": ("\x00\x00", "empty"),
    "20kB": (LONG, "truncated-warning"),
    "emoji": ("what color is the 🔴 circle? 🎉👍🏽", "ok"),
    "rtl": ("ما لون الدائرة؟ מה הצבע", "ok"),
    "nul_inside": ("red\x00 circle", "ok"),
    "lone_surrogate": ("red \ud83d circle", "ok"),
}


def text_entry_points(models, good):
    return {
        "answer_blip": lambda t: mmkit.answer(models["blip-vqa"], good, t, max_new_tokens=3),
        "answer_vilt": lambda t: mmkit.answer(models["vilt-vqa"], good, t),
        "zero_shot_label": lambda t: mmkit.zero_shot(models["clip"], good, [t, "blue square"]),
        "embed_texts": lambda t: mmkit.embed_texts(models["clip"], t),
        "match": lambda t: mmkit.match(models["blip-itm"], good, [t, "x"]),
        "retrieve": lambda t: mmkit.retrieve(models["clip"], t, [good], k=1),
        "attention_clip": lambda t: mmkit.attention_maps(models["clip"], good, t),
        "attention_vilt": lambda t: mmkit.attention_maps(models["vilt-vqa"], good, t),
        "attention_blip": lambda t: mmkit.attention_maps(models["blip-caption"], good, t),
    }


@pytest.mark.parametrize("entry", ["answer_blip", "answer_vilt", "zero_shot_label", "embed_texts", "match",
                                   "retrieve", "attention_clip", "attention_vilt", "attention_blip"])
@pytest.mark.parametrize("case", list(TEXTS))
def test_text_case(case, entry, models, good):
    text, expected = TEXTS[case]
    fn = text_entry_points(models, good)[entry]
    if expected == "empty":
        with pytest.raises(InputError, match="empty"):
            fn(text)
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(text)
    assert out is not None
    if expected == "truncated-warning":  # cut to the model's limit, with a warning (not an index error)
        assert any("truncated" in str(w.message) for w in caught), [str(w.message) for w in caught]


@pytest.mark.parametrize("case", list(TEXTS))
def test_caption_prompt_case(case, models, good):
    text, expected = TEXTS[case]
    if expected in ("empty", "truncated-warning"):  # a prompt that fills the model leaves no room to write
        with pytest.raises(InputError, match="empty|limit"):
            mmkit.caption(models["blip-caption"], good, prompt=text, max_new_tokens=3)
    else:
        assert isinstance(mmkit.caption(models["blip-caption"], good, prompt=text, max_new_tokens=3), str)


@pytest.mark.parametrize("case", list(TEXTS))
def test_text_case_cli(case, image_dir, model_dirs, capsys):
    text, expected = TEXTS[case]
    code = cli_main(["answer", str(image_dir / "dot.png"), "-q", text, "--model", model_dirs("vilt-vqa")])
    out, err = capsys.readouterr()
    if expected == "empty":
        assert code == 2 and "empty" in err and "Traceback" not in err
    else:
        assert code == 0 and out.count("\n") == 1, err


@pytest.fixture(scope="module")
def vqa_panel(models):
    from widgets import VQAPanel

    return VQAPanel(models["vilt-vqa"], background=False)


@pytest.mark.parametrize("case", list(TEXTS))
def test_text_case_panel(case, vqa_panel):
    text, expected = TEXTS[case]
    p = vqa_panel
    p.result = None
    p.ask(text)
    if expected == "empty":
        assert "empty" in p.error.value and p.result is None
    else:
        assert p.error.value == "" and isinstance(p.result, str)
    p.ask("what color is the circle?")  # usable for the next input
    assert p.error.value == "" and isinstance(p.result, str)


@HYPO
@given(text=st.text(max_size=120))
def test_any_text_works_or_is_empty(text, models, good):
    for fn in (lambda t: mmkit.embed_texts(models["clip"], t), lambda t: mmkit.answer(models["vilt-vqa"], good, t),
               lambda t: mmkit.attention_maps(models["clip"], good, t)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fn(text)
        except InputError as e:
            assert "empty" in str(e) or "tokens" in str(e), str(e)


# -- lists, lengths, models ------------------------------------------------------------------------

def list_cases(models, good):
    clip, vqa, itm = models["clip"], models["blip-vqa"], models["blip-itm"]
    return {
        "labels_empty": (lambda: mmkit.zero_shot(clip, good, []), "at least two"),
        "labels_one": (lambda: mmkit.zero_shot(clip, good, ["cat"]), "at least two"),
        "labels_string": (lambda: mmkit.zero_shot(clip, good, "cat,dog"), "list"),
        "labels_duplicate": (lambda: mmkit.zero_shot(clip, good, ["cat", "dog", "cat"]), "duplicate"),
        "labels_duplicate_after_strip": (lambda: mmkit.zero_shot(clip, good, ["cat ", " cat"]), "duplicate"),
        "labels_not_text": (lambda: mmkit.zero_shot(clip, good, ["cat", None]), "must be a string"),
        "template_without_braces": (lambda: mmkit.zero_shot(clip, good, ["a", "b"], templates=["a photo"]), "{}"),
        "answer_lengths": (lambda: mmkit.answer(vqa, [good] * 2, ["a?"] * 3), "2 images but 3 questions"),
        "match_paired_lengths": (lambda: mmkit.match(itm, [good] * 3, ["a", "b"], paired=True), "as many images"),
        "images_empty": (lambda: mmkit.caption(models["blip-caption"], []), "empty"),
        "texts_empty": (lambda: mmkit.embed_texts(clip, []), "non-empty list"),
        "retrieve_gallery_empty": (lambda: mmkit.retrieve(clip, "a", []), "gallery"),
        "retrieve_mixed_queries": (lambda: mmkit.retrieve(clip, ["a", good], [good]), "mix"),
        "retrieve_k_zero": (lambda: mmkit.retrieve(clip, "a", [good], k=0), "from 1"),
        "retrieve_k_text": (lambda: mmkit.retrieve(clip, "a", [good], k="3"), "whole number"),
        "retrieve_nan_gallery": (lambda: mmkit.retrieve(clip, "a", mmkit.embed_images(clip, good) * float("nan")), "NaN"),
        "batch_size_zero": (lambda: mmkit.embed_images(clip, good, batch_size=0), "batch_size"),
        "wrong_family_caption": (lambda: mmkit.caption(clip, good), "cannot caption"),
        "wrong_family_answer": (lambda: mmkit.answer(clip, good, "q?"), "cannot answer"),
        "wrong_family_zero_shot": (lambda: mmkit.zero_shot(vqa, good, ["a", "b"]), "cannot zero_shot"),
        "wrong_family_embed_images": (lambda: mmkit.embed_images(models["vilt-vqa"], good), "cannot embed_images"),
        "wrong_family_embed_texts": (lambda: mmkit.embed_texts(models["blip-caption"], "a"), "cannot embed_texts"),
        "wrong_family_match": (lambda: mmkit.match(vqa, good, "a"), "cannot match"),
        "wrong_family_retrieve": (lambda: mmkit.retrieve(models["blip-caption"], "a", [good]), "cannot retrieve"),
        "not_a_model": (lambda: mmkit.attention_maps(object(), good, "a"), "load_model"),
        "attention_needs_text": (lambda: mmkit.attention_maps(clip, good), "needs a text"),
        "attention_text_not_str": (lambda: mmkit.attention_maps(clip, good, 5), "must be a string"),
        "unknown_model_name": (lambda: mmkit.caption("no-such-model", good), "unknown model"),
    }


LIST_CASES = list(list_cases({k: None for k in ("clip", "blip-vqa", "blip-itm")}, None))


@pytest.mark.parametrize("case", LIST_CASES)
def test_list_and_model_case(case, models, good):
    fn, words = list_cases(models, good)[case]
    with pytest.raises(InputError) as e:
        fn()
    assert words.lower() in str(e.value).lower(), str(e.value)


@pytest.mark.parametrize("argv, words", [
    (["zero-shot", "{img}", "--labels", "cat", "--model", "{clip}"], "at least two"),
    (["zero-shot", "{img}", "--labels", "cat,cat", "--model", "{clip}"], "at least two different"),  # the CLI drops repeats
    (["caption", "{img}", "--model", "{clip}"], "cannot caption"),
    (["answer", "{img}", "-q", "what?", "--model", "{clip}"], "cannot answer"),
    (["caption", "{img}", "--model", "{blip}", "--batch-size", "0"], "batch-size"),
])
def test_cli_list_and_model_cases(argv, words, image_dir, model_dirs, capsys):
    subs = {"{img}": str(image_dir / "dot.png"), "{clip}": model_dirs("clip"), "{blip}": model_dirs("blip-caption")}
    code = cli_main([subs.get(a, a) for a in argv])
    _, err = capsys.readouterr()
    assert code == 2 and words in err and "Traceback" not in err


# -- panels: the error shows inside, the next input works ------------------------------------------

def test_panels_show_errors_and_recover(models, model_dirs, good):
    from widgets import CaptionApp, CaptionPanel, RetrievalPanel, ZeroShotPanel

    zs = ZeroShotPanel(models["clip"], labels=("cat", "cat"), background=False)
    zs.classify()
    assert "duplicate" in zs.error.value and zs.result is None
    zs.labels.value = "cat"
    zs.classify()
    assert "at least two" in zs.error.value
    zs.labels.value = "red\nblue"
    zs.classify()
    assert zs.error.value == "" and set(zs.result) == {"red", "blue"}

    cap = CaptionPanel(models["clip"], background=False)  # wrong family
    cap.caption()
    assert "cannot caption" in cap.error.value
    cap.model.name.value = model_dirs("blip-caption")
    cap.caption()
    assert cap.error.value == "" and isinstance(cap.result, str)

    ret = RetrievalPanel(models["clip"], gallery_size=4, background=False)
    ret.search("   ")
    assert "empty" in ret.error.value
    ret.search("a red circle")
    assert ret.error.value == "" and len(ret.result) == 4 or len(ret.result) == ret.k.value

    app = CaptionApp(models["blip-caption"], background=False)
    app.picker.set_image(IMAGES["bomb_30000"][1])
    assert app.dialog_open and "decompression" in app.dialog_message.value.lower()
    app.close_dialog()
    app.picker.set_image(good)
    app.caption()
    assert not app.dialog_open and isinstance(app.result, str)


def test_attention_explorer_shows_errors_and_recovers(models, good):
    from widgets import AttentionExplorer

    ex = AttentionExplorer(models["vilt-vqa"], good, "\x00 ")
    ex.compute()
    assert ex.maps is None and "empty" in ex.message.value
    ex.text.value = LONG
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ex.compute()
    assert ex.maps is not None and len(ex.maps.words) <= 40
