"""FusionLab driven from code: train synchronously and in a thread, stop, compare, probe a sentence."""
import time

import pytest

from mmkit.data import ANSWERS
from mmkit.fusion.compare import Budget
from widgets import FusionLab
from widgets.base import Panel

TINY = Budget(n_train=300, n_test=60, steps=40, batch_size=32)


pytestmark = pytest.mark.usefixtures("one_thread")


def test_panel_trains_compares_and_answers():
    lab = FusionLab(methods=("concat", "cross_attention"), task="vqa", budget=TINY)
    assert isinstance(lab, Panel)
    lab.steps.value = 50
    lab.run_sync()
    r = lab.results
    assert [row["method"] for row in r] == ["concat", "cross_attention"]
    assert all(row["params"] > 0 and 0 <= row["acc"] <= 1 for row in r)
    assert "<table>" in lab.table.value and "cross_attention" in lab.table.value
    assert lab.plot.value[:4] == b"\x89PNG"  # the live plot was drawn
    assert len(lab.curves["concat"]) == 2  # one point every 25 steps
    assert "Done" in lab.message.value and lab.error.value == ""
    assert lab.train_button.disabled is False and lab.stop_button.disabled is True

    lab.model_choice.value = "cross_attention"
    lab.scene_index.value = 3
    lab.sentence.value = "What color is the circle?"
    lab.try_button.click()
    assert "answer" in lab.prediction.value
    assert any(f"<b>{a}</b>" in lab.prediction.value for a in ANSWERS)
    assert lab.attention.value[:4] == b"\x89PNG"

    lab.sentence.value = "is the zebra purple"
    lab.try_button.click()
    assert "unknown words" in lab.prediction.value and "zebra" in lab.prediction.value

    lab.sentence.value = r"$\frac$ what color is the circle?"  # '$' would start matplotlib mathtext
    lab.try_button.click()
    assert "answer" in lab.prediction.value and lab.attention.value[:4] == b"\x89PNG"

    lab.sentence.value = "   "
    lab.try_button.click()
    assert "empty" in lab.prediction.value and "Traceback" not in lab.prediction.value


def test_errors_are_shown_in_the_panel():
    lab = FusionLab(methods=(), budget=TINY)
    lab.train_button.click()
    assert "no method selected" in lab.error.value and lab.thread is None
    lab.try_button.click()
    assert "press Train first" in lab.prediction.value


def test_background_training_does_not_block_and_stops():
    lab = FusionLab(methods=("sum", "late_mean"), task="match", budget=TINY)
    lab.steps.value = 3000  # far more than we wait for
    t0 = time.perf_counter()
    lab.train_button.click()
    assert time.perf_counter() - t0 < 1.0  # click returns at once; training runs in a thread
    assert lab.thread.is_alive() and lab.stop_button.disabled is False
    deadline = time.time() + 60
    while not lab.curves.get("sum") and time.time() < deadline:  # wait for the first live point
        time.sleep(0.1)
    lab.stop_button.click()
    lab.thread.join(timeout=30)
    assert not lab.thread.is_alive()
    assert "Stopped" in lab.status.value and "Stopped" in lab.message.value
    assert lab.results is not None and len(lab.results) == 1  # the second method never started
    assert lab.results[0]["stopped"] is True
