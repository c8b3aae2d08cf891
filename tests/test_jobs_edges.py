"""Collection jobs at their edges: a Ray address nothing answers, files changed or gone before a resume, an --out
that cannot be written, --ray-workers below 1, --workers below 0, a name server that does not answer, the files
passed over, and the resume-mismatch message."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mmkit
from mmkit import InputError
from mmkit.jobs import read_output, run
from mmkit.jobs.shards import check_same

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}


@pytest.fixture
def folder(tmp_path):
    """A folder of 4 ShapesWorld pictures."""
    from mmkit.data import ShapesWorld

    d = tmp_path / "imgs"
    d.mkdir()
    for i, item in enumerate(ShapesWorld(4, seed=21)):
        item.image.save(d / f"s{i}.png")
    return d


@pytest.fixture
def no_model(monkeypatch):
    """Make loading a model fail loudly: the checks under test must come before it."""
    def refuse(*a, **k):
        raise AssertionError("the model was loaded before the check")

    monkeypatch.setattr(mmkit.models, "load_model", refuse)


def free_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_ray_address_is_refused_at_once(folder, tmp_path):
    port = free_port()
    cmd = [sys.executable, "-m", "mmkit", "caption", str(folder), "--out", str(tmp_path / "c.jsonl"), "--engine", "ray",
           "--model", "shapes-blip-caption", "--ray-address", f"127.0.0.1:{port}"]
    p = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=240)  # Ray alone retried for minutes
    assert p.returncode == 2, p.stderr[-2000:]
    assert f"127.0.0.1:{port}" in p.stderr and "ray start" in p.stderr and "drop --ray-address" in p.stderr
    assert "Traceback" not in p.stderr and not (tmp_path / "c.jsonl.parts" / "job.json").exists()
    from mmkit.jobs.ray_engine import check_address

    with pytest.raises(InputError, match=f"nothing answers at 127.0.0.1:{port}"):
        check_address(f"ray://127.0.0.1:{port}")  # a Ray Client address
    with pytest.raises(InputError, match="HOST:PORT"):
        check_address("127.0.0.1:http")
    for left_to_ray in (None, "auto", "local"):
        check_address(left_to_ray)


def test_resume_redoes_the_shards_of_changed_files_and_names_gone_ones(folder, tmp_path, capsys):
    clip = mmkit.load_model("shapes-clip")
    out = tmp_path / "e.jsonl"
    run("embed", clip, folder, out, batch_size=2, shard_size=2, progress=False)
    first = read_output(out)
    changed = folder / "s0.png"  # in shard 0
    old = os.stat(changed)
    from mmkit.data import ShapesWorld

    next(iter(ShapesWorld(1, seed=22))).image.save(changed)  # another picture under the same name
    os.utime(changed, ns=(old.st_atime_ns, old.st_mtime_ns + 10**9))  # (a coarse clock may not tick otherwise)
    os.remove(folder / "s3.png")  # in shard 1, whose other file is unchanged
    capsys.readouterr()
    res = run("embed", clip, folder, out, batch_size=2, shard_size=2)
    err = capsys.readouterr().err
    assert "mmkit: 1 file changed since: its shard is done again" in err
    assert "mmkit: 1 file listed in the journal is gone: its row is kept; overwrite=True (--overwrite)" in err
    rows = read_output(out)
    assert res.done_before == 2 and len(rows) == 4 and rows[1:] == first[1:]  # the gone file's row is kept
    now = mmkit.embed_images(clip, [str(changed)]).numpy()[0]
    assert np.allclose(rows[0]["embedding"], now, atol=1e-5)  # the new picture's, not the old one's
    assert not np.allclose(rows[0]["embedding"], first[0]["embedding"], atol=1e-3)
    capsys.readouterr()
    again = run("embed", clip, folder, out, batch_size=2, shard_size=2)  # nothing changed since: nothing redone
    assert again.done_before == 4 and "changed since" not in capsys.readouterr().err


def test_journals_without_file_stats_still_resume(folder, tmp_path):
    clip = mmkit.load_model("shapes-clip")
    out = tmp_path / "e.jsonl"
    run("embed", clip, folder, out, batch_size=2, shard_size=2, progress=False)
    first = read_output(out)
    for shard in Path(str(out) + ".parts").glob("shard-*.jsonl"):  # as written before the stats were recorded
        rows = [json.loads(line) for line in shard.read_text().splitlines()]
        assert all("stat" in r for r in rows)
        shard.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "stat"}) + "\n" for r in rows))
    res = run("embed", clip, folder, out, batch_size=2, shard_size=2, progress=False)
    assert res.done_before == 4 and read_output(out) == first


def test_unwritable_out_is_refused_before_the_model_loads(folder, tmp_path, no_model, capsys):
    from mmkit.cli import main

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for out in (blocker / "x.jsonl", blocker / "sub" / "x.parquet"):
        with pytest.raises(InputError, match=r"cannot write .*a-file.*; pass another --out"):
            run("embed", "shapes-clip", folder, out, progress=False)
    (tmp_path / "taken.csv").mkdir()
    with pytest.raises(InputError, match="cannot write .*taken.csv"):
        run("embed", "shapes-clip", folder, tmp_path / "taken.csv", overwrite=True, progress=False)
    capsys.readouterr()
    assert main(["embed", str(folder), "--out", str(blocker / "x.csv")]) == 2
    assert "pass another --out" in capsys.readouterr().err
    ro = tmp_path / "read-only"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if not os.access(ro, os.W_OK):  # (root can write it all the same)
            with pytest.raises(InputError, match=r"cannot write .*read-only.*Permission denied"):
                run("embed", "shapes-clip", folder, ro / "x.jsonl", progress=False)
    finally:
        ro.chmod(0o755)


def test_ray_workers_below_one_are_refused(folder, tmp_path, no_model, capsys):
    from mmkit.cli import main

    for bad in (0, -1):
        with pytest.raises(InputError, match=rf"ray_workers={bad} \(--ray-workers\).*1 or more"):
            run("embed", "shapes-clip", folder, tmp_path / "e.jsonl", engine="ray", ray_workers=bad, progress=False)
    capsys.readouterr()
    assert main(["embed", str(folder), "--out", str(tmp_path / "e.jsonl"), "--engine", "ray", "--ray-workers",
                 "0"]) == 2
    assert "--ray-workers" in capsys.readouterr().err


def test_workers_below_zero_are_refused(folder, tmp_path, no_model, capsys):
    from mmkit.cli import main

    for bad in (-1, 2.5, "3"):
        with pytest.raises(InputError, match=r"workers=.* \(--workers\).*0 or more"):
            run("embed", "shapes-clip", folder, tmp_path / "e.jsonl", workers=bad, progress=False)
    capsys.readouterr()
    assert main(["embed", str(folder), "--out", str(tmp_path / "e.jsonl"), "--workers", "-2"]) == 2
    assert "workers=-2 (--workers)" in capsys.readouterr().err


def test_a_name_lookup_that_does_not_answer_is_refused_within_the_timeout(monkeypatch):
    """create_connection's timeout does not cover the DNS lookup: a dead name server blocked for minutes."""
    import time

    from mmkit.jobs.ray_engine import check_address

    def stuck(*a, **k):
        time.sleep(3)
        raise socket.gaierror("gave up")

    monkeypatch.setattr(socket, "getaddrinfo", stuck)
    t = time.perf_counter()
    with pytest.raises(InputError, match=r"nothing answers at head\.cluster:6379 \(the name lookup of 'head\.cluster' "
                                         r"took more than 0\.3 s\)"):
        check_address("head.cluster:6379", timeout=0.3)
    assert time.perf_counter() - t < 2
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: (_ for _ in ()).throw(socket.gaierror(-2, "Name "
                                                                                                      "unknown")))
    with pytest.raises(InputError, match="nothing answers at nowhere:1 \\(Name unknown\\)"):
        check_address("nowhere:1")


