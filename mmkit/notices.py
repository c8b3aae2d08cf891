"""Notices for people: collect `OutOfDomainWarning`s while a panel or the CLI runs, to show them next to the result.

`warnings.catch_warnings` swaps process-wide state, so two panels working in background threads (or a
panel and the notebook) would steal each other's warnings. `capture_notices()` keeps its list in a
context variable instead: each thread (each panel's work) sees only its own. `mmkit.errors.warn` hands
an out-of-domain warning to the innermost active capture; with none active it is a normal warning.

    with capture_notices() as notices:
        text = mmkit.caption(m, photo)
    notices  # ["shapes-blip-caption only knows ShapesWorld pictures ..."], each message once
"""
from __future__ import annotations

import contextlib
import contextvars
from typing import Iterator

_active: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("mmkit_notices", default=None)


@contextlib.contextmanager
def capture_notices() -> Iterator[list[str]]:
    """Collect the messages of out-of-domain warnings raised in this thread (each distinct message once).

    While the capture is active those warnings are not shown as warnings: whoever captured them shows them.
    """
    notices: list[str] = []
    token = _active.set(notices)
    try:
        yield notices
    finally:
        _active.reset(token)


def record(message: str, category: type[Warning]) -> bool:
    """Add an out-of-domain message to the active capture; False (nothing done) when it is another warning
    or nothing is capturing."""
    from .errors import OutOfDomainWarning

    notices = _active.get()
    if notices is None or not (isinstance(category, type) and issubclass(category, OutOfDomainWarning)):
        return False
    message = str(message)
    if message not in notices:
        notices.append(message)
    return True


def capturing() -> bool:
    """Whether a capture is active in this thread."""
    return _active.get() is not None
