"""`mmkit caption clip.mp4` (timed segments) and `mmkit search-video clip.mp4 TEXT` (moments), through mmkit.cli.main."""
import json

import pytest

pytest.importorskip("av")

from mmkit.cli import main  # noqa: E402
from mmkit.data import ShapesClips  # noqa: E402
from mmkit.video.cli import handles  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: as fast, and fairer to a shared CPU


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory):
    clip = ShapesClips(1, seed=41, duration=5)[0]
    path = tmp_path_factory.mktemp("v") / "clip.mp4"
    clip.save(path)
    return clip, str(path)


def test_routing():
    assert handles(["caption", "a.mp4"]) and handles(["caption", "--json", "b.WEBM"]) and handles(["search-video"])
    assert not handles(["caption", "a.png"]) and not handles(["answer", "a.mp4", "-q", "x"]) and not handles([])


def test_a_gif_is_a_clip_alone_and_a_picture_among_pictures(tmp_path, capsys):
    from mmkit.data import ShapesWorld

    assert handles(["caption", "a.gif"]) and handles(["caption", "a.gif", "b.mp4", "--json"])
    assert handles(["caption", "a.gif", "--model", "shapes-blip-caption"])
    scenes = ShapesWorld(2, seed=7, split="test", objects=1)
    scenes[0].image.save(tmp_path / "a.png")
    scenes[1].image.save(tmp_path / "b.gif", save_all=True, append_images=[scenes[1].image.rotate(5)])  # animated
    pictures = ["caption", str(tmp_path / "a.png"), str(tmp_path / "b.gif")]
    assert not handles(pictures) and not handles(["caption", str(tmp_path), str(tmp_path / "b.gif")])
    assert handles(["caption", "a.mp4", str(tmp_path / "a.png")])  # a real video among pictures: told to split them
    assert main(pictures + ["--model", "shapes-blip-caption", "--json"]) == 0
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert "1 animated GIF (b.gif) was read as a picture, by the first frame" in err  # and how to get the video
    assert [r["image"].rsplit("/", 1)[-1] for r in rows] == ["a.png", "b.gif"] and all(r["caption"] for r in rows)
    assert scenes[1].objects[0].shape in rows[1]["caption"]  # the GIF's first frame was captioned as a picture


def test_caption_gives_timed_segments(clip_file, capsys):
    clip, path = clip_file
    assert main(["caption", path, "--model", "shapes-blip-caption", "--every", "0.5", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows[0]["start"] == 0 and rows[-1]["end"] == pytest.approx(clip.duration)
    assert all(a["end"] == b["start"] for a, b in zip(rows, rows[1:])) and {r["video"] for r in rows} == {path}
    name = clip.timeline[0].name
    assert any(name in r["caption"] for r in rows)
    assert main(["caption", path, "--model", "shapes-blip-caption", "--every", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(line.startswith(path + "\t") and line.count("\t") == 2 for line in lines)


def test_search_video_gives_moments(clip_file, capsys):
    clip, path = clip_file
    truth = clip.timeline[0]
    assert main(["search-video", path, f"a {truth.name}", "--model", "shapes-clip", "--every", "0.25", "-k", "2",
                 "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert 1 <= len(rows) <= 2 and rows[0]["score"] >= rows[-1]["score"]
    best = rows[0]
    inter = max(0, min(best["end"], truth.end) - max(best["start"], truth.start))
    assert inter / (max(best["end"], truth.end) - min(best["start"], truth.start)) >= 0.5


def test_bad_videos_exit_2_with_one_line(clip_file, tmp_path, capsys):
    _, path = clip_file
    fake = tmp_path / "notes.mp4"
    fake.write_text("not a video")
    assert main(["caption", str(fake), path, "--model", "shapes-blip-caption", "--json"]) == 2
    out, err = capsys.readouterr()
    assert "not a readable video" in err and "Traceback" not in err
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows[0]["video"] == str(fake) and "error" in rows[0] and rows[-1]["video"] == path  # the good one ran
    assert main(["search-video", path, "a red circle", "--every", "0", "--model", "shapes-clip"]) == 2
    assert "--every" in capsys.readouterr().err


def test_json_is_valid_utf8_whatever_the_file_name(clip_file, tmp_path, capfdbinary):
    import os

    _, path = clip_file
    odd = os.path.join(os.fsencode(tmp_path), b"clip-\xff.mp4")  # a name that is not UTF-8
    with open(path, "rb") as src, open(odd, "wb") as dst:
        dst.write(src.read())
    assert main(["caption", os.fsdecode(odd), "--model", "shapes-blip-caption", "--every", "2", "--json"]) == 0
    out = capfdbinary.readouterr().out
    rows = [json.loads(line) for line in out.decode("utf-8").splitlines()]  # decodes: valid UTF-8
    assert rows and all(r["video"].endswith("clip-\\xff.mp4") for r in rows)


def test_a_picture_among_videos_is_refused_before_any_video_is_captioned(clip_file, tmp_path, capsys):
    """`mmkit caption clip.mp4 a.png` captioned the video, then stopped at the picture (exit 2): the work was done
    and the picture not. Now it stops before loading the model, naming the command for each kind."""
    _, path = clip_file
    from mmkit.data import ShapesWorld

    ShapesWorld(1, seed=1)[0].image.save(tmp_path / "a.png")
    assert main(["caption", path, str(tmp_path / "a.png"), "--model", "shapes-blip-caption"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "a.png' is not a video file name" in err and "separate commands" in err