def test_the_summary_names_the_files_passed_over(folder, tmp_path, capsys):
    (folder / "notes.txt").write_text("x")
    (folder / "scan.heic").write_bytes(b"x")
    res = run("embed", "shapes-clip", folder, tmp_path / "e.jsonl", progress=True)
    err = capsys.readouterr().err
    assert res.images == 4 and [Path(p).name for p in res.skipped] == ["notes.txt", "scan.heic"]
    assert "2 files in the folders passed over, not named as a picture mmkit reads (notes.txt, scan.heic)" in err
    assert "HEIC" in err  # how to read them


def test_resume_mismatch_message_reads_right():
    job = {"task": "zero-shot", "model": "shapes-clip", "options": {"labels": ["a", "b"]}, "batch_size": 16}
    with pytest.raises(InputError, match=r"this job's options are \{'labels': \['a', 'c'\]\}, the journal's are"):
        check_same(job, {**job, "options": {"labels": ["a", "c"]}})
    with pytest.raises(InputError, match="this job's batch_size is 8, the journal's is 16"):
        check_same(job, {**job, "batch_size": 8})


def test_a_second_job_on_the_same_output_is_refused_before_its_model_loads(folder, tmp_path, no_model):
    """It was refused only after loading its model (seconds for nothing)."""
    from mmkit.jobs.shards import Journal

    out = tmp_path / "x.jsonl"
    held = Journal(out).lock()  # the first job, still running
    try:
        with pytest.raises(InputError, match="another job is writing"):
            run("embed", "shapes-clip", folder, out, progress=False)
    finally:
        held.release()


def test_a_job_whose_model_fails_to_load_leaves_nothing_to_resume(folder, tmp_path):
    out = tmp_path / "x.jsonl"
    with pytest.raises(InputError, match="unknown model"):
        run("embed", "no-such-model", folder, out, progress=False)
    assert run("embed", "shapes-clip", folder, out, progress=False).images == 4  # no --resume asked for
