"""The floor table: each task's mmkit call against its matrix-product floor and the strongest baselines, with
the outputs compared in the same run.

Rows: captioning (BLIP-base, greedy, 10 new tokens: the vision tower plus the decoder steps of that length),
zero-shot (CLIP ViT-B/32, 9 labels), VQA (BLIP-VQA-base, one question per image), ITM (BLIP-ITM-base, P(match) of
one caption per image); in fp32, and in bf16 where the CPU has native bf16 (else the rows are skipped and the
reason printed). Columns, all from interleaved rounds of one run (timing.py):
  x of floor      t_floor / t_mmkit, the floor being mmkit's own products replayed bare (floor.py);
  x of floor with attention
                  the same, with the two products inside each fused attention kernel (q·kᵀ, p·v) replayed too;
  x pipeline      the transformers pipeline for the task, where one exists (captioning, zero-shot);
  x transformers  the model class's own call (forward or generate) on the processor's batch;
  x compile       the same, with torch.compile on the model's forward passes (mode "default", and
                  "reduce-overhead"); the first call's time (the compilation) is reported apart.
  agree           each baseline's outputs against mmkit's: the same captions / answers, the same top label and
                  probabilities within 1e-4 (bf16: 2e-2), P(match) within 1e-4 (bf16: 2e-2). A differing row is
                  flagged DIFFERS with what differed.
"""
from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

import mmkit  # noqa: E402
from mmkit.data import ShapesWorld  # noqa: E402
from mmkit.models import clear_cache  # noqa: E402
from mmkit.testing import random_model_dir  # noqa: E402
from mmkit.train.contrastive import LABELS  # noqa: E402
from floor import matmul_floor, square_rate  # noqa: E402
from timing import timed_rounds  # noqa: E402

hf_logging.set_verbosity_error()
TOKENS = 10
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
FAMILY = {"caption": ("blip-caption", "blip-base"), "zero_shot": ("clip", "clip-b32"),
          "vqa": ("blip-vqa", "blip-vqa-base"), "itm": ("blip-itm", "blip-itm-base")}


def bf16_support() -> tuple[bool, str]:
    """(whether bf16 rows run here, why)."""
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    native = [f for f in ("avx512_bf16", "amx_bf16") if f in flags]
    if native and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return True, f"native bf16 ({', '.join(native)}; oneDNN bf16 supported)"
    return False, "no native bf16 on this CPU (no avx512_bf16/amx_bf16 in /proc/cpuinfo): bf16 would be emulated"


def compiled(model, task: str, mode: str):
    """The model with torch.compile on the forward passes its task call runs (generate's decoder steps with
    dynamic shapes: transformers' static cache fails for BLIP's decoder in transformers 5.25, see README)."""
    parts = {"caption": ("vision_model", "text_decoder"), "vqa": ("vision_model", "text_encoder", "text_decoder"),
             "zero_shot": (), "itm": ()}[task]
    if not parts:
        model.forward = torch.compile(model.forward, mode=mode)
    for name in parts:
        sub = getattr(model, name)
        sub.forward = torch.compile(sub.forward, mode=mode, dynamic=name != "vision_model")
    return model


