"""AnnotationPanel driven from code: suggestions, accept / edit / skip / back, saved before the next image, resume.

Runs on ipywidgets 8 and 7.7 (`make test-widgets7`), on tiny random-init models.
"""
import io
import json

import pytest

pytest.importorskip("ipywidgets")

import mmkit  # noqa: E402
from mmkit.annotations import AnnotationFileError  # noqa: E402
from widgets import AnnotationPanel  # noqa: E402
from widgets.base import esc  # noqa: E402

XSS = "<img src=x onerror=alert(1)>"
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def folder(tmp_path, scenes):
    d = tmp_path / "photos"
    d.mkdir()
    for i, s in enumerate(scenes[:3]):
        buf = io.BytesIO()
        s.image.save(buf, format="PNG")
        (d / f"scene{i}.png").write_bytes(buf.getvalue())
    (d / "broken.jpg").write_bytes(b"<html>not an image</html>")  # sorted first
    return d


def panel(folder, model_dirs, **kw):
    return AnnotationPanel(folder, caption_model=model_dirs("blip-caption"), tag_model=model_dirs("clip"),
                           labels=("red", "green", "blue"), background=False, **kw)


def saved(folder):
    return json.loads((folder / "captions.json").read_text())


def test_walk_suggest_accept_skip_and_resume(folder, model_dirs):
    p = panel(folder, model_dirs)
    assert p.files == ["broken.jpg", "scene0.png", "scene1.png", "scene2.png"] and p.current == "broken.jpg"
    assert "could not" in p.error.value.lower() or "not an image" in p.error.value  # shown inside the panel
    p.accept("a caption")  # an unreadable image cannot be accepted...
    assert p.current == "broken.jpg" and "Skip" in p.error.value
    p.skip_button.click()  # ...but can be skipped
    assert p.current == "scene0.png" and p.error.value == ""
    assert isinstance(p.suggestion.get("caption"), str) and set(p.suggestion["tags"]) == {"red", "green", "blue"}
    assert p.caption.value == p.suggestion["caption"] and p.tags.value  # boxes filled from the suggestion

    seen_on_disk = []
    original_show = p.show

    def show(index=None):  # the item must be on disk before the next image shows
        seen_on_disk.append([im["file_name"] for im in saved(folder)["images"]])
        original_show(index)

    p.show = show
    p.caption.value = "a red circle, edited"
    p.tags.value = "red, circle"
    p.accept_button.click()
    assert seen_on_disk[-1] == ["scene0.png"] and p.current == "scene1.png"
    p.show = original_show
    data = saved(folder)
    ann = data["annotations"][0]
    assert ann["caption"] == "a red circle, edited" and ann["tags"] == ["red", "circle"]
    assert ann["suggested_caption"] == p.store.annotation("scene0.png")["suggested_caption"]
    assert data["images"][0]["width"] == 64 and data["mmkit_skipped"] == ["broken.jpg"]

    again = panel(folder, model_dirs)  # re-opening resumes where it stopped
    assert again.current == "scene1.png"
    again.back()
    assert again.current == "scene0.png" and again.caption.value == "a red circle, edited"  # the saved one
    again.accept("a red circle")  # edit an accepted item
    again.accept("x")
    again.accept("y", tags="")
    assert again.current is None and "All 4 images are done</b> (3 captioned, 1 skipped)" in again.file_html.value
    assert again.accept_button.disabled
    caps = {a["image_id"]: a["caption"] for a in saved(folder)["annotations"]}
    assert sorted(caps.values()) == ["a red circle", "x", "y"]


def test_empty_caption_is_refused_and_panel_stays_usable(folder, model_dirs):
    p = AnnotationPanel(folder, caption_model=None, tag_model=None, background=False)
    p.skip()
    assert p.current == "scene0.png" and p.caption.value == ""  # no models: nothing suggested
    p.accept("   ")
    assert "empty" in p.error.value and p.current == "scene0.png"
    p.accept("now typed")
    assert p.current == "scene1.png" and p.error.value == "" and len(p.store) == 1


def test_suggestions_are_escaped(folder, model_dirs, monkeypatch):
    monkeypatch.setattr(mmkit, "caption", lambda *a, **k: XSS)
    p = AnnotationPanel(folder, caption_model=model_dirs("blip-caption"), tag_model=model_dirs("clip"),
                        labels=(XSS, "blue"), background=False)
    p.skip()
    html = p.suggested.value + p.file_html.value + p.header.value
    assert XSS not in html and esc(XSS) in html
    assert p.caption.value == XSS  # in a text box it is plain text, saved as typed
    p.accept()
    assert saved(folder)["annotations"][0]["caption"] == XSS


def test_wrong_family_model_is_a_note_not_a_crash(folder, model_dirs):
    p = AnnotationPanel(folder, caption_model=model_dirs("clip"), tag_model=None, background=False)
    p.skip()
    assert "cannot caption" in p.error.value and p.current == "scene0.png"
    p.caption_model.name.value = model_dirs("blip-caption")
    p.suggest()
    assert p.error.value == "" and p.caption.value


