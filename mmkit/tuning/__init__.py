"""Fine-tuning on your own data: `finetune(model, data, ...) -> Finetuned`.

Modules: data (every data form -> examples, bad rows reported), vocab (new words grow the tokenizer and the
embeddings), losses (one batch -> loss per task), evaluate (the task metric), loop (finetune itself), lora
(peft adapters, safe with mmkit's speed-ups), result (Finetuned: history, scores, save, plot), memory (will it
fit on a GPU?) and concepts (pictures of a new concept drawn into ShapesWorld, for the notebook and tests).
"""
from .data import Example, Examples, read_examples
from .loop import FinetuneConfig, finetune
from .memory import MemoryEstimate, memory_estimate
from .result import Finetuned

__all__ = ["finetune", "Finetuned", "FinetuneConfig", "read_examples", "Example", "Examples", "memory_estimate",
           "MemoryEstimate"]
