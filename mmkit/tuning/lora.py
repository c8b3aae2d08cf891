"""LoRA adapters through `peft`, made safe for mmkit's task functions, and adapter directories loaded back.

mmkit's inference speed-ups (mmkit/speedups) replace the forwards of some module instances, and one of them
(BLIP's absorbed cross-attention) reads `key.weight` and `value.weight` directly: on a LoRA model that
would silently skip the adapter. `unfuse` gives every module of a model its class's own forward back, so a
LoRA model runs transformers' code (through peft's layers) everywhere; tests/test_finetune.py checks
mmkit.caption on a LoRA model against peft's own forward. A merged model (plain Linear layers again) gets
the speed-ups back with `fuse_attention`.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..families import ADAPTERS

# The Linear layers that get adapters (attention queries and values, as in the LoRA paper), the modules
# trained in full beside them (task heads that finetune may have grown) and the token embeddings that grow
# are columns of mmkit.families.ADAPTERS: lora_targets, lora_full, word_embeddings.


def unfuse(model) -> int:
    """Give every module of model its class's forward again (undo speedups.fuse_attention); returns how many."""
    n = 0
    for module in model.modules():
        if "forward" in vars(module):
            del module.forward
            n += 1
    return n


def add_lora(model, family: str, r: int = 8, alpha: int = 16, dropout: float = 0.0, new_ids=(), kbit: bool = False):
    """model wrapped as a peft.PeftModel with LoRA adapters (rank r) on the family's lora_targets; the base is frozen.

    Args:
        new_ids: token ids added by grow_vocabulary; their embedding rows are trained too (peft's
            trainable_token_indices), the rest of the embedding table stays frozen.
        kbit: model was loaded in 8-bit (eightbit.load_8bit): peft's prepare_model_for_kbit_training first
            (other weights to fp32, gradient checkpointing on).
    Returns the PeftModel; its .base_model.model is model itself, with peft's layers inside."""
    from peft import LoraConfig, get_peft_model

    from ..errors import InputError

    row = ADAPTERS.get(family)
    if row is None or not row.lora_targets:
        raise InputError(f"LoRA is not set up for the {family!r} family; use lora=False")
    unfuse(model)
    if kbit:
        from peft import prepare_model_for_kbit_training

        # non-reentrant checkpointing: gradients reach the vision tower's adapters although pixels need no grad
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True,
                                                gradient_checkpointing_kwargs={"use_reentrant": False})
    kw = dict(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(row.lora_targets), bias="none")
    if row.lora_full:
        kw["modules_to_save"] = list(row.lora_full)
    if new_ids:
        kw["trainable_token_indices"] = {row.word_embeddings: list(new_ids)}
    return get_peft_model(model, LoraConfig(**kw))


def trainable_share(model) -> tuple[int, int]:
    """(trainable parameters, all parameters) of a model."""
    seen, train, total = set(), 0, 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        train += p.numel() if p.requires_grad else 0
    return train, total


def freeze_norm_statistics(model) -> int:
    """Put the normalisation layers whose weights are frozen (BatchNorm of ALIGN's EfficientNet under LoRA) in eval
    mode, so training does not move their running mean and variance: an adapter folder holds only what was
    trained, and the base it is put back on must have the statistics the training had. Returns how many.
    Call after model.train()."""
    n = 0
    for module in model.modules():
        if getattr(module, "track_running_stats", False) and not any(p.requires_grad for p in module.parameters()):
            module.eval()
            n += 1
    return n


def merged(peft_model):
    """A plain transformers model with the adapters folded into the weights (a copy; peft_model is unchanged)."""
    import copy

    return copy.deepcopy(peft_model).merge_and_unload()


def peft_from_folder(path, dev, dt, attention: bool = False):
    """(peft.PeftModel, processor, the base's spec) of a directory that Finetuned.save(path, merge=False) wrote: the
    base model named in its mmkit.json, read in full precision from its own folder, grown to the saved vocabulary
    (and answers), with the saved adapters on it."""
    from peft import PeftModel

    from .. import models
    from ..errors import InputError

    path = Path(path)
    meta = json.loads((path / "mmkit.json").read_text()) if (path / "mmkit.json").exists() else {}
    base_name = meta.get("base")
    if not base_name:
        raise InputError(f"{str(path)!r} holds a LoRA adapter without mmkit.json naming its base model; save it with "
                         "mmkit's Finetuned.save(path, merge=False), or merge it (merge=True)")
    # not load_model: it holds the model cache's lock while this runs. The base is read from its folder as-is.
    import transformers
    from transformers import AutoConfig, AutoProcessor

    base_spec = models.resolve(base_name)
    arch = AutoConfig.from_pretrained(base_spec.repo).architectures[0]
    kwargs = {"dtype": dt, "use_safetensors": True, **({"attn_implementation": "eager"} if attention else {})}
    model = getattr(transformers, arch).from_pretrained(base_spec.repo, **kwargs).to(dev)
    processor = AutoProcessor.from_pretrained(str(path))
    added = meta.get("added_words") or []
    if added:
        from .vocab import grow_vocabulary

        grow_vocabulary(model, AutoProcessor.from_pretrained(base_spec.repo).tokenizer, added)
    if meta.get("answers_added"):
        from .vocab import grow_answers

        grow_answers(model, meta["answers_added"])
    peft_model = PeftModel.from_pretrained(model, str(path))
    peft_model.eval()
    return peft_model, processor, base_spec


def load_adapter(spec, dev, dt, attention: bool):
    """Loaded of a directory that Finetuned.save(path, merge=False) wrote (peft_from_folder), unfused: mmkit's
    speed-ups would skip the adapters."""
    from dataclasses import replace

    from .. import models

    peft_model, processor, base_spec = peft_from_folder(spec.repo, dev, dt, attention)
    return models.Loaded(peft_model.base_model.model, processor, replace(spec, family=spec.family or base_spec.family),
                         dev, dt, attention)
