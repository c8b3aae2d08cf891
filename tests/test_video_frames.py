"""mmkit.data.video_frames and write_video: sources, timestamps, variable frame rate, rotation, size cap, bad files."""
import io
import warnings
from collections.abc import Iterator

import numpy as np
import pytest

av = pytest.importorskip("av")

from mmkit import InputError  # noqa: E402
from mmkit.data import ShapesClips, video_frames, write_video  # noqa: E402


def gray_frames(n=10, h=48, w=64):
    """Frames whose mean brightness encodes their index (20 * i), to check which frame came out."""
    return [np.full((h, w, 3), 20 * i, np.uint8) for i in range(n)]


def encoded(frames, fmt="mp4", **kw) -> bytes:
    buf = io.BytesIO()
    write_video(frames, buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def clip_mp4():
    return encoded(gray_frames(), fps=5)


@pytest.mark.parametrize("fmt", ["mp4", "webm"])
def test_every_frame_has_its_time_and_content(fmt):
    v = video_frames(encoded(gray_frames(), fmt, fps=5), every=None)
    frames = list(v)
    assert [f.time for f in frames] == pytest.approx([0.2 * i for i in range(10)])
    assert [f.index for f in frames] == list(range(10))
    means = [float(np.asarray(f.image).mean()) for f in frames]
    assert means == pytest.approx([20 * i for i in range(10)], abs=2.5)  # the right frame, barely changed
    assert frames[0].image.size == (64, 48) and frames[0].image.mode == "RGB"
    assert v.info.fps == pytest.approx(5) and v.info.duration == pytest.approx(2.0, abs=0.05)
    assert not v.truncated


def test_sampling_takes_the_first_frame_at_each_step(clip_mp4):
    assert [f.time for f in video_frames(clip_mp4, every=0.5)] == pytest.approx([0.0, 0.6, 1.0, 1.6])
    assert [f.time for f in video_frames(clip_mp4, every=1.0)] == pytest.approx([0.0, 1.0])
    assert [f.time for f in video_frames(clip_mp4, every=0.5, max_frames=2)] == pytest.approx([0.0, 0.6])


def test_path_bytes_and_file_object_agree(tmp_path, clip_mp4):
    path = tmp_path / "clip.mp4"
    path.write_bytes(clip_mp4)
    with open(path, "rb") as fh:
        from_file = [f.time for f in video_frames(fh, every=0.4)]
    assert [f.time for f in video_frames(path, every=0.4)] == from_file == \
        [f.time for f in video_frames(str(path), every=0.4)] == [f.time for f in video_frames(clip_mp4, every=0.4)]


def test_it_streams_one_frame_at_a_time(clip_mp4):
    v = video_frames(clip_mp4, every=None)
    assert isinstance(v, Iterator) and not isinstance(v, (list, tuple))
    first = next(v)
    assert first.time == 0.0 and next(v).time == pytest.approx(0.2)  # decoded on demand
    v.close()


def test_variable_frame_rate_keeps_the_true_times():
    times = [0, 0.1, 0.2, 0.3, 1.0, 1.05, 1.1, 2.0, 2.5, 3.0]
    data = encoded(gray_frames(), fps=5, times=times)
    assert [f.time for f in video_frames(data, every=None)] == pytest.approx(times)
    # sampling by time, not by frame count: the frame shown at or just after each second
    sampled = list(video_frames(data, every=1.0))
    assert [f.time for f in sampled] == pytest.approx([0.0, 1.0, 2.0, 3.0])
    assert [f.index for f in sampled] == [0, 4, 7, 9]


def test_rotation_metadata_is_applied():
    a = np.full((48, 64, 3), 240, np.uint8)
    a[:12, :20] = (20, 20, 20)  # a dark block at the stored picture's top-left
    v = video_frames(encoded([a] * 3, fps=5, rotation=90))
    image = next(v).image
    assert v.info.rotation == 90 and image.size == (48, 64)  # portrait once upright
    ys, xs = np.nonzero(np.asarray(image)[:, :, 0] < 100)
    assert ys.mean() > 40 and xs.mean() < 10  # a quarter turn counter-clockwise moves top-left to bottom-left


def test_huge_resolution_is_decoded_with_a_size_cap():
    # 8K, two frames, encoded fast: the decoder scales each frame down while it is still YUV
    buf = io.BytesIO()
    c = av.open(buf, "w", format="mp4")
    s = c.add_stream("libx264", rate=2, options={"preset": "ultrafast"})
    s.width, s.height, s.pix_fmt = 7680, 4320, "yuv420p"
    a = np.full((4320, 7680, 3), 240, np.uint8)
    a[:2160, :3840] = (200, 30, 30)
    for _ in range(2):
        for p in s.encode(av.VideoFrame.from_ndarray(a, format="rgb24")):
            c.mux(p)
    for p in s.encode():
        c.mux(p)
    c.close()
    v = video_frames(buf.getvalue(), every=None)
    frames = list(v)
    assert (v.info.width, v.info.height) == (7680, 4320) and v.info.scaled_to == (1280, 720)
    assert len(frames) == 2 and frames[0].image.size == (1280, 720)
    assert np.asarray(frames[0].image)[100, 100, 0] > 150  # the red quarter survives the scaling
    small = next(video_frames(buf.getvalue(), max_side=256)).image
    assert small.size == (256, 144)


def test_synthetic_clip_round_trip_mp4_and_webm():
    clip = ShapesClips(1, seed=3, duration=4)[0]
    for fmt in ("mp4", "webm"):
        frames = list(video_frames(clip.to_bytes(fmt), every=None))
        assert len(frames) == len(clip.times) == 32
        err = [np.abs(np.asarray(f.image, float) - np.asarray(clip.frame(f.time), float)).mean() for f in frames]
        assert max(err) < 4.0  # a few grey levels of compression error per pixel


# -- bad videos -----------------------------------------------------------------------------------------------


def test_text_file_named_mp4(tmp_path):
    p = tmp_path / "notes.mp4"
    p.write_text("these are my notes, not a video\n" * 20)
    with pytest.raises(InputError, match=r"notes\.mp4.*not a readable video.*re-encode"):
        video_frames(p)


def test_truncated_mp4_is_refused_naming_the_fix(clip_mp4):
    with pytest.raises(InputError, match="damaged, cut short.*re-download"):
        video_frames(clip_mp4[: len(clip_mp4) // 2])


def test_truncated_webm_gives_the_frames_before_the_cut_and_warns():
    data = ShapesClips(1, seed=4)[0].to_bytes("webm")
    v = video_frames(data[: len(data) // 2], every=None)
    with pytest.warns(UserWarning, match="cut short"):
        frames = list(v)
    assert 0 < len(frames) < 64 and v.truncated


def test_zero_frames():
    for fmt, codec in (("mp4", "libx264"), ("webm", "libvpx-vp9")):
        buf = io.BytesIO()
        c = av.open(buf, "w", format=fmt)
        s = c.add_stream(codec, rate=8)
        s.width = s.height = 64
        s.pix_fmt = "yuv420p"
        c.start_encoding()  # the header, no frames
        c.close()
        with pytest.raises(InputError, match="record or export|re-encode"):
            video_frames(buf.getvalue())


def test_audio_only():
    buf = io.BytesIO()
    c = av.open(buf, "w", format="mp4")
    s = c.add_stream("aac", rate=16000)
    for i in range(8):
        fr = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        fr.sample_rate, fr.pts = 16000, i * 1024
        for p in s.encode(fr):
            c.mux(p)
    for p in s.encode():
        c.mux(p)
    c.close()
    with pytest.raises(InputError, match=r"no picture track \(only audio\).*video stream"):
        video_frames(buf.getvalue())


@pytest.mark.parametrize("bad, match", [
    ("missing.mp4", "does not exist"), (b"", "empty"), (12, "cannot read a video"),
])
def test_bad_sources(bad, match):
    with pytest.raises(InputError, match=match):
        video_frames(bad)


@pytest.mark.parametrize("kw", [dict(every=0), dict(every=-1), dict(every="1"), dict(max_frames=0),
                                dict(max_frames=1.5), dict(max_side=4)])
def test_bad_options(clip_mp4, kw):
    with pytest.raises(InputError):
        video_frames(clip_mp4, **kw)


def test_write_video_needs_a_format_and_frames():
    with pytest.raises(InputError, match="format"):
        write_video(gray_frames(2), io.BytesIO())
    with pytest.raises(InputError, match="no frames"):
        write_video([], io.BytesIO(), format="mp4")


def test_text_mode_file_objects_are_refused(tmp_path, clip_mp4):
    path = tmp_path / "clip.mp4"
    path.write_bytes(clip_mp4)
    with open(path, "r") as fh, pytest.raises(InputError, match="binary mode"):
        video_frames(fh)
    with pytest.raises(InputError, match="binary mode"):
        video_frames(io.StringIO("abc"))


def test_gif_with_long_last_frame_is_not_called_truncated(tmp_path):
    clip = ShapesClips(1, seed=1, duration=4)[0]
    frames = list(clip.frames())
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=125, loop=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "cut short" warning: the last (merged) frame is shown for longer
        v = video_frames(tmp_path / "a.gif", every=0.5)
        times = [f.time for f in v]
    assert times[0] == 0 and not v.truncated and v.info.codec == "gif"
