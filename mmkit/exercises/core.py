"""The checker: run a student's function and the reference on the same fresh inputs and compare.

An exercise is a name, a reference function, and a case generator that draws random inputs (edge cases
included) from a seeded generator. `check(name, fn)` calls both on copies of every case and stops at the
first disagreement with an `ExerciseFailed` (an AssertionError, so an unfinished exercise fails a
notebook run) whose message says which case, what was expected and what came back. It also fails a
function that changes its inputs in place, and stops one that runs past a time limit (an endless loop).
"""
from __future__ import annotations

import copy
import inspect
import math
import os
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .guards import TooSlow, call_with_time_limit, copy_fix, what_changed


TIME_LIMIT = 5.0  # seconds per call of the student's function; the slowest reference call takes ~10 ms on 2 CPU cores


class ExerciseFailed(AssertionError):
    """A check found the student's function wrong (or unfinished); the message says what is wrong."""

    def _render_traceback_(self) -> list[str]:
        """How IPython and Jupyter show it: the message alone. The traceback would only go through the checker's
        own code; the message already names the case, and the line of the student's code when that raised."""
        first, *rest = str(self).split("\n")
        return [f"\x1b[0;31mExerciseFailed\x1b[0m: {first}", *rest]


@dataclass
class Case:
    """One input to compare on: a label for messages ("edge: one token") and the positional arguments."""

    label: str
    args: tuple
    kwargs: dict | None = None


@dataclass
class Exercise:
    """A registered exercise.

    name: what `check(name, fn)` is called with.
    chapter: the notebook number it belongs to ("02").
    title: one line for listings and messages.
    reference: the correct function (often a library function or module call).
    cases: rng -> iterable of Case; called with a fresh numpy Generator on every check.
    hint: added to a failure message (a common mistake, a convention to follow).
    rtol, atol: tolerances for floating-point results.
    compare: optional (expected, got) -> problem text or None, replacing the default comparison.
    """

    name: str
    chapter: str
    title: str
    reference: Callable
    cases: Callable[[np.random.Generator], Iterator[Case]]
    hint: str = ""
    rtol: float = 1e-4
    atol: float = 1e-5
    compare: Callable | None = None


REGISTRY: dict[str, Exercise] = {}


def exercise(name: str, chapter: str, title: str, reference: Callable, hint: str = "", **kw):
    """Decorator for a case generator: registers Exercise(name, ..., cases=the decorated function)."""

    def register(cases):
        if name in REGISTRY:
            raise ValueError(f"exercise {name!r} is registered twice")
        REGISTRY[name] = Exercise(name, chapter, title, reference, cases, hint, **kw)
        return cases

    return register


# -------------------------------------------------------------------------------------------------
# comparing results
# -------------------------------------------------------------------------------------------------

def _kind(x) -> str:
    if hasattr(x, "detach") and hasattr(x, "shape"):
        return "tensor"
    if isinstance(x, np.ndarray):
        return "array"
    if isinstance(x, (bool, np.bool_)):
        return "bool"
    if isinstance(x, (int, float, np.integer, np.floating)) or (hasattr(x, "shape") and getattr(x, "shape", None) == ()):
        return "number"
    if isinstance(x, (tuple, list)):
        return "sequence"
    return type(x).__name__


