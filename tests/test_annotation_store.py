"""AnnotationStore: COCO caption JSON saved crash-safely; resume, corrupt and hand-edited files, kill test.

The kill test starts a writer process that accepts items in a loop and prints "ack N" after each
`accept` returns, SIGKILLs it at a random moment (often in the middle of a save), and checks that the
file still parses and that the file and its journal hold every acknowledged item; 200 times, resuming from
them each time, every other writer rewriting the file and the others appending to the journal.
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

from mmkit.annotations import AnnotationFileError, AnnotationStore, atomic_write, image_files, validate
from mmkit.errors import InputError

REPO = Path(__file__).resolve().parents[1]
KILLS = 200

# Loads mmkit.annotations without mmkit/__init__ (numpy, PIL...), so each writer starts in ~50 ms.
WRITER = r"""
import sys, types
pkg = types.ModuleType("mmkit"); pkg.__path__ = [sys.argv[1] + "/mmkit"]; sys.modules["mmkit"] = pkg
from mmkit.annotations import AnnotationStore
store = AnnotationStore(sys.argv[2], journal_above=int(sys.argv[3]))
n = len(store)
print("ready", n, flush=True)
pad = "lorem ipsum " * 40  # ~0.5 kB per item, so a save takes a while and kills land inside it
while True:
    store.accept(f"img{n:05d}.png", f"caption {n} {pad}", tags=["t%d" % (n % 7)], width=64, height=64)
    print("ack", n, flush=True)
    n += 1
