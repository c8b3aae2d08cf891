"""What a collection job does to one batch of decoded images: caption, embed, answer or zero-shot.

Each task turns (model, RGB images, options) into one record (a dict of columns) per image, by calling
the library's own batched function, so a job's results are exactly `mmkit.caption(m, images)` etc. on
the same pixels. Out-of-domain notices (a bundled ShapesWorld model given photos) go to a "notice" column
of the images they concern.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..errors import InputError


@dataclass(frozen=True)
class JobTask:
    """One kind of collection job."""

    name: str  # "caption", "embed", "answer", "zero-shot"
    model: str  # default model (a family name)
    requires: str  # what the model must be able to do (mmkit.models.require)
    columns: tuple[str, ...]  # result columns, after "path"
    noun: str  # what it returns, for out-of-domain notices
    batch: Callable  # (m, images, options) -> list[dict], one per image


def _caption(m, images, o) -> list[dict]:
    import mmkit

    kw = {k: o[k] for k in ("max_new_tokens", "num_beams", "prompt") if o.get(k) is not None}
    return [{"caption": c} for c in mmkit.caption(m, images, batch_size=len(images), **kw)]


def _embed(m, images, o) -> list[dict]:
    import mmkit

    emb = mmkit.embed_images(m, images, batch_size=len(images))  # (B, D) L2-normalised
    return [{"embedding": row.tolist()} for row in emb.numpy()]  # float32 values, exact in JSON


def _answer(m, images, o) -> list[dict]:
    import mmkit

    return [{"question": o["question"], "answer": a}
            for a in mmkit.answer(m, images, o["question"], batch_size=len(images))]


def _zero_shot(m, images, o) -> list[dict]:
    import mmkit

    out = []
    for probs in mmkit.zero_shot(m, images, o["labels"], templates=o.get("templates"), batch_size=len(images)):
        best = max(probs, key=probs.get)
        out.append({"label": best, "score": probs[best], "probs": probs})
    return out


TASKS: dict[str, JobTask] = {
    "caption": JobTask("caption", "blip-caption", "caption", ("caption",), "caption", _caption),
    "embed": JobTask("embed", "clip", "embed_images", ("embedding",), "embedding", _embed),
    "answer": JobTask("answer", "blip-vqa", "answer", ("question", "answer"), "answer", _answer),
    "zero-shot": JobTask("zero-shot", "clip", "zero_shot", ("label", "score", "probs"), "zero-shot result", _zero_shot),
}


def get_task(name: str) -> JobTask:
    """The JobTask called `name` ("zero_shot" is accepted for "zero-shot"), or InputError listing them."""
    key = str(name).replace("_", "-")
    if key not in TASKS:
        raise InputError(f"unknown job task {name!r}; choose one of {sorted(TASKS)}")
    return TASKS[key]


def check_options(task: JobTask, options: dict) -> dict:
    """The options a task needs, checked; InputError naming the missing or bad one."""
    from ..options import check_option

    o = {k: v for k, v in dict(options or {}).items() if v is not None}
    if task.name == "answer":
        q = o.get("question")
        if not isinstance(q, str) or not q.strip():
            raise InputError("the answer task needs a question: question='what color is the circle?' "
                             "(CLI: -q/--question)")
        o["question"] = q.strip()
    if task.name == "zero-shot":
        labels = o.get("labels")
        if isinstance(labels, str):
            labels = [x.strip() for x in labels.split(",")]
        labels = list(dict.fromkeys(x for x in (labels or []) if isinstance(x, str) and x.strip()))
        if len(labels) < 2:
            raise InputError("the zero-shot task needs at least two different labels: labels=['cat', 'dog'] "
                             "(CLI: -l/--labels 'cat,dog')")
        o["labels"] = labels
        if o.get("templates") is not None:
            o["templates"] = list(check_option("templates", o["templates"]))
    if task.name == "caption":
        if o.get("num_beams") is not None:
            o["num_beams"] = check_option("num_beams", o["num_beams"])
        if o.get("max_new_tokens") is not None:
            o["max_new_tokens"] = check_option("max_new_tokens", o["max_new_tokens"])
        if o.get("prompt") is not None:
            o["prompt"] = check_option("prompt", o["prompt"])
    unknown = set(o) - {"question", "labels", "templates", "num_beams", "max_new_tokens", "prompt"}
    if unknown:
        raise InputError(f"options {sorted(unknown)} do not apply to the {task.name} task")
    return o


def run_batch(task: JobTask, m, images: list, options: dict) -> list[dict]:
    """Records for a batch of RGB images, each with a "notice" (None, or the out-of-domain messages)."""
    from ..cli_output import notice_text
    from ..domain import notices_per_image

    records, notices = notices_per_image(m, images, task.noun, lambda: task.batch(m, images, options))
    for r, said in zip(records, notices):
        r["notice"] = notice_text(said)
    return records
