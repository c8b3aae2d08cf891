"""The one timer every benchmark here uses, so their numbers are taken the same way."""
from __future__ import annotations

import math
import statistics
import time


def timed_rounds(fns: dict, repeats: int = 2, device=None, min_round_s: float = 0.0) -> dict[str, list[float]]:
    """Wall time of one fn() call, for each fn in each of `repeats` rounds, after one warm-up run of each.

    Each round runs every fn in turn, so a host that speeds up or slows down during the benchmark (a shared
    machine, thermal limits) shifts all of them alike and their ratios stay fair; timing one fn after another
    would put the whole drift into the ratio. A fn whose warm-up took less than `min_round_s` runs that many
    times over in each round, back to back, and its time is their mean: a single 40 ms call is at the mercy of
    one scheduler hiccup. On a CUDA device each timing starts and ends with a synchronize, so queued GPU work
    is counted.
    """
    def sync():
        if device is not None and device.type == "cuda":
            import torch

            torch.cuda.synchronize(device)

    calls = {}
    for name, fn in fns.items():
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        calls[name] = max(1, math.ceil(min_round_s / max(time.perf_counter() - t0, 1e-9)))  # calls per round
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync()
            t0 = time.perf_counter()
            for _ in range(calls[name]):
                fn()
            sync()
            times[name].append((time.perf_counter() - t0) / calls[name])
    return times


def timed_together(fns: dict, repeats: int = 2, device=None, min_round_s: float = 0.0) -> dict[str, float]:
    """Median wall time of one call of each fn() over `repeats` interleaved rounds (timed_rounds)."""
    return {name: statistics.median(t) for name, t in timed_rounds(fns, repeats, device, min_round_s).items()}


def timed(fn, repeats: int = 2, device=None) -> float:
    """Median wall time of fn() over `repeats` runs, after one warm-up run."""
    return timed_together({"fn": fn}, repeats, device)["fn"]


def keeping(fns: dict, outputs: dict) -> dict:
    """The fns, each storing its last output in outputs[name]: the timed calls' outputs, to compare."""
    def wrap(name, fn):
        def run():
            outputs[name] = fn()
        return run
    return {name: wrap(name, fn) for name, fn in fns.items()}
