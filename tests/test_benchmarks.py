"""The benchmarks' shared timer, the matrix-product floor, the agreement checks, the notebook-times script, and
the GPU and floor benchmark scripts end to end on a CPU with toy models (their numbers mean nothing there)."""
import json
import math
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
    """Every dense product is recorded at torch's kernel level (linear layers, bare matmuls, convolutions), the
    model's weights kept as themselves and activations as layouts; the replay's GFLOP are the call's."""
    import floor
    import torch

    torch.manual_seed(0)
    patches = torch.nn.Conv2d(3, 8, kernel_size=4, stride=4)  # a patch embedding: 16 patches of a 16 x 16 image
    model = torch.nn.ModuleDict({"patches": patches, "lin": torch.nn.Linear(8, 5),
                                 "head": torch.nn.Linear(5, 2, bias=False)})
    px = torch.randn(2, 3, 16, 16)

    def call():
        x = model["patches"](px).flatten(2).transpose(1, 2)  # (2, 16, 8)
        h = model["lin"](x)  # (2, 16, 5)
        scores = h @ h.transpose(1, 2)  # (2, 16, 16): a product outside any module (as mmkit's lean decoder runs)
        return model["head"](scores.softmax(-1) @ h)[:, 0]  # (2, 2)

    with torch.inference_mode(), floor.recording(model) as calls:
        call()
    assert [name for name, _, _ in calls] == ["conv", "addmm", "matmul", "matmul", "mm"]
    assert calls[1][1][0] is not None and calls[1][1][0].data_ptr() == model["lin"].bias.data_ptr()  # kept
    assert calls[1][1][2].data_ptr() == model["lin"].weight.data_ptr()  # the weight itself, transposed: (K, N)
    assert tuple(calls[1][1][2].shape) == (8, 5) and calls[1][1][1][:3] == ("layout", (32, 8), (8, 1))
    assert calls[0][1][1].data_ptr() == patches.weight.data_ptr()
    run, gflop = floor.matmul_floor(call, model)
    expected = 2 * (8 * 48 * 32 + 5 * 8 * 32 + 2 * 16 * 16 * 5 + 2 * 16 * 5 * 16 + 2 * 5 * 32) / 1e9
    assert abs(gflop - expected) < 1e-12
    run()
    assert floor.square_rate(64, repeats=1) > 0


def test_matmul_floor_counts_the_products_inside_fused_attention_when_asked():
    """With attention=True a fused attention kernel adds its two products, q·kᵀ and p·v, as batched products of
    the same shapes; without it, the kernel is left out of the floor."""
    import floor
    import torch

    q, k, v = torch.randn(2, 3, 5, 4), torch.randn(2, 3, 7, 4), torch.randn(2, 3, 7, 4)  # (B, H, L/S, d)

    def call():
        return torch.nn.functional.scaled_dot_product_attention(q, k, v)

    for mode in (torch.inference_mode, torch.no_grad):  # the op arrives whole, or with the kernel it chose
        with mode(), floor.recording(attention=True) as calls:
            call()
        assert [c[0] for c in calls] == ["bmm", "bmm"], mode
        assert [tuple(a[1]) for _, args, _ in calls for a in args] == [(6, 5, 4), (6, 4, 7), (6, 5, 7), (6, 7, 4)]
        with mode():
            _, plain = floor.matmul_floor(call)
            run, with_attention = floor.matmul_floor(call, attention=True)
        assert plain == 0 and abs(with_attention - 2 * (6 * 5 * 7 * 4 * 2) / 1e9) < 1e-15
        run()


def test_floor_table_runs_on_tiny_models_and_checks_agreement(tmp_path):
    out = tmp_path / "floor.json"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "floor.py"), "--quick", "--only", "zero_shot",
                        "--dtypes", "fp32", "--compile", "", "--repeats", "1", "--out", str(out)],
                       capture_output=True, text=True, cwd=ROOT, timeout=600, env={**os.environ, "TMPDIR": str(tmp_path)})
    assert r.returncode == 0, r.stderr[-2000:]
    rows = json.loads(out.read_text())["results"]
    assert [(x["task"], x["dtype"]) for x in rows] == [("zero_shot", "fp32")]
    assert all(x["floor_gflop"] > 0 and 0 < x["of_floor"] for x in rows)
    assert rows[0]["agree"] == {"transformers": "same", "pipeline": "same"}
    assert "| x of floor |" in r.stdout and "all same" in r.stdout


