"""Random-init models for tests and benchmarks: the pretrained path without the hub.

`random_model_dir("blip-caption", "base", folder)` writes a BLIP-base-sized model with random weights
and a working processor into `folder`, loadable with `mmkit.load_model(folder)`. "base" uses the
architecture of the real checkpoint (ViT-B/32 CLIP, ViLT-B/32, BLIP-base, ALIGN-base); "tiny" is the
same class at toy size, for fast plumbing tests.

`simulated_hub` (hub.py) writes such checkpoints under the registry's real hub ids into a Hugging Face cache;
`python -m mmkit.testing` (ci.py) is what `make test-hub` and `make test-colab` call.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from ..errors import InputError

FAMILIES = ("clip", "align", "vilt-vqa", "vilt-itm", "blip-caption", "blip-vqa", "blip-itm", "blip2")

TINY_TEXT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
TINY_VIT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)


@lru_cache(maxsize=None)
def _wordpiece():
    from ..train.tokenizer import train_wordpiece

    return train_wordpiece()


@lru_cache(maxsize=None)
def _clip_bpe():
    from ..train.tokenizer import train_clip_bpe

    return train_clip_bpe()


def _bert_ids(tok) -> dict:
    return dict(pad_token_id=tok.pad_token_id, bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id)


def _clip(size: str):
    import transformers as tf

    tok = _clip_bpe()
    ids = dict(pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    if size == "base":  # openai/clip-vit-base-patch32
        cfg = tf.CLIPConfig(text_config=dict(vocab_size=49408, **ids),
                            vision_config=dict(image_size=224, patch_size=32))
        ip = tf.CLIPImageProcessor()
    else:
        cfg = tf.CLIPConfig(text_config=dict(vocab_size=len(tok), max_position_embeddings=32, **TINY_TEXT, **ids),
                            vision_config=dict(image_size=32, patch_size=8, **TINY_VIT), projection_dim=16)
        ip = tf.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    return tf.CLIPModel(cfg), tf.CLIPProcessor(image_processor=ip, tokenizer=tok)


def _align(size: str):
    import transformers as tf

    from ..train.contrastive import init_efficientnet

    tok = _wordpiece()
    if size == "base":  # kakaobrain/align-base: EfficientNet-B7 + BERT-base, 289 px
        cfg = tf.AlignConfig(text_config=dict(vocab_size=30522), vision_config=dict(image_size=289))
        side = 289
    else:
        cfg = tf.AlignConfig(text_config=dict(vocab_size=len(tok), **TINY_TEXT),
                             vision_config=dict(image_size=32, width_coefficient=0.25, depth_coefficient=0.25,
                                                hidden_dim=64),
                             projection_dim=80)  # ALIGN compares text projected to the image pooler's width
        side = 32
    ip = tf.EfficientNetImageProcessor(size={"height": side, "width": side}, crop_size={"height": side, "width": side},
                                       do_center_crop=False)
    model = tf.AlignModel(cfg)
    init_efficientnet(model.vision_model)  # the default N(0, 0.02) init makes activations vanish
    return model, tf.AlignProcessor(image_processor=ip, tokenizer=tok)


def _vilt(size: str, head: str):
    import transformers as tf

    from ..data import ANSWERS

    tok = _wordpiece()
    labels = dict(id2label=dict(enumerate(ANSWERS)), label2id={a: i for i, a in enumerate(ANSWERS)})
    if size == "base":  # dandelin/vilt-b32-*
        cfg = tf.ViltConfig(vocab_size=30522, **labels)
        ip = tf.ViltImageProcessor(size={"shortest_edge": 384})
    else:
        cfg = tf.ViltConfig(vocab_size=len(tok), image_size=32, patch_size=8, max_position_embeddings=40,
                            **TINY_VIT, **labels)
        ip = tf.ViltImageProcessor(size={"shortest_edge": 32}, size_divisor=8)
    cls = tf.ViltForQuestionAnswering if head == "vqa" else tf.ViltForImageAndTextRetrieval
    return cls(cfg), tf.ViltProcessor(image_processor=ip, tokenizer=tok)


def _blip(size: str, head: str):
    import transformers as tf

    tok = _wordpiece()
    ids = _bert_ids(tok)
    if size == "base":  # Salesforce/blip-*-base: ViT-B/16 at 384 px, BERT-base text (12 heads; BlipTextConfig says 8)
        cfg = tf.BlipConfig(text_config=dict(vocab_size=30524, sep_token_id=tok.sep_token_id, num_attention_heads=12,
                                             **ids))
        ip = tf.BlipImageProcessor()
    else:
        cfg = tf.BlipConfig(text_config=dict(vocab_size=len(tok), sep_token_id=tok.sep_token_id, encoder_hidden_size=32,
                                             max_position_embeddings=40, **TINY_TEXT, **ids),
                            vision_config=dict(image_size=32, patch_size=8, **TINY_VIT),
                            projection_dim=16, image_text_hidden_size=16)
        ip = tf.BlipImageProcessor(size={"height": 32, "width": 32})
    cls = {"caption": tf.BlipForConditionalGeneration, "vqa": tf.BlipForQuestionAnswering,
           "itm": tf.BlipForImageTextRetrieval}[head]
    model = cls(cfg)
    if getattr(model, "generation_config", None) is not None:  # the ITM model does not generate
        model.generation_config.update(bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id,
                                       pad_token_id=tok.pad_token_id)
    return model, tf.BlipProcessor(image_processor=ip, tokenizer=tok)


def _blip2(size: str):
    import transformers as tf

    if size != "tiny":
        raise InputError(f"BLIP-2 is built tiny only (the real one, OPT-2.7B, has 3.9B parameters); pass size='tiny', "
                         f"not {size!r}")
    tok = _clip_bpe()  # a byte-level BPE stands in for OPT's GPT-2 tokenizer
    ip = tf.BlipImageProcessor(size={"height": 32, "width": 32})
    processor = tf.Blip2Processor(image_processor=ip, tokenizer=tok, num_query_tokens=32)  # adds <image>
    image_id = tok.convert_tokens_to_ids("<image>")
    # the real layout at toy width: 32 learned queries; cross-attention in every second Q-Former layer
    cfg = tf.Blip2Config(vision_config=dict(image_size=32, patch_size=8, **TINY_VIT),
                         qformer_config=dict(vocab_size=len(tok), encoder_hidden_size=32, cross_attention_frequency=2,
                                             **dict(TINY_TEXT, num_hidden_layers=4)),
                         text_config=dict(model_type="opt", vocab_size=len(tok), hidden_size=32, ffn_dim=64,
                                          num_hidden_layers=2, num_attention_heads=2, word_embed_proj_dim=32,
                                          max_position_embeddings=128, pad_token_id=tok.pad_token_id,
                                          bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id),
                         num_query_tokens=32, image_token_index=image_id)
    model = tf.Blip2ForConditionalGeneration(cfg)
    model.generation_config.update(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                   pad_token_id=tok.pad_token_id)
    return model, processor


# family -> fn(size) -> (model, processor) with random weights
BUILDERS = {"clip": _clip, "align": _align, "vilt-vqa": lambda size: _vilt(size, "vqa"),
            "vilt-itm": lambda size: _vilt(size, "itm"), "blip-caption": lambda size: _blip(size, "caption"),
            "blip-vqa": lambda size: _blip(size, "vqa"), "blip-itm": lambda size: _blip(size, "itm"), "blip2": _blip2}


def load_script(path, name: str | None = None):
    """A script (scripts/*.py, benchmarks/*.py) imported as a module from its path, so tests can call its functions."""
    import importlib.util

    path = Path(path)
    spec = importlib.util.spec_from_file_location(name or path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_random(family: str, size: str = "tiny", seed: int = 0):
    """(model, processor) of the family's class with random weights; size is "tiny" or "base"."""
    import torch

    if family not in FAMILIES:
        raise InputError(f"no random-init builder for family {family!r}; pass one of {', '.join(FAMILIES)} "
                         "(the families mmkit loads)")
    if size not in ("tiny", "base"):
        raise InputError(f"size {size!r} is not a builder size; pass 'tiny' (toy widths, for plumbing tests) or "
                         "'base' (the real checkpoint's architecture)")
    torch.manual_seed(seed)
    return BUILDERS[family](size)


def random_model_dir(family: str, size: str, folder) -> Path:
    """Write a random-init model + processor of the family to folder; returns the folder."""
    model, processor = build_random(family, size)
    folder = Path(folder)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


from .hub import HUB_BUILD, hub_repos, simulated_hub  # noqa: E402  (after the tiny widths hub.py reads)
from .ci import hub_notebooks, quality_checks  # noqa: E402
