"""Ray engine benchmark: the same job on the local engine and on Ray Data (1 and 2 model actors), same 2 cores.

The images are real-photo JPEGs (the first --n of build/collection_photos/, made by collection.py from the
sample photos at sizes up to 12 MP). Each round runs, one after the other (other programs share the CPU; the
1-minute load average is recorded per run):
- local: mmkit.jobs.run(engine="local") with the model already loaded (its load time is measured once apart),
  torch at its default threads (one per core);
- local1: the same with torch.set_num_threads(1), as each Ray actor runs;
- ray1 / ray2: engine="ray" with 1 or 2 actors on a local Ray started once with num_cpus=2 (ray.init's time is
  reported apart).

Ray has a fixed cost per job (planning, actor start: importing torch and loading the model in each actor) and a
per-image cost. Each shard file is renamed into place when its shard is done, by whichever process did it, so
their modification times say when each shard finished: `start_s` is the time from the call to the first shard,
and the steady state per image is the time from the first shard to the last over the images after the first
shard. (Ray delivers its result rows late and in bursts, so the driver's progress updates cannot be used.)
The ratio that matters for a long job is the steady-state one (ray / local); the totals are printed beside it.

    python benchmarks/ray_engine.py [--n 1024] [--rounds 2] [--tasks embed,caption] [--shard-size 64]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
MODELS = {"caption": "shapes-blip-caption", "embed": "shapes-clip"}


def timed_job(task: str, m, folder: Path, out: Path, engine: str, workers: int, shard_size: int,
              threads: int | None = None) -> dict:
    """One job; start and steady state from the shard files' modification times (each is renamed into place
    when its shard is done, by whichever process did it)."""
    import torch

    import mmkit

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        load, t0 = os.getloadavg()[0], time.time()
        res = mmkit.jobs.run(task, m, folder, out, overwrite=True, engine=engine, ray_workers=workers,
                             shard_size=shard_size, batch_size=16, progress=False)
    finally:
        torch.set_num_threads(before)
    parts = sorted(Path(str(out) + ".parts").glob("shard-*.jsonl"), key=lambda p: p.stat().st_mtime)
    done = [p.stat().st_mtime for p in parts]
    per_shard = res.images / max(1, len(parts))
    name = f"ray{workers}" if engine == "ray" else f"local{threads or ''}"
    return {"engine": name, "load": load, "images": res.images, "shards": len(parts), "total_s": res.seconds,
            "start_s": done[0] - t0, "steady_ms_per_image": 1000 * (done[-1] - done[0]) / max(1, res.images - per_shard),
            "timing": res.timing}


def main() -> None:
    import ray

    import mmkit
    from collection import make_photos

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--tasks", default="embed,caption")
    ap.add_argument("--shard-size", type=int, default=64)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "ray_engine_results.json"))
    args = ap.parse_args()
    paths = make_photos(ROOT / "build" / "collection_photos", args.n)
    folder = ROOT / "build" / f"collection_photos_{args.n}"
    folder.mkdir(exist_ok=True)
    for p in paths:
        if not (folder / Path(p).name).exists():
            os.link(p, folder / Path(p).name)
    work = ROOT / "build" / "ray_bench_out"
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("RAY_raylet_start_wait_time_s", "120")
    t = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    res = {"n": len(paths), "cpus": os.cpu_count(), "shard_size": args.shard_size, "batch_size": 16,
           "ray_init_s": time.perf_counter() - t, "tasks": {}}
    print("ray.init", round(res["ray_init_s"], 1), "s", flush=True)
    for task in args.tasks.split(","):
        t = time.perf_counter()
        m = mmkit.load_model(MODELS[task])
        rows, load_s = [], time.perf_counter() - t
        for r in range(args.rounds):
            for engine, workers, threads in (("local", 0, None), ("local", 0, 1), ("ray", 1, None), ("ray", 2, None)):
                row = timed_job(task, m, folder, work / f"{task}-{engine}{workers or threads or ''}.jsonl", engine,
                                workers, args.shard_size, threads)
                rows.append({"round": r, **row})
                print(task, json.dumps({k: v for k, v in rows[-1].items() if k != "timing"}), flush=True)
        med = {e: {k: float(np.median([x[k] for x in rows if x["engine"] == e]))
                   for k in ("total_s", "start_s", "steady_ms_per_image", "load")}
               for e in ("local", "local1", "ray1", "ray2")}
        res["tasks"][task] = {
            "model": MODELS[task], "local_model_load_s": load_s, "rounds": rows, "median": med,
            "steady_ray2_vs_local": med["ray2"]["steady_ms_per_image"] / med["local"]["steady_ms_per_image"],
            "steady_ray1_vs_local": med["ray1"]["steady_ms_per_image"] / med["local"]["steady_ms_per_image"],
            "steady_ray1_vs_ray2": med["ray1"]["steady_ms_per_image"] / med["ray2"]["steady_ms_per_image"],
            "steady_ray1_vs_local1": med["ray1"]["steady_ms_per_image"] / med["local1"]["steady_ms_per_image"],
            "total_ray2_vs_local": med["ray2"]["total_s"] / med["local"]["total_s"],
            "outputs": {e: compare(work / f"{task}-local.jsonl", work / f"{task}-{e}.jsonl")
                        for e in ("local1", "ray1", "ray2")}}
        print(task, json.dumps({k: v for k, v in res["tasks"][task].items() if k not in ("rounds",)}), flush=True)
        with open(args.out, "w") as f:  # after each task: a later failure keeps the earlier results
            json.dump(res, f, indent=1)
    ray.shutdown()


def compare(a: Path, b: Path) -> dict:
    """Do two jobs' outputs agree? Same paths in the same order, same captions, embeddings within float noise."""
    from mmkit.jobs import read_output

    ra, rb = read_output(a), read_output(b)
    out = {"rows": [len(ra), len(rb)], "paths_equal": [r["path"] for r in ra] == [r["path"] for r in rb]}
    if "caption" in (ra[0] if ra else {}):
        out["captions_equal"] = [r["caption"] for r in ra] == [r["caption"] for r in rb]
    if "embedding" in (ra[0] if ra else {}):
        vec = lambda r: np.asarray(json.loads(r["embedding"]) if isinstance(r["embedding"], str) else r["embedding"])
        out["max_embedding_diff"] = float(max(np.abs(vec(x) - vec(y)).max() for x, y in zip(ra, rb)))
    return out


if __name__ == "__main__":
    main()
