"""Caption metrics against pycocoevalcap run directly; METEOR/SPICE skip paths; R@K; VQA accuracy; hallucination."""

import numpy as np
import pytest

from mmkit.metrics import (MetricUnavailable, caption_scores, exact_match, java_version, mean_rank, meteor_score,
                           recall_at_k, spice_score, vqa_accuracy)

HYPS = {1: ["a small red circle"], 2: ["a large blue square above a small green circle"],
        3: ["a red triangle"], 4: ["two dogs play in the grass"]}
REFS = {1: ["a small red circle", "a little red ball"],
        2: ["a large blue square above a small green circle"],
        3: ["a large red triangle", "a big red triangle on grey"],
        4: ["a dog runs on the grass", "two dogs playing on a lawn", "dogs in the grass"]}


def test_scores_match_pycocoevalcap_run_directly():
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    ours = caption_scores(HYPS, REFS)
    bleu, _ = Bleu(4).compute_score(REFS, HYPS, verbose=0)  # already lower-case words: no tokenizer needed
    assert [ours[f"BLEU-{n}"] for n in (1, 2, 3, 4)] == pytest.approx(bleu, abs=1e-12)
    assert ours["ROUGE-L"] == pytest.approx(Rouge().compute_score(REFS, HYPS)[0], abs=1e-12)
    assert ours["CIDEr"] == pytest.approx(Cider().compute_score(REFS, HYPS)[0], abs=1e-12)
    assert set(ours) == {"BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L", "CIDEr"}


def test_scores_normalise_case_and_punctuation_and_accept_bare_strings():
    a = caption_scores({1: "A small, red circle."}, {1: "a small red circle"})
    assert a["BLEU-1"] == pytest.approx(1.0) and a["ROUGE-L"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="same ids"):
        caption_scores({1: ["x"]}, {2: ["x"]})


def test_known_values():
    import math

    short = caption_scores({1: ["a red"]}, {1: ["a red circle"]})  # every word right, one missing
    assert short["BLEU-1"] == pytest.approx(math.exp(1 - 3 / 2), abs=1e-6)  # precision 1 x brevity penalty
    # ROUGE-L: LCS 2, precision 2/2, recall 2/3, F with beta = 1.2
    p, r, beta = 1.0, 2 / 3, 1.2
    assert short["ROUGE-L"] == pytest.approx((1 + beta ** 2) * p * r / (r + beta ** 2 * p), abs=1e-6)


@pytest.mark.skipif(java_version() is None, reason="METEOR needs Java")
def test_meteor_matches_pycocoevalcap():
    import pycocoevalcap.meteor.meteor as mod
    from pycocoevalcap.meteor.meteor import Meteor

    from mmkit.metrics import caption_scores_per_item

    if " " in mod.__file__:  # its own process stops at once there (and then hangs Python when collected)
        pytest.skip("pycocoevalcap's METEOR cannot run from a folder whose name has a space; mmkit's can (next test)")
    corpus, per_item = Meteor().compute_score(REFS, HYPS)
    ours = caption_scores(HYPS, REFS, meteor=True)["METEOR"]
    assert ours == pytest.approx(corpus, abs=1e-6)
    assert caption_scores_per_item(HYPS, REFS, meteor=True)["METEOR"] == pytest.approx(per_item, abs=1e-6)
    assert meteor_score({1: ["a red circle"]}, {1: ["a red circle"]}) > 0.9


def test_meteor_and_spice_skip_with_a_message_without_java(monkeypatch):
    import mmkit.metrics as metrics

    monkeypatch.setattr(metrics, "java_version", lambda: None)
    with pytest.raises(MetricUnavailable, match="Java"):
        meteor_score(HYPS, REFS)
    with pytest.warns(UserWarning) as caught:
        out = caption_scores(HYPS, REFS, meteor=True, spice=True)
    messages = [str(w.message) for w in caught]
    assert any(m.startswith("METEOR skipped:") and "Java" in m for m in messages)
    assert any(m.startswith("SPICE skipped:") and "Java" in m for m in messages)
    assert "METEOR" not in out and "SPICE" not in out and "CIDEr" in out


def test_spice_never_downloads(monkeypatch, tmp_path):
    import pycocoevalcap.spice.spice as spice_mod

    monkeypatch.setattr(spice_mod, "__file__", str(tmp_path / "spice.py"))  # a folder without CoreNLP
    monkeypatch.setattr("mmkit.metrics.java_version", lambda: "java 17")
    with pytest.raises(MetricUnavailable, match="CoreNLP"):
        spice_score(HYPS, REFS)


