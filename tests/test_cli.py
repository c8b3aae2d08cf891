"""The command line `mmkit caption|answer|zero-shot|attention IMAGE... [--model NAME] [--json]`."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mmkit import InputError
from mmkit.cli import expand, main
from mmkit.config import models_dir
from mmkit.data import ShapesWorld

REPO = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A folder of 3 held-out ShapesWorld scenes (PNG) plus a text file that is not an image."""
    d = tmp_path_factory.mktemp("images")
    for i, s in enumerate(ShapesWorld(3, split="test")):
        s.image.save(d / f"scene{i}.png")
    (d / "readme.txt").write_text("not an image, and not picked up from a folder")
    return d


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("mmkit: error")]


def test_expand(folder, tmp_path):
    files = expand([str(folder)])
    assert [f.name for f in files] == ["scene0.png", "scene1.png", "scene2.png"]  # sorted, images only
    assert expand([str(folder / "readme.txt")]) == [folder / "readme.txt"]  # a file is taken as given
    with pytest.raises(InputError, match="does not exist"):
        expand([str(tmp_path / "missing.png")])
    with pytest.raises(InputError, match="no image files"):
        expand([str(tmp_path)])


def test_caption_folder_text_and_json(capsys, folder, model_dirs):
    code, lines, _ = run(capsys, "caption", folder, "--model", model_dirs("blip-caption"), "--max-tokens", "5")
    assert code == 0 and len(lines) == 3
    assert [line.split("\t")[0] for line in lines] == [str(folder / f"scene{i}.png") for i in range(3)]
    code, lines, _ = run(capsys, "caption", folder / "scene1.png", "--model", model_dirs("blip-caption"),
                         "--max-tokens", "5", "--beams", "2", "--json")
    rec = json.loads(lines[0])
    assert code == 0 and len(lines) == 1 and set(rec) == {"image", "caption"} and isinstance(rec["caption"], str)


def test_bad_image_is_skipped_with_exit_2(capsys, folder, model_dirs, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"definitely not a jpeg")
    code, lines, err = run(capsys, "caption", folder / "scene0.png", bad, "--model", model_dirs("blip-caption"),
                           "--max-tokens", "3", "--json")
    assert code == 2
    recs = [json.loads(x) for x in lines]
    assert "caption" in recs[0] and recs[1]["image"] == str(bad) and "not an image" in recs[1]["error"]
    assert "skipped" in err and "1 of 2 images could not be read" in err


def test_answer_and_zero_shot(capsys, folder, model_dirs):
    code, lines, _ = run(capsys, "answer", folder, "--model", model_dirs("blip-vqa"), "-q", "what color is it?",
                         "--json", "--batch-size", "2")
    assert code == 0 and len(lines) == 3
    assert all(json.loads(x)["question"] == "what color is it?" for x in lines)
    code, lines, _ = run(capsys, "zero-shot", folder, "--model", model_dirs("clip"), "-l", "red circle, blue square",
                         "-t", "a {}", "-t", "a picture of a {}", "--json")
    assert code == 0 and len(lines) == 3
    for x in lines:
        rec = json.loads(x)
        assert set(rec["probs"]) == {"red circle", "blue square"} and abs(sum(rec["probs"].values()) - 1) < 1e-4
        assert rec["label"] == max(rec["probs"], key=rec["probs"].get)
    code, lines, _ = run(capsys, "zero-shot", folder / "scene0.png", "--model", model_dirs("clip"), "-l", "cat,dog")
    path, label, prob = lines[0].split("\t")
    code, again, _ = run(capsys, "zero-shot", folder / "scene0.png", "--model", model_dirs("clip"), "-l", "cat", "-l",
                         "dog")  # -l once per name: the same two labels (only the last was kept)
    assert again == lines
    assert code == 0 and label in ("cat", "dog") and 0.5 <= float(prob) <= 1


