"""Running out of memory: retry a batched job with smaller batches, then say what to do.

`run_batched(n, batch_size, step)` calls `step(slice)` over `range(n)` in batches. When a batch runs
out of GPU memory (CUDA or MPS), the cached memory is released and the same batch is retried at half
the size, down to one item; if one item still does not fit, `ResourceError` names the fixes.
A KeyboardInterrupt is never caught: it ends the job and leaves the model as it was.
"""
from __future__ import annotations

import gc

from .errors import ResourceError, warn


def is_out_of_memory(e: BaseException) -> bool:
    """True for the out-of-memory errors of CUDA (torch.OutOfMemoryError), MPS and CPU allocators."""
    import torch

    oom_type = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(e, oom_type):
        return True
    return isinstance(e, RuntimeError) and "out of memory" in str(e).lower()


def free_memory() -> None:
    """Drop Python garbage and the GPU's cached blocks, so a retry starts from a clean slate."""
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    mps = getattr(torch, "mps", None)
    if mps is not None and hasattr(mps, "empty_cache") and torch.backends.mps.is_available():
        mps.empty_cache()


def advice(what: str = "this model", device=None, dtype=None) -> str:
    """The fixes to suggest once even a batch of one does not fit."""
    tips = []
    if "float32" in str(dtype) and "cpu" not in str(device):
        tips.append("load the model in half precision: mmkit.load_model(name, dtype='fp16')")
    tips += ["use a smaller model (mmkit.list_models() shows the sizes; the shapes-* models are tiny)",
             "free memory held by other models (mmkit.models.clear_cache(), or restart the kernel)",
             "use smaller images or shorter texts"]
    return f"out of memory running {what} even one item at a time on {device or 'this device'}; " + "; ".join(tips)


def run_batched(n: int, batch_size: int, step, what: str = "the model", device=None, dtype=None) -> list:
    """[step(slice) for each batch of range(n)], halving the batch size on out-of-memory errors.

    Args:
        n: number of items.
        batch_size: items per call to start with; after an out-of-memory error the smaller size is kept.
        step: function of a slice returning that batch's result.
        what: names the job in the warning and the error (e.g. "caption on shapes-blip-caption").
    """
    if n <= 0:
        return []
    size, start, out = max(1, int(batch_size)), 0, []
    while start < n:
        sl = slice(start, min(start + size, n))
        try:
            out.append(step(sl))
        except Exception as e:
            if not is_out_of_memory(e):
                raise
            del e  # the traceback holds the failed batch's tensors
            free_memory()
            if size == 1:
                raise ResourceError(advice(what, device, dtype)) from None
            size = max(1, (sl.stop - sl.start) // 2)  # half of the batch that failed
            warn(f"out of memory running {what}; retrying with batches of {size}", RuntimeWarning)
            continue
        start = sl.stop
    return out
