"""Four leftovers from an outside tester: labels the model reads alike, a still picture given to a video function,
layer=/head= on map methods that have no layers or heads, and the classroom client's maps on the picture given."""
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

import mmkit
from mmkit.attention.maps import AttentionMaps, upsample
from mmkit.classroom import ModelServer, RemoteCaptioner, RemoteMaps
from mmkit.config import models_dir
from mmkit.errors import InputError

REPO = Path(__file__).resolve().parents[1]


def quiet(f, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return f(*args, **kwargs)


def red_circle(size=(224, 224)):
    img = Image.new("RGB", size, "white")
    w, h = size
    ImageDraw.Draw(img).ellipse([w / 2 - 50, h / 2 - 50, w / 2 + 50, h / 2 + 50], fill=(220, 30, 30))
    return img


# -- 1: labels the model reads alike are duplicates --------------------------------------------------------------

@pytest.mark.parametrize("name", ["shapes-clip", "shapes-align"])
def test_labels_differing_in_case_are_duplicates_for_a_lowercasing_tokenizer(name):
    m = mmkit.load_model(name)
    with pytest.raises(InputError) as e:
        mmkit.zero_shot(m, red_circle(), ["red circle", "Red Circle"])
    msg = str(e.value)
    assert "'red circle'" in msg and "'Red Circle'" in msg and "alike" in msg and "case" in msg
    with pytest.raises(InputError, match="alike"):  # spaces the tokenizer drops: one text to the model too
        mmkit.zero_shot(m, red_circle(), ["red circle", "blue square", "red  circle"])
    with pytest.raises(InputError, match=r"duplicate labels \['cat'\]"):  # the same spelling twice: as before
        mmkit.zero_shot(m, red_circle(), ["cat", "dog", "cat"])
    p = quiet(mmkit.zero_shot, m, red_circle(), ["red circle", "blue square"])  # different texts still work
    assert set(p) == {"red circle", "blue square"} and p["red circle"] > 0.5


class FakeTokenizer:
    """Ids = character codes; lower=True folds case first, as CLIP's and uncased BERT's tokenizers do."""

    def __init__(self, lower: bool):
        self.lower = lower

    def __call__(self, texts, truncation=False, max_length=None):
        ids = [[ord(c) for c in (t.lower() if self.lower else t)][:max_length] for t in texts]
        return {"input_ids": ids}


def test_a_tokenizer_that_keeps_case_tells_the_spellings_apart():
    from mmkit.tasks.embeddings import read_alike

    labels, templates = ["red circle", "Red Circle", "blue square"], ("a photo of a {}.", "{}")
    assert read_alike(FakeTokenizer(lower=True), labels, templates, 77) == [["red circle", "Red Circle"]]
    assert read_alike(FakeTokenizer(lower=False), labels, templates, 77) == []
    # prompts cut at the limit are the same text to the model
    assert read_alike(FakeTokenizer(lower=False), ["abcd1", "abcd2"], ("{}",), 4) == [["abcd1", "abcd2"]]
    assert read_alike(FakeTokenizer(lower=False), ["abcd1", "abcd2"], ("{}", "a {}"), 4) == [["abcd1", "abcd2"]]


def test_a_real_cased_tokenizer_keeps_both_spellings(model_dirs):
    """A tiny random CLIP whose tokenizer no longer lower-cases: 'Red Circle' is another text to it."""
    from tokenizers import normalizers

    m = mmkit.load_model(model_dirs("clip"))
    tok = m.processor.tokenizer
    tok.backend_tokenizer.normalizer = normalizers.NFC()  # as a cased pretrained tokenizer: no Lowercase
    if tok(["Red Circle"])["input_ids"] == tok(["red circle"])["input_ids"]:
        pytest.skip("this tokenizer cannot tell the spellings apart")
    p = quiet(mmkit.zero_shot, m, red_circle((32, 32)), ["red circle", "Red Circle"])
    assert set(p) == {"red circle", "Red Circle"}


# -- 2: a still picture given to a video function ----------------------------------------------------------------

@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    from mmkit.data import ShapesClips, ShapesWorld

    folder = tmp_path_factory.mktemp("stills")
    scene = ShapesWorld(1, seed=3, split="test", objects=1)[0].image
    scene.save(folder / "a.png")
    scene.save(folder / "still.gif")
    frames = list(ShapesClips(1, seed=5, duration=4, fps=1, size=48)[0].frames())[:3]
    frames[0].save(folder / "moving.gif", save_all=True, append_images=frames[1:], duration=1000, loop=0)
    return folder


def test_a_picture_given_to_a_video_function_is_refused_naming_the_image_function(pictures, cap_model, clip_model):
    pytest.importorskip("av")
    png = pictures / "a.png"
    for video in (png, str(png), png.read_bytes(), pictures / "still.gif"):
        with pytest.raises(InputError, match=r"is a picture.*mmkit\.caption\(") as e:
            mmkit.caption_video(cap_model, video)
        assert "video" in str(e.value)
    with open(png, "rb") as f, pytest.raises(InputError, match=r"is a picture.*mmkit\.caption\("):
        mmkit.caption_video(cap_model, f)
    with pytest.raises(InputError, match=r"is a picture.*mmkit\.match\("):
        mmkit.search_video(clip_model, png, "a red circle")
    with pytest.raises(InputError, match=r"is a picture.*mmkit\.answer\("):
        mmkit.answer_video("shapes-blip-vqa", png.read_bytes(), "is there a circle?")


def test_an_animated_gif_and_a_video_are_still_videos(pictures, cap_model, clip_model):
    pytest.importorskip("av")
    from mmkit.data import ShapesClips

    res = mmkit.caption_video(cap_model, pictures / "moving.gif")
    assert res.times == pytest.approx([0, 1, 2])
    with open(pictures / "moving.gif", "rb") as f:
        assert len(mmkit.search_video(clip_model, f, "a red circle", regions="frame").times) == 3
    clip = ShapesClips(1, seed=2026, duration=4)[0].to_bytes("mp4")
    assert len(mmkit.caption_video(cap_model, clip, every=1.0).times) == 4


def test_the_video_command_takes_a_still_gif_as_a_picture(pictures):
    from mmkit.video.cli import handles

    assert not handles(["caption", str(pictures / "still.gif")])
    assert handles(["caption", str(pictures / "moving.gif")]) and handles(["caption", "missing.gif"])


# -- 3: layer= and head= on methods that give one map per word ---------------------------------------------------

def planted(heads=True, given_size=(), offset=(0, 0), image_size=(400, 300)):
    """AttentionMaps with one hot patch (row 2, col 5) on an 8 x 8 grid (as in test_maps_given.py)."""
    grid = np.zeros((8, 8), dtype=np.float32)
    grid[2, 5] = 1.0
    attn = np.broadcast_to(grid, (2, 3, 2, 8, 8)).copy() if heads else None  # (layers, heads, pieces, gh, gw)
    extra = {"rollout": np.stack([grid, grid]), "gradcam": np.stack([grid, grid])}  # (pieces, gh, gw)
    return AttentionMaps(image=Image.new("RGB", image_size, "white"), words=["red", "circle"], groups=[[0], [1]],
                         pieces=["red", "circle"], grid=(8, 8), attn=attn, extra=extra, model="planted",
                         text="red circle", offset=offset, given_size=given_size)


@pytest.mark.parametrize("kwargs", [dict(layer=0), dict(head=1), dict(layer=-1, head=0, agg="max")])
@pytest.mark.parametrize("method", ["rollout", "gradcam"])
def test_layer_and_head_on_a_method_without_them_are_refused(method, kwargs):
    maps = planted()
    with pytest.raises(InputError, match=rf"method {method!r} gives one map per word, not one per layer and head.*"
                                         r"method='attention'"):
        maps.for_token("circle", method=method, **kwargs)
    assert maps.for_token("circle", method="attention", **kwargs).shape == (8, 8)  # raw attention takes them
    assert maps.for_token("circle", method=method, agg="max").shape == (8, 8)  # the attention explorer's call


def test_agg_rollout_with_a_layer_is_refused_and_maps_without_heads_say_so():
    with pytest.raises(InputError, match="'rollout' gives one map per word"):
        planted().for_token("circle", agg="rollout", layer=0)
    with pytest.raises(InputError, match="planted has no attention heads") as e:
        planted(heads=False).for_token("circle", method="gradcam", head=0)
    assert "method='attention'" not in str(e.value)
    assert "not one per layer and head" in AttentionMaps.for_token.__doc__


def test_layer_head_grid_of_maps_without_heads_is_an_input_error():
    with pytest.raises(InputError, match="no attention heads"):
        mmkit.viz.layer_head_grid(planted(heads=False), "circle")


# -- 4: the classroom client's maps on the picture given ---------------------------------------------------------

def remote_twin(maps: AttentionMaps) -> RemoteMaps:
    """The RemoteMaps a client would build from maps sent by the server."""
    return RemoteMaps(maps.image, list(maps.words), ["gradcam"],
                      {"gradcam": np.stack([maps.for_token(i, method="gradcam") for i in range(len(maps.words))])},
                      maps.offset, maps.given_size)


@pytest.mark.parametrize("given_size, offset", [((1200, 300), (-400, 0)), ((400, 200), (0, 50)), ((), (0, 0))])
def test_remote_maps_take_the_library_sizes(given_size, offset):
    local = planted(given_size=given_size, offset=offset)
    remote = remote_twin(local)
    for size in (None, "image", "given", (30, 40)):
        a, b = local.for_token(1, method="gradcam", size=size), remote.for_token(1, method="gradcam", size=size)
        assert type(a) is type(b) and np.array_equal(a, b) and getattr(a, "placed", None) == getattr(b, "placed", None)
    given = Image.new("RGB", given_size or local.image.size)
    for size in (None, "given"):
        ax = mmkit.viz.overlay(given, remote.for_token(1, size=size)).axes[0]
        want = mmkit.viz.overlay(given, local.for_token(1, method="gradcam", size=size)).axes[0]
        assert ax.images[1].get_extent() == pytest.approx(want.images[1].get_extent())
    with pytest.raises(InputError, match="size"):
        remote.for_token(0, size="picture")


def test_upsample_needs_no_torch_and_matches_torch():
    import torch

    rng = np.random.default_rng(0)
    for grid, size in (((8, 8), (300, 400)), ((7, 5), (13, 29)), ((24, 24), (5, 7)), ((1, 3), (4, 4))):
        m = rng.random(grid, dtype=np.float32)
        t = torch.nn.functional.interpolate(torch.from_numpy(m)[None, None], size=size, mode="bilinear",
                                            align_corners=False)[0, 0].numpy()
        assert upsample(m, size).shape == size and np.allclose(upsample(m, size), t, atol=1e-6)
    code = ("import sys, numpy as np; from PIL import Image; from mmkit.classroom import RemoteMaps\n"
            "r = RemoteMaps(Image.new('RGB', (40, 30)), ['a'], ['gradcam'], {'gradcam': np.ones((1, 4, 4), 'f4')},"
            " (-10, 0), (60, 30))\n"
            "assert r.for_token(0, size='given').shape == (30, 60)\n"
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_served_maps_lie_on_the_picture_given(draw_shape):
    pytest.importorskip("ipywidgets")
    if not (models_dir() / "shapes-blip-caption" / "config.json").exists():
        pytest.skip("bundled model shapes-blip-caption is not in data/models (make models)")
    picture = draw_shape("triangle", draw_shape.known["green"], (235, 225, 200), (300, 150), 0.7)  # cropped to 4:3
    server = ModelServer("shapes-blip-caption", warm=False).start()
    try:
        res = RemoteCaptioner(server.url).caption(picture)
    finally:
        server.stop()
    local = quiet(mmkit.attention_maps, "shapes-blip-caption", picture, res.caption)
    assert res.maps.given_size == local.given_size == (300, 150)
    for k in range(len(local.words)):
        for method in local.methods:
            mine = res.maps.for_token(k, method=method, size="given")
            assert mine.shape == (150, 300)
            assert np.allclose(mine, local.for_token(k, method=method, size="given"), atol=1e-3)
    heat = res.maps.for_token(0)
    ax = mmkit.viz.overlay(picture, heat).axes[0]
    want = mmkit.viz.overlay(picture, local.for_token(0)).axes[0]
    assert ax.images[1].get_extent() == pytest.approx(want.images[1].get_extent())
    assert ax.images[1].get_extent() != pytest.approx((-0.5, 299.5, 149.5, -0.5))  # not stretched over the picture
