"""Shared panel machinery: errors shown inside the panel, a status line, background work with a Stop button.

Every panel is a `Panel` (a VBox). Long work goes through `Panel.run(work, done)`: in a background
thread (the notebook stays responsive; Stop discards the result and asks the work to end early) or,
with `background=False`, in the calling thread, which is what tests use. Anything a model or a user
wrote is HTML-escaped with `esc` before it goes into an HTML widget. Out-of-domain notices
(`mmkit.OutOfDomainWarning`, e.g. a bundled ShapesWorld model given a photo) raised by the work are
collected for that run alone and shown in `notice`, next to the result; the next run clears them.
"""
from __future__ import annotations

import html
import io
import threading
import traceback

import ipywidgets as w

from mmkit.errors import InputError
from mmkit.notices import capture_notices

IPYWIDGETS_MAJOR = int(w.__version__.split(".")[0])  # 7 (Colab pins 7.7.1) or 8


def esc(text) -> str:
    """HTML-escape any text (model output, file names, user input) for an HTML widget."""
    return html.escape(str(text), quote=True)


def error_text(e: BaseException) -> str:
    """A readable one-paragraph message: InputError as is, anything else prefixed with its type."""
    msg = str(e).strip() or "no details"
    return msg if isinstance(e, InputError) else f"{type(e).__name__}: {msg}"


def typed(text: str) -> str:
    """A name or path as typed in a box: spaces around it and one pair of quotes around it dropped
    (Windows' "Copy as path" adds double quotes; a name copied from code, 'blip-caption', has single ones)."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1].strip()
    return text


def upload_error(e: BaseException, content: bytes, file_name: str) -> str:
    """An error about uploaded bytes, naming the file.

    "bytes input (N bytes) is not ..." becomes "'photo.heic' is not ..."; other errors are left as they are.
    """
    from mmkit.errors import describe

    text, subject = error_text(e), describe(content)
    return repr(file_name) + text[len(subject):] if text.startswith(subject) else text


MB = 1_000_000  # bytes in the MB an upload limit is given in (what file managers and phones show), not 2**20


def over_limit(size: int, limit_mb: float) -> str | None:
    """The size of a file over an upload limit of `limit_mb` MB, for its message ('27.0 MB', or '20,000,001 bytes'
    where one decimal would show the limit itself); None when it is within the limit."""
    if size <= limit_mb * MB:
        return None
    shown = f"{size / MB:.1f}"
    return f"{shown} MB" if float(shown) > limit_mb else f"{size:,} bytes"


def error_html(e: BaseException | str) -> str:
    """An error as escaped red text (never a traceback)."""
    text = e if isinstance(e, str) else error_text(e)
    return f"<div style='color:#b00020;white-space:pre-wrap'><b>Error:</b> {esc(text)}</div>"


def notice_html(notices: list[str]) -> str:
    """Out-of-domain notices as escaped amber lines ("" when there are none)."""
    return "".join(f"<div style='color:#7a4f00;background:#fff4d6;padding:2px 6px;margin:2px 0;"
                   f"white-space:pre-wrap'><b>Note:</b> {esc(n)}</div>" for n in notices)


REPAINTED = ("The bundled model was given {it} with its one-colour background repainted in the plain grey of "
             "ShapesWorld, the look it knows best")  # padding_note's and repaint_html's


def repaint_html(m, image) -> str:
    """A grey line saying a bundled model was given the picture with its one-colour background repainted, as the
    task functions give it (mmkit.domain.fit_picture_at, then mmkit.domain.repainted); "" when it was given the
    picture's own background (other models and backgrounds, or mmkit.domain.REPAINT off)."""
    from mmkit.domain import fit_picture_at, repainted

    try:
        done = repainted(m, fit_picture_at(m, image, repaint=False)[0])[1]
    except Exception:  # the note is an aside: never an error of its own
        return ""
    return f"<div style='color:#666'>{esc(REPAINTED.format(it='this picture'))}.</div>" if done else ""


