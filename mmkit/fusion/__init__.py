"""Fusion: how text and image features are combined. Tensors in, tensors out.

    fusion = mmkit.fusion.build("gated", text_dim=64, image_dim=64, out_dim=128)
    z = fusion(text_emb, image_emb, text_mask, image_mask)   # (B, 128)
    mmkit.fusion.list()                                      # {name: one-line description}

Modules: early.py (concat, sum, weighted, gated, bilinear, tensor, FiLM), late.py (mean, weighted,
vote, stacking), attention.py (cross- and co-attention), encoders.py (the tiny from-scratch
encoders), model.py (a full classifier and its training loop), compare.py (the measured
comparison and the robustness experiment), pointing.py (word attention vs true boxes).
"""
from .attention import CoAttentionFusion, CrossAttentionBlock, CrossAttentionFusion
from .base import Fusion, masked_mean
from .early import (BilinearFusion, ConcatFusion, FiLMFusion, GatedFusion, SumFusion, TensorFusion,
                    WeightedSumFusion)
from .late import LateFusion, LateMean, LateStacking, LateVote, LateWeighted
from .registry import build, list_methods

list = list_methods  # mmkit.fusion.list(); not in __all__, so `import *` never hides the builtin

__all__ = ["build", "list_methods", "Fusion", "masked_mean", "ConcatFusion", "SumFusion",
           "WeightedSumFusion", "GatedFusion", "BilinearFusion", "TensorFusion", "FiLMFusion",
           "LateFusion", "LateMean", "LateWeighted", "LateVote", "LateStacking", "CrossAttentionBlock",
           "CrossAttentionFusion", "CoAttentionFusion"]
