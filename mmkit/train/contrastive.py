"""Dual-encoder (CLIP / ALIGN) contrastive training on ShapesWorld.

The loss is CLIP's symmetric InfoNCE over a batch of image-text pairs, with two additions that a
synthetic world with few distinct sentences needs: identical texts in a batch are all positives
(multi-positive targets instead of false negatives), and each scene's attribute-swapped negative
caption is added to the text side as a hard negative. Used by `scripts/build_clip.py`,
`scripts/build_align.py` and by the notebooks ("train a tiny CLIP for a minute").
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from ..data.shapes import COLORS, SHAPES, SIZES
from .common import adamw, param_groups

LABELS = [f"{c} {s}" for c in COLORS for s in SHAPES]  # the 9 zero-shot labels: "red circle", ...
TEMPLATE = "a {}"  # default zero-shot prompt; "a red circle" is also a training text


@dataclass
class ContrastiveConfig:
    """Hyper-parameters of `train_contrastive`."""

    steps: int = 1100  # optimizer steps
    batch_size: int = 64  # image-text pairs per step (more steps beat bigger batches here)
    lr: float = 1e-3  # peak AdamW learning rate
    weight_decay: float = 0.05  # AdamW decay on matrices (not on biases, norms or the logit scale)
    warmup: int = 50  # steps of linear warm-up, then cosine decay to 0
    clip_grad: float = 1.0  # max global gradient norm
    n_single: int = 8000  # one-object training scenes in the pool
    n_pair: int = 16000  # two-object training scenes in the pool
    single_frac: float = 0.4  # fraction of each batch drawn from one-object scenes
    drop_size_single: float = 0.5  # P(one-object text drops its size word: "a red circle", the prompt form)
    drop_size_pair: float = 0.2  # P(two-object caption drops both size words)
    hard_negatives: bool = True  # add each scene's attribute-swapped caption as an extra negative text
    seed: int = 0  # seeds the scene pool (split="train"), the batch sampler and torch
    log_every: int = 10  # record history (and call the callback) every this many steps
    style: object = "plain"  # ShapesWorld looks of the pool ("train": every training style)
    empty: float = 0.0  # share of pool scenes with no shapes ("there are no shapes")
    big_shapes: float = 0.0  # share of pool scenes whose large objects are drawn bigger (ShapesWorld's `big_shapes`)


# ---------------------------------------------------------------------------------------------
# tiny models of the real classes
# ---------------------------------------------------------------------------------------------

def tiny_clip(tokenizer, image_size: int = 64, patch_size: int = 8, width: int = 128, vision_layers: int = 3,
              text_layers: int = 2, heads: int = 4, projection_dim: int = 128):
    """A small randomly initialised `CLIPModel` and its `CLIPProcessor` (64 px, 8x8 patch grid by default).

    Args:
        tokenizer: a CLIPTokenizer, e.g. from `mmkit.train.tokenizer.train_clip_bpe()`.
        image_size: input side in pixels; patch_size: ViT patch side (grid = image_size // patch_size).
        width: hidden size of both towers; heads: attention heads per layer.
    """
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor
    from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

    text = dict(vocab_size=len(tokenizer), hidden_size=width, intermediate_size=4 * width,
                num_hidden_layers=text_layers, num_attention_heads=heads,
                max_position_embeddings=tokenizer.model_max_length, bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    vision = dict(hidden_size=width, intermediate_size=4 * width, num_hidden_layers=vision_layers,
                  num_attention_heads=heads, image_size=image_size, patch_size=patch_size)
    config = CLIPConfig(text_config=text, vision_config=vision, projection_dim=projection_dim)
    image_processor = CLIPImageProcessor(size={"shortest_edge": image_size}, resample=3, do_center_crop=True,
                                         crop_size={"height": image_size, "width": image_size},
                                         image_mean=OPENAI_CLIP_MEAN, image_std=OPENAI_CLIP_STD)
    return CLIPModel(config), CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)


def tiny_align(tokenizer, image_size: int = 64, width_coefficient: float = 0.5, depth_coefficient: float = 0.5,
               strides: Sequence[int] = (1, 2, 2, 1, 1, 2, 1), text_width: int = 128, text_layers: int = 2,
               heads: int = 4, calibrate: bool = True):
    """A small `AlignModel` (EfficientNet + BERT) with a sane init, and its `AlignProcessor`.

    The image embedding is the mean-pooled last EfficientNet block (ALIGN has no image projection),
    so `projection_dim` is that block's width. The default strides give a 4x4 feature map at 64 px.

    Args:
        tokenizer: a BertTokenizerFast, e.g. from `mmkit.train.tokenizer.train_wordpiece()`.
        width_coefficient, depth_coefficient: EfficientNet scaling of channels and block repeats.
        strides: stride of each of the 7 EfficientNet stages (the stem adds a stride of 2).
        calibrate: set the batch-norm running statistics from 64 ShapesWorld images, so the untrained
            model in eval mode has unit-scale activations instead of vanishing ones.
    """
    from transformers import AlignConfig, AlignModel, AlignProcessor, AlignVisionConfig, EfficientNetImageProcessor
    from transformers.models.align.modeling_align import round_filters

    vision = dict(image_size=image_size, width_coefficient=width_coefficient, depth_coefficient=depth_coefficient,
                  strides=list(strides), hidden_dim=1280, drop_connect_rate=0.0,
                  batch_norm_momentum=0.1)  # passed to torch's BatchNorm2d as is: 0.1 = torch's usual running average
    dim = round_filters(AlignVisionConfig(**vision), 320)  # width of the last block = image embedding size
    text = dict(vocab_size=len(tokenizer), hidden_size=text_width, intermediate_size=4 * text_width,
                num_hidden_layers=text_layers, num_attention_heads=heads, pad_token_id=tokenizer.pad_token_id,
                max_position_embeddings=64)  # AlignProcessor pads to 64 tokens by default
    config = AlignConfig(text_config=text, vision_config=vision, projection_dim=dim, temperature_init_value=0.07)
    model = AlignModel(config)
    image_processor = EfficientNetImageProcessor(
        size={"shortest_edge": image_size}, do_center_crop=True, crop_size={"height": image_size, "width": image_size},
        rescale_factor=1 / 127.5, rescale_offset=True, do_normalize=False, include_top=False)  # pixels in [-1, 1]
    init_efficientnet(model.vision_model)
    if calibrate:
        from ..data import ShapesWorld

        pix = image_processor(images=ShapesWorld(64, seed=12345, size=image_size).images,
                              return_tensors="pt")["pixel_values"]  # (64, 3, S, S)
        calibrate_batchnorm(model.vision_model, pix)
    return model, AlignProcessor(image_processor=image_processor, tokenizer=tokenizer)


def init_efficientnet(module) -> None:
    """Re-initialise convs (He, fan-in) and batch norms (1, 0) so activations keep their scale at init.

    transformers' default N(0, 0.02) conv init makes EfficientNet activations shrink block by block
    (to ~1e-12 at the pooled output in eval mode); fan-in He init also suits the depthwise convs,
    whose fan-in is only kernel_size**2.
    """
    import torch.nn as nn

    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
            m.reset_running_stats()


def calibrate_batchnorm(module, pixel_values) -> None:
    """Set every BatchNorm2d's running mean/var to the statistics of one batch (a data-dependent init).

    Args:
        module: a vision tower containing BatchNorm2d layers.
        pixel_values: (B, 3, H, W) a representative batch.
    """
    import torch
    import torch.nn as nn

    norms = [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]
    saved = [m.momentum for m in norms]
    was_training = module.training
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: after one batch, running stats = that batch's stats
    module.train()
    with torch.no_grad():
        module(pixel_values=pixel_values)
    for m, mom in zip(norms, saved):
        m.momentum = mom
    module.train(was_training)


# ---------------------------------------------------------------------------------------------
# data: a pool of ShapesWorld scenes and their text variants
# ---------------------------------------------------------------------------------------------

def drop_sizes(text: str) -> str:
    """'a small red circle above a large blue square' -> 'a red circle above a blue square'."""
    return " ".join(w for w in text.split() if w not in SIZES)


class ScenePool:
    """Training scenes held as one uint8 array, with captions and negatives; samples text-augmented batches."""

    def __init__(self, cfg: ContrastiveConfig, image_size: int = 64):
        from ..data import ShapesWorld
        from ..data.styles import square_image

        look = dict(style=cfg.style, empty=cfg.empty, big_shapes=cfg.big_shapes)
        worlds = [ShapesWorld(cfg.n_single, seed=cfg.seed, size=image_size, objects=1, split="train", **look),
                  ShapesWorld(cfg.n_pair, seed=cfg.seed, size=image_size, objects=2, split="train", **look)]
        # (N, H, W, 3) uint8; other canvases resized to the model's square input
        self.images = np.stack([np.asarray(square_image(s.image, image_size)) for w in worlds for s in w])
        self.captions = [s.caption for w in worlds for s in w]
        self.negatives = [s.negative for w in worlds for s in w]
        self.n_single, self.cfg = cfg.n_single, cfg
        self.rng = np.random.default_rng([cfg.seed, 7])

    def batch(self, size: int) -> tuple[list[np.ndarray], list[str], list[str]]:
        """Sample `size` scenes: (images, texts, hard-negative texts), sizes dropped at random."""
        k = int(round(size * self.cfg.single_frac))
        idx = np.concatenate([self.rng.integers(0, self.n_single, k),
                              self.rng.integers(self.n_single, len(self.captions), size - k)])
        texts, negs = [], []
        for i in idx:
            p = self.cfg.drop_size_single if i < self.n_single else self.cfg.drop_size_pair
            drop = self.rng.random() < p
            texts.append(drop_sizes(self.captions[i]) if drop else self.captions[i])
            negs.append(drop_sizes(self.negatives[i]) if drop else self.negatives[i])
        return list(self.images[idx]), texts, negs


# ---------------------------------------------------------------------------------------------
# loss and training loop
# ---------------------------------------------------------------------------------------------

def contrastive_loss(image_emb, text_emb, scale, texts: Sequence[str]):
    """Symmetric InfoNCE where every text equal to an image's own text counts as a positive.

    Args:
        image_emb: (B, D) L2-normalised image embeddings.
        text_emb: (T, D) L2-normalised text embeddings, T >= B; row i < B is image i's text, rows >= B
            are extra (hard-negative) texts.
        scale: scalar tensor, the logit scale (1 / temperature).
        texts: the T strings, used to find duplicate texts.
    """
    import torch
    import torch.nn.functional as F

    B = image_emb.shape[0]
    ids = {t: j for j, t in enumerate(texts)}
    key = torch.tensor([ids[t] for t in texts], device=image_emb.device)  # (T,) one id per distinct string
    pos = (key[:B, None] == key[None, :]).float()  # (B, T) 1 where text j says the same as image i's text
    logits = scale * image_emb @ text_emb.t()  # (B, T)
    loss_i2t = -(pos / pos.sum(1, keepdim=True) * F.log_softmax(logits, dim=1)).sum(1).mean()
    logits_t2i = logits[:, :B].t()  # (B texts, B images)
    pos_t2i = pos[:, :B].t()  # (B, B) symmetric
    loss_t2i = -(pos_t2i / pos_t2i.sum(1, keepdim=True) * F.log_softmax(logits_t2i, dim=1)).sum(1).mean()
    return (loss_i2t + loss_t2i) / 2


def logit_scale(model):
    """The model's similarity scale as a tensor: CLIP's exp(logit_scale), ALIGN's 1 / temperature."""
    if hasattr(model, "logit_scale"):
        return model.logit_scale.exp()
    return 1.0 / model.temperature


def _clamp_scale(model) -> None:
    import torch

    with torch.no_grad():
        if hasattr(model, "logit_scale"):
            model.logit_scale.clamp_(0, math.log(100))  # CLIP's cap: scale <= 100
        else:
            model.temperature.clamp_(0.01, 1.0)  # keep 1 / temperature finite and positive


def _features(out):
    """transformers 5 returns a model output from get_*_features; older versions a tensor."""
    import torch

    return out if torch.is_tensor(out) else out.pooler_output


def encode(model, processor, images=None, texts=None):
    """L2-normalised embeddings of images (N, D) or texts (N, D), computed by the projection heads."""
    import torch.nn.functional as F

    dev = next(model.parameters()).device
    if images is not None:
        pix = processor.image_processor(images=list(images), return_tensors="pt")["pixel_values"].to(dev)
        return F.normalize(_features(model.get_image_features(pixel_values=pix)), dim=-1)
    tok = processor.tokenizer(list(texts), padding=True, return_tensors="pt").to(dev)
    return F.normalize(_features(model.get_text_features(input_ids=tok["input_ids"],
                                                         attention_mask=tok["attention_mask"])), dim=-1)


def similarity(model, processor, images, texts):
    """Cosine similarity (N_images, N_texts) between images and texts, without gradients."""
    import torch

    was_training = model.training
    model.eval()
    with torch.no_grad():
        sim = encode(model, processor, images=images) @ encode(model, processor, texts=texts).t()
    model.train(was_training)
    return sim


def train_contrastive(model, processor, cfg: ContrastiveConfig | None = None,
                      callback: Callable[[int, dict, object], None] | None = None, progress: bool = True,
                      pool: ScenePool | None = None) -> dict:
    """Train a CLIPModel or AlignModel in place on ShapesWorld pairs; returns the history.

    Args:
        model: a CLIPModel or AlignModel (anything with get_image_features / get_text_features).
        processor: its processor (image_processor + tokenizer).
        cfg: hyper-parameters (defaults: ContrastiveConfig()).
        callback: called as callback(step, history, model) every cfg.log_every steps and at the end,
            e.g. to redraw a similarity matrix in a notebook.
        pool: a prebuilt ScenePool (else one is built from cfg).
    Returns:
        {"step", "loss", "lr", "scale": lists every cfg.log_every steps, "seconds": wall time,
        "cpu_seconds": CPU time, "config": asdict(cfg)}.
    """
    import torch
    from ..progress import bar as tqdm  # tqdm.auto's bar; honours TQDM_DISABLE, ends finished in a saved notebook

    cfg = cfg or ContrastiveConfig()
    torch.manual_seed(cfg.seed)
    t0, c0 = time.perf_counter(), time.process_time()
    ip = processor.image_processor
    image_size = (ip.crop_size if ip.do_center_crop else ip.size)["height"]
    pool = pool or ScenePool(cfg, image_size=image_size)
    dev = next(model.parameters()).device
    opt = adamw(param_groups(model.named_parameters(), cfg.weight_decay), cfg.lr)  # 1-D tensors undecayed

    def lr_at(step: int) -> float:
        if step < cfg.warmup:
            return (step + 1) / cfg.warmup
        return 0.5 * (1 + math.cos(math.pi * (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    history: dict = {"step": [], "loss": [], "lr": [], "scale": [], "config": asdict(cfg)}
    model.train()
    bar = tqdm(range(cfg.steps), desc="contrastive", disable=not progress)
    running = None
    for step in bar:
        images, texts, negs = pool.batch(cfg.batch_size)
        all_texts = texts + negs if cfg.hard_negatives else texts
        pix = processor.image_processor(images=images, return_tensors="pt")["pixel_values"].to(dev)
        tok = processor.tokenizer(all_texts, padding=True, return_tensors="pt").to(dev)
        image_emb = torch.nn.functional.normalize(_features(model.get_image_features(pixel_values=pix)), dim=-1)
        text_emb = torch.nn.functional.normalize(_features(model.get_text_features(
            input_ids=tok["input_ids"], attention_mask=tok["attention_mask"])), dim=-1)
        loss = contrastive_loss(image_emb, text_emb, logit_scale(model), all_texts)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
        opt.step()
        sched.step()
        _clamp_scale(model)
        running = loss.item() if running is None else 0.9 * running + 0.1 * loss.item()
        bar.set_postfix(loss=f"{running:.3f}")
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
            history["step"].append(step + 1)
            history["loss"].append(running)
            history["lr"].append(sched.get_last_lr()[0])
            history["scale"].append(float(logit_scale(model).detach()))
            if callback is not None:
                callback(step + 1, history, model)
    model.eval()
    history["seconds"] = time.perf_counter() - t0  # wall clock, scene pool included
    history["cpu_seconds"] = time.process_time() - c0  # CPU time of all threads (robust to a busy machine)
    return history


# ---------------------------------------------------------------------------------------------
# held-out evaluation (the protocol the bundled model cards report)
# ---------------------------------------------------------------------------------------------

def zero_shot_accuracy(model, processor, scenes, labels: Sequence[str] = LABELS, template: str = TEMPLATE) -> float:
    """Fraction of one-object scenes whose 'colour shape' label gets the highest similarity."""
    sim = similarity(model, processor, [s.image for s in scenes], [template.format(x) for x in labels])
    truth = [list(labels).index(s.objects[0].name) for s in scenes]
    return float((sim.argmax(1).cpu().numpy() == np.array(truth)).mean())


def distinct_caption_scenes(n: int, seed: int = 0, objects: int = 2, split: str = "test") -> list:
    """The first n scenes of a ShapesWorld stream whose captions are all different (a clean retrieval gallery)."""
    from ..data import ShapesWorld

    world = ShapesWorld(4 * n + 50, seed=seed, objects=objects, split=split)
    seen, out = set(), []
    for s in world:
        if s.caption not in seen:
            seen.add(s.caption)
            out.append(s)
            if len(out) == n:
                return out
    raise RuntimeError(f"fewer than {n} distinct captions in {len(world)} scenes")


def retrieval_recall(model, processor, scenes, k: int = 1) -> dict[str, float]:
    """Image->text and text->image recall@k of scenes against their own captions (gallery = the scenes)."""
    sim = similarity(model, processor, [s.image for s in scenes], [s.caption for s in scenes])  # (N, N)
    target = np.arange(len(scenes))[:, None]
    i2t = (sim.topk(k, dim=1).indices.cpu().numpy() == target).any(1).mean()
    t2i = (sim.t().topk(k, dim=1).indices.cpu().numpy() == target).any(1).mean()
    return {f"image_to_text_r@{k}": float(i2t), f"text_to_image_r@{k}": float(t2i)}