def test_attention_writes_pngs(capsys, folder, model_dirs, tmp_path):
    out = tmp_path / "maps"
    code, lines, _ = run(capsys, "attention", folder, "--model", model_dirs("clip"), "--text", "red circle",
                         "--out", out, "--json")
    assert code == 0 and len(lines) == 3
    for x in lines:
        rec = json.loads(x)
        png = Path(rec["png"])
        assert png.parent == out and png.read_bytes()[:4] == b"\x89PNG" and rec["words"][:2] == ["red", "circle"]
    code, _, err = run(capsys, "attention", folder, "--model", model_dirs("clip"), "--out", tmp_path / "failed")
    assert code == 2 and "needs a text" in error_lines(err)[0]
    assert not (tmp_path / "failed").exists()  # a run that fails before its first PNG leaves no empty folder
    code, _, err = run(capsys, "attention", folder, "--model", model_dirs("clip"), "--text", "red circle",
                       "--out", tmp_path / "maps.png")
    assert code == 2 and "reads as a file name" in error_lines(err)[0] and not (tmp_path / "maps.png").exists()
    (tmp_path / "A").mkdir()
    shutil.copy(folder / "scene0.png", tmp_path / "A" / "Scene0.png")
    code, lines, _ = run(capsys, "attention", folder / "scene0.png", tmp_path / "A" / "Scene0.png", folder / "scene0.png",
                         "--model", model_dirs("clip"), "--text", "red circle", "--out", tmp_path / "two", "--json")
    names = [Path(json.loads(x)["png"]).name for x in lines]  # one file each, on a file system blind to case too
    assert code == 0 and names == ["scene0.png", "Scene0-1.png", "scene0-2.png"]


@pytest.mark.parametrize("argv, message", [
    (["caption", "{img}", "--model", "no-such-model"], "unknown model"),
    (["answer", "{img}", "--model", "{clip}", "-q", "what?"], "cannot answer"),
    (["caption", "{missing}"], "does not exist"),
    (["zero-shot", "{img}", "--model", "{clip}", "-l", "cat"], "at least two"),
    (["answer", "{img}", "--model", "no-such-model", "-q", "  "], "question is empty"),  # before the model loads
    (["zero-shot", "{img}", "--model", "no-such-model", "-l", "cat", "-l", " "], "at least two"),
    (["caption", "{img}", "--model", "{blip}", "--batch-size", "0"], "batch-size"),
    (["caption", "{img}", "--model", "{blip}", "--max-tokens", "60"], "--max-tokens 39 or less"),
])
def test_input_errors_one_line_exit_2(capsys, folder, model_dirs, tmp_path, argv, message):
    subs = {"img": str(folder / "scene0.png"), "clip": model_dirs("clip"), "blip": model_dirs("blip-caption"),
            "missing": str(tmp_path / "nope.png")}
    code, lines, err = run(capsys, *[a.format(**subs) for a in argv])
    errors = error_lines(err)
    assert code == 2 and lines == [] and len(errors) == 1 and message in errors[0]
    assert "Traceback" not in err


def test_python_dash_m(folder):
    env = dict(os.environ, HF_HUB_OFFLINE="1", TQDM_DISABLE="1")
    r = subprocess.run([sys.executable, "-m", "mmkit", "caption", str(folder / "nope.png")], capture_output=True,
                       text=True, cwd=REPO, env=env, timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().count("\n") == 0 and r.stderr.startswith("mmkit: error:") and "does not exist" in r.stderr
    r = subprocess.run([sys.executable, "-m", "mmkit", "--help"], capture_output=True, text=True, cwd=REPO, env=env,
                       timeout=120)
    assert r.returncode == 0 and "zero-shot" in r.stdout


def test_bundled_captions_match_ground_truth(capsys, tmp_path):
    if not (models_dir() / "shapes-blip-caption" / "config.json").exists():
        pytest.skip("bundled model shapes-blip-caption is not in data/models (build it with `make models`)")
    scenes = ShapesWorld(8, split="test")
    for i, s in enumerate(scenes):
        s.image.save(tmp_path / f"{i}.png")
    code, lines, _ = run(capsys, "caption", tmp_path, "--model", "shapes-blip-caption", "--json")
    got = [json.loads(x)["caption"] for x in lines]
    assert code == 0 and sum(g == s.caption for g, s in zip(got, scenes)) >= 5, got  # most (6/8 when written)


# -- output that never breaks its reader (issue 28, reproduction 5) ------------------------------------------

ODD_NAMES = [b"plain.png", "\u00fcn\u00ef \U0001f431.png".encode(), b"bad\xff.png", b"new\nline.png",
             b"tab\there.png", b"sep\xe2\x80\xa8arator.png", b"cr\r.png"]


@pytest.fixture(scope="module")
def odd_folder(tmp_path_factory):
    """A folder of one scene saved under names that are hard to print (raw 0xFF, newline, tab, U+2028, emoji)."""
    d = tmp_path_factory.mktemp("odd")
    image = ShapesWorld(1, split="test")[0].image
    for name in ODD_NAMES:
        image.save(os.path.join(os.fsencode(d), name), format="PNG")
    return d


def run_bytes(monkeypatch, argv, encoding="utf-8", errors="surrogateescape"):
    """main(argv) with a stdout like Python's own (UTF-8 mode uses surrogateescape): (code, stdout bytes)."""
    import io

    buf = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(buf, encoding=encoding, errors=errors, newline="\n"))
    code = main([str(a) for a in argv])
    sys.stdout.flush()
    return code, buf.getvalue()


