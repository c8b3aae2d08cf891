"""Resource faults: out-of-memory retries with smaller batches, then a clear error; an interrupted job
leaves the model and the panel usable.

The CUDA out-of-memory error is simulated by monkeypatching the forward pass to raise
torch.OutOfMemoryError (what torch.cuda raises) whenever a batch is larger than a "memory" limit.
"""
import threading
import time

import pytest
import torch

import mmkit
from mmkit.errors import ResourceError
from mmkit.resources import is_out_of_memory, run_batched

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def clip(model_dirs):
    return mmkit.load_model(model_dirs("clip"))


@pytest.fixture(scope="module")
def blip(model_dirs):
    return mmkit.load_model(model_dirs("blip-caption"))


def limit_batch(monkeypatch, obj, method: str, fits: int, arg: str = "pixel_values"):
    """Make obj.method raise OutOfMemoryError when its batch has more than `fits` items; returns batch sizes seen."""
    real = getattr(obj, method)
    seen = []

    def fake(*args, **kwargs):
        x = kwargs.get(arg, args[0] if args else None)
        seen.append(x.shape[0])
        if x.shape[0] > fits:
            raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {x.shape[0]} GiB")
        return real(*args, **kwargs)

    monkeypatch.setattr(obj, method, fake)
    return seen


def test_helper_halves_down_to_one_then_raises():
    calls = []

    def step(sl):
        calls.append(sl.stop - sl.start)
        if sl.stop - sl.start > 3:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return list(range(sl.start, sl.stop))

    with pytest.warns(RuntimeWarning, match="batches of 5"):
        out = run_batched(10, 16, step, "test")
    assert [x for b in out for x in b] == list(range(10)) and calls[:3] == [10, 5, 2]  # all 10, then halves

    def never(sl):
        raise torch.OutOfMemoryError("CUDA out of memory")

    with pytest.warns(RuntimeWarning), pytest.raises(ResourceError) as e:
        run_batched(4, 4, never, "captioning on big-model", device="cuda", dtype=torch.float32)
    msg = str(e.value)
    assert "one item at a time" in msg and "dtype='fp16'" in msg and "smaller model" in msg
    assert is_out_of_memory(RuntimeError("MPS backend out of memory")) and not is_out_of_memory(ValueError("x"))


def test_other_errors_are_not_retried():
    calls = []

    def step(sl):
        calls.append(sl)
        raise ValueError("a real bug")

    with pytest.raises(ValueError):
        run_batched(8, 4, step)
    assert len(calls) == 1


def test_embed_images_retries_with_smaller_batches(clip, monkeypatch, scenes):
    images = [s.image for s in scenes] * 3  # 12 images
    want = mmkit.embed_images(clip, images)
    monkeypatch.setenv("MMKIT_SPEEDUPS", "0")  # transformers' get_image_features, where the fake OOM is raised
    seen = limit_batch(monkeypatch, clip.model, "get_image_features", fits=3)
    with pytest.warns(RuntimeWarning, match="retrying with batches") as caught:
        got = mmkit.embed_images(clip, images, batch_size=12)
    assert caught[0].filename == __file__  # attributed to this call, not to mmkit's batching code
    assert torch.allclose(got, want, atol=1e-5)
    assert seen[:3] == [12, 6, 3] and max(seen[3:]) <= 3  # the smaller size is kept for the rest


def test_caption_retries_then_explains(blip, monkeypatch, scenes):
    images = [s.image for s in scenes]
    want = mmkit.caption(blip, images, max_new_tokens=5)
    # the image encoder: greedy captions (mmkit's own loop) and beam search (generate) both start there
    seen = limit_batch(monkeypatch, blip.model.vision_model, "forward", fits=1)
    with pytest.warns(RuntimeWarning):
        assert mmkit.caption(blip, images, max_new_tokens=5, batch_size=4) == want
    assert seen[:3] == [4, 2, 1]
    first = len(seen)
    with pytest.warns(RuntimeWarning):
        mmkit.caption(blip, images, max_new_tokens=5, batch_size=4, num_beams=2)
    assert seen[first:first + 3] == [4, 2, 1]
    limit_batch(monkeypatch, blip.model.vision_model, "forward", fits=0)  # not even one image fits
    with pytest.warns(RuntimeWarning), pytest.raises(ResourceError, match="smaller model"):
        mmkit.caption(blip, images, max_new_tokens=5, batch_size=4)


def test_zero_shot_retries(clip, monkeypatch, scenes):
    images = [s.image for s in scenes]
    want = mmkit.zero_shot(clip, images, ["red", "blue"])
    monkeypatch.setenv("MMKIT_SPEEDUPS", "0")  # transformers' get_image_features, where the fake OOM is raised
    clip.cache.clear()  # label embeddings cached by the first call
    limit_batch(monkeypatch, clip.model, "get_image_features", fits=1)
    with pytest.warns(RuntimeWarning):
        got = mmkit.zero_shot(clip, images, ["red", "blue"])
    assert all(g == pytest.approx(w, abs=1e-5) for g, w in zip(got, want))


def test_keyboard_interrupt_leaves_the_model_usable(blip, monkeypatch, scenes):
    images = [s.image for s in scenes]
    want = mmkit.caption(blip, images, max_new_tokens=5, batch_size=2)
    vision = blip.model.vision_model
    real = vision.forward
    calls = []

    def interrupted(*a, **k):
        calls.append(1)
        if len(calls) == 2:  # Ctrl-C in the middle of the second batch
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(vision, "forward", interrupted)
    with pytest.raises(KeyboardInterrupt):  # never swallowed or retried
        mmkit.caption(blip, images, max_new_tokens=5, batch_size=2)
    assert len(calls) == 2
    monkeypatch.delattr(vision, "forward")  # the class's forward again
    assert not blip.model.training and torch.is_grad_enabled() and not torch.is_inference_mode_enabled()
    assert mmkit.caption(blip, images, max_new_tokens=5, batch_size=2) == want  # same model, same answers


def test_keyboard_interrupt_in_a_panel(blip, monkeypatch):
    from widgets import CaptionPanel

    p = CaptionPanel(blip, background=False)
    p.caption()
    want = p.result
    real = mmkit.caption
    monkeypatch.setattr(mmkit, "caption", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        p.caption()
    assert "Interrupted" in p.status.value and not p.button.disabled and p.stop_button.disabled
    monkeypatch.setattr(mmkit, "caption", real)
    p.caption()
    assert p.result == want and p.error.value == ""


def test_stop_during_a_long_job_leaves_panel_and_model_usable(blip, scenes):
    from widgets import CaptionPanel
    from widgets.base import stop_criteria

    p = CaptionPanel(blip, background=True)
    started = threading.Event()

    def long_job(job):
        started.set()
        for i in range(200):  # a long job that checks for Stop between steps
            mmkit.caption(blip, scenes[0].image, max_new_tokens=5, stopping_criteria=stop_criteria(job))
            job.progress(i, 200)
        return "finished"

    results = []
    p.run(long_job, results.append)
    assert started.wait(10)
    time.sleep(0.05)
    p.stop_button.click()
    p.wait(30)
    assert results == [] and p.status.value == "Stopped." and not p.busy
    p.background = False
    p.caption()
    assert isinstance(p.result, str) and p.error.value == ""
