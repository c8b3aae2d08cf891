"""GPU throughput and half-precision checks, measured in one run on one GPU.

1. Speed (interleaved rounds, --repeats, medians; each row compares mmkit's outputs with the pipeline's from the
   same timed calls, and gives the share of the device's dense peak FLOP/s that mmkit's matrix products reach:
   the target for BLIP-base bf16 captioning at batch 32 is >= 10%): images/s of mmkit's `caption` (real-size BLIP-base) and `zero_shot` (real-size CLIP ViT-B/32),
   random weights, in fp32, fp16 and bf16 at batch sizes 1-128, against the transformers pipeline for the
   same task, model, dtype, batch size and decoding (greedy, exactly 10 new tokens; 9 labels, template "a {}").
   mmkit is timed twice: as shipped (images resized and normalised on the GPU when transformers' torchvision
   image processor is installed) and with that turned off (inputs.PREPROCESS_ON_DEVICE = False), so the table
   shows what the on-GPU preprocessing gains.
2. Half precision on trained weights: the bundled models' held-out scores on this GPU in fp32 and in the
   dtype load_model picks by default here, and how often the two give the same output.
3. Preprocessing on the GPU: the largest difference between pixel values made on the CPU and on the GPU.

    python benchmarks/gpu.py                 # writes benchmarks/gpu_results.json
    python benchmarks/gpu.py --quick         # batch sizes 1 and 32, small samples: a smoke run
    python benchmarks/gpu.py --device cpu --quick --size tiny   # check the script on a machine without a GPU

Only a full run on a CUDA GPU (no --quick, --size base, all dtypes, nothing skipped) writes the committed
benchmarks/gpu_results.json; any other run (a smoke run, a CPU check) writes build/benchmarks/gpu_results.json
(git-ignored) unless --out names a file.
"""
from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import pipeline  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

import mmkit  # noqa: E402
from mmkit.tasks import inputs  # noqa: E402
from mmkit.data import ShapesWorld, sample_images  # noqa: E402
from mmkit.models import clear_cache  # noqa: E402
from mmkit.testing import random_model_dir  # noqa: E402
from mmkit.train.contrastive import LABELS  # noqa: E402  the 9 colour x shape labels
from floor import matmul_floor  # noqa: E402  (benchmarks/floor.py)
from timing import keeping, timed_together  # noqa: E402  (benchmarks/timing.py)

hf_logging.set_verbosity_error()

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
TOKENS = dict(max_new_tokens=10, min_new_tokens=10)  # every method generates exactly 10 tokens


COMMITTED = Path(__file__).with_name("gpu_results.json")  # the committed numbers: only a full CUDA run writes them
SCRATCH = Path(__file__).resolve().parents[1] / "build" / "benchmarks"  # git-ignored: any other run's results
ALL_DTYPES = "fp32,fp16,bf16"


def default_out(args, device) -> Path:
    """Where results go without --out: the committed file for a full run on a CUDA GPU, else the scratch folder
    (so a --quick or CPU check never overwrites the measured numbers)."""
    full = (device.type == "cuda" and not args.quick and args.size == "base" and args.dtypes == ALL_DTYPES
            and not (args.skip_speed or args.skip_agreement or args.skip_preprocess))
    return COMMITTED if full else SCRATCH / COMMITTED.name


# dense tensor-core peaks of one H100 SXM (NVIDIA's data sheet, without sparsity), TFLOP/s; --peak-tflops overrides
PEAK_TFLOPS = {"fp32": 67.0, "fp16": 989.0, "bf16": 989.0}


def pipeline_outputs(task: str, out):
    """The pipeline's outputs as mmkit gives them: captions, or {label: probability} per image."""
    if task == "caption":
        return [(o[0] if isinstance(o, list) else o)["generated_text"] for o in out]
    return [{d["label"]: d["score"] for d in o} for o in out]


