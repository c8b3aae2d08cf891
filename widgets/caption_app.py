"""CaptionApp: choose an image, caption it with decoding options, click a word to see its attention, export.

The desktop captioning app of the course material (choose an image, preview it, get a caption,
errors in a dialog) rebuilt with core ipywidgets, so it runs in Jupyter, Colab and Voila (`make app`).
In a classroom (`make classroom`) each student's kernel captions through one shared model process
(mmkit.classroom, found through $MMKIT_MODEL_SERVER), so the kernel never loads torch. Rows wrap: on a
phone the picker, the result, the attention words and the map read top to bottom.
"""
from __future__ import annotations

import base64
import csv
import io
import json

import ipywidgets as w

from .base import (ModelChoice, Panel, control_layout, error_html, error_text, esc, model_notice_html, padding_note, png,
                   wrap_row)
from .decoding import DecodingControls, caption_picked
from .panels import truth_html
from .picker import ImagePicker

HISTORY_SHOWN = 20  # rows of the history table shown (the export has all of them)
FIELDS = ("n", "image", "caption", "model", "decoding", "ground_truth")  # export columns


def _csv_cell(x) -> str:
    """A CSV cell that spreadsheets will not run as a formula."""
    s = str(x)
    return "'" + s if s[:1] in ("=", "+", "-", "@") else s


