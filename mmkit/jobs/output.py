"""The merged output of a job: every shard's rows, in plan order, as Parquet, JSON Lines or CSV.

Columns: path, then the task's columns (caption / embedding / question, answer / label, score, probs), then
error (why the file could not be read, else empty), notice (an out-of-domain note, else empty) and image_b64.
"path" is text: bytes of a file name that are not UTF-8 show as \\xff there, and then "image_b64" holds the
path's exact bytes in base64 (as in `mmkit ... --json`; empty when the name is UTF-8, "path" being exact), so
`os.fsdecode(base64.b64decode(row["image_b64"]))` opens the file. Parquet keeps embeddings as list<float32> and
zero-shot probabilities as a struct; CSV writes nested values as JSON.
"""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from ..cli_output import path_b64, show_path, utf8
from ..errors import InputError


def public_row(row: dict, columns: tuple[str, ...]) -> dict:
    """A shard row as the output shows it: valid UTF-8 path, every column present (None where empty), and the
    path's exact bytes in "image_b64" when its name is not UTF-8."""
    out = {"path": show_path(row["path"])}
    out.update({c: row.get(c) for c in columns})
    out["error"] = row.get("error")
    out["notice"] = row.get("notice")
    out["image_b64"] = path_b64(row["path"])
    return out


def write_output(path: Path, rows: list[dict], columns: tuple[str, ...], fmt: str, labels=None) -> None:
    """Write rows to path atomically (a temporary file, then a rename)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        if fmt == ".parquet":
            _parquet(tmp, rows, columns, labels)
        else:
            with open(tmp, "w", encoding="utf-8", newline="") as f:
                (_jsonl if fmt == ".jsonl" else _csv)(f, rows, columns)
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise InputError(f"cannot write {show_path(path)!r} ({e.strerror or e}); choose another --out") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def _jsonl(f, rows, columns) -> None:
    for r in rows:
        f.write(utf8(json.dumps(r, ensure_ascii=False)) + "\n")


def _csv(f, rows, columns) -> None:
    w = csv.writer(f)
    names = ["path", *columns, "error", "notice", "image_b64"]
    w.writerow(names)
    for r in rows:
        w.writerow([utf8(json.dumps(r[c]) if isinstance(r[c], (list, dict)) else "" if r[c] is None else str(r[c]))
                    for c in names])


def _parquet(tmp: Path, rows, columns, labels) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError("writing .parquet needs pyarrow: pip install 'mmkit[scale]', or write .jsonl / .csv") from None
    types = {"caption": pa.string(), "question": pa.string(), "answer": pa.string(), "label": pa.string(),
             "score": pa.float32(), "embedding": pa.list_(pa.float32()),
             "probs": pa.struct([(lab, pa.float32()) for lab in (labels or [])])}
    schema = pa.schema([("path", pa.string()), *[(c, types[c]) for c in columns], ("error", pa.string()),
                        ("notice", pa.string()), ("image_b64", pa.string())])
    data = {name: [r[name] for r in rows] for name in schema.names}
    if "path" in data:
        data["path"] = [utf8(p) for p in data["path"]]
    pq.write_table(pa.table(data, schema=schema), tmp)


def read_output(path) -> list[dict]:
    """The rows of a job's output file (.parquet, .jsonl or .csv) as dicts; InputError if it cannot be read."""
    p = Path(os.fspath(path))
    if not p.is_file():
        raise InputError(f"{show_path(p)!r} is not a file; pass the --out file of a finished job")
    suffix = p.suffix.lower()
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.read_table(p).to_pylist()
        if suffix == ".jsonl":
            with open(p, encoding="utf-8") as f:
                return [json.loads(line) for line in f if line.strip()]
        if suffix == ".csv":
            with open(p, encoding="utf-8", newline="") as f:
                return [{k: (v or None) for k, v in r.items()} for r in csv.DictReader(io.StringIO(f.read()))]
    except InputError:
        raise
    except Exception as e:
        raise InputError(f"{show_path(p)!r} could not be read as {suffix} ({type(e).__name__}: {e})") from None
    raise InputError(f"{show_path(p)!r}: pass a .parquet, .jsonl or .csv file")
