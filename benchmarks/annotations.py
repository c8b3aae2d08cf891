"""Saves per second of the annotation store at 100, 10k and 100k images: rewrite vs journal vs the default.

    .venv/bin/python benchmarks/annotations.py                  # 100, 10k, 100k images, in the temp folder
    .venv/bin/python benchmarks/annotations.py --sizes 100 10000 --dir /some/disk

Each save is a real one: lock, check the disk for other writers' saves, apply, write, fsync. Three ways
are timed in interleaved rounds (benchmarks/timing.py), on files prefilled with N accepted images:
- rewrite: `journal_above=None`, the whole JSON file rewritten (temp file, fsync, rename) on every save, as
  before issue 28;
- journal: `journal_above=0`, one fsynced JSONL line per save, folded into the JSON file now and then;
- default: `journal_above=JOURNAL_ABOVE` (the file is rewritten while small, journalled once large).
"journal, with folds" adds the cost of folding the journal into the file (timed with flush()) spread over
the saves between two folds (the journal is folded when it passes max(COMPACT_MIN, file size / COMPACT_RATIO)).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from timing import timed_rounds  # noqa: E402

from mmkit.annotations import JOURNAL_ABOVE, AnnotationStore  # noqa: E402
from mmkit.annotations.store import COMPACT_MIN, COMPACT_RATIO, _empty, _encode_file  # noqa: E402


def prefill(path: Path, n: int) -> None:
    """A caption file of n accepted images, shaped like the panel's (size, tags, suggestion, model)."""
    data = _empty()
    data["images"] = [{"id": i + 1, "file_name": f"photos/img{i:06d}.png", "width": 640, "height": 480}
                      for i in range(n)]
    data["annotations"] = [{"id": i + 1, "image_id": i + 1, "caption": f"a small red circle above a blue square {i}",
                            "tags": ["red", "circle"], "suggested_caption": "a red circle", "model": "shapes-blip"}
                           for i in range(n)]
    data["mmkit_journal_seq"] = 0
    path.write_bytes(_encode_file(data))


def saver(store: AnnotationStore, n: int, saves: int):
    """A function that makes `saves` saves (re-captioning existing images, so the file keeps its size)."""
    state = {"k": 0}

    def run():
        for _ in range(saves):
            k = state["k"] = state["k"] + 1
            store.accept(f"photos/img{(k * 7919) % n:06d}.png", f"an edited caption {k}", tags=["red", "circle"],
                         width=640, height=480, suggested_caption="a red circle", model="shapes-blip")
    return run


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 10_000, 100_000])
    ap.add_argument("--dir", default=None, help="folder for the files (default: the system's temp folder)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--min-round", type=float, default=1.0, help="seconds of saves per mode and round, at least")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = ap.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="mmkit-bench-annotations-", dir=args.dir))
    rows = []
    try:
        print(f"files in {root}; JOURNAL_ABOVE={JOURNAL_ABOVE} bytes; {args.repeats} interleaved rounds")
        print("| images | file MB | open s | rewrite saves/s | journal saves/s | journal, with folds | "
              "default saves/s | fold s |")
        print("|---|---|---|---|---|---|---|---|")
        for n in args.sizes:
            fns, stores = {}, {}
            for mode, above in (("rewrite", None), ("journal", 0), ("default", JOURNAL_ABOVE)):
                path = root / f"{mode}-{n}" / "captions.json"
                path.parent.mkdir()
                prefill(path, n)
                t0 = time.perf_counter()
                stores[mode] = AnnotationStore(path, backup=False, journal_above=above)
                opened = time.perf_counter() - t0
                fns[mode] = saver(stores[mode], n, saves=1)
            size = (root / f"rewrite-{n}" / "captions.json").stat().st_size
            times = timed_rounds(fns, repeats=args.repeats, min_round_s=args.min_round)
            rate = {m: 1.0 / sorted(t)[len(t) // 2] for m, t in times.items()}  # median of the rounds
            j = stores["journal"]
            line = j.journal_path.stat().st_size / max(1, sum(1 for _ in open(j.journal_path, "rb")))
            t0 = time.perf_counter()
            j.flush()
            fold = time.perf_counter() - t0
            between = max(COMPACT_MIN, size / COMPACT_RATIO) / line  # saves between two folds
            folded = 1.0 / (1.0 / rate["journal"] + fold / between)
            rows.append({"images": n, "file_bytes": size, "open_s": opened, "saves_per_s": rate,
                         "journal_with_folds_per_s": folded, "fold_s": fold, "saves_between_folds": between})
            print(f"| {n} | {size / 1e6:.2f} | {opened:.2f} | {rate['rewrite']:.1f} | {rate['journal']:.1f} | "
                  f"{folded:.1f} | {rate['default']:.1f} | {fold:.2f} |", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "journal_above": JOURNAL_ABOVE,
                                               "repeats": args.repeats, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
