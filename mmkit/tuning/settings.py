"""finetune's options: FinetuneConfig, the rule each value must meet (RULES, checked by check_config), and the
default batch size (auto_batch)."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ..errors import InputError
from ..options import OPTIONS, Option, check_option


@dataclass
class FinetuneConfig:
    """Training options of finetune (each a keyword argument of it)."""

    epochs: int = 10  # passes over the training examples at most
    batch_size: int | None = None  # examples per step; None: auto_batch (16, fewer on a small data set)
    lr: float | None = None  # peak learning rate (None: 1e-3 with LoRA or for models under 20M parameters, else 3e-5)
    warmup: float = 0.1  # share of the steps over which the learning rate rises from 0 to lr
    weight_decay: float = 0.01  # AdamW decay of the weight matrices (not of biases, norms, embeddings)
    val_split: float = 0.1  # share of the images held out for validation when val_data is not given
    patience: int = 3  # epochs without a better validation metric before training stops
    seed: int = 0  # seeds the split, the batch order and the weights' randomness
    lora: bool = False  # train LoRA adapters (peft) instead of every weight
    lora_r: int = 8  # LoRA rank
    lora_alpha: int = 16  # LoRA scale numerator (the update is alpha / r * B A)
    load_in_8bit: bool = False  # with lora=True on a CUDA GPU with bitsandbytes: the frozen base in int8 (eightbit.py)
    new_words: object = "auto"  # "auto": add words the tokenizer spells in 3+ pieces; False; or a list of words
    max_seconds: float | None = None  # stop after this much training time (the best epoch is kept)
    progress: bool = True  # show a tqdm bar
    max_val: int = 200  # validation examples at most (the metric runs the model's task function on each)
    old_scenes: bool = True  # a bundled base: score it and the result on 30 ordinary ShapesWorld scenes (forgetting.py)


# the rule of each option (mmkit.options' Option: a bad value raises InputError naming it, the value and the range)
RULES: dict[str, Option] = {
    "epochs": Option("int", 1, 10_000, doc="passes over the training examples at most"),
    "batch_size": replace(OPTIONS["batch_size"], none=True, doc="examples per step (None: auto_batch)"),
    "lr": Option("float", 0, 10, lo_open=True, none=True, doc="peak learning rate (None: picked for the model)"),
    "warmup": Option("float", 0, 1, doc="share of the steps of linear warm-up"),
    "weight_decay": Option("float", 0, 1, doc="AdamW decay of the weight matrices"),
    "val_split": Option("float", 0, 0.9, lo_open=True, doc="share of the pictures held out for validation"),
    "patience": Option("int", 1, 10_000, doc="epochs without a better validation metric before stopping"),
    "seed": Option("int", 0, 2**63 - 1, doc="seeds the split, the batch order and the weights' randomness"),
    "lora": Option("bool", doc="train LoRA adapters instead of every weight"),
    "lora_r": Option("int", 1, 1024, doc="LoRA rank"),
    "lora_alpha": Option("int", 1, 65_536, doc="LoRA scale numerator"),
    "load_in_8bit": Option("bool", doc="with lora=True on a CUDA GPU: the frozen base in int8"),
    "max_seconds": Option("float", 0, 1e7, lo_open=True, none=True, doc="training time cap in seconds (None: none)"),
    "progress": Option("bool", doc="show a progress bar"),
    "max_val": Option("int", 1, 1_000_000, doc="validation examples at most"),
    "old_scenes": Option("bool", doc="with a bundled base: check what it forgot on ordinary ShapesWorld scenes"),
}


BATCH, MIN_BATCH, MIN_STEPS = 16, 4, 8  # auto_batch: the default, the least it goes to, the steps an epoch should have


def auto_batch(n_train: int) -> int:
    """The default batch size for n_train training examples: 16, or fewer (down to 4) so that an epoch has 8 steps
    or more. 27 examples in batches of 16 made 2 steps an epoch, and 8 epochs did not teach a new colour; in
    batches of 4 they did (FINETUNE.md)."""
    return max(MIN_BATCH, min(BATCH, math.ceil(n_train / MIN_STEPS)))


def check_config(options: dict) -> FinetuneConfig:
    """finetune's keyword options checked, each against its rule in RULES, as a FinetuneConfig (InputError on the
    first unknown option or bad value)."""
    fields = FinetuneConfig.__dataclass_fields__
    bad = [k for k in options if k not in fields]
    if bad:
        raise InputError(f"finetune() got unknown option(s) {bad}; options: {', '.join(fields)}")
    return FinetuneConfig(**{k: _checked(k, v) for k, v in options.items()})


def _checked(name: str, value):
    """One option's value checked against its rule, in a plain Python type."""
    return _check_new_words(value) if name == "new_words" else check_option(name, value, rule=RULES[name])


def _check_new_words(value):
    """new_words: "auto", False (or None) or a list of words."""
    if (isinstance(value, str) and value == "auto") or value is None or value is False:
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(w, str) and w.strip() for w in value):
        return list(value)
    raise InputError(f"new_words={value!r} is not allowed: new_words must be 'auto' (add the words the tokenizer "
                     "spells in 3+ pieces), False (add none) or a list of words, e.g. ['orange']")
