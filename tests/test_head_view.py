"""The head view: every layer x head for one word, sorted by entropy or by mass on the object; its PNG export;
and AttentionExplorer's head-view toggle, cell enlarging, export and Stop button, driven from code."""
import io

import numpy as np
import pytest
from PIL import Image

import mmkit
from mmkit.viz import figure_png, head_scores, head_view, head_view_html


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


def test_head_view_html_is_self_contained(vilt_maps, tmp_path):
    """The HTML export: one page, every cell an embedded PNG linked to its enlarged copy, nothing fetched."""
    import base64
    import re

    maps = vilt_maps
    page = head_view_html(maps, "circle", sort="entropy", path=tmp_path / "heads.html", cell=64, big=256)
    assert (tmp_path / "heads.html").read_text(encoding="utf-8") == page
    L, H = maps.layers, maps.heads
    uris = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(uris) == 2 * L * H  # a small and an enlarged map per cell
    assert not re.search(r'(src|href)="(?!data:|#)', page)  # no external file or URL
    assert len(set(re.findall(r'href="#(l\d+h\d+)"', page))) == L * H
    assert all(f'id="l{l}h{h}"' in page for l in range(L) for h in range(H))
    small, big = (Image.open(io.BytesIO(base64.b64decode(u))) for u in (uris[0], uris[-1]))
    assert small.format == big.format == "PNG" and max(small.size) == 64 and max(big.size) == 256
    assert np.asarray(big.convert("RGB"), dtype=float).std() > 20  # a map, not a blank square
    ent = head_scores(maps, "circle", "entropy")
    first = re.search(r'<tr><th>layer 0</th><td><a href="#l0h(\d+)"', page).group(1)
    assert int(first) == int(np.argmin(ent[0]))  # sorted as the figure: the most focused head first
    assert 2_000 < len(page) < 60_000 * L * H  # PNGs inside, and no runaway size
    assert "&#x27;circle&#x27;" in page and maps.model in page
    import copy

    odd = copy.copy(maps)
    odd.text = "<script>alert(1)</script>"  # user text is escaped, never markup
    assert "<script>" not in head_view_html(odd, 0, cell=32, big=48)


def test_cell_image_for_photos_of_any_shape(vilt_maps):
    import copy

    maps = copy.deepcopy(vilt_maps)
    maps.image = Image.new("RGB", (300, 90), "white")  # a wide picture, not ShapesWorld's square
    im = mmkit.viz.cell_image(maps, "circle", 0, 0, size=120)
    assert im.size == (120, 36) and im.mode == "RGB"


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
    assert ex.cells.children == () and ex.enlarged.value == b""  # no head view yet
    ex.words.value = ex.maps.index(scene.objects[0].shape)
    ex.head_view.value = True  # the toggle: every layer x head for the word
    grid = Image.open(io.BytesIO(bytes(ex.picture.value)))
    assert bytes(ex.picture.value) != single and grid.size[1] > 200
    L, H = ex.maps.layers, ex.maps.heads
    assert len(ex.cells.children) == L and all(len(r.children) == H for r in ex.cells.children)
    ex.sort.value = "object"
    assert bytes(ex.picture.value[:4]) == b"\x89PNG" and "color:#b00" not in ex.message.value
    from mmkit.viz import head_order

    order, _ = head_order(ex.maps, ex.words.value, "object", scene.objects[0].box)
    cell = ex.cells.children[1].children[0]  # layer 1's first cell: its head with the most mass on the object
    assert cell.description.startswith(f"L1 h{order[1][0]} ")
    before = bytes(ex.picture.value)
    cell.click()  # click a cell: it is outlined in the grid and shown enlarged below
    assert (ex.layer.value, ex.head.value) == (1, order[1][0]) and ex.head_view.value
    big = Image.open(io.BytesIO(bytes(ex.enlarged.value)))
    assert big.format == "PNG" and big.size[0] > 200 and bytes(ex.picture.value) != before
    ex.cells.children[0].children[-1].click()
    assert (ex.layer.value, ex.head.value) == (0, order[0][-1])
    ex.layer.value, ex.head.value = 1, 0
    ex.enlarge_button.click()  # the slider-selected cell, enlarged
    assert ex.heat().shape == ex.maps.grid and (ex.layer.value, ex.head.value) == (1, 0) and ex.enlarged.value
    path = ex.export(tmp_path / "slide.png")
    assert ex.exported == str(path) and Image.open(path).size[1] > 200 and "saved" in ex.status.value
    page = ex.export(tmp_path / "slide.html", fmt="html")
    text = (tmp_path / "slide.html").read_text(encoding="utf-8")
    assert page == str(tmp_path / "slide.html") and text.count("data:image/png;base64,") == 2 * L * H
    ex.head_view.value = False
    assert ex.cells.children == () and ex.enlarged.value == b""


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
