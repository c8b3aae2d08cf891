"""What the three captioners share: config, vocabulary, the training loop, generation, checkpoints, loss plot.

A subclass provides four things: `decode_train(feats, input_ids)` (teacher-forced logits),
`init_state(feats)` and `step(prefix, state)` (one decoding step, see `decoding.py`), and its config
class; feats are the projected image grid (B, N, dim). Everything else (fit, generate, save, load)
lives here once.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..data.shapes import PIXEL_MEAN, PIXEL_STD
from ..errors import InputError
from ..train.common import adamw, flat_if, param_groups
from .decoding import Decoded, decode
from .encoders import build_encoder, images_to_uint8

REGISTRY: dict[str, type] = {}  # kind name -> Captioner subclass (filled by @register)


# no weight decay on norms, embeddings and position tables
FLAT = flat_if("norm", "ln_", "embed", "wte", "wpe", suffixes=("pos",))


@dataclass
class CaptionerConfig:
    """Architecture options every captioner has (subclasses add their own)."""

    encoder: str = "pretrained"  # "pretrained": frozen ShapesWorld CNN (the classic recipe); "scratch": trained too
    image_size: int = 64  # input side in pixels; other sizes are resized to it
    dim: int = 128  # width of the projected image features and of the word embeddings
    max_len: int = 32  # longest caption in tokens, start and end included
    channels: tuple = (32, 64, 128)  # "scratch" only: widths of the CNN's three stride-2 stages
    mean: tuple = PIXEL_MEAN  # "scratch" only: per-channel pixel mean of ShapesWorld images
    std: tuple = PIXEL_STD  # "scratch" only: per-channel pixel std of ShapesWorld images


@dataclass
class FitConfig:
    """One training run."""

    steps: int = 600  # optimiser steps
    batch_size: int = 32  # (image, caption) pairs per step
    lr: float = 2e-3  # peak learning rate
    warmup: float = 0.05  # share of the steps with a linear warm-up (then linear decay to 0)
    weight_decay: float = 0.01  # AdamW decoupled weight decay (not on biases, norms, embeddings)
    clip: float = 1.0  # gradient-norm clipping
    seed: int = 0  # seeds the data order (initial weights are seeded by the seed given to the model)
    checkpoint_dir: str | None = None  # save the model here at the end (and every checkpoint_every steps)
    checkpoint_every: int = 0  # steps between checkpoints (0: only at the end)


def register(cls):
    """Class decorator: make a Captioner subclass loadable by its `kind` name."""
    REGISTRY[cls.kind] = cls
    return cls


def default_tokenizer(texts=None):
    """A word-level WordPiece vocabulary over ShapesWorld's words ([CLS] starts, [SEP] ends, [PAD] pads).

    Words outside the vocabulary are spelled in characters, never [UNK] (see `mmkit.train.tokenizer`).
    """
    from ..data import ShapesWorld
    from ..train.tokenizer import train_wordpiece

    return train_wordpiece(list(texts or []) + ShapesWorld.vocabulary(), vocab_size=1000)  # 1000: every word


class Captioner(nn.Module):
    """Base class: an image encoder, a text decoder, and fit / generate / save / load.

    Args:
        config: the subclass's config dataclass; tokenizer: a BertTokenizerFast (default: ShapesWorld words).
        seed: seeds the initial weights. pretrain: False skips encoder pretraining (weights come from a checkpoint).
    """

    kind = "captioner"
    config_class = CaptionerConfig

    def __init__(self, config=None, tokenizer=None, seed: int = 0, pretrain: bool = True):
        super().__init__()
        self.config = c = config or self.config_class()
        self.tokenizer = tokenizer or default_tokenizer()
        self.bos_id, self.eos_id = self.tokenizer.cls_token_id, self.tokenizer.sep_token_id
        self.pad_id = self.tokenizer.pad_token_id
        self.vocab_size = len(self.tokenizer)
        self.banned_ids = [i for i in self.tokenizer.all_special_ids if i != self.eos_id]  # [PAD], [CLS], [UNK], ...
        self.encoder = build_encoder(c, pretrain)
        torch.manual_seed(seed)  # the trainable part's initial weights (subclasses build it next)
        self.project = nn.Sequential(nn.Linear(self.encoder.out_dim, c.dim), nn.LayerNorm(c.dim))

    # -- what subclasses provide -------------------------------------------------------------
    def decode_train(self, feats: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: logits (B, T-1, V) for input_ids[:, 1:] given feats (B, N, dim) and input_ids[:, :-1]."""
        raise NotImplementedError

    def init_state(self, feats: torch.Tensor) -> dict:
        """The decoder's starting state for projected image features (B, N, dim); tensors with batch on dim 0."""
        raise NotImplementedError

    def step(self, prefix: torch.Tensor, state: dict, attention: bool = False):
        """One decoding step: prefix (B, t) -> (logits (B, V), state, attention (B, N) or None).

        attention: whether the caller wants the maps (a model may skip computing them otherwise)."""
        raise NotImplementedError

    # -- images and text -----------------------------------------------------------------------
    def grid(self, pixels_uint8: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Encoder output for uint8 images (N, 3, S, S): (N, G*G, encoder dim); no gradient."""
        with torch.no_grad():
            return torch.cat([self.encoder(self.encoder.pixel_values(pixels_uint8[i:i + batch_size]))
                              for i in range(0, len(pixels_uint8), batch_size)])

    def forward(self, pixel_values: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (B, T-1, V) from pixel_values (B, 3, S, S) and input_ids (B, T)."""
        return self.decode_train(self.project(self.encoder(pixel_values)), input_ids)

    def encode_text(self, captions: list[str]) -> torch.Tensor:
        """Captions -> input_ids (B, T) = [CLS] words [SEP], right-padded with [PAD], cut at max_len."""
        enc = self.tokenizer(list(captions), padding=True, truncation=True, max_length=self.config.max_len,
                             return_tensors="pt")
        return enc["input_ids"]

    def decode_text(self, ids: list[int]) -> str:
        return " ".join(self.tokenizer.decode(ids, skip_special_tokens=True).split()).replace(" ,", ",")

    # -- training ------------------------------------------------------------------------------
    def loss(self, grid: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        """Mean teacher-forced cross-entropy over real (non-pad) target tokens; grid: (B, N, encoder dim)."""
        logits = self.decode_train(self.project(grid), input_ids)  # (B, T-1, V)
        target = input_ids[:, 1:].masked_fill(input_ids[:, 1:] == self.pad_id, -100)  # (B, T-1)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=-100)

    def sequence_logprob(self, grid: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        """Sum of log p(token) over each caption's real tokens: (B,), differentiable (used by SCST)."""
        logp = self.decode_train(self.project(grid), input_ids).log_softmax(-1)  # (B, T-1, V)
        target = input_ids[:, 1:]  # (B, T-1)
        tok = logp.gather(2, target[..., None]).squeeze(2)  # (B, T-1)
        return (tok * (target != self.pad_id)).sum(1)

    def fit(self, images, captions, config: FitConfig | None = None, progress: bool = True) -> dict:
        """Train with teacher forcing, AdamW, linear warm-up and decay, gradient clipping.

        Args:
            images: N images (anything `load_image` takes); captions: N strings, or N lists of references
                (each reference becomes one training pair).
        Returns: {"loss": per-step losses, "seconds": wall time, "steps": steps}.
        """
        from ..progress import bar as tqdm  # tqdm.auto's bar; honours TQDM_DISABLE, ends finished in a saved notebook
        from transformers import get_linear_schedule_with_warmup

        from ..config import seed_everything

        cfg = config or FitConfig()
        if len(images) != len(captions) or not len(images):
            raise InputError(f"{len(images)} images but {len(captions)} captions; pass one caption (or list) per image")
        seed_everything(cfg.seed)
        pixels = images_to_uint8(images, self.config.image_size)  # (N, 3, S, S)
        frozen = not self.encoder.trainable
        grids = self.grid(pixels) if frozen else None  # (N, G*G, Denc) computed once when the encoder is frozen
        rows, texts = [], []
        for i, c in enumerate(captions):
            for ref in [c] if isinstance(c, str) else c:
                rows.append(i)
                texts.append(ref)
        rows = torch.tensor(rows)  # (P,) image of each (image, caption) pair
        ids = self.encode_text(texts)  # (P, T)
        opt = adamw(param_groups(self.named_parameters(), cfg.weight_decay, FLAT), cfg.lr)
        sched = get_linear_schedule_with_warmup(opt, max(1, int(cfg.warmup * cfg.steps)), cfg.steps)
        gen = torch.Generator().manual_seed(cfg.seed)
        order, pos, losses = torch.randperm(len(rows), generator=gen), 0, []
        self.train()
        t0 = time.perf_counter()
        bar = tqdm(range(cfg.steps), desc=self.kind, disable=not progress, mininterval=1)
        for step in bar:
            if pos + cfg.batch_size > len(order):
                order, pos = torch.randperm(len(rows), generator=gen), 0
            idx = order[pos:pos + cfg.batch_size]  # (B,) pair indices
            pos += cfg.batch_size
            batch = ids[idx]  # (B, T)
            batch = batch[:, : int((batch != self.pad_id).sum(1).max())]  # (B, T') trim shared padding
            im = rows[idx]  # (B,) image of each pair
            grid = grids[im] if frozen else self.encoder(self.encoder.pixel_values(pixels[im]))  # (B, N, Denc)
            loss = self.loss(grid, batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(self.parameters(), cfg.clip)
            opt.step()
            sched.step()
            losses.append(loss.item())
            if step % 20 == 0:
                bar.set_postfix(loss=f"{loss.item():.3f}")
            if cfg.checkpoint_dir and cfg.checkpoint_every and (step + 1) % cfg.checkpoint_every == 0:
                self.save(cfg.checkpoint_dir)
        self.eval()
        seconds = time.perf_counter() - t0
        if cfg.checkpoint_dir:
            self.save(cfg.checkpoint_dir)
        return {"loss": losses, "seconds": round(seconds, 1), "steps": cfg.steps}

    # -- generation ----------------------------------------------------------------------------
    @torch.no_grad()
    def decode_batch(self, pixels_uint8: torch.Tensor, attention: bool = False, **options) -> Decoded:
        """Decode uint8 pixels (B, 3, S, S) with the `decoding.decode` options."""
        self.eval()
        state = self.init_state(self.project(self.grid(pixels_uint8)))
        return decode(self.make_step(attention), state, self.bos_id, self.eos_id, **options)

    def make_step(self, attention: bool = False):
        """The step function to decode with: special tokens other than the end token are never generated;
        without attention, maps are dropped (or never computed)."""
        banned = torch.tensor(self.banned_ids, dtype=torch.long)

        def step(prefix, state):
            logits, state, attn = self.step(prefix, state, attention)
            return logits.index_fill(1, banned, float("-inf")), state, (attn if attention else None)

        return step

    def generate(self, images, max_new_tokens: int = 30, num_beams: int = 1, do_sample: bool = False,
                 temperature: float = 1.0, top_p: float = 1.0, top_k: int | None = None, length_penalty: float = 1.0,
                 seed: int | None = 0, batch_size: int = 64):
        """Caption one image (-> str) or a list (-> list[str]) with the options of `mmkit.caption`."""
        single = not isinstance(images, (list, tuple))
        ims = [images] if single else list(images)
        if not ims:
            raise InputError("the image list is empty; pass at least one image")
        pixels = images_to_uint8(ims, self.config.image_size)
        opts = dict(max_new_tokens=min(max_new_tokens, self.config.max_len - 1), num_beams=num_beams,
                    do_sample=do_sample, temperature=temperature, top_p=top_p, top_k=top_k,
                    length_penalty=length_penalty)
        gen = torch.Generator().manual_seed(seed) if seed is not None else None  # one stream for all batches
        out = []
        for b in range(0, len(ims), batch_size):
            d = self.decode_batch(pixels[b:b + batch_size], seed=gen, **opts)
            out += [self.decode_text(t) for t in d.tokens]
        return out[0] if single else out

    def attend(self, image, **options) -> tuple[list[str], torch.Tensor]:
        """Caption one image and return (words, attention (T, G, G)): where the decoder looked for each word."""
        pixels = images_to_uint8([image], self.config.image_size)
        d = self.decode_batch(pixels, attention=True, **options)
        if d.attn is None:
            raise InputError(f"{type(self).__name__} has no attention over the image; use ShowAttendTell "
                             "or TransformerCaptioner")
        words = self.tokenizer.convert_ids_to_tokens(d.tokens[0])
        g = self.encoder.grid
        return words, d.attn[0].reshape(-1, g, g)  # (T, G, G)

    # -- checkpoints ---------------------------------------------------------------------------
    def num_parameters(self, trainable_only: bool = False) -> int:
        """Parameters (only those training updates, if trainable_only), tied weights counted once."""
        params = {id(p): p for p in self.parameters() if p.requires_grad or not trainable_only}
        return sum(p.numel() for p in params.values())

    def save(self, directory) -> Path:
        """Write config.json, model.safetensors and the tokenizer files into directory."""
        from safetensors.torch import save_file

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        cfg = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self.config).items()}
        (d / "config.json").write_text(json.dumps({"kind": self.kind, "config": cfg}, indent=1))
        save_file({k: v.detach().contiguous().clone() for k, v in self.state_dict().items()}, str(d / "model.safetensors"))
        self.tokenizer.save_pretrained(str(d))
        return d

    @classmethod
    def load(cls, directory) -> "Captioner":
        """Rebuild a saved captioner (of whichever kind the directory holds)."""
        return load_captioner(directory)


def load_captioner(directory) -> Captioner:
    """Load a captioner saved with `.save(directory)`; InputError when the directory is not one."""
    from safetensors.torch import load_file
    from transformers import BertTokenizerFast

    d = Path(directory)
    meta_path = d / "config.json"
    if not meta_path.is_file() or not (d / "model.safetensors").is_file():
        raise InputError(f"{str(d)!r} holds no saved captioner (config.json + model.safetensors); "
                         "save one with model.save(directory)")
    meta = json.loads(meta_path.read_text())
    if meta.get("kind") not in REGISTRY:
        raise InputError(f"{str(d)!r}: unknown captioner kind {meta.get('kind')!r}; known: {sorted(REGISTRY)}")
    cls = REGISTRY[meta["kind"]]
    names = {f.name for f in fields(cls.config_class)}
    config = cls.config_class(**{k: tuple(v) if isinstance(v, list) else v
                                 for k, v in meta["config"].items() if k in names})
    model = cls(config, tokenizer=BertTokenizerFast.from_pretrained(str(d)), pretrain=False)
    model.load_state_dict(load_file(str(d / "model.safetensors")))
    return model.eval()
