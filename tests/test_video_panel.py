"""VideoPanel driven from code (ipywidgets 8 here, 7.7 under `make test-widgets7`)."""
import pytest

pytest.importorskip("ipywidgets")
pytest.importorskip("av")

import mmkit  # noqa: E402
from mmkit.data import ShapesClips  # noqa: E402
from widgets import VideoPanel  # noqa: E402
from widgets.picker import simulate_upload  # noqa: E402

PNG = b"\x89PNG"
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def panel():
    clips = ShapesClips(2, seed=31, duration=5)
    return VideoPanel(mmkit.load_model("shapes-blip-caption"), mmkit.load_model("shapes-clip"), clips=clips,
                      every=0.5, background=False)


def test_analyse_an_example_clip_and_scrub(panel):
    clip = panel.clips[0]
    name = clip.timeline[0].name
    panel.query.value = f"a {name}"
    panel.button.click()
    assert panel.error.value == "", panel.error.value
    r = panel.result
    assert len(r["frames"]) == 10 and panel.slider.max == 9
    assert panel.strip.value[:4] == PNG and panel.timeline.value[:4] == PNG
    assert r["search"].text == f"a {name}" and r["search"].moments
    mid = (clip.timeline[0].start + clip.timeline[0].end) / 2
    i = min(range(10), key=lambda k: abs(r["frames"][k].time - mid))
    panel.slider.value = i
    assert name in panel.frame_text.value and f"{r['frames'][i].time:.2f} s" in panel.frame_text.value
    assert panel.frame_view.value[:4] == PNG and panel.attention.value == b""
    panel.show_attention.value = True  # the caption's per-word maps on this frame
    assert panel.error.value == "" and panel.attention.value[:4] == PNG
    panel.show_attention.value = False


def test_upload_a_video_and_a_bad_one(panel):
    clip = panel.clips[1]
    simulate_upload(panel.upload, "clip.webm", clip.to_bytes("webm"), mime="video/webm")
    assert panel.uploaded[0] == "clip.webm" and "clip.webm" in panel.picked.value
    panel.query.value = "a blue square"
    panel.analyse()
    assert panel.error.value == "" and len(panel.result["frames"]) == 10 and panel.result["clip"] is None
    simulate_upload(panel.upload, "notes.mp4", b"<script>not a video</script>" * 10, mime="video/mp4")
    panel.analyse()
    assert "not a readable video" in panel.error.value and "<script>" not in panel.error.value
    assert "&#x27;notes.mp4&#x27; is not" in panel.error.value  # named by the upload, not "bytes input (N bytes)"
    simulate_upload(panel.upload, "nothing.mp4", b"", mime="video/mp4")
    assert "&#x27;nothing.mp4&#x27; is empty (0 bytes); choose another file" in panel.error.value
    assert panel.uploaded[0] == "notes.mp4"  # the last upload that had bytes stays chosen
    panel.source.value = 1  # choosing an example drops the upload
    assert panel.uploaded is None


def test_empty_query(panel):
    panel.source.value = 1
    panel.query.value = "  "
    panel.analyse()
    assert "query is empty" in panel.error.value
    panel.query.value = "a red circle"


def test_stop_ends_the_work_and_keeps_the_panel_usable(panel):
    clips = ShapesClips(1, seed=32, duration=30)
    p = VideoPanel(panel.caption_model.loaded, panel.search_model.loaded, clips=clips, every=0.25, background=True)
    p.analyse()
    assert not p.stop_button.disabled
    p.stop()
    p.wait(60)
    assert p.status.value == "Stopped." and p.result is None and p.stop_button.disabled
    assert not p.button.disabled  # ready for the next run
