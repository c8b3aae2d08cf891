"""AttentionExplorer driven from code: compute, click words, change method/layer/head, errors in the panel."""
import pytest

pytest.importorskip("ipywidgets")

import mmkit  # noqa: E402
from widgets.attention_explorer import AttentionExplorer  # noqa: E402


def test_explorer_shows_a_map_per_word(model_dirs, scenes):
    m = mmkit.load_model(model_dirs("vilt-vqa"))
    ex = AttentionExplorer(m, scenes[0].image, "what color is the circle?")
    ex.show_button.click()
    assert ex.maps is not None and bytes(ex.picture.value[:4]) == b"\x89PNG"
    assert [label for label, _ in ex.words.options][:2] == ["what", "color"]
    first = bytes(ex.picture.value)
    ex.words.value = 4  # "circle"
    assert bytes(ex.picture.value) != first
    ex.method.value = "rollout"
    ex.layer.value, ex.head.value = 0, 1
    assert ex.heat().shape == ex.maps.grid and "answer" in ex.message.value


def test_explorer_reports_errors_inside_the_panel(model_dirs, scenes):
    ex = AttentionExplorer(mmkit.load_model(model_dirs("clip")), scenes[0].image, "")
    ex.show_button.click()  # CLIP needs a prompt
    assert ex.maps is None and "needs a text" in ex.message.value
    ex.text.value = "<b>red</b> circle"
    ex.show_button.click()
    assert ex.maps is not None and "&lt;b&gt;" in ex.message.value  # user text is escaped, not rendered


def test_no_words_and_mathtext_do_not_escape(model_dirs, scenes):
    """Issue 28: blip-itm maps of "🐱🐱" have 0 words (was an uncaught TraitError); "$\\frac$" broke the figure."""
    ex = AttentionExplorer(mmkit.load_model(model_dirs("blip-itm"), attention=True), scenes[0].image, "🐱🐱")
    ex.compute()
    assert ex.maps is None and "no words" in ex.message.value and ex.words.options == ()
    ex.render()  # nothing to draw: quietly nothing
    ex.text.value = r"$\frac$ red circle"
    ex.compute()
    assert ex.maps is not None and bytes(ex.picture.value[:4]) == b"\x89PNG" and "Error" not in ex.message.value
    ex.opacity.value = 0.0
    ex.layer.value = ex.layer.max
    assert bytes(ex.picture.value[:4]) == b"\x89PNG" and "color:#b00" not in ex.message.value
    ex.text.value = "🐱🐱"
    ex.compute()  # back to no words: the old maps and picture are gone, the controls are empty
    assert ex.maps is None and ex.picture.value == b"" and ex.words.value is None


def test_figure_text_is_never_mathtext(scenes):
    import io

    from mmkit.viz import image_grid, overlay, plain

    assert plain(r"$\frac$") == r"\$\frac\$" and plain("no dollars") == "no dollars"
    for title in (r"$\frac$", "$$", "cost $5 or $6", "$x^2$", "a\\$b$"):
        fig = image_grid([scenes[0].image, scenes[1].image], titles=[title, "#1"])
        fig.savefig(io.BytesIO(), format="png")  # drawing is where mathtext would raise
        assert fig.axes[0].get_title() == plain(title)
        fig = overlay(scenes[0].image, [[0.0, 1.0], [1.0, 0.0]], title=title)
        fig.savefig(io.BytesIO(), format="png")


def test_explorer_says_when_the_picture_was_padded(model_dirs):
    """A 6:1 strip is padded to 5:1 (with white) before any model sees it; the explorer says so beside the text."""
    from PIL import Image

    ex = AttentionExplorer(mmkit.load_model(model_dirs("vilt-vqa")), Image.new("RGB", (600, 100), (200, 30, 30)),
                           "what color is it?", background=False)
    ex.show_button.click()
    assert ex.maps.image.size == (600, 120) and "padded to 600 x 120" in ex.message.value
