"""What a notebook user feels first: a fresh process's time to the first caption and the first zero-shot, and its
peak resident memory, for mmkit against plain transformers (`from_pretrained` + `generate` / a forward call).

Each measurement is its own Python process (nothing imported or cached beforehand; the OS file cache is warm for
both sides alike after the first round), started from here; mmkit and plain transformers alternate in every
round and the median of the rounds is kept. The child reports the times of import, load and first call and
its peak RSS (VmHWM: ru_maxrss on Linux keeps the parent's RSS at the fork across exec, which inflated both
sides alike in a first version); the wall time counted here includes the interpreter's start. The outputs of both are
compared (the same caption; the same top label, probabilities within 1e-4).

    python benchmarks/session.py                    # bundled + real-size random-init models; session_results.json
    python benchmarks/session.py --only bundled --repeats 5
"""
from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOKENS = 20  # new tokens of the first caption, on both sides
LABELS = ["red circle", "green square", "blue triangle", "a cat", "a dog"]

CHILD = r'''
import json, resource, sys, time
t0 = time.perf_counter()
task, side, path, image_path = sys.argv[1:5]
labels = json.loads(sys.argv[5])
tokens = int(sys.argv[6])
from PIL import Image
if side == "mmkit":
    import mmkit
    t1 = time.perf_counter()
    m = mmkit.load_model(path)
    t2 = time.perf_counter()
    image = Image.open(image_path)
    if task == "caption":
        out = mmkit.caption(m, image, max_new_tokens=tokens)
    else:
        p = mmkit.zero_shot(m, image, labels, templates=["a {}"])
        out = [p[lab] for lab in labels]
else:
    import torch
    import transformers
    from transformers import AutoProcessor
    t1 = time.perf_counter()
    cls = transformers.BlipForConditionalGeneration if task == "caption" else transformers.CLIPModel
    model = cls.from_pretrained(path).eval()
    proc = AutoProcessor.from_pretrained(path)
    t2 = time.perf_counter()
    image = Image.open(image_path).convert("RGB")
    with torch.inference_mode():
        if task == "caption":
            ids = model.generate(**proc(images=image, return_tensors="pt"), max_new_tokens=tokens)
            out = proc.batch_decode(ids, skip_special_tokens=True)[0].strip()
        else:
            enc = proc(images=image, text=[f"a {lab}" for lab in labels], padding=True, return_tensors="pt")
            out = model(**enc).logits_per_image.softmax(-1)[0].tolist()
t3 = time.perf_counter()
try:  # this process image's own peak (ru_maxrss would also count the parent's RSS when it forked us)
    peak = next(int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM:")) / 1024
except (OSError, StopIteration):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("RESULT" + json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "first_call_s": t3 - t2, "in_process_s": t3 - t0,
                             "peak_rss_mb": peak, "out": out}))
'''


def one(task: str, side: str, path: str, image: str) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1", "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", CHILD, task, side, path, image, json.dumps(LABELS), str(TOKENS)],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
    wall = time.perf_counter() - t0
    line = next((x for x in r.stdout.splitlines() if x.startswith("RESULT")), None)
    if r.returncode or line is None:
        raise RuntimeError(f"{task} {side} failed: {r.stderr[-1500:]}")
    return {**json.loads(line[6:]), "wall_s": wall}


def same(task: str, a, b) -> str:
    if task == "caption":
        return "same" if a == b else f"DIFFERS: {a!r} vs {b!r}"
    gap = max(abs(x - y) for x, y in zip(a, b))
    top = max(range(len(a)), key=a.__getitem__) == max(range(len(b)), key=b.__getitem__)
    return "same" if gap <= 1e-4 and top else f"DIFFERS: max |diff| {gap:.1e}"


def row(task: str, model: str, path: str, image: str, repeats: int) -> dict:
    runs = {"mmkit": [], "plain": []}
    load = [os.getloadavg()[0]]
    for _ in range(repeats):  # alternating: host drift hits both sides alike
        for side in runs:
            runs[side].append(one(task, side, path, image))
    load.append(os.getloadavg()[0])
    med = {side: {k: statistics.median(r[k] for r in rs) for k in rs[0] if k != "out"} for side, rs in runs.items()}
    return {"task": task, "model": model, "mmkit": med["mmkit"], "plain": med["plain"],
            "time_ratio": med["mmkit"]["wall_s"] / med["plain"]["wall_s"],
            "time_ratio_rounds": [a["wall_s"] / b["wall_s"] for a, b in zip(runs["mmkit"], runs["plain"])],
            "rss_ratio": med["mmkit"]["peak_rss_mb"] / med["plain"]["peak_rss_mb"],
            "outputs": same(task, runs["mmkit"][0]["out"], runs["plain"][0]["out"]), "load": load}


def report(rows: list, machine: str) -> None:
    print(f"\nmachine: {machine}\n")
    cols = ["first", "model", "mmkit s (import + load + call)", "plain s (import + load + call)", "x plain time",
            "rounds", "mmkit peak RSS MB", "plain peak RSS MB", "x plain RSS", "outputs", "load (1 min)"]
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        a, b = r["mmkit"], r["plain"]
        parts = lambda s: f"{s['wall_s']:.1f} ({s['import_s']:.1f} + {s['load_s']:.1f} + {s['first_call_s']:.1f})"  # noqa: E731
        print(f"| {r['task']} | {r['model']} | {parts(a)} | {parts(b)} | {r['time_ratio']:.2f} | "
              f"{min(r['time_ratio_rounds']):.2f}-{max(r['time_ratio_rounds']):.2f} | {a['peak_rss_mb']:.0f} | "
              f"{b['peak_rss_mb']:.0f} | {r['rss_ratio']:.2f} | {r['outputs']} | {r['load'][0]:.1f}-{r['load'][1]:.1f} |")


def main(argv=None) -> int:
    sys.path.insert(0, str(ROOT))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=["bundled", "real"], help="only the bundled or only the real-size models")
    ap.add_argument("--size", default="base", choices=["base", "tiny"], help="tiny: toy models, to check the script")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(Path(__file__).with_name("session_results.json")))
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    import transformers

    from mmkit import config
    from mmkit.data import ShapesWorld
    from mmkit.testing import random_model_dir

    tmp = Path(tempfile.mkdtemp(prefix="mmkit-session-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    image = tmp / "scene.png"
    ShapesWorld(1, seed=0, split="test").images[0].save(image)
    models = []
    if args.only != "real":
        models += [("caption", "shapes-blip-caption", str(config.models_dir() / "shapes-blip-caption")),
                   ("zero_shot", "shapes-clip", str(config.models_dir() / "shapes-clip"))]
    if args.only != "bundled":
        for task, family, name in (("caption", "blip-caption", "blip-base"), ("zero_shot", "clip", "clip-b32")):
            path = random_model_dir(family, args.size, tmp / family)
            models.append((task, f"{name} (random init)" if args.size == "base" else f"{family} tiny", str(path)))
    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
               f"{platform.python_version()}, torch {torch.__version__}, transformers {transformers.__version__}")
    rows = []
    for task, name, path in models:
        print(f"{task}: {name} ...", flush=True)
        rows.append(row(task, name, path, str(image), args.repeats))
    report(rows, machine)
    Path(args.out).write_text(json.dumps({"machine": machine, "results": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