def test_corrupt_file_is_an_error_and_kept(folder, model_dirs):
    (folder / "captions.json").write_text("{ broken")
    with pytest.raises(AnnotationFileError, match="not valid JSON"):
        AnnotationPanel(folder, caption_model=None, tag_model=None, background=False)
    assert (folder / "captions.json").read_text() == "{ broken"


def test_folder_errors(tmp_path):
    with pytest.raises(mmkit.InputError, match="not a folder"):
        AnnotationPanel(tmp_path / "nope", caption_model=None, tag_model=None)
    with pytest.raises(mmkit.InputError, match="no image files"):
        AnnotationPanel(tmp_path, caption_model=None, tag_model=None)


def test_a_file_name_that_is_not_utf8_does_not_wedge_the_panel(tmp_path, scenes):
    """Issue 28, reproduction 1: Accept and Skip work on it, and a new panel moves past it."""
    import os

    d = tmp_path / "photos"
    d.mkdir()
    for i, raw in enumerate([b"bad\xff.png", b"bad\xfe.png", b"good.png"]):
        buf = io.BytesIO()
        scenes[i].image.save(buf, format="PNG")
        with open(os.path.join(os.fsencode(d), raw), "wb") as f:
            f.write(buf.getvalue())
    p = AnnotationPanel(d, caption_model=None, tag_model=None, background=False)
    assert p.current == "bad\udcfe.png" and "bad\\xfe.png" in p.file_html.value  # shown as an escape
    p.skip()
    assert p.error.value == "" and p.current == "bad\udcff.png"
    p.accept("a caption", tags="red, circle")
    assert p.error.value == "" and p.current == "good.png"
    raw = (d / "captions.json").read_bytes()
    raw.decode("utf-8")  # still valid UTF-8 JSON
    again = AnnotationPanel(d, caption_model=None, tag_model=None, background=False)
    assert again.current == "good.png"  # resumed past both
    again.back()
    assert again.caption.value == "a caption" and again.tags.value == "red, circle"
    from mmkit.annotations import name_bytes

    assert {name_bytes(im["file_name"]) for im in again.store.data["images"]} == {b"bad\xff.png"}
    assert [name_bytes(s) for s in again.store.data["mmkit_skipped"]] == [b"bad\xfe.png"]


def test_close_folds_the_journal_into_the_file(folder, monkeypatch):
    monkeypatch.setattr("mmkit.annotations.store.JOURNAL_ABOVE", 0)
    p = AnnotationPanel(folder, caption_model=None, tag_model=None, background=False)
    p.store.journal_above = 0
    p.skip()
    p.accept("first")
    p.accept("second")
    assert len(saved(folder)["annotations"]) == 0 and p.store.journal_path.read_bytes()  # the journal lags ahead
    p.close()
    assert [a["caption"] for a in saved(folder)["annotations"]] == ["first", "second"]
    assert p.store.journal_path.read_bytes() == b""


def test_two_panels_on_one_folder_keep_each_others_saves(folder):
    """Two annotators (or two notebook tabs) on one file: no 'changed on disk' error, nothing lost."""
    p1 = AnnotationPanel(folder, caption_model=None, tag_model=None, background=False)
    p2 = AnnotationPanel(folder, caption_model=None, tag_model=None, background=False)
    p1.skip()
    p1.accept("from panel 1")  # scene0
    p2.skip()  # p2 still shows broken.jpg: skipping it again is harmless
    p2.show(2)
    p2.accept("from panel 2")  # scene1
    p1.accept("also from panel 1")  # scene1 again: the later save wins, scene0 stays
    assert p1.error.value == "" and p2.error.value == ""
    data = saved(folder)
    names = {im["id"]: im["file_name"] for im in data["images"]}
    assert {names[a["image_id"]]: a["caption"] for a in data["annotations"]} == {
        "scene0.png": "from panel 1", "scene1.png": "also from panel 1"}
    assert data["mmkit_skipped"] == ["broken.jpg"]


def test_a_picture_shows_its_own_notes_only_and_the_default_tags_raise_none(tmp_path, scenes):
    """On the bundled models: a photo's note goes when the next picture (unreadable, or a scene) shows."""
    from mmkit.data.samples import sample_images

    d = tmp_path / "mixed"
    d.mkdir()
    next(iter(sample_images().values())).save(d / "a_photo.png")
    (d / "b_broken.jpg").write_bytes(b"<html>not an image</html>")
    mmkit.ShapesWorld(1, split="test")[0].image.save(d / "c_scene.png")
    p = AnnotationPanel(d, caption_model="shapes-blip-caption", tag_model="shapes-clip", background=False)
    assert p.current == "a_photo.png" and "no such shapes" in p.notice.value
    p.skip()
    assert p.current == "b_broken.jpg" and p.error.value and p.notice.value == ""
    p.skip()
    assert p.current == "c_scene.png" and p.error.value == "" and p.suggestion.get("caption")
    assert p.notice.value == "", p.notice.value  # the default tags are words the bundled CLIP knows
