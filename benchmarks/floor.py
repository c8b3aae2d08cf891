"""The matrix-product floor of a call: the dense products it runs, replayed bare.

A forward pass of these models is mostly matrix products. Record the products one call runs, at the level of
torch's kernels (every mm / addmm / bmm / baddbmm / mv / addmv, and convolutions, whoever calls them: linear
layers, mmkit's lean decoder step, absorbed cross-attention), then replay the same products, the same shapes,
strides and weights, with inputs and outputs made beforehand and nothing else in between. The replay's time is
what the call would cost if everything besides its matrix products (fused attention kernels, softmax, layer
norms, activations, preprocessing, Python) were free. "x of floor" = t_floor / t_call: 1.0 would mean
nothing but products. A fused attention kernel (scaled_dot_product_attention) runs two products of its own,
q·kᵀ and p·v, inside one kernel; with `attention=True` they join the floor as the two batched products of the
same shapes (and the softmax between them stays free), the floor of a call that must compute attention. The
products' GFLOP/s against a large square product's shows how close to the machine's rate the products
themselves run.

Weights are replayed from the model's own tensors (so no two layers share a cache-warm copy); activations and
outputs of one shape share a buffer (a 32-image BLIP-base caption would otherwise need GBs of them).

    python benchmarks/floor.py                  # the floor table (real-size random-init models), floor_results.json
    python benchmarks/floor.py --only caption --dtypes fp32 --repeats 5
    python benchmarks/floor.py --quick          # tiny models, 2 images: checks the script, its numbers mean nothing
The table itself (the tasks, baselines and agreement checks) is in floor_table.py.
"""
from __future__ import annotations

import contextlib
import time

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten
PRODUCTS = {aten.mm.default: "mm", aten.addmm.default: "addmm", aten.bmm.default: "bmm",
            aten.baddbmm.default: "baddbmm", aten.mv.default: "mv", aten.addmv.default: "addmv",
            aten.matmul.default: "matmul", aten.linear.default: "linear",
            aten.convolution.default: "conv", aten.conv2d.default: "conv"}  # torch 2.13 shows linear, matmul, conv2d


class _Recorder(TorchDispatchMode):
    """Appends (op name, args, kwargs) of every dense product run within it; tensors kept as the real tensor when it
    is one of the kept storages (weights), else as its layout (shape, stride, dtype, device)."""

    def __init__(self, keep: set, attention: bool = False):
        super().__init__()
        self.keep, self.calls, self.attention, self.inside_attention = keep, [], attention, False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.attention and _FUSED_ATTENTION in str(func):
            if self.inside_attention:  # the kernel the composite op chose (seen outside inference mode)
                return func(*args, **kwargs)
            self.calls.extend(_attention_products(args[0], args[1]))
            self.inside_attention = True
            try:  # whatever it runs inside (a fused kernel, or the unfused path's own products) is counted above
                return func(*args, **kwargs)
            finally:
                self.inside_attention = False
        if func in PRODUCTS and not self.inside_attention:
            name, args_ = PRODUCTS[func], list(args)
            if name == "linear":  # x (..., K) @ W.T (+ b) is the (rows, K) x (K, N) product addmm / mm runs
                x, w, b = args_[0], args_[1], args_[2] if len(args_) > 2 else None
                rows = x.numel() // x.shape[-1]
                a = ("layout", (rows, x.shape[-1]), (x.shape[-1], 1), x.dtype, x.device)
                wt = _transposed(self._spec(w))  # (K, N)
                name, args_ = ("mm", [a, wt]) if b is None else ("addmm", [self._spec(b), a, wt])
                self.calls.append((name, args_, {}))
            else:
                self.calls.append((name, [self._spec(a) for a in args_], dict(kwargs)))
        return func(*args, **kwargs)

    def _spec(self, a):
        if not isinstance(a, torch.Tensor):
            return a
        if a.untyped_storage().data_ptr() in self.keep:
            return a.detach()
        return ("layout", tuple(a.shape), tuple(a.stride()), a.dtype, a.device)


_FUSED_ATTENTION = "scaled_dot_product"  # scaled_dot_product_attention, and the kernels it dispatches to


