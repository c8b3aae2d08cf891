"""Outside test report Q: ITM Grad-CAM's last layer, agg='rollout' against method=, the explorer's controls per
method, CLIP's default map (text-dependent), and figure titles that fit."""
import json
import shutil
import warnings

import numpy as np
import pytest
from PIL import Image, ImageDraw

import mmkit
from mmkit import InputError

ITM_TEXT = "a large red circle to the left of a large blue square"


def two_shapes(size=(64, 64)):
    """A red circle (left) and a blue square (right), drawn with PIL (not ShapesWorld's renderer)."""
    w, h = size
    im = Image.new("RGB", size, (240, 240, 240))
    d = ImageDraw.Draw(im)
    d.ellipse([4, 6, 23, 25], fill=(215, 40, 40))
    d.rectangle([w - 24, h - 34, w - 5, h - 15], fill=(40, 80, 215))
    return im


def quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kw)


@pytest.fixture(scope="module")
def clip():
    return mmkit.load_model("shapes-clip")


# -- 2: blip-itm Grad-CAM at the last layer is 0 for every word -------------------------------------------------

def test_itm_gradcam_refuses_the_last_layer_and_its_default_is_not_zero():
    itm = mmkit.load_model("shapes-blip-itm")
    n = itm.model.config.text_config.num_hidden_layers
    for layer in (n - 1, -1):
        with pytest.raises(InputError, match="last") as e:
            quiet(mmkit.attention_maps, itm, two_shapes(), ITM_TEXT, layer=layer)
        assert "layer=0 (or -2)" in str(e.value)  # names the layers that work
    maps = quiet(mmkit.attention_maps, itm, two_shapes(), ITM_TEXT)
    assert maps.notes["gradcam_layer"] == 0
    assert maps.for_token("circle", method="gradcam").sum() > 0
    for layer in (0, -n):  # the first layer, counted either way, still works
        assert quiet(mmkit.attention_maps, itm, two_shapes(), ITM_TEXT, layer=layer).notes["gradcam_layer"] == layer


def test_itm_last_layer_rule_follows_the_layer_count(model_dirs, tmp_path):
    """The tiny pretrained-path blip-itm (2 text layers), and the same with 3: the last one is refused, not a fixed
    number."""
    two = model_dirs("blip-itm")
    three = tmp_path / "itm3"
    shutil.copytree(two, three)
    cfg = json.loads((three / "config.json").read_text())
    cfg["text_config"]["num_hidden_layers"] = 3
    (three / "config.json").write_text(json.dumps(cfg))
    for folder, n in ((two, 2), (three, 3)):
        m = quiet(mmkit.load_model, str(folder))
        assert m.model.config.text_config.num_hidden_layers == n
        for layer in (n - 1, -1):
            with pytest.raises(InputError, match="last") as e:
                quiet(mmkit.attention_maps, m, two_shapes(), "a red circle", layer=layer)
            assert ("layer=0 (or -2)" if n == 2 else "from 0 to 1 (-3 to -2 from the end)") in str(e.value)
        maps = quiet(mmkit.attention_maps, m, two_shapes(), "a red circle", layer=n - 2)
        assert maps.notes["gradcam_layer"] == n - 2
        default = quiet(mmkit.attention_maps, m, two_shapes(), "a red circle").notes["gradcam_layer"]
        assert default % n != n - 1


# -- 1: agg='rollout' does not replace an explicit method ---------------------------------------------------------

def test_rollout_agg_does_not_replace_an_explicit_method(model_dirs, scenes):
    m = mmkit.load_model(model_dirs("vilt-vqa"))
    maps = mmkit.attention_maps(m, scenes[0].image, "what color is the circle?")
    for method in ("relevance", "attention"):
        with pytest.raises(InputError, match="rollout"):
            maps.for_token("circle", method=method, agg="rollout")
    rolled = maps.for_token("circle", method="rollout")
    assert np.array_equal(maps.for_token("circle", agg="rollout"), rolled)  # no method: agg='rollout' is rollout
    assert np.array_equal(maps.for_token("circle", method="rollout", agg="rollout"), rolled)


def test_explorer_turns_off_the_controls_a_method_ignores(model_dirs, scenes):
    pytest.importorskip("ipywidgets")
    from widgets.attention_explorer import AttentionExplorer

    ex = AttentionExplorer(mmkit.load_model(model_dirs("vilt-vqa")), scenes[0].image, "what color is the circle?")
    ex.show_button.click()
    assert ex.method.value == "attention"
    assert not (ex.layer.disabled or ex.head.disabled or ex.agg.disabled)
    for method in ("relevance", "rollout"):
        ex.method.value = method
        assert ex.layer.disabled and ex.head.disabled and ex.agg.disabled
        tip = getattr(ex.layer, "tooltip", None) or getattr(ex.layer, "description_tooltip", None) or ""
        assert "attention" in tip and method in tip  # says why
        assert ex.heat().shape == ex.maps.grid
    ex.method.value = "attention"
    assert not (ex.layer.disabled or ex.head.disabled or ex.agg.disabled)
    ex.layer.value = 0
    assert np.array_equal(ex.heat(), ex.maps.for_token(ex.words.value, layer=0))


