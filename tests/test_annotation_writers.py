"""Several writers on one annotation file (issue 28): no acknowledged save is ever lost.

Two processes x 500 saves, 10 trials (half of them through the journal), and three threads with a store each.
The files live on tmpfs (/dev/shm) when there is one: what is tested here is the lock and the merge, not the
disk (the SIGKILL test in test_annotation_store.py runs on the real disk), and a tmpfs fsync costs
microseconds instead of milliseconds, which keeps 10,000 saves within seconds.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from mmkit.annotations import AnnotationStore, validate
from mmkit.errors import InputError

REPO = Path(__file__).resolve().parents[1]
TRIALS, SAVES = 10, 500

# Loads mmkit.annotations without mmkit/__init__ (numpy, PIL...); waits for "go" so both writers start together.
WRITER = r"""
import sys, types
pkg = types.ModuleType("mmkit"); pkg.__path__ = [sys.argv[1] + "/mmkit"]; sys.modules["mmkit"] = pkg
from mmkit.annotations import AnnotationStore
journal_above = None if sys.argv[5] == "none" else int(sys.argv[5])
store = AnnotationStore(sys.argv[2], journal_above=journal_above)
who, saves = sys.argv[3], int(sys.argv[4])
print("ready", flush=True)
sys.stdin.readline()
for i in range(saves):
    if i % 50 == 49:
        store.skip(f"{who}-{i:04d}.png")
    else:
        store.accept(f"{who}-{i:04d}.png", f"caption {i} by {who}", tags=[who], width=8, height=8, n=i)
    print("ack", i, flush=True)
"""


@pytest.fixture
def fast_dir(tmp_path):
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    d = Path(tempfile.mkdtemp(prefix="mmkit-writers-", dir=shm))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _expected(who: str, acked: set[int]) -> tuple[set[str], set[str]]:
    accepted = {f"{who}-{i:04d}.png" for i in acked if i % 50 != 49}
    skipped = {f"{who}-{i:04d}.png" for i in acked if i % 50 == 49}
    return accepted, skipped


def test_two_processes_lose_no_acknowledged_save(fast_dir):
    script = fast_dir / "writer.py"
    script.write_text(WRITER)
    lost, stats = [], []
    for trial in range(TRIALS):
        path = fast_dir / f"trial{trial}" / "captions.json"
        # odd trials append every save to the journal; even ones rewrite the file until it passes 64 kB (about
        # 450 items), then journal, and fold the journal back in once it passes 64 kB too
        journal_above = "0" if trial % 2 else "65536"
        procs = [subprocess.Popen([sys.executable, "-S", str(script), str(REPO), str(path), who, str(SAVES),
                                   journal_above], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for who in ("a", "b")]
        for p in procs:
            assert p.stdout.readline().strip() == "ready", p.stderr.read()
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        outs = [p.communicate(timeout=120) for p in procs]
        for p, (out, err) in zip(procs, outs):
            assert p.returncode == 0 and err == "", err  # no FileNotFoundError from the other's temp file
        data = json.loads(path.read_text())
        validate(data)
        store = AnnotationStore(path, backup=False)  # file + journal
        names = {im["file_name"] for im in store.data["images"] if store.annotation(im["file_name"])}
        skipped = set(store.data["mmkit_skipped"])
        for who, (out, _) in zip("ab", outs):
            acked = {int(line.split()[1]) for line in out.splitlines() if line.startswith("ack ")}
            assert len(acked) == SAVES
            accepted, skips = _expected(who, acked)
            lost += sorted((accepted - names) | (skips - skipped))
            ann = store.annotation(f"{who}-0007.png") or {}
            assert {k: ann.get(k) for k in ("caption", "tags", "n")} == {"caption": f"caption 7 by {who}",
                                                                         "tags": [who], "n": 7} or lost
        stats.append(len(names) + len(skipped))
    print(f"{TRIALS} trials x 2 processes x {SAVES} saves: {sum(stats)} saves found, {len(lost)} lost")
    assert not lost, f"lost acknowledged saves: {lost[:10]}"
    assert stats == [2 * SAVES] * TRIALS


def test_three_threads_with_a_store_each_lose_nothing(fast_dir):
    path = fast_dir / "captions.json"
    n, errors = 150, []
    stores = [AnnotationStore(path, journal_above=j) for j in (None, 0, 2048)]  # rewrite, journal, mixed

    def work(k: int):
        try:
            for i in range(n):
                stores[k].accept(f"t{k}-{i}.png", f"caption {i}", tags=[f"t{k}"])
                if i % 10 == 0:
                    stores[k].accept(f"shared-{i}.png", f"from thread {k}")  # all three write the same item
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for s in stores:
        s.flush()
    again = AnnotationStore(path, backup=False)
    assert again.done == {f"t{k}-{i}.png" for k in range(3) for i in range(n)} | {f"shared-{i}.png"
                                                                                    for i in range(0, n, 10)}
    assert all(again.annotation(f"shared-{i}.png")["caption"].startswith("from thread") for i in range(0, n, 10))
    validate(json.loads(path.read_text()))
    assert len(again) == 3 * n + n // 10 and again.journal_path.read_bytes() == b""


def test_one_store_shared_by_threads(fast_dir):
    path = fast_dir / "captions.json"
    store = AnnotationStore(path, journal_above=0)
    threads = [threading.Thread(target=lambda k=k: [store.accept(f"{k}-{i}.png", "x") for i in range(100)])
               for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store) == 300 and len(AnnotationStore(path, backup=False)) == 300


def test_a_save_the_file_stat_does_not_show_is_still_seen(tmp_path, monkeypatch):
    """Timestamps are as coarse as a kernel tick and inode numbers come back: the lock file's counter decides."""
    import mmkit.annotations.store as store_module

    monkeypatch.setattr(store_module, "_sig", lambda st: ("the same stat every time",))
    path = tmp_path / "captions.json"
    a, b = AnnotationStore(path), AnnotationStore(path)
    a.accept("a.png", "first")
    b.accept("b.png", "second")  # b's stat of the file is unchanged, yet it must read a's save first
    a.accept("c.png", "third")
    assert AnnotationStore(path).done == {"a.png", "b.png", "c.png"}


def test_a_lock_held_too_long_is_a_clear_error(tmp_path):
    fcntl = pytest.importorskip("fcntl")
    path = tmp_path / "captions.json"
    store = AnnotationStore(path)
    store._lock.timeout = 0.3
    fd = os.open(store._lock.path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another program, stuck in the middle of a save
    try:
        with pytest.raises(InputError, match="another program has held .*captions.json.lock"):
            store.accept("a.png", "x")
    finally:
        os.close(fd)
    store.accept("a.png", "x")  # free again
    assert len(AnnotationStore(path)) == 1


def test_the_filelock_fallback_used_where_there_is_no_fcntl(fast_dir, monkeypatch):
    import filelock  # noqa: F401 - imported before fcntl is hidden, as on Windows it would work without it

    monkeypatch.setitem(sys.modules, "fcntl", None)  # `import fcntl` now raises ImportError
    path = fast_dir / "captions.json"
    stores = [AnnotationStore(path, journal_above=j) for j in (None, 0)]
    threads = [threading.Thread(target=lambda k=k: [stores[k].accept(f"{k}-{i}.png", "x") for i in range(60)])
               for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert stores[0]._lock._filelock is not None
    assert len(AnnotationStore(path, backup=False)) == 120
