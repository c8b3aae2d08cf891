"""AttentionExplorer: click a word, see where the model looked; layer/head sliders, method, opacity, and a
head view (every layer by every head for the word, sortable by entropy or by mass on the word's object; click a
cell's button to enlarge it below; export as PNG or as a self-contained HTML page for slides).

Core ipywidgets and matplotlib only (no custom JavaScript), so it works in Colab and offline. It is a Panel:
extraction can run in the background with a Stop button. Errors and out-of-domain notices are shown inside
the explorer; no exception escapes a click or a slider.
"""
from __future__ import annotations

import html

import ipywidgets as W

import mmkit

from .base import Panel, control_layout, padding_note, png, wrap_row


class AttentionExplorer(Panel):
    """Explore the cross-modal maps of one image and one text.

    Args:
        model: a Loaded model or a name (default "blip-caption": the caption is generated).
        image: the image (anything mmkit.data.load_image takes), or a ShapesWorld scene (its boxes let the head
            view sort heads by mass on the word's object); default a ShapesWorld scene.
        text: prompt / question / caption; None lets a captioning model write its own.
        background: extract the maps in a thread with a working Stop button (True), or in the calling thread
            (False, the default: a click has its result at once, as scripts and tests expect).
    """

    def __init__(self, model="blip-caption", image=None, text: str | None = None, background: bool = False):
        self.model = mmkit.load_model(model, attention=True) if isinstance(model, str) else model
        if image is None:
            image = mmkit.ShapesWorld(1, seed=0, split="test")[0]
        self.scene = image if hasattr(image, "objects") and hasattr(image, "image") else None
        self.image = self.scene.image if self.scene is not None else mmkit.load_image(image)
        self.maps = None
        self._quiet = False
        self.text = W.Text(value=text or "", placeholder="prompt, question or caption (empty: generate a caption)",
                           description="text", layout=control_layout("420px"))
        self.show_button = W.Button(description="Show maps", button_style="primary")
        self.words = W.ToggleButtons(options=[], description="word")
        self.method = W.ToggleButtons(options=[], description="method")
        self.layer = W.IntSlider(value=-1, min=-1, max=0, description="layer", tooltip="-1: mean of all layers")
        self.head = W.IntSlider(value=-1, min=-1, max=0, description="head", tooltip="-1: mean of all heads")
        self.agg = W.ToggleButtons(options=["mean", "max"], description="heads")
        self.opacity = W.FloatSlider(value=0.55, min=0.0, max=1.0, step=0.05, description="opacity")
        self.picture = W.Image(format="png", layout=control_layout("360px"))
        self.message = W.HTML()
        self.notice = W.HTML()  # out-of-domain notices of the last compute(), escaped
        self.head_view = W.ToggleButton(value=False, description="head view", icon="th",
                                        tooltip="every layer x head for the word; layer/head pick the outlined cell")
        sorts = ["layer", "entropy"] + (["object"] if self.scene is not None else [])
        self.sort = W.Dropdown(options=sorts, value="layer", description="sort heads", layout=W.Layout(width="220px"))
        self.enlarge_button = W.Button(description="enlarge cell", tooltip="show the outlined layer/head enlarged")
        self.export_button = W.Button(description="PNG", icon="download", tooltip="save the picture as a PNG")
        self.html_button = W.Button(description="HTML", icon="download",
                                    tooltip="save the head view as one HTML page (PNGs inside; click a cell to enlarge)")
        self.cells = W.VBox()  # the head view's cells as buttons, one row per layer, in the figure's order
        self.enlarged = W.Image(format="png", layout=control_layout("300px"))  # the clicked cell, enlarged
        self.exported = None  # path of the last export
        self.show_button.on_click(lambda _: self.compute())
        self.enlarge_button.on_click(lambda _: self.enlarge())
        self.export_button.on_click(lambda _: self.export())
        self.html_button.on_click(lambda _: self.export(fmt="html"))
        for w in (self.method, self.head_view):  # first: controls the method ignores are turned off, then it draws
            w.observe(lambda _: self._controls(), names="value")
        for w in (self.words, self.method, self.layer, self.head, self.agg, self.opacity, self.head_view, self.sort):
            w.observe(lambda _: self.render(), names="value")
        super().__init__([
            W.HTML(f"<b>Attention explorer</b> &middot; {html.escape(self.model.spec.name)} "
                   f"({html.escape(self.model.spec.family)}, {html.escape(self.model.spec.source)})"),
            wrap_row([self.text, self.show_button]), self.words, self.method,
            wrap_row([self.layer, self.head, self.agg]), self.opacity,
            wrap_row([self.head_view, self.sort, self.enlarge_button, self.export_button, self.html_button]),
            self.picture, self.cells, self.enlarged, self.message, self.notice], background=background)
        self._busy_buttons = [self.show_button]

    def _error(self, e: BaseException) -> None:
        kind = "" if isinstance(e, ValueError) else f"{type(e).__name__}: "
        self.message.value = f"<span style='color:#b00'>{html.escape(kind + str(e))}</span>"

    def on_error(self, e: BaseException) -> None:
        self._error(e)

    def compute(self) -> None:
        """Extract the maps for the current image and text (Panel.run: Stop works in the background), then
        show the first word."""
        self.maps = None
        self.picture.value = b""
        text = self.text.value.strip() or None
        self.message.value = "<i>computing...</i>"
        self.run(lambda job: mmkit.attention_maps(self.model, self.image, text), self._show, "extracting maps...")

    def _show(self, maps) -> None:
        """Set the controls for new maps, then draw."""
        try:
            self._quiet = True  # set every control first, then draw once
            try:
                self.words.options = [(f"{w} ({i})" if maps.words.count(w) > 1 else w, i)
                                      for i, w in enumerate(maps.words)]
                if not maps.words:  # e.g. only emoji or symbols the tokenizer drops: nothing to map
                    self.message.value = html.escape(f"the text {maps.text!r} has no words {self.model.spec.name} "
                                                     "can map; type a few words, e.g. 'a red circle'")
                    return
                self.words.value = 0
                self.method.options = maps.methods
                self.method.value = maps.default_method  # CLIP: relevance (its raw attention ignores the text)
                self.layer.max = max(0, maps.layers - 1)
                self.head.max = max(0, maps.heads - 1)
                self.head_view.disabled = maps.attn is None
                if maps.attn is None:
                    self.head_view.value = False
                self._controls(maps)
            finally:
                self._quiet = False
        except Exception as e:  # shown in the panel; the explorer stays usable
            self._error(e)
            return
        self.maps = maps
        self.message.value = html.escape(f"text: {maps.text}"
                                         + (f"  |  answer: {maps.notes['answer']}" if "answer" in maps.notes else "")
                                         + (f"  |  {padding_note(maps)}" if padding_note(maps) else ""))
        self.render()

    def _controls(self, maps=None) -> None:
        """Turn off, saying why on hover, the controls the current method ignores: layer and head choose raw attention's
        map (or the head view's outlined cell); heads (mean/max) aggregates raw attention's heads."""
        maps = maps or self.maps
        if maps is None:
            return
        method, heads = self.method.value, maps.attn is not None and self.head_view.value
        raw = maps.attn is not None and method == "attention"
        why = (f"{maps.model} has no attention heads" if maps.attn is None
               else f"{method!r} gives one map per word: layer, head and heads apply to method 'attention' only")
        for w, tip in ((self.layer, "-1: mean of all layers"), (self.head, "-1: mean of all heads"),
                       (self.agg, "mean or max over the heads")):
            w.disabled = not (raw or (heads and w is not self.agg))
            _tip(w, why if w.disabled else tip)

    def heat(self):
        """The current map on the patch grid, for the selected word, method, layer and head."""
        m = self.maps
        method = self.method.value
        raw = method == "attention"
        return m.for_token(self.words.value, method=method,
                           layer=self.layer.value if raw and self.layer.value >= 0 else None,
                           head=self.head.value if raw and self.head.value >= 0 else None,
                           agg=self.agg.value)

    def _box(self):
        """The box of the object the selected word names in the scene, or None."""
        from mmkit.data.targets import target_objects

        if self.scene is None:
            return None
        found = dict(target_objects(self.scene, self.maps.words))
        obj = found.get(self.words.value)
        return None if obj is None else self.maps.box(obj.box)

    def figure(self):
        """The current picture as a Figure: the head view when it is on, else the selected map's overlay."""
        word = self.maps.words[self.words.value]
        if self.head_view.value and self.maps.attn is not None:
            sort, box = self._sort()
            sel = (max(self.layer.value, 0), max(self.head.value, 0))
            return mmkit.viz.head_view(self.maps, self.words.value, sort=sort, box=box, alpha=self.opacity.value,
                                       selected=sel)
        return mmkit.viz.overlay(self.maps.image, self.heat(), alpha=self.opacity.value,
                                 title=f"'{word}' · {self.method.value}")

    def _sort(self) -> tuple[str, object]:
        """The head view's sort and box ("object" falls back to entropy for a word that names no one object)."""
        box = self._box()
        return (self.sort.value if (self.sort.value != "object" or box is not None) else "entropy"), box

    def enlarge(self, layer: int | None = None, head: int | None = None) -> None:
        """Show one cell of the head view enlarged below it (default: the outlined one) and outline it."""
        if self.maps is None or self.maps.attn is None:
            return
        self._quiet = True
        try:
            self.layer.value = max(0, self.layer.value) if layer is None else int(layer)
            self.head.value = max(0, self.head.value) if head is None else int(head)
            self.head_view.value = True
        finally:
            self._quiet = False
        self.render()

    def _show_enlarged(self) -> None:
        l, h = max(self.layer.value, 0), max(self.head.value, 0)
        word = self.maps.words[self.words.value]
        heat = self.maps.for_token(self.words.value, layer=l, head=h, method="attention")
        fig = mmkit.viz.overlay(self.maps.image, heat, alpha=self.opacity.value,
                                title=f"'{word}' · layer {l}, head {h}")
        self.enlarged.value = png(fig, dpi=110)

    def _cell_buttons(self) -> None:
        """One button per layer and head, in the head view's order; a click enlarges that cell below."""
        sort, box = self._sort()
        orders, scores = mmkit.viz.head_order(self.maps, self.words.value, sort, box)
        rows = []
        for l, order in enumerate(orders):
            row = []
            for hd in order:
                label = f"L{l} h{hd}" + ("" if scores is None else f" {scores[l, hd]:.2f}")
                b = W.Button(description=label, tooltip=f"enlarge layer {l}, head {hd}",
                             layout=W.Layout(width="92px"))
                b.on_click(lambda _, l=l, hd=hd: self.enlarge(l, hd))
                row.append(b)
            rows.append(W.HBox(row))
        self.cells.children = rows

    def export(self, path=None, fmt: str = "png") -> str | None:
        """Write the current picture (head view or map) as a PNG for slides, or (fmt="html") the head view as one
        self-contained HTML page with every cell as an embedded PNG; returns the path."""
        if self.maps is None:
            return None
        path = path or f"attention_{self.model.spec.name.replace('/', '_')}_{self.words.value}.{fmt}"
        try:
            if fmt == "html":
                if self.maps.attn is None:
                    raise ValueError(f"{self.maps.model} has no attention heads to export; use the PNG export")
                sort, box = self._sort()
                mmkit.viz.head_view_html(self.maps, self.words.value, sort=sort, box=box, path=path,
                                         alpha=self.opacity.value)
            else:
                mmkit.viz.figure_png(self.figure(), path)
        except Exception as e:
            self._error(e)
            return None
        self.exported = str(path)
        self.status.value = html.escape(f"saved {path}")
        return self.exported

    def render(self) -> None:
        """Redraw the picture for the current controls (and, in the head view, the cell buttons and enlarged cell)."""
        if self._quiet or self.maps is None or self.words.value is None or self.method.value is None:
            return
        try:
            self.picture.value = png(self.figure(), dpi=110)
            if self.head_view.value and self.maps.attn is not None:
                self._cell_buttons()
                self._show_enlarged()
            else:
                self.cells.children = ()
                self.enlarged.value = b""
        except Exception as e:  # a map that cannot be drawn is reported, the explorer goes on
            self._error(e)


def _tip(w, text: str) -> None:
    """A control's hover text: `tooltip` in ipywidgets 8, `description_tooltip` in 7."""
    if w.has_trait("tooltip"):
        w.tooltip = text
    else:
        w.description_tooltip = text
