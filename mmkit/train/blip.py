"""Train tiny BLIP models (captioning, VQA, image-text matching) on ShapesWorld.

The models are the Hugging Face classes themselves (BlipForConditionalGeneration,
BlipForQuestionAnswering, BlipForImageTextRetrieval) built from small configs; the loops here are
plain PyTorch: AdamW, linear warm-up then linear decay, gradient clipping, a tqdm bar.
"""
from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from ..data.shapes import PIXEL_MEAN, PIXEL_STD
from .common import adamw, flat_if, param_groups, warmup_linear

DEC_TOKEN = "[DEC]"  # BLIP's decoder start token (text_config.bos_token_id)
HEADS = {"caption": "BlipForConditionalGeneration", "vqa": "BlipForQuestionAnswering",
         "itm": "BlipForImageTextRetrieval"}


@dataclass
class BlipShapesConfig:
    """Architecture of a tiny BLIP for 64 px ShapesWorld images."""

    image_size: int = 64  # input side in pixels
    patch_size: int = 8  # 64 / 8 = an 8x8 patch grid for the attention maps
    hidden: int = 128  # width of the vision and text transformers (BLIP's VQA decoder needs them equal)
    heads: int = 4  # attention heads in every layer
    mlp: int = 512  # feed-forward width
    vision_layers: int = 2  # ViT encoder layers (few layers keep attention maps local)
    text_layers: int = 2  # text layers, each with self- and cross-attention
    max_text_len: int = 40  # position embeddings (the longest ShapesWorld question is ~16 tokens)
    image_text_hidden: int = 128  # ITC projection width (BlipForImageTextRetrieval)
    mean: tuple = PIXEL_MEAN  # per-channel pixel mean of ShapesWorld images
    std: tuple = PIXEL_STD  # per-channel pixel std of ShapesWorld images


@dataclass
class BlipTrainConfig:
    """One training run of one BLIP head."""

    steps: int = 1500  # optimiser steps
    batch_size: int = 64  # images per step
    lr: float = 1e-3  # peak learning rate
    warmup: float = 0.05  # share of steps with a linear warm-up
    weight_decay: float = 0.05  # AdamW decoupled weight decay (not on biases and norms)
    clip: float = 1.0  # gradient-norm clipping
    n_train: int = 20000  # distinct ShapesWorld training scenes (split="train")
    objects: tuple = (1, 2)  # objects per scene
    seed: int = 0  # seeds torch, numpy, python and the scene stream
    bf16: bool = True  # bf16 autocast on CPUs that support it (about 2x faster on AVX512-BF16), else fp32
    questions_per_image: int = 4  # VQA only: questions sampled per image and step (0 = all of them)
    itc_weight: float = 0.5  # ITM only: weight of the contrastive loss next to the matching loss
    style: object = "plain"  # ShapesWorld looks of the training scenes ("train": every training style)
    empty: float = 0.0  # share of training scenes with no shapes ("there are no shapes")
    big_shapes: float = 0.0  # share of training scenes with bigger large objects (ShapesWorld's `big_shapes`)
    extra: dict = field(default_factory=dict)  # free-form notes recorded in the recipe


# ------------------------------------------------------------------------------------------------
# processor, config, model
# ------------------------------------------------------------------------------------------------

def build_processor(arch: BlipShapesConfig = BlipShapesConfig(), texts=None):
    """A BlipProcessor: 64 px image processor with ShapesWorld mean/std + WordPiece tokenizer with [DEC]."""
    from transformers import BlipProcessor
    from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil

    from .tokenizer import train_wordpiece

    tok = train_wordpiece(texts)
    tok.add_special_tokens({"bos_token": DEC_TOKEN})
    size = {"height": arch.image_size, "width": arch.image_size}
    image_processor = BlipImageProcessorPil(size=size, image_mean=list(arch.mean), image_std=list(arch.std))
    return BlipProcessor(image_processor=image_processor, tokenizer=tok)