def padding_note(maps) -> str:
    """A line saying the maps' picture is the one given, padded or cropped (OnPicture.framing: cropped by mmkit
    around the shapes, or by the model's processor to its middle square), and that the
    bundled model saw its background repainted (AttentionMaps.repainted); "" when the model saw it as given."""
    plain = (REPAINTED.format(it="it") + "; the map is drawn on the picture as it was given."
             if getattr(maps, "repainted", False) else "")
    how = maps.framing() if hasattr(maps, "framing") else ""
    if not how:  # no maps, or maps on the picture as given
        return plain
    w, h = maps.image.size
    if how == "processor":  # the model's own image processor cut it (mmkit.attention)
        framed = (f"The model's image processor keeps the middle {w} x {h} of this picture (it crops to its square), "
                  "as it is shown here; the map covers that part.")
    elif how == "crop":
        framed = (f"The model was given the {w} x {h} part of this picture around its shapes (the rest is only "
                  "background), as it is shown here; the map covers that part.")
    else:
        framed = (f"The model was given this picture padded to {w} x {h} (the bands at its edges), as it is shown "
                  "here; the map covers the bands too.")
    return f"{framed} {plain}".strip()


def stale_html(shown: str, again: str) -> str:
    """A result shown for the previous picture: a line saying so (and, when `again` is a button's label, to press
    it for the new one), then the result greyed."""
    line = (f"for the previous picture: press {esc(again)} for this one" if again
            else "for the previous picture: no picture is chosen now")
    return f"<div style='color:#8a5a00'>{line}</div><div style='opacity:0.45'>{shown}</div>"


LABEL_STYLE = {"description_width": "initial"}  # a description as wide as its text: never cut to "sample p..."


def control_layout(width: str = "340px") -> w.Layout:
    """A control's layout: `width` on wide screens, never wider than its container (a 390 px phone)."""
    return w.Layout(width=width, max_width="100%")


def wrap_row(children, **layout) -> w.HBox:
    """A row of widgets that wraps onto the next line when the screen is too narrow (flex-wrap)."""
    return w.HBox(list(children), layout=w.Layout(flex_flow="row wrap", align_items="flex-start",
                                                  max_width="100%", **layout))


def model_notice_html(spec) -> str:
    """One short line naming the model (e.g. "bundled model (offline): shapes-blip-caption"); why it was
    chosen (the family name's full reason) is behind a toggle (an HTML <details>, clicked open)."""
    short = {"bundled": f"bundled model (offline): {spec.name}", "pretrained": f"pretrained model: {spec.name}",
             "path": f"local model: {spec.name}"}.get(spec.source, f"model: {spec.name}")
    details = spec.chosen_by or f"{spec.name} ({spec.source})"
    return (f"<details style='color:#666;max-width:100%'><summary style='cursor:pointer'>{esc(short)}</summary>"
            f"<div style='white-space:normal;overflow-wrap:anywhere'>{esc(details)}</div></details>")


def _contains(widget, target) -> bool:
    """Whether `target` is `widget` or inside it (through .children)."""
    return widget is target or any(_contains(c, target) for c in getattr(widget, "children", ()))


def png(x, dpi: int = 80) -> bytes:
    """PNG bytes of a matplotlib Figure (closed afterwards) or a PIL image, for a `w.Image`."""
    if hasattr(x, "savefig"):
        from mmkit.viz import figure_png

        data = figure_png(x, dpi=dpi)
        if getattr(x.canvas, "manager", None) is not None:  # a pyplot figure: free it
            import matplotlib.pyplot as plt

            plt.close(x)
        return data
    buf = io.BytesIO()
    x.save(buf, format="PNG")
    return buf.getvalue()


def preview_png(image, side: int = 256) -> bytes:
    """PNG of an image scaled so its longer side is `side` pixels (small images are enlarged, pixelated)."""
    from PIL import Image

    w_, h_ = image.size
    scale = side / max(w_, h_)
    size = (max(1, round(w_ * scale)), max(1, round(h_ * scale)))
    resample = Image.NEAREST if scale > 1 else Image.BILINEAR  # keep ShapesWorld's 64 px crisp
    return png(image.resize(size, resample))


class Cancelled(Exception):
    """Raised inside work when the user pressed Stop."""


