"""Odd inputs to the metrics: other scripts, empty and malformed captions, NaN scores, ties, length mistakes.

Each test pins a behaviour an outside tester found wrong (a silent wrong number or a raw error from inside
pycocoevalcap); the numbers asserted are worked out by hand in the comments.
"""
import math
import warnings

import numpy as np
import pytest

from mmkit import InputError
from mmkit.metrics import (caption_scores, caption_scores_per_item, coco_inputs, exact_match, mean_rank, ranks,
                           recall_at_k, roc_auc)

S = "a small red circle to the left of a large blue square"
T = "a green triangle above a red square"
# ten distinct 5-word captions: enough images for CIDEr's idf weights (no few-images warning), and 4-grams
TEN = {i: [f"a {c} {s} on grey"] for i, (c, s) in enumerate(
    [(c, s) for c in ("red", "green", "blue", "yellow", "purple") for s in ("circle", "square")])}


def quiet(fn, *args, **kwargs):
    """fn's result, failing on any warning it gives."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn(*args, **kwargs)


# -- 11: letters of every script ---------------------------------------------------------------------------------

def test_tokenizer_keeps_letters_of_every_script():
    gts, res = coco_inputs({1: ["A café, naïve Zoë's 3D-shape; ÉCOLE!"]}, {1: ["x"]})
    assert res[1] == ["a café naïve zoë s 3d shape école"]
    gts, _ = coco_inputs({1: ["x"]}, {1: ["Ein GROSSES Straßenschild (rot)", "Красный КРУГ слева"]})
    assert gts[1] == ["ein grosses strassenschild rot", "красный круг слева"]  # casefold: ß -> ss
    # a decomposed é (e + combining accent) is the same word as the composed one
    _, res = coco_inputs({1: ["cafe\u0301"]}, {1: ["x"]})
    assert res[1] == ["café"]


def test_accented_words_are_not_cut_short():
    r = quiet(caption_scores, {**TEN, "x": ["a man in a caf drinks"]}, {**TEN, "x": ["a man in a café drinks"]})
    per = caption_scores_per_item({**TEN, "x": ["a man in a caf drinks"]}, {**TEN, "x": ["a man in a café drinks"]})
    assert per["BLEU-1"][-1] == pytest.approx(5 / 6)  # "caf" is not "café": 5 of 6 words match
    assert r["BLEU-4"] < 1.0


def test_a_caption_in_another_script_is_scored_not_dropped():
    # pre-split Chinese (words separated by spaces), one of them wrong
    hyps = {**TEN, "zh": ["一个 绿色 三角形"]}
    refs = {**TEN, "zh": ["一个 红色 的 圆"]}
    per = quiet(caption_scores_per_item, hyps, refs)
    assert per["BLEU-1"][-1] == pytest.approx(1 / 3 * math.exp(1 - 4 / 3))  # 1 of 3 words; brevity 3 vs 4
    assert quiet(caption_scores, hyps, refs)["BLEU-4"] < 1.0
    zh = {**TEN, "zh": ["一个 红色 的 圆"]}
    same = quiet(caption_scores, zh, zh)  # raised a ValueError inside pycocoevalcap before
    assert same["BLEU-1"] == pytest.approx(1.0) and same["CIDEr"] == pytest.approx(10.0)


def test_unsplit_chinese_or_japanese_is_scored_with_a_warning_that_words_split_on_spaces():
    with pytest.warns(UserWarning, match="spaces") as caught:
        r = caption_scores({**TEN, "zh": ["一个红色的圆"]}, {**TEN, "zh": ["一个红色的圆"]})
    assert any("'一个红色的圆'" in str(w.message) for w in caught)
    assert r["BLEU-1"] == pytest.approx(1.0)
    split = {**TEN, "zh": ["一个 红色 的 圆"]}
    quiet(caption_scores, split, split)  # split into words already: no warning


def test_a_caption_with_no_words_is_named_in_a_warning():
    with pytest.warns(UserWarning, match=r"no words.*caption '\.\.\.'") as caught:
        r = caption_scores({**TEN, "dots": ["..."]}, {**TEN, "dots": [S]})
    assert any("'dots'" in str(w.message) for w in caught)
    assert r["BLEU-1"] < 1.0  # scored as an empty caption (nothing right), not dropped


# -- 12: CIDEr over too few images --------------------------------------------------------------------------------

def test_cider_over_one_image_warns_and_names_background():
    with pytest.warns(UserWarning, match="background=") as caught:
        r = caption_scores({1: [S]}, {1: [S]})
    assert r["CIDEr"] == 0.0 and any("1 image" in str(w.message) for w in caught)
    with pytest.warns(UserWarning, match="background="):
        caption_scores_per_item({1: [S]}, {1: [S]})


def test_background_gives_cider_its_weights_and_silences_the_warning():
    bg = {f"bg{k}": v for k, v in TEN.items()}
    r = quiet(caption_scores, {1: [S]}, {1: [S]}, background=bg)
    assert r["CIDEr"] == pytest.approx(10.0)  # a perfect caption scores 10 once other images set the idf
    per = quiet(caption_scores_per_item, {1: [S]}, {1: [S]}, background=bg)
    assert per["CIDEr"] == pytest.approx([10.0])
    assert quiet(caption_scores, TEN, TEN)["CIDEr"] == pytest.approx(10.0)


# -- 13: empty references ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("ref", [[], [""], ["!!"], ["a red circle", ""]])
def test_empty_references_are_refused_naming_the_id(ref):
    with pytest.raises(InputError, match="7"):
        caption_scores({7: [S]}, {7: ref})


# -- 14: one string caption per id ------------------------------------------------------------------------------

def test_several_hypotheses_for_one_id_are_refused():
    with pytest.raises(InputError, match=r"hyps\[1\].*2 captions"):
        caption_scores({1: [S, "zzz"]}, {1: [S]})
    with pytest.raises(InputError, match=r"hyps\[1\]"):
        caption_scores({1: []}, {1: [S]})


@pytest.mark.parametrize("bad", [None, 3, b"a red circle"])
def test_captions_that_are_not_strings_are_refused(bad):
    with pytest.raises(InputError, match=r"hyps\[1\]"):
        caption_scores({1: [bad]}, {1: [S]})
    with pytest.raises(InputError, match=r"hyps\[1\]"):
        caption_scores({1: bad}, {1: [S]})
    with pytest.raises(InputError, match=r"refs\[1\]"):
        caption_scores({1: [S]}, {1: [S, bad]})


def test_mismatched_ids_say_which():
    with pytest.raises(InputError, match=r"same ids.*\b2\b"):
        caption_scores({1: [S]}, {1: [S], 2: [S]})


# -- 15: NaN scores are refused ---------------------------------------------------------------------------------

def test_roc_auc_refuses_nan():
    with pytest.raises(InputError, match="NaN"):
        roc_auc([float("nan")] * 3, [float("nan")] * 3)
    with pytest.raises(InputError, match=r"neg_scores\[1\]"):
        roc_auc([0.5, 0.9], [0.1, float("nan")])


def test_recall_and_mean_rank_refuse_nan():
    import torch

    sim = torch.eye(4)
    sim[2, 1] = float("nan")
    with pytest.raises(InputError, match=r"NaN.*row 2.*column 1"):
        recall_at_k(sim, 1)
    with pytest.raises(InputError, match="NaN"):
        mean_rank(torch.full((5, 5), float("nan")))


def test_metric_agreement_refuses_nan_naming_the_metric_and_item():
    from mmkit.captioning.evaluate import metric_agreement

    with pytest.raises(InputError, match=r"BLEU-4.*item 0"):
        metric_agreement({"BLEU-4": [float("nan"), 0.5, 0.9, 0.2]}, [True, False, True, False])


# -- 4: ties ----------------------------------------------------------------------------------------------------

def test_a_collapsed_model_scores_chance():
    import torch

    n = 50
    assert recall_at_k(torch.ones(n, n), 1) == pytest.approx(1 / n)
    assert recall_at_k(torch.ones(n, n), 5) == pytest.approx(5 / n)
    assert mean_rank(torch.ones(n, n)) == pytest.approx((n + 1) / 2)
    assert recall_at_k(np.ones((3, 10)), 10) == pytest.approx(1.0)


def test_ties_count_as_random_tie_breaking():
    sim = np.array([[1.0, 1.0, 0.0],   # one other item tied: rank 1 or 2 -> expected 1.5, P(top 1) = 1/2
                    [1.0, 1.0, 1.0],   # two tied: rank 1, 2 or 3 -> 2, P(top 1) = 1/3, P(top 2) = 2/3
                    [2.0, 2.0, 1.0]])  # two higher: rank 3
    assert ranks(sim) == pytest.approx([1.5, 2.0, 3.0])
    assert recall_at_k(sim, 1) == pytest.approx((1 / 2 + 1 / 3 + 0) / 3)
    assert recall_at_k(sim, 2) == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert recall_at_k(sim, 3) == pytest.approx(1.0)
    assert mean_rank(sim) == pytest.approx((1.5 + 2 + 3) / 3)


# -- 16: lengths and empty inputs -------------------------------------------------------------------------------

def test_score_captions_says_the_counts(scenes):
    from mmkit.captioning import score_captions

    caps = [s.caption for s in scenes]
    with pytest.raises(InputError, match=f"2 captions but {len(scenes)} scenes"):
        score_captions(caps[:2], scenes)
    with pytest.raises(InputError, match="one string"):
        score_captions(caps[0], scenes[:1])


def test_metric_agreement_says_the_lengths():
    from mmkit.captioning.evaluate import metric_agreement

    with pytest.raises(InputError, match=r"BLEU-4.*3 scores.*2"):
        metric_agreement({"BLEU-4": np.array([0.1, 0.5, 0.9])}, [True, False])
    with pytest.raises(InputError, match="wrong"):
        metric_agreement({"BLEU-4": np.array([0.1, 0.5, 0.9])}, [True, True, True])


def test_hallucination_rate_refuses_empty_and_mismatched_input(scenes):
    from mmkit.captioning import hallucination_rate

    with pytest.raises(InputError, match="no captions"):
        hallucination_rate([], [])
    with pytest.raises(InputError, match=f"2 captions but {len(scenes)} scenes"):
        hallucination_rate(["a red circle"] * 2, scenes)
    with pytest.raises(InputError, match="one string"):
        hallucination_rate("a red circle", scenes[:1])
    with pytest.raises(InputError, match="no captions"):
        caption_scores({}, {})


# -- 17: exact match on the same tokens as the other scores ---------------------------------------------------

def test_exact_match_ignores_punctuation_like_the_other_scores():
    assert exact_match(["A small red circle."], ["a small red circle"]) == 1.0
    assert exact_match(["a small, red circle!"], [["a big one", "a small red circle"]]) == 1.0
    assert exact_match(["a caf"], ["a café"]) == 0.0
    assert exact_match(["a red circle"], ["a red square"]) == 0.0
    with pytest.raises(InputError, match=r"hyps\[0\]"):
        exact_match([None], ["a red circle"])


def test_per_item_scores_follow_the_order_of_hyps_when_refs_are_in_another_order():
    hyps = {**TEN, "right": [S], "wrong": ["a purple hexagon on grey"]}
    refs = {"wrong": [T], "right": [S], **TEN}
    per = quiet(caption_scores_per_item, hyps, refs)
    assert per["BLEU-1"][-2] == pytest.approx(1.0) and per["BLEU-1"][-1] < 0.5
    assert per["CIDEr"][-2] > per["CIDEr"][-1]
