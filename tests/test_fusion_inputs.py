"""Input mistakes that every fusion method must answer the same way: unpaired batches, float64, token ids.

Each check runs on all registered methods, because each method has its own forward: a check that only the
early-fusion path makes leaves the attention and late methods with raw torch errors.
"""
import pytest
import torch

from mmkit import fusion
from mmkit.errors import InputError

B, L, N, D, OUT = 3, 5, 16, 64, 8
NAMES = list(fusion.list())


def inputs(b=B):
    g = torch.Generator().manual_seed(0)
    text, image = torch.randn(b, L, D, generator=g), torch.randn(b, N, D, generator=g)
    tmask = torch.ones(b, L, dtype=torch.bool)
    tmask[0, 2:] = False
    return text, image, tmask


def build(name):
    torch.manual_seed(0)
    return fusion.build(name, text_dim=D, image_dim=D, out_dim=OUT).eval()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("pooled", [False, True])
def test_unpaired_batch_sizes_are_named_by_every_method(name, pooled):
    text, image, _ = inputs()
    if pooled:
        text, image = text.mean(1), image.mean(1)
    with pytest.raises(InputError, match=r"text_emb has batch size 3 but image_emb has 2; pair them one to one"):
        build(name)(text, image[:2])
    with pytest.raises(InputError, match=r"text_emb has batch size 2 but image_emb has 3"):
        build(name)(text[:2], image)


@pytest.mark.parametrize("name", NAMES)
def test_float64_inputs_give_the_float32_result(name):
    m = build(name)
    text, image, tmask = inputs()
    want = m(text, image, tmask)
    got = m(text.double(), image.double(), tmask)
    assert got.dtype == torch.float32
    assert torch.equal(got, want)  # float32 -> float64 -> float32 is exact, so the result is too
    got = m(text.double(), image, tmask)  # one of the two in float64
    assert torch.equal(got, want)


@pytest.mark.parametrize("name", NAMES)
def test_float64_inputs_still_carry_gradients(name):
    m = build(name)
    text, image, tmask = inputs()
    text, image = text.double().requires_grad_(True), image.double().requires_grad_(True)
    m(text, image, tmask).pow(2).sum().backward()
    assert text.grad is not None and text.grad.dtype == torch.float64 and text.grad.abs().sum() > 0
    assert image.grad is not None and image.grad.abs().sum() > 0


@pytest.mark.parametrize("name", NAMES)
def test_a_float64_module_takes_float32_inputs(name):
    m = build(name).double()
    text, image, tmask = inputs()
    assert m(text, image, tmask).dtype == torch.float64


@pytest.mark.parametrize("name", NAMES)
def test_token_ids_are_named_as_token_ids(name):
    _, image, _ = inputs()
    ids = torch.randint(0, 10, (B, L))
    with pytest.raises(InputError) as e:
        build(name)(ids, image)
    msg = str(e.value)
    assert "text_emb is an integer tensor" in msg and "token ids" in msg
    assert "(B, 64) vectors or (B, L, 64)" in msg and "encoder" in msg
    assert "text_dim=5" not in msg  # the sequence length is not a feature width


@pytest.mark.parametrize("name", NAMES)
def test_integer_images_are_named_as_pixels_or_ids(name):
    text, _, tmask = inputs()
    pixels = torch.randint(0, 255, (B, 3, 8, 8), dtype=torch.uint8)
    with pytest.raises(InputError) as e:
        build(name)(text, pixels, tmask)
    msg = str(e.value)
    assert "image_emb is an integer tensor" in msg and "pixels" in msg and "(B, N, 64)" in msg


@pytest.mark.parametrize("name", NAMES)
def test_a_mask_in_the_embedding_slot_says_where_masks_go(name):
    text, image, tmask = inputs()
    with pytest.raises(InputError, match=r"text_emb is a bool tensor.*mask.*text_mask="):
        build(name)(tmask, image)


@pytest.mark.parametrize("name", [n for n in NAMES if n.startswith("late")])
def test_late_fusion_still_takes_one_missing_modality(name):
    m = build(name)
    text, image, tmask = inputs()
    assert m(text.double(), None, tmask).shape == (B, OUT)
    assert m(None, image).shape == (B, OUT)
    with pytest.raises(InputError, match="token ids"):
        m(torch.randint(0, 10, (B, L)), None)


@pytest.mark.parametrize("name", NAMES)
def test_keyword_calls_and_batch_of_one_still_work(name):
    m = build(name)
    text, image, tmask = inputs(1)
    assert m(text_emb=text, image_emb=image, text_mask=tmask).shape == (1, OUT)
    assert torch.equal(m(text, image, tmask), m(text_emb=text, image_emb=image, text_mask=tmask))
