"""Edges of video handling an outside tester found: clips that start after 0 s, segment and moment ends at the
clip's end, and the video CLI's notes and option checks."""
import json
import warnings
from fractions import Fraction

import numpy as np
import pytest

av = pytest.importorskip("av")

import mmkit  # noqa: E402
from mmkit.cli import main  # noqa: E402
from mmkit.data import ShapesClips, video_frames, write_video  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: as fast, and fairer to a shared CPU


def shifted_clip(path, codec: str, start: float = 5.0, seconds: float = 2.0, fps: int = 10):
    """A clip whose frame timestamps run from `start` to `start + seconds` (as a camera or a cut can leave them)."""
    c = av.open(str(path), "w")
    s = c.add_stream(codec, rate=fps)
    s.width, s.height, s.pix_fmt = 32, 32, "yuv420p"
    tb = Fraction(1, 1000)
    s.codec_context.time_base = tb
    for i in range(int(seconds * fps)):
        frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 8 * i % 256, np.uint8), format="rgb24")
        frame.pts, frame.time_base = int(round((start + i / fps) * 1000)), tb
        for p in s.encode(frame):
            c.mux(p)
    for p in s.encode():
        c.mux(p)
    c.close()
    return path


def gray_clip(path, times):
    """An MP4 with one frame at each of `times` (s), 10 fps time base."""
    write_video([np.full((32, 32, 3), 40, np.uint8)] * len(times), str(path), fps=10, times=times)
    return path


@pytest.mark.parametrize("name, codec", [("a.mkv", "libx264"), ("a.webm", "libvpx-vp9"), ("a.mp4", "libx264")])
def test_a_clip_starting_after_zero_is_not_called_cut_short(tmp_path, name, codec):
    """Matroska counts its duration from 0 s: a 2 s clip at 5-7 s said 7 s, and warned it was cut short."""
    v = video_frames(shifted_clip(tmp_path / name, codec), every=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        times = [f.time for f in v]
    assert times == pytest.approx([0, 0.5, 1.0, 1.5]) and not v.truncated
    assert v.info.duration == pytest.approx(2.0) and v.end == pytest.approx(2.0)


def test_a_clip_starting_after_zero_that_is_cut_short_still_warns(tmp_path):
    data = shifted_clip(tmp_path / "a.webm", "libvpx-vp9", seconds=8, fps=4).read_bytes()
    v = video_frames(data[: len(data) // 2], every=None)
    with pytest.warns(UserWarning, match="cut short"):
        frames = list(v)
    assert frames[0].time == 0 and v.truncated and v.end < 8 and v.info.duration == pytest.approx(8.0)


@pytest.mark.parametrize("times, every", [([0.0], 1.0), ([0.0, 0.1], 0.5), ([i / 10 for i in range(80)], 3.0),
                                          ([i / 10 for i in range(80)], 0.25)])
def test_segments_and_moments_end_at_the_clip_end(tmp_path, cap_model, clip_model, times, every):
    """A 0.1 s clip had a segment 0-1 s; an 8 s clip one ending at 9 s (every=3) or 8.1 s (every=0.25)."""
    path = gray_clip(tmp_path / "c.mp4", times)
    length = round(times[-1] + 0.1, 6)
    seg = mmkit.caption_video(cap_model, path, every=every).segments
    assert seg[0].start == 0 and seg[-1].end == pytest.approx(length) and all(s.end <= length + 1e-9 for s in seg)
    found = mmkit.search_video(clip_model, path, "a red circle", every=every, threshold=-1, regions="frame")
    assert [(m.start, m.end) for m in found.moments] == [(0, pytest.approx(length))]  # every frame: one moment


def test_a_gif_whose_last_frame_is_long_ends_at_its_duration(tmp_path, cap_model):
    """Frames at 0, 3 and 5 s of an 8 s GIF: the last segment ended at 7.5 s (5 s plus the median step)."""
    frames = list(ShapesClips(1, seed=5, duration=4, fps=1, size=48)[0].frames())
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:3], duration=[3000, 2000, 3000], loop=0)
    result = mmkit.caption_video(cap_model, tmp_path / "a.gif", every=0.5)
    assert result.times == pytest.approx([0, 3, 5]) and result.segments[-1].end == pytest.approx(8.0)


def test_a_threshold_no_frame_reaches_is_said(tmp_path, capsys):
    path = gray_clip(tmp_path / "c.mp4", [0.0, 0.5, 1.0])
    assert main(["search-video", str(path), "a red circle", "--threshold", "2", "--model", "shapes-clip"]) == 0
    out, err = capsys.readouterr()
    assert out == "" and "mmkit: note: no frame reached --threshold 2: the best score was" in err


@pytest.mark.parametrize("argv, flag", [(["search-video", "c.mp4", "a red circle", "-k", "0"], "-k"),
                                        (["search-video", "c.mp4", "red", "--max-frames", "0"], "--max-frames"),
                                        (["caption", "c.mp4", "--max-frames", "-1"], "--max-frames"),
                                        (["caption", "c.mp4", "--max-tokens", "0"], "--max-tokens")])
def test_bad_numbers_are_refused_before_the_model_loads(tmp_path, monkeypatch, capsys, argv, flag):
    def no_loading(*a, **kw):
        raise AssertionError("the model was loaded before the options were checked")

    monkeypatch.setattr(mmkit, "load_model", no_loading)
    gray_clip(tmp_path / "c.mp4", [0.0])
    monkeypatch.chdir(tmp_path)
    assert main(argv + ["--model", "shapes-clip"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"mmkit: error: {flag}") and "skipped" not in err
    assert not any(name in err for name in (" k=", "max_frames", "max_new_tokens"))  # the flag, not the argument


def test_the_cli_prints_warnings_as_notes(tmp_path, capsys):
    """The "cut short" warning came out as `<frozen runpy>:88: UserWarning: ...`."""
    data = ShapesClips(1, seed=4)[0].to_bytes("webm")
    (tmp_path / "cut.webm").write_bytes(data[: len(data) // 2])
    argv = ["caption", str(tmp_path / "cut.webm"), "--model", "shapes-blip-caption", "--every", "2", "--json"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "mmkit: note: " in err and "cut short" in err and "UserWarning" not in err
    assert all("cut short" in json.loads(line)["notice"] for line in out.splitlines())
    with pytest.warns(UserWarning, match="cut short"):  # the Python API keeps its warning
        list(video_frames(data[: len(data) // 2]))