class Job:
    """Handle given to background work: report progress, and check whether Stop was pressed."""

    def __init__(self, panel: "Panel"):
        self.panel = panel
        self.stop_event = threading.Event()

    @property
    def cancelled(self) -> bool:
        return self.stop_event.is_set()

    def check(self) -> None:
        """Raise Cancelled when Stop was pressed (call it between steps)."""
        if self.cancelled:
            raise Cancelled()

    def progress(self, done: int, total: int, text: str = "") -> None:
        """Show `done / total` on the panel's progress bar, with a status text."""
        self.check()
        bar = self.panel.progress
        bar.max = max(1, int(total))
        bar.value = min(int(done), bar.max)
        if text:
            self.panel.status.value = esc(text)


class ModelChoice:
    """A model given as a `Loaded` or a name, loaded on first use; the name is editable in `self.name`."""

    def __init__(self, model, description: str = "model"):
        from mmkit.models import Loaded

        self.loaded = model if isinstance(model, Loaded) else None
        value = model.spec.name if self.loaded is not None else str(model)
        self.name = w.Text(value=value, description=description, layout=control_layout("320px"))
        self.info = w.HTML("", layout=w.Layout(max_width="100%"))  # which model answered; why, behind a toggle
        self.box = w.VBox([self.name, self.info], layout=w.Layout(max_width="100%"))

    def get(self, task: str, attention: bool = False):
        """The Loaded model for a task, or InputError naming a model that can do it."""
        from mmkit.models import require

        name = typed(self.name.value)
        if self.loaded is not None and name == self.loaded.spec.name:
            m = self.loaded
        else:
            if not name:
                raise InputError("the model name is empty; type a name from mmkit.list_models(), e.g. 'blip-caption'")
            m = _load_quietly(name, attention)
        spec = m.spec
        self.info.value = model_notice_html(spec)
        require(m, task)
        return m


def _load_quietly(name: str, attention: bool):
    """load_model without transformers' "Loading weights" bar, which would land in whatever cell runs now."""
    import mmkit
    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return mmkit.load_model(name, attention=attention)
    finally:
        if was_on:
            hf_logging.enable_progress_bar()


