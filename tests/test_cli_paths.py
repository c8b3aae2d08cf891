"""The CLI's paths: a missing one among others, what folders hold that is not read, the notes' ordinals."""
import json
import os

import pytest
from PIL import Image, ImageDraw

from mmkit import InputError
from mmkit.cli import concerned, expand, main, ordinal
from mmkit.config import models_dir

pytestmark = pytest.mark.usefixtures("one_thread")
MODEL = "shapes-blip-caption"  # bundled and small


def picture(path):
    """A 64x64 red circle on a light grey background, saved as PNG."""
    im = Image.new("RGB", (64, 64), (240, 240, 240))
    ImageDraw.Draw(im).ellipse((16, 16, 48, 48), fill=(220, 30, 30))
    im.save(path, format="PNG")
    return path


def run(capsys, *argv):
    """main(argv) with the bundled model: (exit code, stdout lines, stderr)."""
    if not (models_dir() / MODEL / "config.json").exists():
        pytest.skip(f"bundled model {MODEL} is not in data/models (build it with `make models`)")
    code = main([str(a) for a in [*argv, "--model", MODEL, "--max-tokens", "5"]])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def test_a_missing_path_among_images_is_one_error_record_and_the_others_are_read(tmp_path, capsys):
    good, missing = picture(tmp_path / "00_plain.png"), tmp_path / "nonexistent.png"
    code, lines, err = run(capsys, "caption", good, missing, "--json")
    recs = [json.loads(x) for x in lines]  # valid JSON Lines, in input order
    assert code == 2 and [r["image"] for r in recs] == [str(good), str(missing)]
    assert "caption" in recs[0] and set(recs[1]) == {"image", "error"} and "does not exist" in recs[1]["error"]
    assert f"mmkit: skipped {missing}: " in err and "1 of 2 images could not be read" in err
    assert "mmkit: error" not in err
    code, lines, err = run(capsys, "caption", missing, good)  # text mode: the error on stderr only
    assert code == 2 and len(lines) == 1 and lines[0].startswith(str(good) + "\t")
    assert f"mmkit: skipped {missing}: '{missing}' does not exist" in err


def test_a_broken_link_given_by_name_says_so(tmp_path, capsys):
    link = tmp_path / "link.png"
    os.symlink(tmp_path / "gone.png", link)
    code, lines, err = run(capsys, "caption", picture(tmp_path / "a.png"), link, "--json")
    assert code == 2 and "is a broken link" in json.loads(lines[1])["error"]


def test_no_path_that_exists_is_one_error_line(tmp_path, capsys):
    code, lines, err = run(capsys, "caption", tmp_path / "nope.png")
    assert code == 2 and lines == [] and err.count("\n") == 1
    assert err.startswith("mmkit: error: ") and "nope.png' does not exist" in err
    code, lines, err = run(capsys, "caption", tmp_path / "a.png", tmp_path / "b.png", "--json")
    assert code == 2 and lines == [] and err.count("\n") == 1
    assert "none of the 2 paths given exists" in err and "a.png' does not exist" in err and "b.png'" in err
    with pytest.raises(InputError, match="does not exist"):
        expand([str(tmp_path / "nope.png")])
    assert expand([str(tmp_path / "nope.png"), str(picture(tmp_path / "a.png"))]) == [tmp_path / "nope.png",
                                                                                   tmp_path / "a.png"]


@pytest.fixture
def files(tmp_path):
    """files/: a picture, a hidden picture, a sub-folder with a picture, a text file, a macOS '._' metadata file."""
    d = tmp_path / "files"
    (d / "sub").mkdir(parents=True)
    (d / ".git").mkdir()  # hidden folders are never read: not named
    picture(d / "00_plain.png")
    picture(d / ".25_hidden.png")
    picture(d / "sub" / "10_in_sub.png")
    (d / "notes.txt").write_text("not a picture")
    (d / "._00_plain.png").write_bytes(b"\x00\x05\x16\x07")  # metadata, not a picture: not named
    return d


def test_sub_folders_and_hidden_files_passed_over_are_named_on_stderr(files, capsys):
    code, lines, err = run(capsys, "caption", files, "--json")
    assert code == 0 and [json.loads(x)["image"] for x in lines] == [str(files / "00_plain.png")]  # stdout clean
    said = [x for x in err.splitlines() if "sub-folder" in x or "hidden" in x]
    assert said == ["mmkit: passed over 1 sub-folder (sub), read with --recursive, and 1 hidden file "
                    "(.25_hidden.png), read only when passed by name"]
    assert "notes.txt" in err and ".git" not in err and "._00_plain" not in err
    code, lines, err = run(capsys, "caption", files, "--recursive")
    assert code == 0 and [x.split("\t")[0] for x in lines] == [str(files / "00_plain.png"),
                                                              str(files / "sub" / "10_in_sub.png")]
    assert "sub-folder" not in err and "1 hidden file (.25_hidden.png)" in err
    code, lines, err = run(capsys, "caption", files / ".25_hidden.png")  # given by name, it is read
    assert code == 0 and len(lines) == 1 and "hidden" not in err


def test_a_folder_of_hidden_pictures_only_says_how_to_read_them(tmp_path):
    picture(tmp_path / ".a.png")
    with pytest.raises(InputError, match=r"has no image files .*its hidden files \(\.a\.png\) are read only when"):
        expand([str(tmp_path)])


def test_every_note_has_an_ordinal_in_one_wording():
    assert [ordinal(n) for n in (1, 4, 5, 10, 11, 12, 13, 21, 22, 23, 101, 111, 112)] == [
        "first", "fourth", "fifth", "tenth", "11th", "12th", "13th", "21st", "22nd", "23rd", "101st", "111th", "112th"]
    lines = concerned({f"n{k}": ["a.png"] for k in range(12)}, 2)
    assert [x.split(" concerns ")[0] for x in lines[3:6] + lines[9:]] == [
        "mmkit: the fourth note", "mmkit: the fifth note", "mmkit: the sixth note", "mmkit: the tenth note",
        "mmkit: the 11th note", "mmkit: the 12th note"]
    assert all(x.startswith("mmkit: the ") for x in lines)