def blip_config(arch: BlipShapesConfig, tokenizer):
    """A BlipConfig whose special-token ids agree with the tokenizer ([DEC] start, [SEP] end, [PAD])."""
    from transformers import BlipConfig

    ids = dict(bos_token_id=tokenizer.convert_tokens_to_ids(DEC_TOKEN), sep_token_id=tokenizer.sep_token_id,
               eos_token_id=tokenizer.sep_token_id, pad_token_id=tokenizer.pad_token_id)
    text = dict(vocab_size=len(tokenizer), hidden_size=arch.hidden, encoder_hidden_size=arch.hidden,
                intermediate_size=arch.mlp, projection_dim=arch.image_text_hidden,
                num_hidden_layers=arch.text_layers, num_attention_heads=arch.heads,
                max_position_embeddings=arch.max_text_len, **ids)
    vision = dict(hidden_size=arch.hidden, intermediate_size=arch.mlp, projection_dim=arch.image_text_hidden,
                  num_hidden_layers=arch.vision_layers, num_attention_heads=arch.heads,
                  image_size=arch.image_size, patch_size=arch.patch_size, initializer_range=0.02)
    return BlipConfig(text_config=text, vision_config=vision, projection_dim=arch.image_text_hidden,
                      image_text_hidden_size=arch.image_text_hidden)


def new_model(head: str, config):
    """A randomly initialised BLIP model for head 'caption' | 'vqa' | 'itm', with a matching generation config."""
    import transformers

    model = getattr(transformers, HEADS[head])(config)
    sincos_positions_(model.vision_model.embeddings.position_embedding)
    if head != "itm":
        t = config.text_config
        g = model.generation_config
        g.bos_token_id, g.eos_token_id, g.pad_token_id = t.bos_token_id, t.sep_token_id, t.pad_token_id
        g.decoder_start_token_id = t.bos_token_id
        g.max_new_tokens, g.num_beams, g.do_sample = (24 if head == "caption" else 4), 1, False
        g.max_length = None
    return model


def sincos_positions_(pos, scale: float = 0.5) -> None:
    """Overwrite a ViT position table (1, 1+G*G, D) in place with 2-D sine-cosine codes (CLS row: zeros).

    Learned from scratch, positions take many steps to emerge; a 2-D code from the start lets a
    tiny model learn "left of" / "above" quickly. The table stays trainable.
    """
    import torch

    n, dim = pos.shape[1] - 1, pos.shape[2]
    g = int(round(n ** 0.5))
    q = dim // 4
    freq = 1.0 / (100.0 ** (torch.arange(q, dtype=torch.float) / q))  # (q,)
    ys, xs = torch.meshgrid(torch.arange(g, dtype=torch.float), torch.arange(g, dtype=torch.float), indexing="ij")
    ax = xs.reshape(-1, 1) * freq  # (G*G, q) row-major patch order, like the patch embedding's flatten
    ay = ys.reshape(-1, 1) * freq  # (G*G, q)
    code = torch.cat([ax.sin(), ax.cos(), ay.sin(), ay.cos()], dim=1)  # (G*G, 4q)
    with torch.no_grad():
        pos.zero_()
        pos[0, 1:, : 4 * q] = scale * code


def init_from(model, donor) -> int:
    """Copy every parameter whose name and shape match (e.g. a captioner's vision model). Returns count.

    The donor's text decoder also seeds a text encoder (`text_decoder.bert.*` -> `text_encoder.*`).
    """
    import torch

    src = dict(donor.state_dict())
    src.update({"text_encoder." + k[len("text_decoder.bert."):]: v for k, v in src.items()
                if k.startswith("text_decoder.bert.")})
    dst = model.state_dict()
    copied = {k: v for k, v in src.items() if k in dst and dst[k].shape == v.shape}
    with torch.no_grad():
        model.load_state_dict({**dst, **copied})
    return len(copied)


# ------------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------------

