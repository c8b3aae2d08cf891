"""Checks an index shares with mmkit.retrieve: the query's model must be the index's model.

An index stores the name of the model that embedded its gallery (meta.json "model"). Another model of the same
width fits the vectors but not their meaning (its hits would be wrong, silently), so a query embedded by it is
refused. Names are compared without weights: case-insensitively, and by their last part (a folder's name, a hub
id's name), so one model loaded by name, by its folder or from its hub id matches itself:

    same_model("shapes-clip", resolve("data/models/shapes-clip"))              # True: its folder
    same_model("openai/clip-vit-base-patch32", resolve("copies/clip-vit-base-patch32"))  # True: a local copy
    same_model("shapes-clip", resolve("shapes-blip-itm"))                      # False (resolve: mmkit.models)
"""
from __future__ import annotations

import os

from ..errors import InputError


def _keys(name: str) -> set[str]:
    """A name's comparable forms: the whole of it and its last path part, lower case, without a trailing slash."""
    s = name.strip().replace("\\", "/").rstrip("/").lower()
    return {s, s.rsplit("/", 1)[-1]} - {""}


def _stored_names(name: str) -> list[str]:
    """The stored name, with what a registered name stands for (a family name: its two models; a name: its hub id)."""
    from ..models import FAMILIES, PRETRAINED

    names = [name.strip()]
    names += list(FAMILIES.get(names[0].lower(), ()))
    registered = {n.lower(): s for n, s in PRETRAINED.items()}
    return names + [registered[n.lower()].repo for n in names if n.lower() in registered]


def _given_keys(spec) -> set[str]:
    """A loaded model's forms: its name, and where its weights came from (a folder, a hub id), unless they were
    changed in memory since (a fine-tuned model keeps its base's folder but not its weights)."""
    keys = _keys(spec.name)
    if spec.source != "finetuned":
        keys |= _keys(os.fspath(spec.repo))
    return keys


def _hub_id(name: str) -> bool:
    """Whether a name is a hub id ("owner/name"), not a folder here (resolve's rule)."""
    name = name.replace("\\", "/").rstrip("/")
    return name.count("/") == 1 and not name.startswith((".", "/", "~")) and not os.path.isdir(name)


def same_model(stored: str, spec) -> bool:
    """Whether the model of `spec` (a ModelSpec, e.g. load_model(...).spec) is the model named `stored`."""
    names = _stored_names(stored)
    hubs = {n.replace("\\", "/").rstrip("/").lower() for n in names if _hub_id(n)}
    if spec.source == "pretrained" and hubs:  # two hub ids: the owner counts too (openai/x is not laion/x)
        return os.fspath(spec.repo).lower() in hubs
    return bool(set().union(*(_keys(n) for n in names)) & _given_keys(spec))


def model_name(model) -> str | None:
    """The name an index stores for `model`: a name as given, a loaded model's name (its absolute folder when it
    was loaded by path), or None; InputError for anything else."""
    from ..models import Loaded

    if model is None:
        return None
    if isinstance(model, str):
        return model.strip() or None
    if isinstance(model, os.PathLike):
        return os.fspath(model)
    if isinstance(model, Loaded):
        return model.spec.repo if model.spec.source == "path" else model.spec.name
    raise InputError(f"model={model!r} is not a model's name; pass the name the embeddings were made with, "
                     "e.g. model='shapes-clip', or the loaded model itself")


def check_model(stored: str | None, spec, *, fix: str | None = None) -> None:
    """InputError when the index's model `stored` is known and `spec` is another model.

    Args:
        stored: the index's model name (Index.model); None: not known, nothing is checked.
        spec: the ModelSpec of the model that embeds the query.
        fix: how to pass the right model (the end of the message); default: load the index's model with
            mmkit.load_model, or build the index again with model= when it is the same model under another name.
    """
    if stored is None or same_model(stored, spec):
        return
    fix = fix or (f"load the index's model: mmkit.load_model({stored!r}) (if it is the same model under another "
                  "name, build the index again with model= that name)")
    raise InputError(f"this index holds embeddings of {stored!r}, but the query is embedded by {spec.name!r}: the "
                     f"two models' embeddings do not compare, and the hits would be wrong; {fix}")
