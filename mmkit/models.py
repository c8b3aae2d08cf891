"""The model registry and `load_model`: one loader for pretrained hub models, bundled models and paths.

Names come in three kinds, all in one table that `list_models()` prints:
- explicit pretrained names (`clip-b32`, `blip-caption-base`, ...) -> a Hugging Face hub id;
- explicit bundled names (`shapes-clip`, ...) -> a directory under data/models/;
- family names (`clip`, `blip-caption`, ...) -> the pretrained model when the hub (or the local cache)
  has it, else the bundled one; the choice is announced once and recorded in `Loaded.spec`.
Anything else is treated as a local directory or a hub id. Registered names ignore case and surrounding spaces
('CLIP' is 'clip'); hub ids and folders keep their case (the hub's ids are case-sensitive).
"""
from __future__ import annotations

import difflib
import json
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from . import config
from .errors import InputError
from .model_cache import HALF_OF_RAM, ModelCache, model_bytes  # noqa: F401

# HF class name -> family; only these classes are loaded (no remote code, ever)
CLASS_FAMILY = {
    "CLIPModel": "clip",
    "AlignModel": "align",
    "ViltForQuestionAnswering": "vilt-vqa",
    "ViltForImageAndTextRetrieval": "vilt-itm",
    "BlipForConditionalGeneration": "blip-caption",
    "BlipForQuestionAnswering": "blip-vqa",
    "BlipForImageTextRetrieval": "blip-itm",
    "Blip2ForConditionalGeneration": "blip2",
}

# family -> the task functions it supports
FAMILY_TASKS = {
    "clip": ("zero_shot", "embed_images", "embed_texts", "match", "retrieve", "attention_maps"),
    "align": ("zero_shot", "embed_images", "embed_texts", "match", "retrieve", "attention_maps"),
    "blip-itm": ("zero_shot", "embed_images", "embed_texts", "match", "retrieve", "attention_maps"),
    "vilt-vqa": ("answer", "attention_maps"),
    "vilt-itm": ("match", "attention_maps"),
    "blip-caption": ("caption", "attention_maps"),
    "blip-vqa": ("answer", "attention_maps"),
    "blip2": ("caption", "answer", "attention_maps"),
}


@dataclass(frozen=True)
class ModelSpec:
    """One entry of the model table."""

    name: str  # the name the user typed, or the resolved explicit name
    family: str  # one of FAMILY_TASKS
    source: str  # "pretrained" (hub id) | "bundled" (data/models) | "path" (any local directory)
    repo: str  # hub id or directory
    params: str = ""  # approximate parameter count, for the table
    note: str = ""  # memory or usage note
    zero_shot_template: str = "a photo of a {}."  # default prompt for zero-shot labels
    chosen_by: str = ""  # for family names: why this source was picked

    @property
    def tasks(self) -> tuple[str, ...]:
        return FAMILY_TASKS.get(self.family, ())


def _p(name, family, repo, params, note="", template="a photo of a {}."):
    return ModelSpec(name, family, "pretrained", repo, params, note, template)


PRETRAINED = {s.name: s for s in [
    _p("clip-b32", "clip", "openai/clip-vit-base-patch32", "151M"),
    _p("clip-b16", "clip", "openai/clip-vit-base-patch16", "150M"),
    _p("clip-l14", "clip", "openai/clip-vit-large-patch14", "428M", "about 1.7 GB in fp32"),
    _p("align-base", "align", "kakaobrain/align-base", "172M"),
    _p("vilt-b32-vqa", "vilt-vqa", "dandelin/vilt-b32-finetuned-vqa", "118M"),
    _p("vilt-itm", "vilt-itm", "dandelin/vilt-b32-finetuned-coco", "112M"),
    _p("blip-caption-base", "blip-caption", "Salesforce/blip-image-captioning-base", "247M"),
    _p("blip-caption-large", "blip-caption", "Salesforce/blip-image-captioning-large", "470M"),
    _p("blip-vqa-base", "blip-vqa", "Salesforce/blip-vqa-base", "385M"),
    _p("blip-itm-base", "blip-itm", "Salesforce/blip-itm-base-coco", "223M"),
    _p("blip2-opt-2.7b", "blip2", "Salesforce/blip2-opt-2.7b", "3.9B",
       "needs ~15 GB in fp32, ~8 GB in fp16/bf16 (load_model(..., dtype='fp16') on a GPU), ~4 GB in 8-bit "
       "(bitsandbytes, CUDA only); too big for most laptops and for a free Colab GPU in fp32"),
]}

