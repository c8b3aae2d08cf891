"""The resume test of issue 24: a caption job SIGKILLed at random points, each rerun with --resume.

Every rerun must end with exactly one row per image, equal to an uninterrupted run's (greedy decoding).
1,000 images and 10 kills: about a minute on a quiet 2-core machine, so `make test` runs it (the kills land after a
random number of each run's own shards, so they also land when the job is fast).
"""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1", "MMKIT_DOMAIN_CHECK": "0"}


def make_folder(root: Path, n: int) -> Path:
    """n ShapesWorld pictures in two sub-folders (PNG and JPEG), a photo at odd sizes, and bad files."""
    from mmkit.data import ShapesWorld
    from mmkit.data.samples import sample_images

    d = root / "images"
    (d / "a").mkdir(parents=True)
    (d / "b" / "c").mkdir(parents=True)
    for i, item in enumerate(ShapesWorld(n, seed=7)):
        sub = d / ("a" if i % 2 else "b/c")
        item.image.save(sub / f"{i:05d}.{'jpg' if i % 3 else 'png'}", quality=90)
    cat = sample_images(["cat"])["cat"]
    cat.resize((97, 61)).save(d / "cat-small.jpg", quality=80)
    cat.save(d / "a" / "cat.jpg", quality=85)
    (d / "truncated.jpg").write_bytes((d / "a" / "cat.jpg").read_bytes()[:2000])
    (d / "zero.png").write_bytes(b"")
    (d / "notes.jpg").write_text("not a picture")
    os.mkfifo(d / "pipe.png")
    return d


def job(folder: Path, out: Path, extra=()) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "mmkit", "caption", str(folder), "--recursive", "--out", str(out),
           "--model", "shapes-blip-caption", "--batch-size", "16", "--shard-size", "32", "--workers", "1", *extra]
    return subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def shards(out: Path) -> int:
    return len(list(Path(str(out) + ".parts").glob("shard-*.jsonl")))


def rows(out: Path) -> list[dict]:
    with open(out, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.mark.parametrize("n, kills", [(1000, 10)])
def test_sigkill_and_resume_equals_uninterrupted(tmp_path, n, kills):
    folder = make_folder(tmp_path, n)
    ref_out = tmp_path / "ref.jsonl"
    p = job(folder, ref_out)
    most = 1  # how many shards the uninterrupted run wrote: each kill below lands after a random share of them
    while p.poll() is None:
        most = max(most, shards(ref_out))
        time.sleep(0.005)
    err = p.stderr.read().decode()
    assert p.wait(timeout=1800) == 2, err[-2000:]  # done, with 4 unreadable files: exit 2
    assert err.strip().splitlines()[-1].startswith(f"mmkit: 4 of {n + 6} images could not be read")
    ref = rows(ref_out)
    assert len(ref) == n + 6  # every image file, good or bad, is a row
    bad = {Path(r["path"]).name: r["error"] for r in ref if r["error"]}
    assert set(bad) == {"truncated.jpg", "zero.png", "notes.jpg", "pipe.png"}, bad
    assert all(r["caption"] for r in ref if not r["error"])

    out = tmp_path / "captions.jsonl"
    rng = random.Random(24)
    killed = 0
    for round_ in range(kills):
        before = shards(out)
        p = job(folder, out, ["--resume"])
        # kill after a random number of this run's own shards, spread so that every round has work left (on a
        # quiet machine the whole job takes a few seconds, too fast for a kill at a random time)
        span = max(1, (most - 1 - before) // (kills - round_))
        target, deadline = before + rng.randint(1, span), time.time() + 600
        while shards(out) < target and p.poll() is None and time.time() < deadline:
            time.sleep(0.005)
        time.sleep(rng.uniform(0, 0.05))  # then anywhere: mid-batch, mid-write, mid-merge
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            killed += 1
        p.wait()
        p.stdout.close(), p.stderr.close()
        assert not out.exists() or rows(out) == ref  # a merged file, if any, is already complete
    p = job(folder, out, ["--resume", "--json"])
    err = p.stderr.read().decode()
    assert p.wait(timeout=1800) == 2, err[-2000:]  # the error rows, this run's or earlier ones', are in the output
    assert err.strip().splitlines()[-1].startswith(f"mmkit: 4 of {n + 6} images could not be read")
    summary = json.loads(p.stdout.read())
    assert killed >= kills - 1  # (the last rounds may finish before the kill lands)
    got = rows(out)
    assert [r["path"] for r in got] == [r["path"] for r in ref]  # one row per image: no gaps, no duplicates
    assert got == ref  # the same captions and errors as the uninterrupted run
    assert summary["images"] == len(ref)
