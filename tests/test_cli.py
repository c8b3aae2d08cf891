"""The command line `mmkit caption|answer|zero-shot|attention IMAGE... [--model NAME] [--json]`."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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
    from mmkit import InputError

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
    code, _, err = run(capsys, "attention", folder, "--model", model_dirs("clip"), "--out", out)
    assert code == 2 and "needs a text" in error_lines(err)[0]


@pytest.mark.parametrize("argv, message", [
    (["caption", "{img}", "--model", "no-such-model"], "unknown model"),
    (["answer", "{img}", "--model", "{clip}", "-q", "what?"], "cannot answer"),
    (["caption", "{missing}"], "does not exist"),
    (["zero-shot", "{img}", "--model", "{clip}", "-l", "cat"], "at least two"),
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