BUNDLED_NAMES = {
    "shapes-clip": "clip", "shapes-align": "align", "shapes-vilt-vqa": "vilt-vqa",
    "shapes-blip-caption": "blip-caption", "shapes-blip-vqa": "blip-vqa", "shapes-blip-itm": "blip-itm",
}

# family name -> (pretrained name, bundled name)
FAMILIES = {
    "clip": ("clip-b32", "shapes-clip"),
    "align": ("align-base", "shapes-align"),
    "vilt-vqa": ("vilt-b32-vqa", "shapes-vilt-vqa"),
    "blip-caption": ("blip-caption-base", "shapes-blip-caption"),
    "blip-vqa": ("blip-vqa-base", "shapes-blip-vqa"),
    "blip-itm": ("blip-itm-base", "shapes-blip-itm"),
}


_METAS: dict[str, tuple[tuple[int, int], Mapping]] = {}  # mmkit.json's path -> ((mtime, size) read, its content)


def _meta(path: Path) -> Mapping:
    """A model folder's mmkit.json, read-only ({} when it has none, or it cannot be read or holds no object), read
    again only when the file changes: the domain check asks a model loaded from a folder for it on every task call
    (finetuned_from)."""
    f = path / "mmkit.json"
    try:
        st = f.stat()
    except OSError:
        return {}
    stamp, seen = (st.st_mtime_ns, st.st_size), _METAS.get(str(f))
    if seen is None or seen[0] != stamp:
        try:
            data = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            return {}
        seen = _METAS[str(f)] = stamp, MappingProxyType(data if isinstance(data, dict) else {})
    return seen[1]


def bundled_spec(name: str) -> ModelSpec:
    """The spec of a bundled model (whether or not its files are present)."""
    path = config.models_dir() / name
    meta = _meta(path)
    n = meta.get("params")
    return ModelSpec(name, BUNDLED_NAMES[name], "bundled", str(path),
                     f"{n / 1e6:.1f}M" if isinstance(n, (int, float)) else "",
                     "trained on ShapesWorld by scripts/; see its README.md",
                     meta.get("zero_shot_template", "a {}"))


def bundled_folder(path) -> str | None:
    """The bundled model's name when `path` is its folder in data/models; None otherwise."""
    try:
        folder = Path(path).expanduser().resolve()
        return folder.name if folder.parent == config.models_dir().resolve() else None
    except (OSError, ValueError, TypeError):
        return None


def list_models(kind: str | None = None) -> "ModelTable":
    """The table of model names: name, kind, family, source/repo, size, tasks. kind filters it."""
    rows = []
    for fam, (pre, bun) in FAMILIES.items():
        rows.append(("family", fam, fam, f"{pre} if the hub/cache has it, else {bun}", "", ""))
    for s in PRETRAINED.values():
        rows.append(("pretrained", s.name, s.family, s.repo, s.params, s.note))
    for name in BUNDLED_NAMES:
        s = bundled_spec(name)
        present = (Path(s.repo) / "config.json").exists()
        rows.append(("bundled", name, s.family, f"data/models/{name}" + ("" if present else " (missing)"),
                     s.params, ""))
    if kind is not None:
        rows = [r for r in rows if r[0] == kind]
    return ModelTable(rows)


class ModelTable(list):
    """A list of (kind, name, family, source, params, note) rows that prints as a table."""

    header = ("kind", "name", "family", "source", "params", "note")

    def __str__(self) -> str:
        rows = [self.header] + [tuple(str(c) for c in r) for r in self]
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r[:5], widths)).rstrip() for r in rows]
        notes = [f"  * {r[1]}: {r[5]}" for r in self if r[5]]
        return "\n".join(lines + (["", "notes:"] + notes if notes else []))

    def _repr_pretty_(self, p, cycle):  # IPython display
        p.text(str(self))

    def names(self) -> list[str]:
        return [r[1] for r in self]


# ---------------------------------------------------------------------------------------------
# resolution
# ---------------------------------------------------------------------------------------------

_ANNOUNCED: set[str] = set()


