"""`finetune`: any loaded model, your own examples, a few epochs -> a `Finetuned` model and what it learnt.

The loop: check the options (RULES), read the examples (bad rows reported, skipped), split off a validation set
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
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import InputError, warn
from ..families import adapter
from ..models import Loaded, load_model
from ..options import OPTIONS, Option, check_option
from ..train.common import flat_if, param_groups
from .data import FILE_COLUMNS, FOLDER_FILES, Examples, read_examples
from .evaluate import METRIC, MIN_VAL, score, scored_items, word_use
from .forgetting import forgetting_notes, old_scenes_score
from .losses import loss_fn, pixels
from .result import Finetuned, leak_notes, once_note, steps_notes, stopping_notes, trust_notes, unseen_words
from .vocab import unknown_word_counts, word_pictures


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


def _split(ex: Examples, val_data, share: float, seed: int, words=()) -> tuple[list, list]:
    """(train, val) examples; without val_data, `share` of the distinct images are held out (_held_keys)."""
    if val_data is not None:
        held = read_examples(val_data, kind=ex.kind)  # a folder with both CSVs: the training data's kind
        if held.skipped:
            print("validation data: " + held.report(), file=sys.stderr)
        if held.kind != ex.kind:
            raise InputError(f"the training data has {ex.kind} rows but val_data has {held.kind} rows; give both the "
                             "same form ((image, text) or (image, question, answer))")
        return ex.items, held.items
    keys = list(dict.fromkeys(e.key for e in ex.items))
    if len(keys) < 2:
        raise InputError(f"only {len(keys)} usable image(s): finetune needs at least 2 (one to train on, one to "
                         "validate); add pictures or pass val_data=")
    random.Random(seed).shuffle(keys)
    held = _held_keys(keys, word_pictures(ex.items, words), max(1, min(len(keys) - 1, round(share * len(keys)))))
    return [e for e in ex.items if e.key not in held], [e for e in ex.items if e.key in held]


def _held_keys(keys: list, has: dict, n: int) -> set:
    """n of the (shuffled) picture keys to validate on. First, for each new word (has: word -> its pictures' keys),
    rarest first, one picture with it (the one with the most words not yet held), so the metric can see it, unless
    that would leave fewer than 2 training pictures with a new word (it would not become a token); then the other
    keys in order, those that keep every new word on 2+ training pictures first."""
    words_of: dict = {}
    for w, ks in has.items():
        for k in ks:
            words_of.setdefault(k, []).append(w)
    left = {w: len(ks) for w, ks in has.items()}  # training pictures with each word
    held: dict = {}  # key -> None, in the order held

    def keeps(k) -> bool:
        return all(left[w] > 2 for w in words_of.get(k, ()))

    def hold(k) -> None:
        held[k] = None
        for w in words_of.get(k, ()):
            left[w] -= 1

    for w in sorted(has, key=lambda w: (len(has[w]), w)):
        if len(held) < n and left[w] == len(has[w]):  # none of its pictures held yet
            pick = [k for k in keys if k in has[w] and k not in held and keeps(k)]
            if pick:
                hold(max(pick, key=lambda k: sum(left[v] == len(has[v]) for v in words_of[k])))
    for anyway in (False, True):
        for k in keys:
            if len(held) < n and k not in held and (anyway or keeps(k)):
                hold(k)
    return set(held)


def _grouped_order(train: list, rng: random.Random) -> list[int]:
    """A shuffled order of the examples in which one picture's rows follow each other (its questions share a
    batch, so BLIP-VQA encodes the picture once for all of them); pictures and rows within one are shuffled."""
    by_key: dict = {}
    for i, e in enumerate(train):
        by_key.setdefault(e.key, []).append(i)
    groups = list(by_key.values())
    rng.shuffle(groups)
    for g in groups:
        rng.shuffle(g)
    return [i for g in groups for i in g]


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