def test_recall_at_k_and_mean_rank_on_a_hand_made_matrix():
    sim = np.array([[0.9, 0.1, 0.3, 0.0],   # correct item first: rank 1
                    [0.8, 0.5, 0.2, 0.1],   # correct (0.5) second: rank 2
                    [0.7, 0.6, 0.1, 0.9],   # correct (0.1) last: rank 4
                    [0.0, 0.0, 0.0, 0.2]])  # rank 1
    assert recall_at_k(sim, 1) == pytest.approx(0.5)
    assert recall_at_k(sim, 2) == pytest.approx(0.75)
    assert recall_at_k(sim, 4) == pytest.approx(1.0)
    assert mean_rank(sim) == pytest.approx((1 + 2 + 4 + 1) / 4)
    tied = np.ones((3, 3))  # ties broken at random: chance
    assert recall_at_k(tied, 1) == pytest.approx(1 / 3)


def test_vqa_accuracy_and_exact_match():
    assert vqa_accuracy(["red", "two"], [["red"] * 3, ["two", "2", "three"]]) == pytest.approx((1 + 1 / 3) / 2)
    assert exact_match(["A red circle", "a cat"], ["a red  circle", ["a dog", "a kitten"]]) == 0.5


def test_per_item_scores_match_pycocoevalcap():
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider

    from mmkit.metrics import caption_scores_per_item

    per = caption_scores_per_item(HYPS, REFS)
    _, bleu = Bleu(4).compute_score(REFS, HYPS, verbose=0)
    assert per["BLEU-4"] == pytest.approx(np.asarray(bleu[3]))
    assert per["CIDEr"] == pytest.approx(np.asarray(Cider().compute_score(REFS, HYPS)[1]))
    assert per["CIDEr"].mean() == pytest.approx(caption_scores(HYPS, REFS)["CIDEr"])
    with_bg = caption_scores_per_item(HYPS, REFS, background={"x": ["a small red circle"], "y": ["a cat"]})
    assert len(with_bg["CIDEr"]) == len(HYPS)  # background items shape the idf but are not returned


def test_hallucination_against_ground_truth_objects():
    from mmkit.captioning.hallucination import Mention, hallucinated, hallucination_rate, mentioned_objects
    from mmkit.data.shapes import Obj

    objs = [Obj("red", "circle", "small", (0, 0, 1, 1), None), Obj("blue", "square", "large", (0, 0, 1, 1), None)]
    assert mentioned_objects("A small red circle above a square.") == [Mention("circle", "red", "small"),
                                                                       Mention("square")]
    assert hallucinated("a red circle and a green triangle", objs) == [Mention("triangle", "green")]
    r = hallucination_rate(["a small red circle to the left of a large blue square",  # right
                            "a large red circle and a green triangle"],  # wrong size; a made-up triangle; square missed
                           [objs, objs])
    assert r["CHAIR_i"] == pytest.approx(1 / 4) and r["CHAIR_s"] == pytest.approx(1 / 2)
    assert r["CHAIR_i_size"] == pytest.approx(1 / 4) and r["omission"] == pytest.approx(1 / 4)


def test_true_paraphrases_and_agreement(scenes):
    from mmkit.captioning.evaluate import metric_agreement, true_paraphrases
    from mmkit.captioning.hallucination import hallucination_rate

    for s in scenes:
        alts = true_paraphrases(s)
        assert alts and s.caption not in alts
        assert hallucination_rate(alts, [s] * len(alts))["CHAIR_i"] == 0  # they only name what is there
    agree = metric_agreement({"good": [0.9, 0.8, 0.1], "bad": [0.1, 0.2, 0.9]}, [True, True, False])
    assert agree == {"good": 1.0, "bad": 0.0}


@pytest.mark.skipif(java_version() is None, reason="METEOR needs Java")
def test_meteor_under_a_folder_with_a_space_and_after_its_process_dies(tmp_path):
    """METEOR 1.5 alone cannot find its paraphrase table under 'My Projects'; a dead process must not hang Python.

    Run in a child Python with a time limit, so a hang fails the test instead of stopping the suite.
    """
    import os
    import subprocess
    import sys

    import pycocoevalcap.meteor.meteor as mod

    spaced = tmp_path / "My Projects" / "meteor"
    spaced.mkdir(parents=True)
    here = os.path.dirname(os.path.abspath(mod.__file__))
    for name in (mod.METEOR_JAR, "data"):
        (spaced / name).symlink_to(os.path.join(here, name))
    script = f"""
import gc
import pycocoevalcap.meteor.meteor as mod
from mmkit import metrics
mod.__file__ = {str(spaced / "meteor.py")!r}
one = metrics.meteor_score({{1: ["a red circle"]}}, {{1: ["a red circle"]}})
metrics._METEOR[0].meteor_p.kill()  # the Java process dies between two calls
metrics._METEOR[0].meteor_p.wait()
two = metrics.meteor_score({{1: ["a red circle"]}}, {{1: ["a red circle"]}})
gc.collect()  # the dead scorer is collected: pycocoevalcap's __del__ waited for a lock that was never released
print(one, two)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    one, two = map(float, out.stdout.split())
    assert one > 0.9 and two == one
