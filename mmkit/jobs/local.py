"""The local engine: a pool of decoding threads feeding one model, shard by shard.

Decoding (JPEG draft, EXIF, RGB) runs in `workers` threads, a few batches ahead of the model: PIL releases
the GIL while it decodes and resizes, so the model's batch and the next batches' decoding overlap. Batches
are fixed slices of each shard, so a shard redone after a crash is computed in the very same batches.
"""
from __future__ import annotations

import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor

from ..errors import InputError
from .source import decode, file_stat, input_size, reason
from .tasks import JobTask, run_batch


class Timing(dict):
    """Seconds per stage: decode (summed over workers), wait (the model waiting for decoded images), model
    (preprocessing + forward), write (shard files), total (wall clock)."""

    def __init__(self):
        super().__init__(decode=0.0, wait=0.0, model=0.0, write=0.0, total=0.0)


def decode_one(path: str, size: int, draft: bool):
    """(image | None, error | None, seconds, file_stat before reading) of one file."""
    st = file_stat(path)  # before the read: a file changed meanwhile is seen as changed on resume
    try:
        im, s = decode(path, size, draft)
        return im, None, s, st
    except InputError as e:
        return None, reason(e), 0.0, st
    except MemoryError:
        return None, "not enough memory to decode it; resize the image", 0.0, st


def process_shard_batches(task: JobTask, m, options: dict, batches, decoded, timing: Timing):
    """Rows of consecutive batches: `decoded(i)` gives batch i's [(image | None, error | None, file_stat)]."""
    rows = []
    for i, paths in enumerate(batches):
        t = time.perf_counter()
        got = decoded(i)
        timing["wait"] += time.perf_counter() - t
        good = [j for j, g in enumerate(got) if g[0] is not None]
        t = time.perf_counter()
        records = run_batch(task, m, [got[j][0] for j in good], options) if good else []
        timing["model"] += time.perf_counter() - t
        by_j = dict(zip(good, records))
        for j, p in enumerate(paths):
            row = {"path": p, **by_j[j]} if j in by_j else {"path": p, "error": got[j][1]}
            rows.append({**row, "stat": got[j][2]})  # the journal's record of the file read (not in the output)
    return rows


def run_local(task: JobTask, m, options: dict, plan: list[list[str]], pending: list[int], journal, *,
              batch_size: int, workers: int, draft: bool, bar, timing: Timing) -> None:
    """Do the pending shards in order, writing each shard's file when it is complete."""
    size = input_size(m) if draft else 0
    work = [(k, plan[k][i:i + batch_size]) for k in pending for i in range(0, len(plan[k]), batch_size)]
    if not work:
        return
    pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="mmkit-decode") if workers > 0 else None
    ahead: deque = deque()  # futures of the batches submitted so far, in order
    next_submit = 0

    def submit_until(n: int) -> None:
        nonlocal next_submit
        while next_submit < min(n, len(work)):
            ahead.append([pool.submit(decode_one, p, size, draft) for p in work[next_submit][1]])
            next_submit += 1

    def decoded(_i):
        if pool is None:
            out = [decode_one(p, size, draft) for p in work[pos][1]]
        else:
            submit_until(pos + 1 + max(2, workers))  # keep the pool a few batches ahead of the model
            out = [f.result() for f in ahead.popleft()]
        timing["decode"] += sum(g[2] for g in out)
        return [(im, err, st) for im, err, _, st in out]

    rows: list[dict] = []
    try:
        for pos, (k, paths) in enumerate(work):
            rows += process_shard_batches(task, m, options, [paths], decoded, timing)
            bar.update(len(paths))
            if pos + 1 == len(work) or work[pos + 1][0] != k:  # the shard's last batch: write it
                t = time.perf_counter()
                journal.write_shard(k, rows)
                timing["write"] += time.perf_counter() - t
                rows = []
    finally:
        if pool is not None:
            for fs in ahead:
                for f in fs:
                    f.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