class ShapesTensors:
    """ShapesWorld scenes pre-rendered as uint8 pixels (normalised per batch) plus their texts."""

    def __init__(self, n: int, arch: BlipShapesConfig, seed: int = 0, split: str = "train", objects=(1, 2),
                 style="plain", empty: float = 0.0, big_shapes: float = 0.0):
        import torch

        from ..data import ShapesWorld
        from ..data.styles import square_image

        self.scenes = list(ShapesWorld(n, seed=seed, size=arch.image_size, objects=objects, split=split, style=style,
                                       empty=empty, big_shapes=big_shapes))
        side = arch.image_size  # other canvases are resized to the processor's square, as it would
        arr = np.stack([np.asarray(square_image(s.image, side)) for s in self.scenes])  # (N, H, W, 3) uint8
        self.pixels = torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()  # (N, 3, H, W) uint8
        self.mean = torch.tensor(arch.mean).view(1, 3, 1, 1)
        self.std = torch.tensor(arch.std).view(1, 3, 1, 1)

    def pixel_values(self, idx):
        """Normalised pixels of the scenes idx: (B, 3, H, W) float, what BlipImageProcessor gives."""
        return (self.pixels[idx].float() / 255 - self.mean) / self.std

    def __len__(self) -> int:
        return len(self.scenes)


def _tokenize(tokenizer, texts, bos: int | None = None):
    """Padded ids and mask; with bos, position 0 ([CLS]) becomes the decoder start token."""
    enc = tokenizer(list(texts), padding=True, return_tensors="pt")
    ids = enc["input_ids"]  # (B, T)
    if bos is not None:
        ids[:, 0] = bos
    return ids, enc["attention_mask"]


def _labels(ids, mask):
    """Decoder labels: the ids with padding ignored (-100); the model shifts them itself."""
    return ids.masked_fill(mask == 0, -100)  # (B, T)


# ------------------------------------------------------------------------------------------------
# losses (one batch of scene indices -> scalar loss)
# ------------------------------------------------------------------------------------------------

def caption_loss(model, tokenizer, data: ShapesTensors, idx):
    """Teacher-forced captioning cross-entropy on the scenes idx.

    Args:
        idx: (B,) long tensor of scene indices into data; decoder input is [DEC] caption [SEP].
    """
    ids, mask = _tokenize(tokenizer, [data.scenes[i].caption for i in idx], bos=model.config.text_config.bos_token_id)
    out = model(pixel_values=data.pixel_values(idx), input_ids=ids, attention_mask=mask, labels=_labels(ids, mask))
    return out.loss


def vqa_loss(model, tokenizer, data: ShapesTensors, idx, questions_per_image: int = 0, rng=None):
    """Answer-generation cross-entropy on k questions of each scene idx (all if k=0; one vision pass per image).

    Args:
        idx: (B,) long tensor of scene indices; the text encoder sees (Q, Tq) questions, Q = B * k.
        questions_per_image: k; rng: the random.Random that samples them.
    """
    import torch

    rng = rng or random
    rows, questions, answers = [], [], []
    for j, i in enumerate(idx):
        qas = data.scenes[i].qa
        if 0 < questions_per_image < len(qas):
            qas = rng.sample(qas, questions_per_image)
        for qa in qas:
            rows.append(j)
            questions.append(qa.question)
            answers.append(qa.answer)
    image_embeds = model.vision_model(pixel_values=data.pixel_values(idx)).last_hidden_state  # (B, 1+P, D)
    image_embeds = image_embeds[torch.tensor(rows)]  # (Q, 1+P, D) one row per question
    q_ids, q_mask = _tokenize(tokenizer, questions)
    question_embeds = model.text_encoder(input_ids=q_ids, attention_mask=q_mask, encoder_hidden_states=image_embeds,
                                         encoder_attention_mask=torch.ones(image_embeds.shape[:2], dtype=torch.long)
                                         ).last_hidden_state  # (Q, Tq, D)
    a_ids, a_mask = _tokenize(tokenizer, answers, bos=model.config.text_config.bos_token_id)
    # BlipForQuestionAnswering.generate lets the decoder see every question position (padding included): do the same
    out = model.text_decoder(input_ids=a_ids, attention_mask=a_mask, encoder_hidden_states=question_embeds,
                             encoder_attention_mask=torch.ones_like(q_mask), labels=_labels(a_ids, a_mask),
                             reduction="mean")
    return out.loss