def _as_array(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu()
        x = x.float() if x.is_floating_point() else x
        return x.numpy()
    return np.asarray(x)


def describe(x) -> str:
    """A short description of a value for messages: type, shape and a few numbers."""
    if _is_text(x) and not isinstance(x, bytes) and np.ndim(x) == 0:
        x = str(x)  # np.str_('1') and np.array('1') read as '1'
    k = _kind(x)
    if k in ("tensor", "array"):
        a = _as_array(x)
        head = np.array2string(a.ravel()[:6], precision=4, separator=", ")
        more = ", ..." if a.size > 6 else ""
        return f"{'tensor' if k == 'tensor' else 'array'} of shape {tuple(a.shape)} [{head[1:-1]}{more}]"
    if k == "number":
        return f"{float(x):.6g}" if not isinstance(x, (int, np.integer)) else str(int(x))
    text = repr(x)
    return text if len(text) < 120 else text[:117] + "..."


def _is_text(x) -> bool:
    """A string, or a numpy array of strings: text that float() or astype(float) would quietly turn into a number."""
    return isinstance(x, (str, bytes)) or (isinstance(x, np.ndarray) and x.dtype.kind in "US")


def _text_problem(where: str, got) -> str:
    return (f"{where} should be a number, got {describe(got)} (text): return the number itself, not a string "
            f"(no str(...), f-string or formatting)")


def difference(expected, got, rtol: float, atol: float, where: str = "the result") -> str | None:
    """None when got matches expected (within tolerances), else a sentence saying how it differs."""
    ke, kg = _kind(expected), _kind(got)
    if ke in ("tensor", "array"):
        if kg not in ("tensor", "array", "number", "bool", "sequence"):
            return f"{where} should be a {'tensor' if ke == 'tensor' else 'numpy array'}, got {type(got).__name__}"
        e, g = _as_array(expected), _as_array(got)
        if _is_text(g):
            return (f"{where} should hold numbers, got text ({describe(got)}): return numbers, "
                    f"not strings (no str(...) or f-strings)")
        if e.shape != g.shape:
            return f"{where} has shape {tuple(g.shape)}, expected {tuple(e.shape)}"
        if e.dtype == bool or g.dtype == bool:
            bad = e.astype(bool) != g.astype(bool)
        else:
            e64, g64 = e.astype(np.float64), g.astype(np.float64)
            if np.isnan(g64).any() and not np.isnan(e64).any():
                return f"{where} contains NaN (a division by zero, or log of 0?)"
            bad = ~np.isclose(g64, e64, rtol=rtol, atol=atol, equal_nan=True)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            return (f"{where} differs at index {idx}: got {g[idx]!r}, expected {e[idx]!r} "
                    f"({int(bad.sum())} of {bad.size} values differ)")
        return None
    if ke == "bool":
        one_value = kg in ("tensor", "array") and _as_array(got).size == 1
        if _is_text(got) or (kg not in ("bool", "number") and not one_value):
            return f"{where} should be True or False, got {describe(got)}"
        g = bool(_as_array(got).item()) if kg in ("tensor", "array") else bool(got)
        return None if g == bool(expected) else f"{where} is {g}, expected {bool(expected)}"
    if ke == "number":
        if _is_text(got):
            return _text_problem(where, got)
        try:
            g = float(_as_array(got).item()) if kg in ("tensor", "array") else float(got)
        except (TypeError, ValueError):
            return f"{where} should be a number, got {describe(got)}"
        e = float(expected)
        if math.isnan(g) and not math.isnan(e):
            return f"{where} is NaN, expected {e:.6g} (a division by zero, or log of 0?)"
        if isinstance(expected, (int, np.integer)) and not isinstance(expected, bool):
            return None if g == e else f"{where} is {describe(got)}, expected {int(e)}"
        return None if math.isclose(g, e, rel_tol=rtol, abs_tol=atol) else f"{where} is {g:.6g}, expected {e:.6g}"
    if ke == "sequence":
        if kg not in ("sequence", "tensor", "array"):
            return f"{where} should be a {type(expected).__name__}, got {describe(got)}"
        got = list(got)
        if len(got) != len(expected):
            return f"{where} has {len(got)} items, expected {len(expected)}: got {describe(got)}, expected {describe(expected)}"
        for i, (e, g) in enumerate(zip(expected, got)):
            problem = difference(e, g, rtol, atol, f"item {i} of {where}")
            if problem:
                return problem
        return None
    return None if got == expected else f"{where} is {describe(got)}, expected {describe(expected)}"


# -------------------------------------------------------------------------------------------------
# running a check
# -------------------------------------------------------------------------------------------------

def _args_text(case: Case) -> str:
    parts = [describe(a) if _kind(a) in ("tensor", "array") else
             (type(a).__name__ if hasattr(a, "parameters") or callable(a) else describe(a)) for a in case.args]
    parts += [f"{k}={describe(v)}" for k, v in (case.kwargs or {}).items()]
    return ", ".join(parts)


def _student_line(e: BaseException) -> str:
    """'line N: source' of the innermost frame that is not mmkit's own code (the student's cell)."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frames = [f for f in traceback.extract_tb(e.__traceback__) if not os.path.abspath(f.filename).startswith(here)]
    if not frames:
        return ""
    f = frames[-1]
    return f" (line {f.lineno}: {f.line.strip()})" if f.line else f" (line {f.lineno})"


def _arg_names(fn: Callable, reference: Callable, n: int, kwargs: dict) -> list[str]:
    """Names of the n positional arguments and the keyword arguments, as the student's function calls them
    (the reference's names where the student's signature has none, e.g. *args)."""
    names = []
    for f in (fn, reference):
        try:
            params = [p for p in inspect.signature(f).parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        except (TypeError, ValueError):
            continue
        names = names or [p.name for p in params]
        if len(params) >= n:
            names = [p.name for p in params]
            break
    return [names[i] if i < len(names) else f"argument {i + 1}" for i in range(n)] + list(kwargs)


def _changed_in_place(fn: Callable, ex: Exercise, case: Case, args: tuple, kwargs: dict) -> str | None:
    """A sentence naming the first argument that fn changed in place (compared with the case's untouched originals)."""
    before = list(case.args) + list((case.kwargs or {}).values())
    after = list(args) + list(kwargs.values())
    for name, b, a in zip(_arg_names(fn, ex.reference, len(case.args), case.kwargs or {}), before, after):
        change = what_changed(b, a)
        if change:
            return (f"your function changed its argument `{name}` in place: {change}. Code that calls your function "
                    f"still needs its input as it was, so {copy_fix(name, b)}")
    return None


def _call_name(fn: Callable) -> str:
    name = getattr(fn, "__name__", "")
    return name if name.isidentifier() else "your_function"


def check(name: str, fn: Callable, seed: int | None = None, verbose: bool = True,
          time_limit: float | None = TIME_LIMIT) -> None:
    """Compare `fn` with the reference solution of exercise `name` on fresh random inputs and edge cases.

    Args:
        name: the exercise's name, e.g. "gated_fusion" (`list_exercises()` prints them all).
        fn: your function, with the signature the exercise asks for.
        seed: seeds the random inputs; None draws a new seed (printed on failure, to reproduce it).
        verbose: print a line when every case passes.
        time_limit: seconds one call of fn may take before it is stopped (an endless loop); None: no limit.
    Raises:
        ExerciseFailed (an AssertionError) naming the first case where fn and the reference disagree, where fn
        changed an input in place, or where it ran past the time limit.
    """
    if name not in REGISTRY:
        raise InputError(f"no exercise named {name!r}; the exercises are: {', '.join(sorted(REGISTRY))}")
    ex = REGISTRY[name]
    if not callable(fn):
        raise ExerciseFailed(f"{name}: pass your function itself, e.g. check({name!r}, my_function); got {describe(fn)}")
    seed = int(np.random.SeedSequence().entropy % 2**32) if seed is None else int(seed)
    rng = np.random.default_rng(seed)
    import torch

    cases = list(ex.cases(rng))
    for i, case in enumerate(cases):
        torch.manual_seed(seed + i)
        args, kwargs = copy.deepcopy(case.args), copy.deepcopy(case.kwargs or {})
        expected = ex.reference(*args, **kwargs)
        args, kwargs = copy.deepcopy(case.args), copy.deepcopy(case.kwargs or {})
        where = f"{name}, case {i + 1} of {len(cases)} ({case.label})"
        try:
            got = call_with_time_limit(fn, args, kwargs, time_limit)
        except TooSlow:
            raise ExerciseFailed(f"{where}: your function took longer than {time_limit:g} s (an endless loop?) and was "
                                 f"stopped. Look for a loop whose condition never changes.\n  inputs: {_args_text(case)}\n"
                                 f"  If it is right but slow, give it more time: "
                                 f"check({name!r}, {_call_name(fn)}, time_limit=60)") from None
        except NotImplementedError:
            raise ExerciseFailed(f"{name}: not done yet. Your function raises NotImplementedError; "
                                 f"replace that line with your solution, run the cell, then this check again. "
                                 f"(Run All stops here until it passes; then run the cells below.)") from None
        except Exception as e:  # a bug in the student's code: say where, and with what input
            raise ExerciseFailed(f"{where}: your function raised {type(e).__name__}: {e}{_student_line(e)}\n"
                                 f"  inputs: {_args_text(case)}" + (f"\n  hint: {ex.hint}" if ex.hint else "")) from None
        changed = _changed_in_place(fn, ex, case, args, kwargs)
        if changed:
            raise ExerciseFailed(f"{where}: {changed}\n  inputs: {_args_text(case)}\n  (seed={seed})")
        problem = ex.compare(expected, got) if ex.compare else difference(expected, got, ex.rtol, ex.atol)
        if problem:
            raise ExerciseFailed(f"{where}: {problem}\n  inputs: {_args_text(case)}\n"
                                 f"  expected: {describe(expected)}\n  got:      {describe(got)}"
                                 + (f"\n  hint: {ex.hint}" if ex.hint else "") + f"\n  (seed={seed})")
    if verbose:
        edge = sum(c.label.startswith("edge") for c in cases)
        print(f"\u2713 {name}: matches the reference on {len(cases)} inputs ({edge} edge cases). Well done.")


def list_exercises(chapter: str | None = None) -> list[tuple[str, str, str]]:
    """(chapter, name, title) of every registered exercise, or of one chapter's ("03")."""
    rows = sorted((ex.chapter, ex.name, ex.title) for ex in REGISTRY.values())
    return [r for r in rows if chapter is None or r[0] == str(chapter).zfill(2)]


def reference(name: str) -> Callable:
    """The reference solution of exercise `name` (for instructors, and for a lesson cell that shows a quantity before
    the exercise asks students to compute it; students should not need it)."""
    if name not in REGISTRY:
        raise InputError(f"no exercise named {name!r}; the exercises are: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name].reference
