"""The benchmarks' shared timer, and the GPU benchmark script end to end on a CPU with toy models (its numbers
mean nothing there)."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from timing import timed, timed_rounds, timed_together  # noqa: E402  (benchmarks/timing.py)


def test_timer_interleaves_the_compared_functions_and_takes_medians(monkeypatch):
    import timing

    clock, calls = [0.0], []
    durations = {"a": iter([9.0, 3.0, 1.0, 2.0]), "b": iter([9.0, 5.0, 7.0, 6.0])}  # warm-up run first
    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock[0])  # a fake clock the functions advance

    def fn(name):
        def run():
            calls.append(name)
            clock[0] += next(durations[name])
        return run

    assert timed_together({"a": fn("a"), "b": fn("b")}, repeats=3) == {"a": 2.0, "b": 6.0}  # warm-ups not counted
    assert calls == ["a", "b"] * 4  # a warm-up round, then rounds running each in turn: host drift hits both alike
    durations["a"] = iter([8.0, 3.0])
    assert timed(fn("a"), repeats=1) == 3.0
    durations.update(a=iter([9.0, 3.0, 1.0]), b=iter([9.0, 5.0, 7.0]))
    assert timed_rounds({"a": fn("a"), "b": fn("b")}) == {"a": [3.0, 1.0], "b": [5.0, 7.0]}  # per round, for ratios
    # a fn faster than min_round_s runs back to back to fill it; its time is the mean of those calls
    calls.clear()
    durations.update(a=iter([1.0, 1.0, 2.0, 3.0, 4.0, 4.0, 4.0]), b=iter([4.0, 5.0, 7.0]))
    assert timed_rounds({"a": fn("a"), "b": fn("b")}, min_round_s=2.5) == {"a": [2.0, 4.0], "b": [5.0, 7.0]}
    assert calls == ["a", "b"] + ["a"] * 3 + ["b"] + ["a"] * 3 + ["b"]


def test_matmul_floor_records_and_replays_the_products_a_call_runs():
    import floor
    import torch

    torch.manual_seed(0)
    patches = torch.nn.Conv2d(3, 8, kernel_size=4, stride=4)  # a patch embedding: 16 patches of a 16 x 16 image
    model = torch.nn.ModuleDict({"patches": patches, "lin": torch.nn.Linear(8, 5),
                                 "head": torch.nn.Linear(5, 2, bias=False)})
    px = torch.randn(2, 3, 16, 16)

    def call():
        x = model["patches"](px).flatten(2).transpose(1, 2)  # (2, 16, 8)
        return model["head"](model["lin"](x)[:, 0])  # (2, 2) from the first token

    with floor.recording(model) as products:
        call()
    assert [(tuple(w.shape), b is not None, rows) for w, b, rows in products] == [
        ((8, 48), True, 32), ((5, 8), True, 32), ((2, 5), False, 2)]  # (N, K), bias, M
    assert not any(m._forward_hooks for m in model.values())  # the hooks are gone after the block
    # the convolution is the product it is counted as: unfolded patches times the flattened weight
    unfolded = torch.nn.functional.unfold(px, kernel_size=4, stride=4).transpose(1, 2)  # (2, 16, 48)
    w, b, _ = products[0]
    assert torch.allclose(unfolded @ w.T + b, patches(px).flatten(2).transpose(1, 2), atol=1e-5)
    run, gflop = floor.matmul_floor(model, call)
    assert gflop == 2 * (8 * 48 * 32 + 5 * 8 * 32 + 2 * 5 * 2) / 1e9
    run()
    assert floor.square_rate(64, repeats=1) > 0


def test_gpu_benchmark_runs_on_the_cpu(tmp_path):
    out, scratch = tmp_path / "gpu.json", tmp_path / "scratch"
    scratch.mkdir()
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--device", "cpu", "--quick",
                          "--size", "tiny", "--dtypes", "fp32", "--out", str(out)],
                         capture_output=True, text=True, cwd=ROOT, timeout=600,  # own process: it sets TQDM_DISABLE
                         env={**os.environ, "TMPDIR": str(scratch)})
    assert run.returncode == 0, run.stderr[-2000:]
    assert not list(scratch.glob("mmkit-gpu-bench-*"))  # the random-init models it saved are gone
    results = json.loads(out.read_text())
    speed = results["speed"]
    assert {(r["task"], r["batch"]) for r in speed} == {(t, b) for t in ("caption", "zero_shot") for b in (1, 32)}
    assert all(r["mmkit_img_s"] > 0 and r["pipeline_img_s"] > 0 for r in speed)
    agreement = {r["model"]: r for r in results["agreement"]}
    assert len(agreement) == 6 and all(r["same_output"] == 1.0 for r in agreement.values())  # fp32 is the default here
    assert agreement["shapes-clip"]["fp32"] >= 0.9  # the bundled models score as in their READMEs
    assert {r["images"] for r in results["preprocess"]} == {"ShapesWorld", "sample photos"}
    assert all(r["max_abs_diff"] == 0 for r in results["preprocess"])
    assert "| x pipeline |" in run.stdout


def test_task_benchmark_runs_and_a_partial_run_keeps_the_other_rows(tmp_path):
    out = tmp_path / "tasks.json"

    def run(only):
        r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "tasks.py"), "--quick", "--no-bf16", "--repeats",
                            "1", "--only", only, "--out", str(out)], capture_output=True, text=True, cwd=ROOT,
                           timeout=600, env={**os.environ, "TMPDIR": str(tmp_path)})
        assert r.returncode == 0, r.stderr[-2000:]
        return r.stdout, json.loads(out.read_text())["results"]

    stdout, rows = run("shapes")  # the bundled models only: no real-size model is built
    assert "| x pipeline per round |" in stdout
    assert [(r["task"], r["model"]) for r in rows] == [("caption", "shapes-blip-caption"), ("zero_shot", "shapes-clip"),
                                                       ("zero_shot x100 labels, 1 image/call", "shapes-clip"),
                                                       ("match, 8 images x 16 texts", "shapes-blip-itm"),
                                                       ("answer, 1 image x 8 questions", "shapes-blip-vqa"),
                                                       ("caption, 1 image x 16 samples", "shapes-blip-caption")]
    assert all(r["mmkit_img_s"] > 0 and len(r["vs_pipeline_rounds"]) == 1 for r in rows[:2])
    assert rows[2]["speedup"] > 1  # cached label embeddings beat re-encoding 100 labels
    assert "| x pipeline at most |" in stdout  # zero-shot: mmkit's matrix products replayed alone
    assert rows[1]["floor_img_s"] > rows[1]["mmkit_img_s"] > 0 and rows[1]["floor_gflop_s"] > 0
    assert rows[1]["vs_pipeline_at_most"] > rows[1]["vs_pipeline"] * 0.5
    assert [r["rows"] for r in rows[3:]] == [128, 8, 16] and all(r["mmkit_rows_s"] > 0 for r in rows[3:])
    assert "| x transformers |" in stdout
    others = [rows[0], *rows[3:]]
    _, rows = run("shapes-clip")  # rewrites the shapes-clip rows, keeps the others
    assert len(rows) == 6 and rows[:4] == others and {r["model"] for r in rows[4:]} == {"shapes-clip"}
