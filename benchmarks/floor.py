"""The matrix-product floor of a call: its linear layers' and convolutions' products replayed bare.

A forward pass of these models is mostly matrix products. Record the products one call runs (every
`nn.Linear`, and the patch embedding as the `nn.Conv2d` it is), then replay the same products, the same
shapes and weights, with inputs and outputs made beforehand and nothing else in between. The replay's time is
what the call would cost if everything besides its matrix products (attention softmax, layer norms,
activations, preprocessing, Python) were free. So against a baseline B, `t_B / t_floor` is the most any
further work on that other part can bring, and the replay's GFLOP/s against a large square product's shows
how close to the machine's rate the products themselves run.
"""
from __future__ import annotations

import contextlib
import time

import torch


@contextlib.contextmanager
def recording(model):
    """Within the block, every Linear and Conv2d call of model appends (weight (N, K), bias or None, rows M)
    to the yielded list: a (M, K) x (K, N) product."""
    products, hooks = [], []

    def linear(mod, args, out):
        products.append((mod.weight, mod.bias, out.numel() // mod.out_features))

    def conv(mod, args, out):  # the weight as (out channels, in x kernel) over every output position
        if mod.groups == 1:
            products.append((mod.weight.reshape(mod.out_channels, -1), mod.bias, out.numel() // mod.out_channels))

    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            hooks.append(m.register_forward_hook(linear))
        elif isinstance(m, torch.nn.Conv2d):
            hooks.append(m.register_forward_hook(conv))
    try:
        yield products
    finally:
        for h in hooks:
            h.remove()


def replay(products: list):
    """(a function that runs the recorded products bare, their GFLOP). Inputs and outputs are allocated once,
    here, so the function spends its time in the products."""
    work = []
    for w, b, rows in products:
        x = torch.randn(rows, w.shape[1], dtype=w.dtype, device=w.device)  # (M, K)
        out = torch.empty(rows, w.shape[0], dtype=w.dtype, device=w.device)  # (M, N)
        work.append((x, w.detach().t(), None if b is None else b.detach(), out))

    def run():
        with torch.inference_mode():
            for x, wt, b, out in work:
                if b is None:
                    torch.mm(x, wt, out=out)
                else:
                    torch.addmm(b, x, wt, out=out)

    return run, sum(2 * w.shape[0] * w.shape[1] * rows for w, _, rows in products) / 1e9


def matmul_floor(model, fn):
    """(replay function, GFLOP) for the matrix products that one call of fn() runs in model."""
    with recording(model) as products:
        fn()
    return replay(products)


def square_rate(n: int = 2048, repeats: int = 3) -> float:
    """GFLOP/s of an (n x n) x (n x n) fp32 product on the CPU, the best of `repeats`: the machine's rate."""
    a, b, out = torch.randn(n, n), torch.randn(n, n), torch.empty(n, n)
    torch.mm(a, b, out=out)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9