def resolve(name_or_path: str) -> ModelSpec:
    """Turn a name, family name, directory or hub id into a ModelSpec (no weights are loaded)."""
    if not isinstance(name_or_path, (str, os.PathLike)) or not str(name_or_path).strip():
        raise InputError(f"model name {name_or_path!r} is not a name; see mmkit.list_models()")
    name = os.fspath(name_or_path).strip()
    if name in FAMILIES:
        return _resolve_family(name)
    if name in PRETRAINED:
        return PRETRAINED[name]
    if name in BUNDLED_NAMES:
        spec = bundled_spec(name)
        if not (Path(spec.repo) / "config.json").exists():
            raise InputError(f"bundled model {name!r} is missing from {spec.repo}; rebuild it with `make models` "
                             "or check out the repository's data/models folder")
        return spec
    path = Path(name).expanduser()
    if path.is_dir():
        bundled = bundled_folder(path)  # data/models/shapes-clip given by its path is still shapes-clip: one spec
        return resolve(bundled) if bundled in BUNDLED_NAMES else _path_spec(path)  # (and one cache entry) per folder
    registered = list(FAMILIES) + list(PRETRAINED) + list(BUNDLED_NAMES)
    same = [r for r in registered if r.casefold() == name.casefold()]  # 'CLIP', 'Shapes-Clip': names ignore case
    if len(same) == 1:  # (after the folder check: a folder named 'CLIP' here is still that folder)
        return resolve(same[0])
    if "/" in name and not name.startswith((".", "/", "~")) and name.count("/") == 1:
        known = next((s for s in PRETRAINED.values() if s.repo == name), None)  # a registered model's hub id
        return known or ModelSpec(name, "", "pretrained", name)  # a hub id; family known after its config loads
    if name.startswith((".", "/", "~")) or name.count("/") > 1 or os.sep in name:
        where = "" if os.path.isabs(os.path.expanduser(name)) else f" (from {os.getcwd()!r})"
        raise InputError(f"no such model folder: {name!r}{where}; check the path, or pass a registered name "
                         "(mmkit.list_models())")
    close = difflib.get_close_matches(name.casefold(), registered, n=4, cutoff=0.5)
    hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
    raise InputError(f"unknown model {name!r}: not a registered name, a directory or a hub id. {hint}"
                     "mmkit.list_models() shows every name")


def _path_spec(path: Path) -> ModelSpec:
    cfg = path / "config.json"
    if not cfg.exists():
        raise InputError(f"{str(path)!r} is a folder without config.json, so not a Hugging Face model directory; "
                         "save models with model.save_pretrained(folder) and processor.save_pretrained(folder)")
    family = _family_of(_read_config(cfg), str(path))
    meta = _meta(path)
    return ModelSpec(str(path), family, "path", str(path.resolve()),
                     zero_shot_template=meta.get("zero_shot_template", "a photo of a {}."))


def _read_config(cfg: Path) -> dict:
    """A model folder's config.json as a dict, or InputError naming the file and the likely cause."""
    fix = ("the save or download was probably interrupted: save the model again (model.save_pretrained(folder) and "
           "processor.save_pretrained(folder)) or copy or download the whole folder again")
    try:
        data = json.loads(cfg.read_bytes().decode("utf-8"))
    except OSError as e:
        raise InputError(f"{str(cfg)!r} could not be read ({e.strerror or e}); check its permissions") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{str(cfg)!r} is not valid JSON ({e}); {fix}") from None
    if not isinstance(data, dict):
        raise InputError(f"{str(cfg)!r} is not a JSON object (it holds a {type(data).__name__}), so not a Hugging "
                         f"Face model config; {fix}")
    return data


def _family_of(cfg: dict, where: str) -> str:
    archs = cfg.get("architectures") or []
    for a in archs:
        if a in CLASS_FAMILY:
            return CLASS_FAMILY[a]
    raise InputError(f"{where}: architecture {archs or cfg.get('model_type')!r} is not one mmkit knows; "
                     f"supported classes: {', '.join(CLASS_FAMILY)}")


def _resolve_family(family: str) -> ModelSpec:
    pre_name, bun_name = FAMILIES[family]
    pre = PRETRAINED[pre_name]
    if config.is_cached(pre.repo):
        spec, why = pre, f"{pre.repo} is in your local Hugging Face cache"
    else:
        hub = config.hub_status()
        if hub.online:
            spec, why = pre, "the Hugging Face hub is reachable"
        else:
            spec = bundled_spec(bun_name)
            why = f"the hub is not reachable ({hub.reason}) and {pre.repo} is not cached"
            if not (Path(spec.repo) / "config.json").exists():
                raise InputError(f"'{family}': {why}, and the bundled {bun_name!r} is missing from {spec.repo}; "
                                 "rebuild it with `make models`")
    chosen = replace(spec, chosen_by=f"'{family}' -> {spec.name} ({spec.source}): {why}")
    if family not in _ANNOUNCED:
        _ANNOUNCED.add(family)
        print(f"mmkit: {chosen.chosen_by}", file=sys.stderr)
    return chosen


# ---------------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------------


