"""The one validation layer for options (mmkit/options.py), and the task functions that use it.

Every option value outside its rule is an InputError naming the option, the value and the allowed range;
good values come back in plain Python types. Reproductions 6 and 7 of issue 28 run on the bundled models.
"""
import inspect
import math
import warnings

import numpy as np
import pytest

import mmkit
from mmkit.errors import InputError
from mmkit.options import (OPTIONS, check_attention_options, check_generate_options, check_option, check_options,
                           check_templates)

pytestmark = pytest.mark.usefixtures("one_thread")

NAN, INF = float("nan"), float("inf")
BAD = [  # (option, value, words the message must hold besides the option and the value)
    ("num_beams", 2.5, "whole number from 1 to 64"),
    ("num_beams", "3", "whole number"),
    ("num_beams", 3.0, "whole number"),
    ("num_beams", 0, "from 1 to 64"),
    ("num_beams", 65, "from 1 to 64"),
    ("num_beams", True, "whole number"),
    ("num_beams", None, "whole number"),
    ("max_new_tokens", 2.5, "whole number from 1 to 4096"),
    ("max_new_tokens", 0, "from 1"),
    ("max_new_tokens", 10**30, "to 4096"),
    ("min_new_tokens", -1, "from 0"),
    ("temperature", NAN, "finite number from 0.01 to 100"),
    ("temperature", INF, "finite"),
    ("temperature", 0, "from 0.01"),
    ("temperature", -1.0, "from 0.01"),
    ("temperature", "0.7", "finite number"),
    ("temperature", 10**400, "to 100"),
    ("top_p", 0.0, "greater than 0 and at most 1"),
    ("top_p", 1.5, "at most 1"),
    ("top_p", NAN, "finite"),
    ("top_k", 0, "from 1"),
    ("top_k", 2.5, "whole number"),
    ("length_penalty", NAN, "finite"),
    ("length_penalty", "x", "finite number"),
    ("repetition_penalty", 0, "from 0.01"),
    ("no_repeat_ngram_size", -1, "from 0"),
    ("seed", -1, "from 0"),
    ("seed", 2**70, "whole number"),
    ("seed", "a", "whole number"),
    ("seed", 1.5, "whole number"),
    ("batch_size", 0, "from 1"),
    ("batch_size", 2.5, "whole number"),
    ("k", -1, "from 1"),
    ("k", "3", "whole number"),
    ("do_sample", "no", "True or False"),
    ("do_sample", 1, "True or False"),
    ("paired", "x", "True or False"),
    ("layer", 1.5, "whole number"),
]


@pytest.mark.parametrize("name, value, words", BAD, ids=[f"{n}={v!r}"[:40] for n, v, _ in BAD])
def test_bad_value_names_option_value_and_range(name, value, words):
    with pytest.raises(InputError) as e:
        check_option(name, value)
    msg = str(e.value)
    assert msg.startswith(f"{name}=") and repr(value)[:20] in msg and words in msg, msg


def test_good_values_come_back_in_plain_types():
    out = check_options(num_beams=np.int64(3), temperature=np.float32(0.5), do_sample=np.bool_(True), top_k=None,
                        top_p=1, seed=2**63 - 1, length_penalty=-2)
    assert out == {"num_beams": 3, "temperature": 0.5, "do_sample": True, "top_k": None, "top_p": 1.0,
                   "seed": 2**63 - 1, "length_penalty": -2.0}
    assert type(out["num_beams"]) is int and type(out["temperature"]) is float and type(out["do_sample"]) is bool


@pytest.mark.parametrize("name", [n for n, o in OPTIONS.items() if o.kind in ("int", "float")])
def test_range_ends_are_allowed_and_just_outside_refused(name):
    rule = OPTIONS[name]
    if not rule.lo_open:
        assert check_option(name, rule.lo) == rule.lo
    assert check_option(name, rule.hi) == rule.hi
    step = 1 if rule.kind == "int" else 1e-9 * max(1, abs(rule.hi))
    for outside in ((rule.lo if rule.lo_open else rule.lo - step), rule.hi + step):
        with pytest.raises(InputError, match=name):
            check_option(name, outside)


def test_label_and_unknown_option():
    with pytest.raises(InputError, match=r"^--beams=0 is not allowed: --beams must be a whole number from 1 to 64$"):
        check_option("num_beams", 0, label="--beams")
    with pytest.raises(InputError, match="unknown option 'beams'.*num_beams"):
        check_options(beams=3)


