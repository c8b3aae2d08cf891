"""benchmarks/annotations.py end to end on a small file (its numbers mean little at this size)."""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def test_annotation_benchmark_times_the_three_ways(tmp_path, capsys):
    import annotations as bench  # benchmarks/annotations.py

    out = tmp_path / "r.json"
    bench.main(["--sizes", "50", "--repeats", "1", "--min-round", "0.02", "--dir", str(tmp_path), "--json", str(out)])
    row = json.loads(out.read_text())["rows"][0]
    assert row["images"] == 50 and set(row["saves_per_s"]) == {"rewrite", "journal", "default"}
    assert all(v > 0 for v in row["saves_per_s"].values()) and row["journal_with_folds_per_s"] > 0
    assert "| 50 |" in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # its files are removed
