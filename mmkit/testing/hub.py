"""simulated_hub: every registry hub id, with random weights, in a Hugging Face cache (see simulated_hub)."""
from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from . import TINY_TEXT, TINY_VIT

REAL_SIZE = ("clip", "align", "vilt-vqa", "vilt-itm", "blip-caption", "blip-vqa", "blip-itm")  # BLIP-2: tiny only
HUB_BUILD = "1"  # bump when what simulated_hub writes changes: a cache built by an older mmkit is rebuilt
_CLIP_MEAN, _CLIP_STD = [0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]
# the text the tiny tokenizers learn their merges from (any other text still round-trips: WordPiece spells an
# unknown word in characters, byte-level BPE in bytes)
_HUB_TEXT = ["a photo of a cat", "a picture of a dog", "a cup of coffee on a saucer", "a rocket on its launch pad",
             "an astronaut in a spacesuit", "a woman in uniform", "what animal is this?", "what is in the cup?",
             "a cat lying on a blanket", "question: what is this? answer:", "a photography of", "a painting of"]


def _hub_corpus() -> list[str]:
    from ..data.samples import SAMPLES
    from ..train.tokenizer import shapes_corpus

    return _HUB_TEXT + [c.lower() for *_, c in SAMPLES.values()] + shapes_corpus(200)


def _hub_wordpiece(max_length: int, blip: bool = False):
    """BERT's tokenizer (uncased WordPiece, right padding); BLIP's adds [DEC] (its decoder's BOS) and [ENC]."""
    from ..train.tokenizer import train_wordpiece

    tok = train_wordpiece(_hub_corpus(), vocab_size=400)
    tok.model_max_length = max_length
    if blip:
        tok.add_special_tokens({"bos_token": "[DEC]", "additional_special_tokens": ["[ENC]"]})
    return tok


