"""Exercises with automatic checks for the course notebooks.

In a notebook, after writing the function an exercise asks for:

    from mmkit.exercises import check
    check("gated_fusion", gated_fusion)   # prints a pass line, or raises ExerciseFailed saying what is wrong

The check calls your function and the reference solution (the library's own code where it has one) on
the same fresh random inputs, edge cases included. It also fails a function that changes its inputs in place,
and stops one that runs longer than `time_limit` seconds per call (5 by default: an endless loop).
`list_exercises()` lists them by chapter; `reference(name)` returns a reference solution (for instructors).

Modules: core.py (the checker), guards.py (inputs changed in place, the time limit), fusion.py (01-03),
models.py (04-07), attention.py (08), captioning.py (09-10: decoding on toy next-token models, BLEU by hand).
"""
from . import attention, captioning, fusion, models  # noqa: F401  (registers the exercises)
from .core import REGISTRY, ExerciseFailed, check, list_exercises, reference

__all__ = ["ExerciseFailed", "check", "list_exercises", "reference", "REGISTRY"]
