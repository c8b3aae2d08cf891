"""mmkit.exercises: every reference passes its own check, and a typical wrong answer fails it with a useful message.

The mutants below are the mistakes students make (forgetting the mask, one direction of the loss, x and y
swapped, no clipping, ...): a check that lets one through would be a no-op for that mistake.
"""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmkit.exercises import ExerciseFailed, check, list_exercises, reference
from mmkit.exercises.captioning import BOS, EOS, ToyLM, TrapLM, beam_search_reference, greedy_decode_reference

pytestmark = pytest.mark.usefixtures("one_thread")
NAMES = [name for _, name, _ in list_exercises()]


def test_two_to_four_exercises_per_chapter_01_to_10():
    chapters = {}
    for ch, name, _ in list_exercises():
        chapters.setdefault(ch, []).append(name)
    assert sorted(chapters) == [f"{i:02d}" for i in range(1, 11)]
    assert all(2 <= len(v) <= 4 for v in chapters.values()), chapters


@pytest.mark.parametrize("name", NAMES)
def test_reference_passes_its_own_check(name, capsys):
    for seed in (0, 1, 2):
        check(name, reference(name), seed=seed)
    assert capsys.readouterr().out.count("\u2713") == 3


def _masked_mean_ignoring_mask(x, mask):
    return x.mean(dim=1)


def _infonce_one_way(image_emb, text_emb, scale):
    logits = scale * image_emb @ text_emb.T
    return F.cross_entropy(logits, torch.arange(len(logits)))


def _infonce_by_hand(image_emb, text_emb, scale):  # overflows at scale 100
    e = torch.exp(scale * image_emb @ text_emb.T)
    return (-(e.diag() / e.sum(1)).log().mean() - (e.diag() / e.sum(0)).log().mean()) / 2


def _gated_swapped(t, v, gated):
    g = torch.sigmoid(gated.gate(torch.cat([t, v], dim=-1)))
    return (1 - g) * torch.tanh(gated.text_proj(t)) + g * torch.tanh(gated.image_proj(v))


def _cross_attention_no_mask(q, k, v, key_mask=None):
    attn = (q @ k.transpose(1, 2) / q.shape[-1] ** 0.5).softmax(-1)
    return attn @ v, attn


def _cross_attention_no_scale(q, k, v, key_mask=None):
    s = q @ k.transpose(1, 2)
    if key_mask is not None:
        s = s.masked_fill(~key_mask[:, None, :], float("-inf"))
    attn = s.softmax(-1)
    return attn @ v, attn


def _patch_hit_transposed(attn, box, grid, size):
    i = int(np.argmax(attn))
    col, row = divmod(i, grid)  # row and column swapped
    cell = size / grid
    x0, y0, x1, y1 = box
    return bool(col * cell < x1 and (col + 1) * cell > x0 and row * cell < y1 and (row + 1) * cell > y0)


def _patch_hit_inclusive(attn, box, grid, size):
    i = int(np.argmax(attn))
    row, col = divmod(i, grid)
    cell = size / grid
    x0, y0, x1, y1 = box
    return bool(col * cell <= x1 and (col + 1) * cell >= x0 and row * cell <= y1 and (row + 1) * cell >= y0)


def _recall_ties_against(sim, k):
    sim = torch.as_tensor(sim)
    correct = sim.diag()[:, None]
    return float((((sim >= correct).sum(1)) <= k).float().mean())  # counts the item itself and every tie against it


def _zero_shot_no_renorm(image_emb, text_emb, scale):
    return (scale * image_emb @ text_emb.mean(1).T).softmax(-1)


def _grad_cam_no_relu(fmap, grads):
    return (grads.mean(dim=(1, 2))[:, None, None] * fmap).sum(0)


def _auc_ties_zero(pos, neg):
    return float(np.mean([p > n for p in pos for n in neg]))


def _to_grid_transposed(values, index, grid):
    out = np.zeros(np.shape(values)[:-1] + tuple(grid), dtype=np.float32)
    flat = out.reshape(out.shape[:-2] + (-1,))
    flat[..., np.asarray(index)[:, 1] * grid[0] + np.asarray(index)[:, 0]] = values  # column-major by mistake
    return flat.reshape(out.shape)