def _hub_opt_bpe():
    """OPT's GPT-2 byte-level BPE as BLIP-2 OPT ships it: <s> <pad> </s> <unk> = 0 1 2 3, </s> as BOS, EOS and
    UNK, a BOS before every text."""
    import json

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Tokenizer

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(_hub_corpus(), trainers.BpeTrainer(
        vocab_size=600, special_tokens=["<s>", "<pad>", "</s>", "<unk>"], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    model = json.loads(tok.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    return GPT2Tokenizer(vocab=model["vocab"], merges=merges, bos_token="</s>", eos_token="</s>", unk_token="</s>",
                         pad_token="<pad>", add_bos_token=True, add_prefix_space=False, model_max_length=2048)


def _tiny(real: bool, **tiny) -> dict:
    """The tiny widths, or nothing (the class defaults: the real architecture) when real."""
    return {} if real else tiny


def _hub_clip(repo: str, real: bool):
    import transformers as tf

    from ..train.tokenizer import train_clip_bpe

    tok = train_clip_bpe(_hub_corpus(), model_max_length=77)
    ids = dict(pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    patch = 14 if "patch14" in repo else 16 if "patch16" in repo else 32
    large = "large" in repo
    side = 224 if real else 4 * patch  # tiny: a 4 x 4 patch grid
    vision = dict(image_size=side, patch_size=patch, **(dict(hidden_size=1024, num_hidden_layers=24,
                  num_attention_heads=16, intermediate_size=4096) if large and real else _tiny(real, **TINY_VIT)))
    text = dict(vocab_size=49408 if real else len(tok), **ids, **(dict(hidden_size=768, num_attention_heads=12,
                intermediate_size=3072) if large and real else _tiny(real, **TINY_TEXT)))
    cfg = tf.CLIPConfig(text_config=text, vision_config=vision, projection_dim=768 if large and real else 512 if real
                        else 16)
    pre = {"crop_size": side, "do_center_crop": True, "do_normalize": True, "do_resize": True,
           "feature_extractor_type": "CLIPFeatureExtractor", "image_mean": _CLIP_MEAN, "image_std": _CLIP_STD,
           "resample": 3, "size": side}  # the openai repos' old feature-extractor format, as they are on the hub
    return tf.CLIPModel(cfg), tok, pre, None


def _hub_align(repo: str, real: bool):
    import transformers as tf

    from ..train.contrastive import init_efficientnet

    tok = _hub_wordpiece(64)
    crop, side = (289, 346) if real else (32, 40)
    cfg = tf.AlignConfig(text_config=dict(vocab_size=30522 if real else len(tok), **_tiny(real, **TINY_TEXT)),
                         vision_config=dict(image_size=crop, **_tiny(real, width_coefficient=0.25,
                                                                     depth_coefficient=0.25, hidden_dim=64)),
                         **_tiny(real, projection_dim=80))
    model = tf.AlignModel(cfg)
    init_efficientnet(model.vision_model)
    # ALIGN's conversion script: resize to 346, centre crop 289, x / 127.5 - 1, no normalisation, bilinear
    pre = {"crop_size": {"height": crop, "width": crop}, "do_center_crop": True, "do_normalize": False,
           "do_rescale": True, "do_resize": True, "image_mean": [0.485, 0.456, 0.406],
           "image_processor_type": "EfficientNetImageProcessor", "image_std": [0.229, 0.224, 0.225],
           "include_top": False, "processor_class": "AlignProcessor", "resample": 2, "rescale_factor": 1 / 127.5,
           "rescale_offset": True, "size": {"height": side, "width": side}}
    return model, tok, pre, None


def _hub_vilt(repo: str, real: bool):
    import transformers as tf

    from ..data import ANSWERS

    tok = _hub_wordpiece(40)
    answers = ["yes", "no", "2", "1", "cat", "coffee", "rocket"] + [a for a in ANSWERS if a not in ("yes", "no")]
    labels = dict(id2label=dict(enumerate(answers)), label2id={a: i for i, a in enumerate(answers)})
    cfg = tf.ViltConfig(vocab_size=30522 if real else len(tok), max_position_embeddings=40,
                        **_tiny(real, image_size=128, **TINY_VIT), **labels)
    cls = tf.ViltForQuestionAnswering if repo.endswith("vqa") else tf.ViltForImageAndTextRetrieval
    pre = {"do_normalize": True, "do_resize": True, "feature_extractor_type": "ViltFeatureExtractor",
           "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "resample": 3, "size": 384 if real else 128,
           "size_divisor": 32}
    return cls(cfg), tok, pre, None


def _hub_blip(repo: str, real: bool):
    import transformers as tf

    tok = _hub_wordpiece(512, blip=True)
    large = "large" in repo and real
    side = 384 if real else 64
    ids = dict(pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, sep_token_id=tok.sep_token_id,
               eos_token_id=tok.sep_token_id)
    text = dict(vocab_size=30524 if real else len(tok), **ids,
                **(dict(num_attention_heads=12, encoder_hidden_size=1024 if large else 768) if real else
                   dict(encoder_hidden_size=32, **TINY_TEXT)))
    vision = dict(image_size=side, patch_size=16, **(dict(hidden_size=1024, num_hidden_layers=24,
                  num_attention_heads=16, intermediate_size=4096) if large else _tiny(real, **TINY_VIT)))
    cfg = tf.BlipConfig(text_config=text, vision_config=vision, **_tiny(real, projection_dim=16,
                                                                        image_text_hidden_size=16))
    cls = (tf.BlipForConditionalGeneration if "captioning" in repo else tf.BlipForQuestionAnswering if "vqa" in repo
           else tf.BlipForImageTextRetrieval)
    model = cls(cfg)
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.update(bos_token_id=tok.bos_token_id, eos_token_id=tok.sep_token_id,
                                       pad_token_id=tok.pad_token_id)
    pre = {"do_normalize": True, "do_rescale": True, "do_resize": True, "image_mean": _CLIP_MEAN,
           "image_processor_type": "BlipImageProcessor", "image_std": _CLIP_STD, "processor_class": "BlipProcessor",
           "resample": 3, "rescale_factor": 1 / 255, "size": {"height": side, "width": side}}
    return model, tok, pre, None


def _hub_blip2(repo: str, real: bool):
    import transformers as tf

    if real:
        raise InputError("BLIP-2 OPT-2.7B is simulated tiny only (the real one has 3.9B parameters); pass size='tiny'")
    tok = _hub_opt_bpe()
    tok.add_tokens(["<image>"], special_tokens=True)  # as the hub's Blip2Processor files carry it
    side = 56  # 4 x 4 patches of 14
    cfg = tf.Blip2Config(vision_config=dict(image_size=side, patch_size=14, **TINY_VIT),
                         qformer_config=dict(vocab_size=len(tok), encoder_hidden_size=32, cross_attention_frequency=2,
                                             **dict(TINY_TEXT, num_hidden_layers=4)),
                         text_config=dict(model_type="opt", vocab_size=len(tok), hidden_size=32, ffn_dim=64,
                                          num_hidden_layers=2, num_attention_heads=2, word_embed_proj_dim=32,
                                          max_position_embeddings=128, pad_token_id=tok.pad_token_id,
                                          bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id),
                         num_query_tokens=32, image_token_index=tok.convert_tokens_to_ids("<image>"))
    model = tf.Blip2ForConditionalGeneration(cfg)
    model.generation_config.update(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                   pad_token_id=tok.pad_token_id)
    pre = {"do_convert_rgb": True, "do_normalize": True, "do_rescale": True, "do_resize": True,
           "image_mean": _CLIP_MEAN, "image_processor_type": "BlipImageProcessor", "image_std": _CLIP_STD,
           "processor_class": "Blip2Processor", "resample": 3, "rescale_factor": 1 / 255,
           "size": {"height": side, "width": side}}
    return model, tok, pre, {"num_query_tokens": 32, "processor_class": "Blip2Processor"}


_HUB_BUILDERS = {"clip": _hub_clip, "align": _hub_align, "vilt-vqa": _hub_vilt, "vilt-itm": _hub_vilt,
                 "blip-caption": _hub_blip, "blip-vqa": _hub_blip, "blip-itm": _hub_blip, "blip2": _hub_blip2}


def hub_repos() -> dict[str, str]:
    """Every hub id in the registry (mmkit.models.PRETRAINED) -> its family."""
    from ..models import PRETRAINED

    return {s.repo: s.family for s in PRETRAINED.values()}


def simulated_hub(folder, size: str = "tiny", repos=None) -> "Path":
    """A Hugging Face cache in folder with a random-weight checkpoint under the real id of every registry hub model.

    Each has the real model class, its processor and tokenizer files as the hub repository has them (the
    tokenizer's class, special tokens and padding side; the image processor's settings), and random weights.
    Point HF_HUB_CACHE at folder and set HF_HUB_OFFLINE=1, and `load_model("clip")` resolves to
    openai/clip-vit-base-patch32 through the cache, as it does online with the model cached.

    Args:
        folder: the cache directory (created; checkpoints already there from this mmkit are kept).
        size: "tiny" (toy widths: the whole hub in well under a minute) or "real" (the real architectures'
            widths; BLIP-2 stays tiny-only, its real size is 3.9B parameters).
        repos: hub ids to write (default: every one in the registry).
    Returns the folder.
    """
    import hashlib

    import torch
    import transformers

    from ..models import quiet_transformers

    if size not in ("tiny", "real"):
        raise InputError(f"size={size!r}: use 'tiny' or 'real'")
    folder = Path(folder)
    known = hub_repos()
    for repo in repos or known:
        if repo not in known:
            raise InputError(f"{repo!r} is not a hub id of the registry; see mmkit.testing.hub_repos()")
        if size == "real" and known[repo] not in REAL_SIZE:
            continue  # tiny only
        commit = hashlib.sha1(f"{repo} {size} {HUB_BUILD} {transformers.__version__}".encode()).hexdigest()
        base = folder / ("models--" + repo.replace("/", "--"))
        if (base / "refs" / "main").exists() and (base / "refs" / "main").read_text() == commit \
                and (base / "snapshots" / commit / "config.json").exists():
            continue
        torch.manual_seed(int(commit[:8], 16))
        with quiet_transformers():  # no progress bars or "torchvision missing" notices while writing
            model, tok, pre, proc = _HUB_BUILDERS[known[repo]](repo, size == "real")
            _write_repo(base, commit, model, tok, pre, proc)
    return folder


def _write_repo(base: Path, commit: str, model, tok, pre: dict, proc: dict | None) -> None:
    """Save model and tokenizer as the hub repository holds them, into the cache layout: blobs named by their
    sha256, snapshots/<commit>/<file> linking to them, refs/main naming the commit."""
    import hashlib
    import json
    import os
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / "preprocessor_config.json").write_text(json.dumps(pre, indent=2) + "\n")
        if proc is not None:
            (tmp / "processor_config.json").write_text(json.dumps(proc, indent=2) + "\n")
        _write_vocab_files(tmp, tok)
        snap = base / "snapshots" / commit
        if snap.exists():
            shutil.rmtree(snap)
        snap.mkdir(parents=True)
        (base / "blobs").mkdir(exist_ok=True)
        for f in sorted(tmp.iterdir()):
            data = f.read_bytes()
            blob = base / "blobs" / hashlib.sha256(data).hexdigest()
            if not blob.exists():
                blob.write_bytes(data)
            try:
                os.symlink(os.path.relpath(blob, snap), snap / f.name)
            except OSError:  # no symlinks here (Windows without developer mode): a copy, as huggingface_hub does
                shutil.copyfile(blob, snap / f.name)
    (base / "refs").mkdir(exist_ok=True)
    (base / "refs" / "main").write_text(commit)


def _write_vocab_files(folder: Path, tok) -> None:
    """The slow tokenizer's files the hub repositories carry next to tokenizer.json: vocab.txt (WordPiece), or
    vocab.json and merges.txt (BPE)."""
    import json

    spec = json.loads((folder / "tokenizer.json").read_text())["model"]
    vocab = spec["vocab"]
    if spec["type"] == "WordPiece":
        (folder / "vocab.txt").write_text("".join(w + "\n" for w in sorted(vocab, key=vocab.get)))
    elif spec["type"] == "BPE":
        (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
        merges = [" ".join(m) if isinstance(m, list) else m for m in spec["merges"]]
        (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(m + "\n" for m in merges))
