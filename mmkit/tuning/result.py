"""`Finetuned`: what `finetune` returns: the trained model (a `Loaded`), its history and scores, save and plot."""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from .data import _fingerprint
from .evaluate import MIN_VAL


@dataclass
class Finetuned:
    """A fine-tuned model and what happened while it trained.

    `model` is a `Loaded`: every task function, panel and `attention_maps` takes it. `history` has one dict per
    epoch (epoch 0 = before training): train_loss, val_loss, the task metric, seconds, cpu_seconds.
    `scores` = {"before": {...}, "after": {...}, "metric": name, "n_val", "n_train", "best_epoch", "few_val",
    "new_words"}, on the validation examples; "after" is the best epoch, whose weights the model has; "few_val":
    the metric averages over fewer than evaluate.MIN_VAL (20) pictures (questions for VQA), too few to mean much;
    "new_words": {word: {"produced": k, "of": n, "on": "validation" | "training"}}: the fine-tuned model says the
    new word in k of its n outputs for the pictures (questions) whose captions (answers) have it (evaluate.word_use);
    "old_scenes" (a bundled base only): {"metric", "before", "after", "n", "seconds"} of the base and the fine-tuned
    model on 30 ordinary ShapesWorld scenes (forgetting.py), what it forgot.
    `notes` says both in words, and what else to know before trusting the scores (validation pictures that are
    training pictures, early stopping off on a tiny validation set, too few steps, new words left in pieces); print(ft)
    shows them under its summary line."""

    model: object  # mmkit.Loaded
    history: list = field(default_factory=list)
    scores: dict = field(default_factory=dict)
    task: str = ""
    base: str = ""  # the name of the model it started from
    base_ref: str = ""  # how load_model finds that model again: its name, or its folder's absolute path ("": in memory)
    peft_model: object = None  # the peft.PeftModel when trained with lora=True
    added_words: list = field(default_factory=list)  # words the tokenizer gained
    answers_added: list = field(default_factory=list)  # answers ViLT's classifier gained
    trainable: tuple = (0, 0)  # (trained parameters, all parameters)
    quantized: bool = False  # trained with load_in_8bit=True: the base in model is int8
    stopped: str = ""  # why training ended
    skipped: list = field(default_factory=list)  # (row, reason) of the data rows left out
    lr: float = 0.0
    train_seconds: float = 0.0
    train_cpu_seconds: float = 0.0
    val: list = field(default_factory=list, repr=False)  # the validation Examples (before/after comparisons)
    notes: list = field(default_factory=list)  # what to know before trusting the scores (few validation items,
    # whether each new word is produced); printed under the summary line and warned about by finetune

    def __repr__(self) -> str:
        m = self.scores.get("metric", "")
        b, a = self.scores.get("before", {}).get(m), self.scores.get("after", {}).get(m)
        share = self.trainable[0] / max(1, self.trainable[1])
        if b is None or a is None:
            return "Finetuned(...)"
        return (f"Finetuned({self.base!r} -> task={self.task!r}, {m}: {b:.3f} -> {a:.3f} on {self.scores.get('n_val')} "
                f"validation examples, {len(self.history) - 1} epoch{'' if len(self.history) == 2 else 's'} "
                f"({self.stopped}), trained {share:.1%} of the "
                f"weights, new words {self.added_words})") + "".join(f"\n  note: {n}" for n in self.notes)

    def plot(self, ax=None):
        """Training and validation loss (left axis) and the task metric (right axis) per epoch -> Figure."""
        import matplotlib.pyplot as plt

        fig = ax.figure if ax is not None else plt.figure(figsize=(6, 3.2))
        ax = ax if ax is not None else fig.add_subplot(1, 1, 1)
        ep = [h["epoch"] for h in self.history]
        tr = [(h["epoch"], h["train_loss"]) for h in self.history if h.get("train_loss") is not None]
        if tr:
            ax.plot(*zip(*tr), "o-", label="train loss", color="#1f77b4")
        ax.plot(ep, [h["val_loss"] for h in self.history], "s-", label="validation loss", color="#ff7f0e")
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        m = self.scores.get("metric")
        ax2 = ax.twinx()
        ax2.plot(ep, [h.get(m) for h in self.history], "^--", color="#2ca02c", label=m)
        ax2.set_ylabel(m)
        best = self.scores.get("best_epoch")
        if best is not None:
            ax.axvline(best, color="#999", lw=0.8, ls=":")
        lines = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
        ax.legend(lines, [ln.get_label() for ln in lines], fontsize=8, loc="center right")
        ax.set_title(f"fine-tuning {self.base} ({self.task})", fontsize=10)
        fig.tight_layout()
        return fig

    def _meta(self, adapter: bool) -> dict:
        return {"name": Path(self.base).name + "-finetuned", "base": self.base_ref or self.base, "task": self.task,
                "family": self.model.spec.family, "finetuned": True, "adapter": adapter,
                "added_words": self.added_words, "answers_added": self.answers_added,
                "trainable_params": self.trainable[0], "params": self.trainable[1], "scores": self.scores,
                "history": self.history, "stopped": self.stopped, "notes": self.notes, "lr": self.lr,
                "zero_shot_template": self.model.spec.zero_shot_template,
                "train_seconds": round(self.train_seconds, 1), "train_cpu_seconds": round(self.train_cpu_seconds, 1)}

    def _merged_in_full_precision(self):
        """The adapters of an 8-bit run merged into the base loaded in fp32 on the CPU (through an adapter folder)."""
        import tempfile

        import torch

        from .lora import peft_from_folder

        with tempfile.TemporaryDirectory(prefix="mmkit-merge-") as tmp:
            self.save(tmp, merge=False)
            peft_model, _, _ = peft_from_folder(tmp, torch.device("cpu"), torch.float32)
            return peft_model.merge_and_unload()

    def save(self, path, merge: bool = True) -> Path:
        """Write an ordinary Hugging Face directory that mmkit.load_model(path) loads back; returns the path.

        Args:
            merge: with LoRA, True folds the adapters into the weights (a plain model, the size of the base);
                False saves only the adapters (a few MB) plus the processor, config and the base's name in
                mmkit.json; load_model puts them back on the base. Without LoRA the whole model is saved.
                A model trained with load_in_8bit=True merges into the full-precision base (read again from its
                folder), never into the int8 weights it trained on.
        """
        from ..progress import transformers_bars
        from .lora import merged

        out = Path(os.fspath(path)).expanduser()
        if out.exists() and not out.is_dir():
            raise InputError(f"{str(out)!r} is a file; pass a folder path to save the model in")
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputError(f"cannot create {str(out)!r} ({e.strerror or e}); pick a folder you can write to") from None
        adapter = self.peft_model is not None and not merge
        if (adapter or self.quantized) and not self.base_ref:
            raise InputError(f"the base model {self.base!r} exists only in memory, so an adapter folder could not name "
                             "it; save with merge=True, or save the base first and fine-tune its folder")
        with transformers_bars():  # "Writing model shards": live in Jupyter, finished in a saved notebook
            if adapter:
                self.peft_model.save_pretrained(str(out))
                self.model.model.config.save_pretrained(str(out))  # family and grown sizes, for load_model's resolver
            elif self.quantized:
                self._merged_in_full_precision().save_pretrained(str(out))
            else:
                model = merged(self.peft_model) if self.peft_model is not None else self.model.model
                model.save_pretrained(str(out))
        self.model.processor.save_pretrained(str(out))
        (out / "mmkit.json").write_text(json.dumps(self._meta(adapter), indent=1, default=float))
        return out


