"""Errors that mmkit raises on purpose, with a message that names the fix."""
from __future__ import annotations


class InputError(ValueError):
    """Bad user input: the message names the input, what is wrong, and how to fix it."""


def describe(x: object, limit: int = 60) -> str:
    """A short human description of an input, for error messages."""
    import os

    if isinstance(x, (str, os.PathLike)):
        s = os.fspath(x)
        return repr(s if len(s) <= limit else "..." + s[-(limit - 3):])  # keep the file name
    if isinstance(x, (bytes, bytearray, memoryview)):
        return f"bytes input ({len(x)} bytes)"
    shape = getattr(x, "shape", None)
    dtype = getattr(x, "dtype", None)
    if shape is not None:
        return f"{type(x).__name__} of shape {tuple(shape)} and dtype {dtype}"
    size = getattr(x, "size", None)
    mode = getattr(x, "mode", None)
    if mode is not None and size is not None:
        return f"PIL image ({mode}, {size[0]}x{size[1]})"
    return f"{type(x).__name__} object"


class OutOfDomainWarning(UserWarning):
    """A bundled (ShapesWorld) model was given a picture or words unlike anything it was trained on; the result still
    comes back."""


class ResourceError(RuntimeError):
    """The machine ran out of a resource (GPU memory) even after retrying; the message names the fixes."""


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """warnings.warn, attributed to the first caller outside mmkit (the notebook cell or script line).

    A fixed stacklevel cannot do this: the same helper is reached through batching code at different depths.
    """
    import os
    import sys
    import warnings

    from .notices import record

    if record(message, category):  # a panel or the CLI is collecting out-of-domain notices: it shows them
        return
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level + 1)
