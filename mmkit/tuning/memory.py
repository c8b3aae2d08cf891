"""Will fine-tuning this model fit on that GPU? An estimate from the model's own sizes, not a table.

    weights      P x bytes per weight (fp32 4, fp16/bf16 2, 8-bit 1)
    gradients    T x 4            (T = trained parameters: all of them, or LoRA's adapters)
    optimizer    T x 8            (AdamW keeps two fp32 moments per trained parameter)
    activations  per transformer layer and example, s x h x (34 + 5 a s / h) bytes in 16-bit
                 (Korthikanti et al. 2022, "Reducing activation recomputation"), x2 in fp32,
                 for the vision tower (s = patches + 1) and the text side (s = text_len)
    overhead     CUDA context and allocator slack: 0.8 GB

LoRA still stores the activations (gradients must flow back through every layer to reach the adapters)
but not the gradients and optimizer state of the frozen weights. LoRA over an 8-bit base
(finetune(..., lora=True, load_in_8bit=True), tuning/eightbit.py) keeps the Linear weights in int8 (1 byte)
and every other weight in fp32 (peft's prepare_model_for_kbit_training), and checkpoints the activations:
per layer only its 16-bit input, s x h x 2 bytes, plus one layer's full activations while it is recomputed.
A LoRA estimate carries its 8-bit variant (`eight_bit`), and its summary prints both. The counts come from
the model's config, built on PyTorch's meta device (no memory, no download) for pretrained names.
"""
from __future__ import annotations

from dataclasses import dataclass

GB = 1024 ** 3
OVERHEAD = 0.8 * GB  # CUDA context + allocator slack
BYTES = {"fp32": 4, "fp16": 2, "bf16": 2, "8bit": 1}


@dataclass
class MemoryEstimate:
    """Bytes needed to fine-tune one model, by part; `fits(gb)` and a printable summary."""

    name: str
    params: int
    trained: int
    weights: float
    gradients: float
    optimizer: float
    activations: float
    batch_size: int
    lora: bool
    dtype: str
    eight_bit: "MemoryEstimate | None" = None  # the same LoRA run with load_in_8bit=True (LoRA estimates only)

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer + self.activations + OVERHEAD

    def fits(self, gpu_gb: float) -> bool:
        return self.total <= gpu_gb * GB

    def summary(self, gpu_gb: float = 16.0, gpu: str = "a 16 GB T4") -> str:
        how = "LoRA" if self.lora else "full fine-tuning"
        verdict = "fits on" if self.fits(gpu_gb) else "does NOT fit on"
        return (f"{self.name}, {how}, {self.dtype} weights, batch {self.batch_size}: about {self.total / GB:.1f} GB "
                f"({verdict} {gpu}): weights {self.weights / GB:.2f} GB ({self.params / 1e6:.0f}M params), gradients "
                f"{self.gradients / GB:.2f} GB + AdamW {self.optimizer / GB:.2f} GB ({self.trained / 1e6:.2f}M trained, "
                f"{self.trained / self.params:.1%}), activations {self.activations / GB:.2f} GB, overhead "
                f"{OVERHEAD / GB:.1f} GB" + (self.eight_bit.eight_bit_line(gpu_gb, gpu) if self.eight_bit else ""))

    def eight_bit_line(self, gpu_gb: float = 16.0, gpu: str = "a 16 GB T4") -> str:
        """The second line of a LoRA summary: this (8-bit) estimate in short."""
        verdict = "fits on" if self.fits(gpu_gb) else "does NOT fit on"
        return (f"\n  with load_in_8bit=True (CUDA + bitsandbytes): about {self.total / GB:.1f} GB ({verdict} {gpu}): "
                f"weights {self.weights / GB:.2f} GB (Linear layers in int8), activations {self.activations / GB:.2f} "
                f"GB (checkpointed)")

    def __str__(self) -> str:
        return self.summary()


def _layers(cfg) -> list[tuple[int, int, int]]:
    """(layers, hidden, heads) of each transformer stack of a config (vision, text, or the single stack of ViLT)."""
    out = []
    for sub in ("vision_config", "text_config"):
        c = getattr(cfg, sub, None)
        if c is not None and hasattr(c, "num_hidden_layers"):
            out.append((sub, c))
    if not out:
        out.append(("config", cfg))
    return [(getattr(c, "num_hidden_layers", 0), getattr(c, "hidden_size", 0), getattr(c, "num_attention_heads", 1))
            for _, c in out]


