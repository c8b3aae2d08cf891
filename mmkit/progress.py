"""mmkit's progress bars: live in Jupyter, finished (or gone) in a saved notebook, off under TQDM_DISABLE.

Every training loop in mmkit makes its bar with `bar(...)`, which is tqdm.auto's bar with three changes:

- `TQDM_DISABLE=1` (or true/yes/on) hides it. tqdm reads TQDM_* variables only for the arguments a caller leaves
  out, and its notebook bar always sets `disable` itself, so a bar made with `disable=not progress` (or any
  notebook bar) ignored the variable.
- In Jupyter the bar is tqdm's widget, shown with a display id, and when it closes its output is replaced: by the
  finished bar (the widget's final state, and the final text as the text/plain fallback), or, for a bar made with
  leave=False, by nothing. A widget output's text/plain is the text the bar had when it was first shown
  ("0%| | 0/50"): a notebook executed and saved (nbclient / nbconvert --execute, the book, GitHub's viewer) kept
  that frozen 0% bar, as no widget state or a closed widget left only the text to show.
- Outside Jupyter it is tqdm's ordinary text bar (on stderr), as before.

`transformers_bars()` routes transformers' own bars (save_pretrained's "Writing model shards") through `bar`.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_OFF = ("", "0", "false", "no", "off")


def disabled_by_env() -> bool:
    """True when TQDM_DISABLE asks for no bars (set and not 0/false/no/off)."""
    value = os.environ.get("TQDM_DISABLE")
    return value is not None and value.strip().lower() not in _OFF


def bar(iterable=None, *args, disable: bool = False, **kwargs):
    """A tqdm bar (tqdm.auto: a widget in Jupyter, text elsewhere) that honours TQDM_DISABLE and leaves a saved
    notebook its final state. Arguments as tqdm's (desc=, total=, leave=, ...); use it as a tqdm (iterate over
    it, or update() and close())."""
    from tqdm.auto import tqdm as auto

    if disable or disabled_by_env():  # the plain class: a notebook bar would still build its widget
        from tqdm.std import tqdm as plain

        return plain(iterable, *args, disable=True, **kwargs)
    notebook = sys.modules.get("tqdm.notebook")  # imported by tqdm.auto when it runs in Jupyter
    cls = _notebook_bar(auto) if notebook is not None and issubclass(auto, notebook.tqdm) else auto
    return cls(iterable, *args, disable=False, **kwargs)  # explicit: tqdm's default is TQDM_DISABLE as at its import


_NOTEBOOK_BAR = None


def _notebook_bar(notebook_tqdm):
    """tqdm.auto's notebook bar, displayed with a display id and replaced by its final state when it closes
    (defined on first use: tqdm.notebook imports ipywidgets)."""
    global _NOTEBOOK_BAR
    if _NOTEBOOK_BAR is not None and issubclass(_NOTEBOOK_BAR, notebook_tqdm):
        return _NOTEBOOK_BAR
    from IPython.display import display

    class SavedBar(notebook_tqdm):
        """The widget bar, shown through a display id (a raw bundle: ipywidgets 7 would drop the id)."""

        def __init__(self, *args, **kwargs):
            self._handle = None
            show = kwargs.pop("display", True)
            super().__init__(*args, display=False, **kwargs)
            if self.disable or not show or self.delay > 0:  # delay=: shown by display() once it has passed
                return
            self._handle = display(self._bundle(), raw=True, display_id=True)
            self.displayed = True

        def _bundle(self) -> dict:
            return {"text/plain": self.container.__repr__(pretty=True),  # the bar as text, as IPython shows it
                    WIDGET_VIEW: {"model_id": self.container.model_id, "version_major": 2, "version_minor": 0}}

        def display(self, *args, check_delay=True, **kwargs):
            if check_delay and self.delay > 0 and not self.displayed and self._handle is None:  # delay= reached
                self._handle = display(self._bundle(), raw=True, display_id=True)
                self.displayed = True
            return super().display(*args, check_delay=False, **kwargs)

        def close(self):
            if self.disable:  # closed already (or never shown)
                return
            stopped = bool(self.total) and self.n < self.total
            keep = stopped or self.leave or (self.leave is None and getattr(self, "pos", 0) == 0)
            super().close()  # the widget: its final style, or closed (leave=False)
            if self._handle is not None:
                # the finished (or stopped) bar, or nothing: never the text it had when it was first shown
                self._handle.update(self._bundle() if keep else {}, raw=True)

    _NOTEBOOK_BAR = SavedBar
    return SavedBar


@contextmanager
def transformers_bars():
    """While inside, transformers' progress bars (save_pretrained's "Writing model shards", ...) are made by
    `bar`: TQDM_DISABLE hides them and a saved notebook keeps their final state. A transformers without
    `logging.set_tqdm_hook` shows none of its bars while inside."""
    from transformers.utils import logging as hf_logging

    set_hook = getattr(hf_logging, "set_tqdm_hook", None)
    if set_hook is None:
        was_on = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            yield
        finally:
            if was_on:
                hf_logging.enable_progress_bar()
        return

    from tqdm.auto import tqdm as auto

    def hook(factory, args, kwargs):
        if factory is not auto:  # transformers' bars are off (its empty stand-in), or not tqdm.auto's
            return factory(*args, **kwargs)
        return bar(*args, **kwargs)

    previous = set_hook(hook)
    try:
        yield
    finally:
        set_hook(previous)
