"""FusionLab: pick fusion methods and a task, train them with a live plot, compare, then try a sentence.

A Panel: training runs in a background thread with the panel's progress bar and Stop button; Stop ends the
method being trained after its current step and keeps every result trained so far.
"""
from __future__ import annotations

import html
import time

import ipywidgets as w

from mmkit.errors import InputError

from .base import Panel, control_layout, error_html, png


class FusionLab(Panel):
    """Train several fusion methods on a ShapesWorld task, watch loss/accuracy live, compare, and probe one.

    Args:
        methods: the methods selected at start (any of mmkit.fusion.list()).
        task: "vqa" or "match".
        budget: a mmkit.fusion.compare.Budget (data sizes and default steps); default Budget.reduced().
        background: train in a thread (True, for people) or in the calling thread (False, for tests).
    """

    def __init__(self, methods=("concat", "cross_attention", "late_mean"), task: str = "vqa", budget=None,
                 background: bool = True):
        from mmkit.fusion import list_methods
        from mmkit.fusion.compare import Budget
        from mmkit.fusion.data import TASKS

        self.budget = budget or Budget.reduced()
        self.results = None  # mmkit.fusion.compare.Results of the latest run
        self.results_task = task  # the task those results were trained on
        self.curves: dict = {}  # method -> list of {"step", "loss", "acc"}
        self._last_draw = 0.0
        names = list(list_methods())
        self.methods = w.SelectMultiple(options=names, value=tuple(m for m in methods if m in names),
                                        description="methods", rows=7)
        self.task = w.Dropdown(options=list(TASKS), value=task, description="task")
        self.steps = w.IntSlider(value=self.budget.steps, min=50, max=3000, step=50, description="steps")
        self.train_button = w.Button(description="Train", button_style="primary", icon="play")
        self.message = w.HTML("Pick methods and a task, then Train.")  # what the last run did
        self.plot = w.Image(format="png", layout=control_layout("640px"))
        self.table = w.HTML()
        self.model_choice = w.Dropdown(options=[], description="model")
        self.scene_index = w.BoundedIntText(value=0, min=0, max=self.budget.n_test - 1, description="scene")
        self.sentence = w.Text(value="what color is the circle?", description="text",
                               layout=control_layout("420px"))
        self.try_button = w.Button(description="Predict", icon="search")
        self.prediction = w.HTML()
        self.attention = w.Image(format="png", layout=control_layout("720px"))
        self.train_button.on_click(lambda _: self.start())
        self.try_button.on_click(lambda _: self.predict())
        super().__init__([
            w.HBox([self.methods, w.VBox([self.task, self.steps, self.train_button])],
                   layout=w.Layout(flex_flow="row wrap")),
            self.message, self.plot, self.table,
            w.HTML("<b>Try it</b>: a question (vqa) or a caption (match) about a held-out ShapesWorld scene"),
            w.HBox([self.model_choice, self.scene_index], layout=w.Layout(flex_flow="row wrap")),
            w.HBox([self.sentence, self.try_button], layout=w.Layout(flex_flow="row wrap")),
            self.prediction, self.attention], background=background)
        self._busy_buttons = [self.train_button]

    # -- training ------------------------------------------------------------------------------
    def start(self) -> None:
        """Train the selected methods (in a thread when the panel is in the background mode)."""
        if not self.methods.value:
            self.show_error(InputError("no method selected: pick one or more in the list"))
            return
        self.curves = {m: [] for m in self.methods.value}
        self.run(self._train, label="Preparing the encoder and data (first run only)...")

    def run_sync(self) -> None:
        """Train the selected methods in this thread (for tests and scripts)."""
        background, self.background = self.background, False
        try:
            self.start()
        finally:
            self.background = background

    def _train(self, job):
        """The work: train every selected method; the results so far are shown even when Stop ends it."""
        from dataclasses import replace

        from mmkit.fusion.compare import compare

        budget = replace(self.budget, steps=int(self.steps.value))
        task, n = self.task.value, len(self.methods.value)

        def on_point(method: str, point: dict) -> None:
            self.curves.setdefault(method, []).append(point)
            done = sum(pts[-1]["step"] for pts in self.curves.values() if pts)  # steps trained over all methods
            self.status.value = (f"Training <b>{html.escape(method)}</b>: step {point['step']}/{budget.steps}, "
                                 f"loss {point['loss']:.3f}, train acc {point['acc']:.2f}")
            self.progress.max = n * budget.steps
            self.progress.value = min(done, self.progress.max)
            self._draw()

        results = compare(self.methods.value, task=task, budget=budget, callback=on_point,
                          stop_event=job.stop_event)
        self.results, self.results_task = results, task
        self._draw(force=True)
        self.table.value = results._repr_html_()
        self.model_choice.options = list(results.models)
        if results.models:
            self.model_choice.value = list(results.models)[-1]
        stopped = job.cancelled
        self.message.value = ("Stopped." if stopped else "Done.") + f" Trained {len(results)} method(s)."
        return results

    def _draw(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._last_draw < 0.5:
            return  # at most two redraws a second
        self._last_draw = time.monotonic()
        self.plot.value = png(curves_figure(self.curves))

    # -- trying a sentence ---------------------------------------------------------------------
    def predict(self) -> str:
        """Run the chosen model on the chosen held-out scene and sentence; show answer and attention."""
        try:
            text = self.sentence.value.strip()
            if not text:
                raise InputError("the text is empty: type a question or a caption")
            if self.results is None or not self.results.models:
                raise InputError("no trained model yet: press Train first")
            out = probe(self.results.models[self.model_choice.value], self.results_task,
                        int(self.scene_index.value), text, self.budget)
            self.prediction.value = out["html"]
            self.attention.value = out["png"]
            return out["answer"]
        except Exception as e:  # shown in the panel, never as a traceback
            self.prediction.value = error_html(e)
            self.attention.value = b""
            return ""


def curves_figure(curves: dict):
    """A Figure with training loss and running train accuracy per method (no pyplot: safe in threads)."""
    from mmkit.viz import new_figure

    fig = new_figure((8, 2.6))
    ax1, ax2 = fig.subplots(1, 2)
    for m, pts in curves.items():
        if pts:
            ax1.plot([p["step"] for p in pts], [p["loss"] for p in pts], label=m)
            ax2.plot([p["step"] for p in pts], [p["acc"] for p in pts], label=m)
    ax1.set(xlabel="step", ylabel="loss", title="training loss")
    ax2.set(xlabel="step", ylabel="accuracy", title="train accuracy (running)", ylim=(0, 1))
    if any(curves.values()):
        ax2.legend(fontsize=7, loc="lower right")
    return fig


def probe(model, task: str, index: int, text: str, budget) -> dict:
    """Answer `text` about held-out scene `index`: {"answer", "prob", "html", "png"} (png: attention or image)."""
    import torch

    from mmkit.fusion.compare import prepare
    from mmkit.fusion.encoders import WordVocab
    from mmkit.viz import new_figure
    from mmkit.fusion.pointing import plot_word_attention
    from mmkit.viz.text import plain

    _, _, test = prepare(task, budget)
    if not 0 <= index < len(test.scenes):
        raise InputError(f"scene {index} does not exist: use 0..{len(test.scenes) - 1}")
    vocab = WordVocab()
    unknown = [x for x in vocab.split(text) if x not in vocab.stoi]
    ids, mask = vocab.encode(text)
    with torch.no_grad():
        probs = model(ids, mask, test.image_emb[index:index + 1]).softmax(-1)[0]  # (n_classes,)
    k = int(probs.argmax())
    answer = test.classes[k]
    label = "answer" if task == "vqa" else "caption matches"
    note = f"<br><i>unknown words (read as [UNK]): {html.escape(', '.join(unknown))}</i>" if unknown else ""
    out = {"answer": answer, "prob": float(probs[k]),
           "html": f"{label}: <b>{html.escape(answer)}</b> (p = {float(probs[k]):.2f}){note}"}
    scene = test.scenes[index]
    if model.level == "attention" and getattr(model.fusion, "direction", "text_to_image") == "text_to_image":
        fig = plot_word_attention(model, scene, text, image_emb=test.image_emb[index], vocab=vocab)
    else:
        fig = new_figure((2, 2.2))
        ax = fig.subplots()
        ax.imshow(scene.image)
        ax.axis("off")
        ax.set_title(plain(f"{model.method}: no attention map"), fontsize=8)
    out["png"] = png(fig)
    return out
