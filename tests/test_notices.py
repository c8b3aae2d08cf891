"""Out-of-domain notices: captured per thread while a panel or the CLI works, shown next to the result.

The detector that emits `mmkit.OutOfDomainWarning` is simulated here by monkeypatched task functions; the
CLI and panel tests that show the notices are in this file too.
"""
import html
import threading
import warnings

import pytest

import mmkit
from mmkit.errors import warn
from mmkit.notices import capture_notices, capturing

NOTICE = "shapes-test only knows ShapesWorld pictures of coloured shapes; for photos load 'blip-caption' from the hub"
SHOWN = html.escape(NOTICE, quote=True)  # how a panel shows it


def test_capture_collects_each_message_once_and_hides_the_warning():
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        with capture_notices() as notices:
            assert capturing()
            warn(NOTICE, mmkit.OutOfDomainWarning)
            warn(NOTICE, mmkit.OutOfDomainWarning)
            warn("another picture is odd", mmkit.OutOfDomainWarning)
            warn("an ordinary warning", UserWarning)  # not a notice: still a warning
        assert not capturing()
        warn(NOTICE, mmkit.OutOfDomainWarning)  # nothing captures now: a normal warning
    assert notices == [NOTICE, "another picture is odd"]
    assert [(w.category, str(w.message)) for w in shown] == [(UserWarning, "an ordinary warning"),
                                                               (mmkit.OutOfDomainWarning, NOTICE)]


def test_captures_are_per_thread_and_nest():
    got, barrier = {}, threading.Barrier(4)

    def work(i):
        with capture_notices() as notices:
            barrier.wait(5)  # all four captures are active at once
            warn(f"picture {i}", mmkit.OutOfDomainWarning)
            barrier.wait(5)
        got[i] = notices

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert got == {i: [f"picture {i}"] for i in range(4)}
    with capture_notices() as outer:
        with capture_notices() as inner:
            warn("inner", mmkit.OutOfDomainWarning)
        warn("outer", mmkit.OutOfDomainWarning)
    assert inner == ["inner"] and outer == ["outer"]


def test_a_capture_ends_on_error():
    with pytest.raises(ZeroDivisionError):
        with capture_notices():
            1 / 0
    assert not capturing()


# -- what the surfaces show, with a task function that emits the notice for non-scene pictures -------------

def scene_or_photo(images):
    """The fake detector: pictures that are not ShapesWorld's 64x64 scenes are out of domain."""
    ims = images if isinstance(images, list) else [images]
    odd = sum(im.size != (64, 64) for im in ims)
    if odd:
        warn(f"{odd} picture(s): {NOTICE} <b>", mmkit.OutOfDomainWarning)
    return ims


def fake_caption(m, images, **kwargs):
    ims = scene_or_photo(images)
    return [f"caption {im.size[0]}" for im in ims] if isinstance(images, list) else f"caption {ims[0].size[0]}"


def fake_answer(m, images, questions, **kwargs):
    ims = scene_or_photo(images)
    return ["red"] * len(ims) if isinstance(images, list) else "red"


def fake_zero_shot(m, images, labels, templates=None, **kwargs):
    ims = scene_or_photo(images)
    probs = [{lab: 1 / len(labels) for lab in labels} for _ in ims]
    return probs if isinstance(images, list) else probs[0]


def fake_findings(m, images, task="result"):
    """The fake detector's findings as mmkit.domain.picture_findings gives them: (flags, what the batch's warning
    says, what each picture's own warning says), in the words scene_or_photo warns with."""
    flags = [im.size != (64, 64) for im in images]
    said = [f"{sum(flags)} picture(s): {NOTICE} <b>"] if any(flags) else []
    return flags, said, [[f"1 picture(s): {NOTICE} <b>"] if f else [] for f in flags]


@pytest.fixture
def fakes(monkeypatch):
    monkeypatch.setattr(mmkit, "caption", fake_caption)
    monkeypatch.setattr(mmkit, "answer", fake_answer)
    monkeypatch.setattr(mmkit, "zero_shot", fake_zero_shot)


def photo():
    from PIL import Image

    return Image.new("RGB", (96, 80), (30, 30, 30))


