"""`finetune`: any loaded model, your own examples, a few epochs -> a `Finetuned` model and what it learnt.

The loop: check the options (settings.RULES), read the examples (bad rows reported, skipped), split off a validation set
(by image, so no picture is on both sides, with a picture of each new word where it can), grow the vocabulary for
new words, AdamW with linear warm-up then linear decay, validation loss and the task metric after every epoch,
early stopping on the metric (loss breaks ties; off on a validation set under evaluate.MIN_VAL items, where the
last epoch is kept), and the best weights kept. Ctrl-C or `should_stop()` ends training early with the best
weights so far.
The loaded model itself is never changed: training works on a copy.
"""
from __future__ import annotations

import copy
import math
import random
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

from ..errors import InputError, warn
from ..families import adapter
from ..models import Loaded, load_model
from ..train.common import flat_if, param_groups
from .data import FILE_COLUMNS, FOLDER_FILES, Examples, read_examples
from .evaluate import METRIC, MIN_VAL, score, scored_items, word_use
from .forgetting import forgetting_notes, old_scenes_score
from .losses import loss_fn, pixels
from .result import Finetuned, leak_notes, once_note, steps_notes, stopping_notes, trust_notes, unseen_words
from .settings import RULES, FinetuneConfig, auto_batch, check_config  # noqa: F401 (finetune's options, as before)
from .split import _grouped_order, _held_keys, _split  # noqa: F401
from .vocab import unknown_word_counts


def wanted_kind(model, task: str | None = None) -> str | None:
    """The rows the model's task reads ("qa" for VQA, else "caption"), so that a folder holding both captions.csv
    and qa.csv is read from the right one; None when the task is not one the model trains (_check_task says so)
    or the family is not known without loading the model (a hub id). model: a Loaded, or a name load_model takes
    (a family name, a bundled name or a folder: nothing is loaded)."""
    if isinstance(model, Loaded):
        family = model.spec.family
    else:
        from ..models import FAMILIES, resolve

        name = str(model).strip()
        try:
            family = name if name in FAMILIES else resolve(name).family
        except InputError:
            return None
    try:
        tunes = adapter(family).tunes
    except ValueError:  # no family yet (a hub id) or one mmkit does not know
        return None
    task = task or (tunes[0] if tunes else None)  # every family trains either VQA or caption-row tasks, not both
    return None if task not in tunes else _rows_of(task)


def _rows_of(task: str) -> str:
    """The kind of rows a task trains on: "qa" (image, question, answer) for VQA, else "caption"."""
    return "qa" if task == "vqa" else "caption"


def _check_task(m: Loaded, task: str | None, ex: Examples) -> str:
    fam, tunes, kind = m.spec.family, adapter(m).tunes, ex.kind
    task = task or ("vqa" if kind == "qa" and "vqa" in tunes else (tunes[0] if tunes else None))
    if task not in tunes:
        can = ", ".join(tunes) or "none"
        raise InputError(f"{m.spec.name} ({fam}) cannot be fine-tuned for task={task!r}; it trains: {can}")
    if _rows_of(task) != kind:
        need = "(image, question, answer) rows (qa.csv)" if task == "vqa" else "(image, caption) rows (captions.csv)"
        raise InputError(f"task {task!r} needs {need}, but {_origin(ex)} has {kind} rows; {_fix(ex, task)}")
    return task


def _origin(ex: Examples) -> str:
    return repr(ex.origin) if ex.origin.endswith((".csv", ".json")) else "the data"


def _fix(ex: Examples, task: str) -> str:
    """How to pass the rows task needs: the file beside a CSV or COCO file that was passed, or the forms to use."""
    rows = _rows_of(task)
    if ex.origin.endswith((".csv", ".json")):
        other = Path(ex.origin).parent / FOLDER_FILES[rows][0]
        if other.exists():
            return f"pass {str(other)!r} (beside it) or its folder"
        return f"write {str(other)!r} (columns {FILE_COLUMNS[rows]}) and pass it"
    return ("pass (image, question, answer) tuples or a qa.csv" if task == "vqa"
            else "pass (image, text) tuples or a captions.csv")