def outputs_agree(task: str, dtype: str, ours, theirs) -> str:
    """"same" or "DIFFERS: ..." (captions equal after whitespace; probabilities within 1e-4 in fp32, 2e-2 in half
    precision, and the same top label)."""
    if task == "caption":
        bad = sum(" ".join(a.split()) != " ".join(b.split()) for a, b in zip(ours, theirs))
        return "same" if not bad and len(ours) == len(theirs) else f"DIFFERS: {bad}/{len(ours)} captions"
    tol = 1e-4 if dtype == "fp32" else 2e-2
    gap = max(abs(a[k] - b[k]) for a, b in zip(ours, theirs) for k in a)
    top = all(max(a, key=a.get) == max(b, key=b.get) for a, b in zip(ours, theirs))
    return "same" if gap <= tol and top else f"DIFFERS: max |diff| {gap:.1e}" + ("" if top else ", top label")


def speed_rows(task: str, name: str, path: str, images_all, batches, dtypes, device, repeats: int = 3) -> list[dict]:
    rows = []
    for dname in dtypes:
        dt = DTYPES[dname]
        m = mmkit.load_model(path, device=device, dtype=dt)
        if task == "caption":
            pipe = pipeline("image-text-to-text", model=path, dtype=dt, device=device)
        else:
            pipe = pipeline("zero-shot-image-classification", model=path, dtype=dt, device=device)
        for b in batches:
            images = images_all[: max(b, min(32, len(images_all)))]  # 32 images at small batch sizes, else one batch
            n = len(images)
            if task == "caption":
                run_mmkit = lambda: mmkit.caption(m, images, batch_size=b, **TOKENS)  # noqa: E731
                # a stream of {"images", "text"} items: the form the pipeline batches by batch_size (given lists of
                # images and texts it runs them all as one batch whatever batch_size says)
                run_pipe = lambda: list(pipe(({"images": im, "text": ""} for im in images), batch_size=b,  # noqa: E731
                                             generate_kwargs=TOKENS))
            else:
                run_mmkit = lambda: mmkit.zero_shot(m, images, LABELS, templates=["a {}"], batch_size=b)  # noqa: E731
                run_pipe = lambda: pipe(images, candidate_labels=LABELS, hypothesis_template="a {}",  # noqa: E731
                                        batch_size=b)

            def run_cpu_preprocess():
                inputs.PREPROCESS_ON_DEVICE = False
                try:
                    return run_mmkit()
                finally:
                    inputs.PREPROCESS_ON_DEVICE = True

            _, gflop = matmul_floor(run_mmkit, m.model)  # the call's dense products (floor.py), for % of peak
            out = {}
            t = timed_together(keeping({"mmkit": run_mmkit, "cpu_pre": run_cpu_preprocess, "pipeline": run_pipe}, out),
                               repeats=repeats, device=device)
            t_mmkit, t_cpu_pre, t_pipe = t["mmkit"], t["cpu_pre"], t["pipeline"]
            peak = PEAK_TFLOPS.get(dname)
            rows.append({"task": task, "model": name, "dtype": dname, "batch": b, "images": n,
                         "mmkit_img_s": n / t_mmkit, "mmkit_cpu_preprocess_img_s": n / t_cpu_pre,
                         "pipeline_img_s": n / t_pipe, "vs_pipeline": t_pipe / t_mmkit,
                         "preprocess_gain": t_cpu_pre / t_mmkit, "gflop": gflop,
                         "of_peak": gflop / t_mmkit / 1e3 / peak if peak else None,
                         "agree": outputs_agree(task, dname, out["mmkit"], pipeline_outputs(task, out["pipeline"])),
                         "agree_cpu_pre": outputs_agree(task, dname, out["mmkit"], out["cpu_pre"])})
            r = rows[-1]
            print(f"  {task} {dname} batch {b}: mmkit {r['mmkit_img_s']:.1f} img/s "
                  f"(CPU preprocessing {r['mmkit_cpu_preprocess_img_s']:.1f}), pipeline {r['pipeline_img_s']:.1f}, "
                  f"x{r['vs_pipeline']:.2f}, outputs {r['agree']}", flush=True)
        m = pipe = None  # free them before the next dtype loads
        clear_cache()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def agreement_rows(device, n_scenes: int) -> list[dict]:
    """Bundled models' held-out scores on `device` in fp32 and in load_model's default dtype there."""
    default = mmkit.config.get_dtype(device)
    names = {v: k for k, v in DTYPES.items()}
    zs = ShapesWorld(n_scenes, seed=1, objects=1, split="test")
    scenes = ShapesWorld(n_scenes, seed=1, split="test")
    pairs = [(s, q) for s in scenes for q in s.qa][: 4 * n_scenes]

    def caption(m):
        out = mmkit.caption(m, [s.image for s in scenes], batch_size=64)
        return out, sum(o == s.caption for o, s in zip(out, scenes)) / len(scenes)

    def answers(m):
        out = mmkit.answer(m, [s.image for s, _ in pairs], [q.question for _, q in pairs])
        return out, sum(o == q.answer for o, (_, q) in zip(out, pairs)) / len(pairs)

    def zero_shot(m):
        probs = mmkit.zero_shot(m, [s.image for s in zs], LABELS)
        out = [max(p, key=p.get) for p in probs]
        truth = [f"{s.objects[0].color} {s.objects[0].shape}" for s in zs]
        return out, sum(o == t for o, t in zip(out, truth)) / len(zs)

    def itm(m):
        images = [s.image for s in scenes]
        pos = mmkit.match(m, images, [s.caption for s in scenes], paired=True)
        neg = mmkit.match(m, images, [s.negative for s in scenes], paired=True)
        out = [bool(p > n) for p, n in zip(pos, neg)]  # the true caption scores above its swapped negative
        return out, sum(out) / len(out)

    checks = [("shapes-blip-caption", "exact match", caption, len(scenes)),
              ("shapes-blip-vqa", "VQA accuracy", answers, len(pairs)),
              ("shapes-vilt-vqa", "VQA accuracy", answers, len(pairs)),
              ("shapes-blip-itm", "pair accuracy (caption > swapped)", itm, len(scenes)),
              ("shapes-clip", "9-way zero-shot", zero_shot, len(zs)),
              ("shapes-align", "9-way zero-shot", zero_shot, len(zs))]
    rows = []
    for name, metric, fn, n in checks:
        out32, s32 = fn(mmkit.load_model(name, device=device, dtype="fp32"))
        outd, sd = fn(mmkit.load_model(name, device=device))
        same = sum(a == b for a, b in zip(out32, outd)) / len(out32)
        rows.append({"model": name, "metric": metric, "n": n, "default_dtype": names.get(default, str(default)),
                     "fp32": s32, "default": sd, "same_output": same})
        print(f"  {name}: {metric} fp32 {s32:.3f}, {rows[-1]['default_dtype']} {sd:.3f}, same output {same:.1%}",
              flush=True)
        clear_cache()
    return rows