# -- notes: what a learner should know before trusting the scores, each (text, whether it is a caveat to warn of)
def trust_notes(metric: str, n: int, unit: str, task: str, use: dict) -> list[tuple[str, bool]]:
    """What a learner should know before trusting the scores, each with whether it is a caveat (warned about): a
    validation set too small to mean much, and whether each new word is actually produced (evaluate.word_use)."""
    notes = []
    if n < MIN_VAL:
        one = unit[:-1]
        notes.append((f"the {metric} rests on {n} validation {one if n == 1 else unit} (under {MIN_VAL}): one {one} "
                      f"more or less moves it a lot, so it says little about new pictures; hold out more with "
                      f"val_data= or a larger val_split=", True))
    outputs, items = ("captions", "pictures whose captions have it") if task == "caption" else \
        ("answers", "questions whose answer has it")
    for w, u in use.items():
        k, of, on = u["produced"], u["of"], u["on"]
        verdict = ("the model has not learnt to say it" if k == 0 else
                   "the model has only partly learnt to say it" if k < of else
                   "the model says it" if on == "validation" else
                   "the model says it on pictures it trained on; validate on new pictures with it to see more")
        where = f"the {on} {items}" + (" (no validation picture has it)" if on == "training" else "")
        notes.append((f"new word {w!r} in {k} of {of} {outputs} for {where}: {verdict}", k < of))
    return notes