@pytest.mark.parametrize("templates, words", [
    ("a {} or {}", "found 2 field"), ("{x} {}", "{x}"), ("{0} {}", "{0}"), ("{} {", "single"), ("{}}", "single"),
    ("{:d}", "plain"), ("{!r}", "plain"), ("a photo", "found 0 field"), ([], "non-empty"), (5, "non-empty"),
    ((t for t in ["a {}"]), "non-empty"), (["a {}", 3], "templates[1]=3 is not a string"), ("  ", "empty"),
])
def test_bad_templates(templates, words):
    with pytest.raises(InputError, match="templates") as e:
        check_templates(templates)
    assert words in str(e.value), str(e.value)


def test_good_templates():
    assert check_templates(None) is None
    assert check_templates("a photo of a {}") == ("a photo of a {}",)
    assert check_templates(["{{literal}} {}", " x {} \x00"]) == ("{{literal}} {}", "x {}")
    assert check_templates(["a \ud83d {}"])[0].format("cat") == "a \ufffd cat"  # broken unicode cleaned, not a tokenizer crash


def test_generate_options():
    assert check_generate_options({"num_beams": 2, "early_stopping": True}) == {"num_beams": 2, "early_stopping": True}
    with pytest.raises(InputError, match="unknown option 'foo'.*num_beams"):
        check_generate_options({"foo": 1})
    with pytest.raises(InputError, match="unknown option 'return_dict_in_generate'"):
        check_generate_options({"return_dict_in_generate": True})
    with pytest.raises(InputError, match="min_new_tokens=9 is more than max_new_tokens=5"):
        check_generate_options({"min_new_tokens": 9, "max_new_tokens": 5})
    with pytest.raises(InputError, match="stopping_criteria must be a list"):
        check_generate_options({"stopping_criteria": 3})


def test_every_task_option_has_one_rule():
    """Each keyword option of every task function is checked by the one layer (no private copies)."""
    data_args = {"m", "images", "questions", "labels", "texts", "query", "gallery", "generate_kwargs", "image",
                 "text", "kwargs"}
    for fn in (mmkit.caption, mmkit.answer, mmkit.zero_shot, mmkit.embed_images, mmkit.embed_texts, mmkit.match,
               mmkit.retrieve, mmkit.attention_maps):
        for p in inspect.signature(fn).parameters:
            assert p in data_args or p in OPTIONS, f"{fn.__name__}({p}=...) has no rule in mmkit.options.OPTIONS"


# -- the task functions, on the bundled models ------------------------------------------------------

@pytest.fixture(scope="module")
def bundled():
    names = ("clip", "blip-caption", "blip-vqa", "blip-itm", "vilt-vqa")
    return {n: mmkit.load_model(f"shapes-{n}") for n in names}


@pytest.fixture(scope="module")
def image():
    return mmkit.ShapesWorld(1, seed=0).images[0]