def preprocess_rows(device) -> list[dict]:
    """Largest difference between pixel values resized and normalised on the CPU and on `device`, per bundled model
    and image set: 64x64 ShapesWorld scenes (upsampled) and the sample photos (various sizes, mostly downsampled)."""
    sets = {"ShapesWorld": ShapesWorld(32, seed=0, split="test").images,
            "sample photos": list(sample_images().values())}
    rows = []
    for name in ("shapes-blip-caption", "shapes-vilt-vqa", "shapes-clip", "shapes-align"):
        m = mmkit.load_model(name, device=device, dtype="fp32")
        kw = inputs._on_device_preprocessing(m)
        ip = m.processor.image_processor
        for what, images in sets.items():
            cpu = ip(images=images, return_tensors="pt")["pixel_values"]
            dev = ip(images=images, return_tensors="pt", **kw)["pixel_values"]
            rows.append({"model": name, "images": what, "processor": type(ip).__name__, "on_device": str(dev.device),
                         "max_abs_diff": float((cpu - dev.cpu()).abs().max()),
                         "pixel_range": float(cpu.max() - cpu.min())})
            print(f"  {name}, {what}: pixels on {dev.device} vs CPU, max |difference| {rows[-1]['max_abs_diff']:.2e}",
                  flush=True)
    clear_cache()
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="batch sizes 1 and 32, small samples")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtypes", default=ALL_DTYPES)
    ap.add_argument("--size", default="base", choices=["base", "tiny"], help="tiny: toy models, to check the script")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-agreement", action="store_true")
    ap.add_argument("--skip-preprocess", action="store_true")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved timed rounds per row (median kept)")
    ap.add_argument("--peak-tflops", help="dtype=TFLOP/s,... the device's dense peak (default: one H100 SXM's)")
    ap.add_argument("--out", default=None, help="results file (default: benchmarks/gpu_results.json for a full "
                    "CUDA run, else build/benchmarks/gpu_results.json)")
    args = ap.parse_args(argv)
    for item in filter(None, (args.peak_tflops or "").split(",")):
        k, v = item.split("=")
        PEAK_TFLOPS[k] = float(v)
    device = mmkit.config.get_device(args.device)
    out = Path(args.out) if args.out else default_out(args, device)
    batches = [1, 32] if args.quick else [1, 4, 16, 32, 64, 128]
    dtypes = args.dtypes.split(",")
    images = ShapesWorld(max(batches), seed=0, split="test").images
    tmp = Path(tempfile.mkdtemp(prefix="mmkit-gpu-bench-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)  # the random-init models take ~1.5 GB
    ip = mmkit.load_model("shapes-clip", device=device).processor.image_processor
    clear_cache()
    machine = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
               "torch": torch.__version__, "transformers": transformers.__version__,
               "cpu_threads": torch.get_num_threads(), "image_processor": type(ip).__name__,
               "default_dtype": str(mmkit.config.get_dtype(device))}
    print(machine, flush=True)
    t0 = time.perf_counter()
    results = {"machine": machine, "speed": [], "agreement": [], "preprocess": []}
    if not args.skip_speed:
        blip = str(random_model_dir("blip-caption", args.size, tmp / "blip"))
        clip = str(random_model_dir("clip", args.size, tmp / "clip"))
        names = ("blip-base", "clip-b32") if args.size == "base" else ("blip-tiny", "clip-tiny")
        results["speed"] += speed_rows("caption", f"{names[0]} (random init)", blip, images, batches, dtypes, device,
                                       args.repeats)
        results["speed"] += speed_rows("zero_shot", f"{names[1]} (random init)", clip, images, batches, dtypes, device,
                                       args.repeats)
    if not args.skip_agreement:
        results["agreement"] = agreement_rows(device, 40 if args.quick else 300)
    if not args.skip_preprocess:
        results["preprocess"] = preprocess_rows(device)
    results["seconds"] = time.perf_counter() - t0

    print(f"\n{machine}\n")
    if results["speed"]:
        print("| task | model | dtype | batch | images | mmkit img/s | mmkit, CPU preprocessing img/s | pipeline img/s "
              "| x pipeline | on-GPU preprocessing gain | % of peak FLOP/s | outputs vs pipeline |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in results["speed"]:
            peak = f"{100 * r['of_peak']:.1f}%" if r["of_peak"] is not None and device.type == "cuda" else "-"
            print(f"| {r['task']} | {r['model']} | {r['dtype']} | {r['batch']} | {r['images']} | {r['mmkit_img_s']:.1f} "
                  f"| {r['mmkit_cpu_preprocess_img_s']:.1f} | {r['pipeline_img_s']:.1f} | {r['vs_pipeline']:.2f} "
                  f"| {r['preprocess_gain']:.2f} | {peak} | {r['agree']} |")
    if results["agreement"]:
        print("\n| model | metric | n | fp32 | default dtype | default | same output as fp32 |")
        print("|---|---|---|---|---|---|---|")
        for r in results["agreement"]:
            print(f"| {r['model']} | {r['metric']} | {r['n']} | {r['fp32']:.3f} | {r['default_dtype']} "
                  f"| {r['default']:.3f} | {r['same_output']:.1%} |")
    if results["preprocess"]:
        print("\n| model | images | image processor | preprocessed on | max abs difference from CPU | pixel value range |")
        print("|---|---|---|---|---|---|")
        for r in results["preprocess"]:
            print(f"| {r['model']} | {r['images']} | {r['processor']} | {r['on_device']} | {r['max_abs_diff']:.2e} "
                  f"| {r['pixel_range']:.2f} |")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"\n{results['seconds']:.0f} s; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