def leak_notes(train: list, val: list) -> list[tuple[str, bool]]:
    """A caveat when validation pictures are also training pictures (the same pixels), so no score is held out."""
    seen = {_fingerprint(e.image) for e in {e.key: e for e in train}.values()}
    pictures = list({e.key: e for e in val}.values())
    n = sum(_fingerprint(e.image) in seen for e in pictures)
    if not n:
        return []
    return [(f"{n} of the {len(pictures)} validation pictures are also training pictures (the same pixels): the "
             "scores are not held-out scores, they say how well the model fits pictures it trained on; validate on "
             "pictures the training data does not have (val_data=, or leave it out to hold some out)", True)]


def unseen_words(words: list, val: list, task: str) -> list[str]:
    """The new words no validation reference (caption, or answer for VQA) has: the metric cannot see them."""
    from .evaluate import says

    refs = [e.answer if task == "vqa" else e.text for e in val]
    return [w for w in words if not any(says(r, w) for r in refs)]


def stopping_notes(metric: str, unit: str, few: bool, best: int, run: int, unseen: list) -> list[tuple[str, bool]]:
    """Caveats on the epoch kept: early stopping is off on a tiny validation set; on a larger one, it cannot see the
    new words no validation reference has (word_use's notes say which on a tiny one)."""
    if few:
        return [(f"early stopping was off and the last epoch ({run}) is kept: under {MIN_VAL} validation {unit} are "
                 f"too few for the {metric} to pick an epoch by; hold out {MIN_VAL}+ (val_data= or a larger "
                 "val_split=) to let it stop early and keep the best epoch", True)] if run else []
    if not unseen:
        return []
    kept = f", and early stopping kept epoch {best} of {run} by the old words alone" if best < run else ""
    return [(f"no validation {unit[:-1]} has the new word(s) {', '.join(map(repr, unseen))}: the {metric} cannot see "
             f"whether the model learnt them{kept}; validate on pictures with them (val_data=, or a larger val_split= "
             "once each is in 3+ pictures)", True)]


FEW_STEPS = 50  # optimiser steps under which a new word is seldom learnt (30 shape pictures: 16 steps were too few)


def steps_notes(use: dict, steps: int, n_train: int, batch_size: int, epochs: int, ran: int | None = None,
                cut: tuple = ()) -> list[tuple[str, bool]]:
    """Why a new word was not learnt when training ran few optimiser steps: stopped before its end (cut: (by what,
    the fix), e.g. ("the time limit (max_seconds=3)", "raise max_seconds=")), train longer; else the batch size
    that gives more steps over the epochs that ran (ran: epochs finished; None: all of them)."""
    if steps >= FEW_STEPS or all(u["produced"] == u["of"] for u in use.values()):
        return []
    ran = epochs if ran is None else ran
    if cut:
        total = math.ceil(n_train / batch_size) * epochs
        return [(f"training was stopped by {cut[0]} after {steps} of {total} optimiser steps ({ran} of {epochs} "
                 f"epoch{'' if epochs == 1 else 's'}), too few to learn a new word: train longer ({cut[1]})", True)]
    fits = [b for b in range(batch_size - 1, 0, -1) if math.ceil(n_train / b) * ran >= FEW_STEPS]
    more = (f"a smaller batch_size={fits[0]} gives {math.ceil(n_train / fits[0]) * ran} steps" if fits
            else "raise epochs= or add examples")
    of = f"{ran} of {epochs} epochs" if ran < epochs else f"{epochs} epoch{'' if epochs == 1 else 's'}"
    return [(f"training ran only {steps} optimiser steps ({n_train} training examples in batches of {batch_size}"
             f", {of}), too few to learn a new word: {more}", True)]


def once_note(once: list) -> str:
    """The new words left as pieces because they occur only once, and the fix."""
    shown = ", ".join(map(repr, once[:8])) + (", ..." if len(once) > 8 else "")
    return (f"{len(once)} new word(s) occur only once in the training texts, too few to be added as tokens (2 "
            f"needed), so the model can only spell them in pieces: {shown}; add more examples with them (or list "
            "them in new_words= to add them anyway)")
