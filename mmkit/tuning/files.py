"""Finding the file a row's image value means: the value as written, else the one existing file it plainly means
(spaces around it cut, Windows '\\' separators read as '/', a name in another Unicode normalisation), and for a
file that is missing, its likely cause (a name that differs only in case)."""
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
        """'; did you mean ...' for a missing file whose name differs from an existing one's only in case, else ''."""
        v = value.strip().replace("\\", "/")
        found = v and self._walk(v, lambda n: _nfc(n).casefold())
        return f"; did you mean {found!r}? (file names differ in case: write the name as on disk)" if found else ""
