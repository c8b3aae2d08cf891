"""FusionLab: pick fusion methods and a task, train them with a live plot, compare, then try a sentence."""
from __future__ import annotations

import html
import io
import threading
import time

import ipywidgets as w

from mmkit.errors import InputError


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    return buf.getvalue()


def _error_html(e: BaseException) -> str:
    kind = "" if isinstance(e, InputError) else f"{type(e).__name__}: "
    return f"<span style='color:#b00'>{html.escape(kind + str(e))}</span>"


class FusionLab(w.VBox):
    """Train several fusion methods on a ShapesWorld task, watch loss/accuracy live, compare, and probe one.

    Args:
        methods: the methods selected at start (any of mmkit.fusion.list()).
        task: "vqa" or "match".
        budget: a mmkit.fusion.compare.Budget (data sizes and default steps); default Budget.reduced().
    """

    def __init__(self, methods=("concat", "cross_attention", "late_mean"), task: str = "vqa", budget=None):
        from mmkit.fusion import list_methods
        from mmkit.fusion.compare import Budget
        from mmkit.fusion.data import TASKS

        self.budget = budget or Budget.reduced()
        self.results = None  # mmkit.fusion.compare.Results of the latest run
        self.results_task = task  # the task those results were trained on
        self.curves: dict = {}  # method -> list of {"step", "loss", "acc"}
        self.thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._last_draw = 0.0
        names = list(list_methods())
        self.methods = w.SelectMultiple(options=names, value=tuple(m for m in methods if m in names),
                                        description="methods", rows=7)
        self.task = w.Dropdown(options=list(TASKS), value=task, description="task")
        self.steps = w.IntSlider(value=self.budget.steps, min=50, max=3000, step=50, description="steps")
        self.train_button = w.Button(description="Train", button_style="primary", icon="play")
        self.stop_button = w.Button(description="Stop", button_style="warning", icon="stop", disabled=True)
        self.status = w.HTML("Pick methods and a task, then Train.")
        self.plot = w.Image(format="png", layout=w.Layout(width="640px"))
        self.table = w.HTML()
        self.model_choice = w.Dropdown(options=[], description="model")
        self.scene_index = w.BoundedIntText(value=0, min=0, max=self.budget.n_test - 1, description="scene")
        self.sentence = w.Text(value="what color is the circle?", description="text",
                               layout=w.Layout(width="420px"))
        self.try_button = w.Button(description="Predict", icon="search")
        self.prediction = w.HTML()
        self.attention = w.Image(format="png", layout=w.Layout(width="720px"))
        self.train_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.try_button.on_click(lambda _: self.predict())
        super().__init__([
            w.HBox([self.methods, w.VBox([self.task, self.steps, w.HBox([self.train_button, self.stop_button])])]),
            self.status, self.plot, self.table,
            w.HTML("<b>Try it</b>: a question (vqa) or a caption (match) about a held-out ShapesWorld scene"),
            w.HBox([self.model_choice, self.scene_index]), w.HBox([self.sentence, self.try_button]),
            self.prediction, self.attention])

    # -- training ------------------------------------------------------------------------------
    def start(self, blocking: bool = False) -> None:
        """Train the selected methods: in a background thread, or in this thread with blocking=True."""
        if self.thread is not None and self.thread.is_alive():
            self.status.value = "Training is already running; press Stop first."
            return
        if not self.methods.value:
            self.status.value = _error_html(InputError("no method selected: pick one or more in the list"))
            return
        self._stop.clear()
        self.curves = {m: [] for m in self.methods.value}
        self.train_button.disabled, self.stop_button.disabled = True, False
        if blocking:
            self._run()
        else:
            self.thread = threading.Thread(target=self._run, daemon=True)
            self.thread.start()

    def run_sync(self) -> None:
        """Train the selected methods in this thread (for tests and scripts)."""
        self.start(blocking=True)

    def stop(self) -> None:
        """Ask the training to stop after the current step."""
        self._stop.set()
        self.status.value = "Stopping..."

    def _run(self) -> None:
        from dataclasses import replace

        from mmkit.fusion.compare import compare

        try:
            budget = replace(self.budget, steps=int(self.steps.value))
            self.status.value = "Preparing the encoder and data (first run only)..."
            task = self.task.value
            self.results = compare(self.methods.value, task=task, budget=budget,
                                   callback=self._on_point, stop_event=self._stop)
            self.results_task = task
            self._draw(force=True)
            self.table.value = self.results._repr_html_()
            self.model_choice.options = list(self.results.models)
            if self.results.models:
                self.model_choice.value = list(self.results.models)[-1]
            stopped = self._stop.is_set()
            self.status.value = ("Stopped." if stopped else "Done.") + f" Trained {len(self.results)} method(s)."
        except Exception as e:  # shown in the panel, never as a traceback
            self.status.value = _error_html(e)
        finally:
            self.train_button.disabled, self.stop_button.disabled = False, True

    def _on_point(self, method: str, point: dict) -> None:
        self.curves.setdefault(method, []).append(point)
        self.status.value = (f"Training <b>{html.escape(method)}</b>: step {point['step']}/{self.steps.value}, "
                             f"loss {point['loss']:.3f}, train acc {point['acc']:.2f}")
        self._draw()

    def _draw(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._last_draw < 0.5:
            return  # at most two redraws a second
        self._last_draw = time.monotonic()
        self.plot.value = _png(curves_figure(self.curves))

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
        except Exception as e:
            self.prediction.value = _error_html(e)
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
    out["png"] = _png(fig)
    return out