def test_cli_prints_each_notice_once_and_tags_the_json_records_it_concerns(fakes, tmp_path, capsys, model_dirs,
                                                                         monkeypatch):
    import json

    import mmkit.domain
    from mmkit.cli import main

    monkeypatch.setattr(mmkit.domain, "picture_findings", fake_findings)

    scene = mmkit.ShapesWorld(1, split="test")[0].image
    for name, im in [("a_scene.png", scene), ("b_photo.png", photo()), ("c_scene.png", scene),
                     ("d_photo.png", photo())]:
        im.save(tmp_path / name)
    blip = model_dirs("blip-caption")
    assert main(["caption", str(tmp_path), "--model", blip, "--json"]) == 0
    out, err = capsys.readouterr()
    recs = {r["image"].rsplit("/", 1)[1]: r for r in map(json.loads, out.splitlines())}
    expected = f"1 picture(s): {NOTICE} <b>"  # each image's own notice, though the batch of 4 was one call
    assert recs["b_photo.png"]["notice"] == recs["d_photo.png"]["notice"] == expected
    assert "notice" not in recs["a_scene.png"] and "notice" not in recs["c_scene.png"]
    assert [r["caption"] for r in recs.values()] == ["caption 64", "caption 96", "caption 64", "caption 96"]
    assert err.count("mmkit: note:") == 1 and expected in err  # once per distinct message
    assert main(["caption", str(tmp_path / "a_scene.png"), "--model", blip]) == 0  # a scene alone: no notice
    out, err = capsys.readouterr()
    assert "note" not in err and out.count("\n") == 1
    assert main(["answer", str(tmp_path / "b_photo.png"), "-q", "what color?", "--model", model_dirs("blip-vqa")]) == 0
    out, err = capsys.readouterr()
    assert err.count("mmkit: note:") == 1 and out.split("\t")[1].strip() == "red"


def test_panels_show_the_notice_next_to_the_result_and_clear_it(fakes, model_dirs):
    pytest.importorskip("ipywidgets")
    from widgets import CaptionApp, CaptionPanel, VQAPanel, ZeroShotPanel
    from widgets.base import _contains

    panels = [(CaptionPanel(model_dirs("blip-caption"), background=False), lambda p: p.caption()),
              (VQAPanel(model_dirs("blip-vqa"), background=False), lambda p: p.ask("what color is it?")),
              (ZeroShotPanel(model_dirs("clip"), background=False), lambda p: p.classify()),
              (CaptionApp(model_dirs("blip-caption"), background=False), lambda p: p.caption())]
    for panel, go in panels:
        assert _contains(panel, panel.notice) and panel.notice.value == ""
        panel.picker.set_image(photo(), "a photo")
        go(panel)
        assert panel.error.value == "" and panel.result is not None
        assert SHOWN in panel.notice.value and "&lt;b&gt;" in panel.notice.value and "<b> " not in panel.notice.value
        assert panel.notices == [f"1 picture(s): {NOTICE} <b>"]
        panel.picker.choose_scene(0)
        go(panel)
        assert panel.notice.value == "" and panel.notices == []  # the next run clears it
    app = panels[-1][0]
    assert _contains(app.children[2], app.notice)  # the app shows it beside its caption, not at the bottom


def test_background_panels_keep_their_own_notices(fakes, model_dirs, monkeypatch):
    pytest.importorskip("ipywidgets")
    from widgets import CaptionPanel

    both = threading.Barrier(2)

    def slow_caption(m, images, **kwargs):
        both.wait(30)  # the two panels' work overlaps
        return fake_caption(m, images, **kwargs)

    monkeypatch.setattr(mmkit, "caption", slow_caption)
    a, b = (CaptionPanel(model_dirs("blip-caption")) for _ in range(2))
    a.picker.set_image(photo(), "a photo")
    b.picker.choose_scene(1)
    a.caption()
    b.caption()
    a.wait(60)
    b.wait(60)
    assert a.result == "caption 96" and b.result == "caption 64"
    assert SHOWN in a.notice.value and b.notice.value == "" and b.notices == []


def test_a_stopped_run_shows_no_notice(fakes, model_dirs):
    pytest.importorskip("ipywidgets")
    from widgets.base import Panel

    panel = Panel([], background=False)

    def work(job):
        mmkit.caption(None, photo())
        job.stop_event.set()  # Stop pressed while the model ran
        return "late"

    panel.run(work, lambda r: None)
    assert panel.status.value == "Stopped." and panel.notice.value == ""
    panel.run(lambda job: mmkit.caption(None, photo()))
    assert SHOWN in panel.notice.value


def test_annotation_panel_shows_the_notice(fakes, model_dirs, tmp_path):
    pytest.importorskip("ipywidgets")
    from widgets import AnnotationPanel
    from widgets.base import _contains

    photo().save(tmp_path / "a.png")
    panel = AnnotationPanel(tmp_path, caption_model=model_dirs("blip-caption"), tag_model=model_dirs("clip"),
                            labels=["red", "blue"], background=False)
    panel.suggest()
    assert SHOWN in panel.notice.value
    box = next(c for c in panel.children if _contains(c, panel.suggested))  # shown beside the suggestion
    assert _contains(box, panel.notice)
    assert panel.notices == [f"1 picture(s): {NOTICE} <b>"]  # caption and tags said the same thing: once


