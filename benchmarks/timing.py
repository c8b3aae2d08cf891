"""The one timer every benchmark here uses, so their numbers are taken the same way."""
from __future__ import annotations

import statistics
import time


def timed(fn, repeats: int = 2, device=None) -> float:
    """Median wall time of fn() over `repeats` runs, after one warm-up run.

    On a CUDA device each run starts and ends with a synchronize, so queued GPU work is counted.
    """
    def sync():
        if device is not None and device.type == "cuda":
            import torch

            torch.cuda.synchronize(device)

    fn()
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)
