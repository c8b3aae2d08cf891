"""Property-based tests of the annotation store (issue 28): random edits, file names and hand-edited files.

Fixed seed (derandomize) and budget, no example database: the same examples run everywhere, in ~20 s.
Properties:
- a change either returns and is then read back exactly by a fresh store, or raises InputError and leaves
  the files as they were; a change made of valid parts always succeeds;
- a hand-edited file either opens (and can then be extended and read back) or raises AnnotationFileError,
  never another exception; so do random bytes.
"""
import json
import math
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mmkit.annotations import AnnotationFileError, AnnotationStore, name_bytes
from mmkit.errors import InputError

SETTINGS = settings(derandomize=True, database=None, deadline=None, max_examples=200,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PARAMS = {"file_name", "caption", "tags", "width", "height", "id", "image_id"}  # not usable as extra fields


@contextmanager
def folder():
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None  # tmpfs: fsync is cheap
    d = tempfile.mkdtemp(prefix="mmkit-fuzz-", dir=base)
    try:
        yield Path(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def snapshot(d: Path) -> dict:
    return {p.name: p.read_bytes() for p in d.iterdir() if not p.name.endswith(".lock")}


# -- strategies ----------------------------------------------------------------------------------
good_text_names = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1,
                          max_size=12)
byte_names = st.binary(min_size=1, max_size=12).map(lambda b: os.fsdecode(b.replace(b"\x00", b"_")))
good_names = st.one_of(good_text_names, byte_names, st.sampled_from(["a.png", "b.png", "dir/c.jpg"]))
bad_names = st.one_of(st.just(""), st.just(None), st.just(3), st.just("a\x00b"), st.just("\ud800x"),
                      st.just(b"bytes.png"))
good_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
captions = good_text.map(lambda s: s if s.split() else s + "x")
json_leaves = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 53, 2 ** 53),
                        st.floats(allow_nan=False, allow_infinity=False), good_text)
json_values = st.recursive(json_leaves, lambda kids: st.lists(kids, max_size=3)
                           | st.dictionaries(good_text, kids, max_size=3), max_leaves=8)
extra_keys = st.text(st.characters(whitelist_categories=("Ll", "Lu", "Nd")), min_size=1, max_size=8).filter(
    lambda k: k not in PARAMS)
good_extra = st.dictionaries(extra_keys, json_values, max_size=3)
bad_values = st.sampled_from([float("nan"), float("inf"), 2 ** 60, object(), {1: "x"}, "\udcff",
                              json.loads("[" * 30 + "]" * 30)])


@st.composite
def changes(draw):
    """(kind, args, kwargs, valid): an accept or skip, valid or with one bad part."""
    bad = draw(st.sampled_from(["", "", "", "name", "caption", "tags", "extra", "size"]))
    name = draw(bad_names if bad == "name" else good_names)
    if draw(st.integers(0, 3)) == 0:
        return "skip", (name,), {}, bad in ("", "caption", "tags", "extra", "size")
    caption = draw(st.sampled_from(["", "   ", None, "x\ud800"]) if bad == "caption" else captions)
    tags = draw(st.sampled_from([5, [1], ["\udcff"], {"a": 1}]) if bad == "tags" else
                st.one_of(st.lists(good_text, max_size=4), good_text))
    extra = draw(good_extra)
    if bad == "extra":
        extra[draw(extra_keys)] = draw(bad_values)
    kwargs = dict(tags=tags, **extra)
    if bad == "size":
        kwargs.update(width=draw(st.sampled_from([0, -1, 1.5, True, "3"])), height=3)
    elif draw(st.booleans()):
        kwargs.update(width=draw(st.integers(1, 10_000)), height=draw(st.integers(1, 10_000)))
    return "accept", (name, caption), kwargs, bad == ""


def _tags(tags) -> list[str]:
    parts = tags.split(",") if isinstance(tags, str) else tags
    return list(dict.fromkeys(" ".join(t.split()) for t in parts if t.split()))


def _state(store: AnnotationStore) -> dict:
    out = {}
    for im in store.data["images"]:
        ann = store.annotation(im["file_name"])
        if ann is not None:
            out[im["file_name"]] = {k: v for k, v in ann.items() if k not in ("id", "image_id")}
    out.update({name: "skipped" for name in store.data["mmkit_skipped"]})
    return out


@SETTINGS
@given(st.lists(changes(), min_size=1, max_size=12), st.sampled_from([None, 0, 400]),
       st.lists(st.integers(0, 11), max_size=3))
