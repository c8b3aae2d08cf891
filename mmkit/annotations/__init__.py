"""Caption annotations in COCO format, saved crash-safely after every accepted item, by one writer or several.

`AnnotationStore(path)` opens (or creates) one COCO caption JSON file:
`{"info", "licenses", "images": [{id, file_name, width, height}], "annotations": [{id, image_id, caption,
tags, ...}]}` plus `"mmkit_skipped"` (the file names the annotator skipped) and `"mmkit_journal_seq"`.
Every `accept` / `skip` is saved before it returns, under a lock shared by every writer of the file
(threads, processes, panels): it re-reads what others saved, applies the change on top, writes, fsyncs.
A killed kernel leaves the old or the new state, never half of one. A file that does not parse, is not a
caption file, or breaks the limits (nesting, number size, NaN) raises `AnnotationFileError` naming the
place, and is never overwritten. File names that are not UTF-8 are stored surrogate-escaped (`\\udcff`)
and `name_bytes(name)` gives back the original bytes. Only the standard library is imported on POSIX
(the crash test starts hundreds of writer processes).

Files next to `captions.json`: `captions.json.lock` (the lock), `captions.json.bak` (the content found
before a session's first change), `captions.json.journal` (recent changes of a large file, see store.py).
"""
from .files import IMAGE_SUFFIXES, atomic_write, display_name, image_files, name_bytes
from .schema import MAX_DEPTH, MAX_INT, AnnotationFileError, validate
from .store import FORMAT_VERSION, JOURNAL_ABOVE, AnnotationStore

__all__ = ["AnnotationStore", "AnnotationFileError", "image_files", "atomic_write", "validate", "name_bytes",
           "display_name", "IMAGE_SUFFIXES", "FORMAT_VERSION", "JOURNAL_ABOVE", "MAX_DEPTH", "MAX_INT"]
