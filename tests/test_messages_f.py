"""Messages an outside tester found unhelpful or wrong: each test holds the input they tried and the fix it names."""
import numpy as np
import pytest
from PIL import Image

import mmkit
from mmkit import InputError, models
from mmkit.data import images

RED = Image.new("RGB", (8, 6), (220, 30, 30))
pytestmark = pytest.mark.filterwarnings("ignore::mmkit.OutOfDomainWarning")  # RED is no ShapesWorld scene


# 1. a model folder whose config.json is not JSON ----------------------------------------------------

@pytest.mark.parametrize("text, words", [('{"architectures": ["CLIPMod', "not valid JSON"),
                                         ("", "not valid JSON"),
                                         ('["CLIPModel"]', "not a JSON object")])
def test_a_damaged_config_json_names_the_file_and_the_fix(tmp_path, text, words):
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(InputError) as e:
        mmkit.load_model(tmp_path)
    msg = str(e.value)
    assert words in msg and str(tmp_path / "config.json") in msg
    assert "interrupted" in msg and "save_pretrained" in msg


def test_a_config_json_that_is_not_utf8_is_an_input_error(tmp_path):
    (tmp_path / "config.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InputError, match="config.json"):
        mmkit.load_model(tmp_path)


# 2. devices that cannot run a model -----------------------------------------------------------------

@pytest.mark.parametrize("device", ["meta", "META", "xla", "hpu", "lazy"])
def test_devices_that_cannot_run_a_model_are_refused_up_front(device):
    with pytest.raises(InputError) as e:
        mmkit.load_model("shapes-clip", device=device)
    msg = str(e.value)
    assert repr(device.lower()) in msg and "'cpu'" in msg and "'cuda'" in msg and "'mps'" in msg


def test_the_meta_device_message_says_why(monkeypatch):
    with pytest.raises(InputError, match="holds shapes but no values"):
        mmkit.config.get_device("meta")
    monkeypatch.setenv("MMKIT_DEVICE", "meta")
    with pytest.raises(InputError, match="MMKIT_DEVICE='meta'"):
        mmkit.config.get_device()


def test_a_cuda_index_past_the_last_gpu_is_refused(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(InputError, match=r"'cuda:2'.*1 CUDA device.*'cuda:0'"):
        mmkit.config.get_device("cuda:2")
    assert mmkit.config.get_device("cuda:0").type == "cuda"


def test_cpu_still_loads():
    assert mmkit.config.get_device("cpu").type == "cpu"
    assert mmkit.config.get_device(" CPU ").type == "cpu"


# 3. mmkit.testing's builders ------------------------------------------------------------------------

def test_random_model_dir_with_an_unknown_family_or_size_names_the_choices(tmp_path):
    from mmkit.testing import FAMILIES, build_random, random_model_dir

    with pytest.raises(InputError) as e:
        random_model_dir("gpt2", "tiny", tmp_path)
    assert "'gpt2'" in str(e.value) and all(f in str(e.value) for f in FAMILIES)
    with pytest.raises(InputError, match="'huge'.*'tiny'.*'base'"):
        build_random("clip", "huge")
    with pytest.raises(InputError, match="size='tiny'"):
        build_random("blip2", "base")
    assert not any(tmp_path.iterdir())  # nothing written


# 4. registered names: case and spaces ---------------------------------------------------------------

@pytest.mark.parametrize("typed, name", [("CLIP", "clip"), ("Shapes-Clip", "shapes-clip"), (" CLIP-B32 ", "clip-b32"),
                                         ("Blip-Caption", "blip-caption"), ("shapes-clip ", "shapes-clip")])
def test_registered_names_match_whatever_their_case(typed, name):
    spec = models.resolve(typed)
    want = models.resolve(name)
    assert (spec.name, spec.family, spec.repo) == (want.name, want.family, want.repo)


def test_case_does_not_change_hub_ids_or_local_folders(tmp_path, monkeypatch):
    spec = models.resolve("OpenAI/CLIP-ViT-Base-Patch32")  # the hub is case-sensitive: the id stays as typed
    assert spec.repo == "OpenAI/CLIP-ViT-Base-Patch32"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "CLIP").mkdir()  # a folder of that name here wins over the family name, as an exact name would not
    with pytest.raises(InputError, match="folder without config.json"):
        models.resolve("CLIP")


def test_close_matches_are_suggested_whatever_the_case():
    with pytest.raises(InputError, match="did you mean 'clip'"):
        models.resolve("CLIPP")
    with pytest.raises(InputError, match="did you mean 'shapes-clip'"):
        models.resolve("Shapes_Clip")


# 5 and 6. the pixel limit: honest advice, and numbers that do not contradict it ---------------------

def test_the_pixel_limit_message_inside_a_task_names_a_fix_that_works(monkeypatch):
    monkeypatch.setattr(images, "MAX_PIXELS", 40)
    m = mmkit.load_model("shapes-clip")
    with pytest.raises(InputError) as e:
        mmkit.embed_images(m, RED)
    msg = str(e.value)
    assert "mmkit.data.images.MAX_PIXELS = 48" in msg and "pass max_pixels= if" not in msg
    monkeypatch.setattr(images, "MAX_PIXELS", 48)  # the advice, followed
    assert mmkit.embed_images(m, RED).shape[0] == 1
    assert mmkit.load_image(RED, max_pixels=48).size == (8, 6)  # and load_image's keyword, also named


def test_just_over_the_limit_is_not_reported_as_equal_to_it():
    big = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (8001, 8001, 3))  # a view: no 192 MB copy
    with pytest.raises(InputError) as e:
        mmkit.load_image(big)
    msg = str(e.value)
    assert "8001x8001 = 64.02 megapixels, over the 64 MP limit (64,016,001 pixels > 64,000,000" in msg
    assert "max_pixels=64_016_001" in msg