def calls(task: str, path: str, dtype, images, texts):
    """(mmkit model, {method: fn returning comparable outputs}, {method: fn building it}) for one task."""
    from transformers import (AutoProcessor, BlipForConditionalGeneration, BlipForImageTextRetrieval,
                              BlipForQuestionAnswering, CLIPModel, pipeline)

    m = mmkit.load_model(path, dtype=dtype)
    proc = AutoProcessor.from_pretrained(path)
    n = len(images)
    cls = {"caption": BlipForConditionalGeneration, "zero_shot": CLIPModel, "vqa": BlipForQuestionAnswering,
           "itm": BlipForImageTextRetrieval}[task]
    dt = DTYPES[dtype]

    def run_class(model):
        with torch.inference_mode():
            if task == "caption":
                enc = proc(images=images, return_tensors="pt").to(dtype=dt)
                return [c.strip() for c in proc.batch_decode(model.generate(**enc, max_new_tokens=TOKENS),
                                                             skip_special_tokens=True)]
            if task == "zero_shot":
                enc = proc(images=images, text=[f"a {lab}" for lab in LABELS], padding=True, return_tensors="pt")
                enc["pixel_values"] = enc["pixel_values"].to(dt)
                return model(**enc).logits_per_image.float().softmax(-1).numpy()  # (n, labels)
            enc = proc(images=images, text=texts, padding=True, return_tensors="pt")
            enc["pixel_values"] = enc["pixel_values"].to(dt)
            if task == "vqa":
                return [a.strip() for a in proc.batch_decode(model.generate(**enc, max_new_tokens=TOKENS),
                                                             skip_special_tokens=True)]
            return model(**enc, use_itm_head=True).itm_score.float().softmax(-1)[:, 1].numpy()  # (n,)

    def fresh(mode=None):
        model = cls.from_pretrained(path, dtype=dt).eval()
        return (lambda: run_class(model)) if mode is None else (lambda: run_class(compiled(model, task, mode)))

    ours = {"caption": lambda: mmkit.caption(m, images, batch_size=n, max_new_tokens=TOKENS),
            "zero_shot": lambda: np.array([[p[lab] for lab in LABELS] for p in mmkit.zero_shot(
                m, images, LABELS, templates=["a {}"], batch_size=n)]),
            "vqa": lambda: mmkit.answer(m, images, texts, batch_size=n),
            "itm": lambda: np.asarray(mmkit.match(m, images, texts, paired=True), dtype=np.float64)}[task]
    makers = {"transformers": fresh, "compile": lambda: fresh("default"),
              "compile reduce-overhead": lambda: fresh("reduce-overhead")}
    if task == "caption":
        def make_pipe():
            pipe = pipeline("image-text-to-text", model=path, dtype=dt)
            return lambda: [o[0]["generated_text"].strip() if isinstance(o, list) else o["generated_text"].strip()
                            for o in pipe(images=images, text=[""] * n, batch_size=n,
                                          generate_kwargs=dict(max_new_tokens=TOKENS))]
        makers["pipeline"] = make_pipe
    elif task == "zero_shot":
        def make_pipe():
            pipe = pipeline("zero-shot-image-classification", model=path, dtype=dt)
            return lambda: np.array([[{d["label"]: d["score"] for d in o}[lab] for lab in LABELS]
                                     for o in pipe(images, candidate_labels=LABELS, hypothesis_template="a {}",
                                                   batch_size=n)])
        makers["pipeline"] = make_pipe
    return m, ours, makers


def agree(task: str, dtype: str, ours, theirs) -> str:
    """"same" or "DIFFERS: what"."""
    if isinstance(ours, list):
        diff = [i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b]
        return "same" if not diff and len(ours) == len(theirs) else \
            f"DIFFERS: {len(diff)}/{len(ours)} (e.g. {ours[diff[0]]!r} vs {theirs[diff[0]]!r})" if diff else "DIFFERS: length"
    tol = 1e-4 if dtype == "fp32" else 2e-2
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    gap = float(np.abs(ours - theirs).max())
    top = task != "zero_shot" or bool((ours.argmax(-1) == theirs.argmax(-1)).all())
    return "same" if gap <= tol and top else f"DIFFERS: max |diff| {gap:.1e}" + ("" if top else ", top label")


def task_row(task: str, name: str, path: str, dtype: str, images, texts, repeats: int, compile_modes) -> dict:
    load0 = os.getloadavg()[0]
    # each row compiles afresh: dynamo counts recompilations per code object (BlipVisionModel.forward is one for
    # every instance), and past its limit it runs the frame eagerly, so later rows' "compile" would be eager
    torch._dynamo.reset()
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
    m, ours, makers = calls(task, path, dtype, images, texts)
    reference = ours()
    floor, gflop = matmul_floor(ours, m.model)
    floor_attn, gflop_attn = matmul_floor(ours, m.model, attention=True)
    fns, outputs, first_call, failed = {"mmkit": ours, "floor": floor, "floor_attention": floor_attn}, {}, {}, {}
    for method, make in makers.items():
        if method.startswith("compile") and method.replace("compile", "").strip() not in compile_modes:
            continue
        fn = make()
        t0 = time.perf_counter()
        try:
            outputs[method] = fn()  # for compiled models: the compilation
        except Exception as e:  # noqa: BLE001  a baseline that fails is reported, not fatal
            failed[method] = f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"
            continue
        first_call[method] = time.perf_counter() - t0
        fns[method] = fn
    rounds = timed_rounds(fns, repeats)
    t = {k: statistics.median(v) for k, v in rounds.items()}
    n = len(images)
    return {"task": task, "model": name, "dtype": dtype, "images": n, "mmkit_img_s": n / t["mmkit"],
            "floor_img_s": n / t["floor"], "of_floor": t["floor"] / t["mmkit"], "floor_gflop": gflop,
            "floor_gflop_s": gflop / t["floor"], "seconds": t,
            "of_floor_attention": t["floor_attention"] / t["mmkit"], "floor_attention_gflop": gflop_attn,
            "vs": {k: t[k] / t["mmkit"] for k in t if k not in ("mmkit", "floor", "floor_attention")},
            "vs_rounds": {k: [b / a for a, b in zip(rounds["mmkit"], rounds[k])] for k in t if k != "mmkit"},
            "agree": {k: agree(task, dtype, reference, v) for k, v in outputs.items()},
            "first_call_s": first_call, "failed": failed, "load": [load0, os.getloadavg()[0]]}