def _image_share_columns(att, T):
    return float(att[T:, :T].sum(1).mean())  # image rows -> text columns: the other off-diagonal block


def _softmax_by_hand(logits, tau):
    e = torch.exp(logits / tau)
    return e / e.sum(-1, keepdim=True)


def _top_p_strict(probs, p):  # drops the word that crosses p
    order = probs.argsort(descending=True)
    keep = torch.zeros_like(probs, dtype=torch.bool)
    keep[order] = probs[order].cumsum(0) <= p
    keep[order[0]] = True
    out = torch.where(keep, probs, torch.zeros_like(probs))
    return out / out.sum()


def _entropy_nan(probs):
    return -(probs * probs.log()).sum(-1)


def _rollout_no_residual(self_attn):
    r = np.eye(self_attn.shape[-1])
    for a in self_attn:
        r = a.mean(0) @ r
    return r.astype(np.float32)


def _pointing_hit_xy_swapped(heat, box):
    x, y = np.unravel_index(int(np.argmax(heat)), heat.shape)
    x0, y0, x1, y1 = box
    return bool(x0 <= x < x1 and y0 <= y < y1)


def _mass_no_clip(heat, box):
    heat = np.asarray(heat, dtype=np.float64)
    total = heat.sum()
    x0, y0, x1, y1 = box
    return float(heat[y0:y1, x0:x1].sum() / total) if total else 0.0


def _beam_keeps_finished(step, bos, eos, beam_size, max_len):  # finished beams are extended again
    beams = [((bos,), 0.0)]
    for _ in range(max_len):
        cands = [(s + (t,), sc + float(lp)) for s, sc in beams for t, lp in enumerate(step(s))]
        beams = sorted(cands, key=lambda c: -c[1])[:beam_size]
    return list(max(beams, key=lambda c: c[1])[0][1:])


def _precision_unclipped(hyp, refs, n):
    grams = [tuple(hyp[i:i + n]) for i in range(len(hyp) - n + 1)]
    ref_grams = {tuple(r[i:i + n]) for r in refs for i in range(len(r) - n + 1)}
    return sum(g in ref_grams for g in grams) / len(grams) if grams else 0.0


def _bleu1_longest_ref(hyp, refs):
    from mmkit.exercises.captioning import clipped_precision_reference

    if not hyp:
        return 0.0
    r, c = max(len(x) for x in refs), len(hyp)
    return (1.0 if c >= r else math.exp(1 - r / c)) * clipped_precision_reference(hyp, refs, 1)


MUTANTS = {
    "conv_out_size": lambda h, k, s, p: round((h + 2 * p - k) / s) + 1,
    "embed_words": lambda ids, E, P: E[ids] + P[: ids.shape[0]],
    "masked_mean": _masked_mean_ignoring_mask,
    "gated_fusion": _gated_swapped,
    "film_fusion": lambda t, v, film: film.out(film.conv(v).mean(1)),
    "soft_vote": lambda s_t, s_v: ((s_t + s_v) / 2).log_softmax(-1),
    "cross_attention": _cross_attention_no_mask,
    "patch_pointing_hit": _patch_hit_transposed,
    "infonce": _infonce_one_way,
    "recall_at_k": _recall_ties_against,
    "zero_shot_probs": _zero_shot_no_renorm,
    "grad_cam": _grad_cam_no_relu,
    "roc_auc": _auc_ties_zero,
    "to_grid": _to_grid_transposed,
    "image_share": _image_share_columns,
    "temperature_softmax": lambda logits, tau: (logits * tau).softmax(-1),
    "top_p_filter": _top_p_strict,
    "entropy": _entropy_nan,
    "rollout": _rollout_no_residual,
    "pointing_hit": _pointing_hit_xy_swapped,
    "mass_in_box": _mass_no_clip,
    "greedy_decode": lambda step, bos, eos, max_len: greedy_decode_reference(step, bos, eos, max_len)[:-1],
    "beam_search": _beam_keeps_finished,
    "clipped_precision": _precision_unclipped,
    "bleu1": _bleu1_longest_ref,
}