def test_random_changes_are_read_back_or_refused_cleanly(ops, journal_above, reopen_at):
    with folder() as d:
        path = d / "captions.json"
        store = AnnotationStore(path, journal_above=journal_above)
        model: dict = {}
        for i, (kind, args, kwargs, valid) in enumerate(ops):
            before = snapshot(d)
            try:
                getattr(store, kind)(*args, **kwargs)
            except InputError as e:
                assert not isinstance(e, AnnotationFileError)
                assert not valid, f"a valid change was refused: {e}"
                assert snapshot(d) == before  # nothing written
                event("a change refused")
                continue
            event(f"a change saved ({'journal' if store.journal_path.exists() else 'file'})")
            assert valid, f"{kind}{args} {kwargs} was accepted"
            name = args[0]
            if kind == "skip":
                model[name] = "skipped"
            else:
                extra = {k: v for k, v in kwargs.items() if k not in ("tags", "width", "height")}
                model[name] = {"caption": " ".join(args[1].split()), "tags": _tags(kwargs["tags"]), **extra}
            if i in reopen_at:
                store = AnnotationStore(path, journal_above=journal_above)
        for s in (store, AnnotationStore(path, backup=False)):
            assert _state(s) == model
        store.flush()
        raw = path.read_bytes() if path.exists() else b"{}"
        raw.decode("utf-8")  # valid UTF-8 JSON, whatever the names
        data = json.loads(raw)
        assert {name_bytes(im["file_name"]) for im in data.get("images", [])} >= {
            name_bytes(n) for n, v in model.items() if v != "skipped"}


# -- hand-edited files -----------------------------------------------------------------------------
BASE = {"info": {"description": "x"}, "images": [{"id": 1, "file_name": "a.png", "width": 4, "height": 4},
                                                 {"id": 2, "file_name": "b.png"}],
        "annotations": [{"id": 1, "image_id": 1, "caption": "a red circle", "tags": ["red"]}],
        "mmkit_skipped": ["b.png"]}
odd_values = st.one_of(json_values, st.sampled_from([float("nan"), float("inf"), -float("inf"), 2 ** 64, 10 ** 400,
                                                     True, "", "\udcff", "\ud800", [], {}]),
                       st.integers(1, 60).map(lambda n: json.loads("[" * n + "]" * n)))


@st.composite
def hand_edits(draw):
    """A copy of BASE with one place set to an odd value (or deleted), written with or without a BOM."""
    data = json.loads(json.dumps(BASE))
    node, key = data, None
    path = draw(st.sampled_from([("images", 0, "id"), ("images", 1, "file_name"), ("images", 0, "width"),
                                 ("annotations", 0, "caption"), ("annotations", 0, "tags"),
                                 ("annotations", 0, "image_id"), ("annotations", 0, "score"), ("mmkit_skipped", 0),
                                 ("info", "description"), ("images",), ("annotations",), ("extra",),
                                 ("mmkit_journal_seq",)]))
    for k in path[:-1]:
        node = node[k]
    key = path[-1]
    if draw(st.integers(0, 5)) == 0 and isinstance(node, dict):
        node.pop(key, None)
    else:
        node[key] = draw(odd_values)
    text = json.dumps(data, ensure_ascii=draw(st.booleans()), allow_nan=True)
    raw = text.encode("utf-8", "surrogatepass")
    return (b"\xef\xbb\xbf" if draw(st.booleans()) else b"") + raw


@SETTINGS
@given(st.one_of(hand_edits(), st.binary(max_size=200)))
def test_hand_edited_files_open_or_fail_with_annotation_file_error(raw):
    with folder() as d:
        path = d / "captions.json"
        path.write_bytes(raw)
        try:
            store = AnnotationStore(path)
        except AnnotationFileError as e:
            assert str(path) in str(e)
            assert path.read_bytes() == raw  # never overwritten
            event("refused: " + str(e).replace(str(path), "")[:32])
            return
        event("opened")
        before = _state(store)
        store.accept("new.png", "a new caption", tags="x", n=1.5)
        again = AnnotationStore(path, backup=False)
        assert _state(again) == {**before, "new.png": {"caption": "a new caption", "tags": ["x"], "n": 1.5}}
        for v in _floats(json.loads(path.read_bytes())):
            assert math.isfinite(v)


def _floats(x):
    if isinstance(x, float):
        yield x
    elif isinstance(x, dict):
        for v in x.values():
            yield from _floats(v)
    elif isinstance(x, list):
        for v in x:
            yield from _floats(v)


@pytest.mark.parametrize("name", ["bad\udcff.png", "ünï 🐱.png", "new\nline.png", 'quo"te\\.png', "\udc80\udcff"])
def test_odd_names_round_trip_as_bytes(name):
    with folder() as d:
        s = AnnotationStore(d / "c.json", journal_above=0)
        s.accept("first.png", "x")
        s.accept(name, "caption")
        s.skip(name + "2")
        again = AnnotationStore(d / "c.json")
        assert again.annotation(name)["caption"] == "caption" and name + "2" in again.done
        assert name_bytes(name) in {name_bytes(im["file_name"]) for im in again.data["images"]}