def _tokens(cfg, text_len: int) -> list[int]:
    """Tokens per example of each stack, in _layers' order."""
    vis = getattr(cfg, "vision_config", None)
    if vis is not None and hasattr(vis, "patch_size") and hasattr(vis, "num_hidden_layers"):
        side = vis.image_size if isinstance(vis.image_size, int) else vis.image_size[0]
        n = (side // vis.patch_size) ** 2 + 1
        return [n, text_len] if getattr(cfg, "text_config", None) is not None else [n]
    if hasattr(cfg, "patch_size") and hasattr(cfg, "image_size"):  # ViLT: one stack over text and patches
        return [(cfg.image_size // cfg.patch_size) ** 2 + 1 + text_len]
    return [text_len] * len(_layers(cfg))


def _model_on_meta(name_or_loaded):
    """(a model with the same shapes, its name): the loaded model, or one built on the meta device from a config."""
    import torch

    from ..models import PRETRAINED, Loaded, resolve

    if isinstance(name_or_loaded, Loaded):
        return name_or_loaded.model, name_or_loaded.spec.name
    if hasattr(name_or_loaded, "parameters") and hasattr(name_or_loaded, "config"):
        return name_or_loaded, type(name_or_loaded).__name__
    spec = resolve(name_or_loaded)
    if spec.source == "pretrained" and spec.name in PRETRAINED:
        from ..testing import build_random

        # mmkit.testing's "base" builds have the hub checkpoints' architecture, except the large ones and BLIP-2
        size = None if any(w in spec.name for w in ("large", "l14", "blip2")) else "base"
        if size:  # the real architecture of the hub checkpoint, with no weights in memory
            with torch.device("meta"):
                model, _ = build_random(spec.family, "base")
            return model, spec.name
    from ..models import load_model

    return load_model(spec.name).model, spec.name


def memory_estimate(model, lora: bool = False, batch_size: int = 8, text_len: int = 32, dtype: str = "fp32",
                    lora_r: int = 8) -> MemoryEstimate:
    """Estimate the GPU memory fine-tuning needs (module docstring); print(est) or est.fits(16).

    Args:
        model: a name (pretrained names need no download), a Loaded, or a transformers model.
        lora: LoRA adapters of rank lora_r on the attention queries and values (mmkit.tuning.lora.TARGETS).
        dtype: the weights' type: "fp32", "fp16", "bf16" or "8bit" (LoRA only: finetune's load_in_8bit=True);
            trained parameters stay fp32.
    Returns a MemoryEstimate; with lora=True its .eight_bit is the load_in_8bit=True estimate of the same run.
    """
    from ..errors import InputError

    if dtype not in BYTES:
        raise InputError(f"dtype={dtype!r}: use one of {', '.join(BYTES)}")
    if dtype == "8bit" and not lora:
        raise InputError("dtype='8bit' is LoRA over an 8-bit base (8-bit weights cannot be trained themselves); "
                         "pass lora=True")
    net, name = _model_on_meta(model)
    seen, params = set(), 0
    for p in net.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            params += p.numel()
    if lora:
        from ..families import ADAPTERS

        family = getattr(getattr(model, "spec", None), "family", None) or _family(net)
        row = ADAPTERS.get(family)
        targets = row.lora_targets if row and row.lora_targets else ("query", "value")
        trained = sum(lora_r * (m.in_features + m.out_features) for n, m in net.named_modules()
                      if type(m).__name__ == "Linear" and n.split(".")[-1] in targets)
    else:
        trained = params
    weights = params * BYTES[dtype]
    if dtype == "8bit":  # int8 Linear weights (not the outputs over the vocabulary), the rest fp32
        from .vocab import text_vocab_size

        vocab = text_vocab_size(net.config)
        int8 = sum(m.weight.numel() for m in net.modules()
                   if type(m).__name__ == "Linear" and m.out_features != vocab)
        weights = int8 * 1 + (params - int8) * 4
    act_bytes = 2 if dtype in ("fp16", "bf16", "8bit") else 4
    acts, widest = 0.0, 0.0
    for (layers, h, a), s in zip(_layers(net.config), _tokens(net.config, text_len)):
        per_layer = s * batch_size * h * (34 + 5 * a * s / max(h, 1)) * act_bytes / 2
        if dtype == "8bit":  # gradient checkpointing: each layer's input, and one layer recomputed at a time
            acts += layers * s * batch_size * h * act_bytes
            widest = max(widest, per_layer)
        else:
            acts += layers * per_layer
    est = MemoryEstimate(name, params, trained, weights, trained * 4.0, trained * 8.0, acts + widest, batch_size,
                         lora, dtype)
    if lora and dtype != "8bit":
        est.eight_bit = memory_estimate(model, lora=True, batch_size=batch_size, text_len=text_len, dtype="8bit",
                                        lora_r=lora_r)
    return est


def _family(net) -> str:
    from ..models import CLASS_FAMILY

    return CLASS_FAMILY.get(type(net).__name__, "")