def _new_words(tokenizer, items, cfg: FinetuneConfig) -> list[str]:
    """The words new to the model that the validation split should show: those the tokenizer spells in 3+ pieces
    occurring twice or more, and those new_words lists."""
    texts = [t for e in items for t in (e.text, e.question, e.answer) if t]
    auto = [w for w, c in unknown_word_counts(tokenizer, texts).items() if c >= 2]
    return auto + [w for w in (cfg.new_words if isinstance(cfg.new_words, list) else []) if w not in auto]


FLAT = flat_if("norm", "embed", lower=True)  # no weight decay on norms, embeddings and 1-D tensors


def _snapshot(model) -> dict:
    """A CPU copy of the trainable tensors (what changes), to restore the best epoch."""
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()
            if k in names or "running_" in k}


def finetune(model, data, task: str | None = None, val_data=None, callback=None, should_stop=None,
             image_dir=None, **options) -> Finetuned:
    """Fine-tune a model on your own examples; returns Finetuned(model, history, scores, notes, save(path)).

    After training it warns (and ft.notes says) when the metric rests on fewer than 20 validation pictures
    (evaluate.MIN_VAL; early stopping is then off and the last epoch kept), when validation pictures are training
    pictures, and, for each new word, in how many of its captions (answers) for the pictures (questions) that have
    the word the fine-tuned model says it (scores["new_words"]), with the few training steps a word not learnt had;
    ft.notes also names the new words too rare (once) to become tokens (mmkit.tuning.result's notes). From a bundled
    base it scores both models on 30 ordinary ShapesWorld scenes and warns when the tuned one forgot (forgetting.py).

    Args:
        model: a name or path load_model accepts, or a Loaded (it is not changed: training runs on a copy).
        data: a folder with captions.csv or qa.csv (with both, the one the task reads: qa.csv for VQA), a COCO
            caption JSON (AnnotationPanel's), a list of (image, text) or (image, question, answer) tuples, or a
            datasets.Dataset (mmkit.tuning.data).
        task: "caption", "vqa", "itm" or "contrastive"; None: the model family's own.
        val_data: validation examples in any of those forms (default: FinetuneConfig.val_split held out).
        callback: called after every epoch with the history record (a dict) and after every step with
            {"step", "loss"}; the panel draws its live curve with it.
        should_stop: a function returning True to end training (the best weights so far are kept).
        **options: FinetuneConfig fields (epochs, batch_size, lr, lora, new_words, ...).
    """
    import torch
    from ..progress import bar as tqdm  # tqdm.auto's bar; honours TQDM_DISABLE, ends finished in a saved notebook

    from ..config import seed_everything
    from .eightbit import check_8bit, load_8bit
    from .lora import add_lora, freeze_norm_statistics, trainable_share, unfuse
    from .vocab import grow_answers, grow_vocabulary

    cfg = check_config(options)
    if cfg.load_in_8bit:
        check_8bit(cfg.lora)  # before any data is read or weight is copied
    base = load_model(model)
    row = adapter(base)  # what the family does its own way (mmkit.families)
    ex = read_examples(data, image_dir=image_dir, kind=wanted_kind(base, task))
    if ex.skipped:
        print(ex.report(), file=sys.stderr)
    task = _check_task(base, task, ex)
    train, val = _split(ex, val_data, cfg.val_split, cfg.seed, _new_words(base.processor.tokenizer, ex.items, cfg))
    if cfg.batch_size is None:
        cfg = replace(cfg, batch_size=auto_batch(len(train)))
    val = val[:cfg.max_val]
    few = scored_items(task, val)[0] < MIN_VAL  # too few to pick an epoch by: early stopping is off
    seed_everything(cfg.seed)
    dev = base.device
    if cfg.load_in_8bit:
        net = load_8bit(base, row)  # a new int8 copy on the first GPU
        dev = next(p.device for p in net.parameters())
    else:
        net = copy.deepcopy(base.model)  # the shared cached model stays untouched
    unfuse(net)
    processor = copy.deepcopy(base.processor)
    # new words (captions, questions, answers) become tokens with their own embedding rows
    texts = [t for e in train for t in (e.text, e.question, e.answer) if t]
    counts = unknown_word_counts(processor.tokenizer, texts)
    once = [w for w, c in counts.items() if c < 2] if cfg.new_words == "auto" else []
    words = [w for w, c in counts.items() if c >= 2] if cfg.new_words == "auto" else list(cfg.new_words or [])
    grown = grow_vocabulary(net, processor.tokenizer, words) if words else {"added": [], "ids": []}
    answers_added = grow_answers(net, [e.answer for e in train]) if row.classifies else []
    if row.classifies and task == "vqa":
        unseen = sorted({e.answer for e in val} - set(net.config.label2id))
        if unseen:
            print(f"finetune: validation answers no training row has (the model cannot give them; counted wrong): "
                  f"{unseen[:10]}", file=sys.stderr)
    if grown["added"] or answers_added:
        print(f"finetune: the vocabulary grew by {len(grown['added'])} word(s) {grown['added']}"
              + (f" and {len(answers_added)} answer(s) {answers_added}" if answers_added else ""), file=sys.stderr)
    if once:
        print(f"finetune: {once_note(once)}", file=sys.stderr)
    peft_model = add_lora(net, base.spec.family, cfg.lora_r, cfg.lora_alpha, new_ids=grown["ids"],
                          kbit=cfg.load_in_8bit) if cfg.lora else None
    n_train, n_all = trainable_share(net)
    spec = replace(base.spec, name=f"{base.spec.name}+finetuned", source="finetuned")  # no ShapesWorld-only warning
    dtype = torch.float32 if cfg.load_in_8bit else base.dtype  # 8-bit: int8 Linear layers, every other weight fp32
    live = Loaded(net, processor, spec, dev, dtype, base.attention)
    lr = cfg.lr if cfg.lr is not None else (1e-3 if cfg.lora or n_all < 20e6 else 3e-5)
    loss_of = loss_fn(task, row)
    steps_per_epoch = math.ceil(len(train) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    warm = max(1, int(cfg.warmup * total))
    opt = torch.optim.AdamW(param_groups(net.named_parameters(), cfg.weight_decay, FLAT), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm))))
    metric = METRIC[task]
    px_cache: dict = {}

    def px_of(batch):
        keys = [e.key for e in batch]
        missing = [e for e in batch if e.key not in px_cache]
        if missing:
            for e, p in zip(missing, pixels(live, [e.image for e in missing], "cpu")):
                px_cache[e.key] = p  # (3, H, W): each image is preprocessed once
        return torch.stack([px_cache[k] for k in keys]).to(dev)  # (B, 3, H, W)

    def val_loss() -> float:
        net.eval()
        with torch.no_grad():
            losses = [float(loss_of(net, live, val[i:i + cfg.batch_size], px_of(val[i:i + cfg.batch_size])))
                      for i in range(0, len(val), cfg.batch_size)]
        return sum(losses) / len(losses)

    def evaluate() -> dict:
        net.eval()
        with warnings.catch_warnings():  # "CIDEr over 4 images says little": trust_notes says it once, at the end
            warnings.filterwarnings("ignore", message="CIDEr over", category=UserWarning)
            return {"val_loss": val_loss(), **score(live, task, val)}

    before = evaluate()
    history = [{"epoch": 0, "train_loss": None, **before, "seconds": 0.0, "cpu_seconds": 0.0}]
    if callback:
        callback(dict(history[0]))
    best, best_state, bad_epochs, stopped, cut = history[0], _snapshot(net), 0, "finished", ()
    rng, step = random.Random(cfg.seed), 0
    t0, c0 = time.perf_counter(), time.process_time()
    bar = tqdm(total=total, desc=f"fine-tuning {base.spec.name}", disable=not cfg.progress, leave=False)
    try:
        for epoch in range(1, cfg.epochs + 1):
            net.train()
            freeze_norm_statistics(net)  # frozen BatchNorm keeps its statistics (LoRA: the adapter is all that changes)
            order = _grouped_order(train, rng)
            losses = []
            for s in range(steps_per_epoch):
                batch = [train[i] for i in order[s * cfg.batch_size:(s + 1) * cfg.batch_size]]
                loss = loss_of(net, live, batch, px_of(batch))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_([p for p in net.parameters() if p.requires_grad], 1.0)
                opt.step()
                sched.step()
                losses.append(loss.item())
                step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.3f}")
                if callback:
                    callback({"step": step, "loss": losses[-1]})
                if should_stop is not None and should_stop():
                    raise KeyboardInterrupt
            rec = {"epoch": epoch, "train_loss": sum(losses) / len(losses), **evaluate(),
                   "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0}
            history.append(rec)
            if callback:
                callback(dict(rec))
            if few or (rec[metric], -rec["val_loss"]) > (best[metric], -best["val_loss"]):
                best, best_state, bad_epochs = rec, _snapshot(net), 0
            else:
                bad_epochs += 1
            if bad_epochs >= cfg.patience:
                stopped = f"early stop: no better {metric} for {cfg.patience} epochs"
                break
            if cfg.max_seconds is not None and rec["seconds"] > cfg.max_seconds and epoch < cfg.epochs:
                stopped = f"time limit ({cfg.max_seconds:g} s)"
                cut = (f"the time limit (max_seconds={cfg.max_seconds:g})", "raise max_seconds= or leave it out")
                break
    except KeyboardInterrupt:
        stopped = f"stopped by the user (the {'last finished' if few else 'best'} epoch so far is kept)"
        cut = ("the user (Ctrl-C or Stop)", "let it run to its last epoch")
    finally:
        bar.close()
    net.load_state_dict(best_state, strict=False)
    net.eval()
    if peft_model is None:
        from ..speedups import fuse_attention

        fuse_attention(net)  # plain weights again: mmkit's speed-ups are exact for them
    live.cache.clear()
    n_scored, unit = scored_items(task, val)
    use = word_use(live, task, grown["added"] + [a for a in answers_added if a not in grown["added"]], val, train)
    unseen = unseen_words(grown["added"], val, task)
    old = old_scenes_score(base, live, task) if cfg.old_scenes else None  # what a bundled base forgot
    notes = (leak_notes(train, val) + trust_notes(metric, n_scored, unit, task, use)
             + stopping_notes(metric, unit, few, best["epoch"], len(history) - 1, unseen)
             + steps_notes(use, step, len(train), cfg.batch_size, cfg.epochs, len(history) - 1, cut)
             + forgetting_notes(old, task) + ([(once_note(once), False)] if once else []))
    for note, caveat in notes:
        if caveat:
            warn("finetune: " + note)
    # what an adapter folder names as its base: a folder by its absolute path (a relative one would depend on the
    # current folder), a fine-tuned model in memory by nothing
    base_ref = {"path": base.spec.repo, "finetuned": ""}.get(base.spec.source, base.spec.name)
    after = {k: v for k, v in best.items() if k not in ("epoch", "train_loss", "seconds", "cpu_seconds")}
    scores = {"before": dict(before), "after": after, "metric": metric, "n_val": len(val),
              "n_train": len(train), "best_epoch": best["epoch"], "few_val": n_scored < MIN_VAL, "new_words": use}
    if old:
        scores["old_scenes"] = old
    return Finetuned(model=live, history=history, scores=scores, task=task, base=base.spec.name, base_ref=base_ref, peft_model=peft_model,
                     added_words=grown["added"], answers_added=answers_added, trainable=(n_train, n_all),
                     quantized=cfg.load_in_8bit, stopped=stopped, skipped=ex.skipped, lr=lr, val=val,
                     notes=[n for n, _ in notes],
                     train_seconds=time.perf_counter() - t0, train_cpu_seconds=time.process_time() - c0)
