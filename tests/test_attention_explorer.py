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