@dataclass
class Loaded:
    """A loaded model with its processor, its spec (where it came from) and its device."""

    model: object
    processor: object
    spec: ModelSpec
    device: object  # torch.device
    dtype: object = None  # torch.dtype of the weights
    attention: bool = False  # loaded with eager attention, so attention maps can be read
    cache: dict = field(default_factory=dict, repr=False)  # e.g. zero-shot label embeddings

    def __repr__(self) -> str:
        return (f"Loaded({self.spec.name!r}, family={self.spec.family!r}, source={self.spec.source!r}, "
                f"device={self.device}, dtype={self.dtype})")

    @property
    def name(self) -> str:
        return self.spec.name


CACHE = ModelCache()  # load_model's models, bounded (set_cache_limit), least recently used dropped first


def set_cache_limit(models: int | None = None, max_bytes: int | str | None = HALF_OF_RAM) -> None:
    """Bound load_model's cache; the least recently used models are dropped first (the newest is always kept).

    Args:
        models: at most this many cached models (a model loaded with attention=True is a second copy and counts).
        max_bytes: at most this many bytes of weights in all, "half of RAM" (the default) or None for no bound.
    Dropping a model only forgets the cache's reference: a Loaded you still hold keeps working."""
    CACHE.set_limit(models, max_bytes)


def cache_info() -> list[dict]:
    """The cached models, least recently used first: name, device, dtype, attention, bytes."""
    return CACHE.info()


def load_model(name_or_path, device=None, dtype=None, attention: bool = False) -> Loaded:
    """Load a model and its processor by name, family, directory or hub id; cached per process (a bounded,
    least-recently-used cache: set_cache_limit, cache_info).

    Args:
        name_or_path: a name from list_models(), a family name, a local HF directory or a hub id.
        device: "cpu", "cuda", "mps" or None (cuda > mps > cpu).
        dtype: "fp32", "fp16", "bf16" or None (half precision on GPU, fp32 on CPU).
        attention: load with eager attention so attention maps can be extracted.
    """
    if isinstance(name_or_path, Loaded):
        return name_or_path
    spec = resolve(name_or_path)
    if spec.source == "pretrained" and not config.is_cached(spec.repo) and not config.hub_status().online:
        raise InputError(_offline_message(spec))  # decided before torch is even imported
    dev = config.get_device(device)
    dt = config.get_dtype(dev, dtype)
    return CACHE.get((spec.repo, str(dev), str(dt), bool(attention)), lambda: _load(spec, dev, dt, attention))


def _offline_message(spec: ModelSpec) -> str:
    alt = FAMILIES.get(spec.family)
    bundled = f" The bundled ShapesWorld model {alt[1]!r} works offline (or use the family name '{spec.family}', " \
              "which picks it automatically when the hub is unreachable)." if alt else ""
    owner = spec.repo.split("/")[0] if spec.repo.count("/") == 1 else ""
    here = (f" There is no folder {spec.repo!r} here either ({owner!r} is a folder here: a mistyped path to a saved "
            "model?).") if owner and Path(owner).is_dir() else ""
    return (f"{_named(spec)} is not in your local Hugging Face cache and the hub is not reachable "
            f"({config.hub_status().reason}).{here}{bundled} To use the real model, run once while online, or copy "
            "its folder here and pass the folder's path.")


def clear_cache() -> None:
    """Forget every loaded model (frees memory)."""
    CACHE.clear()


@contextmanager
def quiet_transformers():
    """Hide transformers' per-load chatter (weight-loading bars, "torchvision missing: using the PIL
    image processor" notices) while a model loads; real errors still raise."""
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def _load(spec: ModelSpec, dev, dt, attention: bool) -> Loaded:
    with quiet_transformers():
        return _load_quietly(spec, dev, dt, attention)


