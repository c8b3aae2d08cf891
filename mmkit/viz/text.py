"""Text for matplotlib figures, shown as typed: model output, file names and user input are never mathtext.

matplotlib reads a string with two unescaped '$' as math: "$\\frac$" raises ParseSyntaxException when the
figure is drawn, and "cost $5 or $6" silently turns into italics. `plain` escapes every '$', which is all
mathtext needs (outside '$...$' backslashes, '_' and '^' are ordinary characters).
"""
from __future__ import annotations


def plain(text) -> str:
    """`text` (any object, via str) escaped so matplotlib draws it literally, never as mathtext."""
    return str(text).replace("$", r"\$")


def wrapped(text, inches: float, fontsize: float = 9) -> str:
    """`text` (escaped as `plain` does) broken into lines that fit `inches` of figure width at `fontsize` points."""
    import textwrap

    per_line = max(16, int(inches * 72 / (0.62 * fontsize)))  # a character is about 0.6 em wide on average
    return "\n".join(textwrap.wrap(plain(text), per_line, break_on_hyphens=False)) or plain(text)