def test_agreement_checks_flag_differing_outputs():
    import floor_table
    import numpy as np
    import tasks

    assert tasks.agree(["a red  circle"], ["a red circle"]) == "same"  # whitespace normalised
    assert tasks.agree(["a red circle", "x"], ["a red circle", "y"]).startswith("DIFFERS: 1/2")
    assert tasks.agree([{"a": 0.5, "b": 0.5}], [{"b": 0.5, "a": 0.5 + 1e-6}]) == "same"
    assert tasks.agree([0.1, 0.2], [0.1, 0.3]).startswith("DIFFERS: max |diff| 1.0e-01")
    assert floor_table.agree("zero_shot", "fp32", np.array([[0.6, 0.4]]), np.array([[0.4, 0.6]])).endswith("top label")
    assert floor_table.agree("itm", "bf16", np.array([0.5]), np.array([0.51])) == "same"  # bf16: within 2e-2


def test_notebook_times_reads_junit_and_durations_and_updates_the_course_table(tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    import notebook_times

    xml = tmp_path / "nb.xml"
    xml.write_text('<?xml version="1.0"?><testsuites><testsuite name="pytest">'
                   '<testcase classname="notebooks.00_start_here.ipynb" name="Cell 0" time="1.5" />'
                   '<testcase classname="notebooks.00_start_here.ipynb" name="Cell 1" time="2.0" />'
                   '<testcase classname="notebooks.04_clip.ipynb" name="Cell 0" time="30.2" />'
                   '<testcase classname="tests.test_x" name="test_a" time="0.5" /></testsuite></testsuites>')
    log = tmp_path / "durations.txt"
    log.write_text("== slowest durations ==\n3.00s call     notebooks/06_vilt.ipynb::Cell 2\n"
                   "1.00s setup    notebooks/06_vilt.ipynb::Cell 0\n0.20s call     tests/test_y.py::test_b\n")
    times = notebook_times.read_times([xml, log])
    assert times == {"notebooks/00_start_here.ipynb": 3.5, "notebooks/04_clip.ipynb": 30.2, "tests/test_x.py": 0.5,
                     "notebooks/06_vilt.ipynb": 4.0, "tests/test_y.py": 0.2}
    course = tmp_path / "COURSE.md"
    course.write_text("| session | notebooks |\n|---|---|\n| 04 | 04 CLIP |\n\n"  # another table: untouched
                      "| notebook | quick, s | full, s |\n|---|---|---|\n| 00 start here | 9-15 | same |\n"
                      "| 05 ALIGN | 11-16 | not measured |\n\nafter\n")
    assert notebook_times.main([str(xml), "--course", str(course), "--label", "run 1"]) == 0
    assert course.read_text().splitlines() == [
        "| session | notebooks |", "|---|---|", "| 04 | 04 CLIP |", "",
        "| notebook | quick, s | full, s |", "|---|---|---|", "| 00 start here | 4 (run 1) | same |",
        "| 04 clip | 30 (run 1) | not measured |",  # a measured notebook without a row gets one, in order
        "| 05 ALIGN | 11-16 | not measured |", "", "after"]  # unmeasured rows kept
    assert notebook_times.main([str(tmp_path / "missing.xml")]) == 2


def test_gpu_benchmark_runs_on_the_cpu(tmp_path):
    out, scratch = tmp_path / "gpu.json", tmp_path / "scratch"
    scratch.mkdir()
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--device", "cpu", "--quick",
                          "--size", "tiny", "--dtypes", "fp32", "--repeats", "1", "--out", str(out)],
                         capture_output=True, text=True, cwd=ROOT, timeout=600,  # own process: it sets TQDM_DISABLE
                         env={**os.environ, "TMPDIR": str(scratch)})
    assert run.returncode == 0, run.stderr[-2000:]
    assert not list(scratch.glob("mmkit-gpu-bench-*"))  # the random-init models it saved are gone
    results = json.loads(out.read_text())
    speed = results["speed"]
    assert {(r["task"], r["batch"]) for r in speed} == {(t, b) for t in ("caption", "zero_shot") for b in (1, 32)}
    assert all(r["mmkit_img_s"] > 0 and r["pipeline_img_s"] > 0 for r in speed)
    assert all(r["agree"] == "same" and r["agree_cpu_pre"] == "same" and r["gflop"] > 0 for r in speed)  # same outputs
    agreement = {r["model"]: r for r in results["agreement"]}
    assert len(agreement) == 6 and all(r["same_output"] == 1.0 for r in agreement.values())  # fp32 is the default here
    assert agreement["shapes-clip"]["fp32"] >= 0.9  # the bundled models score as in their READMEs
    assert {r["images"] for r in results["preprocess"]} == {"ShapesWorld", "sample photos"}
    assert all(r["max_abs_diff"] == 0 for r in results["preprocess"])
    assert "| x pipeline |" in run.stdout