def _load_quietly(spec: ModelSpec, dev, dt, attention: bool) -> Loaded:
    import transformers
    from transformers import AutoConfig, AutoProcessor

    if (Path(spec.repo) / "adapter_config.json").exists():  # LoRA adapters saved by Finetuned.save(merge=False)
        from .tuning.lora import load_adapter

        return load_adapter(spec, dev, dt, attention)
    try:
        cfg = AutoConfig.from_pretrained(spec.repo)
    except OSError as e:
        if spec.source == "pretrained" and not config.hub_status().online:
            raise InputError(_offline_message(spec)) from None
        raise InputError(f"could not read the config of {_named(spec)}: {e}") from None
    family = spec.family or _family_of(cfg.to_dict(), spec.repo)
    arch = next(a for a in (cfg.architectures or []) if a in CLASS_FAMILY) if cfg.architectures else None
    if arch is None:
        arch = next(c for c, f in CLASS_FAMILY.items() if f == family)
    cls = getattr(transformers, arch)
    kwargs = {"dtype": dt, "use_safetensors": True}
    if attention:
        kwargs["attn_implementation"] = "eager"
    try:
        model = cls.from_pretrained(spec.repo, **kwargs)
    except OSError as e:
        if "safetensors" in str(e).lower() or "model.safetensors" in str(e):
            raise InputError(f"{spec.name!r} has no safetensors weights; mmkit only loads safetensors "
                             "(pickle-based .bin files can run code). Convert it with model.save_pretrained()") from None
        raise InputError(f"could not load the weights of {_named(spec)}: {e}") from None
    except Exception as e:  # safetensors' own error on a damaged file, a shape that does not fit the config, ...
        if not _damaged(e):
            raise
        raise InputError(f"the weights of {_named(spec)} could not be read ({type(e).__name__}: {e}); "
                         "the file is damaged or incomplete (an interrupted copy or download?): copy or save the "
                         "model folder again") from None
    processor = AutoProcessor.from_pretrained(spec.repo)
    _check_tokenizer(processor, spec)
    model.eval().to(dev)
    if not attention:
        from .speedups import fuse_attention

        # BLIP: fused vision attention, absorbed cross-attention, lean decoder steps; BLIP and CLIP: in-place
        # encoder layers; BLIP and BLIP-2: each distinct image of a batch encoded once (maps need the eager code)
        fuse_attention(model)
    if not spec.family:
        spec = replace(spec, family=family)
    return Loaded(model, processor, spec, dev, dt, attention)


def _named(spec: ModelSpec) -> str:
    """"'name' (repo)" for messages, or "'name'" alone when the two are the same (a path, a hub id)."""
    return f"{spec.name!r}" + (f" ({spec.repo})" if spec.repo != spec.name else "")


def _damaged(e: Exception) -> bool:
    """Whether a loading error says the weights file itself is bad (safetensors' error, a size that does not fit)."""
    return type(e).__module__.split(".")[0].startswith("safetensors") or isinstance(e, (ValueError, RuntimeError))


KNOWN_TEXT = "a red circle"  # words every tokenizer mmkit loads knows (the bundled ones too)


def _check_tokenizer(processor, spec: ModelSpec) -> None:
    """InputError when the tokenizer knows none of KNOWN_TEXT's words: its files are missing from the model's folder
    (a folder copied without tokenizer.json / vocab.txt loads a tokenizer that reads every word as unknown, and the
    model then scores every text the same)."""
    tok = getattr(processor, "tokenizer", None)
    if tok is None or tok.unk_token_id is None:
        return
    ids = tok(KNOWN_TEXT, add_special_tokens=False)["input_ids"]
    if ids and all(i == tok.unk_token_id for i in ids):
        raise InputError(f"the tokenizer of {_named(spec)} reads every word as unknown "
                         f"({KNOWN_TEXT!r} -> {len(ids)} x {tok.unk_token!r}, {len(tok)} tokens in all): its tokenizer "
                         "files (tokenizer.json, vocab.txt or vocab.json and merges.txt) are missing or damaged; copy "
                         "the whole model folder again")


def suggest_models(task: str) -> list[str]:
    """Names to load for a task, one per family that does it (FAMILY_TASKS' order): the family name where there is
    one, else the family's pretrained names."""
    out = []
    for family, tasks in FAMILY_TASKS.items():
        if task in tasks:
            out += [family] if family in FAMILIES else [s.name for s in PRETRAINED.values() if s.family == family]
    return out


def _or(names: list[str]) -> str:
    """'a, b or c'."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def require(m: Loaded, task: str) -> None:
    """Raise InputError when the loaded model's family cannot do the task (task: the function's name)."""
    if not isinstance(m, Loaded):
        raise InputError(f"{task} needs a model from mmkit.load_model(...), got {type(m).__name__}")
    if task not in m.spec.tasks:
        names = suggest_models(task)
        hint = f"try {_or(names)}, e.g. mmkit.load_model({names[0]!r})" if names else "no registered model does"
        raise InputError(f"{m.spec.name} ({m.spec.family}) cannot {task}; {hint}")


def family_choices() -> dict[str, str]:
    """For each family name, the model it resolves to here and why (no weights are loaded)."""
    out = {}
    for fam in FAMILIES:
        try:
            spec = _resolve_family(fam)
            out[fam] = f"{spec.name} ({spec.source})"
        except InputError as e:
            out[fam] = f"unavailable: {e}"
    return out