class CaptionApp(Panel):
    """The captioning app: image picker and preview, decoding options, caption, per-word attention, history.

    Args:
        model: a Loaded captioning model or a name (default "blip-caption": pretrained when the hub is
            reachable, else the bundled ShapesWorld model).
        background: run captioning in a thread with a Stop button (False: in the calling thread, for tests).
        server: URL of a classroom model server (mmkit.classroom); default $MMKIT_MODEL_SERVER; "" for none.
            With one, captions and maps come from that shared process and the model box is fixed.
    """

    def __init__(self, model="blip-caption", background: bool = True, server: str | None = None):
        from mmkit.classroom import remote_url

        self.server = (remote_url() if server is None else server.rstrip("/")) or None
        self.model = ModelChoice(model)
        if self.server:
            self.model.name.disabled = True
            self.model.name.tooltip = "the classroom's shared model server chooses the model"
        self.picker = ImagePicker()
        self.decoding = DecodingControls()
        self.button = w.Button(description="Caption", button_style="primary", icon="comment")
        self.caption_html = w.HTML("<i>choose an image and press Caption</i>")
        self.notice = w.HTML("")  # out-of-domain notices of the last caption, under it (see Panel)
        self.words = wrap_row([])  # one button per caption word
        self.method = w.Dropdown(options=["attention"], value="attention", description="map",
                                 layout=control_layout("220px"))
        self.attention = w.Image(format="png", layout=control_layout("300px"))
        self.attention_note = w.HTML("")
        self.history_html = w.HTML("")
        self.export_json_button = w.Button(description="Export JSON", icon="download")
        self.export_csv_button = w.Button(description="Export CSV", icon="download")
        self.clear_button = w.Button(description="Clear history", icon="trash")
        self.download = w.HTML("")  # download links made by the export buttons
        self.dialog_message = w.HTML("")
        self.dialog_ok = w.Button(description="OK", layout=w.Layout(width="80px"))
        self.button.layout = w.Layout(width="160px")
        self.dialog = w.VBox([w.HTML("<b style='color:#b00020'>Something went wrong</b>"), self.dialog_message,
                              self.dialog_ok],
                             layout=w.Layout(border="2px solid #b00020", padding="8px", margin="4px 0",
                                             display="none"))
        self.result: str | None = None  # the last caption
        self.maps = None  # AttentionMaps of the last caption (None when unavailable)
        self.selected: int | None = None  # index of the word whose map is shown
        self.history: list[dict] = []  # one dict per caption, fields FIELDS
        self.button.on_click(lambda _: self.caption())
        # named for what they hold: not captions.csv / captions.json, the names of fine-tuning and COCO files
        self.export_json_button.on_click(
            lambda _: self._offer("caption-history.json", "application/json", self.export_json()))
        self.export_csv_button.on_click(lambda _: self._offer("caption-history.csv", "text/csv", self.export_csv()))
        self.clear_button.on_click(lambda _: self.clear_history())
        self.dialog_ok.on_click(lambda _: self.close_dialog())
        self.method.observe(lambda _: self.selected is not None and self.show_word(self.selected), names="value")
        self.picker.error.observe(self._on_picker_error, names="value")
        right = w.VBox([self.model.box, self.decoding, self.button, self.caption_html, self.notice,
                        w.HTML("<b>Attention</b>: click a word to see where the model looked while writing it"),
                        self.words, self.method, self.attention, self.attention_note],
                       layout=w.Layout(flex="1 1 340px", min_width="0", max_width="100%"))
        self.picker.layout.flex = "0 1 auto"
        super().__init__([
            w.HTML("<h3 style='margin:0'>Captioning app</h3>"), self.dialog,
            wrap_row([self.picker, right]),  # side by side on a laptop, top to bottom on a phone
            w.HTML("<b>History</b>"), self.history_html,
            wrap_row([self.export_json_button, self.export_csv_button, self.clear_button]), self.download,
        ], background, layout=w.Layout(max_width="100%"))
        self._busy_buttons = [self.button]
        self.follow_picker(self.picker, [self.caption_html], "Caption")  # its word maps show their own picture
        self._render_history()
        if self.server:
            self._show_server()

    def _show_server(self) -> None:
        """Name the classroom server's model in the one-line notice (or say that the server does not answer)."""
        from mmkit.classroom import RemoteCaptioner

        try:
            self.model.info.value = model_notice_html(RemoteCaptioner(self.server, timeout=10).spec())
        except Exception as e:  # the app still opens; the first caption says the same in its dialog
            self.model.info.value = error_html(e)

    # -- errors as a dialog ----------------------------------------------------------------------
    def on_error(self, e: BaseException) -> None:
        self.show_dialog(esc(error_text(e)))
        self.show_error(e)

    def show_dialog(self, message_html: str) -> None:
        """Open the error box with an (already escaped) message."""
        self.dialog_message.value = f"<div style='white-space:pre-wrap'>{message_html}</div>"
        self.dialog.layout.display = None

    def close_dialog(self) -> None:
        self.dialog.layout.display = "none"
        self.clear_error()

    @property
    def dialog_open(self) -> bool:
        return self.dialog.layout.display != "none"

    def _on_picker_error(self, change) -> None:
        if change["new"]:
            self.show_dialog(change["new"])

    # -- captioning ------------------------------------------------------------------------------
    def caption(self) -> None:
        """Caption the chosen image, compute its per-word attention, and add it to the history."""
        import mmkit

        self.close_dialog()

        if self.server:
            self.run(self._remote_work, self._show_caption, "captioning...")
            return

        def work(job):
            from mmkit.domain import pictures_checked

            m, image, text = caption_picked(self.picker, self.decoding, self.model, job)
            job.check()
            maps, note = None, ""
            if text:
                try:
                    with pictures_checked():  # the caption's check said what there is to say of this picture, once
                        maps = mmkit.attention_maps(m, image, text=text)
                except Exception as e:  # the caption still counts; say why there is no map
                    note = f"no attention map: {error_text(e)}"
            return m, text, maps, note

        self.run(work, self._show_caption, "captioning...")

    def _remote_work(self, job):
        """Caption through the classroom model server: (spec holder, caption, maps, note); no torch here."""
        from mmkit.classroom import RemoteCaptioner

        image = self.picker.require_image()
        res = RemoteCaptioner(self.server).caption(image, **self.decoding.kwargs())
        job.check()
        self.model.info.value = model_notice_html(res.spec)
        return res, res.caption, res.maps, res.map_note

    def _show_caption(self, res) -> None:
        m, text, maps, note = res
        scene = self.picker.scene
        self.result, self.maps, self.selected = text, maps, None
        truth = scene.caption if scene is not None else ""
        line = f"<div style='font-size:1.3em'>{esc(text) if text else '<i>(empty caption)</i>'}</div>"
        line += f"<div style='color:#666'>{esc(m.spec.name)}: {esc(self.decoding.describe())}</div>"
        line += truth_html(scene, text, truth or None)
        self.caption_html.value = line
        self.attention.value = b""
        self.attention_note.value = esc(" ".join(x for x in (note, padding_note(maps)) if x))
        if maps is not None:
            buttons = []
            for i, word in enumerate(maps.words):
                b = w.Button(description=word, layout=w.Layout(width="auto"), tooltip=f"map of '{word}'")
                b.on_click(lambda _, i=i: self.show_word(i))
                buttons.append(b)
            self.words.children = buttons
            self.method.options = maps.methods
            self.method.value = maps.methods[0]
        else:
            self.words.children = []
        self.history.append(dict(n=len(self.history) + 1, image=self.picker.label, caption=text, model=m.spec.name,
                                 decoding=self.decoding.describe(), ground_truth=truth))
        self._render_history()

    def show_word(self, i: int) -> None:
        """Show the attention map of word i of the last caption."""
        from mmkit.viz import overlay

        if self.maps is None:
            self.attention_note.value = "caption an image first"
            return
        try:
            heat = self.maps.for_token(i, method=self.method.value)  # (gh, gw) on the patch grid
            fig = overlay(self.maps.image, heat, title=f"'{self.maps.words[i]}' ({self.method.value})")
        except Exception as e:  # a map that cannot be drawn is reported, the app goes on
            self.show_dialog(esc(error_text(e)))
            return
        self.selected = i
        for k, b in enumerate(self.words.children):
            b.button_style = "info" if k == i else ""
        self.attention.value = png(fig)
        self.attention_note.value = esc(padding_note(self.maps))

    # -- history and export -------------------------------------------------------------------------
    def _render_history(self) -> None:
        if not self.history:
            self.history_html.value = "<i>no captions yet</i>"
            return
        head = "".join(f"<th style='text-align:left;padding:2px 8px'>{esc(f)}</th>" for f in FIELDS)
        rows = []
        for h in reversed(self.history[-HISTORY_SHOWN:]):
            cells = "".join(f"<td style='padding:2px 8px'>{esc(h[f])}</td>" for f in FIELDS)
            rows.append(f"<tr>{cells}</tr>")
        more = len(self.history) - HISTORY_SHOWN
        note = f"<div style='color:#666'>{more} older captions are in the export</div>" if more > 0 else ""
        self.history_html.value = (f"<div style='overflow-x:auto;max-width:100%'><table><tr>{head}</tr>"
                                   f"{''.join(rows)}</table></div>{note}")

    def clear_history(self) -> None:
        self.history = []
        self.download.value = ""
        self._render_history()

    def export_json(self, path=None) -> str:
        """The history as JSON text (a list of objects); also written to path when given."""
        text = json.dumps(self.history, indent=2, ensure_ascii=False)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        return text

    def export_csv(self, path=None) -> str:
        """The history as CSV text with a header row; also written to path when given. Its image column says
        where each picture came from ('upload: cat.png'), not a path: it is a record, not a fine-tuning file."""
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(FIELDS)
        for h in self.history:
            writer.writerow([_csv_cell(h[f]) for f in FIELDS])
        text = buf.getvalue()
        if path is not None:
            with open(path, "w", encoding="utf-8", newline="") as f:
                f.write(text)
        return text

    def _offer(self, filename: str, mime: str, text: str) -> None:
        """Show a download link for the text (a data: URI; works in Jupyter, Colab and Voila)."""
        if not self.history:
            self.show_dialog("the history is empty: caption an image first, then export")
            return
        data = base64.b64encode(text.encode("utf-8")).decode("ascii")
        self.download.value = (f"<a download='{esc(filename)}' href='data:{mime};charset=utf-8;base64,{data}' "
                               f"target='_blank'>download {esc(filename)}</a> ({len(self.history)} captions)")