def test_the_byte_limit_message_names_a_fix_that_works(tmp_path):
    p = tmp_path / "red.png"
    RED.save(p)
    n = p.stat().st_size
    with pytest.raises(InputError) as e:
        mmkit.load_image(p, max_bytes=10)
    assert f"mmkit.data.images.MAX_BYTES = {n}" in str(e.value) and f"max_bytes={n}" in str(e.value)
    assert mmkit.load_image(p, max_bytes=n).size == (8, 6)
    with pytest.raises(InputError, match="MAX_BYTES"):
        mmkit.load_image(p.read_bytes(), max_bytes=10)


# 7. several images given as a generator or a set ----------------------------------------------------

def test_a_generator_of_images_is_told_to_be_a_list(tmp_path):
    m = mmkit.load_model("shapes-clip")
    with pytest.raises(InputError, match=r"generator.*list\(images\)"):
        mmkit.embed_images(m, (x for x in [RED, RED]))
    RED.save(tmp_path / "a.png")
    with pytest.raises(InputError, match="set.*no order.*list"):
        mmkit.embed_images(m, {str(tmp_path / "a.png")})
    with pytest.raises(InputError, match=r"one image.*\[mmkit.load_image\(x\) for x in"):
        mmkit.load_image(iter([RED]))
    assert mmkit.embed_images(m, list(x for x in [RED, RED])).shape[0] == 2  # the advice, followed


def test_a_generator_of_texts_is_told_to_be_a_list():
    m = mmkit.load_model("shapes-clip")
    with pytest.raises(InputError, match=r"generator.*list\("):
        mmkit.embed_texts(m, (t for t in ["a red circle"]))


# 8. file:// URLs --------------------------------------------------------------------------------------

def test_a_file_url_of_a_local_file_is_read(tmp_path):
    p = tmp_path / "my red.png"
    RED.save(p)
    assert mmkit.load_image(p.as_uri()).size == (8, 6)  # file:///.../my%20red.png
    assert mmkit.load_image("file://localhost" + str(p)).size == (8, 6)
    with pytest.raises(InputError, match="no such file"):
        mmkit.load_image((tmp_path / "none.png").as_uri())
    with pytest.raises(InputError, match="another machine.*'server'"):
        mmkit.load_image("file://server/share/x.png")
    with pytest.raises(InputError, match="is a URL; mmkit does not download images"):
        mmkit.load_image("https://example.com/cat.jpg")


# 9. labels as a set -------------------------------------------------------------------------------------

def test_labels_given_as_a_set_are_told_a_list_or_tuple():
    m = mmkit.load_model("shapes-clip")
    with pytest.raises(InputError) as e:
        mmkit.zero_shot(m, RED, {"red circle", "blue square"})
    msg = str(e.value)
    assert "set" in msg and "no order" in msg and "list or tuple" in msg and "label string" not in msg


# 10. what to load instead when a model cannot do a task -------------------------------------------------

def _fake(family: str) -> models.Loaded:
    return models.Loaded(None, None, models.ModelSpec(f"some-{family}", family, "path", "x"), "cpu")


@pytest.mark.parametrize("family, task, names", [
    ("vilt-vqa", "embed_images", "clip, align or blip-itm"),
    ("vilt-itm", "zero_shot", "clip, align or blip-itm"),
    ("blip-caption", "match", "clip, align, blip-itm or vilt-itm"),
    ("clip", "answer", "vilt-vqa, blip-vqa or blip2-opt-2.7b"),
])
def test_the_suggested_models_are_those_that_do_the_task(family, task, names):
    with pytest.raises(InputError) as e:
        models.require(_fake(family), task)
    assert f"cannot {task}; try {names}" in str(e.value)


def test_every_suggestion_can_do_the_task():
    def family(name):  # a family name, or a registered pretrained name
        return name if name in models.FAMILIES else models.PRETRAINED[name].family

    tasks = {t for ts in models.FAMILY_TASKS.values() for t in ts}
    for task in tasks:
        doers = {f for f, ts in models.FAMILY_TASKS.items() if task in ts}
        assert [family(n) for n in models.suggest_models(task)] == [f for f in models.FAMILY_TASKS if f in doers]
