"""The GPU benchmark script runs end to end on a CPU with toy models (its numbers mean nothing there)."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_benchmark_runs_on_the_cpu(tmp_path):
    out = tmp_path / "gpu.json"
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--device", "cpu", "--quick",
                          "--size", "tiny", "--dtypes", "fp32", "--out", str(out)],
                         capture_output=True, text=True, cwd=ROOT, timeout=600)  # own process: it sets TQDM_DISABLE
    assert run.returncode == 0, run.stderr[-2000:]
    results = json.loads(out.read_text())
    speed = results["speed"]
    assert {(r["task"], r["batch"]) for r in speed} == {(t, b) for t in ("caption", "zero_shot") for b in (1, 32)}
    assert all(r["mmkit_img_s"] > 0 and r["pipeline_img_s"] > 0 for r in speed)
    agreement = {r["model"]: r for r in results["agreement"]}
    assert len(agreement) == 6 and all(r["same_output"] == 1.0 for r in agreement.values())  # fp32 is the default here
    assert agreement["shapes-clip"]["fp32"] >= 0.9  # the bundled models score as in their READMEs
    assert all(r["max_abs_diff"] == 0 for r in results["preprocess"])
    assert "| x pipeline |" in run.stdout
