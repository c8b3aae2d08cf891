"""Readers for caption datasets you have locally: COCO caption files, COCO result files, Karpathy splits.

Each returns what `mmkit.metrics.caption_scores` takes, {id: [caption, ...]}, and where the images are, so
your own copy of COCO or Flickr30k can be captioned and scored:

    refs = read_coco_captions("annotations/captions_val2014.json", image_dir="val2014")
    hyps = {i: [model.generate(path)] for i, path in refs.images.items()}
    caption_scores(hyps, refs.refs)

Malformed files raise InputError naming the file, what is wrong and what was expected.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from ..errors import InputError

KARPATHY_SPLITS = ("train", "restval", "val", "test")


@dataclass
class CaptionSet:
    """Reference captions and image paths, keyed by image id (in file order)."""

    refs: dict = field(default_factory=dict)  # id -> [reference caption, ...]
    images: dict = field(default_factory=dict)  # id -> image path (joined with image_dir when given)

    @property
    def ids(self) -> list:
        return list(self.refs)

    def __len__(self) -> int:
        return len(self.refs)


def _load_json(path, what: str):
    p = os.fspath(path)
    if not os.path.isfile(p):
        raise InputError(f"{p!r} does not exist; pass the path of a {what} JSON file")
    try:
        with open(p, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise InputError(f"{p!r} is not valid JSON ({e.msg} at line {e.lineno}); is it a {what} file?") from None
    except UnicodeDecodeError:
        raise InputError(f"{p!r} is not UTF-8 text; is it a {what} file?") from None


def _need(obj, key: str, path, expected: str):
    if not isinstance(obj, dict) or key not in obj:
        raise InputError(f"{os.fspath(path)!r}: missing {key!r}; expected {expected}")
    return obj[key]


def _caption_text(c, path, where: str) -> str:
    if not isinstance(c, str) or not c.strip():
        raise InputError(f"{os.fspath(path)!r}: {where} has caption {c!r}; captions must be non-empty strings")
    return " ".join(c.split())


COCO_FORMAT = ('COCO captions format {"images": [{"id": 1, "file_name": "x.jpg"}, ...], '
               '"annotations": [{"image_id": 1, "caption": "..."}, ...]}')


def read_coco_captions(path, image_dir=None) -> CaptionSet:
    """A COCO caption annotation file (e.g. captions_val2014.json) -> CaptionSet of references and image paths.

    Args:
        image_dir: folder holding the images; image paths are image_dir/file_name (just file_name if None).
    """
    data = _load_json(path, "COCO captions")
    images = _need(data, "images", path, COCO_FORMAT)
    annotations = _need(data, "annotations", path, COCO_FORMAT)
    if not isinstance(images, list) or not isinstance(annotations, list):
        raise InputError(f"{os.fspath(path)!r}: 'images' and 'annotations' must be lists; expected {COCO_FORMAT}")
    out = CaptionSet()
    for n, im in enumerate(images):
        i = _need(im, "id", path, COCO_FORMAT + f" (images[{n}] has no id)")
        name = _need(im, "file_name", path, COCO_FORMAT + f" (images[{n}] has no file_name)")
        out.images[i] = os.path.join(os.fspath(image_dir), name) if image_dir is not None else name
        out.refs[i] = []
    for n, a in enumerate(annotations):
        i = _need(a, "image_id", path, COCO_FORMAT + f" (annotations[{n}] has no image_id)")
        if i not in out.refs:
            raise InputError(f"{os.fspath(path)!r}: annotations[{n}] refers to image_id {i!r}, which is not in 'images'")
        out.refs[i].append(_caption_text(_need(a, "caption", path, COCO_FORMAT), path, f"annotations[{n}]"))
    empty = [i for i, r in out.refs.items() if not r]
    for i in empty:  # images without captions cannot be scored
        del out.refs[i], out.images[i]
    return out


def read_coco_results(path) -> dict:
    """A COCO results file [{"image_id": 1, "caption": "..."}, ...] -> hyps {id: [caption]} (one per image)."""
    data = _load_json(path, "COCO results")
    fmt = 'COCO results format [{"image_id": 1, "caption": "..."}, ...]'
    if not isinstance(data, list):
        raise InputError(f"{os.fspath(path)!r}: a results file is a JSON list; expected {fmt}")
    hyps: dict = {}
    for n, r in enumerate(data):
        i = _need(r, "image_id", path, fmt)
        if i in hyps:
            raise InputError(f"{os.fspath(path)!r}: image_id {i!r} has two captions (entries {n} and earlier); "
                             "keep one caption per image")
        hyps[i] = [_caption_text(_need(r, "caption", path, fmt), path, f"entry {n}")]
    return hyps


KARPATHY_FORMAT = ('Karpathy split format {"images": [{"filename": "x.jpg", "split": "test", '
                   '"sentences": [{"raw": "..."}], "cocoid" or "imgid": 1}, ...]}')


def read_karpathy_split(path, split: str | tuple = "test", image_dir=None) -> CaptionSet:
    """A Karpathy split file (dataset_coco.json, dataset_flickr30k.json, ...) -> CaptionSet of one split.

    Args:
        split: "train" | "restval" | "val" | "test", or a tuple of them.
        image_dir: root of the images; a path is image_dir/filepath/filename (filepath only for COCO).
    Ids are COCO ids ("cocoid") when present, else "imgid".
    """
    data = _load_json(path, "Karpathy split")
    images = _need(data, "images", path, KARPATHY_FORMAT)
    if not isinstance(images, list):
        raise InputError(f"{os.fspath(path)!r}: 'images' must be a list; expected {KARPATHY_FORMAT}")
    wanted = (split,) if isinstance(split, str) else tuple(split)
    bad = [s for s in wanted if s not in KARPATHY_SPLITS]
    if bad:
        raise InputError(f"split={bad[0]!r} is not one of {KARPATHY_SPLITS}")
    out, seen = CaptionSet(), set()
    for n, im in enumerate(images):
        s = _need(im, "split", path, KARPATHY_FORMAT + f" (images[{n}] has no split)")
        seen.add(s)
        if s not in wanted:
            continue
        i = im.get("cocoid", im.get("imgid")) if isinstance(im, dict) else None
        if i is None:
            raise InputError(f"{os.fspath(path)!r}: images[{n}] has neither 'cocoid' nor 'imgid'; expected {KARPATHY_FORMAT}")
        name = _need(im, "filename", path, KARPATHY_FORMAT)
        sentences = _need(im, "sentences", path, KARPATHY_FORMAT)
        if not isinstance(sentences, list) or not sentences:
            raise InputError(f"{os.fspath(path)!r}: images[{n}] has no sentences; expected {KARPATHY_FORMAT}")
        refs = []
        for k, sent in enumerate(sentences):
            raw = sent.get("raw") if isinstance(sent, dict) else None
            if raw is None and isinstance(sent, dict) and isinstance(sent.get("tokens"), list):
                raw = " ".join(sent["tokens"])
            refs.append(_caption_text(raw, path, f"images[{n}].sentences[{k}]"))
        rel = os.path.join(im.get("filepath", ""), name)
        out.refs[i] = refs
        out.images[i] = os.path.join(os.fspath(image_dir), rel) if image_dir is not None else rel
    if not out.refs:
        raise InputError(f"{os.fspath(path)!r} has no images in split {wanted}; its splits are {sorted(seen)}")
    return out
