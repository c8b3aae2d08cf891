"""Out-of-domain notices: captured per thread while a panel or the CLI works, shown next to the result.

The detector that emits `mmkit.OutOfDomainWarning` is simulated here by monkeypatched task functions; the
CLI and panel tests that show the notices are in this file too.
"""
import threading
import warnings

import pytest

import mmkit
from mmkit.errors import warn
from mmkit.notices import capture_notices, capturing

NOTICE = "shapes-test only knows ShapesWorld pictures of coloured shapes; for photos load 'blip-caption' from the hub"


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