"""


def test_accept_skip_resume_and_coco_format(tmp_path):
    path = tmp_path / "out" / "captions.json"
    files = ["a.png", "b.jpg", "c.png"]
    s = AnnotationStore(path)
    assert s.first_pending(files) == 0 and not path.exists()
    s.accept("a.png", "  a red   circle ", tags=["red", "circle", "red", " "], width=64, height=48,
             suggested_caption="a red circle", model="shapes-blip-caption")
    s.skip("b.jpg")
    assert not s.backup_path.exists()  # a new file: nothing to back up
    data = json.loads(path.read_text())
    validate(data)
    assert data["images"] == [{"id": 1, "file_name": "a.png", "width": 64, "height": 48}]
    assert data["annotations"][0]["caption"] == "a red circle" and data["annotations"][0]["tags"] == ["red", "circle"]
    assert data["annotations"][0]["image_id"] == 1 and data["mmkit_skipped"] == ["b.jpg"]
    again = AnnotationStore(path)  # re-opening resumes where it stopped
    assert again.first_pending(files) == 2 and again.annotation("a.png")["caption"] == "a red circle"
    again.accept("a.png", "a big red circle")  # editing an accepted item replaces it
    again.accept("b.jpg", "a blue square")  # a skipped item can be captioned later
    data = json.loads(path.read_text())
    assert [a["caption"] for a in data["annotations"]] == ["a big red circle", "a blue square"]
    assert data["mmkit_skipped"] == [] and again.first_pending(files) == 2
    assert json.loads(again.backup_path.read_text())["mmkit_skipped"] == ["b.jpg"]  # the version found on open
    with pytest.raises(InputError, match="empty"):
        again.accept("c.png", "   ")


@pytest.mark.parametrize("content, words", [
    (b"{\"images\": [", "not valid JSON"),
    (b"", "not valid JSON"),
    (b"{\"images\": \xc3\x28}", "not UTF-8"),
    (b"\xff\xfe\x00garbage", "not valid JSON"),  # a UTF-16 byte order mark, then garbage
    (b"[1, 2, 3]", "JSON object"),
    (b"{\"images\": [], \"annotations\": {}}", "'annotations' is missing or not a list"),
    (b"{\"images\": [{\"id\": 1, \"file_name\": \"a.png\"}], \"annotations\": [{\"id\": 1, \"image_id\": 2, "
     b"\"caption\": \"x\"}]}", "image_id 2"),
    (b"{\"images\": [{\"id\": 1, \"file_name\": \"a.png\"}], \"annotations\": [{\"id\": 1, \"image_id\": 1}]}",
     "no 'caption'"),
])
def test_corrupt_file_is_a_clear_error_and_never_overwritten(tmp_path, content, words):
    path = tmp_path / "captions.json"
    path.write_bytes(content)
    with pytest.raises(AnnotationFileError, match=words) as e:
        AnnotationStore(path)
    assert str(path) in str(e.value) and "not changed" in str(e.value)
    assert path.read_bytes() == content


def test_hand_edits_during_a_session_are_merged_and_a_broken_edit_is_never_overwritten(tmp_path):
    path = tmp_path / "captions.json"
    s = AnnotationStore(path)
    s.accept("a.png", "first")
    data = json.loads(path.read_text())
    data["annotations"][0]["caption"] = "fixed by hand"
    path.write_text(json.dumps(data))  # a person edits the file while the panel is open
    s.accept("b.png", "second")  # re-read under the lock: the edit and the new save are both kept
    assert [a["caption"] for a in json.loads(path.read_text())["annotations"]] == ["fixed by hand", "second"]
    assert s.annotation("a.png")["caption"] == "fixed by hand"
    path.write_text("{ broken by hand")
    with pytest.raises(AnnotationFileError, match="not valid JSON.*changed on disk"):
        s.accept("c.png", "third")
    assert path.read_text() == "{ broken by hand"  # not overwritten
    unsaved = json.loads(path.with_name("captions.json.unsaved.json").read_text())
    assert [a["caption"] for a in unsaved["annotations"]] == ["fixed by hand", "second", "third"]  # nothing lost
    path.write_text(json.dumps(unsaved))
    s.accept("d.png", "fourth")  # once the file is readable again, the same store goes on
    assert len(AnnotationStore(path)) == 4
    path.unlink()
    with pytest.raises(AnnotationFileError, match="deleted"):
        s.skip("e.png")


def test_atomic_write_leaves_no_temp_files(tmp_path):
    target = tmp_path / "x.json"
    atomic_write(target, b"1")
    atomic_write(target, b"2")
    assert target.read_bytes() == b"2" and sorted(os.listdir(tmp_path)) == ["x.json"]


def test_image_files_walks_a_folder(tmp_path):
    for name in ("b.png", "a.JPG", "sub/c.webp", "notes.txt", ".hidden.png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert image_files(tmp_path) == ["a.JPG", "b.png", "sub/c.webp"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no image files"):
        image_files(tmp_path / "empty")
    with pytest.raises(InputError, match="not a folder"):
        image_files(tmp_path / "b.png")


def _kill_once(script: Path, path: Path, journal_above: int, rng: random.Random) -> tuple[set[int], int]:
    """Start a writer, let it save a few items, kill it at a random moment; (acknowledged items, first item)."""
    proc = subprocess.Popen([sys.executable, "-S", str(script), str(REPO), str(path), str(journal_above)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
    first = proc.stdout.readline().split()
    assert first and first[0] == "ready", proc.stderr.read()
    start, acked = int(first[1]), set()
    for _ in range(rng.randint(0, 3)):  # wait for a few acks...
        acked.add(int(proc.stdout.readline().split()[1]))
    time.sleep(rng.uniform(0.0, 0.01))  # ...then kill at a random moment, often in the middle of the next save
    os.kill(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate()
    for line in out.splitlines():  # every ack printed before the kill was flushed to the pipe
        parts = line.split()
        if len(parts) == 2 and parts[0] == "ack":
            acked.add(int(parts[1]))
    return acked, start


def test_kill_during_save_loses_nothing_acknowledged(tmp_path):
    """Half of the writers rewrite the file on every save, half append to the journal (a torn line when killed)."""
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    path = tmp_path / "captions.json"
    journal = path.with_name("captions.json.journal")
    rng = random.Random(0)
    acked: set[int] = set()
    seen: set[int] = set()
    mid_save = torn_lines = unacked = 0
    t0 = time.monotonic()
    for k in range(KILLS):
        got, start = _kill_once(script, path, 0 if k % 2 else 1 << 30, rng)
        torn = journal.exists() and journal.read_bytes()[-1:] not in (b"", b"\n")
        mid_save += torn or any(p.name.endswith(".tmp") for p in tmp_path.iterdir())  # killed inside a save
        torn_lines += torn
        acked |= got
        if path.exists():
            validate(json.loads(path.read_text()))  # the file alone parses and is a caption file
        store = AnnotationStore(path, backup=False)  # file + journal
        saved = {int(name[3:8]) for name in store.done}
        assert acked <= saved, f"lost acknowledged items {sorted(acked - saved)[:5]}"
        assert saved == set(range(len(saved)))  # no gaps, no duplicates: each resume continued the sequence
        unacked += bool(saved - acked - seen)  # killed after the save reached the file, before its ack
        seen = saved
    elapsed = time.monotonic() - t0
    print(f"{KILLS} kills, {len(acked)} items acknowledged, {mid_save} kills inside a save (a temp file or a torn "
          f"journal line left: {torn_lines} torn lines), {unacked} between a save and its ack, {elapsed:.1f} s")
    assert len(acked) > KILLS  # the writers did real work between kills
    assert mid_save > KILLS // 40  # and a share of the kills did land inside a save (78 of 200 on an idle host, 11 under load)
