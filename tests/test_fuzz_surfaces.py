"""Property-based fuzzing of the surfaces people touch: the CLI (file names, numeric options, labels and
templates) and the widgets (explorer text, gallery names, zero-shot labels, decoding controls).

Fixed seed (derandomize) and a small budget: the whole file runs in well under a minute on 2 cores.
The properties: the CLI exits 0, 2 (bad input, one `mmkit: error` line) or never anything else, writes
valid UTF-8 with one record per image, and never a traceback; a panel shows an error or a result, and no
exception escapes it.
"""
import base64
import contextlib
import io
import json
import os
import tempfile

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import mmkit  # noqa: E402
from mmkit.cli import main, show_path  # noqa: E402
from mmkit.options import OPTIONS, check_option  # noqa: E402

FUZZ = settings(max_examples=25, deadline=None, derandomize=True, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def models(model_dirs):
    """Tiny random-init models, loaded once; `mmkit.load_model` is patched to hand them out by family."""
    return {fam: mmkit.load_model(model_dirs(fam), attention=fam == "blip-itm")
            for fam in ("blip-caption", "clip", "blip-itm")}


@pytest.fixture(scope="module")
def png():
    buf = io.BytesIO()
    mmkit.ShapesWorld(1, split="test")[0].image.save(buf, format="PNG")
    return buf.getvalue()


@contextlib.contextmanager
def cli_env(models):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(mmkit, "load_model", lambda name, **kw: models[name])
        yield mp


def run_cli(argv, encoding="utf-8"):
    """main(argv) with a real-looking stdout (surrogateescape, as Python's own) and stderr: (code, out bytes, err)."""
    out, err = io.BytesIO(), io.StringIO()
    stdout = io.TextIOWrapper(out, encoding=encoding, errors="surrogateescape", newline="\n")
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(err):
        code = main(argv)
        stdout.flush()
    return code, out.getvalue(), err.getvalue()


def assert_clean_exit(code, err):
    event(f"exit {code}")  # --hypothesis-show-statistics shows how many were accepted and refused
    assert code in (0, 2), (code, err)
    assert "Traceback" not in err and "Error:" not in err.replace("mmkit: error:", ""), err
    if code == 2:
        assert [x for x in err.splitlines() if x.startswith("mmkit: error")], err


# -- the CLI ------------------------------------------------------------------------------------------------

# a leading "." would make the file hidden, which a folder listing leaves out (macOS's '._x.png' metadata)
NAME_BYTES = st.binary(min_size=1, max_size=40).map(
    lambda b: b.replace(b"/", b"_").replace(b"\0", b"_")).map(lambda b: b"_" + b[1:] if b.startswith(b".") else b)


@settings(FUZZ, max_examples=60)
@given(stem=NAME_BYTES, as_json=st.booleans(), encoding=st.sampled_from(["utf-8", "ascii", "latin-1"]))
def test_cli_any_file_name(models, png, stem, as_json, encoding):
    with tempfile.TemporaryDirectory() as d, cli_env(models):
        path = os.path.join(os.fsencode(d), stem + b".png")
        with open(path, "wb") as f:
            f.write(png)
        name = os.fsdecode(path)
        argv = ["caption", name, d, "--model", "blip-caption", "--max-tokens", "2"] + (["--json"] if as_json else [])
        code, out, err = run_cli(argv, encoding)
    assert_clean_exit(code, err)
    assert code == 0
    text = out.decode("utf-8")  # strict: never a raw byte that is not UTF-8
    lines = text.splitlines()
    assert len(lines) == 2 and text.endswith("\n")  # the file as given, then again from its folder
    if as_json:
        recs = [json.loads(x) for x in lines]
        assert recs[0]["image"] == recs[1]["image"] == show_path(name)
        assert base64.b64decode(recs[0].get("image_b64", "")) in (b"", path)
        assert isinstance(recs[0]["caption"], str)
    else:
        assert all(x.count("\t") == 1 for x in lines)
        if encoding != "utf-8":
            out.decode(encoding)


@settings(FUZZ, max_examples=60)
@given(name=st.text(min_size=1, max_size=30))
def test_cli_any_path_text(models, name):
    """Paths as Python strings, lone surrogates included: an error line or a result, never a traceback."""
    with cli_env(models):
        code, out, err = run_cli(["caption", name, "--model", "blip-caption", "--json"])
    assert_clean_exit(code, err)
    out.decode("utf-8")


NUMERIC = {"--beams": "num_beams", "--max-tokens": "max_new_tokens", "--temperature": "temperature",
           "--top-p": "top_p", "--seed": "seed", "--batch-size": "batch_size"}
VALUES = st.one_of(st.integers(-3, 70).map(str), st.floats(-0.5, 2).map(repr), st.integers(-2**70, 2**70).map(str),
                   st.floats(allow_nan=True, allow_infinity=True).map(repr),
                   st.sampled_from(["nan", "-inf", "1e400", "0x10", "1_000", " 3", "3.0", "", "-0", "½", "٣"]),
                   st.text(max_size=6))


@settings(FUZZ, max_examples=100)
@given(flag=st.sampled_from(sorted(NUMERIC)), value=VALUES)
def test_cli_numeric_options(models, png, flag, value):
    """Each value is refused with one line naming the flag, or accepted because mmkit.options accepts it."""
    seen = {}

    def fake_caption(m, images, **kw):
        seen.update(kw)
        return ["ok"] * len(images)

    with tempfile.TemporaryDirectory() as d, cli_env(models) as mp:
        mp.setattr(mmkit, "caption", fake_caption)
        img = os.path.join(d, "a.png")
        with open(img, "wb") as f:
            f.write(png)
        code, out, err = run_cli(["caption", img, "--model", "blip-caption", "--sample", flag, value])
    assert_clean_exit(code, err)
    if code == 2:
        assert flag in err and len(err.splitlines()) == 1
    else:
        parsed = check_option(NUMERIC[flag], int(value) if OPTIONS[NUMERIC[flag]].kind == "int" else float(value))
        if flag != "--batch-size":
            assert seen[NUMERIC[flag]] == parsed
        assert out == b"".join([show_path(img).encode(), b"\tok\n"])


LABEL_TEXT = st.text(alphabet=st.characters(blacklist_categories=["Cs"]) | st.sampled_from(list(",{}$\\\n\t")),
                     max_size=12)
LABELS = LABEL_TEXT | st.lists(LABEL_TEXT, min_size=2, max_size=4).map(",".join)
TEMPLATES = st.none() | LABEL_TEXT | LABEL_TEXT.map(lambda t: t + " {}") | st.sampled_from(
    ["a {} or {}", "{x} {}", "{0}", "{{}} {}", "{", "a photo of a {}"])


@settings(FUZZ, max_examples=60)
@given(labels=LABELS, template=TEMPLATES)
def test_cli_zero_shot_labels_and_templates(models, png, labels, template):
    with tempfile.TemporaryDirectory() as d, cli_env(models):
        img = os.path.join(d, "a.png")
        with open(img, "wb") as f:
            f.write(png)
        argv = ["zero-shot", img, "--model", "clip", "-l", labels, "--json"] + (["-t", template] if template else [])
        code, out, err = run_cli(argv)
    assert_clean_exit(code, err)
    if code == 0:
        rec = json.loads(out.decode("utf-8"))
        assert rec["label"] in rec["probs"] and abs(sum(rec["probs"].values()) - 1) < 1e-3


# -- the widgets ---------------------------------------------------------------------------------------------

TEXT = st.text(alphabet=st.characters(blacklist_categories=["Cs"]) | st.sampled_from(list("$\\^_{}<>&\n")),
               max_size=30)


@FUZZ
@given(text=TEXT)
def test_explorer_any_text(models, text):
    pytest.importorskip("ipywidgets")
    from widgets.attention_explorer import AttentionExplorer

    ex = AttentionExplorer(models["blip-itm"], mmkit.ShapesWorld(1)[0].image, text)
    ex.compute()
    if ex.maps is not None:
        assert bytes(ex.picture.value[:4]) == b"\x89PNG" and len(ex.words.options) == len(ex.maps.words) > 0
        ex.words.value = len(ex.maps.words) - 1
        ex.head.value = ex.head.max
    else:
        assert ex.message.value and "<script" not in ex.message.value.lower()


@FUZZ
@given(names=st.lists(TEXT, min_size=1, max_size=3), query=TEXT)
def test_retrieval_any_gallery_names(models, names, query):
    pytest.importorskip("ipywidgets")
    from widgets import RetrievalPanel

    panel = RetrievalPanel(models["clip"], background=False)
    scenes = mmkit.ShapesWorld(len(names))
    panel.set_gallery([s.image for s in scenes], names)
    panel.k.value = len(names)
    panel.search(query)
    if query.strip():
        assert panel.error.value == "", panel.error.value
        assert panel.grid.value[:4] == b"\x89PNG" and len(panel.result) == len(names)
    else:
        assert "query is empty" in panel.error.value


@FUZZ
@given(labels=TEXT, templates=TEXT)
def test_zero_shot_panel_any_labels(models, labels, templates):
    pytest.importorskip("ipywidgets")
    from widgets import ZeroShotPanel

    panel = ZeroShotPanel(models["clip"], background=False)
    panel.labels.value, panel.templates.value = labels, templates
    panel.classify()
    assert (panel.result is None) != (panel.error.value == "")
    assert "Traceback" not in panel.error.value and "TypeError" not in panel.error.value
    if panel.result is not None:
        assert panel.chart.value[:4] == b"\x89PNG"


ANY_NUMBER = st.one_of(st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True))


@FUZZ
@given(method=st.sampled_from(["greedy", "beam", "sampling"]), beams=ANY_NUMBER, temperature=ANY_NUMBER,
       top_p=ANY_NUMBER, max_tokens=ANY_NUMBER, seed=ANY_NUMBER, prompt=TEXT)
def test_decoding_controls_any_values(method, beams, temperature, top_p, max_tokens, seed, prompt):
    pytest.importorskip("ipywidgets")
    from traitlets import TraitError

    from widgets.decoding import DecodingControls

    d = DecodingControls(method)
    for control, value in [(d.beams, beams), (d.temperature, temperature), (d.top_p, top_p),
                           (d.max_tokens, max_tokens), (d.seed, seed), (d.prompt, prompt)]:
        with contextlib.suppress(TraitError):  # the widget may refuse a value itself
            control.value = value
    try:
        kw = d.kwargs()
    except mmkit.InputError as e:
        assert str(e)
        return
    for name, value in kw.items():
        if name in OPTIONS and name != "prompt":
            assert check_option(name, value) == value
    assert d.describe()

