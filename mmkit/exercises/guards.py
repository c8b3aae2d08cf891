"""Two guards around a student's call in `check`: inputs changed in place, and a time limit.

In place: `check` gives the student's function deep copies of a case's inputs and keeps the originals, so after
the call it compares each argument with its original (values, shapes and dtypes of tensors and arrays, items of
lists and dicts, a module's weights, an object's attributes). Nothing is copied for this; it costs one pass
over inputs of a few hundred numbers.

Time limit: the student's function runs in the calling thread (the notebook's main thread, with its grad mode,
seeds and Ctrl-C handling untouched) while a watchdog thread waits. When the limit passes, the watchdog raises
`TooSlow` inside the student's code with CPython's `PyThreadState_SetAsyncExc`, so the endless loop stops instead
of burning a core in the background. Why this and not the alternatives:

- `signal.alarm` / `setitimer` exist only on Unix and only in the main thread (not on Windows, not in a thread);
- running the student's code in a worker thread and giving up waiting works everywhere but cannot stop it: the
  loop would keep a core busy until the kernel restarts, and thread-local state (torch's grad mode) would differ;
- a subprocess can be killed, but the student's function (a notebook lambda, a closure over a model) does not
  pickle, and starting one per case costs seconds.

The asynchronous exception is delivered between bytecodes: a pure-Python loop stops within microseconds; a single
long C call (one huge matrix product, `time.sleep(1e6)`) stops when it returns to Python. `TooSlow` derives from
BaseException so `except Exception:` in the student's code does not swallow it, and the watchdog raises it again
every half second until the call ends (for a bare `except:` that catches it once). KeyboardInterrupt is not
touched: Ctrl-C / Jupyter's interrupt still reaches the student's code as it always does. Where
`PyThreadState_SetAsyncExc` does not exist (not CPython), the call runs without a limit.
"""
from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np


class TooSlow(BaseException):
    """Raised inside the student's function when it runs past the time limit (BaseException: `except Exception`
    in the student's code does not swallow it)."""


def _set_async_exc(thread_id: int, exc: type[BaseException] | None) -> bool:
    """Raise exc in thread thread_id at its next bytecode (None: clear one still pending). False if unsupported."""
    try:
        import ctypes

        api = ctypes.pythonapi
    except (ImportError, AttributeError):
        return False
    api.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc is not None else None)
    return True


def async_exceptions_work() -> bool:
    """True on CPython, where the watchdog can stop a running function."""
    try:
        import ctypes

        return hasattr(ctypes.pythonapi, "PyThreadState_SetAsyncExc")
    except (ImportError, AttributeError):
        return False


class _Watchdog:
    """Raises TooSlow in the calling thread `limit` seconds from now, and every 0.5 s after, until stop()."""

    def __init__(self, limit: float):
        self.target = threading.get_ident()
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.fired = False
        self.thread = threading.Thread(target=self._run, args=(limit,), daemon=True, name="mmkit-check-time-limit")
        self.thread.start()

    def _run(self, limit: float) -> None:
        wait = limit
        while not self.done.wait(wait):
            with self.lock:  # stop() sets done under the same lock: no exception is raised after it
                if self.done.is_set():
                    return
                self.fired = _set_async_exc(self.target, TooSlow) or self.fired
            wait = 0.5

    def stop(self) -> None:
        """End the watchdog; clear a TooSlow still pending in this thread (the call ended just in time)."""
        while True:
            try:
                with self.lock:
                    self.done.set()
                    if self.fired:
                        _set_async_exc(self.target, None)
                return
            except TooSlow:  # delivered inside stop itself: the call has returned, so it no longer matters
                continue


def call_with_time_limit(fn: Callable, args: tuple, kwargs: dict, limit: float | None):
    """fn(*args, **kwargs), raising TooSlow (from inside fn, which stops it) when it runs longer than limit seconds."""
    if not limit or limit <= 0 or not async_exceptions_work():
        return fn(*args, **kwargs)
    dog = _Watchdog(float(limit))
    try:
        return fn(*args, **kwargs)
    finally:
        dog.stop()


# ------------------------------------------------------------------------------------------ changed in place

def _is_tensor(x) -> bool:
    return hasattr(x, "detach") and hasattr(x, "shape") and hasattr(x, "dtype")


