"""ShapesWorld: determinism, box correctness, and captions/QA re-derived from the object list."""
import numpy as np
import pytest

from mmkit import InputError
from mmkit.data import ANSWERS, COLORS, HELD_OUT, SHAPES, ShapesWorld
from mmkit.data.shapes import BACKGROUND, COUNT_WORDS, describe_scene, relation


def test_deterministic_by_seed_and_split():
    a, b = ShapesWorld(12, seed=3), ShapesWorld(12, seed=3)
    assert np.array_equal(a.arrays(), b.arrays())
    assert a.captions == b.captions and [s.qa for s in a] == [s.qa for s in b]
    assert ShapesWorld(12, seed=4).captions != a.captions
    assert ShapesWorld(12, seed=3, split="test").captions != a.captions
    # item i does not depend on n or on access order
    assert ShapesWorld(30, seed=3)[7].caption == a[7].caption
    assert np.array_equal(np.asarray(ShapesWorld(12, seed=3)[-1].image), np.asarray(a[11].image))


@pytest.mark.parametrize("objects", [1, (1, 3), 4])
def test_every_object_pixel_lies_inside_its_box(objects):
    for s in ShapesWorld(40, seed=1, objects=objects):
        a = np.asarray(s.image)
        drawn = np.any(a != np.array(BACKGROUND, np.uint8), axis=-1)
        union = np.zeros_like(drawn)
        for o in s.objects:
            x0, y0, x1, y1 = o.box
            inside = np.zeros_like(drawn)
            inside[y0:y1, x0:x1] = True
            assert o.mask.any() and not (o.mask & ~inside).any()  # mask within its box
            ys, xs = np.nonzero(o.mask)
            assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == o.box  # the box is tight
            union |= o.mask
        assert not (drawn & ~union).any()  # nothing is drawn outside the objects
        for i, o in enumerate(s.objects):  # objects never overlap
            for p in s.objects[i + 1:]:
                assert not (o.mask & p.mask).any()


def _answer(objects, q: str) -> str:
    """Re-derive the answer to a templated question from the object list alone."""
    words = q.rstrip("?").split()
    if q == "how many objects are there?":
        return COUNT_WORDS[len(objects)]
    if q.startswith("how many"):
        return COUNT_WORDS[sum(o.color == words[2] for o in objects)]
    if q.startswith("is there a"):
        return "yes" if any((o.color, o.shape) == (words[3], words[4]) for o in objects) else "no"
    if q.startswith("what color is the"):
        return next(o.color for o in objects if o.shape == words[4])
    if q.startswith("what shape is the"):
        return next(o.shape for o in objects if o.color == words[4])
    if q.startswith("what size is the"):
        return next(o.size for o in objects if (o.color, o.shape) == (words[4], words[5]))
    a = next(o for o in objects if (o.color, o.shape) == (words[2], words[3]))
    b = next(o for o in objects if (o.color, o.shape) == (words[-2], words[-1]))
    asked = " ".join(words[4:-3]).replace("to the ", "")
    return "yes" if relation(a, b) == asked else "no"


def test_qa_answers_rederived_from_objects():
    kinds = set()
    for s in ShapesWorld(200, seed=2, objects=(1, 3)):
        for q in s.qa:
            assert q.answer in ANSWERS
            assert _answer(s.objects, q.question) == q.answer, (s.caption, q)
            kinds.add(q.kind)
    assert kinds == {"count", "exists", "color", "shape", "size", "position"}


def test_answers_are_balanced_enough_to_learn():
    answers = [q.answer for _, q in ShapesWorld(300, seed=0).qa_pairs(kinds={"exists", "position"})]
    yes = answers.count("yes") / len(answers)
    assert 0.35 < yes < 0.65


def test_caption_mentions_every_object_and_true_relation():
    for s in ShapesWorld(100, seed=5, objects=(1, 3)):
        for o in s.objects:
            assert o.phrase in s.caption
        if len(s.objects) == 2:
            a, b = s.objects
            first = a if s.caption.startswith(a.phrase) else b
            second = b if first is a else a
            rel = "left of" if "to the left of" in s.caption else "above"
            assert relation(first, second) == rel
        assert s.caption == describe_scene(s.objects)


def test_negative_is_false_and_differs_by_one_thing():
    kinds = set()
    for s in ShapesWorld(200, seed=6):
        assert s.negative != s.caption
        kinds.add(s.negative_kind)
        if s.negative_kind == "relation":
            assert sorted(s.negative.split()) == sorted(s.caption.split())  # same words, swapped order
        else:
            diff = [(a, b) for a, b in zip(s.caption.split(), s.negative.split()) if a != b]
            assert len(diff) == 1 and len(s.caption.split()) == len(s.negative.split())
    assert kinds == {"color", "shape", "size", "relation"}


def test_compositional_split():
    train = ShapesWorld(300, seed=0, split="comp_train", objects=(1, 3))
    test = ShapesWorld(100, seed=0, split="comp_test", objects=(1, 3))
    for s in train:
        assert not any((o.color, o.shape) in HELD_OUT for o in s.objects)
        assert not any(f"{c} {sh}" in s.caption + " " + s.negative for c, sh in HELD_OUT)
    for s in test:
        assert any((o.color, o.shape) in HELD_OUT for o in s.objects)


def test_dataset_protocol_and_views():
    w = ShapesWorld(5, seed=0, size=96, noise=0.05)
    assert len(w) == 5 and len(list(w)) == 5 and len(w[1:3]) == 2
    assert w.arrays().shape == (5, 96, 96, 3) and w.arrays().dtype == np.uint8
    with pytest.raises(IndexError):
        w[5]
    assert set(ShapesWorld.vocabulary()) >= set(COLORS) | set(SHAPES)
    for s in w:
        for word in (s.caption + " " + " ".join(q.question for q in s.qa)).replace("?", "").split():
            assert word in ShapesWorld.vocabulary()


def test_torch_dataloader_accepts_it():
    torch = pytest.importorskip("torch")
    loader = torch.utils.data.DataLoader(ShapesWorld(6), batch_size=3, collate_fn=lambda b: [s.caption for s in b])
    assert [len(b) for b in loader] == [3, 3]


@pytest.mark.parametrize("kw", [dict(objects=0), dict(objects=(2, 9)), dict(split="nope"), dict(size=8), dict(n=-1)])
def test_bad_arguments(kw):
    args = {"n": 3, **kw}
    with pytest.raises(InputError):
        ShapesWorld(**args)


def test_figures():
    w = ShapesWorld(10, seed=0)
    fig = w.grid(n=10, cols=5, boxes=True)
    assert len([a for a in fig.axes if a.images]) == 10
    card = w.show(0)
    assert card.axes[0].images and w[0].caption in card.axes[1].texts[0].get_text().replace("\n", " ")