def task_calls(b, im):
    cap, vqa, clip, itm = b["blip-caption"], b["blip-vqa"], b["clip"], b["blip-itm"]
    return {  # issue 28, reproductions 6 and 7, then the rest of the class
        "caption num_beams=2.5": (lambda: mmkit.caption(cap, im, num_beams=2.5), "num_beams=2.5"),
        "caption num_beams='3'": (lambda: mmkit.caption(cap, im, num_beams="3"), "num_beams='3'"),
        "caption max_new_tokens=2.5": (lambda: mmkit.caption(cap, im, max_new_tokens=2.5), "max_new_tokens=2.5"),
        "caption temperature=nan": (lambda: mmkit.caption(cap, im, do_sample=True, temperature=NAN), "temperature=nan"),
        "answer max_new_tokens=0": (lambda: mmkit.answer(vqa, im, "what?", max_new_tokens=0), "max_new_tokens=0"),
        "zero_shot 'a {} or {}'": (lambda: mmkit.zero_shot(clip, im, ["a", "b"], templates="a {} or {}"), "templates"),
        "zero_shot '{x} {}'": (lambda: mmkit.zero_shot(clip, im, ["a", "b"], templates="{x} {}"), "{x}"),
        "caption top_k=2.5": (lambda: mmkit.caption(cap, im, do_sample=True, top_k=2.5), "top_k=2.5"),
        "caption length_penalty='x'": (lambda: mmkit.caption(cap, im, num_beams=2, length_penalty="x"), "length_penalty"),
        "caption seed=2**70": (lambda: mmkit.caption(cap, im, do_sample=True, seed=2**70), "seed="),
        "caption seed=1.5": (lambda: mmkit.caption(cap, im, do_sample=True, seed=1.5), "seed=1.5"),
        "caption repetition_penalty=0": (lambda: mmkit.caption(cap, im, repetition_penalty=0), "repetition_penalty=0"),
        "caption foo=1": (lambda: mmkit.caption(cap, im, foo=1), "unknown option 'foo'"),
        "caption num_return_sequences": (lambda: mmkit.caption(cap, im, num_return_sequences=2), "unknown option"),
        "caption do_sample='no'": (lambda: mmkit.caption(cap, im, do_sample="no"), "do_sample='no'"),
        "caption min > max": (lambda: mmkit.caption(cap, im, min_new_tokens=20, max_new_tokens=5), "min_new_tokens"),
        "answer max_new_tokens=2.5": (lambda: mmkit.answer(vqa, im, "q?", max_new_tokens=2.5), "max_new_tokens=2.5"),
        "zero_shot templates=5": (lambda: mmkit.zero_shot(clip, im, ["a", "b"], templates=5), "templates=5"),
        "zero_shot batch_size=2.5": (lambda: mmkit.zero_shot(clip, im, ["a", "b"], batch_size=2.5), "batch_size=2.5"),
        "embed_texts batch_size=0": (lambda: mmkit.embed_texts(clip, "a", batch_size=0), "batch_size=0"),
        "match paired='x'": (lambda: mmkit.match(clip, im, "a", paired="x"), "paired='x'"),
        "retrieve k=2.5": (lambda: mmkit.retrieve(clip, "a", [im], k=2.5), "k=2.5"),
        "attention foo on clip": (lambda: mmkit.attention_maps(clip, im, "red", foo=1), "takes no keyword"),
        "attention temperature=nan": (lambda: mmkit.attention_maps(cap, im, do_sample=True, temperature=NAN),
                                      "temperature=nan"),
        "attention num_beams=2.5": (lambda: mmkit.attention_maps(cap, im, num_beams=2.5), "num_beams=2.5"),
        "attention vqa max_new_tokens=0": (lambda: mmkit.attention_maps(vqa, im, "q?", max_new_tokens=0),
                                           "max_new_tokens=0"),
        "attention vqa foo": (lambda: mmkit.attention_maps(vqa, im, "q?", foo=1), "takes only max_new_tokens"),
        "attention itm layer=99": (lambda: mmkit.attention_maps(itm, im, "red", layer=99), "from -2 to 1"),
        "attention itm layer='a'": (lambda: mmkit.attention_maps(itm, im, "red", layer="a"), "layer='a'"),
    }


CALLS = list(task_calls(dict.fromkeys(("clip", "blip-caption", "blip-vqa", "blip-itm")), None))


@pytest.mark.parametrize("case", CALLS)
def test_task_option_is_input_error(case, bundled, image):
    fn, words = task_calls(bundled, image)[case]
    with pytest.raises(InputError) as e:
        fn()
    assert words in str(e.value), str(e.value)


def test_good_options_still_work(bundled, image):
    cap, vqa = bundled["blip-caption"], bundled["blip-vqa"]
    assert isinstance(mmkit.caption(cap, image, num_beams=np.int64(2), length_penalty=np.float32(1.2)), str)
    a = mmkit.caption(cap, image, do_sample=True, temperature=0.7, top_k=np.int32(5), seed=np.uint8(3))
    assert a == mmkit.caption(cap, image, do_sample=True, temperature=0.7, top_k=5, seed=3)  # same seed, same caption
    with pytest.warns(UserWarning, match="lowered to"):
        assert isinstance(mmkit.answer(vqa, image, "what color?", max_new_tokens=4096), str)
    with pytest.warns(UserWarning, match="lowered to"):
        maps = mmkit.attention_maps(cap, image, max_new_tokens=4096)
    assert maps.words
    probs = mmkit.zero_shot(bundled["clip"], image, ["red", "blue"], templates=["{{a}} {}", "a {} shape"])
    assert math.isclose(sum(probs.values()), 1, rel_tol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a good layer index is taken silently
        assert mmkit.attention_maps(bundled["blip-itm"], image, "red", layer=-2).notes["gradcam_layer"] == -2


def test_attention_options_per_family(bundled):
    assert check_attention_options(bundled["blip-itm"], {"layer": np.int64(0)}) == {"layer": 0}
    assert check_attention_options(bundled["clip"], {}) == {}
    assert check_attention_options(bundled["blip-caption"], {"num_beams": 2}) == {"num_beams": 2}
