"""Finding the file a row's image value means: the value as written, else the one existing file it plainly means
(spaces around it cut, Windows '\\' separators read as '/', a name in another Unicode normalisation), and for a
file that is missing, its likely cause (a name that differs only in case, lacks its extension, or lies in a
sub-folder)."""
from __future__ import annotations

import os
import unicodedata
from pathlib import Path

from ..data.image_files import is_url


def _nfc(name: str) -> str:
    """A file name in Unicode NFC: a Mac writes 'café' decomposed (NFD), most editors composed (NFC)."""
    return unicodedata.normalize("NFC", name)


class Finder:
    """Finds the file an image value means under a folder, or the likely cause of its absence."""

    def __init__(self, base: Path | None):
        self.root = base if base is not None else Path(".")
        self.listings: dict = {}  # folder -> its entries' names, read once
        self.below: list[Path] | None = None  # the files under the folder, listed when a hint needs them

    def _names(self, folder: Path) -> list[str]:
        """The names in a folder ([] when it cannot be listed), listed once."""
        if folder not in self.listings:
            try:
                self.listings[folder] = sorted(os.listdir(folder))
            except OSError:
                self.listings[folder] = []
        return self.listings[folder]

    def _walk(self, value: str, same) -> str | None:
        """value with each part that is not there replaced by the one entry there that `same` says is the same
        name (same(a) == same(b)); None when some part has no such entry."""
        cur, parts = self.root, []
        for part in Path(value).parts:
            if not os.path.lexists(cur / part):
                like = [n for n in self._names(cur) if same(n) == same(part)]
                if len(like) != 1:
                    return None
                part = like[0]
            cur, parts = cur / part, parts + [part]
        return str(Path(*parts)) if parts else None

    def locate(self, value: str) -> str:
        """The path to read: value when it exists, else the existing file it plainly means (spaces around it cut,
        Windows '\\' separators as '/', another Unicode normalisation of a name); value when none exists."""
        if is_url(value) or os.path.lexists(self.root / value):
            return value
        for v in dict.fromkeys((value.strip(), value.strip().replace("\\", "/"))):
            if v and os.path.lexists(self.root / v):
                return v
            found = v and self._walk(v, _nfc)
            if found:
                return found
        return value

    def hint(self, value: str) -> str:
        """'; did you mean ...' for a missing file whose name differs from an existing one's only in case, that
        lacks its extension, or that lies in one sub-folder of the folder; else ''."""
        v = value.strip().replace("\\", "/")
        if not v:
            return ""
        found = self._walk(v, lambda n: _nfc(n).casefold())
        if found:
            return f"; did you mean {found!r}? (file names differ in case: write the name as on disk)"
        where, name = Path(v).parent, Path(v).name
        if not Path(name).suffix:
            same = [n for n in self._names(self.root / where) if Path(n).stem == name and Path(n).suffix]
            if len(same) == 1:
                return f"; did you mean {str(where / same[0])!r}? (write the file's extension too)"
        deeper = [p for p in self._files_below() if p.name == name and p.parent != where]
        if len(deeper) == 1:
            folder = str(self.root) if str(self.root) not in ("", ".") else "the current folder"
            return (f"; did you mean {str(deeper[0])!r}? (image paths are relative to {folder!r}: write the "
                    "sub-folder too)")
        return ""

    def _files_below(self, limit: int = 20000) -> list[Path]:
        """The files under the folder, relative to it (the first `limit`, hidden ones left out), listed once."""
        if self.below is None:
            self.below = []
            for top, dirs, files in os.walk(self.root):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                rel = Path(os.path.relpath(top, self.root))
                self.below += [rel / f for f in sorted(files) if not f.startswith(".")]
                if len(self.below) >= limit:
                    break
        return self.below