class Panel(w.VBox):
    """Base of every panel: a status line with a progress bar and a Stop button, an error box, and `run`.

    Args:
        children: the panel's own widgets (the notice line, status row and error box are appended below
            them; a subclass may place `self.notice`, made before calling this, next to its result instead).
        background: run work in a thread (True, for people) or in the calling thread (False, for tests).
    """

    def __init__(self, children, background: bool = True, **kwargs):
        self.background = background
        children = list(children)
        if not hasattr(self, "notice"):
            self.notice = w.HTML("")  # out-of-domain notices of the last run, escaped; empty when none
        self.notices: list[str] = []  # their messages
        placed = any(_contains(c, self.notice) for c in children)
        self.status = w.HTML("")
        self.progress = w.IntProgress(value=0, min=0, max=1, layout=w.Layout(width="160px", visibility="hidden"))
        self.stop_button = w.Button(description="Stop", icon="stop", button_style="warning", disabled=True,
                                    layout=w.Layout(width="80px"))
        self.error = w.HTML("")  # the last error as readable text; empty when the last run succeeded
        self.last_traceback = ""  # full traceback of the last unexpected error, for bug reports (not shown)
        self.job: Job | None = None
        self.thread: threading.Thread | None = None
        self._pictures = 0  # counts the pictures a followed picker has shown (see follow_picker)
        self._follow: tuple = ()  # (result widgets, button label) marked stale on a new picture
        self._fresh = False  # a run's result is shown and not yet marked stale
        self._busy_buttons: list[w.Button] = []  # disabled while work runs
        self.stop_button.on_click(lambda _: self.stop())
        super().__init__(children + ([] if placed else [self.notice])
                         + [wrap_row([self.progress, self.stop_button, self.status]), self.error], **kwargs)

    @property
    def busy(self) -> bool:
        return (self.thread is not None and self.thread.is_alive() and self.job is not None
                and not self.job.cancelled)

    def show_error(self, e: BaseException | str) -> None:
        """Put a readable error in the panel (a traceback is kept in last_traceback, not shown)."""
        self.error.value = error_html(e)
        self.status.value = ""

    def clear_error(self) -> None:
        self.error.value = ""

    def show_notices(self, notices: list[str]) -> None:
        """Show out-of-domain notices next to the result (an empty list clears them)."""
        self.notices = list(notices)
        self.notice.value = notice_html(self.notices)

    def follow_picker(self, picker, outputs, again: str) -> None:
        """When `picker` shows a new picture, mark the result in `outputs` (HTML widgets; the notice line too)
        as the previous picture's, greyed, until `again` (the button's label) is pressed. A result that comes back
        after the picture changed is marked so too."""
        self._follow = (list(outputs) + [self.notice], again)
        picker.on_change(self._new_picture)

    def _new_picture(self, picker=None) -> None:
        self._pictures += 1
        self.mark_stale(picker is None or picker.image is not None)

    def mark_stale(self, chosen: bool = True) -> None:
        """Grey the shown result and say it is the previous picture's (once; the next run replaces it); chosen:
        whether a new picture is shown (False: the last choice failed and none is)."""
        outputs, again = self._follow or ((), "")
        again = again if chosen else ""
        if not self._fresh:
            return
        self._fresh = False
        for o in outputs:
            if o.value:
                o.value = (stale_html(o.value, again) if o is not self.notice
                           else f"<div style='opacity:0.45'>{o.value}</div>")

    def run(self, work, done=None, label: str = "working...") -> None:
        """Run `work(job)`, then `done(result)`; errors and Stop are shown in the panel.

        Args:
            work: function of a Job returning a result; long loops call job.check() / job.progress().
            done: function of the result that updates the output widgets.
            label: status text while the work runs.
        """
        if self.busy:
            self.status.value = "Still working on the previous request; wait or press Stop."
            return
        self.clear_error()
        self.show_notices([])
        self.job = job = Job(self)
        self.status.value = esc(label)
        self.progress.value, self.progress.max = 0, 1
        self.progress.layout.visibility = "visible"
        self._set_busy(True)
        if self.background:
            self.thread = threading.Thread(target=self._execute, args=(job, work, done), daemon=True)
            self.thread.start()
        else:
            self._execute(job, work, done)

    def _execute(self, job: Job, work, done) -> None:
        notices: list[str] = []
        picture = self._pictures
        try:
            with capture_notices() as notices:  # this run's own: other panels' threads keep theirs
                result = work(job)
            job.check()
            if done is not None:
                done(result)
                self._fresh = True
            self.status.value = ""
        except Cancelled:
            self.status.value = "Stopped."
        except KeyboardInterrupt:  # the kernel was interrupted mid-run: the panel stays usable
            self.status.value = "Interrupted; ready for the next input."
            if not self.background:
                raise
        except Exception as e:  # shown in the panel, never dumped into the notebook
            if job.cancelled:
                self.status.value = "Stopped."
            else:
                if not isinstance(e, InputError):
                    self.last_traceback = traceback.format_exc()
                self.on_error(e)
        finally:
            if self.job is job and not job.cancelled and notices:  # shown with the result (or the error)
                self.show_notices(notices)
            if self.job is job and self._pictures != picture:  # the picture changed while this one was worked on
                self.mark_stale()
            if self.job is job:
                self._set_busy(False)
                self.progress.layout.visibility = "hidden"

    def on_error(self, e: BaseException) -> None:
        """How errors of `run` are shown; a subclass may show them elsewhere (e.g. a dialog)."""
        self.show_error(e)

    def stop(self) -> None:
        """Ask the running work to stop; its result is discarded and the panel is usable at once."""
        if self.job is not None and self.busy:
            self.job.stop_event.set()
            self.status.value = "Stopped."
            self._set_busy(False)
            self.progress.layout.visibility = "hidden"

    def wait(self, timeout: float | None = 120) -> None:
        """Block until background work ends (for scripts and notebook checks)."""
        if self.thread is not None:
            self.thread.join(timeout)

    def _set_busy(self, busy: bool) -> None:
        self.stop_button.disabled = not busy
        for b in self._busy_buttons:
            b.disabled = busy


def stop_criteria(job: Job):
    """A transformers StoppingCriteriaList that ends `generate` when Stop is pressed."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class _Stop(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return torch.full((input_ids.shape[0],), job.cancelled, dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([_Stop()])
