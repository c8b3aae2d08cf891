"""The measured comparison: every fusion method with the same encoders, data and budget, on CPU.

`compare(...)` trains each method and returns a Results table (accuracy overall and per question
kind, parameters, training time); `robustness(...)` measures accuracy when a modality is missing or
noised at test time, with and without modality dropout in training. Plot helpers return Figures.
"""
from __future__ import annotations

import html
from dataclasses import dataclass

import torch

from ..errors import InputError
from .data import RELATIONAL, task_splits
from .encoders import encode_images, pretrain_image_encoder, to_pixels
from .model import FusionModel, FusionTrainConfig, evaluate, train
from .registry import REGISTRY, level

DEFAULT_METHODS = ("concat", "sum", "gated", "bilinear", "tensor", "film", "cross_attention", "co_attention",
                   "late_mean", "late_stacking")


@dataclass
class Budget:
    n_train: int = 2000  # training scenes (VQA: ~8 questions each; matching: 2 captions each)
    n_test: int = 400  # held-out scenes from split="test"
    steps: int = 1200  # optimiser steps per method (about a minute on one CPU core)
    batch_size: int = 64  # examples per step
    lr: float = 2e-3  # AdamW peak learning rate

    @classmethod
    def reduced(cls) -> "Budget":
        """The CI budget: fewer steps and scenes, still enough to learn (about 15-30 s per method)."""
        return cls(n_train=1000, n_test=250, steps=500)

    def train_config(self, seed: int = 0, modality_dropout: float = 0.0) -> FusionTrainConfig:
        return FusionTrainConfig(steps=self.steps, batch_size=self.batch_size, lr=self.lr, seed=seed,
                           modality_dropout=modality_dropout)


class Results:
    """A small table: a list of dict rows with a text and an HTML view (no pandas needed)."""

    def __init__(self, rows: list[dict], title: str = "", models: dict | None = None, histories: dict | None = None):
        self.rows, self.title = rows, title
        self.models = models or {}  # method (or method@dropout) -> trained FusionModel
        self.histories = histories or {}  # same keys -> list of {"step", "loss", "acc"}

    @property
    def columns(self) -> list[str]:
        cols: list[str] = []
        for r in self.rows:
            cols += [k for k in r if k not in cols]
        return cols

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __getitem__(self, key):
        """An int gives a row; a method name gives its (first) row; a column name gives that column."""
        if isinstance(key, int):
            return self.rows[key]
        for r in self.rows:
            if r.get("method") == key:
                return r
        if key in self.columns:
            return [r.get(key) for r in self.rows]
        raise KeyError(f"{key!r} is neither a method nor a column; methods: {[r.get('method') for r in self.rows]}")

    @staticmethod
    def _fmt(v, col: str = "") -> str:
        if isinstance(v, float):
            return f"{v:.1f}" if col in ("seconds", "dropout") else f"{v:.3f}"
        return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)

    def __repr__(self) -> str:
        cols = self.columns
        cells = [cols] + [[self._fmt(r.get(c, ""), c) for c in cols] for r in self.rows]
        w = [max(len(row[i]) for row in cells) for i in range(len(cols))]
        lines = ["  ".join(s.rjust(w[i]) if i else s.ljust(w[i]) for i, s in enumerate(row)) for row in cells]
        return "\n".join(([self.title] if self.title else []) + [lines[0], "-" * len(lines[0])] + lines[1:])

    def _repr_html_(self) -> str:
        cols = self.columns
        head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(self._fmt(r.get(c, ''), c))}</td>" for c in cols) + "</tr>"
                       for r in self.rows)
        cap = f"<caption>{html.escape(self.title)}</caption>" if self.title else ""
        return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_PREPARED: dict = {}


def prepare(task: str = "vqa", budget: Budget | None = None, seed: int = 0):
    """(encoder, train, test) for a task and budget: the frozen image encoder and the TaskData splits, cached."""
    budget = budget or Budget()
    key = (task, budget.n_train, budget.n_test, seed)
    if key not in _PREPARED:
        encoder = pretrain_image_encoder()
        _PREPARED[key] = (encoder, *task_splits(task, encoder, budget.n_train, budget.n_test, seed=seed))
    return _PREPARED[key]


