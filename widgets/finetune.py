"""FinetunePanel: choose your data and a model, see how many examples are usable, train with a live loss curve and a
Stop button (which keeps the best epoch so far), compare before and after on validation pictures, save, and open
the result in CaptionApp."""
from __future__ import annotations

import warnings

import ipywidgets as w

from mmkit.errors import InputError, OutOfDomainWarning

from .base import ModelChoice, Panel, control_layout, esc, png, preview_png, typed, wrap_row


class FinetunePanel(Panel):
    """Fine-tune a model on your own pictures (mmkit.finetune) from a panel.

    Args:
        data: a folder with captions.csv / qa.csv / captions.json, a COCO caption file, or a list of tuples
            (the text box then shows "(given in code)").
        model: a Loaded model or a name (default "blip-caption").
        background: train in a thread (False: in the calling thread, for tests).
        **options: passed to mmkit.finetune (epochs, batch_size, lr, lora, ...); epochs and lora have controls.
    """

    def __init__(self, data=None, model="blip-caption", background: bool = True, **options):
        self.given = data if data is not None and not isinstance(data, (str, bytes)) and not hasattr(data, "__fspath__") \
            else None
        self.options = dict(options)
        self.data = w.Text(value="(given in code)" if self.given is not None else str(data or ""),
                           description="data", placeholder="folder with captions.csv / qa.csv, or captions.json",
                           layout=control_layout("480px"))
        self.check_button = w.Button(description="Check data", icon="search")
        self.usable = w.HTML("")  # how many examples are usable, and the rows skipped
        self.model = ModelChoice(model)
        self.epochs = w.BoundedIntText(value=int(self.options.pop("epochs", 5)), min=1, max=200, description="epochs",
                                       layout=w.Layout(width="160px"))
        self.lora = w.Checkbox(value=bool(self.options.pop("lora", False)), description="LoRA (peft)", indent=False)
        self.train_button = w.Button(description="Train", button_style="primary", icon="play")
        self.curve = w.Image(format="png", layout=control_layout("480px"))
        self.scores_html = w.HTML("")
        self.compare = w.VBox([])  # before / after on validation pictures
        self.save_path = w.Text(value="finetuned-model", description="save to", layout=control_layout("360px"))
        self.merge = w.Checkbox(value=True, description="merge LoRA", indent=False)
        self.save_button = w.Button(description="Save", icon="save", disabled=True)
        self.saved = w.HTML("")
        self.open_button = w.Button(description="Open in CaptionApp", icon="external-link", disabled=True,
                                    layout=w.Layout(width="auto"))  # its text is wider than a default button
        self.app_box = w.VBox([])
        self.result = None  # the last mmkit.Finetuned
        self.examples = None  # the last mmkit.tuning.Examples read
        self.steps: list[tuple[int, float]] = []  # (step, training loss) for the live curve
        self.epochs_seen: list[dict] = []
        self._stop_training = False
        self.training = False  # True while finetune runs (Stop then ends it with the best epoch kept)
        self.check_button.on_click(lambda _: self.check())
        self.train_button.on_click(lambda _: self.train())
        self.save_button.on_click(lambda _: self.save())
        self.open_button.on_click(lambda _: self.open_app())
        super().__init__([
            wrap_row([self.data, self.check_button]), self.usable, self.model.box,
            wrap_row([self.epochs, self.lora, self.train_button]), self.curve, self.scores_html, self.compare,
            wrap_row([self.save_path, self.merge, self.save_button]), self.saved, self.open_button, self.app_box,
        ], background=background)
        self._busy_buttons += [self.train_button, self.check_button]

    # -- data --------------------------------------------------------------------------------------
    def _data(self):
        if self.given is not None and self.data.value == "(given in code)":
            return self.given
        value = typed(self.data.value)
        if not value:
            raise InputError("choose the data: a folder with captions.csv or qa.csv, or AnnotationPanel's captions.json")
        return value

    def check(self) -> None:
        """Read the data and show how many examples are usable (and why rows were skipped)."""
        from mmkit.tuning import read_examples
        from mmkit.tuning.loop import wanted_kind

        def done(ex):
            self.examples = ex
            skipped = "".join(f"<li>{esc(a)}: {esc(b)}</li>" for a, b in ex.skipped[:10])
            more = f"<li>... and {len(ex.skipped) - 10} more</li>" if len(ex.skipped) > 10 else ""
            self.usable.value = (f"<b>{len(ex)}</b> usable examples ({esc(ex.kind)}) in "
                                 f"{len({e.key for e in ex.items})} pictures"
                                 + (f"; {len(ex.skipped)} rows skipped:<ul>{skipped}{more}</ul>" if ex.skipped else ""))

        def read(job):  # a folder with captions.csv and qa.csv: the file the chosen model trains on
            self.usable.value, self.examples = "", None  # an earlier check's count is not this data's
            model = self.model.loaded if self.model.loaded is not None else typed(self.model.name.value)
            return read_examples(self._data(), kind=wanted_kind(model) if model else None)

        self.run(read, done, label="reading the data...")

    # -- training ----------------------------------------------------------------------------------
    def _draw(self) -> None:
        from matplotlib.figure import Figure  # not pyplot: no window, safe from a thread

        fig = Figure(figsize=(5.5, 2.6))
        ax = fig.add_subplot(1, 1, 1)
        if self.steps:
            ax.plot(*zip(*self.steps), color="#1f77b4", lw=1, label="train loss (step)")
        val = [(r["step"], r["val_loss"]) for r in self.epochs_seen if "step" in r]
        if val:
            ax.plot(*zip(*val), "s-", color="#ff7f0e", label="validation loss (epoch)")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.legend(fontsize=7)
        fig.tight_layout()
        self.curve.value = png(fig)

    def _progress(self, rec: dict, job) -> None:
        if "loss" in rec and "epoch" not in rec:
            self.steps.append((rec["step"], rec["loss"]))
            if rec["step"] % 10 == 0:
                self._draw()
        else:
            self.epochs_seen.append({**rec, "step": self.steps[-1][0] if self.steps else 0})
            self._draw()
            metric = next((k for k in ("CIDEr", "VQA accuracy", "R@1") if k in rec), None)
            self.status.value = esc(f"epoch {rec['epoch']}: validation loss {rec['val_loss']:.3f}"
                                    + (f", {metric} {rec[metric]:.3f}" if metric else ""))

    def train(self) -> None:
        """Fine-tune with the chosen data, model and options; the live curve updates as it trains."""
        import mmkit

        self.steps, self.epochs_seen, self._stop_training = [], [], False

        def work(job):
            self.training = True
            try:
                return fit(job)
            finally:
                self.training = False

        def fit(job):
            data = self._data()
            m = self.model.get("attention_maps")  # every trainable family can do attention_maps: any model loads
            opts = dict(self.options, epochs=self.epochs.value, lora=self.lora.value, progress=False)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", OutOfDomainWarning)
                warnings.filterwarnings("ignore", message="finetune: ")  # its notes: shown under the scores
                return mmkit.finetune(m, data, callback=lambda rec: self._progress(rec, job),
                                      should_stop=lambda: self._stop_training or job.cancelled, **opts)

        self.run(work, self._show_result, label="training...")

    def stop(self) -> None:
        """While training: end after this step and keep the best epoch so far (the result is shown)."""
        if self.training:
            self._stop_training = True
            self.status.value = "stopping after this step; the best epoch so far is kept..."
        else:
            super().stop()

    def _show_result(self, ft) -> None:
        self.result = ft
        s = ft.scores
        m = s["metric"]
        rows = "".join(f"<tr><td>{esc(k)}</td><td>{s['before'].get(k, float('nan')):.3f}</td>"
                       f"<td>{s['after'].get(k, float('nan')):.3f}</td></tr>" for k in s["after"])
        words = f"; new words: {esc(', '.join(ft.added_words))}" if ft.added_words else ""
        notes = "".join(f"<div style='color:#7a4f00'>note: {esc(n)}</div>" for n in getattr(ft, "notes", []))
        self.scores_html.value = (f"<b>{esc(m)}</b> on {s['n_val']} validation examples, best epoch {s['best_epoch']} "
                                  f"({esc(ft.stopped)}){words}<table><tr><th></th><th>before</th><th>after</th></tr>"
                                  f"{rows}</table>{notes}")
        self.curve.value = png(ft.plot())
        self.compare.children = self._comparison(ft)
        self.save_button.disabled = False
        self.open_button.disabled = ft.task != "caption"

    def _comparison(self, ft, n: int = 4) -> list:
        """Validation pictures side by side: the base model's output and the fine-tuned one's."""
        import mmkit
        from mmkit.tuning.evaluate import predictions

        if ft.task not in ("caption", "vqa") or not ft.val:
            return [w.HTML("<i>before/after pictures are shown for captioning and VQA</i>")]
        ex = ft.val[:n]
        before = predictions(mmkit.load_model(self.model.name.value.strip() if self.model.loaded is None
                                              else self.model.loaded), ft.task, ex)
        after = predictions(ft.model, ft.task, ex)
        cells = []
        for e, b, a in zip(ex, before, after):
            truth = e.text or f"{e.question} -> {e.answer}"
            cells.append(w.VBox([w.Image(value=preview_png(e.image, 128), format="png"),
                                 w.HTML(f"<div style='width:150px;font-size:90%'><b>truth</b>: {esc(truth)}<br>"
                                        f"<b>before</b>: {esc(b)}<br><b>after</b>: {esc(a)}</div>")]))
        return [w.HTML("<b>Validation pictures, before and after</b>"), w.HBox(cells)]

    # -- save and open -----------------------------------------------------------------------------
    def save(self) -> None:
        """Save the fine-tuned model (merged, or LoRA adapters only) where `save to` says."""
        if self.result is None:
            self.show_error("train first: nothing to save yet")
            return
        try:
            path = self.result.save(typed(self.save_path.value) or "finetuned-model", merge=self.merge.value)
        except InputError as e:
            self.show_error(e)
            return
        self.clear_error()
        self.saved.value = f"saved to <code>{esc(path)}</code>: <code>mmkit.load_model({esc(repr(str(path)))})</code>"

    def open_app(self):
        """A CaptionApp on the fine-tuned captioner, shown under the panel; returns it."""
        from .caption_app import CaptionApp

        if self.result is None or self.result.task != "caption":
            self.show_error("train a captioner first: CaptionApp needs a captioning model")
            return None
        app = CaptionApp(self.result.model, background=self.background, server="")
        self.app_box.children = [app]
        return app
