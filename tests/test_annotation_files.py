"""AnnotationStore on odd inputs (issue 28): file names that are not UTF-8, checks on write, hand-edited files
(BOM, nesting, huge numbers, NaN), FIFOs and devices, and the journal of a large file.
"""
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mmkit.annotations import (AnnotationFileError, AnnotationStore, display_name, image_files, name_bytes,
                               validate)
from mmkit.annotations.files import remove_stale_temps
from mmkit.errors import InputError

REPO = Path(__file__).resolve().parents[1]


def reopen(path) -> AnnotationStore:
    return AnnotationStore(path, backup=False)


# -- reproduction 1: a file name that is not UTF-8 -------------------------------------------------
def test_non_utf8_file_name_is_saved_losslessly(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    raw = b"bad\xff.png"
    with open(os.path.join(os.fsencode(folder), raw), "wb") as f:
        f.write(b"x")
    (folder / "ok.png").write_bytes(b"x")
    files = image_files(folder)
    assert files == ["bad\udcff.png", "ok.png"]
    s = AnnotationStore(tmp_path / "c.json")
    s.accept(files[0], "a caption")
    s.skip(files[1])
    text = (tmp_path / "c.json").read_bytes()
    assert b"bad\\udcff.png" in text
    text.decode("utf-8")  # the file is valid UTF-8 JSON
    again = reopen(tmp_path / "c.json")
    assert again.annotation(files[0])["caption"] == "a caption" and again.first_pending(files) == 2
    assert name_bytes(again.data["images"][0]["file_name"]) == raw  # the original bytes come back
    assert display_name(files[0]) == "bad\\xff.png"


def test_lone_surrogate_caption_is_refused_and_the_store_keeps_working(tmp_path):
    s = AnnotationStore(tmp_path / "c.json")
    with pytest.raises(InputError, match="surrogate"):
        s.accept("x.png", "bad \ud800")
    with pytest.raises(InputError, match="surrogate"):
        s.accept("\ud800.png", "fine")  # not an escaped byte: no file has this name
    with pytest.raises(InputError, match="surrogate"):
        s.accept("x.png", "ok", tags=["\udcff"])
    s.accept("y.png", "fine")  # later saves still work
    assert len(reopen(tmp_path / "c.json")) == 1


# -- reproduction 3: everything accepted can be read back -----------------------------------------
@pytest.mark.parametrize("call, words", [
    (lambda s: s.skip(None), "file_name must be a non-empty string"),
    (lambda s: s.skip(""), "non-empty"),
    (lambda s: s.skip("a\x00.png"), "NUL"),
    (lambda s: s.accept("a.png", "c", image_id=999), "'image_id' cannot be passed"),
    (lambda s: s.accept("a.png", "c", id="abc"), "'id' cannot be passed"),
    (lambda s: s.accept("a.png", None), "must be a string"),
    (lambda s: s.accept("a.png", "c", tags=[1, 2]), r"tags\[0\]"),
    (lambda s: s.accept("a.png", "c", tags=5), "tags must be"),
    (lambda s: s.accept("a.png", "c", width=10), "both width and height"),
    (lambda s: s.accept("a.png", "c", width=-1, height=3), "width"),
    (lambda s: s.accept("a.png", "c", width=True, height=3), "width"),
    (lambda s: s.accept("a.png", "c", score=float("nan")), "score is nan"),
    (lambda s: s.accept("a.png", "c", score=10 ** 30), "2\\*\\*53"),
    (lambda s: s.accept("a.png", "c", obj=object()), "JSON cannot hold"),
    (lambda s: s.accept("a.png", "c", deep=json.loads("[" * 40 + "]" * 40)), "nested more than"),
])
def test_bad_changes_are_refused_before_writing(tmp_path, call, words):
    path = tmp_path / "c.json"
    s = AnnotationStore(path)
    s.accept("first.png", "kept")
    before = path.read_bytes()
    with pytest.raises(InputError, match=words):
        call(s)
    assert path.read_bytes() == before
    s.accept("second.png", "still saves")
    assert len(reopen(path)) == 2


def test_tags_as_one_string_are_split_on_commas(tmp_path):
    s = AnnotationStore(tmp_path / "c.json")
    assert s.accept("a.png", "c", tags="red,blue , red,,")["tags"] == ["red", "blue"]
    assert reopen(tmp_path / "c.json").annotation("a.png")["tags"] == ["red", "blue"]
    assert s.accept("b.png", "c", tags=None)["tags"] == [] and s.accept("c.png", "c", tags=("x",))["tags"] == ["x"]


def test_numpy_sizes_are_plain_integers(tmp_path):
    np = pytest.importorskip("numpy")
    s = AnnotationStore(tmp_path / "c.json")
    s.accept("a.png", "c", width=np.int64(64), height=np.uint16(48))
    assert reopen(tmp_path / "c.json").data["images"][0] == {"id": 1, "file_name": "a.png", "width": 64, "height": 48}
    with pytest.raises(InputError, match="float32, which JSON cannot hold"):
        s.accept("a.png", "c", score=np.float32(0.5))


# -- hand-edited files -----------------------------------------------------------------------------
GOOD = {"images": [{"id": 1, "file_name": "a.png"}], "annotations": [{"id": 1, "image_id": 1, "caption": "x"}]}


def test_a_bom_is_accepted(tmp_path):
    path = tmp_path / "c.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(GOOD).encode())
    s = AnnotationStore(path)
    assert s.annotation("a.png")["caption"] == "x"
    s.accept("b.png", "y")
    assert len(reopen(path)) == 2


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_utf16_and_utf32_files_are_read_and_saved_back_as_utf8(tmp_path, encoding):
    path = tmp_path / "c.json"
    path.write_bytes(json.dumps({**GOOD, "info": {"by": "Zoë"}}, ensure_ascii=False).encode(encoding))
    s = AnnotationStore(path)
    assert s.data["info"] == {"by": "Zoë"}
    s.accept("b.png", "y")
    assert json.loads(path.read_bytes().decode("utf-8"))["info"] == {"by": "Zoë"}


def test_a_latin1_file_names_the_bad_byte(tmp_path):
    path = tmp_path / "c.json"
    path.write_bytes(json.dumps({**GOOD, "info": {"by": "Zoë"}}, ensure_ascii=False).encode("latin-1"))
    with pytest.raises(AnnotationFileError, match=r"not UTF-8 text \(a bad byte at \d+\).*save it as UTF-8"):
        AnnotationStore(path)


@pytest.mark.parametrize("edit, words", [
    ('"extra": ' + "[" * 5000 + "]" * 5000, "nested more than 16 levels deep at line 1, column"),
    ('"extra": ' + "[" * 30 + "]" * 30, re.escape("extra" + "[0]" * 16) + " is nested more than"),
    ('"extra": {"n": 1' + "0" * 5000 + "}", r"the number at line 1, column \d+ is too long"),
    ('"extra": {"n": 1' + "0" * 50 + "}", r"extra.n: the number 1000.* is larger than 9007199254740992"),
    ('"extra": 123456789012345678', r"the number 123456789012345678 is larger than 9007199254740992"),
    ('"extra": NaN', "extra: the number NaN is not finite"),
    ('"extra": -Infinity', "is not finite"),
    ('"extra": 1e999', "the number 1e999 is not finite"),
    ('"info": {"a": "\\ud800"}', "info.a holds a lone surrogate"),
])
def test_hand_edited_limits_name_the_place(tmp_path, edit, words):
    path = tmp_path / "c.json"
    content = json.dumps(GOOD)[:-1] + ", " + edit + "}"
    path.write_text(content)
    with pytest.raises(AnnotationFileError, match=words) as e:
        AnnotationStore(path)
    assert str(path) in str(e.value) and "not changed" in str(e.value)
    assert path.read_text() == content


@pytest.mark.parametrize("images, words", [
    ([{"id": True, "file_name": "a.png"}], r"images\[0\] needs an integer 'id'"),
    ([{"id": 1, "file_name": "a.png", "width": 1.5}], r"images\[0\].width"),
    ([{"id": 1, "file_name": "a\x00.png"}], "NUL"),
])
def test_hand_edited_image_records_are_checked(tmp_path, images, words):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"images": images, "annotations": []}))
    with pytest.raises(AnnotationFileError, match=words):
        AnnotationStore(path)


