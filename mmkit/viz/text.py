"""Text for matplotlib figures, shown as typed: model output, file names and user input are never mathtext.

matplotlib reads a string with two unescaped '$' as math: "$\\frac$" raises ParseSyntaxException when the
figure is drawn, and "cost $5 or $6" silently turns into italics. `plain` escapes every '$', which is all
mathtext needs (outside '$...$' backslashes, '_' and '^' are ordinary characters).
"""
from __future__ import annotations


def plain(text) -> str:
    """`text` (any object, via str) escaped so matplotlib draws it literally, never as mathtext."""
    return str(text).replace("$", r"\$")
