"""load_model's cache: one entry per (repo, device, dtype, attention), bounded by a count and by bytes of
weights, the least recently used dropped first (the newest entry always stays).

Dropping a model only forgets the cache's reference: a `Loaded` still held elsewhere keeps working.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Callable

from .errors import InputError

HALF_OF_RAM = "half of RAM"


def total_ram() -> int | None:
    """The machine's memory in bytes, or None where it cannot be read."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX
        try:
            import psutil

            return psutil.virtual_memory().total
        except Exception:  # noqa: BLE001  no way to know: no bytes bound
            return None


def model_bytes(m) -> int:
    """Bytes of a loaded model's parameters and buffers (each tensor counted once)."""
    seen, total = set(), 0
    for t in list(m.model.parameters()) + list(m.model.buffers()):
        key = (t.data_ptr(), t.nbytes)
        if key not in seen:
            seen.add(key)
            total += t.nbytes
    return total


class ModelCache:
    """A thread-safe least-recently-used cache of loaded models.

    limit: {"models": at most this many entries or None, "bytes": at most this many bytes of weights in all,
    HALF_OF_RAM (the default: a notebook that tries one big model after another keeps the newest ones instead
    of running out of memory) or None}."""

    def __init__(self):
        self.entries: OrderedDict[tuple, object] = OrderedDict()  # least recently used first
        self.sizes: dict[tuple, int] = {}  # key -> model_bytes, measured once when the model is cached
        self.limit = {"models": None, "bytes": HALF_OF_RAM}
        self.lock = threading.RLock()

    def get(self, key: tuple, load: Callable[[], object]):
        """The cached entry of key (now the most recently used), or load() cached under key."""
        with self.lock:
            if key in self.entries:
                self.entries.move_to_end(key)
                return self.entries[key]
            loaded = load()
            self.entries[key] = loaded
            self.sizes[key] = model_bytes(loaded)
            self.evict()
            return loaded

    def set_limit(self, models: int | None = None, max_bytes: int | str | None = HALF_OF_RAM) -> None:
        """Bound the cache (see models.set_cache_limit) and drop what no longer fits."""
        if models is not None and (not isinstance(models, int) or isinstance(models, bool) or models < 1):
            raise InputError(f"models={models!r}: give a whole number of models >= 1, or None for no bound")
        if max_bytes is not None and max_bytes != HALF_OF_RAM and (
                not isinstance(max_bytes, int) or isinstance(max_bytes, bool) or max_bytes < 1):
            raise InputError(f"max_bytes={max_bytes!r}: give a number of bytes >= 1 (e.g. 4 * 2**30 for 4 GiB), "
                             f"'{HALF_OF_RAM}' or None for no bound")
        with self.lock:
            self.limit.update(models=models, bytes=max_bytes)
            self.evict()

    def byte_limit(self) -> int | None:
        """The bound in bytes now (half of the machine's memory by default), or None."""
        lim = self.limit["bytes"]
        if lim == HALF_OF_RAM:
            ram = total_ram()
            return ram // 2 if ram else None
        return lim

    def evict(self) -> None:
        """Drop least recently used entries until the cache is within its bound (the newest stays)."""
        with self.lock:
            max_models, max_bytes = self.limit["models"], self.byte_limit()
            while len(self.entries) > 1 and (
                    (max_models is not None and len(self.entries) > max_models) or
                    (max_bytes is not None and sum(self.sizes.get(k, 0) for k in self.entries) > max_bytes)):
                key, _ = self.entries.popitem(last=False)
                self.sizes.pop(key, None)

    def info(self) -> list[dict]:
        """The cached models, least recently used first: name, device, dtype, attention, bytes."""
        with self.lock:
            return [{"name": m.spec.name, "device": str(m.device), "dtype": str(m.dtype), "attention": key[3],
                     "bytes": self.sizes.get(key, 0)} for key, m in self.entries.items()]

    def clear(self) -> None:
        """Forget every entry."""
        with self.lock:
            self.entries.clear()
            self.sizes.clear()
