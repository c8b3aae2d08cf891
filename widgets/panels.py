"""Task panels: CaptionPanel, VQAPanel, ZeroShotPanel, RetrievalPanel (each a VBox driven by a button).

Each panel takes a model (a `Loaded` or a name, loaded on first use; the default is the family name,
which picks the pretrained model when the hub is reachable and the bundled one otherwise), shows its
result in output widgets and keeps it in `result`. Errors appear inside the panel.
"""
from __future__ import annotations

import ipywidgets as w

from mmkit.errors import InputError
from mmkit.viz import prob_chart

from .base import ModelChoice, Panel, control_layout, esc, png, repaint_html, wrap_row
from .decoding import DecodingControls, caption_picked
from .picker import ImagePicker


def truth_html(scene, text: str, truth: str | None) -> str:
    """A ground-truth line for ShapesWorld scenes: the expected text and whether the result matches."""
    if scene is None or truth is None:
        return ""
    ok = " ".join(text.lower().split()) == " ".join(truth.lower().split())
    mark = "<span style='color:#1b5e20'>matches</span>" if ok else "<span style='color:#b00020'>differs</span>"
    return f"<div style='color:#555'>ground truth: <i>{esc(truth)}</i> ({mark})</div>"


class CaptionPanel(Panel):
    """Caption the picked image with a captioning model and the chosen decoding options.

    Args:
        model: a Loaded captioning model or a name (default "blip-caption").
        picker: an ImagePicker to share with other panels (default: a new one).
        background: run in a thread (False for tests).
    """

    def __init__(self, model="blip-caption", picker: ImagePicker | None = None, background: bool = True):
        self.model = ModelChoice(model)
        self.picker = picker or ImagePicker()
        self.decoding = DecodingControls()
        self.button = w.Button(description="Caption", button_style="primary", icon="comment")
        self.output = w.HTML("")  # the caption, escaped
        self.notice = w.HTML("")  # out-of-domain notices of the last run (see Panel)
        self.result: str | None = None  # the last caption
        self.button.on_click(lambda _: self.caption())
        super().__init__([self.model.box, self.picker, self.decoding, self.button, self.output, self.notice],
                         background)
        self._busy_buttons = [self.button]
        self.follow_picker(self.picker, [self.output], "Caption")

    def caption(self) -> None:
        """Caption the picked image (the Caption button does this)."""

        def work(job):
            m, image, text = caption_picked(self.picker, self.decoding, self.model, job)
            return text, repaint_html(m, image)

        def done(res):
            text, repaint = res
            self.result = text
            scene = self.picker.scene
            self.output.value = (f"<div style='font-size:1.25em'>{esc(text) or '<i>(empty caption)</i>'}</div>"
                                 f"<div style='color:#666'>{esc(self.decoding.describe())}</div>"
                                 + truth_html(scene, text, scene.caption if scene is not None else None) + repaint)

        self.run(work, done, "captioning...")


class VQAPanel(Panel):
    """Ask a question about the picked image with a VQA model (BLIP-VQA or ViLT).

    For ShapesWorld scenes, `suggestions` lists the scene's own questions and the answer is checked.

    Args:
        model: a Loaded VQA model or a name (default "blip-vqa").
        picker: an ImagePicker to share with other panels (default: a new one).
        background: run in a thread (False for tests).
    """

    def __init__(self, model="blip-vqa", picker: ImagePicker | None = None, background: bool = True):
        self.model = ModelChoice(model)
        self.picker = picker or ImagePicker()
        self.question = w.Text(value="", description="question", placeholder="e.g. what color is the circle?",
                               layout=control_layout("460px"))
        self.suggestions = w.Dropdown(options=[""], value="", description="examples", layout=control_layout("460px"))
        self.button = w.Button(description="Ask", button_style="primary", icon="question")
        self.output = w.HTML("")
        self.notice = w.HTML("")  # out-of-domain notices of the last run (see Panel)
        self.result: str | None = None  # the last answer
        self.button.on_click(lambda _: self.ask())
        self.suggestions.observe(self._on_suggestion, names="value")
        self.picker.on_change(lambda p: self._fill_suggestions())
        self._fill_suggestions()
        super().__init__([self.model.box, self.picker, self.suggestions, wrap_row([self.question, self.button]),
                          self.output, self.notice], background)
        self._busy_buttons = [self.button]
        self.follow_picker(self.picker, [self.output], "Ask")

    def _fill_suggestions(self) -> None:
        scene = self.picker.scene
        qs = [qa.question for qa in scene.qa] if scene is not None else []
        self.suggestions.options = [""] + list(dict.fromkeys(qs))
        self.suggestions.value = ""
        if qs and not self.question.value.strip():
            self.question.value = qs[0]

    def _on_suggestion(self, change) -> None:
        if change["new"]:
            self.question.value = change["new"]

    def ask(self, question: str | None = None) -> None:
        """Answer the question in the text box (or the one given) about the picked image."""
        import mmkit

        if question is not None:
            self.question.value = question

        def work(job):
            image = self.picker.require_image()
            q = self.question.value.strip()
            if not q:
                raise InputError("the question is empty; type a question about the image, e.g. 'how many shapes are there?'")
            m = self.model.get("answer")
            job.check()
            return q, mmkit.answer(m, image, q), repaint_html(m, image)

        def done(res):
            q, a, repaint = res
            self.result = a
            scene = self.picker.scene
            truth = next((qa.answer for qa in scene.qa if qa.question == q), None) if scene is not None else None
            self.output.value = (f"<div>Q: {esc(q)}</div><div style='font-size:1.25em'>A: <b>{esc(a)}</b></div>"
                                 + truth_html(scene, a, truth) + repaint)

        self.run(work, done, "answering...")


