"""Captioners from scratch: overfitting, the shared decoder, seeded sampling, checkpoints, attention maps."""
import pytest
import torch

from mmkit.captioning import (AttendConfig, FitConfig, ShowAndTell, ShowAttendTell, ShowTellConfig,
                              TransformerCaptioner, TransformerConfig, beam_search, greedy_or_sample, load_captioner,
                              plot_losses)
from mmkit.captioning.decoding import decode, filter_logits
from mmkit.data import ShapesWorld
from mmkit.errors import InputError

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {  # small widths: these tests check plumbing and memorisation, not generalisation
    "show_and_tell": lambda: ShowAndTell(ShowTellConfig(dim=64, hidden=96)),
    "show_and_tell_every": lambda: ShowAndTell(ShowTellConfig(dim=64, hidden=96, image_every_step=True)),
    "show_attend_tell": lambda: ShowAttendTell(AttendConfig(dim=64, hidden=96, attn_dim=64)),
    "transformer": lambda: TransformerCaptioner(TransformerConfig(dim=64, heads=2, mlp=128)),
}


@pytest.fixture(scope="module")
def tiny_batch():
    """Six scenes with six different captions, one and two objects."""
    return ShapesWorld(6, seed=3, objects=(1, 2))[:]


@pytest.fixture(scope="module")
def trained(tiny_batch):
    """Each captioner fitted to the tiny batch (a few seconds each), with its training history."""
    out = {}
    for name, make in SMALL.items():
        m = make()
        h = m.fit([s.image for s in tiny_batch], [s.caption for s in tiny_batch],
                  FitConfig(steps=300, batch_size=6, lr=3e-3, warmup=0.1), progress=False)
        out[name] = (m, h)
    return out


@pytest.mark.parametrize("name", list(SMALL))
def test_each_captioner_overfits_a_tiny_batch(trained, tiny_batch, name):
    model, history = trained[name]
    assert len(history["loss"]) == history["steps"] and history["loss"][-1] < 0.2 * history["loss"][0]
    assert model.generate([s.image for s in tiny_batch]) == [s.caption for s in tiny_batch]
    assert model.generate(tiny_batch[0].image) == tiny_batch[0].caption  # one in, one out


@pytest.mark.parametrize("name", list(SMALL))
def test_beam_search_with_one_beam_is_greedy(trained, tiny_batch, name):
    model, _ = trained[name]
    for m in (model, SMALL[name]()):  # trained, and random-init (long, odd outputs)
        state = m.init_state(m.project(m.grid(m_pixels(m, tiny_batch))))
        g = greedy_or_sample(m.make_step(), state, m.bos_id, m.eos_id, max_new_tokens=12)
        b = beam_search(m.make_step(), state, m.bos_id, m.eos_id, max_new_tokens=12, num_beams=1)
        assert g.tokens == b.tokens


def m_pixels(model, scenes):
    from mmkit.captioning.encoders import images_to_uint8

    return images_to_uint8([s.image for s in scenes], model.config.image_size)


def test_beam_search_finds_the_caption_and_options_run(trained, tiny_batch):
    model, _ = trained["transformer"]
    images, captions = [s.image for s in tiny_batch], [s.caption for s in tiny_batch]
    assert model.generate(images, num_beams=3) == captions
    assert model.generate(images, num_beams=3, length_penalty=0.0) == captions
    assert model.generate(images, do_sample=True, temperature=0.5, top_k=3, top_p=0.9) != []
    with pytest.raises(InputError, match="temperature"):
        model.generate(images, do_sample=True, temperature=0)
    with pytest.raises(InputError, match="beam"):
        model.generate(images, do_sample=True, num_beams=2)


def test_sampling_with_a_seed_repeats(tiny_batch):
    m = SMALL["transformer"]()  # random weights: a flat distribution, so sampling varies a lot
    images = [s.image for s in tiny_batch]
    a = m.generate(images, do_sample=True, seed=1, max_new_tokens=8)
    assert a == m.generate(images, do_sample=True, seed=1, max_new_tokens=8)
    assert a != m.generate(images, do_sample=True, seed=2, max_new_tokens=8)


def test_beam_search_beats_greedy_on_a_garden_path():
    """A 3-token toy language: greedy takes 'a' (0.6) then faces a flat choice; beam finds 'b b' (0.4 * 1.0)."""
    A, B, EOS, BOS = 0, 1, 2, 3

    def step(prefix, state):
        probs = torch.full((len(prefix), 4), 1e-9)
        last = prefix[:, -1]
        probs[last == BOS] = torch.tensor([0.6, 0.4, 1e-9, 1e-9])
        probs[last == A] = torch.tensor([0.34, 0.33, 0.33, 1e-9])
        probs[last == B] = torch.tensor([1e-9, 1e-9, 1.0, 1e-9])
        return probs.log(), state, None

    state = {"dummy": torch.zeros(1, 1)}
    assert decode(step, state, BOS, EOS, max_new_tokens=3).tokens == [[A, A, A]]
    assert decode(step, state, BOS, EOS, max_new_tokens=3, num_beams=2).tokens == [[B, EOS]]


