"""What every training loop in mmkit sets up the same way: parameter groups for weight decay, AdamW, and the
linear warm-up schedule. The loops themselves stay written out in their own modules, where a learner reads them.
"""
from __future__ import annotations

from typing import Callable, Iterable

BETAS = (0.9, 0.98)  # AdamW's betas for the transformer recipes (BERT/ViT practice: a shorter second-moment memory)


def flat_if(*words: str, lower: bool = False, suffixes: tuple[str, ...] = ()) -> Callable:
    """A rule for parameters that get no weight decay: 1-D tensors (biases, norm gains) and any whose name
    contains one of `words` (compared in lower case when `lower`) or ends with one of `suffixes`.

    Returns: flat(name, parameter) -> bool.
    """
    def flat(name: str, p) -> bool:
        key = name.lower() if lower else name
        return p.ndim < 2 or any(w in key for w in words) or name.endswith(suffixes)

    return flat


def param_groups(named_parameters: Iterable, weight_decay: float, flat: Callable | None = None) -> list[dict]:
    """Two AdamW groups: [decayed parameters, flat parameters with weight_decay 0].

    Args:
        named_parameters: (name, parameter) pairs, e.g. model.named_parameters(); frozen ones are left out.
        weight_decay: the decayed group's weight decay.
        flat: flat(name, parameter) -> bool picks the undecayed ones (default: 1-D tensors only).
    """
    flat = flat or flat_if()
    decay, no_decay = [], []
    for name, p in named_parameters:
        if p.requires_grad:
            (no_decay if flat(name, p) else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def adamw(groups, lr: float, betas: tuple = BETAS):
    """torch.optim.AdamW over parameter groups (or a plain parameter list)."""
    import torch

    return torch.optim.AdamW(groups, lr=lr, betas=betas)


def warmup_linear(opt, warm: int, steps: int):
    """LambdaLR: the rate climbs as (s + 1) / warm for `warm` steps, then falls linearly to 0 at `steps`."""
    import torch

    warm = max(1, warm)
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else max(0.0, (steps - s) / max(1, steps - warm)))
