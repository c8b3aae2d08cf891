"""Collection benchmark: caption / embed a folder of real-photo JPEGs, mmkit.jobs against a DataLoader baseline.

The folder (build/collection_photos/, made once and reused): the sample photos of mmkit.data.samples, re-encoded
as JPEGs at several sizes and random crops, up to 12 MP (4000 x 3000), --n files in all.

Runs, alternated round by round (other programs share the CPU; the load average is recorded):
- baseline: a torch DataLoader with --workers worker processes that open each file with PIL, convert it to RGB
  and run the model's own processor (resize, normalise) in the workers; the main process runs the model
  (generate for captions, get_image_features for embeddings) and writes JSON lines. This is what transformers'
  pipeline does for a dataset (its image-to-text pipeline wants a text prompt in transformers 5.25).
- before: mmkit.jobs.run with draft=False and workers=0 (full decode in the main thread, as mmkit did).
- after: mmkit.jobs.run with JPEG draft decoding and --workers decoding threads (the default).
The time split (decode, preprocess, model, write) is measured per image on a sample, full vs draft decode.

    python benchmarks/collection.py [--n 2000] [--rounds 2] [--workers 2] [--tasks caption,embed]
        [--variants baseline,before,after] [--threads 1]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SIZES = [(320, 240), (640, 480), (1024, 768), (2048, 1536), (4000, 3000)]  # up to 12 MP
MODELS = {"caption": "shapes-blip-caption", "embed": "shapes-clip"}


def make_photos(folder: Path, n: int, seed: int = 0) -> list[str]:
    """n JPEGs from the sample photos at SIZES (each a random crop, resized), reused when already there."""
    from mmkit.data.samples import sample_images

    folder.mkdir(parents=True, exist_ok=True)
    have = sorted(str(p) for p in folder.glob("*.jpg"))
    if len(have) >= n:
        return have[:n]
    photos = list(sample_images().values())
    rng = np.random.default_rng(seed)
    for i in range(len(have), n):
        im = photos[i % len(photos)]
        w, h = im.size
        cw, ch = int(w * rng.uniform(0.6, 1)), int(h * rng.uniform(0.6, 1))
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        size = SIZES[int(rng.choice(len(SIZES), p=[0.3, 0.3, 0.2, 0.1, 0.1]))]
        im.crop((x, y, x + cw, y + ch)).resize(size).save(folder / f"{i:05d}.jpg", quality=int(rng.integers(75, 95)))
    return sorted(str(p) for p in folder.glob("*.jpg"))[:n]


class _Files:
    def __init__(self, paths, processor):
        self.paths, self.processor = paths, processor

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        from PIL import Image

        with Image.open(self.paths[i]) as im:
            return self.paths[i], im.convert("RGB")

    def collate(self, items):  # runs in the worker process: the processor's resize and normalise there
        paths, ims = zip(*items)
        return list(paths), self.processor(images=list(ims), return_tensors="pt")["pixel_values"]


def baseline(task: str, paths: list[str], out: Path, workers: int, batch_size: int) -> float:
    """Seconds for the DataLoader + processor + model baseline (results written as JSON lines)."""
    import torch
    from torch.utils.data import DataLoader

    import mmkit

    m = mmkit.load_model(MODELS[task])
    ds = _Files(paths, m.processor.image_processor)
    t = time.perf_counter()
    loader = DataLoader(ds, batch_size=batch_size, num_workers=workers, collate_fn=ds.collate)
    with open(out, "w") as f, torch.inference_mode():
        for names, px in loader:
            if task == "caption":
                ids = m.model.generate(pixel_values=px, max_new_tokens=30)
                res = m.processor.tokenizer.batch_decode(ids, skip_special_tokens=True)
            else:
                f_ = m.model.get_image_features(pixel_values=px)
                f_ = f_ if torch.is_tensor(f_) else f_.pooler_output  # transformers 5 returns an output object
                res = torch.nn.functional.normalize(f_, dim=-1).tolist()
            for n, r in zip(names, res):
                f.write(json.dumps({"path": n, "result": r}) + "\n")
    return time.perf_counter() - t


def job(task: str, folder: Path, out: Path, workers: int, batch_size: int, draft: bool) -> tuple[float, dict]:
    import mmkit

    m = mmkit.load_model(MODELS[task])
    res = mmkit.jobs.run(task, m, folder, out, overwrite=True, workers=workers, draft=draft, batch_size=batch_size,
                         progress=False)
    return res.seconds, res.timing


def split(task: str, paths: list[str], sample: int = 60) -> dict:
    """Per-image milliseconds of decode, preprocess and model, full decode vs JPEG draft, on a sample."""
    import torch

    import mmkit
    from mmkit.jobs.source import decode, input_size

    m = mmkit.load_model(MODELS[task])
    size = input_size(m)
    out = {}
    for name, draft in (("full", False), ("draft", True)):
        ims, t_dec = [], 0.0
        for p in paths[:sample]:
            im, s = decode(p, size, draft)
            ims.append(im)
            t_dec += s
        t = time.perf_counter()
        px = m.processor.image_processor(images=ims, return_tensors="pt")["pixel_values"]
        t_pre = time.perf_counter() - t
        t = time.perf_counter()
        with torch.inference_mode():
            if task == "caption":
                m.model.generate(pixel_values=px[:16], max_new_tokens=30)
            else:
                m.model.get_image_features(pixel_values=px[:16])
        t_model = (time.perf_counter() - t) / 16 * sample
        out[name] = {k: round(1000 * v / sample, 2) for k, v in (("decode", t_dec), ("preprocess", t_pre),
                                                                 ("model", t_model))}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--tasks", default="caption,embed")
    ap.add_argument("--variants", default="baseline,before,after", help="runs per round (after always runs)")
    ap.add_argument("--model", default=None, help="the model of the (one) task, instead of the bundled one, e.g. "
                    "openai/clip-vit-base-patch32 (with HF_HUB_CACHE at a simulated hub for random weights)")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch threads of the model (every run alike; 0: torch's default, one per core)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "collection_results.json"))
    args = ap.parse_args()
    if args.model:
        MODELS[args.tasks.split(",")[0]] = args.model
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    folder = ROOT / "build" / "collection_photos"
    paths = make_photos(folder, args.n)
    if len(list(folder.glob("*.jpg"))) > args.n:  # a smaller run: its own folder of the first n files
        sub = ROOT / "build" / f"collection_photos_{args.n}"
        sub.mkdir(exist_ok=True)
        for p in paths:
            if not (sub / Path(p).name).exists():
                os.link(p, sub / Path(p).name)
        folder, paths = sub, sorted(str(p) for p in sub.glob("*.jpg"))
    work = ROOT / "build" / "collection_out"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    variants = set(args.variants.split(","))
    res = {"n": len(paths), "workers": args.workers, "batch_size": args.batch_size, "cpus": os.cpu_count(),
           "torch_threads": __import__("torch").get_num_threads(), "tasks": {}}
    if os.path.exists(args.out):  # keep the other tasks' results of an earlier run with the same n
        with open(args.out) as f:
            old = json.load(f)
        if old.get("n") == len(paths) and old.get("torch_threads") == res["torch_threads"]:
            res["tasks"] = old.get("tasks", {})
    for task in args.tasks.split(","):
        rows = []
        for r in range(args.rounds):
            row = {"round": r, "load_start": os.getloadavg()[0]}
            if "baseline" in variants:
                row["baseline_s"] = baseline(task, paths, work / "base.jsonl", args.workers, args.batch_size)
                row["load_baseline_end"] = os.getloadavg()[0]
            if "before" in variants:
                row["before_s"], row["before_timing"] = job(task, folder, work / "before.jsonl", 0, args.batch_size,
                                                            False)
                row["load_before_end"] = os.getloadavg()[0]
            row["after_s"], row["after_timing"] = job(task, folder, work / "after.jsonl", args.workers,
                                                      args.batch_size, True)
            row["load_after_end"] = os.getloadavg()[0]
            for name in ("baseline", "before"):
                if name in variants:
                    row[f"after_vs_{name}"] = row[f"{name}_s"] / row["after_s"]
            rows.append(row)
            print(task, json.dumps(rows[-1]), flush=True)
        res["tasks"][task] = {"model": MODELS[task], "rounds": rows, "split_ms_per_image": split(task, paths)}
        for name in ("baseline", "before"):
            if name in variants:
                res["tasks"][task][f"median_after_vs_{name}"] = float(np.median([x[f"after_vs_{name}"] for x in rows]))
        print(task, json.dumps(res["tasks"][task]["split_ms_per_image"]), flush=True)
        with open(args.out, "w") as f:  # after each task: a later failure keeps the earlier results
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