def report(rows: list, machine: str) -> None:
    print(f"\nmachine: {machine}\n")
    cols = ["task", "model", "dtype", "images", "mmkit img/s", "floor img/s", "x of floor",
            "x of floor with attention", "products GFLOP/s",
            "x pipeline", "x transformers", "x compile", "x compile (reduce-overhead)", "outputs", "load (1 min)"]
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        def x(k):
            if k in r["failed"]:
                return "failed"
            return f"{r['vs'][k]:.2f}" if k in r["vs"] else "-"
        flags = [f"{k}: {v}" for k, v in r["agree"].items() if v != "same"]
        print(f"| {r['task']} | {r['model']} | {r['dtype']} | {r['images']} | {r['mmkit_img_s']:.2f} | "
              f"{r['floor_img_s']:.2f} | {r['of_floor']:.2f} | {r.get('of_floor_attention', float('nan')):.2f} | "
              f"{r['floor_gflop_s']:.0f} | {x('pipeline')} | "
              f"{x('transformers')} | {x('compile')} | {x('compile reduce-overhead')} | "
              f"{'all same' if not flags else '; '.join(flags)} | {r['load'][0]:.1f}-{r['load'][1]:.1f} |")
    comp = [(r, k, s) for r in rows for k, s in r["first_call_s"].items() if k.startswith("compile")]
    if comp or any(r["failed"] for r in rows):
        print("\ntorch.compile: the first call (compilation and one run), apart from the timed rounds:")
        for r, k, s in comp:
            print(f"- {r['task']} {r['dtype']} {k}: {s:.0f} s")
        for r in rows:
            for k, why in r["failed"].items():
                print(f"- {r['task']} {r['dtype']} {k}: FAILED {why}")


def inputs(n: int) -> tuple[list, dict]:
    """(pictures, {task: texts}) of the table's rows: n held-out scenes, their first questions and captions."""
    scenes = ShapesWorld(n, seed=0, split="test")
    return scenes.images, {"vqa": [s.qa[0].question for s in scenes], "itm": [s.caption for s in scenes]}


def task_models(tasks, quick: bool, prefix: str):
    """(task, row name, model folder) for each task: its random-init model (real size, or tiny with quick), built
    in a temporary folder and removed once the caller moves on."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    for task in tasks:
        family, name = FAMILY[task]
        path = str(random_model_dir(family, "tiny" if quick else "base", tmp / family))
        yield task, f"{family} tiny" if quick else f"{name} (random init)", path
        clear_cache()
        shutil.rmtree(tmp / family, ignore_errors=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny random models, 2 images: a check of the script")
    ap.add_argument("--batch", type=int, default=8, help="images per call (default 8)")
    ap.add_argument("--repeats", type=int, default=3, help="timed rounds (median kept)")
    ap.add_argument("--only", default="caption,zero_shot,vqa,itm", help="tasks, comma-separated")
    ap.add_argument("--dtypes", default="fp32,bf16")
    ap.add_argument("--compile", default="default,reduce-overhead",
                    help="torch.compile modes to time ('' for none; each compiles for minutes on 2 cores)")
    ap.add_argument("--out", default=str(Path(__file__).with_name("floor_results.json")))
    args = ap.parse_args(argv)
    images, texts = inputs(2 if args.quick else args.batch)
    modes = [m.replace("default", "") for m in args.compile.split(",") if m]
    bf16, why = bf16_support()
    dtypes = [d for d in args.dtypes.split(",") if d]
    if "bf16" in dtypes and not bf16:
        print(f"skipping the bf16 rows: {why}")
        dtypes.remove("bf16")
    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
               f"transformers {transformers.__version__}, {torch.get_num_threads()} threads, {why}, fp32 2048^2 "
               f"products at {square_rate():.0f} GFLOP/s, bf16 at {square_rate(dtype=torch.bfloat16):.0f} GFLOP/s")
    rows = []
    for task, name, path in task_models(args.only.split(","), args.quick, "mmkit-floor-"):
        for dtype in dtypes:
            print(f"{task} {dtype} ...", flush=True)
            rows.append(task_row(task, name, path, dtype, images, texts.get(task), args.repeats, modes))
            clear_cache()
            report(rows[-1:], machine)  # each row as it comes, and the file so far: a long run stopped keeps them
            Path(args.out).write_text(json.dumps({"machine": machine, "results": rows}, indent=2, default=str))
    report(rows, machine)
    Path(args.out).write_text(json.dumps({"machine": machine, "results": rows}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
