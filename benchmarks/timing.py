"""The one timer every benchmark here uses, so their numbers are taken the same way."""
from __future__ import annotations

import statistics
import time


def timed_rounds(fns: dict, repeats: int = 2, device=None) -> dict[str, list[float]]:
    """Wall time of each fn() in each of `repeats` rounds, after one warm-up run of each.

    Each round runs every fn once, in turn, so a host that speeds up or slows down during the benchmark (a
    shared machine, thermal limits) shifts all of them alike and their ratios stay fair; timing one fn after
    another would put the whole drift into the ratio. On a CUDA device each run starts and ends with a
    synchronize, so queued GPU work is counted.
    """
    def sync():
        if device is not None and device.type == "cuda":
            import torch

            torch.cuda.synchronize(device)

    for fn in fns.values():
        fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - t0)
    return times


def timed_together(fns: dict, repeats: int = 2, device=None) -> dict[str, float]:
    """Median wall time of each fn() over `repeats` interleaved rounds (timed_rounds)."""
    return {name: statistics.median(t) for name, t in timed_rounds(fns, repeats, device).items()}


def timed(fn, repeats: int = 2, device=None) -> float:
    """Median wall time of fn() over `repeats` runs, after one warm-up run."""
    return timed_together({"fn": fn}, repeats, device)["fn"]