@pytest.mark.parametrize("encoding", ["utf-8", "ascii", "latin-1"])
def test_json_is_valid_utf8_json_lines_whatever_the_names(monkeypatch, odd_folder, model_dirs, encoding):
    code, out = run_bytes(monkeypatch, ["caption", odd_folder, "--model", model_dirs("blip-caption"),
                                        "--max-tokens", "3", "--json"], encoding)
    lines = out.decode("utf-8").split("\n")  # strict: raises on a raw 0xFF byte
    assert code == 0 and lines[-1] == "" and len(lines) - 1 == len(ODD_NAMES)
    recs = [json.loads(x) for x in lines[:-1]]
    assert len(out.decode("utf-8").splitlines()) == len(ODD_NAMES)  # no U+2028 or \r splits a record
    if encoding != "utf-8":
        assert out.isascii()
    by_name = {r["image"].rsplit("/", 1)[1]: r for r in recs}
    bad = by_name["bad\\xff.png"]  # readable, and the exact bytes come back from image_b64
    import base64

    assert base64.b64decode(bad["image_b64"]) == os.path.join(os.fsencode(odd_folder), b"bad\xff.png")
    assert "new\nline.png" in by_name and "\u00fcn\u00ef \U0001f431.png" in by_name
    assert all("image_b64" not in r for n, r in by_name.items() if n != "bad\\xff.png")


@pytest.mark.parametrize("encoding", ["utf-8", "ascii"])
def test_text_mode_is_one_line_per_image_in_any_encoding(monkeypatch, odd_folder, model_dirs, encoding):
    code, out = run_bytes(monkeypatch, ["caption", odd_folder, "--model", model_dirs("blip-caption"),
                                        "--max-tokens", "3"], encoding)
    text = out.decode(encoding)
    lines = text.splitlines()
    assert code == 0 and len(lines) == len(ODD_NAMES) and all(x.count("\t") == 1 for x in lines)
    names = {x.split("\t")[0].rsplit("/", 1)[1] for x in lines}
    assert {"bad\\xff.png", "new\\nline.png", "tab\\there.png", "cr\\r.png"} <= names
    assert ("\u00fcn\u00ef \U0001f431.png" if encoding == "utf-8" else "\\xfcn\\xef \\U0001f431.png") in names