def test_gpu_benchmark_check_runs_never_overwrite_the_committed_results(tmp_path, monkeypatch):
    """A --quick or CPU run without --out writes build/benchmarks/ (git-ignored), never gpu_results.json; only a
    full CUDA run writes that file. Run in-process with the scratch folder moved to tmp_path: nothing is written
    into the repository."""
    import argparse

    import gpu
    import torch

    committed = ROOT / "benchmarks" / "gpu_results.json"
    before = committed.read_bytes()
    assert gpu.SCRATCH == ROOT / "build" / "benchmarks" and "build/" in (ROOT / ".gitignore").read_text().split()
    monkeypatch.setattr(gpu, "SCRATCH", tmp_path / "build")
    try:
        assert gpu.main(["--device", "cpu", "--quick", "--size", "tiny", "--skip-speed", "--skip-agreement",
                         "--skip-preprocess"]) == 0
    finally:
        if committed.read_bytes() != before:  # (the old script overwrote it: put the measured numbers back)
            committed.write_bytes(before)
            raise AssertionError("a CPU --quick run overwrote benchmarks/gpu_results.json")
    assert json.loads((tmp_path / "build" / "gpu_results.json").read_text())["speed"] == []

    def args(*extra):
        ns = argparse.Namespace(quick=False, size="base", dtypes="fp32,fp16,bf16", skip_speed=False,
                                skip_agreement=False, skip_preprocess=False)
        for k in extra:
            setattr(ns, k, {"quick": True, "size": "tiny", "dtypes": "bf16", "skip_speed": True}[k])
        return ns

    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert gpu.default_out(args(), cuda) == gpu.COMMITTED == committed  # the full run on a GPU
    scratch = tmp_path / "build" / "gpu_results.json"
    assert gpu.default_out(args(), cpu) == scratch
    for partial in ("quick", "size", "dtypes", "skip_speed"):
        assert gpu.default_out(args(partial), cuda) == scratch, partial


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
    # timings are the benchmark's to judge (benchmarks/README.md), not a unit test's: here, only that each was measured
    assert math.isfinite(rows[2]["speedup"]) and rows[2]["speedup"] > 0
    assert "| x pipeline at most |" in stdout  # zero-shot: mmkit's matrix products replayed alone
    assert all(math.isfinite(rows[1][k]) and rows[1][k] > 0
               for k in ("floor_img_s", "mmkit_img_s", "floor_gflop_s", "vs_pipeline", "vs_pipeline_at_most"))
    assert [r["rows"] for r in rows[3:]] == [128, 8, 16] and all(r["mmkit_rows_s"] > 0 for r in rows[3:])
    assert "| x transformers |" in stdout
    others = [rows[0], *rows[3:]]
    _, rows = run("shapes-clip")  # rewrites the shapes-clip rows, keeps the others
    assert len(rows) == 6 and rows[:4] == others and {r["model"] for r in rows[4:]} == {"shapes-clip"}


def test_session_compares_outputs_and_reads_its_own_peak_memory():
    import session

    assert session.same("caption", "a red circle", "a red circle") == "same"
    assert session.same("caption", "a red circle", "a blue circle").startswith("DIFFERS")
    assert session.same("zero_shot", [0.7, 0.3], [0.7 + 1e-6, 0.3]) == "same"
    assert session.same("zero_shot", [0.6, 0.4], [0.4, 0.6]).startswith("DIFFERS")
    assert "VmHWM" in session.CHILD  # the child's own peak: ru_maxrss would count the parent's RSS at the fork


def test_floor_gap_sorts_kernels_into_kinds_and_accounts_for_the_call(tmp_path):
    """floor_gap.py gives every profiled kernel to one kind; on tiny models the kinds add up to the profiled call."""
    import floor_gap

    assert [floor_gap.kind(f"aten::{op}") for op in ("addmm", "_scaled_dot_product_flash_attention_for_cpu",
                                                    "_softmax", "native_layer_norm", "gelu_", "add_", "copy_",
                                                    "argmax")] == ["products", "attention", "softmax", "norms",
                                                                   "activations", "elementwise", "movement",
                                                                   "other ops"]
    out = tmp_path / "gap.json"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "floor_gap.py"), "--quick", "--only", "zero_shot",
                        "--repeats", "1", "--out", str(out)], capture_output=True, text=True, cwd=ROOT, timeout=600,
                       env={**os.environ, "TMPDIR": str(tmp_path)})
    assert r.returncode == 0, r.stderr[-2000:]
    row = json.loads(out.read_text())["results"][0]
    parts = row["profiled"]
    total = sum(parts[k] for k in floor_gap.KINDS)
    assert parts["products"] > 0 and abs(total - parts["wall_profiled_s"]) < 0.5 * parts["wall_profiled_s"]
    assert row["attention_gflop"] > 0 and 0 < row["ceiling_with_attention"] < 1
    assert "| zero_shot |" in r.stdout
