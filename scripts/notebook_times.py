"""Per-notebook (and per test file) times from a timed pytest run, as the markdown table docs/COURSE.md shows.

Reads JUnit XML files (`make test` writes build/test-times/tests.xml and notebooks.xml) or the text output of
`pytest --durations=0` (lines such as `0.93s call  notebooks/00_start_here.ipynb::Cell 0`). A notebook's time
is the sum of its cells' times (nbval runs one test per cell; the kernel's start is in the first cell).

    python scripts/notebook_times.py build/test-times/notebooks.xml             # print the table
    python scripts/notebook_times.py build/test-times/*.xml --files             # and the test files' times
    python scripts/notebook_times.py build/test-times/notebooks.xml --course docs/COURSE.md
        # write the measured seconds into the quick column of the course guide's table
"""
from __future__ import annotations

import argparse
import re
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

DURATION = re.compile(r"^\s*([\d.]+)s\s+(?:call|setup|teardown)\s+(\S+?)::")


def read_times(paths: list[Path]) -> dict[str, float]:
    """{test file or notebook path: seconds}, summed over its test cases, from JUnit XML or --durations text."""
    times: dict[str, float] = defaultdict(float)
    for path in paths:
        text = path.read_text(errors="replace")
        if text.lstrip().startswith("<"):
            for case in ET.fromstring(text).iter("testcase"):
                times[_file_of(case.get("classname", ""), case.get("file"))] += float(case.get("time") or 0)
        else:
            for line in text.splitlines():
                m = DURATION.match(line)
                if m:
                    times[m.group(2)] += float(m.group(1))
    return dict(times)


def _file_of(classname: str, file: str | None) -> str:
    """JUnit's classname `notebooks.00_start_here.ipynb` or `tests.test_x.TestY` -> the file's path."""
    if file:
        return file
    if ".ipynb" in classname:
        return classname[: classname.index(".ipynb")].replace(".", "/", classname.count(".") - 1) + ".ipynb"
    parts = classname.split(".")
    keep = next((i for i, p in enumerate(parts) if p.startswith("test_")), len(parts) - 1)
    return "/".join(parts[: keep + 1]) + ".py"


def notebook_rows(times: dict[str, float]) -> list[tuple[str, float]]:
    """(notebook file name, seconds), in notebook order."""
    return sorted((Path(k).name, v) for k, v in times.items() if k.endswith(".ipynb"))


def table(rows: list[tuple[str, float]], what: str) -> str:
    lines = [f"| {what} | seconds |", "|---|---|"] + [f"| {n} | {s:.0f} |" for n, s in rows]
    return "\n".join(lines + [f"| total | {sum(s for _, s in rows):.0f} |"])


def update_course(course: Path, rows: list[tuple[str, float]], label: str) -> int:
    """Write each measured notebook's seconds into the quick column of the course guide's per-notebook table
    (the table whose header names a "quick" column; its rows start with `| NN `). A measured notebook without a
    row gets one, in number order, with "not measured" in the other columns. Returns how many rows changed."""
    seconds = {n[:2]: (n, s) for n, s in rows}
    lines = course.read_text().splitlines(keepends=True)
    head = next((i for i, line in enumerate(lines) if line.startswith("|") and "quick" in line.lower()), None)
    if head is None:
        return 0
    end = head + 1
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    width = lines[head].count("|") - 1  # columns
    table, seen, changed = [], set(), 0
    for line in lines[head + 2:end]:
        m = re.match(r"^\| (\d\d) [^|]*\|", line)
        if m and m.group(1) in seconds:
            cells = line.split("|")
            cells[2] = f" {seconds[m.group(1)][1]:.0f} ({label}) "
            line = "|".join(cells)
            seen.add(m.group(1))
            changed += 1
        table.append((m.group(1) if m else "", line))
    for num, (name, secs) in seconds.items():
        if num not in seen:
            title = Path(name).stem.replace("_", " ")
            cells = [title, f"{secs:.0f} ({label})"] + ["not measured"] * (width - 2)
            table.append((num, "| " + " | ".join(cells) + " |\n"))
            changed += 1
    table.sort(key=lambda t: t[0])  # stable: unnumbered rows keep their order, first
    course.write_text("".join(lines[:head + 2] + [line for _, line in table] + lines[end:]))
    return changed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path, help="JUnit XML files or pytest --durations output")
    ap.add_argument("--files", action="store_true", help="also print the test files' times, slowest first")
    ap.add_argument("--course", type=Path, help="a course guide whose per-notebook table gets the measured times")
    ap.add_argument("--label", default="make test", help="what the run was, written beside each time")
    args = ap.parse_args(argv)
    missing = [str(p) for p in args.runs if not p.is_file()]
    if missing:
        print(f"no such file: {', '.join(missing)}; run `make test` first (it writes build/test-times/)", file=sys.stderr)
        return 2
    times = read_times(args.runs)
    rows = notebook_rows(times)
    if rows:
        print(table(rows, "notebook"))
    if args.files:
        files = sorted(((k, v) for k, v in times.items() if not k.endswith(".ipynb")), key=lambda kv: -kv[1])
        print("\n" + table(files, "test file"))
    if args.course:
        if not rows:
            print("no notebook times in the run; the course guide is unchanged", file=sys.stderr)
            return 1
        print(f"\n{args.course}: {update_course(args.course, rows, args.label)} notebook rows updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