def compare(methods=DEFAULT_METHODS, task: str = "vqa", budget: Budget | None = None, seed: int = 0,
            callback=None, stop_event=None) -> Results:
    """Train every method with the same encoders, data and budget; evaluate on the held-out test split.

    Args:
        methods: fusion names (see mmkit.fusion.list()).
        task: "vqa" or "match".
        budget: Budget() for the full run, Budget.reduced() for CI.
        seed: one seed for data, weights and batch order.
        callback: called as callback(method, point) during training (point: {"step", "loss", "acc"}).
        stop_event: a threading.Event that stops the current and remaining methods.
    Returns:
        Results with one row per method: method, level, params, seconds, acc (all), acc per kind,
        and `relational` (position questions / relation negatives).
    """
    methods = [methods] if isinstance(methods, str) else list(methods)
    unknown = [m for m in methods if m not in REGISTRY]
    if unknown:
        raise InputError(f"unknown fusion methods {unknown}; choose from {', '.join(REGISTRY)}")
    budget = budget or Budget()
    _, train_data, test_data = prepare(task, budget, seed)
    rows, models, histories = [], {}, {}
    for m in methods:
        if stop_event is not None and stop_event.is_set():
            break
        torch.manual_seed(seed)  # same initial weights for the same method and seed
        model = FusionModel(m, len(train_data.classes))
        cb = None if callback is None else (lambda p, m=m: callback(m, p))
        res = train(model, train_data, budget.train_config(seed), callback=cb, stop_event=stop_event)
        acc = evaluate(model, test_data)
        row = {"method": m, "level": level(m), "params": model.n_params(), "seconds": round(res.seconds, 1),
               "acc": acc.pop("all"), "relational": acc.get(RELATIONAL[task], float("nan"))}
        row.update({k: v for k, v in acc.items()})
        if res.stopped:
            row["stopped"] = True
        rows.append(row)
        models[m], histories[m] = model, res.history
    return Results(rows, f"{task}: held-out accuracy, {budget.steps} steps x {budget.batch_size}", models, histories)


def _noisy_text(input_ids: torch.Tensor, attention_mask: torch.Tensor, p: float, seed: int) -> torch.Tensor:
    """Replace a fraction p of the real words by [UNK] (id 1)."""
    g = torch.Generator().manual_seed(seed)
    hit = (torch.rand(input_ids.shape, generator=g) < p) & attention_mask  # (E, T)
    return input_ids.masked_fill(hit, 1)


def robustness(methods=("concat", "cross_attention", "late_mean"), task: str = "vqa", budget: Budget | None = None,
               dropouts=(0.0, 0.3), image_noise: float = 0.3, text_noise: float = 0.3, seed: int = 0) -> Results:
    """Accuracy with a modality missing or noised at test time, trained with and without modality dropout.

    Missing: late fusion drops that modality's head; the other methods see zeros in its place.
    Noised: Gaussian pixel noise (std `image_noise`, images in [0, 1]) or a fraction `text_noise` of
    the words replaced by [UNK]; no method is told which input is corrupted.
    Returns Results with one row per (method, dropout): clean, no_image, no_text, noisy_image, noisy_text.
    """
    methods = [methods] if isinstance(methods, str) else list(methods)
    budget = budget or Budget()
    encoder, train_data, test_data = prepare(task, budget, seed)
    g = torch.Generator().manual_seed(seed)
    pixels = to_pixels([s.image for s in test_data.scenes])  # (S, 3, H, W)
    noisy_pixels = (pixels + image_noise * torch.randn(pixels.shape, generator=g)).clamp(0, 1)
    noisy_image = encode_images(encoder, noisy_pixels)  # (S, N, Di)
    noisy_ids = _noisy_text(test_data.input_ids, test_data.attention_mask, text_noise, seed)
    rows, models = [], {}
    for m in methods:
        for p in dropouts:
            torch.manual_seed(seed)
            model = FusionModel(m, len(train_data.classes))
            res = train(model, train_data, budget.train_config(seed, modality_dropout=p))
            rows.append({"method": m, "dropout": p,
                         "clean": evaluate(model, test_data)["all"],
                         "no_image": evaluate(model, test_data, missing="image")["all"],
                         "no_text": evaluate(model, test_data, missing="text")["all"],
                         "noisy_image": evaluate(model, test_data, image_emb=noisy_image)["all"],
                         "noisy_text": evaluate(model, test_data, input_ids=noisy_ids)["all"],
                         "seconds": round(res.seconds, 1)})
            models[f"{m}@{p}"] = model
    return Results(rows, f"{task}: robustness (accuracy on the held-out split)", models)


def text_only_baseline(task: str = "vqa", budget: Budget | None = None, seed: int = 0) -> float:
    """Accuracy of always answering the most frequent training answer for each question kind's words.

    A model must beat this to be using the image at all: it is what the question alone gives away.
    """
    _, train_data, test_data = prepare(task, budget, seed)
    table: dict = {}
    key = lambda ids: tuple(i for i in ids if i)  # the words, padding dropped
    for ids, y in zip(train_data.input_ids.tolist(), train_data.labels.tolist()):
        table.setdefault(key(ids), {}).setdefault(y, 0)
        table[key(ids)][y] += 1
    prior = torch.bincount(train_data.labels).argmax().item()
    hits = [max(table[k], key=table[k].get) == y if (k := key(ids)) in table else y == prior
            for ids, y in zip(test_data.input_ids.tolist(), test_data.labels.tolist())]
    return sum(hits) / len(hits)
