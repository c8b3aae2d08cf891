"""`mmkit.jobs.run`: caption, embed, answer or classify every image of a folder into one results file, resumably."""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..cli_output import show_path
from ..errors import InputError
from .local import Timing, run_local
from .output import public_row, write_output
from .shards import Journal, check_same, check_writable, out_format
from ..cli_input import passed_over
from .source import file_stat, list_images, source_paths
from .tasks import check_options, get_task

ENGINES = ("local", "ray")


@dataclass
class JobResult:
    """What a finished job did."""

    out: Path  # the results file
    images: int  # rows in it (one per image file)
    errors: int  # rows with an error (unreadable files)
    done_before: int  # images already done by an earlier run (resume)
    seconds: float  # wall clock of this run
    timing: dict = field(default_factory=dict)  # seconds per stage: decode, wait, model, write, total, (ray: start)
    skipped: list[str] = field(default_factory=list)  # files in the folders without an image suffix (not listed)
    errors_before: int = 0  # of the error rows, those an earlier run wrote (a resume keeps them unless retry_errors)

    @property
    def images_per_s(self) -> float:
        new = self.images - self.done_before
        return new / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        t = self.timing
        new = self.images - self.done_before
        parts = [f"{new} images in {self.seconds:.1f} s ({self.images_per_s:.1f} images/s)"]
        if self.done_before:
            parts.append(f"{self.done_before} done before (resumed)")
        if self.errors:
            parts.append(f"{self.errors} unreadable (error rows"
                         + (f", {self.errors_before} of them from an earlier run)" if self.errors_before else ")"))
        else:
            parts.append("no unreadable files")
        if self.skipped:
            parts.append(passed_over(self.skipped))
        split = ", ".join(f"{k} {t[k]:.1f} s" for k in ("start", "decode", "wait", "model", "write") if k in t)
        return f"{'; '.join(parts)}; {split} -> {show_path(self.out)}"


