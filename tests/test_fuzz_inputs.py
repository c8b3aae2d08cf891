"""Property-based fuzzing of every task entry point and load_image on the bundled models (hypothesis).

Generated: option values of every type (ints, floats with NaN/inf, bools, strings, numpy scalars, None,
huge numbers) for every option of caption, answer, zero_shot, embed_images, embed_texts, match, retrieve
and attention_maps; templates; image arrays of every dtype, byte order and shape; files of every kind
(regular, empty, truncated, FIFO, device, folder, odd names). The property, everywhere: a result of the
documented type, or mmkit.InputError; never another exception, never a hang. And the validation layer is
honest: a value that `mmkit.options.check_option` accepts never fails later inside transformers.

Fixed seed (derandomize=True) and a small budget: it runs in well under a minute.
"""
import io
import os
import sys
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

import mmkit
from mmkit.errors import InputError
from mmkit.options import OPTIONS, check_option

pytestmark = pytest.mark.usefixtures("one_thread")
FUZZ = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))
SMALL = settings(FUZZ, max_examples=12)


@pytest.fixture(scope="module")
def m():
    return {n: mmkit.load_model(f"shapes-{n}") for n in ("clip", "blip-caption", "blip-vqa", "blip-itm", "vilt-vqa")}


@pytest.fixture(scope="module")
def img():
    return mmkit.ShapesWorld(1, seed=0).images[0]


def works_or_input_error(fn, check=lambda out: out is not None):
    """Run fn: True if it worked (and check(result) holds), False on InputError; anything else fails the test."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = fn()
    except InputError as e:
        assert str(e), "an InputError must say what is wrong"
        return False
    assert check(out), repr(out)[:200]
    return True


# -- options ----------------------------------------------------------------------------------------

ANY_VALUE = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.integers(-3, 70),
    st.floats(allow_nan=True, allow_infinity=True), st.floats(-2, 3), st.text(max_size=4),
    st.sampled_from([np.int64(2), np.uint8(3), np.float32(0.5), np.float64("nan"), np.bool_(True), "3", b"3", [1],
                     3.0, 1e-300, -0.0, 2**63, 2**64]),
)


def in_range(name):
    """Values inside (and just at) an option's stated range."""
    rule = OPTIONS[name]
    if rule.kind == "bool":
        return st.booleans()
    if rule.kind == "int":
        hi = min(rule.hi, 8 if name in ("num_beams", "top_k", "k", "batch_size") else rule.hi)
        return st.integers(int(rule.lo), int(hi))
    return st.floats(rule.lo, rule.hi, exclude_min=rule.lo_open)


CAPTION_OPTIONS = ["max_new_tokens", "min_new_tokens", "num_beams", "do_sample", "temperature", "top_p", "top_k",
                   "length_penalty", "repetition_penalty", "no_repeat_ngram_size", "early_stopping", "seed", "batch_size"]


def _caption(m, img, kw):
    kw = dict(kw)
    kw.setdefault("max_new_tokens", 3)  # short captions keep the budget small
    return mmkit.caption(m["blip-caption"], img, **kw)


@FUZZ
@given(name=st.sampled_from(CAPTION_OPTIONS), value=ANY_VALUE, sample=st.booleans())
def test_caption_any_option_value(m, img, name, value, sample):
    kw = {name: value}
    if name not in ("do_sample",):
        kw["do_sample"] = sample  # sampling options matter only when sampling
    try:
        check_option(name, value)
        accepted = True
    except InputError:
        accepted = False
    worked = works_or_input_error(lambda: _caption(m, img, kw), lambda out: isinstance(out, str))
    if accepted and name != "min_new_tokens":  # min > max is a cross-check; every single accepted value works
        assert worked, f"check_option accepted {name}={value!r}, but caption refused it"
    if not accepted:
        assert not worked, f"check_option refused {name}={value!r}, but caption took it"


@FUZZ
@given(kw=st.fixed_dictionaries({}, optional={n: in_range(n) for n in CAPTION_OPTIONS}))
def test_caption_any_combination_of_valid_options(m, img, kw):
    kw.pop("batch_size", None)
    if kw.get("num_beams", 1) > 1:
        kw["num_beams"] = min(kw["num_beams"], 3)
    if kw.get("min_new_tokens", 0) > kw.get("max_new_tokens", 3):
        with pytest.raises(InputError, match="min_new_tokens"):
            _caption(m, img, kw)
        return
    assert works_or_input_error(lambda: _caption(m, img, kw), lambda out: isinstance(out, str)), kw