# more mistakes for the same exercises
EXTRA_MUTANTS = [
    ("infonce", _infonce_by_hand),
    ("cross_attention", _cross_attention_no_scale),
    ("patch_pointing_hit", _patch_hit_inclusive),
    ("temperature_softmax", _softmax_by_hand),
    ("beam_search", lambda step, bos, eos, beam_size, max_len: greedy_decode_reference(step, bos, eos, max_len)),
]


def test_every_exercise_has_a_mutant():
    assert set(MUTANTS) == set(NAMES)


@pytest.mark.parametrize("name,wrong", list(MUTANTS.items()) + EXTRA_MUTANTS)
def test_a_typical_mistake_fails(name, wrong):
    for seed in (0, 1, 2):  # the edge cases catch each mistake whatever the random inputs
        with pytest.raises(ExerciseFailed) as info:
            check(name, wrong, seed=seed)
        assert info.value.args[0].startswith(name)


def test_unfinished_exercise_says_not_done_yet():
    def gated_fusion(t, v, gated):
        raise NotImplementedError("exercise: gated_fusion")

    with pytest.raises(ExerciseFailed, match="not done yet") as info:
        check("gated_fusion", gated_fusion)
    assert isinstance(info.value, AssertionError)  # so an unfinished exercise fails a notebook run (nbval)


def test_failure_message_names_case_shapes_and_fix():
    with pytest.raises(ExerciseFailed) as info:
        check("masked_mean", lambda x, mask: x.sum(1), seed=0)
    msg = str(info.value)
    assert "case 1" in msg and "edge: only the first token is real" in msg
    assert "inputs: tensor of shape (2, 5, 3)" in msg and "hint:" in msg and "seed=0" in msg

    with pytest.raises(ExerciseFailed, match=r"has shape \(2, 1, 3\), expected \(2, 3\)"):
        check("masked_mean", lambda x, mask: x[:, :1], seed=0)


def test_a_crash_in_student_code_is_reported_with_its_line():
    def masked_mean(x, mask):
        return x.sum(1) / mask.sum(1)  # (B, D) / (B,): shapes do not broadcast

    with pytest.raises(ExerciseFailed, match=r"raised RuntimeError.*line \d+: return x.sum\(1\) / mask.sum\(1\)"):
        check("masked_mean", masked_mean, seed=0)


def test_check_does_not_let_the_student_change_the_inputs_of_the_reference():
    def sneaky(x, mask):  # changes its input in place, then returns the reference's answer on the changed input
        x.zero_()
        return torch.zeros(x.shape[0], x.shape[2])

    with pytest.raises(ExerciseFailed):
        check("masked_mean", sneaky, seed=0)


def test_unknown_name_and_non_function():
    import mmkit

    with pytest.raises(mmkit.InputError, match="gated_fusion"):
        check("gated_fusoin", lambda: None)
    with pytest.raises(ExerciseFailed, match="pass your function itself"):
        check("gated_fusion", 3)


def test_trap_model_separates_greedy_from_beam_search():
    assert greedy_decode_reference(TrapLM(), BOS, EOS, 5)[0] == 2  # greedy takes 'a'
    assert beam_search_reference(TrapLM(), BOS, EOS, 2, 5) == [3, EOS]  # beam search finds 'b <end>'
    lm = ToyLM(6, seed=3)
    assert beam_search_reference(lm, BOS, EOS, 1, 6) == greedy_decode_reference(lm, BOS, EOS, 6)


def test_bleu1_reference_agrees_with_pycocoevalcap():
    pytest.importorskip("pycocoevalcap")
    from pycocoevalcap.bleu.bleu import Bleu

    from mmkit.exercises.captioning import bleu1_reference

    rng = np.random.default_rng(0)
    words = "a the small large red green blue circle square".split()
    for _ in range(20):
        hyp = list(rng.choice(words, size=int(rng.integers(1, 9))))
        refs = [list(rng.choice(words, size=int(rng.integers(2, 9)))) for _ in range(int(rng.integers(1, 4)))]
        score, _ = Bleu(1).compute_score({0: [" ".join(r) for r in refs]}, {0: [" ".join(hyp)]}, verbose=0)
        assert bleu1_reference(hyp, refs) == pytest.approx(score[0], abs=1e-6)