def _attention_products(q, k) -> list:
    """The two batched products a fused attention kernel runs: q·kᵀ (BH, L, d) x (BH, d, S), then the weights
    (BH, L, S) x v (BH, S, d); q (..., L, d), k and v (..., S, d)."""
    bh, (l, d), s = q.numel() // (q.shape[-2] * q.shape[-1]), q.shape[-2:], k.shape[-2]

    def lay(shape):
        return ("layout", shape, (shape[1] * shape[2], shape[2], 1), q.dtype, q.device)
    return [("bmm", [lay((bh, l, d)), lay((bh, d, s))], {}), ("bmm", [lay((bh, l, s)), lay((bh, s, d))], {})]


def _transposed(spec):
    """A 2-D weight, or its layout, transposed."""
    if isinstance(spec, torch.Tensor):
        return spec.t()
    _, shape, stride, dtype, device = spec
    return ("layout", shape[::-1], stride[::-1], dtype, device)


def _storages(models) -> set:
    ptrs = set()
    for model in models:
        for t in list(model.parameters()) + list(model.buffers()):
            ptrs.add(t.untyped_storage().data_ptr())
    return ptrs


@contextlib.contextmanager
def recording(*models, attention: bool = False):
    """Within the block, every dense product is recorded into the yielded list; the models' weights are kept.
    attention: fused attention kernels' two products recorded too (module docstring)."""
    rec = _Recorder(_storages(models), attention)
    with rec:
        yield rec.calls


def _flop(name: str, args: list, out: torch.Tensor) -> int:
    if name == "conv":
        w = args[1]
        return 2 * out.numel() * (w.shape[1] * w[0, 0].numel())  # per output: in/groups x kernel multiply-adds
    a = args[0] if name in ("mm", "bmm", "mv", "matmul") else args[1]
    return 2 * out.numel() * a.shape[-1]  # each output: K multiply-adds


def replay(calls: list):
    """(a function that runs the recorded products bare, their GFLOP). Inputs and outputs are allocated here, once
    per layout, so the function spends its time in the products."""
    buffers, outs, work, flop = {}, {}, [], 0

    def tensor(spec):
        if isinstance(spec, tuple) and spec and spec[0] == "layout":
            _, shape, stride, dtype, device = spec
            key = (shape, stride, dtype, device)
            if key not in buffers:
                buffers[key] = torch.empty_strided(shape, stride, dtype=dtype, device=device).normal_()
            return buffers[key]
        return spec

    with torch.inference_mode():
        for name, args, kwargs in calls:
            args = [tensor(a) for a in args]
            if name == "conv":  # conv2d's or convolution's arguments, as recorded
                conv = torch.conv2d if len(args) <= 7 else torch.convolution
                out = None
            else:
                probe = getattr(torch, name)(*args, **kwargs)  # the output's shape and dtype
                key = (tuple(probe.shape), probe.dtype, probe.device)
                out = outs.setdefault(key, probe)
            work.append((name, args, kwargs, out))
            flop += _flop(name, args, out if out is not None else conv(*args, **kwargs))

    def run():
        with torch.inference_mode():
            for name, args, kwargs, out in work:
                if out is None:
                    (torch.conv2d if len(args) <= 7 else torch.convolution)(*args, **kwargs)
                else:
                    getattr(torch, name)(*args, **kwargs, out=out)

    return run, flop / 1e9


def matmul_floor(fn, *models, attention: bool = False):
    """(replay function, GFLOP) for the dense products that one call of fn() runs; models: whose weights to keep;
    attention: the products inside fused attention kernels counted too."""
    with recording(*models, attention=attention) as calls:
        fn()
    return replay(calls)


def square_rate(n: int = 2048, repeats: int = 3, dtype=torch.float32) -> float:
    """GFLOP/s of an (n x n) x (n x n) product on the CPU, the best of `repeats`: the machine's rate."""
    a, b, out = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype), torch.empty(n, n, dtype=dtype)
    torch.mm(a, b, out=out)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    from floor_table import main  # noqa: E402

    sys.exit(main())