def _arrays_differ(before: np.ndarray, after: np.ndarray) -> str | None:
    if before.shape != after.shape:
        return f"its shape changed from {tuple(before.shape)} to {tuple(after.shape)}"
    if before.dtype != after.dtype:
        return f"its dtype changed from {before.dtype} to {after.dtype}"
    try:
        same = before == after
        if before.dtype.kind in "fc":
            same |= np.isnan(before) & np.isnan(after)
    except TypeError:
        return None
    n = int(np.size(same) - np.count_nonzero(same))
    return f"{n} of {same.size} values differ after the call" if n else None


def _numpy(t) -> np.ndarray:
    t = t.detach().cpu()
    return (t.float() if t.is_floating_point() else t).numpy()


def what_changed(before, after, depth: int = 0) -> str | None:
    """None when `after` (an argument after the student's call) still equals `before` (the untouched original),
    else a few words on what changed."""
    if depth > 8 or before is after:
        return None
    if _is_tensor(before):
        if not _is_tensor(after):
            return f"it became a {type(after).__name__}"
        if before.dtype != after.dtype:
            return f"its dtype changed from {before.dtype} to {after.dtype}"
        return _arrays_differ(_numpy(before), _numpy(after))
    if isinstance(before, np.ndarray):
        return _arrays_differ(before, np.asarray(after))
    if hasattr(before, "state_dict") and hasattr(after, "state_dict"):  # a torch module: its weights
        b, a = before.state_dict(), after.state_dict()
        if b.keys() != a.keys():
            return "its parameters were replaced"
        for key in b:
            if what_changed(b[key], a[key], depth + 1):
                return f"its weight {key} changed"
        return None
    if isinstance(before, (list, tuple)):
        if not isinstance(after, (list, tuple)) or len(before) != len(after):
            return f"it changed from {_short(before)} to {_short(after)}"
        for x, y in zip(before, after):
            if what_changed(x, y, depth + 1):
                return f"it changed from {_short(before)} to {_short(after)}"
        return None
    if isinstance(before, dict):
        if not isinstance(after, dict) or before.keys() != after.keys():
            return "its keys changed"
        for k in before:
            if what_changed(before[k], after[k], depth + 1):
                return f"its item {k!r} changed"
        return None
    if isinstance(before, (str, bytes, int, float, complex, bool, type(None), np.generic)):
        return None if before == after or (before != before and after != after) else "its value changed"
    if hasattr(before, "__dict__") and hasattr(after, "__dict__"):  # an object passed in (a toy language model)
        for k, v in vars(before).items():
            if what_changed(v, vars(after).get(k), depth + 1):
                return f"its attribute {k} changed"
    return None


def _short(x) -> str:
    text = repr(x)
    return text if len(text) < 60 else text[:57] + "..."


def copy_fix(name: str, value) -> str:
    """How to work on a copy of an argument of this type, and an out-of-place alternative, for a message."""
    if _is_tensor(value):
        return (f"work on a copy ({name} = {name}.clone() at the top of your function) or use out-of-place "
                f"operations ({name} * m rather than {name} *= m or {name}.mul_(m); {name}.masked_fill(...) rather "
                f"than {name}.masked_fill_(...) or {name}[i] = ...)")
    if isinstance(value, np.ndarray):
        return (f"work on a copy ({name} = {name}.copy() at the top of your function) or use out-of-place "
                f"operations (np.sort({name}) rather than {name}.sort(); {name} + 1 rather than {name} += 1 "
                f"or {name}[i] = ...)")
    if hasattr(value, "state_dict"):
        return (f"leave its weights alone: call it or its layers (out-of-place), or change a copy "
                f"(m = copy.deepcopy({name}), after import copy)")
    if isinstance(value, list):
        nested = any(isinstance(v, (list, dict)) or hasattr(v, "shape") for v in value)
        how = f"copy.deepcopy({name}), after import copy" if nested else f"list({name})"
        return (f"work on a copy ({name} = {how}) or use out-of-place operations "
                f"(sorted({name}) rather than {name}.sort(); {name} + [x] rather than {name}.append(x))")
    return f"work on a copy ({name} = copy.deepcopy({name}), after import copy) and keep every change out-of-place"