def _count(name: str, value, least: int, what: str) -> int:
    """value when it is a whole number >= least; InputError naming the option and its flag otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        flag = "--" + name.replace("_", "-")
        raise InputError(f"{name}={value!r} ({flag}): pass {what}")
    return value


def _shards(paths: list[str], size: int) -> list[list[str]]:
    return [paths[i:i + size] for i in range(0, len(paths), size)]


def run(task: str, model=None, source=".", out="results.parquet", resume: bool = True, engine: str = "local", *,
        overwrite: bool = False, recursive: bool = True, batch_size: int = 16, shard_size: int = 256,
        workers: int | None = None, draft: bool = True, device=None, progress: bool = True,
        ray_address: str | None = None, ray_workers: int = 2, retry_errors: bool = False, **options) -> JobResult:
    """Run a task over every image of `source` into `out`, in shards, resumably.

    Args:
        task: "caption", "embed", "answer" (needs question=) or "zero-shot" (needs labels=).
        model: a Loaded model, a name or a folder (default: the task's family: blip-caption, clip, blip-vqa).
        source: a folder (recursive), a file, or a list of them.
        out: a .parquet, .jsonl or .csv file; the journal is kept beside it in `<out>.parts/`.
        resume: continue the journal of an earlier run of the same job (only missing shards are done, and the
            shards of files changed since, by size or mtime). The error rows of finished shards are kept as they
            are (the result equals an uninterrupted run's), as are the rows of files gone since (it says so).
        retry_errors: with resume, also redo the finished shards that hold error rows (files since fixed or
            made readable are then read again; the others stay error rows).
        engine: "local" (threads decode, one model) or "ray" (Ray Data actors, one model per worker).
        overwrite: start again even when `out` or its journal exists.
        batch_size: images per forward pass; shard_size: images per shard file (a multiple of batch_size).
        workers: decoding threads (local; default min(4, CPUs)); 0 decodes in the main thread.
        draft: decode JPEGs at the model's input scale (several times faster on photos).
        ray_address: a cluster to join (HOST:PORT, ray://HOST:PORT, "auto"); one that does not answer is refused
            at once. ray_workers: model actors on Ray (1 or more).
        options: the task's own: question=, labels=, templates=, prompt=, num_beams=, max_new_tokens=.
    Returns: a JobResult (rows, errors, seconds and the time per stage).
    """
    from ..models import Loaded, load_model, require
    from ..options import check_option

    spec = get_task(task)
    options = check_options(spec, options)
    fmt = out_format(out)
    if engine not in ENGINES:
        raise InputError(f"engine={engine!r}: choose 'local' or 'ray'")
    batch_size = check_option("batch_size", batch_size)
    if not isinstance(shard_size, int) or shard_size < 1:
        raise InputError(f"shard_size={shard_size!r}: pass a positive whole number of images (e.g. 256)")
    shard_size = max(batch_size, shard_size // batch_size * batch_size)  # whole batches per shard
    workers = min(4, os.cpu_count() or 1) if workers is None else _count(
        "workers", workers, 0, "the number of decoding threads, 0 or more (0 decodes in the main thread; "
        "default min(4, CPUs))")
    _count("ray_workers", ray_workers, 1, "the number of model actors on Ray, 1 or more (default 2; one per GPU "
           "on a GPU cluster)")
    paths, skipped = list_images(source, recursive)
    out = Path(os.fspath(out)).absolute()
    journal = Journal(out)
    if (journal.exists() or out.exists()) and not (resume or overwrite):  # before the model is loaded
        raise InputError(f"{show_path(out)!r} {'has a journal' if journal.exists() else 'exists'}; pass "
                         "resume=True (--resume) to continue it, or overwrite=True (--overwrite) to start again")
    check_writable(out)
    if engine == "ray":
        from .ray_engine import check_address

        check_address(ray_address)
    lock = journal.lock()  # before the model loads: a second job on this output is refused at once
    try:
        m = model if isinstance(model, Loaded) else load_model(os.fspath(model or spec.model), device=device)
        require(m, spec.requires)
        job = {"task": spec.name, "model": m.spec.name, "options": options, "batch_size": batch_size,
               "shard_size": shard_size, "draft": bool(draft), "version": 1, "source": source_paths(source)}
        if journal.exists() and resume and not overwrite:
            check_same(journal.job(), job)
            plan = journal.plan()
            known = {p for s in plan for p in s}
            new = [p for p in paths if p not in known]
            if new:  # files added since: new shards at the end
                journal.extend(_shards(new, shard_size))
                plan = journal.plan()
        elif (journal.exists() or out.exists()) and not overwrite:
            raise InputError(f"{show_path(out)!r} {'has a journal' if journal.exists() else 'exists'}; pass "
                             "resume=True (--resume) to continue it, or overwrite=True (--overwrite) to start again")
        else:
            plan = _shards(paths, shard_size)
            journal.start(job, plan)
        done = journal.done()
        kept = _check_done(journal, done, retry_errors, progress)  # the rows of the shards kept as they are
        done = set(kept)
        pending = [k for k in range(len(plan)) if k not in done]
        before = sum(len(plan[k]) for k in done if k < len(plan))
        total = sum(map(len, plan))
        timing = Timing()
        t0 = time.perf_counter()
        bar = _bar(total, before, spec.name, progress)
        try:
            if engine == "local":
                run_local(spec, m, options, plan, pending, journal, batch_size=batch_size, workers=workers,
                          draft=draft, bar=bar, timing=timing)
            else:
                from .ray_engine import run_ray

                run_ray(spec, m, options, plan, pending, journal, batch_size=batch_size, draft=draft, bar=bar,
                        timing=timing, address=ray_address, workers=ray_workers)
        except KeyboardInterrupt:
            bar.close()
            _say(progress, f"mmkit: interrupted; {len(journal.done())} of {len(plan)} shards are saved: rerun with "
                           "resume=True (--resume) to finish")
            raise
        finally:
            bar.close()
        t = time.perf_counter()
        rows, errors_before = [], 0
        for k in range(len(plan)):
            shard = [public_row(r, spec.columns) for r in (kept.pop(k, None) or journal.read_shard(k))]
            if k in done:  # done by an earlier run
                errors_before += sum(r["error"] is not None for r in shard)
            rows += shard
        write_output(out, rows, spec.columns, fmt, labels=options.get("labels"))
        timing["write"] += time.perf_counter() - t
        timing["total"] = time.perf_counter() - t0
    finally:
        lock.release()
    res = JobResult(out, len(rows), sum(r["error"] is not None for r in rows), before, timing["total"],
                    dict(timing), skipped, errors_before)
    notes = sorted({r["notice"] for r in rows if r["notice"]})
    for n in notes:
        _say(progress, f"mmkit: note: {n}")
    _say(progress, f"mmkit {spec.name}: {res.summary()}")
    return res


def _check_done(journal: Journal, done: set[int], retry_errors: bool, progress: bool) -> dict[int, list[dict]]:
    """{shard: rows} of the finished shards kept; the others (a file changed since, or error rows to retry) have
    their files removed so that either engine does them again (a job killed now simply redoes them on resume)."""
    kept, changed, gone = {}, 0, 0
    for k in sorted(done):
        rows = journal.read_shard(k)
        moved, lost = _file_changes(rows)
        if moved or (retry_errors and any(r.get("error") is not None for r in rows)):
            journal.shard_path(k).unlink()
            changed += moved
        else:
            kept[k] = rows
            gone += lost
    if changed:
        _say(progress, f"mmkit: {_files(changed)} changed since: {_plural(changed, 'its shard is', 'their shards are')}"
                       " done again")
    if gone:
        _say(progress, f"mmkit: {_files(gone)} listed in the journal {_plural(gone, 'is', 'are')} gone: "
                       f"{_plural(gone, 'its row is', 'their rows are')} kept; overwrite=True (--overwrite) starts "
                       f"again without {_plural(gone, 'it', 'them')}")
    return kept


def _file_changes(rows: list[dict]) -> tuple[int, int]:
    """(files changed since their rows were made, files gone since) of one shard, by each row's "stat"."""
    changed = gone = 0
    for r in rows:
        if "stat" not in r:  # a journal written before 2026-12: not checked
            continue
        now = file_stat(r["path"])
        if now is None:
            gone += r["stat"] is not None  # (None: it could not be stat'ed then either; its row is an error)
        else:
            changed += now != r["stat"]
    return changed, gone


def _files(n: int) -> str:
    """'1 file' or '3 files'."""
    return f"{n} {_plural(n, 'file', 'files')}"


def _plural(n: int, one: str, many: str) -> str:
    """`one` for 1, else `many`."""
    return one if n == 1 else many


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, file=sys.stderr, flush=True)


def _bar(total: int, initial: int, desc: str, progress: bool):
    from tqdm import tqdm

    off = {} if progress else {"disable": True}  # else TQDM_DISABLE=1 (the tests) still turns it off
    return tqdm(total=total, initial=initial, desc=desc, unit="image", file=sys.stderr, smoothing=0.1,
                dynamic_ncols=True, **off)
