"""The head view: every layer x head for one word, sorted by entropy or by mass on the object; its PNG export;
and AttentionExplorer's head-view toggle, cell enlarging, export and Stop button, driven from code."""
import io

import numpy as np
import pytest
from PIL import Image

import mmkit
from mmkit.viz import figure_png, head_scores, head_view


@pytest.fixture(scope="module")
def vilt_maps(model_dirs, scenes):
    m = mmkit.load_model(model_dirs("vilt-vqa"), attention=True)
    return mmkit.attention_maps(m, scenes[0].image, "what color is the circle?")


def test_head_scores_by_entropy_and_by_object(vilt_maps):
    import copy

    maps = copy.deepcopy(vilt_maps)  # a head is planted below
    ent = head_scores(maps, "circle", "entropy")
    assert ent.shape == (maps.layers, maps.heads)
    n = maps.grid[0] * maps.grid[1]
    assert (ent >= -1e-9).all() and (ent <= np.log2(n) + 1e-6).all()  # 0 (one patch) .. log2(cells) (uniform)
    maps.attn[0, 0, maps.groups[maps.index("circle")]] = 0
    maps.attn[0, 0, maps.groups[maps.index("circle")], 0, 0] = 1.0  # a planted head that looks at one patch
    assert head_scores(maps, "circle", "entropy")[0, 0] == pytest.approx(0.0)
    w, h = maps.image.size
    top_left = (0, 0, w // maps.grid[1], h // maps.grid[0])
    obj = head_scores(maps, "circle", "object", top_left)
    assert obj[0, 0] > 0.4 and obj[0, 0] == obj.max()  # the planted head has the most mass in that cell
    with pytest.raises(ValueError, match="box"):
        head_scores(maps, "circle", "object")


def test_head_view_figure_sorting_and_png(vilt_maps, tmp_path):
    maps = vilt_maps
    fig = head_view(maps, "circle")
    assert len(fig.axes) == maps.layers * maps.heads
    assert [a.get_title() for a in fig.axes[:maps.heads]] == [f"h{h}" for h in range(maps.heads)]
    ent = head_scores(maps, "circle", "entropy")
    fig = head_view(maps, "circle", sort="entropy", selected=(0, 1))
    row0 = [a.get_title() for a in fig.axes[:maps.heads]]
    assert row0[0] == f"h{int(np.argmin(ent[0]))} {ent[0].min():.2f}"  # the most focused head first
    shown = [float(t.split()[1]) for t in row0]
    assert shown == sorted(shown)
    outlined = [a for a in fig.axes if a.spines["top"].get_edgecolor()[:3] == (1.0, 0.0, 0.0)]
    assert len(outlined) == 1 and outlined[0].get_title().startswith("h1 ")
    data = figure_png(fig, tmp_path / "heads.png", dpi=80)
    png = Image.open(io.BytesIO(data))
    assert (tmp_path / "heads.png").read_bytes() == data and png.format == "PNG"
    w, h = png.size
    assert w > 80 * 1.1 * maps.heads * 0.8 and h > 80 * 1.1 * maps.layers * 0.8  # one small map per cell
    pixels = np.asarray(png.convert("RGB"), dtype=float)
    assert pixels.std() > 20  # maps drawn, not a blank page
    with pytest.raises(ValueError, match="sort"):
        head_view(maps, "circle", sort="size")


def test_explorer_head_view_driven_from_code(model_dirs, tmp_path, monkeypatch):
    pytest.importorskip("ipywidgets")
    from widgets.attention_explorer import AttentionExplorer
    from widgets.base import Panel

    scene = mmkit.ShapesWorld(3, seed=0, split="test", objects=1)[0]
    ex = AttentionExplorer(mmkit.load_model(model_dirs("vilt-vqa"), attention=True), scene,
                           f"what color is the {scene.objects[0].shape}?")
    assert isinstance(ex, Panel) and ex.stop_button.disabled and "object" in ex.sort.options
    ex.show_button.click()
    single = bytes(ex.picture.value)
    ex.words.value = ex.maps.index(scene.objects[0].shape)
    ex.head_view.value = True  # the toggle: every layer x head for the word
    grid = Image.open(io.BytesIO(bytes(ex.picture.value)))
    assert bytes(ex.picture.value) != single and grid.size[1] > 200
    ex.sort.value = "object"
    ex.layer.value, ex.head.value = 1, 0
    assert bytes(ex.picture.value[:4]) == b"\x89PNG" and "color:#b00" not in ex.message.value
    ex.enlarge_button.click()  # the outlined cell alone
    assert not ex.head_view.value and ex.method.value == "attention"
    assert np.allclose(ex.heat(), ex.maps.for_token(ex.words.value, layer=1, head=0))
    ex.head_view.value = True
    path = ex.export(tmp_path / "slide.png")
    assert ex.exported == str(path) and Image.open(path).size[1] > 200 and "saved" in ex.status.value


def test_explorer_stop_discards_a_background_extraction(model_dirs, scenes, monkeypatch):
    pytest.importorskip("ipywidgets")
    import threading

    from widgets.attention_explorer import AttentionExplorer

    gate = threading.Event()
    real = mmkit.attention_maps

    def slow(*a, **k):
        gate.wait(10)
        return real(*a, **k)

    monkeypatch.setattr(mmkit, "attention_maps", slow)
    ex = AttentionExplorer(mmkit.load_model(model_dirs("vilt-vqa"), attention=True), scenes[0].image,
                           "what color is it?", background=True)
    ex.show_button.click()
    assert ex.busy and not ex.stop_button.disabled and ex.show_button.disabled
    ex.stop_button.click()
    gate.set()
    ex.wait(30)
    assert ex.maps is None and ex.status.value == "Stopped." and not ex.show_button.disabled
