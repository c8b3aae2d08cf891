"""Throughput of mmkit's task functions against two baselines, measured in one run.

Baselines, for the same model, images and decoding settings:
  pipeline: the transformers pipeline for the task ("image-text-to-text" for captioning,
            "zero-shot-image-classification" for zero-shot), given the whole batch.
  naive:    the pattern of loading the model and processor inside every call, one image per call.
For zero-shot, also mmkit's matrix products replayed alone (floor.py): the most that work on anything but
those products could bring. And for zero-shot over many labels: label-embedding caching (mmkit's default)
against re-encoding the labels on every call, one image per call as an interactive panel does. And for an
image with many texts (ITM scores against 16 captions, 8 questions): mmkit against the BLIP class's own forward
or generate on the same rows; 16 sampled captions of one image: mmkit against `generate(...,
num_return_sequences=16)`, which encodes the image once. Every row compares the outputs of mmkit and its
baselines from the same timed run (agree(): the same captions and answers, probabilities within 1e-4), and
a row whose outputs differ is flagged DIFFERS in the tables. The matrix-product floors and the compiled
baselines of each task are in floor.py (floor_table.py).

Models: the bundled shapes-blip-caption / shapes-clip / shapes-blip-itm / shapes-blip-vqa, and real-size
random-init BLIP-base (captioning, ITM, VQA) / CLIP ViT-B/32 (the architectures of
Salesforce/blip-image-captioning-base, blip-itm-base-coco, blip-vqa-base and openai/clip-vit-base-patch32).

    python benchmarks/tasks.py            # full run, writes benchmarks/tasks_results.json
    python benchmarks/tasks.py --quick    # small batches, for a smoke run
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
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

import torch  # noqa: E402
from transformers import pipeline  # noqa: E402
from transformers.utils import logging as hf_logging  # noqa: E402

import mmkit  # noqa: E402
from mmkit.data import ShapesWorld  # noqa: E402
from mmkit.models import clear_cache  # noqa: E402
from mmkit.testing import random_model_dir  # noqa: E402
from mmkit.train.contrastive import LABELS  # noqa: E402
from floor import matmul_floor, square_rate  # noqa: E402  (benchmarks/floor.py)
from timing import keeping, timed, timed_rounds, timed_together  # noqa: E402  (benchmarks/timing.py)

hf_logging.set_verbosity_error()
MIN_ROUND_S = 0.5  # a call shorter than this (the bundled models: ~40 ms) is repeated to fill each timed round


def agree(a, b, tol: float = 1e-4) -> str:
    """"same" when two outputs agree (strings equal after whitespace is normalised; numbers within tol; dicts
    of label -> probability by label), else "DIFFERS: what"."""
    if isinstance(a, str) or (isinstance(a, list) and a and isinstance(a[0], str)):
        a, b = ([a], [b]) if isinstance(a, str) else (a, b)
        norm = [(" ".join(x.split()), " ".join(y.split())) for x, y in zip(a, b)]
        bad = [(x, y) for x, y in norm if x != y]
        return "same" if not bad and len(a) == len(b) else f"DIFFERS: {len(bad)}/{len(a)}" + (
            f" ({bad[0][0]!r} vs {bad[0][1]!r})" if bad else "")
    if isinstance(a, list) and a and isinstance(a[0], dict):
        a = [[d[k] for k in sorted(d)] for d in a]
        b = [[d[k] for k in sorted(d)] for d in b]
    gap = float((torch.as_tensor(a, dtype=torch.float64) - torch.as_tensor(b, dtype=torch.float64)).abs().max())
    return "same" if gap <= tol else f"DIFFERS: max |diff| {gap:.1e}"


def bench_caption(name: str, path: str, images, tokens: int, naive_n: int, repeats: int = 2) -> dict:
    n = len(images)
    m = mmkit.load_model(path)
    kw = dict(max_new_tokens=tokens, min_new_tokens=tokens)  # every method generates exactly `tokens` tokens
    pipe = pipeline("image-text-to-text", model=path, dtype=torch.float32)
    out = {}
    t = timed_rounds(keeping({"mmkit": lambda: mmkit.caption(m, images, batch_size=n, **kw),
                              "pipeline": lambda: [o[0]["generated_text"] if isinstance(o, list) else o["generated_text"]
                                                   for o in pipe(images=images, text=[""] * n, batch_size=n,
                                                                 generate_kwargs=kw)]}, out),
                     repeats, min_round_s=MIN_ROUND_S)

    def naive():
        for im in images[:naive_n]:
            from transformers import AutoProcessor, BlipForConditionalGeneration

            model = BlipForConditionalGeneration.from_pretrained(path).eval()
            proc = AutoProcessor.from_pretrained(path)
            with torch.inference_mode():
                model.generate(**proc(images=im, return_tensors="pt"), **kw)

    t_naive = timed(naive, repeats=1) * n / naive_n
    return {**row("caption", name, n, t, t_naive), "agree": agree(out["mmkit"], out["pipeline"])}


def bench_zero_shot(name: str, path: str, images, labels, naive_n: int, repeats: int = 2) -> dict:
    n = len(images)
    m = mmkit.load_model(path)
    m.cache.clear()
    pipe = pipeline("zero-shot-image-classification", model=path, dtype=torch.float32)

    def ours():
        return mmkit.zero_shot(m, images, labels, templates=["a {}"], batch_size=n)

    ours()  # the label embeddings are cached from here on, as in every timed call
    floor, gflop = matmul_floor(ours, m.model)  # mmkit's matrix products alone (floor.py)
    out = {}
    t = timed_rounds(keeping({
        "mmkit": ours,
        "pipeline": lambda: [{d["label"]: d["score"] for d in o} for o in pipe(
            images, candidate_labels=labels, hypothesis_template="a {}", batch_size=n)],
        "floor": floor}, out), repeats, min_round_s=MIN_ROUND_S)

    def naive():
        for im in images[:naive_n]:
            from transformers import AutoProcessor, CLIPModel

            model = CLIPModel.from_pretrained(path).eval()
            proc = AutoProcessor.from_pretrained(path)
            with torch.inference_mode():
                model(**proc(images=im, text=[f"a {lab}" for lab in labels], return_tensors="pt", padding=True))

    t_naive = timed(naive, repeats=1) * n / naive_n
    t_floor = statistics.median(t["floor"])
    return {**row("zero_shot", name, n, t, t_naive), "floor_img_s": n / t_floor, "floor_gflop_s": gflop / t_floor,
            "vs_pipeline_at_most": statistics.median(t["pipeline"]) / t_floor,
            "of_floor": t_floor / statistics.median(t["mmkit"]), "agree": agree(out["mmkit"], out["pipeline"])}


def bench_label_cache(name: str, path: str, images, n_labels: int, repeats: int = 2) -> dict:
    """Zero-shot one image per call over n_labels labels: cached label embeddings vs re-encoding them."""
    m = mmkit.load_model(path)
    labels = [f"label number {i}" for i in range(n_labels)]

    def cached():
        for im in images:
            mmkit.zero_shot(m, im, labels)

    def recompute():
        for im in images:
            m.cache.clear()
            mmkit.zero_shot(m, im, labels)

    t = timed_together({"cached": cached, "recompute": recompute}, repeats, min_round_s=MIN_ROUND_S)
    return {"task": f"zero_shot x{n_labels} labels, 1 image/call", "model": name, "images": len(images),
            "cached_img_s": len(images) / t["cached"], "recompute_img_s": len(images) / t["recompute"],
            "speedup": t["recompute"] / t["cached"]}


def bench_many_texts(task: str, name: str, path: str, images, texts, repeats: int = 2) -> dict:
    """An image with many texts: mmkit against the model class's own forward or generate (transformers' code, a
    fresh instance) on the same rows in batches of 32, which encodes the image again for every row.

    task: "match" (BLIP-ITM P(match), every image x every text), "answer" (BLIP-VQA, one question per row) or
    "caption" (sampled captions of one image, the texts only count the samples; the baseline is one
    generate(..., num_return_sequences=16) call, seeded as mmkit.caption is, so the samples are the same)."""
    from transformers import (AutoProcessor, BlipForConditionalGeneration, BlipForImageTextRetrieval,
                              BlipForQuestionAnswering)

    m = mmkit.load_model(path)
    cls = {"match": BlipForImageTextRetrieval, "answer": BlipForQuestionAnswering,
           "caption": BlipForConditionalGeneration}[task]
    model, proc = cls.from_pretrained(path).eval(), AutoProcessor.from_pretrained(path)
    rows = [(i, j) for i in range(len(images)) for j in range(len(texts))]
    kw = dict(max_new_tokens=10, min_new_tokens=10, do_sample=True)  # sampled captions of exactly 10 tokens
    run = {"match": lambda: mmkit.match(m, images, texts),
           "answer": lambda: mmkit.answer(m, [images[i] for i, _ in rows], [texts[j] for _, j in rows]),
           "caption": lambda: mmkit.caption(m, [images[i] for i, _ in rows], **kw)}[task]

    def transformers_code():
        got = []
        with torch.inference_mode():
            if task == "caption":  # one image, generate's own way to draw many samples: the image encoded once
                torch.manual_seed(0)  # mmkit.caption's default seed: the same samples
                ids = model.generate(**proc(images=images[0], return_tensors="pt"), **kw,
                                     num_return_sequences=len(rows))
                return proc.batch_decode(ids, skip_special_tokens=True)
            for s in range(0, len(rows), 32):
                ims = [images[i] for i, _ in rows[s:s + 32]]
                enc = proc(images=ims, text=[texts[j] for _, j in rows[s:s + 32]], padding=True, return_tensors="pt")
                if task == "match":
                    got += model(**enc, use_itm_head=True).itm_score.softmax(-1)[:, 1].tolist()
                else:
                    got += proc.batch_decode(model.generate(**enc, max_new_tokens=10), skip_special_tokens=True)
        return got

    out = {}
    t = timed_together(keeping({"mmkit": run, "transformers": transformers_code}, out), repeats,
                       min_round_s=MIN_ROUND_S)
    ours = out["mmkit"]
    if task == "match":  # (images, texts) -> the rows' order
        ours = [float(ours[i][j]) for i, j in rows]
    what = {"match": "texts", "answer": "questions", "caption": "samples"}[task]
    return {"task": f"{task}, {len(images)} image{'s' * (len(images) > 1)} x {len(texts)} {what}", "model": name,
            "rows": len(rows), "mmkit_rows_s": len(rows) / t["mmkit"],
            "transformers_rows_s": len(rows) / t["transformers"], "vs_transformers": t["transformers"] / t["mmkit"],
            "baseline": "generate(num_return_sequences)" if task == "caption" else "the class, 32 rows a call",
            "agree": agree(ours, out["transformers"])}


def bench_bf16(task: str, name: str, path: str, images, labels, repeats: int = 2) -> dict:
    """bfloat16 on the CPU: mmkit in bf16 against the pipeline in fp32 (its default) and in bf16, plus agreement."""
    n = len(images)
    m32 = mmkit.load_model(path, dtype="fp32")
    m16 = mmkit.load_model(path, dtype="bf16")
    if task == "caption":
        kw = dict(max_new_tokens=10, min_new_tokens=10)
        run = lambda m: mmkit.caption(m, images, batch_size=n, **kw)  # noqa: E731
        pipe_task, pipe_kw = "image-text-to-text", dict(text=[""] * n, batch_size=n, generate_kwargs=kw)
        agree = lambda a, b: sum(x == y for x, y in zip(a, b)) / n  # noqa: E731  identical captions
    else:
        run = lambda m: mmkit.zero_shot(m, images, labels, templates=["a {}"], batch_size=n)  # noqa: E731
        pipe_task, pipe_kw = "zero-shot-image-classification", dict(candidate_labels=labels, hypothesis_template="a {}",
                                                                    batch_size=n)
        agree = lambda a, b: sum(max(x, key=x.get) == max(y, key=y.get) for x, y in zip(a, b)) / n  # noqa: E731
    same = agree(run(m32), run(m16))
    fns = {"mmkit_fp32": lambda: run(m32), "mmkit_bf16": lambda: run(m16)}
    for dt, key in ((torch.float32, "pipeline_fp32"), (torch.bfloat16, "pipeline_bf16")):
        pipe = pipeline(pipe_task, model=path, dtype=dt)
        fns[key] = ((lambda p=pipe: p(images=images, **pipe_kw)) if task == "caption"
                    else (lambda p=pipe: p(images, **pipe_kw)))
    t = timed_together(fns, repeats, min_round_s=MIN_ROUND_S)
    return {"task": task, "model": name, "images": n, **{f"{k}_img_s": n / v for k, v in t.items()},
            "bf16_vs_fp32": t["mmkit_fp32"] / t["mmkit_bf16"],
            "bf16_vs_pipeline_fp32": t["pipeline_fp32"] / t["mmkit_bf16"],
            "bf16_vs_pipeline_bf16": t["pipeline_bf16"] / t["mmkit_bf16"], "agreement": same}


def row(task, model, n, rounds: dict, t_naive) -> dict:
    """One table row from the interleaved rounds of mmkit and the pipeline (timed_rounds) and the naive time."""
    t_mmkit, t_pipe = statistics.median(rounds["mmkit"]), statistics.median(rounds["pipeline"])
    per_round = [p / m for m, p in zip(rounds["mmkit"], rounds["pipeline"])]  # each round's ratio: its spread
    return {"task": task, "model": model, "images": n, "mmkit_img_s": n / t_mmkit, "pipeline_img_s": n / t_pipe,
            "naive_img_s": n / t_naive, "vs_pipeline": t_pipe / t_mmkit, "vs_pipeline_rounds": per_round,
            "vs_naive": t_naive / t_mmkit}


def report(results: list, heading: str) -> None:
    """The results as markdown tables, one per kind of comparison."""
    print(f"\n{heading}")
    table(results, "vs_pipeline", ["task", "model", "images", "mmkit img/s", "pipeline img/s", "naive img/s",
                                   "x pipeline", "x pipeline per round", "x naive", "x of floor", "outputs"],
          lambda r: [r["task"], r["model"], r["images"], f"{r['mmkit_img_s']:.1f}", f"{r['pipeline_img_s']:.1f}",
                     f"{r['naive_img_s']:.2f}", f"{r['vs_pipeline']:.2f}",
                     "-".join(f"{x:.2f}" for x in sorted({min(r["vs_pipeline_rounds"]), max(r["vs_pipeline_rounds"])})),
                     f"{r['vs_naive']:.1f}", f"{r['of_floor']:.2f}" if "of_floor" in r else "floor.py",
                     r.get("agree", "-")])
    if any("vs_pipeline_at_most" in r for r in results):
        print("\nmmkit's matrix products alone (benchmarks/floor.py), as if everything else in its call were free:")
    table(results, "vs_pipeline_at_most", ["task", "model", "images", "mmkit img/s", "its products alone img/s",
                                           "their GFLOP/s", "x pipeline", "x pipeline at most"],
          lambda r: [r["task"], r["model"], r["images"], f"{r['mmkit_img_s']:.1f}", f"{r['floor_img_s']:.1f}",
                     f"{r['floor_gflop_s']:.0f}", f"{r['vs_pipeline']:.2f}", f"{r['vs_pipeline_at_most']:.2f}"])
    table(results, "speedup", ["task", "model", "images", "cached img/s", "re-encoding img/s", "speed-up"],
          lambda r: [r["task"], r["model"], r["images"], f"{r['cached_img_s']:.1f}", f"{r['recompute_img_s']:.1f}",
                     f"{r['speedup']:.1f}"])
    table(results, "vs_transformers", ["task", "model", "rows", "mmkit rows/s", "transformers rows/s", "baseline",
                                       "x transformers", "outputs"],
          lambda r: [r["task"], r["model"], r["rows"], f"{r['mmkit_rows_s']:.1f}", f"{r['transformers_rows_s']:.1f}",
                     r.get("baseline", "-"), f"{r['vs_transformers']:.2f}", r.get("agree", "-")])
    if any("agreement" in r for r in results):
        print(f"\nbfloat16 on this CPU (native bf16 instructions: {mmkit.config.cpu_has_bf16()}):")
    table(results, "agreement", ["task", "model", "images", "mmkit fp32 img/s", "mmkit bf16 img/s",
                                 "pipeline fp32 img/s", "pipeline bf16 img/s", "bf16 x fp32", "bf16 x pipeline fp32",
                                 "bf16 x pipeline bf16", "same result as fp32"],
          lambda r: [r["task"], r["model"], r["images"], *(f"{r[k]:.1f}" for k in (
              "mmkit_fp32_img_s", "mmkit_bf16_img_s", "pipeline_fp32_img_s", "pipeline_bf16_img_s")),
              *(f"{r[k]:.2f}" for k in ("bf16_vs_fp32", "bf16_vs_pipeline_fp32", "bf16_vs_pipeline_bf16")),
              f"{r['agreement']:.0%}"])


def table(results: list, key: str, columns: list, cells) -> None:
    """Print the results that have `key` as a markdown table (nothing when there are none)."""
    rows = [r for r in results if key in r]
    if rows:
        print("\n| " + " | ".join(columns) + " |\n|" + "---|" * len(columns))
        for r in rows:
            print("| " + " | ".join(str(c) for c in cells(r)) + " |")


def _row_key(r: dict) -> tuple:
    """Which table and row a result belongs to."""
    table = next(k for k in ("agreement", "speedup", "vs_pipeline", "vs_transformers") if k in r)
    return table, r["task"], r["model"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="8 images instead of 32")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--only-bf16", action="store_true", help="run only the bf16 table (real-size models)")
    ap.add_argument("--no-bf16", action="store_true", help="skip the bf16 table")
    ap.add_argument("--repeats", type=int, default=2, help="timed rounds per comparison (median kept; default 2)")
    ap.add_argument("--only", metavar="TEXT", help="only the models whose name contains TEXT, e.g. blip-base")
    ap.add_argument("--out", default=str(Path(__file__).with_name("tasks_results.json")))
    args = ap.parse_args(argv)
    n = 8 if args.quick else args.batch
    images = ShapesWorld(n, seed=0, split="test").images
    tmp = Path(tempfile.mkdtemp(prefix="mmkit-bench-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)  # the random-init models take ~1.5 GB
    clear_cache()
    results = []

    def keep(name):  # --only
        return not args.only or args.only in name

    models, real = {"caption": [], "zero_shot": []}, {}  # task -> [(name, path)]; task -> the real-size one
    for bundled, fam in (("shapes-blip-caption", "caption"), ("shapes-clip", "zero_shot")):
        if not keep(bundled):
            continue
        path = mmkit.config.models_dir() / bundled
        if (path / "config.json").exists():
            models[fam].append((bundled, str(path)))
        else:
            print(f"(skipping {bundled}: not built)")
    for task, name, family in (("caption", "blip-base (random init)", "blip-caption"),
                               ("zero_shot", "clip-b32 (random init)", "clip")):
        if keep(name):  # each takes ~20 s to build and ~0.8 GB
            real[task] = (name, str(random_model_dir(family, "base", tmp / family)))
            models[task].append(real[task])
    many = []  # (task, name, path, images, texts): an image with many texts
    many_texts = {"match": [sc.caption for sc in ShapesWorld(16, seed=1, split="test")],  # 16 candidate captions
                  "answer": [q.question for sc in ShapesWorld(2, seed=1, split="test") for q in sc.qa][:8],
                  "caption": [""] * 16}  # 16 sampled captions
    for task, bundled, family, name in (() if args.only_bf16 else (
            ("match", "shapes-blip-itm", "blip-itm", "blip-itm-base"),
            ("answer", "shapes-blip-vqa", "blip-vqa", "blip-vqa-base"),
            ("caption", "shapes-blip-caption", "blip-caption", "blip-base"))):
        ims, path = images[:8] if task == "match" else images[:1], mmkit.config.models_dir() / bundled
        if keep(f"{bundled} ({task})") and (path / "config.json").exists():
            many.append((task, bundled, str(path), ims, many_texts[task]))
        if keep(f"{name} (random init) ({task})"):
            path = real["caption"][1] if task == "caption" and "caption" in real else \
                str(random_model_dir(family, "base", tmp / family))
            many.append((task, f"{name} (random init)", path, images[:1], many_texts[task]))
    reps = args.repeats

    for name, path in ([] if args.only_bf16 else models["caption"]):
        print(f"caption: {name} ...", flush=True)
        results.append(bench_caption(name, path, images, tokens=10, naive_n=2 if args.quick else 4, repeats=reps))
    for name, path in ([] if args.only_bf16 else models["zero_shot"]):
        print(f"zero_shot: {name} ...", flush=True)
        results.append(bench_zero_shot(name, path, images, LABELS, naive_n=2 if args.quick else 4, repeats=reps))
    for name, path in ([] if args.only_bf16 else models["zero_shot"]):
        print(f"label cache: {name} ...", flush=True)
        results.append(bench_label_cache(name, path, images[: min(n, 16)], 100, repeats=reps))
    for task, name, path, ims, texts in many:
        print(f"{task}, one image with many texts: {name} ...", flush=True)
        results.append(bench_many_texts(task, name, path, ims, texts, repeats=reps))
    if not args.no_bf16:
        for task, (name, path) in real.items():
            print(f"bf16: {task} {name} ...", flush=True)
            results.append(bench_bf16(task, name, path, images, LABELS, repeats=reps))

    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, " \
              f"{torch.get_num_threads()} threads, fp32 products of 2048 x 2048 matrices at {square_rate():.0f} GFLOP/s"
    report(results, f"machine: {machine}; {reps} timed rounds per comparison")
    out = Path(args.out)
    if (args.only_bf16 or args.only) and out.exists():  # a partial run: keep the other rows of the last run
        new = {_row_key(r) for r in results}
        results = [r for r in json.loads(out.read_text())["results"] if _row_key(r) not in new] + results
    Path(args.out).write_text(json.dumps({"machine": machine, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