def test_option_range_ends_on_the_real_decoder(m, img):
    """The stated ranges are what the decoder can really do (64 beams, 0.01..100 temperature, 4096 tokens)."""
    cap = m["blip-caption"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_new_tokens lowered to the model's limit
        for kw in (dict(num_beams=64, max_new_tokens=2), dict(do_sample=True, temperature=0.01, top_p=1e-9, top_k=1),
                   dict(do_sample=True, temperature=100.0, top_k=1_000_000), dict(max_new_tokens=4096),
                   dict(num_beams=2, length_penalty=-100.0, repetition_penalty=100.0, no_repeat_ngram_size=100),
                   dict(do_sample=True, seed=2**63 - 1), dict(repetition_penalty=0.01, max_new_tokens=5)):
            assert isinstance(mmkit.caption(cap, img, **kw), str), kw


@FUZZ
@given(name=st.sampled_from(["max_new_tokens", "batch_size"]), value=ANY_VALUE)
def test_answer_any_option_value(m, img, name, value):
    for model in (m["blip-vqa"], m["vilt-vqa"]):
        kw = {"max_new_tokens": 3, name: value}
        works_or_input_error(lambda: mmkit.answer(model, img, "what color?", **kw), lambda out: isinstance(out, str))


@FUZZ
@given(name=st.sampled_from(["batch_size", "k", "paired", "templates"]), value=ANY_VALUE)
def test_embedding_tasks_any_option_value(m, img, name, value):
    clip, itm = m["clip"], m["blip-itm"]
    calls = {
        "batch_size": [lambda: mmkit.embed_images(clip, [img, img], batch_size=value),
                       lambda: mmkit.embed_texts(clip, ["a", "b"], batch_size=value),
                       lambda: mmkit.zero_shot(clip, img, ["red", "blue"], batch_size=value),
                       lambda: mmkit.match(itm, img, ["a", "b"], batch_size=value)],
        "k": [lambda: mmkit.retrieve(clip, "red", [img, img], k=value)],
        "paired": [lambda: mmkit.match(clip, [img, img], ["a", "b"], paired=value)],
        "templates": [lambda: mmkit.zero_shot(clip, img, ["red", "blue"], templates=value)],
    }[name]
    for fn in calls:
        works_or_input_error(fn)


TEMPLATE_TEXT = st.text(alphabet=st.sampled_from(list("ab {}{}:!x0 \x00\ud800🐱")), max_size=12)


@FUZZ
@given(templates=st.one_of(TEMPLATE_TEXT, st.lists(TEMPLATE_TEXT, max_size=3)),
       labels=st.lists(st.text(alphabet=st.sampled_from(list("ab {}\x00 🐱")), min_size=0, max_size=5), max_size=3))
def test_zero_shot_any_templates_and_labels(m, img, templates, labels):
    worked = works_or_input_error(lambda: mmkit.zero_shot(m["clip"], img, labels, templates=templates),
                                  lambda out: abs(sum(out.values()) - 1) < 1e-4)
    if worked:
        assert all(t.count("{}") >= 1 for t in ([templates] if isinstance(templates, str) else templates))


@SMALL
@given(family=st.sampled_from(["clip", "blip-caption", "blip-vqa", "blip-itm", "vilt-vqa"]),
       name=st.sampled_from(["layer", "max_new_tokens", "num_beams", "temperature", "foo"]), value=ANY_VALUE)
def test_attention_maps_any_option(m, img, family, name, value):
    text = None if family == "blip-caption" else "red circle"
    kw = {name: value}
    if family == "blip-caption" and name != "max_new_tokens":
        kw["max_new_tokens"] = 3
    works_or_input_error(lambda: mmkit.attention_maps(m[family], img, text, **kw),
                         lambda out: isinstance(out, mmkit.AttentionMaps))


# -- image arrays -----------------------------------------------------------------------------------

DTYPES = st.sampled_from(["u1", "<u2", ">u2", "i1", "<i2", ">i2", "<i4", ">i4", "<u4", "<i8", "<u8", "<f2", "<f4",
                          ">f4", "<f8", ">f8", "?", "<c8", "O", "M8[s]"])
SHAPES = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6)


