"""scripts/build_domain.py's bookkeeping: the held-out sets it scores and the threshold trade-off it records."""
from pathlib import Path

import numpy as np

from mmkit.testing import load_script

build_domain = load_script(Path(__file__).resolve().parents[1] / "scripts" / "build_domain.py")


def test_the_tradeoff_pools_held_out_sets_that_exist_and_moves_one_error_against_the_other():
    sets = build_domain.held_out(n=6)  # the real sets, a few pictures each
    kinds = build_domain.held_out_kinds()
    assert set(kinds["scenes"]) | set(kinds["others"]) <= set(sets)
    assert all(sets[k][1] for k in kinds["scenes"]) and not any(sets[k][1] for k in kinds["others"])
    assert "bar charts (matplotlib)" not in kinds["others"]  # the one set left out, as the README says
    rng = np.random.default_rng(0)
    scores = {k: rng.uniform(0.3, 1.0, 50) if shapes else rng.uniform(0.0, 0.7, 50) for k, (_, shapes) in sets.items()}
    rows = build_domain.tradeoff(rng.uniform(0.4, 1.0, 600), scores)
    assert [r[0] for r in rows] == [0.95, 0.97, 0.98, 0.99]
    thresholds, passed, flagged = zip(*[r[1:] for r in rows])
    assert list(thresholds) == sorted(thresholds, reverse=True)  # more scenes let through: a lower bar
    assert list(passed) == sorted(passed) and list(flagged) == sorted(flagged, reverse=True)
    t = rows[1][1]
    scenes = np.concatenate([scores[k] for k in kinds["scenes"]])
    assert rows[1][2] == np.mean(scenes >= t)