def parse_lines(text: str, commas: bool = True) -> list[str]:
    """Non-empty lines of a text box; a single line is split at commas when `commas`."""
    lines = [x.strip() for x in text.splitlines() if x.strip()]
    if commas and len(lines) == 1 and "," in lines[0]:
        lines = [x.strip() for x in lines[0].split(",") if x.strip()]
    return lines


class ZeroShotPanel(Panel):
    """Zero-shot classification: editable labels and prompt templates, probabilities as a bar chart.

    Args:
        model: a Loaded CLIP/ALIGN (or BLIP-ITM) model or a name (default "clip").
        labels: the starting class names.
        picker: an ImagePicker to share with other panels (default: a new one).
        background: run in a thread (False for tests).
    """

    def __init__(self, model="clip", labels=("red circle", "green square", "blue triangle"),
                 picker: ImagePicker | None = None, background: bool = True):
        self.model = ModelChoice(model)
        self.picker = picker or ImagePicker()
        self.labels = w.Textarea(value="\n".join(labels), description="labels", placeholder="one class per line",
                                 layout=w.Layout(width="320px", max_width="100%", height="110px"))
        self.templates = w.Textarea(value="", description="templates",
                                    placeholder="one per line, with {} for the label;\nempty: the model's own",
                                    layout=w.Layout(width="320px", max_width="100%", height="110px"))
        self.button = w.Button(description="Classify", button_style="primary", icon="tags")
        self.chart = w.Image(format="png", layout=control_layout("460px"))
        self.output = w.HTML("")
        self.notice = w.HTML("")  # out-of-domain notices of the last run (see Panel)
        self.result: dict | None = None  # {label: probability} of the last run
        self.button.on_click(lambda _: self.classify())
        super().__init__([self.model.box, self.picker, wrap_row([self.labels, self.templates]), self.button,
                          self.output, self.notice, self.chart], background)
        self._busy_buttons = [self.button]
        self.follow_picker(self.picker, [self.output], "Classify")

    def classify(self) -> None:
        """Classify the picked image among the labels (the Classify button does this)."""
        import mmkit

        def work(job):
            image = self.picker.require_image()
            labels = parse_lines(self.labels.value)
            if len(labels) < 2:
                raise InputError("give at least two labels, one per line (e.g. 'red circle' and 'blue square')")
            templates = parse_lines(self.templates.value, commas=False) or None
            m = self.model.get("zero_shot")
            job.check()
            used = templates or [m.spec.zero_shot_template]
            return mmkit.zero_shot(m, image, labels, templates=templates), used, repaint_html(m, image)

        def done(res):
            probs, used, repaint = res
            self.result = probs
            best = max(probs, key=probs.get)
            self.output.value = (f"<div style='font-size:1.2em'>best: <b>{esc(best)}</b> ({probs[best]:.2f})</div>"
                                 f"<div style='color:#666'>templates: {esc(' | '.join(used))}</div>" + repaint)
            self.chart.value = png(prob_chart(probs, "zero-shot probabilities"))

        self.run(work, done, "classifying...")