def test_attention_explorer_shows_the_notice(model_dirs, monkeypatch):
    pytest.importorskip("ipywidgets")
    from widgets.attention_explorer import AttentionExplorer

    real = mmkit.attention_maps

    def maps_with_notice(m, image, text=None, **kw):
        scene_or_photo(image)
        return real(m, image, text, **kw)

    monkeypatch.setattr(mmkit, "attention_maps", maps_with_notice)
    ex = AttentionExplorer(mmkit.load_model(model_dirs("clip")), photo(), "red circle")
    ex.compute()
    assert ex.maps is not None and SHOWN in ex.notice.value and "&lt;b&gt;" in ex.notice.value
    ex.image = mmkit.ShapesWorld(1)[0].image
    ex.compute()
    assert ex.maps is not None and ex.notice.value == ""


def test_retrieval_panel_shows_the_gallery_notice_on_every_search(model_dirs, monkeypatch):
    pytest.importorskip("ipywidgets")
    from widgets import RetrievalPanel

    real = mmkit.embed_images
    calls = []

    def embed_with_notice(m, images, **kw):
        calls.append(len(images))
        scene_or_photo(images)
        return real(m, images, **kw)

    monkeypatch.setattr(mmkit, "embed_images", embed_with_notice)
    panel = RetrievalPanel(model_dirs("clip"), background=False)
    panel.set_gallery([photo(), mmkit.ShapesWorld(1)[0].image])
    panel.k.value = 2
    panel.search("a red circle")
    assert SHOWN in panel.notice.value and calls == [2]
    panel.search("a blue square")  # the embeddings are cached, and so is their notice
    assert SHOWN in panel.notice.value and calls == [2] and len(panel.result) == 2
    panel.set_gallery([mmkit.ShapesWorld(1)[0].image])
    panel.k.value = 1
    panel.search("a red circle")
    assert panel.notice.value == "" and calls == [2, 1]


def test_cli_text_output_ends_by_naming_the_images_each_note_concerns(fakes, tmp_path, capsys, model_dirs,
                                                                      monkeypatch):
    """The note is printed once, so in text output a line at the end says which captions it is about."""
    import mmkit.domain
    from mmkit.cli import concerned, main

    monkeypatch.setattr(mmkit.domain, "picture_findings", fake_findings)
    scene = mmkit.ShapesWorld(1, split="test")[0].image
    scene.save(tmp_path / "a_scene.png")
    for i in range(7):
        photo().save(tmp_path / f"photo{i}.png")
    (tmp_path / "broken.png").write_bytes(b"")
    assert main(["caption", str(tmp_path), "--model", model_dirs("blip-caption")]) == 2  # the broken file
    out, err = capsys.readouterr()
    assert out.count("\n") == 8 and err.count("mmkit: note:") == 1
    assert ("mmkit: the note concerns 7 of 8 images read: photo0.png, photo1.png, photo2.png, photo3.png, "
            "photo4.png and 2 more (--json gives each image its notice)") in err
    assert main(["caption", str(tmp_path / "a_scene.png"), str(tmp_path / "photo0.png"), "--model",
                 model_dirs("blip-caption")]) == 0
    err = capsys.readouterr()[1]
    assert "concerns 1 of 2 images read: photo0.png (--json" in err  # no "and 0 more"
    assert main(["caption", str(tmp_path / "photo0.png"), "--model", model_dirs("blip-caption")]) == 0
    assert "concerns" not in capsys.readouterr()[1]  # one image: the note can only be about it
    # several notes are told apart by their order; one about every image names none
    told = {"about the words": ["x/a.png", "x/b.png", "x/c.png"], "about the pictures": ["x/b.png", "x/c.png"]}
    assert concerned(told, 3) == ["mmkit: the first note concerns all 3 images read",
                                  "mmkit: the second note concerns 2 of 3 images read: b.png, c.png "
                                  "(--json gives each image its notice)"]
    assert concerned({f"n{k}": ["a.png"] for k in range(5)}, 2)[4].startswith("mmkit: the fifth note concerns 1 of 2")


def test_cli_a_batch_notice_no_single_image_explains_goes_to_every_image(monkeypatch, tmp_path, capsys, model_dirs):
    import json

    import mmkit.domain
    from mmkit.cli import main

    def caption_warning_on_batches(m, images, **kw):
        if isinstance(images, list) and len(images) > 1:
            warn("these pictures differ a lot from each other", mmkit.OutOfDomainWarning)
        return ["c"] * len(images) if isinstance(images, list) else "c"

    monkeypatch.setattr(mmkit, "caption", caption_warning_on_batches)
    monkeypatch.setattr(mmkit.domain, "check", lambda m, images, task="result": [False] * len(images))
    scene = mmkit.ShapesWorld(1, split="test")[0].image
    for name in ("a.png", "b.png"):
        scene.save(tmp_path / name)
    assert main(["caption", str(tmp_path), "--model", model_dirs("blip-caption"), "--json"]) == 0
    out, err = capsys.readouterr()
    assert [json.loads(x)["notice"] for x in out.splitlines()] == ["these pictures differ a lot from each other"] * 2
    assert err.count("mmkit: note:") == 1
