"""The Ray engine on a local 2-CPU cluster: the same rows as the local engine, and a killed worker retried.

Part of `make test` (about 25 s on a quiet 2-core machine, Ray's start included); `make test-scale` runs it too.
"""
import base64
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

import mmkit  # noqa: E402
from mmkit.jobs import read_output, run  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    os.environ.setdefault("RAY_raylet_start_wait_time_s", "120")  # a loaded CI machine starts Ray slowly
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    from mmkit.data import ShapesWorld

    d = tmp_path_factory.mktemp("ray-images")
    for i, item in enumerate(ShapesWorld(48, seed=11)):
        item.image.save(d / f"{i:03d}.{'jpg' if i % 2 else 'png'}")
    (d / "zero.png").write_bytes(b"")
    with open(os.path.join(os.fsencode(d), b"\xe9t\xe9.png"), "wb") as f:  # a Latin-1 name: not UTF-8
        f.write((d / "000.png").read_bytes())
    return d


def test_ray_engine_kills_a_worker_and_matches_local(cluster, folder, tmp_path):
    import psutil

    m = mmkit.load_model("shapes-blip-caption")
    local = run("caption", m, folder, tmp_path / "local.jsonl", batch_size=4, shard_size=4, progress=False)
    out = tmp_path / "ray.jsonl"
    parts = Path(str(out) + ".parts")
    killed = []

    def killer():  # SIGKILL one model actor once it has written a shard, while others remain to do
        deadline = time.time() + 300
        while time.time() < deadline and not killed:
            if len(list(parts.glob("shard-*.jsonl"))) >= 1:
                alive = [p.pid for p in psutil.process_iter(["cmdline"])
                         if "ShardWorker" in " ".join(p.info["cmdline"] or [])]  # Ray titles actors ray::MapWorker(...)
                if alive:
                    os.kill(alive[0], signal.SIGKILL)
                    killed.append(alive[0])
                    return
            time.sleep(0.1)

    t = threading.Thread(target=killer)
    t.start()
    res = run("caption", m, folder, out, engine="ray", batch_size=4, shard_size=4, progress=False, ray_workers=2)
    t.join()
    assert killed, "no worker was killed: the job ended before one had written a shard"
    written = [json.loads(line) for f in parts.glob("shard-*.jsonl") for line in f.read_text().splitlines()]
    assert written and all("stat" in r for r in written)  # Ray's actors record each file's size and mtime too
    assert read_output(out) == read_output(local.out)  # every image once, the same captions and errors
    assert res.images == 50 and res.errors == 1 and "start" in res.timing
    odd = [r for r in read_output(out) if r["image_b64"]]  # the exact bytes of the name that is not UTF-8
    assert len(odd) == 1
    assert base64.b64decode(odd[0]["image_b64"]) == os.path.join(os.fsencode(folder), b"\xe9t\xe9.png")
    assert odd[0]["path"].endswith("\\xe9t\\xe9.png") and odd[0]["caption"] and not odd[0]["error"]
    again = run("caption", m, folder, out, engine="ray", batch_size=4, shard_size=4, progress=False)
    assert again.done_before == 50  # resume semantics as the local engine: nothing left to do