def itm_loss(model, tokenizer, data: ShapesTensors, idx, itc_weight: float = 0.5, rng=None):
    """Matching loss on (true caption, attribute-swapped negative, another scene's caption) + contrastive loss.

    Args:
        idx: (B,) long tensor of scene indices; the ITM head scores 3B (image, text) pairs.
        itc_weight: weight of the image-text contrastive loss on the [CLS] projections (B x B).
        rng: random.Random choosing which other scene's caption is the easy negative.
    """
    import torch
    import torch.nn.functional as F

    rng = rng or random
    B = len(idx)
    pos = [data.scenes[i].caption for i in idx]
    hard = [data.scenes[i].negative for i in idx]
    shift = [(j + 1 + rng.randrange(B - 1)) % B for j in range(B)]
    other = [pos[s] if pos[s] != pos[j] else hard[j] for j, s in enumerate(shift)]
    image_embeds = model.vision_model(pixel_values=data.pixel_values(idx)).last_hidden_state  # (B, 1+P, D)
    ids, mask = _tokenize(tokenizer, pos + hard + other)  # (3B, T)
    img3 = image_embeds.repeat(3, 1, 1)  # (3B, 1+P, D) image j for rows j, B+j, 2B+j
    fused = model.text_encoder(input_ids=ids, attention_mask=mask, encoder_hidden_states=img3,
                               encoder_attention_mask=torch.ones(img3.shape[:2], dtype=torch.long)).last_hidden_state
    logits = model.itm_head(fused[:, 0])  # (3B, 2) from the [CLS] token
    target = torch.cat([torch.ones(B), torch.zeros(2 * B)]).long()  # (3B,)
    loss = F.cross_entropy(logits, target, weight=torch.tensor([1.0, 2.0]))  # balance 1 positive : 2 negatives
    if itc_weight > 0:
        text = model.text_encoder(input_ids=ids[:B], attention_mask=mask[:B]).last_hidden_state  # (B, T, D)
        i_feat = F.normalize(model.vision_proj(image_embeds[:, 0]), dim=-1)  # (B, E)
        t_feat = F.normalize(model.text_proj(text[:, 0]), dim=-1)  # (B, E)
        sim = i_feat @ t_feat.t() / 0.07  # (B, B) image x text
        same = torch.tensor([[a == b for b in pos] for a in pos], dtype=torch.float)  # duplicate captions count as matches
        target_sim = same / same.sum(1, keepdim=True)
        loss = loss + itc_weight * 0.5 * (F.cross_entropy(sim, target_sim) + F.cross_entropy(sim.t(), target_sim))
    return loss


LOSSES = {"caption": caption_loss, "vqa": vqa_loss, "itm": itm_loss}


# ------------------------------------------------------------------------------------------------
# the loop
# ------------------------------------------------------------------------------------------------

FLAT = flat_if("norm", "embedding", lower=True)  # no weight decay on norms and embeddings


def train(head: str, model, tokenizer, data: ShapesTensors, cfg: BlipTrainConfig, progress: bool = True) -> dict:
    """Train one head in place. Returns {'train_seconds', 'final_loss', 'losses' (EMA every 50 steps), ...}.

    Args:
        head: "caption" | "vqa" | "itm" (picks the loss); model: the matching Blip* model.
        tokenizer: the processor's tokenizer; data: ShapesTensors of training scenes.
    """
    import torch
    from ..progress import bar as tqdm  # tqdm.auto's bar; honours TQDM_DISABLE, ends finished in a saved notebook

    from ..config import seed_everything

    seed_everything(cfg.seed)
    rng = random.Random(cfg.seed)
    model.train()
    opt = adamw(param_groups(model.named_parameters(), cfg.weight_decay, FLAT), cfg.lr)
    sched = warmup_linear(opt, int(cfg.warmup * cfg.steps), cfg.steps)
    order = np.random.default_rng(cfg.seed).permutation(len(data))
    kwargs = {"itm": {"itc_weight": cfg.itc_weight, "rng": rng},
              "vqa": {"questions_per_image": cfg.questions_per_image, "rng": rng}}.get(head, {})
    use_bf16 = cfg.bf16 and next(model.parameters()).device.type == "cpu" and _cpu_bf16()
    losses, ema, t0, c0, pos = [], None, time.perf_counter(), time.process_time(), 0
    bar = tqdm(range(cfg.steps), desc=f"blip-{head}", disable=not progress, mininterval=2)
    for step in bar:
        if pos + cfg.batch_size > len(order):
            order, pos = np.random.default_rng(cfg.seed + step).permutation(len(data)), 0
        idx = torch.from_numpy(order[pos:pos + cfg.batch_size].copy())
        pos += cfg.batch_size
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
            loss = LOSSES[head](model, tokenizer, data, idx, **kwargs)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        sched.step()
        ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
        if step % 50 == 0 or step == cfg.steps - 1:
            losses.append(round(ema, 4))
            bar.set_postfix(loss=f"{ema:.3f}")
    model.eval()
    return {"train_seconds": round(time.perf_counter() - t0, 1), "cpu_seconds": round(time.process_time() - c0, 1),
            "final_loss": ema, "losses": losses, "bf16_autocast": use_bf16}