class RetrievalPanel(Panel):
    """Text -> image retrieval: a query searches a gallery (ShapesWorld scenes or your images) for the top k.

    Args:
        model: a Loaded CLIP/ALIGN model or a name (default "clip").
        gallery_size: how many held-out ShapesWorld scenes form the default gallery.
        background: run in a thread (False for tests).
    """

    def __init__(self, model="clip", gallery_size: int = 32, background: bool = True):
        self.model = ModelChoice(model)
        self.query = w.Text(value="a red circle", description="query", layout=control_layout("420px"))
        self.k = w.IntSlider(value=5, min=1, max=12, description="top k", layout=control_layout())
        self.split = w.Dropdown(options=["test", "val", "comp_test"], value="test", description="gallery split",
                                style={"description_width": "initial"}, layout=control_layout("220px"))
        self.size = w.IntSlider(value=gallery_size, min=4, max=256, step=4, description="gallery size",
                                style={"description_width": "initial"}, layout=control_layout())
        self.button = w.Button(description="Search", button_style="primary", icon="search")
        self.grid = w.Image(format="png", layout=control_layout("720px"))
        self.output = w.HTML("")
        self.result: list | None = None  # list of mmkit.tasks.Hit (index, score, item) of the last search
        self.custom: tuple[list, list[str]] | None = None  # (images, names) from set_gallery
        self._cache: dict = {}  # (model name, gallery key) -> ((N, D) image embeddings, their out-of-domain notices)
        self.button.on_click(lambda _: self.search())
        super().__init__([self.model.box, wrap_row([self.split, self.size]), wrap_row([self.query, self.k, self.button]),
                          self.output, self.grid], background)
        self._busy_buttons = [self.button]

    def set_gallery(self, images, names=None) -> None:
        """Search your own images instead of ShapesWorld scenes (a list, a dict name -> image, or an mmkit.index.Index)."""
        from mmkit.data import load_image

        if hasattr(images, "hits") and hasattr(images, "search"):  # an mmkit.index.Index: FAISS finds the hits
            self.index, self.split.disabled, self.size.disabled = images, True, True
            return
        if isinstance(images, dict):
            names, images = list(images), list(images.values())
        images = [load_image(x) for x in images]
        if not images:
            raise InputError("the gallery is empty; pass at least one image")
        names = [str(n) for n in names] if names is not None else [f"#{i}" for i in range(len(images))]
        if len(names) != len(images):
            raise InputError(f"{len(images)} images but {len(names)} names; pass one name per image (or no names)")
        self.custom = (images, names)
        self.split.disabled = self.size.disabled = True

    def gallery(self) -> tuple[list, list[str], tuple]:
        """(images, names, cache key) of the current gallery."""
        if self.custom is not None:
            images, names = self.custom
            return images, names, ("custom", id(images))
        from mmkit.data import ShapesWorld

        ds = ShapesWorld(self.size.value, seed=0, split=self.split.value)
        return ds.images, [f"#{i}" for i in range(len(ds))], (self.split.value, self.size.value)

    def search(self, query: str | None = None) -> None:
        """Show the top-k gallery images for the query (the Search button does this)."""
        import torch

        import mmkit
        from mmkit.notices import capture_notices, record
        from mmkit.options import check_option

        if query is not None:
            self.query.value = query

        def work(job):
            q = self.query.value.strip()
            if not q:
                raise InputError("the query is empty; describe what to find, e.g. 'a large blue square'")
            m = self.model.get("retrieve")
            if getattr(self, "index", None) is not None:  # an index: only the hits' images are loaded
                hits = mmkit.retrieve(m, q, self.index, k=check_option("k", self.k.value, label="top k"))
                return q, [h._replace(item=mmkit.load_image(h.item)) for h in hits], {h.index: str(h.item) for h in hits}
            images, names, key = self.gallery()
            key = (m.spec.name, key)
            if key not in self._cache:
                chunks, step = [], 16
                with capture_notices() as notices:  # kept with the embeddings: every search of them shows them
                    for i in range(0, len(images), step):
                        job.progress(i, len(images), f"embedding the gallery: {i}/{len(images)} images")
                        chunks.append(mmkit.embed_images(m, images[i:i + step]))  # (<=16, D)
                self._cache[key] = torch.cat(chunks), notices  # (N, D)
            emb, notices = self._cache[key]
            for n in notices:
                record(n, mmkit.OutOfDomainWarning)  # into this run's notices (see Panel)
            hits = mmkit.retrieve(m, q, emb, k=check_option("k", self.k.value, label="top k"))
            return q, [h._replace(item=images[h.index]) for h in hits], names

        def done(res):
            q, hits, names = res
            self.result = hits
            titles = [f"{r + 1}. {names[h.index]} ({h.score:.2f})" for r, h in enumerate(hits)]
            self.grid.value = png(mmkit.viz.image_grid([h.item for h in hits], titles=titles, cols=6, size=1.6))
            self.output.value = (f"<div>top {len(hits)} for <b>{esc(q)}</b>: "
                                 + esc(", ".join(titles)) + "</div>")

        self.run(work, done, "searching...")
