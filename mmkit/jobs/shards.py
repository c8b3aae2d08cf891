"""A job's journal on disk: the plan, one file per finished shard, and the merged output.

    captions.parquet            the result, written (atomically) when every shard is done
    captions.parquet.parts/     the journal; keep it to resume or extend the job, delete it when done
        job.json                task, model, options, batch and shard sizes: a resume must match them
        plan.json               the images, cut into shards (append-only: a resume adds new files as new shards)
        shard-000012.jsonl      one finished shard: one JSON line per image, in plan order (with "stat": the
                                file's [size, mtime_ns] before it was read, so a resume redoes changed files)

A shard file appears by rename after its data is flushed to disk, so a SIGKILL or a power cut leaves
either the whole shard or none of it; a rerun redoes exactly the shards that have no file, in the same
batches, so its results equal an uninterrupted run's. A lock file keeps two jobs off one journal.
"""
from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path

from ..cli_output import show_path
from ..errors import InputError

FORMATS = (".parquet", ".jsonl", ".csv")


def out_format(out) -> str:
    """".parquet", ".jsonl" or ".csv" from the output's name, or InputError."""
    suffix = Path(os.fspath(out)).suffix.lower()
    if suffix not in FORMATS:
        raise InputError(f"--out {show_path(out)!r}: name a .parquet, .jsonl or .csv file "
                         "(e.g. captions.parquet)")
    return suffix


def check_writable(out: Path) -> None:
    """InputError unless the job can write `out` and its journal: its folder is made if missing, then a probe file
    is written and removed there (before the model is loaded, so that a bad --out costs nothing)."""
    try:
        if out.is_dir():
            raise IsADirectoryError(errno.EISDIR, "a folder has that name")
        if out.parent.exists() and not out.parent.is_dir():  # else mkdir would say "File exists"
            raise NotADirectoryError(errno.ENOTDIR, f"{show_path(out.parent)} is a file, not a folder")
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{out.name}.probe-", dir=out.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise _unwritable(out, e) from None


def _unwritable(path: Path, e: OSError) -> InputError:
    """The InputError for an output or journal path that cannot be written."""
    return InputError(f"cannot write {show_path(path)!r} ({e.strerror or e}); pass another --out (a file in a folder "
                      "you can write)")


def write_atomic(path: Path, text: str) -> None:
    """Write text to path so that a crash leaves the old file or the new one, never a part."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Journal:
    """The parts folder of one output file."""

    def __init__(self, out):
        self.out = Path(os.fspath(out))
        self.dir = self.out.with_name(self.out.name + ".parts")

    def shard_path(self, k: int) -> Path:
        return self.dir / f"shard-{k:06d}.jsonl"

    def exists(self) -> bool:
        return (self.dir / "job.json").exists()

    def lock(self):
        """A filelock held while the job runs; InputError when another job holds it."""
        import filelock

        lock = filelock.FileLock(str(self.dir / "lock"))
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            lock.acquire(timeout=0)
        except filelock.Timeout:
            raise InputError(f"another job is writing {show_path(self.out)!r} (its lock {show_path(self.dir)}/lock "
                             "is held); wait for it, or choose another --out") from None
        except OSError as e:  # a journal folder (or lock file) this user cannot write
            raise _unwritable(self.dir, e) from None
        return lock

    def start(self, job: dict, shards: list[list[str]]) -> None:
        """A new journal (any old one is removed first)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        for f in self.dir.glob("shard-*.jsonl"):
            f.unlink()
        write_atomic(self.dir / "plan.json", json.dumps({"shards": shards}))
        write_atomic(self.dir / "job.json", json.dumps(job, indent=1, sort_keys=True))

    def job(self) -> dict:
        return json.loads((self.dir / "job.json").read_text(encoding="utf-8"))

    def plan(self) -> list[list[str]]:
        return json.loads((self.dir / "plan.json").read_text(encoding="utf-8"))["shards"]

    def extend(self, new: list[list[str]]) -> None:
        """Append shards to the plan (files that appeared since the job started)."""
        write_atomic(self.dir / "plan.json", json.dumps({"shards": self.plan() + new}))

    def done(self) -> set[int]:
        """Indices of the shards that have a file (each complete: they appear by rename)."""
        for tmp in self.dir.glob(".shard-*.tmp-*"):  # left by a killed job
            try:
                tmp.unlink()
            except OSError:
                pass
        return {int(f.stem.split("-")[1]) for f in self.dir.glob("shard-*.jsonl")}

    def write_shard(self, k: int, rows: list[dict]) -> None:
        write_atomic(self.shard_path(k), "".join(json.dumps(r, allow_nan=False) + "\n" for r in rows))

    def read_shard(self, k: int) -> list[dict]:
        with open(self.shard_path(k), encoding="utf-8") as f:
            return [json.loads(line) for line in f]


def check_same(old: dict, new: dict) -> None:
    """InputError when a resumed job's settings differ from the journal's (their results would not mix)."""
    if "source" in old and old["source"] != new.get("source"):  # journals before 2026-12-07 did not record it
        raise InputError(f"cannot resume: this job reads {_listed(new.get('source'))}, the journal's read "
                         f"{_listed(old['source'])}; their results would mix in one output. Pass the journal's "
                         "folder, another --out for this one, or overwrite=True (--overwrite) to start again")
    for key in ("task", "model", "options", "batch_size", "shard_size", "draft"):
        if old.get(key) != new.get(key):
            verb = "are" if key == "options" else "is"
            raise InputError(f"cannot resume: this job's {key} {verb} {new.get(key)!r}, the journal's {verb} "
                             f"{old.get(key)!r}; rerun with the journal's settings, or pass overwrite=True "
                             "(--overwrite) to start again")


def _listed(paths) -> str:
    """'/a/b' or '/a/b, /c (2 folders or files)' for a job's source."""
    from ..cli_output import show_path

    paths = list(paths or [])
    shown = ", ".join(repr(show_path(x)) for x in paths[:3]) + (", ..." if len(paths) > 3 else "")
    return shown if len(paths) == 1 else f"{shown} ({len(paths)} folders or files)"