def test_fifo_and_device_are_refused_without_hanging(tmp_path):
    fifo = tmp_path / "c.json"
    os.mkfifo(fifo)
    code = ("import sys; from mmkit.annotations import AnnotationStore\n"
            "for p in sys.argv[1:]:\n"
            "    try: AnnotationStore(p)\n"
            "    except Exception as e: print(type(e).__name__, e)\n")
    out = subprocess.run([sys.executable, "-c", code, str(fifo), "/dev/zero", str(tmp_path)], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    lines = out.stdout.splitlines()
    assert len(lines) == 3, out.stderr
    assert all(line.startswith("AnnotationFileError") and "not a regular file" in line for line in lines)


def test_stale_temp_files_are_removed_only_when_their_owner_is_gone(tmp_path):
    path = tmp_path / "c.json"
    host = __import__("mmkit.annotations.files", fromlist=["_HOST"])._HOST
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".c.json.{host}-{int(dead.stdout)}.abc.tmp"
    live = tmp_path / f".c.json.{host}-{os.getpid()}.def.tmp"
    foreign = tmp_path / ".c.json.otherhost-1.ghi.tmp"
    stale_bak = tmp_path / f".c.json.bak.{host}-{int(dead.stdout)}.abc.tmp"
    for p in (stale, live, foreign, stale_bak):
        p.write_text("half")
    AnnotationStore(path)
    assert not stale.exists() and not stale_bak.exists() and live.exists() and foreign.exists()
    assert remove_stale_temps(path) == []


def test_a_save_from_another_thread_does_not_delete_a_temp_file_in_use(tmp_path):
    """Opening a store while another one is saving: the other's temp file is its own, so it is left alone."""
    path = tmp_path / "c.json"
    writer = AnnotationStore(path)
    errors, written, done = [], [], threading.Event()

    def work():  # saves until the other side has opened the store 20 times (and at least 100 saves)
        try:
            while len(written) < 100 or not done.is_set():
                writer.accept(f"img{len(written)}.png", "x " * 200)
                written.append(1)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    t = threading.Thread(target=work)
    t.start()
    for _ in range(20):  # each open sweeps stale temp files while the writer is saving
        AnnotationStore(path, backup=False)
    done.set()
    t.join()
    assert not errors and len(written) >= 100 and len(reopen(path)) == len(written)


# -- the journal of a large file -----------------------------------------------------------------------
def test_journal_holds_saves_and_flush_folds_it_into_the_file(tmp_path):
    path = tmp_path / "c.json"
    s = AnnotationStore(path, journal_above=0)
    s.accept("a.png", "first")  # no file yet: written whole
    s.accept("b.png", "second", tags=["t"], width=3, height=4)
    s.skip("a.png")
    assert [json.loads(x)["op"] for x in s.journal_path.read_text().splitlines()] == ["accept", "skip"]
    assert len(json.loads(path.read_text())["annotations"]) == 1  # the file alone lags...
    other = reopen(path)  # ...but a store reads file + journal
    assert other.annotation("b.png")["tags"] == ["t"] and other.done == {"a.png", "b.png"} and len(other) == 1
    s.flush()
    data = json.loads(path.read_text())
    validate(data)
    assert s.journal_path.read_bytes() == b"" and data["mmkit_skipped"] == ["a.png"]
    assert data["mmkit_journal_seq"] == 3 and [a["caption"] for a in data["annotations"]] == ["second"]


def test_journal_torn_line_is_dropped_and_replaced(tmp_path):
    path = tmp_path / "c.json"
    s = AnnotationStore(path, journal_above=0)
    s.accept("a.png", "first")
    s.accept("b.png", "second")
    with open(s.journal_path, "ab") as f:
        f.write(b'{"seq": 3, "op": "accept", "file_name": "c.png", "cap')  # a writer killed mid-line
    again = AnnotationStore(path, journal_above=0)
    assert again.done == {"a.png", "b.png"}
    again.accept("d.png", "third")
    assert reopen(path).done == {"a.png", "b.png", "d.png"}
    assert all(json.loads(x) for x in s.journal_path.read_text().splitlines())


def test_journal_lines_already_in_the_file_are_not_applied_twice(tmp_path):
    """A writer killed between writing the file and emptying the journal: the file's seq says what it holds."""
    path = tmp_path / "c.json"
    s = AnnotationStore(path, journal_above=0)
    s.accept("a.png", "first")
    s.accept("b.png", "second")
    s.skip("b.png")
    journal = s.journal_path.read_bytes()
    s.flush()
    s.journal_path.write_bytes(journal)  # as if the kill came before the journal was emptied
    again = reopen(path)
    assert again.done == {"a.png", "b.png"} and len(again) == 1


@pytest.mark.parametrize("line, words", [
    (b'{"seq": 9, "op": "accept", "file_name": "c.png", "caption": "x", "extra": {"n": NaN}}', "extra.n"),
    (b'{"seq": 9, "op": "accept", "file_name": "c.png", "caption": "x", "extra": [1, 2]}', "must be a dict"),
    (b'{"seq": 9, "op": "rename", "file_name": "c.png"}', "not an mmkit journal record"),
    (b'{"seq": "9", "op": "skip", "file_name": "c.png"}', "not an mmkit journal record"),
    (b'{"seq": 9, "op": "skip", "file_name": 5}', "file_name must be a non-empty string"),
    (b'[1, 2', "not valid JSON"),
])
def test_bad_journal_line_is_an_error_naming_it(tmp_path, line, words):
    path = tmp_path / "c.json"
    s = AnnotationStore(path, journal_above=0)
    s.accept("a.png", "first")
    s.accept("b.png", "second")
    with open(s.journal_path, "ab") as f:
        f.write(line + b"\n")
    with pytest.raises(AnnotationFileError, match=r"journal \(the line at byte \d+\).*" + words):
        reopen(path)


def test_a_file_name_with_glob_characters(tmp_path):
    path = tmp_path / "captions[1]*.json"
    host = __import__("mmkit.annotations.files", fromlist=["_HOST"])._HOST
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".captions[1]*.json.{host}-{int(dead.stdout)}.abc.tmp"
    stale.write_text("half")
    s = AnnotationStore(path)
    s.accept("a.png", "x")
    assert not stale.exists() and reopen(path).annotation("a.png")["caption"] == "x"
