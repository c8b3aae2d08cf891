"""`finetune(..., lora=True, load_in_8bit=True)`: the frozen base model in 8-bit (bitsandbytes, CUDA only), LoRA
adapters trained on top of it in full precision (QLoRA's recipe with 8-bit weights; Dettmers et al. 2022).

The base is loaded again from its folder or hub id with `BitsAndBytesConfig(load_in_8bit=True)`: its Linear layers
become int8 (about a quarter of fp32's memory), except the output layers over the vocabulary and the task heads
that finetune may grow (they stay plain, so new words and answers get rows). peft's
`prepare_model_for_kbit_training` then makes the remaining weights fp32 and turns on gradient checkpointing.

Everything that cannot work is found before any weight moves and raised as `mmkit.InputError` naming the fix:
no lora=True (8-bit weights cannot be trained themselves), no CUDA GPU, no bitsandbytes or accelerate, or a model
that exists only in memory. A model trained this way saves as an adapter folder (merge=False) that loads onto the
full-precision base anywhere, CPU included, or merged (merge=True) into that full-precision base.
"""
from __future__ import annotations

import importlib.util

from ..errors import InputError


def check_8bit(lora: bool) -> None:
    """Raise InputError unless 8-bit fine-tuning can run here: lora=True, a CUDA GPU, bitsandbytes and accelerate."""
    if not lora:
        raise InputError("load_in_8bit=True needs lora=True: 8-bit weights cannot be trained themselves, only LoRA "
                         "adapters on top of them (peft's prepare_model_for_kbit_training); pass lora=True, or drop "
                         "load_in_8bit")
    import torch

    if not torch.cuda.is_available():
        raise InputError("load_in_8bit=True needs a CUDA GPU (bitsandbytes' 8-bit layers run on CUDA) and this machine "
                         "has none; drop load_in_8bit (LoRA in fp32 works on the CPU), or run on a GPU (Colab: "
                         "Runtime > Change runtime type > T4 GPU)")
    missing = [p for p in ("bitsandbytes", "accelerate") if importlib.util.find_spec(p) is None]
    if missing:
        raise InputError(f"load_in_8bit=True needs the {' and '.join(missing)} package(s), not installed here; "
                         f"pip install {' '.join(missing)} (then restart the kernel), or drop load_in_8bit")


def skip_modules(model, row) -> list[str]:
    """Names of the Linear layers kept out of int8: outputs over the vocabulary (they grow with new words, and are
    tied to the embeddings) and the family's task heads (ADAPTERS' lora_full, trained in full)."""
    import torch

    from .vocab import text_vocab_size

    vocab = text_vocab_size(model.config)
    out = {n.split(".")[-1] for n, m in model.named_modules()
           if isinstance(m, torch.nn.Linear) and m.out_features == vocab}
    return sorted(out | set(row.lora_full))


def load_8bit(base, row):
    """The model of `base` (a Loaded) loaded again with its Linear layers in int8 on the first CUDA GPU, ready for
    LoRA training (peft's prepare_model_for_kbit_training is applied by add_lora(..., kbit=True))."""
    from pathlib import Path

    import transformers
    from transformers import BitsAndBytesConfig

    from ..models import PRETRAINED

    repo = base.spec.repo
    if base.spec.source == "finetuned" or not repo or not (Path(repo).is_dir() or base.spec.name in PRETRAINED
                                                            or "/" in repo):
        raise InputError(f"load_in_8bit=True loads the model again from its folder or hub id, and {base.spec.name!r} "
                         "has neither; save it first (ft.save(path)) and fine-tune the folder")
    config = BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=skip_modules(base.model, row))
    cls = getattr(transformers, type(base.model).__name__)
    try:
        return cls.from_pretrained(repo, quantization_config=config, device_map={"": 0}, use_safetensors=True)
    except (ImportError, RuntimeError, ValueError, OSError) as e:  # a bitsandbytes / CUDA mismatch, mostly
        raise InputError(f"loading {base.spec.name!r} in 8-bit failed ({type(e).__name__}: {str(e)[:300]}); check "
                         "that bitsandbytes matches this CUDA (pip install -U bitsandbytes), or drop load_in_8bit"
                         ) from None