def _cpu_bf16() -> bool:
    """True when this CPU has native bf16 matrix instructions (AVX512-BF16 or AMX)."""
    import torch

    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def recipe(arch: BlipShapesConfig, cfg: BlipTrainConfig) -> dict:
    """The hyper-parameters of a run as a JSON-able dict (for mmkit.json and README.md)."""
    d = {**asdict(arch), **{k: v for k, v in asdict(cfg).items() if k != "extra"}, **cfg.extra}
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


def param_count(model) -> int:
    """Number of parameters (tied weights counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())



# ------------------------------------------------------------------------------------------------
# held-out evaluation through mmkit.load_model + the task functions (the path users take)
# ------------------------------------------------------------------------------------------------

def evaluate_caption(m, scenes) -> dict:
    """Greedy captions of scenes vs their canonical caption: exact match, BLEU-1..4, ROUGE-L, CIDEr."""
    from .. import tasks
    from ..metrics import caption_scores, exact_match

    hyps = tasks.caption(m, [s.image for s in scenes], batch_size=64)
    refs = [s.caption for s in scenes]
    scores = caption_scores({i: [h] for i, h in enumerate(hyps)}, {i: [r] for i, r in enumerate(refs)})
    return {"exact_match": exact_match(hyps, refs), **scores, "n": len(scenes)}


def evaluate_vqa(m, scenes, max_questions: int | None = None) -> dict:
    """Greedy answers to the questions of scenes (the first max_questions): accuracy overall and per kind."""
    from .. import tasks
    from ..metrics import vqa_accuracy

    pairs = [(s, q) for s in scenes for q in s.qa][:max_questions]
    preds = tasks.answer(m, [s.image for s, _ in pairs], [q.question for _, q in pairs])
    result = {"accuracy": vqa_accuracy(preds, [q.answer for _, q in pairs]), "n": len(pairs)}
    for kind in sorted({q.kind for _, q in pairs}):
        sel = [(p, q.answer) for p, (_, q) in zip(preds, pairs) if q.kind == kind]
        result[f"accuracy_{kind}"] = vqa_accuracy([p for p, _ in sel], [a for _, a in sel])
    return result


def evaluate_itm(m, scenes) -> dict:
    """ROC AUC of P(match) for each scene's caption vs its attribute-swapped negative (+ pair accuracy per kind)."""
    from .. import tasks
    from ..metrics import roc_auc

    images = [s.image for s in scenes]
    pos = tasks.match(m, images, [s.caption for s in scenes], paired=True).numpy()  # (N,) P(match)
    neg = tasks.match(m, images, [s.negative for s in scenes], paired=True).numpy()  # (N,)
    result = {"auc": roc_auc(pos, neg), "accuracy@0.5": float(((pos > 0.5).mean() + (neg <= 0.5).mean()) / 2),
              "pair_accuracy": float((pos > neg).mean()), "n": len(scenes)}
    for kind in sorted({s.negative_kind for s in scenes}):
        sel = np.array([s.negative_kind == kind for s in scenes])
        result[f"pair_accuracy_{kind}"] = float((pos[sel] > neg[sel]).mean())
    return result
