"""Where a call's time goes beyond its matrix-product floor: the floor table's "x of floor" taken apart.

floor.py replays only the dense products; whatever else the call runs is the gap. This profiles the same mmkit
call (the floor table's models and inputs) with torch.profiler and splits its time by kernel kind:

  products     mm / addmm / bmm / linear / conv ... (what the floor replays)
  attention    fused attention kernels (scaled_dot_product_attention): products too, but not replayed
  softmax      softmax outside fused attention
  norms        layer norms
  activations  GELU and the like
  elementwise  adds, multiplies, divisions, ...
  movement     copies, cat, index, views made contiguous, allocation
  other ops    every other torch op (argmax, sampling, embedding lookups, ...)
  python       the call's wall time not inside any torch op (Python, the tokenizer and image decoding, ...)

Each row: seconds per call and share of the call, measured under the profiler (which slows small ops down; the
plain call's time is printed beside it). The products' own time inside the call is set against the floor's replay
of the same products, so the two questions "are the products slower in the call than bare?" and "how much is
not a product?" get separate answers. The last line bounds "x of floor": the floor over (the floor + the time of
the fused attention kernels at the products' own rate), the highest "x of floor" a call could reach that still
computes attention.

    python benchmarks/floor_gap.py                      # caption (BLIP-base) and zero-shot (CLIP-B/32), fp32
    python benchmarks/floor_gap.py --only caption --repeats 5
    python benchmarks/floor_gap.py --quick              # tiny models: a check of the script
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from floor import PRODUCTS, matmul_floor  # noqa: E402
from floor_table import calls, inputs, task_models  # noqa: E402
from timing import timed_rounds  # noqa: E402

KINDS = ("products", "attention", "softmax", "norms", "activations", "elementwise", "movement", "other ops", "python")
_PRODUCT_NAMES = {str(op).split(".")[1] for op in PRODUCTS} | {"_addmm_activation", "mkldnn_convolution",
                                                              "_convolution", "mkldnn_linear"}
_WORDS = [("attention", ("scaled_dot_product", "_flash_attention", "_efficient_attention")),
          ("softmax", ("softmax",)), ("norms", ("layer_norm", "native_layer_norm", "rms_norm")),
          ("activations", ("gelu", "silu", "relu", "tanh", "sigmoid")),
          ("movement", ("copy_", "cat", "index", "contiguous", "clone", "empty", "zeros", "ones", "fill_", "stack",
                        "to", "_to_copy", "resize_", "as_strided", "narrow", "select", "slice", "masked_fill",
                        "scatter", "gather", "expand", "repeat", "new_", "full")),
          ("elementwise", ("add", "mul", "div", "sub", "pow", "sqrt", "rsqrt", "exp", "neg", "where", "clamp",
                           "mean", "sum", "eq", "ne", "lt", "gt", "bitwise", "logical"))]


def kind(name: str) -> str:
    """The kind of one aten op, by name ("aten::addmm" -> "products")."""
    op = name.split("::")[-1]
    if op in _PRODUCT_NAMES:
        return "products"
    for k, words in _WORDS:
        if any(op == w or op.startswith(w + "_") or (len(w) > 4 and w in op) for w in words):
            return k
    return "other ops"


def top_level(events) -> list:
    """The torch ops not called from inside another torch op: their times add up without double counting."""
    ops = sorted((e for e in events if e.name.startswith("aten::")), key=lambda e: (e.time_range.start,
                                                                                     -e.time_range.end))
    tops, end = [], -1
    for e in ops:
        if e.time_range.start >= end:
            tops.append(e)
            end = e.time_range.end
    return tops


def breakdown(fn, repeats: int) -> dict:
    """Seconds per call by kind, under the profiler: each kernel's self time goes to its kind; the wall time
    outside every top-level op is "python"."""
    fn()
    totals, walls, by_op = defaultdict(float), [], defaultdict(float)
    for _ in range(repeats):
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            t0 = time.perf_counter()
            fn()
            walls.append(time.perf_counter() - t0)
        events = [e for e in prof.events() if e.name.startswith("aten::")]
        for e in events:
            totals[kind(e.name)] += e.self_cpu_time_total / 1e6 / repeats
            by_op[e.name] += e.self_cpu_time_total / 1e6 / repeats
        inside = sum(e.cpu_time_total for e in top_level(events)) / 1e6
        totals["python"] += max(walls[-1] - inside, 0.0) / repeats
    top = sorted(((s, op) for op, s in by_op.items() if kind(op) != "products"), reverse=True)[:10]
    return {"wall_profiled_s": statistics.median(walls), **{k: totals.get(k, 0.0) for k in KINDS},
            "top_other": {op: s for s, op in top}}


def gap_row(task: str, name: str, path: str, images, texts, repeats: int) -> dict:
    m, ours, _ = calls(task, path, "fp32", images, texts)
    ours()
    floor, gflop = matmul_floor(ours, m.model)
    t = {k: statistics.median(v) for k, v in timed_rounds({"mmkit": ours, "floor": floor}, repeats).items()}
    parts = breakdown(ours, repeats)
    rate = gflop / t["floor"]  # the floor's own products rate, GFLOP/s
    attn_gflop = matmul_floor(ours, m.model, attention=True)[1] - gflop  # q·kᵀ and p·v inside fused attention
    return {"task": task, "model": name, "images": len(images), "seconds": t, "of_floor": t["floor"] / t["mmkit"],
            "floor_gflop": gflop, "floor_gflop_s": rate, "profiled": parts, "attention_gflop": attn_gflop,
            "ceiling_with_attention": gflop / (gflop + attn_gflop), "load": os.getloadavg()[0]}


def report(rows: list) -> None:
    print("\n| task | model | images | call s | floor s | x of floor | " + " | ".join(KINDS)
          + " | profiled s | attention GFLOP | ceiling with attention | load |")
    print("|" + "---|" * (len(KINDS) + 10))
    for r in rows:
        p, wall = r["profiled"], r["profiled"]["wall_profiled_s"]
        shares = " | ".join(f"{p[k]:.3f} ({p[k] / wall:.0%})" for k in KINDS)
        print(f"| {r['task']} | {r['model']} | {r['images']} | {r['seconds']['mmkit']:.3f} | {r['seconds']['floor']:.3f}"
              f" | {r['of_floor']:.2f} | {shares} | {wall:.3f} | {r['attention_gflop']:.1f} of {r['floor_gflop']:.0f}"
              f" | {r['ceiling_with_attention']:.2f} | {r['load']:.1f} |")
    for r in rows:
        p = r["profiled"]
        print(f"- {r['task']}: products run {p['products']:.3f} s inside the call against {r['seconds']['floor']:.3f} s"
              f" replayed bare ({p['products'] / r['seconds']['floor']:.2f}x); everything else"
              f" {p['wall_profiled_s'] - p['products']:.3f} s; the largest other kernels: "
              + ", ".join(f"{op.split('::')[-1]} {s:.3f}" for op, s in p["top_other"].items()))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny random models, 2 images: a check of the script")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", default="caption,zero_shot")
    ap.add_argument("--out", default=str(Path(__file__).with_name("floor_gap_results.json")))
    args = ap.parse_args(argv)
    images, texts = inputs(2 if args.quick else args.batch)
    rows = []
    for task, name, path in task_models(args.only.split(","), args.quick, "mmkit-gap-"):
        print(f"{task} ...", flush=True)
        rows.append(gap_row(task, name, path, images, texts.get(task), args.repeats))
    report(rows)
    meta = {"torch": torch.__version__, "threads": torch.get_num_threads(), "cores": os.cpu_count()}
    Path(args.out).write_text(json.dumps({"machine": meta, "results": rows}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