def test_filter_logits_top_k_and_top_p():
    logits = torch.tensor([[3.0, 2.0, 1.0, 0.0]])
    assert torch.isinf(filter_logits(logits, top_k=2)[0, 2:]).all()
    p = logits.softmax(-1)[0]  # 0.64, 0.24, 0.09, 0.03
    kept = torch.isfinite(filter_logits(logits, top_p=0.8)[0])
    assert kept.tolist() == [True, True, False, False] and float(p[0]) < 0.8 <= float(p[:2].sum())
    assert torch.isfinite(filter_logits(logits, top_p=0.01)[0]).tolist() == [True, False, False, False]


def test_checkpoint_round_trip(trained, tiny_batch, tmp_path):
    images = [s.image for s in tiny_batch]
    for name in ("show_and_tell_every", "show_attend_tell", "transformer"):
        model, _ = trained[name]
        model.save(tmp_path / name)
        again = load_captioner(tmp_path / name)
        assert type(again) is type(model) and again.config == model.config
        assert again.generate(images, num_beams=2) == model.generate(images, num_beams=2)
        assert again.generate(images, do_sample=True, seed=5) == model.generate(images, do_sample=True, seed=5)
    with pytest.raises(InputError, match="no saved captioner"):
        load_captioner(tmp_path / "missing")


def test_attention_per_word(trained, tiny_batch):
    for name in ("show_attend_tell", "transformer"):
        model, _ = trained[name]
        words, maps = model.attend(tiny_batch[0].image)
        assert words[-1] == "[SEP]" and " ".join(words[:-1]) == tiny_batch[0].caption
        assert maps.shape == (len(words), 8, 8)
        assert torch.allclose(maps.sum((1, 2)), torch.ones(len(words)), atol=1e-4)
    with pytest.raises(InputError, match="no attention"):
        trained["show_and_tell"][0].attend(tiny_batch[0].image)


def test_loss_plot_and_parameter_counts(trained):
    import matplotlib.figure

    fig = plot_losses({name: h for name, (_, h) in trained.items()})
    assert isinstance(fig, matplotlib.figure.Figure) and len(fig.axes[0].lines) == len(trained)
    model = trained["transformer"][0]
    assert 0 < model.num_parameters(trainable_only=True) < model.num_parameters()


def test_fit_rejects_mismatched_inputs(tiny_batch):
    with pytest.raises(InputError, match="captions"):
        SMALL["transformer"]().fit([tiny_batch[0].image], ["a", "b"], FitConfig(steps=1))


def test_scst_runs_and_reports(trained, tiny_batch):
    import copy

    from mmkit.captioning import SCSTConfig, scst

    model = copy.deepcopy(trained["transformer"][0])
    images, captions = [s.image for s in tiny_batch], [s.caption for s in tiny_batch]
    hist = scst(model, images, captions, SCSTConfig(steps=2, batch_size=4, samples=2, lr=1e-5), progress=False)
    assert len(hist["reward"]) == len(hist["greedy"]) == 2 and hist["greedy"][0] > 0
    assert model.generate(images) == captions  # two tiny steps leave a memorised batch alone
    with pytest.raises(InputError, match="baseline"):
        scst(model, images, captions, SCSTConfig(baseline="best"))


def test_evaluate_and_compare(trained, tiny_batch):
    from mmkit.captioning import comparison_table, evaluate_captioner, plot_comparison

    r = evaluate_captioner(trained["transformer"][0], tiny_batch)
    assert r["exact_match"] == 1.0 and r["CHAIR_i"] == 0.0 and len(r["captions"]) == len(tiny_batch)
    table = comparison_table({"transformer": {**r, "parameters": 10}})
    assert "transformer" in table and "1.000" in table
    assert len(plot_comparison({"a": r, "b": r}).axes) == 1


def test_attention_pointing_game(trained, tiny_batch):
    from mmkit.captioning.evaluate import attention_pointing

    p = attention_pointing(trained["show_attend_tell"][0], tiny_batch)
    assert p["n"] >= len(tiny_batch) and 0 <= p["pointing"] <= 1 and 0 < p["uniform"] < 0.5


def test_fit_takes_several_references_per_image(tiny_batch):
    m = SMALL["transformer"]()
    refs = [[s.caption, s.caption.replace("a ", "one ", 1)] for s in tiny_batch[:2]]
    h = m.fit([s.image for s in tiny_batch[:2]], refs, FitConfig(steps=3, batch_size=4), progress=False)
    assert len(h["loss"]) == 3