def test_broken_pipe_ends_quietly(folder, model_dirs):
    """`mmkit caption a.png b.png --json | head -c1`, made deterministic: the reader is gone before the first line."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TQDM_DISABLE="1")
    proc = subprocess.Popen([sys.executable, "-m", "mmkit", "caption", str(folder), "--model",
                             model_dirs("blip-caption"), "--max-tokens", "3", "--json", "--batch-size", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO, env=env)
    proc.stdout.close()  # while the model loads: every write of a line meets a closed pipe
    err = proc.communicate(timeout=120)[1].decode()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err


def test_fifo_device_and_unreadable_folder_do_not_hang(folder, model_dirs, tmp_path, capsys):
    import threading

    fifo = tmp_path / "x.png"
    os.mkfifo(fifo)
    done = {}
    t = threading.Thread(target=lambda: done.update(
        r=run(capsys, "caption", fifo, folder / "scene0.png", "/dev/zero", "--model", model_dirs("blip-caption"),
              "--max-tokens", "3", "--json")), daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "mmkit caption hung on a FIFO or /dev/zero"
    code, lines, err = done["r"]
    recs = [json.loads(x) for x in lines]
    assert code == 2 and [("error" in r) for r in recs] == [True, False, True]
    assert "FIFO" in recs[0]["error"] and "device" in recs[2]["error"] and "Traceback" not in err
    assert expand([str(tmp_path)]) == [fifo]  # listed by its name, never opened; then refused with its reason
    t = threading.Thread(target=lambda: done.update(r=run(capsys, "caption", tmp_path, "--model",
                                                          model_dirs("blip-caption"))), daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "mmkit caption hung on a FIFO in a folder"
    code, lines, err = done["r"]  # it was passed over without a word before
    assert code == 2 and lines == [] and "skipped" in err and "is a FIFO" in err and "1 of 1 images" in err
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        if not os.access(locked, os.R_OK):  # root can read anything
            code, lines, err = run(capsys, "caption", locked)
            assert code == 2 and "cannot be listed" in error_lines(err)[0] and "Traceback" not in err
    finally:
        locked.chmod(0o755)


@pytest.mark.parametrize("argv, message", [
    (["--beams", "2.5"], "--beams=2.5 is not allowed"),
    (["--beams", "3x"], "--beams='3x' is not allowed"),
    (["--beams", "0"], "from 1 to 64"),
    (["--max-tokens", "2.5"], "--max-tokens=2.5"),
    (["--max-tokens", "0"], "--max-tokens=0"),
    (["--temperature", "nan", "--sample"], "not finite"),
    (["--temperature", "inf"], "not finite"),
    (["--temperature", "0"], "--temperature=0.0"),
    (["--top-p", "0"], "greater than 0"),
    (["--top-p", "1.5"], "--top-p=1.5"),
    (["--seed", "-1"], "--seed=-1"),
    (["--batch-size", "-3"], "--batch-size=-3"),
    (["--batch-size", "1e9"], "--batch-size=1000000000.0"),
])
def test_every_numeric_option_is_checked_before_anything_loads(capsys, folder, argv, message):
    code, lines, err = run(capsys, "caption", folder / "scene0.png", "--model", "no-such-model", *argv)
    errors = error_lines(err)
    assert code == 2 and lines == [] and len(err.splitlines()) == 1 and message in errors[0], err


def test_other_errors_are_one_line(capsys, folder, model_dirs, monkeypatch, tmp_path):
    import mmkit

    monkeypatch.setattr(mmkit, "caption", lambda *a, **k: {}["boom"])  # an unexpected bug deep inside
    code, lines, err = run(capsys, "caption", folder / "scene0.png", "--model", model_dirs("blip-caption"))
    assert code == 1 and len(err.splitlines()) == 1 and "KeyError" in err and "Traceback" not in err
    blocker = tmp_path / "file"
    blocker.write_text("a file where the output folder should go")
    code, lines, err = run(capsys, "attention", folder / "scene0.png", "--model", model_dirs("clip"), "--text", "red",
                           "--out", blocker / "maps")
    assert code == 2 and "--out" in error_lines(err)[0] and "Traceback" not in err
    code, lines, err = run(capsys, "zero-shot", folder / "scene0.png", "--model", model_dirs("clip"), "-l", "a,b",
                           "-t", "a {} or {}")
    assert code == 2 and "exactly one" in error_lines(err)[0]
    assert main(["--help"]) == 0 and "zero-shot" in capsys.readouterr().out


def test_json_line_is_one_valid_utf8_line_for_any_record():
    from mmkit.cli_output import json_line

    rec = {"video": "clip\udcff\n.mp4", "text": "a\u2028b\x85c\rd", "n": 3, "parts": ["x\ud800"], "k\udcfe": None}
    line = json_line(rec)
    assert len(line.splitlines()) == 1 and line.encode("utf-8")
    back = json.loads(line)
    assert back["text"] == "a\u2028b\x85c\rd" and back["n"] == 3 and back["video"] == "clip\ufffd\n.mp4"
    assert json_line(rec, ascii_only=True).isascii()


def test_help_and_errors_name_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("caption", "answer", "zero-shot", "attention", "search-video", "embed", "index", "search"):
        assert f"    {command} " in out  # each with its one-line help, the routed ones too
    assert main(["serach", "x"]) == 2
    err = capsys.readouterr().err
    assert "'serach' is not a command (did you mean 'search'?)" in err and "search-video" in err
    assert err.count("\n") == 1
    assert main([]) == 2
    assert "name a command: caption, answer" in capsys.readouterr().err
    assert main(["embed", "--help"]) == 0 and "--resume" in capsys.readouterr().out  # still parsed by its module
    for bad in (["search-video", "x.mp4", "a red circle", "-k", "abc"], ["embed", ".", "--out", "e.jsonl", "--workers",
                                                                         "x"]):
        assert main(bad) == 2  # the routed commands' parsers also say it in one line, not argparse's usage block
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "usage:" not in err and f"invalid int value: '{bad[-1]}'" in err, err


def test_folder_files_without_an_image_suffix_are_named_as_passed_over(tmp_path, capsys, model_dirs):

    ShapesWorld(1)[0].image.save(tmp_path / "scene.png")
    ShapesWorld(1)[0].image.save(tmp_path / "scene_saved_without_suffix", format="PNG")
    (tmp_path / "notes.txt").write_text("not a picture")
    passed: list = []
    assert expand([str(tmp_path)], passed) == [tmp_path / "scene.png"]
    assert passed == [tmp_path / "notes.txt", tmp_path / "scene_saved_without_suffix"]
    assert main(["caption", str(tmp_path), "--model", model_dirs("blip-caption")]) == 0
    out, err = capsys.readouterr()
    assert out.count("\n") == 1
    assert ("2 files in the folders passed over, not named as a picture mmkit reads (notes.txt, "
            "scene_saved_without_suffix); name them") in err
    assert main(["caption", str(tmp_path / "scene_saved_without_suffix"), "--model", model_dirs("blip-caption")]) == 0
    out, err = capsys.readouterr()  # given by name, it is read whatever its name
    assert out.count("\n") == 1 and "passed over" not in err


def test_heic_photos_in_a_folder_are_named_with_what_to_do_and_jfif_is_read(tmp_path, capsys, model_dirs):
    from mmkit.jobs.source import list_images

    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)  # an iPhone photo's first bytes
    (tmp_path / "IMG_0001.HEIC").write_bytes(heic)
    (tmp_path / "IMG_0002.heic").write_bytes(heic)
    for listing in (lambda: expand([str(tmp_path)]), lambda: list_images(tmp_path)):
        with pytest.raises(InputError, match="no image files.*; 2 are HEIC photos .*export them as JPEG"):
            listing()
    ShapesWorld(1)[0].image.save(tmp_path / "saved_from_the_web.jfif", format="JPEG")
    assert main(["caption", str(tmp_path), "--model", model_dirs("blip-caption")]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(str(tmp_path / "saved_from_the_web.jfif") + "\t")
    assert "(IMG_0001.HEIC, IMG_0002.heic); 2 are HEIC photos" in err and "name them" not in err
    assert main(["caption", str(tmp_path / "IMG_0001.HEIC"), "--model", model_dirs("blip-caption")]) == 2
    assert "it is a HEIC/HEIF photo" in capsys.readouterr()[1]


def test_recursive_folders_videos_in_folders_and_the_help_that_names_them(tmp_path, capsys, model_dirs):
    """`mmkit caption DIR --recursive` failed ('unrecognized arguments') unless --out came too, and no command's
    --help named either; a video in a folder was told to be renamed .png."""
    scenes = ShapesWorld(2, seed=3, split="test")
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    scenes[0].image.save(tmp_path / "a" / "one.png")
    scenes[1].image.save(tmp_path / "a" / "b" / "two.png")
    scenes[1].image.save(tmp_path / ".hidden" / "three.png")
    (tmp_path / "a" / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(32))
    assert expand([str(tmp_path)], recursive=True) == [tmp_path / "a" / "b" / "two.png", tmp_path / "a" / "one.png"]
    with pytest.raises(InputError, match="its sub-folders are read with --recursive"):
        expand([str(tmp_path)])
    code, lines, err = run(capsys, "caption", tmp_path, "--recursive", "--model", model_dirs("blip-caption"))
    assert code == 0 and [line.split("\t")[0] for line in lines] == [str(tmp_path / "a" / "b" / "two.png"),
                                                                   str(tmp_path / "a" / "one.png")]
    assert "1 video in the folders passed over (clip.mp4)" in err and "mmkit caption " + str(tmp_path / "a" / "clip.mp4") in err
    assert "name it .png" not in err
    assert main(["caption", "--help"]) == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert "--recursive" in shown and "--out FILE" in shown and "--resume" in shown and "CLIP.mp4" in shown
    assert main(["answer", "--help"]) == 0 and "mmkit answer DIR --recursive --out FILE" in " ".join(
        capsys.readouterr().out.split())
