"""Maps of a picture that mmkit cropped or padded for a bundled model, on the picture the user gave
(for_token(size="given"), and overlay placing a map there); and the viz helpers' errors, which name the fix."""
import pickle
import warnings

import numpy as np
import pytest
from PIL import Image, ImageDraw

import mmkit
from mmkit.attention.maps import AttentionMaps
from mmkit.errors import InputError


def quiet(f, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return f(*args, **kwargs)


def wide_circle():
    """The tester's picture: 1200 x 300, white, a red circle at x = 75..225 (cropped to a 400 x 300 window)."""
    img = Image.new("RGB", (1200, 300), "white")
    ImageDraw.Draw(img).ellipse([75, 75, 225, 225], fill=(220, 30, 30))
    return img


def planted(image_size=(400, 300), given_size=(), offset=(0, 0), heads=True):
    """AttentionMaps with one hot patch (row 2, col 5) on an 8 x 8 grid, of a picture given as given_size."""
    grid = np.zeros((8, 8), dtype=np.float32)
    grid[2, 5] = 1.0
    attn = np.broadcast_to(grid, (2, 3, 2, 8, 8)).copy() if heads else None  # (layers, heads, pieces, gh, gw)
    extra = {"gradcam": np.stack([grid, grid])}  # (pieces, gh, gw)
    return AttentionMaps(image=Image.new("RGB", image_size, "white"), words=["red", "circle"], groups=[[0], [1]],
                         pieces=["red", "circle"], grid=(8, 8), attn=attn, extra=extra, model="planted",
                         text="red circle", offset=offset, given_size=given_size)


@pytest.fixture(scope="module")
def blip_maps():
    m = mmkit.load_model("shapes-blip-caption", attention=True)
    return quiet(mmkit.attention_maps, m, wide_circle())


@pytest.fixture(scope="module")
def align_maps():
    m = mmkit.load_model("shapes-align", attention=True)
    return quiet(mmkit.attention_maps, m, wide_circle(), "a red circle")


# -- Finding 3: maps on the picture given ----------------------------------------------------------------------

def test_the_map_on_the_picture_given_lies_on_the_circle(blip_maps):
    maps = blip_maps
    assert maps.image.size == (400, 300) and maps.given_size == (1200, 300) and maps.offset == (0, 0)
    heat = maps.for_token("circle", size="given")
    assert type(heat) is np.ndarray and heat.shape == (300, 1200)
    y, x = np.unravel_index(np.argmax(heat), heat.shape)
    assert 75 <= x <= 225 and 75 <= y <= 225  # the hot spot on the circle of the picture given
    assert np.array_equal(heat[:, :400], maps.for_token("circle", size="image"))
    assert (heat[:, 400:] == 0).all()  # the part the model was not given


def test_given_is_the_image_map_moved_by_the_offset():
    crop = planted(given_size=(1200, 300), offset=(-400, 0))  # the model saw x = 400..799 of the picture given
    on_image = crop.for_token("circle", size="image")  # (300, 400)
    heat = crop.for_token("circle", size="given")
    assert heat.shape == (300, 1200)
    assert np.array_equal(heat[:, 400:800], on_image) and not heat[:, :400].any() and not heat[:, 800:].any()
    pad = planted(given_size=(400, 200), offset=(0, 50))  # padded with 50 px bands above and below
    assert np.array_equal(pad.for_token("circle", size="given", method="gradcam"),
                          pad.for_token("circle", size="image", method="gradcam")[50:250])  # bands cut away
    same = planted()  # the picture as given: "given" is "image"
    assert np.array_equal(same.for_token("circle", size="given"), same.for_token("circle", size="image"))


def test_overlay_places_a_map_of_the_crop_on_the_picture_given(blip_maps):
    maps, img = blip_maps, wide_circle()
    heat = maps.for_token("circle")  # (8, 8), on the 400 x 300 crop
    ax = mmkit.viz.overlay(img, heat).axes[0]
    drawn = ax.images[1]
    assert drawn.get_extent() == pytest.approx((-0.5, 399.5, 299.5, -0.5))  # over the crop, not the 1200 px
    assert ax.get_xlim() == pytest.approx((-0.5, 1199.5))
    gy, gx = np.unravel_index(np.argmax(heat), heat.shape)
    x = (gx + 0.5) * 400 / heat.shape[1]
    assert 75 <= x <= 225  # the hot cell is drawn over the circle
    ax = mmkit.viz.overlay(img, heat / heat.max()).axes[0]  # a map computed from one keeps its place
    assert ax.images[1].get_extent() == pytest.approx((-0.5, 399.5, 299.5, -0.5))
    ax = mmkit.viz.overlay(img, pickle.loads(pickle.dumps(heat))).axes[0]  # and one pickled (sent to a panel)
    assert ax.images[1].get_extent() == pytest.approx((-0.5, 399.5, 299.5, -0.5))
    ax = mmkit.viz.overlay(img, maps.for_token("circle", size="image")).axes[0]
    assert ax.images[1].get_extent() == pytest.approx((-0.5, 399.5, 299.5, -0.5))
    ax = mmkit.viz.overlay(maps.image, heat).axes[0]  # on the picture the model was given: as before
    assert ax.images[1].get_extent() == pytest.approx((-0.5, 399.5, 299.5, -0.5))
    assert ax.get_xlim() == pytest.approx((-0.5, 399.5))
    ax = mmkit.viz.overlay(img, maps.for_token("circle", size="given")).axes[0]
    assert ax.images[1].get_extent() == pytest.approx((-0.5, 1199.5, 299.5, -0.5))
    with pytest.raises(InputError, match="1200 x 300"):
        mmkit.viz.overlay(img.resize((600, 300)), heat)  # neither picture: not stretched over it


def test_overlay_places_a_crop_from_the_middle_and_cuts_padding_bands():
    crop = planted(given_size=(1200, 300), offset=(-400, 0))
    ax = mmkit.viz.overlay(Image.new("RGB", (1200, 300)), crop.for_token("circle")).axes[0]
    assert ax.images[1].get_extent() == pytest.approx((399.5, 799.5, 299.5, -0.5))
    pad = planted(given_size=(400, 200), offset=(0, 50))
    ax = mmkit.viz.overlay(Image.new("RGB", (400, 200)), pad.for_token("circle")).axes[0]
    assert ax.images[1].get_extent() == pytest.approx((-0.5, 399.5, 249.5, -50.5))
    assert ax.get_ylim() == pytest.approx((199.5, -0.5))  # the bands lie outside the picture shown


# -- Finding 4: errors that name the fix -----------------------------------------------------------------------

@pytest.mark.parametrize("size", [(0, 0), (-3, 4), (2.5, 3), (3,), "picture", (True, 3)])
def test_for_token_refuses_sizes_that_are_not_two_positive_whole_numbers(size):
    with pytest.raises(InputError, match="size"):
        planted().for_token(0, size=size)


def test_sorting_by_object_without_a_box_names_sort_not_by():
    maps = planted()
    for f in (mmkit.viz.head_view, mmkit.viz.head_view_html, mmkit.viz.head_order):
        with pytest.raises(InputError, match=r"sort='object' needs") as e:
            f(maps, "circle", sort="object")
        assert "by=" not in str(e.value) and "sort='entropy'" in str(e.value)
    with pytest.raises(InputError, match="sort="):
        mmkit.viz.head_view(maps, "circle", sort="size")


def test_maps_without_heads_say_so_in_every_head_figure(align_maps):
    assert align_maps.attn is None
    for f in (mmkit.viz.head_view, mmkit.viz.head_view_html, mmkit.viz.layer_head_grid, mmkit.viz.head_scores):
        with pytest.raises(InputError, match="no attention heads") as e:
            f(align_maps, "circle")
        assert "gradcam" in str(e.value) and "overlay" in str(e.value)
    with pytest.raises(InputError, match="no attention heads"):
        mmkit.viz.cell_image(align_maps, "circle", 0, 0)
    mmkit.viz.compare_methods(align_maps, "circle")  # the figure the message points to works


def test_html_and_png_exports_make_a_missing_folder(tmp_path):
    maps = planted()
    out = tmp_path / "new" / "deeper" / "heads.html"
    page = mmkit.viz.head_view_html(maps, "circle", path=out, cell=32, big=64)
    assert out.read_text(encoding="utf-8") == page
    png = tmp_path / "slides" / "heads.png"
    data = mmkit.viz.figure_png(mmkit.viz.head_view(maps, "circle"), png, dpi=40)
    assert png.read_bytes() == data
    with pytest.raises(InputError, match="folder"):
        mmkit.viz.head_view_html(maps, "circle", path=tmp_path / "new", cell=32, big=64)  # a folder, not a file
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InputError, match="afile"):
        mmkit.viz.head_view_html(maps, "circle", path=tmp_path / "afile" / "heads.html", cell=32, big=64)