@FUZZ
@given(a=hnp.arrays(DTYPES, SHAPES, elements=None))
def test_any_array_is_rgb_or_input_error_and_matches_pil(a):
    worked = works_or_input_error(lambda: mmkit.load_image(a), lambda im: im.mode == "RGB" and im.size[0] * im.size[1])
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        return  # not an image shape (PIL would make a row of a 1-D array): refused above, whatever its values
    try:
        pil = Image.fromarray(a)  # PIL's own mode for it, where one exists
    except Exception:  # noqa: BLE001 - PIL has no mode for this array
        return
    try:
        same = np.asarray(mmkit.load_image(pil))
    except InputError:
        assert not worked, f"the array loads, the equal PIL image ({pil.mode}) is refused"
        return
    assert worked and np.array_equal(np.asarray(mmkit.load_image(a)), same), pil.mode


@SMALL
@given(a=hnp.arrays(st.sampled_from(["u1", "<f4", "<u2", "?"]), hnp.array_shapes(min_dims=2, max_dims=3, min_side=1,
                                                                                 max_side=5)))
def test_any_array_through_every_task(m, img, a):
    calls = [lambda: mmkit.caption(m["blip-caption"], a, max_new_tokens=2),
             lambda: mmkit.answer(m["vilt-vqa"], a, "what color?"),
             lambda: mmkit.zero_shot(m["clip"], [img, a], ["red", "blue"]),
             lambda: mmkit.match(m["blip-itm"], a, "red"),
             lambda: mmkit.retrieve(m["clip"], "red", [img, a], k=1),
             lambda: mmkit.attention_maps(m["clip"], a, "red")]
    results = [works_or_input_error(fn) for fn in calls]
    assert len(set(results)) == 1, f"some tasks took the array, others refused it: {results}"


# -- odd files --------------------------------------------------------------------------------------

def _encode(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.effect_noise((24, 16), 40).convert("RGB").save(buf, fmt)
    return buf.getvalue()


VALID = {fmt: _encode(fmt) for fmt in ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")}
NAMES = st.text(alphabet=st.sampled_from(list("ab.-_ \n\tü🐱%*?")), min_size=1, max_size=8)


@FUZZ
@given(kind=st.sampled_from(["file", "empty", "fifo", "folder", "dev_zero", "symlink_zero", "missing"]),
       fmt=st.sampled_from(sorted(VALID)), cut=st.integers(0, 4000), junk=st.binary(max_size=40), name=NAMES)
def test_any_file_through_load_image_and_tasks(m, tmp_path_factory, kind, fmt, cut, junk, name):
    if kind in ("fifo", "dev_zero", "symlink_zero") and sys.platform == "win32":
        return
    d = tmp_path_factory.mktemp("fuzz")
    p = d / (name.replace("/", "_") + "." + fmt.lower())
    if kind == "file":
        p.write_bytes(VALID[fmt][:cut] + junk)
    elif kind == "empty":
        p.write_bytes(b"")
    elif kind == "fifo":
        os.mkfifo(p)
    elif kind == "folder":
        p.mkdir()
    elif kind == "symlink_zero":
        os.symlink("/dev/zero", p)
    elif kind == "dev_zero":
        p = "/dev/zero"
    worked = works_or_input_error(lambda: mmkit.load_image(p), lambda im: im.mode == "RGB")
    if kind != "file":
        assert not worked
    both = works_or_input_error(lambda: mmkit.caption(m["blip-caption"], [p], max_new_tokens=2),
                                lambda out: isinstance(out, list) and len(out) == 1)
    assert both == worked, "caption and load_image disagree about a file"


@FUZZ
@given(head=st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*",
                             b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"P6 ", b"%!PS-Adobe-3.0", b"\x00\x00\x01\x00"]),
       body=st.binary(max_size=200), max_pixels=st.one_of(st.none(), st.integers(1, 10**9)))
def test_any_bytes_and_limits(head, body, max_pixels):
    works_or_input_error(lambda: mmkit.load_image(head + body, max_pixels=max_pixels), lambda im: im.mode == "RGB")
    stream = io.BytesIO(head + body)
    stream.seek(len(head) // 2)
    works_or_input_error(lambda: mmkit.load_image(stream), lambda im: im.mode == "RGB")