# -- 7: CLIP's default map depends on the text ---------------------------------------------------------------------

def test_clip_default_method_depends_on_the_text(clip):
    a = quiet(mmkit.attention_maps, clip, two_shapes(), "red circle")
    b = quiet(mmkit.attention_maps, clip, two_shapes(), "blue square")
    assert a.methods[0] == "attention"  # the order of methods is kept
    assert a.default_method == "relevance"
    assert np.array_equal(a.for_token("red"), a.for_token("red", method="relevance"))
    assert not np.array_equal(a.for_token("red"), b.for_token("blue"))
    raw = a.for_token("red", layer=0)  # a layer (or head) is raw attention's: it is the method then
    assert np.array_equal(raw, a.for_token("red", method="attention", layer=0))
    assert np.array_equal(raw, b.for_token("blue", layer=0))  # and the same for every word
    with pytest.raises(InputError, match="method='attention'"):
        a.for_token("red", method="relevance", layer=0)


def test_other_models_keep_raw_attention_as_default(model_dirs, scenes):
    maps = mmkit.attention_maps(mmkit.load_model(model_dirs("vilt-vqa")), scenes[0].image, "what color is it?")
    assert maps.default_method == "attention" == maps.methods[0]
    aligned = mmkit.attention_maps(mmkit.load_model(model_dirs("align")), scenes[0].image, "red circle")
    assert aligned.default_method == aligned.methods[0] == "gradcam"


def test_caption_strip_defaults_to_and_recommends_relevance_for_clip(clip):
    maps = quiet(mmkit.attention_maps, clip, two_shapes(), "a red circle")
    fig = mmkit.viz.caption_strip(maps)
    assert len(fig.axes) == len(maps.words) and "relevance" in fig._suptitle.get_text()
    same = mmkit.viz.caption_strip(maps, method="attention")
    assert "method='relevance' does" in " ".join(same._suptitle.get_text().split())


def test_layer_head_grid_and_head_view_say_clip_heads_ignore_the_word(clip):
    maps = quiet(mmkit.attention_maps, clip, two_shapes(), "red circle")
    for fig in (mmkit.viz.layer_head_grid(maps, "red"), mmkit.viz.head_view(maps, "red")):
        title = " ".join(fig._suptitle.get_text().split())
        assert "same for every word" in title, title


def test_explorer_on_clip_starts_with_relevance(clip):
    pytest.importorskip("ipywidgets")
    from widgets.attention_explorer import AttentionExplorer

    ex = AttentionExplorer(clip, two_shapes(), "red circle")
    ex.show_button.click()
    assert ex.maps is not None and ex.method.value == "relevance" and ex.layer.disabled
    ex.head_view.value = True  # the head view still draws CLIP's raw heads
    assert bytes(ex.picture.value[:4]) == b"\x89PNG", ex.message.value


# -- 9: the title fits the figure; a cropped picture says so --------------------------------------------------------

def _title_fits(fig) -> bool:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()
    box, width = fig._suptitle.get_window_extent(), fig.bbox.width
    return box.x0 >= 0 and box.x1 <= width


def test_caption_strip_titles_fit_the_figure(clip):
    maps = quiet(mmkit.attention_maps, clip, two_shapes(), "red circle")
    for method in ("attention", None):
        fig = mmkit.viz.caption_strip(maps, method=method)
        assert _title_fits(fig) and fig._suptitle.get_text().startswith("shapes-clip: ")
    assert _title_fits(mmkit.viz.layer_head_grid(maps, "red"))


def test_cli_png_of_a_wide_picture_says_it_is_cropped(clip, tmp_path, capsys):
    from mmkit.cli import main

    wide = Image.new("RGB", (320, 80), (240, 240, 240))
    ImageDraw.Draw(wide).ellipse([10, 20, 50, 60], fill=(215, 40, 40))  # one shape at the left: cut to a window
    wide.save(tmp_path / "wide.png")
    maps = quiet(mmkit.attention_maps, clip, wide, "red circle")
    assert maps.given_size == (320, 80) and maps.image.size != (320, 80)  # the bundled model's 4:3 window
    fig = mmkit.viz.caption_strip(maps)
    said = " ".join(t.get_text() for t in fig.texts) + " " + fig._suptitle.get_text()
    assert "320 x 80" in " ".join(said.split()) and _title_fits(fig)
    code = main(["attention", str(tmp_path / "wide.png"), "--model", "shapes-clip", "--text", "red circle",
                 "--out", str(tmp_path / "out")])
    capsys.readouterr()
    assert code == 0 and (tmp_path / "out" / "wide.png").exists()
