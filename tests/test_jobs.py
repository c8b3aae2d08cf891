"""mmkit.jobs.run and its CLI: every image one row, bad files as error rows, formats, resume rules, draft decoding."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import mmkit
from mmkit import InputError
from mmkit.jobs import decode, list_images, read_output, run

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """12 ShapesWorld pictures in nested folders, two photos (one 12 MP JPEG), and every kind of bad file."""
    from mmkit.data import ShapesWorld
    from mmkit.data.samples import sample_images

    d = tmp_path_factory.mktemp("collection")
    (d / "sub" / "deeper").mkdir(parents=True)
    (d / ".hidden").mkdir()
    for i, item in enumerate(ShapesWorld(12, seed=3)):
        item.image.save(d / ("sub" if i % 2 else "sub/deeper") / f"s{i:02d}.{'png' if i % 3 else 'jpg'}")
    photos = sample_images(["cat", "rocket"])
    photos["cat"].resize((4000, 3000)).save(d / "cat-12mp.jpg", quality=90)
    photos["rocket"].save(d / "rocket.webp")
    (d / "truncated.jpg").write_bytes((d / "cat-12mp.jpg").read_bytes()[:5000])
    (d / "zero.png").write_bytes(b"")
    (d / "text.png").write_text("<html>not an image</html>")
    (d / "README.txt").write_text("not listed: no image suffix")
    (d / ".hidden" / "x.png").write_bytes(b"")  # hidden folders are not walked
    (d / "._s00.png").write_bytes(b"\0\5\26\7 Mac OS X")  # a zip made on a Mac: metadata, not pictures
    (d / "__MACOSX").mkdir()
    (d / "__MACOSX" / "._cat-12mp.jpg").write_bytes(b"\0\5\26\7 Mac OS X")
    os.mkfifo(d / "fifo.jpg")
    locked = d / "locked.png"
    photos["cat"].save(locked)
    os.chmod(locked, 0)
    yield d
    os.chmod(locked, 0o644)


BAD = {"truncated.jpg", "zero.png", "text.png", "fifo.jpg"}


def denied(path: Path) -> bool:
    """Whether this process really cannot read a chmod 000 file (root can)."""
    return not os.access(path, os.R_OK)


def test_listing_is_recursive_sorted_and_skips_hidden(folder):
    paths, other = list_images(folder)
    names = [Path(p).name for p in paths]
    assert len(paths) == 12 + 2 + len(BAD) + 1 and "x.png" not in names and [Path(p).name for p in other] == ["README.txt"]
    assert not any(n.startswith("._") for n in names)
    assert paths == sorted(paths) and all(os.path.isabs(p) for p in paths)
    flat, _ = list_images(folder, recursive=False)
    assert {Path(p).name for p in flat} == {"cat-12mp.jpg", "rocket.webp", "locked.png"} | BAD
    with pytest.raises(InputError, match="does not exist"):
        list_images(folder / "nope")


def test_draft_decoding_scales_jpegs_to_the_model_size(folder):
    im, _ = decode(str(folder / "cat-12mp.jpg"), size=224)
    assert min(im.size) >= 224 and im.size[0] <= 4000 // 4  # 1/8 of 3000 is 375 >= 224: DCT-scaled
    full, _ = decode(str(folder / "cat-12mp.jpg"), size=224, draft=False)
    assert full.size == (4000, 3000)
    png, _ = decode(str(folder / "sub" / "s01.png"), size=16)
    assert png.size == Image.open(folder / "sub" / "s01.png").size  # only JPEGs are drafted
    with pytest.raises(InputError, match="FIFO"):
        decode(str(folder / "fifo.jpg"), 224)  # refused at once, never blocks


def test_caption_job_rows_errors_and_formats(folder, tmp_path):
    m = mmkit.load_model("shapes-blip-caption")
    res = run("caption", m, folder, tmp_path / "c.parquet", batch_size=4, shard_size=8, progress=False)
    rows = read_output(tmp_path / "c.parquet")
    paths, _ = list_images(folder)
    assert [r["path"] for r in rows] == paths  # one row per image file, in order
    errors = {Path(r["path"]).name: r["error"] for r in rows if r["error"]}
    expect = BAD | ({"locked.png"} if denied(folder / "locked.png") else set())
    assert set(errors) == expect, errors
    assert "empty (0 bytes)" in errors["zero.png"] and "FIFO" in errors["fifo.jpg"]
    assert "not an image" in errors["text.png"] and "truncated" in errors["truncated.jpg"]
    if "locked.png" in errors:
        assert "ermission" in errors["locked.png"]
    assert all(r["caption"] is None for r in rows if r["error"])
    good = [r for r in rows if not r["error"]]
    assert all(isinstance(r["caption"], str) and r["caption"] for r in good)
    notes = {Path(r["path"]).name for r in rows if r["notice"]}
    assert {"cat-12mp.jpg", "rocket.webp"} <= notes and not any(n.startswith("s") for n in notes)
    assert res.images == len(rows) and res.errors == len(expect) and res.done_before == 0
    assert set(res.timing) >= {"decode", "model", "write", "total"}
    # greedy captions of the job equal mmkit.caption on the same files (drafting leaves these sizes alone)
    shapes = [r for r in good if Path(r["path"]).name.startswith("s")]
    assert [r["caption"] for r in shapes] == mmkit.caption(m, [r["path"] for r in shapes])


def test_embed_zero_shot_and_answer_jobs(folder, tmp_path):
    clip = mmkit.load_model("shapes-clip")
    run("embed", clip, folder, tmp_path / "e.parquet", progress=False)
    rows = [r for r in read_output(tmp_path / "e.parquet") if not r["error"]]
    emb = np.array([r["embedding"] for r in rows], dtype=np.float32)
    assert np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    shapes = [i for i, r in enumerate(rows) if Path(r["path"]).name.startswith("s")]
    direct = mmkit.embed_images(clip, [rows[i]["path"] for i in shapes]).numpy()
    assert np.allclose(emb[shapes], direct, atol=1e-5)
    run("zero-shot", clip, folder, tmp_path / "z.jsonl", labels="red circle, blue square,green triangle",
        progress=False)
    z = [r for r in read_output(tmp_path / "z.jsonl") if not r["error"]]
    assert all(abs(sum(r["probs"].values()) - 1) < 1e-4 and r["label"] == max(r["probs"], key=r["probs"].get)
               for r in z)
    run("answer", "shapes-blip-vqa", folder, tmp_path / "a.csv", question="how many shapes are there?",
        progress=False)
    a = read_output(tmp_path / "a.csv")
    assert all(r["answer"] for r in a if not r["error"]) and all(r["question"] for r in a if not r["error"])
    with pytest.raises(InputError, match="question"):
        run("answer", "shapes-blip-vqa", folder, tmp_path / "b.csv")
    with pytest.raises(InputError, match="two different labels"):
        run("zero-shot", clip, folder, tmp_path / "b.csv", labels="cat")


def test_resume_rules(folder, tmp_path):
    clip = mmkit.load_model("shapes-clip")
    out = tmp_path / "e.jsonl"
    first = run("embed", clip, folder, out, shard_size=4, batch_size=4, progress=False)
    with pytest.raises(InputError, match="--resume"):
        run("embed", clip, folder, out, resume=False, progress=False)
    again = run("embed", clip, folder, out, shard_size=4, batch_size=4, progress=False)
    assert again.done_before == first.images and read_output(out) == read_output(first.out)
    with pytest.raises(InputError, match="batch_size"):
        run("embed", clip, folder, out, shard_size=4, batch_size=2, progress=False)
    with pytest.raises(InputError, match=r"cannot resume: this job reads .*sub.*the journal's read"):
        run("embed", clip, folder / "sub", out, shard_size=4, batch_size=4, progress=False)  # another folder
    assert read_output(out) == read_output(first.out)  # and nothing of it was written
    here = os.getcwd()
    try:  # the same folder named another way is the same job
        os.chdir(folder.parent)
        same = run("embed", clip, folder.name + "/", out, shard_size=4, batch_size=4, progress=False)
        assert same.done_before == first.images
    finally:
        os.chdir(here)
    parts = Path(str(out) + ".parts")
    before = read_output(out)
    os.remove(parts / "shard-000001.jsonl")  # a lost shard is redone, the same
    (folder / "sub" / "new.png").write_bytes((folder / "sub" / "s01.png").read_bytes())  # a file added since
    try:
        more = run("embed", clip, folder, out, shard_size=4, batch_size=4, progress=False)
        rows = read_output(out)
        assert more.done_before == first.images - 4 and len(rows) == first.images + 1
        assert rows[:-1] == before  # the redone shard is bit-identical, in place
        assert rows[-1]["path"].endswith("new.png")  # the new file is a new shard at the end
        twin = next(r for r in rows if r["path"].endswith("s01.png"))  # new.png is a copy of it
        assert np.allclose(rows[-1]["embedding"], twin["embedding"], atol=1e-5)
        assert len({r["path"] for r in rows}) == len(rows)  # no duplicates
    finally:
        os.remove(folder / "sub" / "new.png")
    fresh = run("embed", clip, folder, out, overwrite=True, progress=False)
    assert fresh.done_before == 0 and fresh.images == first.images


def test_bad_arguments_name_the_fix(folder, tmp_path):
    for kw, match in [(dict(task="tag"), "unknown job task"), (dict(out=tmp_path / "x.txt"), ".parquet, .jsonl"),
                      (dict(engine="spark"), "engine"), (dict(shard_size=0), "shard_size")]:
        args = dict(task="embed", model="shapes-clip", source=folder, out=tmp_path / "x.jsonl") | kw
        with pytest.raises(InputError, match=match):
            run(**args, progress=False)


def test_cli_job_and_summary(folder, tmp_path, capsys):
    out = tmp_path / "z.csv"
    cmd = [sys.executable, "-m", "mmkit", "zero-shot", str(folder), "-r", "-l", "red circle,blue square",
           "--model", "shapes-clip", "--out", str(out), "--json"]
    p = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert p.returncode == 2, p.stderr  # finished, with unreadable files: 2, as the plain `mmkit zero-shot DIR`
    summary = json.loads(p.stdout)
    assert summary["images"] == len(list_images(folder)[0]) and summary["errors"] >= len(BAD)
    assert len(read_output(out)) == summary["images"]  # every row written all the same
    assert "images/s" in p.stderr and "unreadable" in p.stderr and "Traceback" not in p.stderr
    assert p.stderr.strip().splitlines()[-1].startswith(f"mmkit: {summary['errors']} of {summary['images']} images "
                                                        "could not be read")

    from mmkit.cli import main  # the error paths in-process (each a subprocess would cost an import of torch)

    capsys.readouterr()
    assert main(cmd[3:-1]) == 2
    err = capsys.readouterr().err
    assert "--resume" in err and "Traceback" not in err
    assert main(["embed", str(tmp_path / "none"), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err


def png_bytes(image) -> bytes:
    import io

    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def test_cli_job_exits_2_when_an_image_cannot_be_read_and_resume_retries_on_request(tmp_path, capsys):
    """Exit 2 after the whole job is written when a file is unreadable (README: 2 = bad input, as the plain
    `mmkit caption DIR`); a resume that still holds the error row exits 2 and names it; --retry-errors reads it
    again."""
    from mmkit.cli import main
    from mmkit.data import ShapesWorld

    d = tmp_path / "imgs"
    d.mkdir()
    pictures = [item.image for item in ShapesWorld(6, seed=5)]
    for i, im in enumerate(pictures[:5]):
        im.save(d / f"s{i}.png")
    (d / "broken.png").write_bytes(png_bytes(pictures[5])[:60])  # a truncated PNG
    out = tmp_path / "c.jsonl"
    cmd = ["caption", str(d), "--out", str(out), "--model", "shapes-blip-caption", "--batch-size", "2",
           "--shard-size", "2"]
    capsys.readouterr()
    assert main(cmd) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (f"mmkit: 1 of 6 images could not be read; their rows in {out} give the reason in the "
                       '"error" column'), err
    rows = read_output(out)  # nothing lost: every row written, the bad one with its reason
    assert len(rows) == 6 and [Path(r["path"]).name for r in rows if r["error"]] == ["broken.png"]
    assert all(r["caption"] for r in rows if not r["error"])

    assert main([*cmd, "--resume", "--json"]) == 2  # the error row is still in the file
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["done_before"] == 6 and summary["errors"] == 1 and summary["errors_before"] == 1
    assert "1 of them by an earlier run: add --retry-errors" in captured.err.strip().splitlines()[-1]
    assert read_output(out) == rows  # a plain resume keeps the finished rows as they are

    (d / "broken.png").write_bytes(png_bytes(pictures[5]))  # the file is fixed
    assert main([*cmd, "--resume", "--retry-errors"]) == 0
    assert "could not be read" not in capsys.readouterr().err
    again = read_output(out)
    assert len(again) == 6 and not any(r["error"] for r in again)
    assert again[0]["caption"] == mmkit.caption(mmkit.load_model("shapes-blip-caption"), [pictures[5]])[0]
    assert [r for r in again if not r["path"].endswith("broken.png")] == [r for r in rows if not r["error"]]


def test_non_utf8_file_names_keep_their_exact_bytes_in_every_format_and_on_resume(tmp_path):
    """A file named b"r\\xffd.png": "path" shows \\xff, "image_b64" holds the exact bytes (as `--json` does), the
    same in .jsonl, .csv and .parquet; UTF-8 names have no image_b64; a resume counts those rows as done."""
    import base64

    from mmkit.cli_output import json_record
    from mmkit.data import ShapesWorld

    d = tmp_path / "imgs"
    d.mkdir()
    pictures = [item.image for item in ShapesWorld(2, seed=9)]
    raw_dir = os.fsencode(d)
    names = {b"r\xffd.png": png_bytes(pictures[0]), b"plain.png": png_bytes(pictures[1]),
             b"bad\xfe.png": b"not a picture"}
    for name, data in names.items():
        with open(os.path.join(raw_dir, name), "wb") as f:
            f.write(data)
    m = mmkit.load_model("shapes-blip-caption")
    got = {}
    for fmt in (".jsonl", ".csv", ".parquet"):
        run("caption", m, d, tmp_path / f"c{fmt}", batch_size=2, shard_size=2, progress=False)
        got[fmt] = read_output(tmp_path / f"c{fmt}")
    rows = got[".jsonl"]
    by_name = {os.path.basename(base64.b64decode(r["image_b64"]) if r["image_b64"] else os.fsencode(r["path"])): r
               for r in rows}
    assert set(by_name) == set(names)
    odd = by_name[b"r\xffd.png"]
    assert odd["path"].endswith("r\\xffd.png") and odd["caption"] and not odd["error"]
    exact = base64.b64decode(odd["image_b64"])
    assert exact == os.path.join(raw_dir, b"r\xffd.png")
    assert Path(os.fsdecode(exact)).read_bytes() == names[b"r\xffd.png"]  # the row maps back to its file
    assert odd["image_b64"] == json.loads(json_record(os.fsdecode(exact), {}, []))["image_b64"]  # as --json
    assert by_name[b"plain.png"]["image_b64"] is None  # a UTF-8 name: "path" is exact
    assert by_name[b"bad\xfe.png"]["error"] and by_name[b"bad\xfe.png"]["image_b64"]  # error rows too
    for fmt in (".csv", ".parquet"):  # the same paths and bytes in every format
        assert [(r["path"], r["image_b64"], r["caption"]) for r in got[fmt]] == \
               [(r["path"], r["image_b64"], r["caption"]) for r in rows], fmt
    again = run("caption", m, d, tmp_path / "c.jsonl", batch_size=2, shard_size=2, progress=False)
    assert again.done_before == 3 and again.images == 3  # the odd names are recognised as done
    assert read_output(tmp_path / "c.jsonl") == rows
