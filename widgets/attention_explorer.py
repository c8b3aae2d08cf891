"""AttentionExplorer: click a word, see where the model looked; layer/head sliders, method, opacity.

Core ipywidgets and matplotlib only (no custom JavaScript), so it works in Colab and offline. Errors and
out-of-domain notices are shown inside the explorer; no exception escapes a click or a slider.
"""
from __future__ import annotations

import html
import io

import ipywidgets as W

import mmkit
from mmkit.notices import capture_notices

from .base import notice_html


def figure_png(fig) -> bytes:
    """Render a matplotlib Figure to PNG bytes (no display needed)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


class AttentionExplorer(W.VBox):
    """Explore the cross-modal maps of one image and one text.

    Args:
        model: a Loaded model or a name (default "blip-caption": the caption is generated).
        image: the image (anything mmkit.data.load_image takes); default a ShapesWorld scene.
        text: prompt / question / caption; None lets a captioning model write its own.
    """

    def __init__(self, model="blip-caption", image=None, text: str | None = None):
        self.model = mmkit.load_model(model, attention=True) if isinstance(model, str) else model
        self.image = mmkit.load_image(image) if image is not None else mmkit.ShapesWorld(1, seed=0, split="test")[0].image
        self.maps = None
        self._quiet = False
        self.text = W.Text(value=text or "", placeholder="prompt, question or caption (empty: generate a caption)",
                           description="text", layout=W.Layout(width="420px"))
        self.show_button = W.Button(description="Show maps", button_style="primary")
        self.words = W.ToggleButtons(options=[], description="word")
        self.method = W.ToggleButtons(options=[], description="method")
        self.layer = W.IntSlider(value=-1, min=-1, max=0, description="layer", tooltip="-1: mean of all layers")
        self.head = W.IntSlider(value=-1, min=-1, max=0, description="head", tooltip="-1: mean of all heads")
        self.agg = W.ToggleButtons(options=["mean", "max"], description="heads")
        self.opacity = W.FloatSlider(value=0.55, min=0.0, max=1.0, step=0.05, description="opacity")
        self.picture = W.Image(format="png", layout=W.Layout(width="360px"))
        self.message = W.HTML()
        self.notice = W.HTML()  # out-of-domain notices of the last compute(), escaped
        self.show_button.on_click(lambda _: self.compute())
        for w in (self.words, self.method, self.layer, self.head, self.agg, self.opacity):
            w.observe(lambda _: self.render(), names="value")
        super().__init__([
            W.HTML(f"<b>Attention explorer</b> &middot; {html.escape(self.model.spec.name)} "
                   f"({html.escape(self.model.spec.family)}, {html.escape(self.model.spec.source)})"),
            W.HBox([self.text, self.show_button]), self.words, self.method,
            W.HBox([self.layer, self.head, self.agg]), self.opacity, self.picture, self.message, self.notice])

    def _error(self, e: BaseException) -> None:
        kind = "" if isinstance(e, ValueError) else f"{type(e).__name__}: "
        self.message.value = f"<span style='color:#b00'>{html.escape(kind + str(e))}</span>"

    def compute(self) -> None:
        """Extract the maps for the current image and text, then show the first word."""
        self.notice.value = ""
        self.maps = None
        self.picture.value = b""
        try:
            text = self.text.value.strip() or None
            self.message.value = "<i>computing...</i>"
            with capture_notices() as notices:
                maps = mmkit.attention_maps(self.model, self.image, text)
            self.notice.value = notice_html(notices)
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
                self.method.value = maps.methods[0]
                self.layer.max = max(0, maps.layers - 1)
                self.head.max = max(0, maps.heads - 1)
                self.layer.disabled = self.head.disabled = self.agg.disabled = maps.attn is None
            finally:
                self._quiet = False
        except Exception as e:  # shown in the panel; the explorer stays usable
            self._error(e)
            return
        self.maps = maps
        self.message.value = html.escape(f"text: {maps.text}"
                                         + (f"  |  answer: {maps.notes['answer']}" if "answer" in maps.notes else ""))
        self.render()

    def heat(self):
        """The current map on the patch grid, for the selected word, method, layer and head."""
        m = self.maps
        method = self.method.value
        raw = method == "attention"
        return m.for_token(self.words.value, method=method,
                           layer=self.layer.value if raw and self.layer.value >= 0 else None,
                           head=self.head.value if raw and self.head.value >= 0 else None,
                           agg=self.agg.value)

    def render(self) -> None:
        """Redraw the overlay for the current controls."""
        if self._quiet or self.maps is None or self.words.value is None or self.method.value is None:
            return
        try:
            word = self.maps.words[self.words.value]
            fig = mmkit.viz.overlay(self.maps.image, self.heat(), alpha=self.opacity.value,
                                    title=f"'{word}' · {self.method.value}")
            self.picture.value = figure_png(fig)
        except Exception as e:  # a map that cannot be drawn is reported, the explorer goes on
            self._error(e)
