"""AnnotationPanel: walk a folder of images, see the model's suggested caption and tags, accept or edit, move on.

Results go to a COCO caption JSON file through `mmkit.annotations.AnnotationStore`, which saves every
accepted item (under a lock shared with other panels and scripts, write temp + fsync + rename) before the next
image is shown; re-opening the panel on the same folder resumes at the first image not yet accepted or skipped.
File names that are not UTF-8 are shown with \xff escapes and saved losslessly.
"""
from __future__ import annotations

from pathlib import Path

import ipywidgets as w

from mmkit.errors import InputError

from .base import ModelChoice, Panel, error_text, esc, preview_png

DEFAULT_TAGS = ("red", "green", "blue", "circle", "square", "triangle", "small", "large")  # words every tagger knows
TOP_TAGS = 3  # suggested tags: the most probable labels...
MIN_TAG_PROB = 0.1  # ...that reach this zero-shot probability


class AnnotationPanel(Panel):
    """Model-assisted captioning of a folder: suggested caption and tags, editable, saved as COCO JSON.

    Args:
        folder: the folder of images (walked recursively, sorted by path).
        out: the COCO caption JSON file (default: `captions.json` inside the folder).
        caption_model: a Loaded captioning model or a name; None: no suggested caption.
        tag_model: a Loaded CLIP/ALIGN model or a name, for zero-shot tags; None: no suggested tags.
        labels: the tag vocabulary the tag model chooses from.
        background: compute suggestions in a thread (False: in the calling thread, for tests).
    """

    def __init__(self, folder, out=None, caption_model="blip-caption", tag_model="clip", labels=DEFAULT_TAGS,
                 background: bool = True):
        from mmkit.annotations import AnnotationStore, display_name, image_files
        from mmkit.annotations.files import left_out, left_out_note

        self._display = display_name

        self.folder = Path(folder).expanduser()
        self.files = image_files(self.folder)  # none: InputError, naming the HEIC photos and PDFs it leaves out
        note = left_out_note(left_out(self.folder))  # HEIC photos and PDFs: named, with the fix, under the header
        self.left_out = w.HTML(f"<span style='color:#7a4f00'>{esc(note)}.</span>" if note else "")
        self.store = AnnotationStore(out if out is not None else self.folder / "captions.json")
        self.caption_model = ModelChoice(caption_model, "caption model") if caption_model is not None else None
        self.tag_model = ModelChoice(tag_model, "tag model") if tag_model is not None else None
        self.labels = [str(x) for x in labels]
        self.index = self.store.first_pending(self.files)
        self.image = None  # the current image (RGB PIL), None when it could not be read
        self.suggestion: dict = {}  # {"caption": str, "tags": {label: prob}} for the current image
        self.header = w.HTML("")
        self.preview = w.Image(format="png", layout=w.Layout(width="256px"))
        self.file_html = w.HTML("")
        self.suggested = w.HTML("")  # the model's suggestion, escaped
        self.notice = w.HTML("")  # out-of-domain notices of the suggestion, under it (filled by Panel)
        self.caption = w.Textarea(value="", description="caption", placeholder="the caption to save",
                                  layout=w.Layout(width="480px", height="60px"))
        self.tags = w.Text(value="", description="tags", placeholder="comma-separated, e.g. red, circle",
                           layout=w.Layout(width="480px"))
        self.accept_button = w.Button(description="Accept & next", button_style="success", icon="check")
        self.skip_button = w.Button(description="Skip", icon="forward")
        self.back_button = w.Button(description="Back", icon="backward")
        self.saved = w.HTML("")  # where and how much was saved
        self.accept_button.on_click(lambda _: self.accept())
        self.skip_button.on_click(lambda _: self.skip())
        self.back_button.on_click(lambda _: self.back())
        models = [c.box for c in (self.caption_model, self.tag_model) if c is not None]
        super().__init__([
            self.header, self.left_out, *models,
            w.HBox([self.preview, w.VBox([self.file_html, self.suggested, self.notice, self.caption, self.tags,
                                          w.HBox([self.back_button, self.skip_button, self.accept_button])])]),
            self.saved,
        ], background)
        self.show()

    # -- navigation ------------------------------------------------------------------------------
    @property
    def current(self) -> str | None:
        """The current file name (relative to the folder), None when every image is done."""
        return self.files[self.index] if self.index < len(self.files) else None

    def show(self, index: int | None = None) -> None:
        """Show image `index` (default: the current one) with its saved or suggested caption and tags."""
        from mmkit.data import load_image

        if self.job is not None and self.busy:
            self.stop()  # a suggestion still running for the previous image is dropped
        if index is not None:
            self.index = max(0, min(int(index), len(self.files)))
        self.clear_error()
        self.show_notices([])  # the previous picture's notes are not about this one
        self.suggestion, self.image = {}, None
        self.caption.value, self.tags.value, self.suggested.value = "", "", ""
        self._render_header()
        name = self.current
        done = name is None
        for b in (self.accept_button, self.skip_button):
            b.disabled = done
        self.back_button.disabled = self.index == 0
        if done:
            self.preview.value = b""
            self.file_html.value = (f"<b>All {len(self.files)} images are done</b> ({self._tally()}). The captions "
                                    f"are in {esc(self._display(str(self.store.path)))}.")
            try:
                self.store.flush()  # a large file's journal goes into the JSON file now
            except Exception as e:  # noqa: BLE001 - shown in the panel; every save is already on disk
                self.show_error(e)
            return
        self.file_html.value = f"<b>{esc(self._display(name))}</b>"
        try:
            self.image = load_image(self.folder / name)
        except InputError as e:
            self.preview.value = b""
            self.show_error(f"{e} (press Skip to go on)")
            return
        self.preview.value = preview_png(self.image)
        saved = self.store.annotation(name)
        if saved is not None:  # came back to an accepted image: show what was saved
            self.caption.value, self.tags.value = saved["caption"], ", ".join(saved.get("tags", []))
            self.suggested.value = "<span style='color:#1b5e20'>accepted earlier; edit and accept again to change it</span>"
            return
        self.suggest()

    def suggest(self) -> None:
        """Ask the models for a caption and tags for the current image (fills the boxes unless typed in)."""
        import mmkit

        if self.image is None or (self.caption_model is None and self.tag_model is None):
            return
        image, name = self.image, self.current

        def work(job):
            out = {}
            if self.caption_model is not None:
                m = self.caption_model.get("caption")
                job.check()
                out["caption"] = mmkit.caption(m, image)
                out["model"] = m.spec.name
            if self.tag_model is not None and len(self.labels) >= 2:
                m = self.tag_model.get("zero_shot")
                job.check()
                out["tags"] = mmkit.zero_shot(m, image, self.labels)
            return name, out

        def done(res):
            for_name, out = res
            if for_name != self.current:  # the user moved on meanwhile
                return
            self.suggestion = out
            tags = [t for t, p in sorted(out.get("tags", {}).items(), key=lambda kv: -kv[1])[:TOP_TAGS]
                    if p >= MIN_TAG_PROB]
            parts = []
            if "caption" in out:
                parts.append(f"suggested caption: <i>{esc(out['caption'])}</i>")
                if not self.caption.value.strip():
                    self.caption.value = out["caption"]
            if tags:
                probs = out["tags"]
                parts.append("suggested tags: " + esc(", ".join(f"{t} ({probs[t]:.2f})" for t in tags)))
                if not self.tags.value.strip():
                    self.tags.value = ", ".join(tags)
            self.suggested.value = "<br>".join(f"<span style='color:#555'>{p}</span>" for p in parts)

        self.run(work, done, "suggesting a caption and tags...")

    def accept(self, caption: str | None = None, tags: str | None = None) -> None:
        """Save the caption and tags of the current image (persisted before the next image shows)."""
        if caption is not None:
            self.caption.value = caption
        if tags is not None:
            self.tags.value = tags
        name = self.current
        if name is None:
            return
        try:
            if self.image is None:
                raise InputError(f"{self._display(name)} could not be read, so it cannot be captioned; press Skip")
            extra = {}
            if self.suggestion.get("caption"):
                extra.update(suggested_caption=self.suggestion["caption"], model=self.suggestion.get("model", ""))
            self.store.accept(name, self.caption.value, tags=self.tags.value,
                              width=self.image.size[0], height=self.image.size[1], **extra)
        except Exception as e:  # an empty caption, a file changed on disk, a full disk: shown, nothing moves on
            self.show_error(e)
            return
        self._saved_note()
        self.show(self.index + 1)

    def skip(self) -> None:
        """Mark the current image as skipped (saved) and show the next."""
        name = self.current
        if name is None:
            return
        try:
            self.store.skip(name)
        except Exception as e:
            self.show_error(e)
            return
        self._saved_note()
        self.show(self.index + 1)

    def close(self) -> None:
        """Fold a large file's journal into the JSON file, then close the widget."""
        store = getattr(self, "store", None)  # None: the panel failed before it opened the file
        try:
            if store is not None and store.journal_path.exists():
                store.flush()
        except Exception as e:  # noqa: BLE001 - every save is on disk already; the journal stays for next time
            self.show_error(e)
        finally:
            super().close()

    def back(self) -> None:
        """Show the previous image (its saved caption can be edited and accepted again)."""
        if self.index > 0:
            self.show(self.index - 1)

    # -- display ---------------------------------------------------------------------------------
    def _tally(self) -> str:
        """'21 captioned, 3 skipped' of this folder's images (a skipped one has no caption to train on)."""
        files = set(self.files)
        skipped = len(self.store.skipped & files)
        return f"{len(self.store.done & files) - skipped} captioned, {skipped} skipped"

    def _render_header(self) -> None:
        self.header.value = (f"<b>Annotating</b> {esc(self._display(str(self.folder)))}: image "
                             f"{min(self.index + 1, len(self.files))} of {len(self.files)} &middot; {self._tally()} "
                             f"&middot; saving to {esc(self._display(self.store.path.name))}")

    def _saved_note(self) -> None:
        self.saved.value = (f"<span style='color:#1b5e20'>saved: {len(self.store)} captions in "
                            f"{esc(self._display(str(self.store.path)))}</span>")

    def show_error(self, e: BaseException | str) -> None:
        """Show an error; bytes of a file name that are not UTF-8 appear as \\xff escapes."""
        super().show_error(self._display(e if isinstance(e, str) else error_text(e)))

    def on_error(self, e: BaseException) -> None:
        """A failed suggestion is only a note: the caption can still be typed and accepted."""
        self.show_error(f"no suggestion: {error_text(e)}")
