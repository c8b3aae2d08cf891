"""ImagePicker: choose an image by upload, from the bundled sample photos, or from the ShapesWorld generator.

On Colab the upload is `google.colab.files.upload()` and a path box instead of FileUpload: ipywidgets 7.7.1's
FileUpload (Colab's version) loses files over about 1 MB there (ipywidgets issue 3452).
"""
from __future__ import annotations

import sys
from pathlib import Path

import ipywidgets as w

from mmkit.errors import InputError

from mmkit.data.styles import STYLES, TEST_STYLES

from .base import (IPYWIDGETS_MAJOR, LABEL_STYLE, control_layout, error_html, esc, over_limit, preview_png, typed,
                   upload_error, wrap_row)

MAX_UPLOAD_MB = 20  # larger uploads are refused with a message (a phone photo is 2-8 MB); MB: 10**6 bytes
SPLITS = ("test", "val", "train", "comp_test")  # ShapesWorld splits offered; "test" is held out from training
NONE = "(choose)"  # first entry of the samples list


def look_options() -> list[tuple[str, str]]:
    """(label, style) for the look dropdown: every ShapesWorld style, the held-out ones (never in the bundled
    models' training) marked as such."""
    return [(f"{name} (held out)" if name in TEST_STYLES else name, name) for name in STYLES]


def on_colab() -> bool:
    """Whether this kernel runs on Google Colab (its `google.colab` module is loaded there, and only there)."""
    return "google.colab" in sys.modules


def uploaded_files(value) -> list[tuple[str, bytes, int]]:
    """(name, content, declared size) of each file in a FileUpload value, on ipywidgets 7.7 or 8.

    ipywidgets 8: a tuple of dicts with 'name', 'size' and 'content' (a memoryview).
    ipywidgets 7.7: a dict name -> {'content': bytes, 'metadata': {'name', 'size', ...}}.
    """
    if not value:
        return []
    if isinstance(value, dict):  # 7.7
        items = [(name, v.get("content", b""), (v.get("metadata") or {}).get("size")) for name, v in value.items()]
    else:  # 8
        items = [(v.get("name", "upload"), v.get("content", b""), v.get("size")) for v in value]
    out = []
    for name, content, size in items:
        content = bytes(content) if content is not None else b""
        out.append((str(name), content, int(size) if isinstance(size, (int, float)) else len(content)))
    return out


class ImagePicker(w.VBox):
    """Upload an image, pick a bundled sample photo, or generate a ShapesWorld scene; shows a preview.

    `image` is the chosen RGB PIL image (None until one is chosen, and after a choice that failed: see refuse),
    `label` says where it came from,
    `scene` is the ShapesWorld Scene (ground truth) when the image came from the generator.
    Functions registered with `on_change(fn)` are called with the picker when the image changes.

    On Colab, "Upload from computer" (google.colab.files.upload, which also saves the file in the working
    folder) and a path box (a file uploaded in Colab's Files panel, or on a mounted Drive) replace FileUpload.

    Args:
        source: "shapes" (a held-out ShapesWorld scene is chosen at start), "sample" or None (nothing yet).
        preview_size: the preview's longer side in pixels.
        max_upload_mb: larger uploads are refused with a message (FileUpload's stay in memory, never on disk);
            in MB of 10**6 bytes, as file managers count them.
        colab: use Colab's upload controls; default: whether this runs on Colab (on_colab()).
    """

    def __init__(self, source: str | None = "shapes", preview_size: int = 192, max_upload_mb: float = MAX_UPLOAD_MB,
                 colab: bool | None = None):
        from mmkit.data import SAMPLES

        self.colab = on_colab() if colab is None else bool(colab)

        self.max_upload_mb = max_upload_mb
        self.image = None
        self.label = ""
        self.scene = None
        self.preview_size = preview_size
        self._callbacks: list = []
        self.upload = w.FileUpload(accept="image/*", multiple=False, description="Upload")
        self.samples = w.Dropdown(options=[NONE] + sorted(SAMPLES), value=NONE, description="sample photo",
                                  style=LABEL_STYLE, layout=control_layout("260px"))
        self.split = w.Dropdown(options=list(SPLITS), value="test", description="split", style=LABEL_STYLE,
                                layout=control_layout("150px"))
        self.index = w.BoundedIntText(value=0, min=0, max=9999, description="scene #", style=LABEL_STYLE,
                                      layout=control_layout("130px"))
        self.objects = w.Dropdown(options=[("1-2 objects", (1, 2)), ("1 object", (1, 1)), ("2 objects", (2, 2))],
                                  value=(1, 2), description="objects", style=LABEL_STYLE,
                                  layout=control_layout("170px"))
        self.look = w.Dropdown(options=look_options(), value="plain", description="look", style=LABEL_STYLE,
                               layout=control_layout("230px"))  # ShapesWorld's styles, held-out ones marked
        self.generate = w.Button(description="Generate", icon="random", layout=w.Layout(width="auto"))
        self.preview = w.Image(format="png", layout=control_layout(f"{preview_size}px"))
        self.caption = w.HTML("<i>no image yet</i>")  # where the image came from (escaped)
        self.error = w.HTML("")
        if IPYWIDGETS_MAJOR >= 8:
            self.upload.observe(self._on_upload, names="value")
        else:  # 7.7 rebuilds value on each _counter bump; a re-upload of the same file leaves value equal
            self.upload.observe(lambda _: self._on_upload({"new": self.upload.value}), names="_counter")
        self.samples.observe(self._on_sample, names="value")
        self.generate.on_click(lambda _: self.choose_scene())
        # Colab: its own upload dialog and a path box (FileUpload stays an attribute, not shown)
        self.colab_upload = w.Button(description="Upload from computer", icon="upload",
                                     layout=w.Layout(width="200px"))
        self.path = w.Text(value="", placeholder="/content/photo.jpg", description="or a path", style=LABEL_STYLE,
                           layout=control_layout("320px"))
        self.open_path = w.Button(description="Open", layout=w.Layout(width="80px"))
        self.colab_upload.on_click(lambda _: self.upload_from_colab())
        self.open_path.on_click(lambda _: self.open_file())
        upload_row = ([wrap_row([self.colab_upload, self.samples]), wrap_row([self.path, self.open_path])]
                      if self.colab else [wrap_row([self.upload, self.samples])])
        super().__init__([
            w.HTML(f"<b>Image</b>: upload one (up to {max_upload_mb:g} MB), pick a sample photo, or generate a scene"),
            *upload_row,
            wrap_row([self.split, self.index, self.objects, self.look, self.generate]),
            self.preview, self.caption, self.error,
        ], layout=w.Layout(max_width="100%"))
        if source == "shapes":
            self.choose_scene()
        elif source == "sample":
            self.samples.value = sorted(SAMPLES)[0]

    # -- public --------------------------------------------------------------------------------
    def on_change(self, fn) -> None:
        """Call fn(picker) whenever a new image is chosen."""
        self._callbacks.append(fn)

    def set_image(self, image, label: str = "image", scene=None, file_name: str | None = None) -> None:
        """Use any image load_image accepts (path, bytes, PIL, array); errors show in the picker.

        file_name: the uploaded file's name, which an error then names instead of "bytes input (N bytes)".
        """
        from mmkit.data import load_image

        try:
            im = load_image(image)
        except InputError as e:
            self.refuse(e if file_name is None else upload_error(e, image, file_name))
            return
        self.image, self.label, self.scene = im, label, scene
        self.error.value = ""
        if not label.startswith("sample photo: "):
            self.samples.value = NONE  # so picking the same sample again counts as a change
        self.preview.value = preview_png(im, self.preview_size)
        text = f"{esc(label)} <span style='color:#666'>({im.size[0]}x{im.size[1]})</span>"
        if scene is not None:
            text += f"<br>ground truth: <i>{esc(scene.caption)}</i>"
        self.caption.value = text
        for fn in self._callbacks:
            fn(self)

    def refuse(self, error) -> None:
        """Show why the last choice failed and drop the picture shown before it: a panel run next says no image is
        chosen, rather than answering for the previous picture as if it were the new one."""
        self.error.value = error_html(error)
        had = self.image is not None
        self.image, self.label, self.scene = None, "", None
        self.preview.value = b""
        self.caption.value = "<i>no image: the last choice failed (see below); choose another</i>"
        if had:
            for fn in self._callbacks:
                fn(self)

    def choose_scene(self, index: int | None = None, split: str | None = None, look: str | None = None) -> None:
        """Show ShapesWorld scene `index` of `split`, drawn in `look` (a style of mmkit.data.styles; default:
        the widgets' values). The same index gives the same objects and caption in every look."""
        from mmkit.data import ShapesWorld

        if look is not None and look not in STYLES:
            self.error.value = error_html(InputError(  # a caller's mistake, not a choice: the picture stays
                f"look={look!r} is not a ShapesWorld style; choose one of {', '.join(STYLES)}"))
            return
        if index is not None:
            self.index.value = index
        if split is not None:
            self.split.value = split
        if look is not None:
            self.look.value = look
        i, look = self.index.value, self.look.value
        lo, hi = self.objects.value
        scene = ShapesWorld(i + 1, seed=0, split=self.split.value, objects=(lo, hi), style=look)[i]
        where = f"ShapesWorld {self.split.value} #{i}" + ("" if look == "plain" else f", {look} look")
        self.set_image(scene.image, where, scene=scene)

    def choose_sample(self, name: str) -> None:
        """Show a bundled sample photo by name (see mmkit.data.SAMPLES)."""
        if self.samples.value == name:
            self._on_sample({"new": name})
        else:
            self.samples.value = name

    def upload_from_colab(self) -> None:
        """Colab's upload dialog (google.colab.files.upload): the chosen file becomes the image."""
        try:
            from google.colab import files

            got = files.upload()
        except ImportError:
            self.error.value = error_html("the Colab upload needs Google Colab; use the Upload button elsewhere")
            return
        except Exception as e:  # the dialog was closed, the browser refused ...
            self.refuse(f"the upload did not finish ({type(e).__name__}: {e}); try again, or "
                                          "upload the file in Colab's Files panel and type its path")
            return
        if got:
            name, content = list(got.items())[-1]
            self._take_upload(str(name), bytes(content), len(content))

    def open_file(self, path: str | None = None) -> None:
        """Use the image file at `path` (default: the path box), e.g. one uploaded in Colab's Files panel."""
        text = typed(self.path.value if path is None else str(path))
        if not text:
            self.error.value = error_html("type the path of an image file, e.g. /content/photo.jpg (upload it in "
                                          "Colab's Files panel first)")
            return
        p = Path(text).expanduser()
        if not p.is_file():
            self.refuse(f"{text} is not a file; check the path (Colab's Files panel: right-click "
                                          "a file, Copy path)")
            return
        shown = over_limit(p.stat().st_size, self.max_upload_mb)
        if shown:
            self.refuse(f"{p.name} is {shown}; the limit is "
                                          f"{self.max_upload_mb:g} MB. Resize the image or save it as JPEG.")
            return
        self.set_image(p, f"file: {p.name}")

    def require_image(self):
        """The chosen image, or InputError telling the user to choose one."""
        if self.image is None:
            if self.error.value:
                raise InputError("no image: the last one chosen could not be used (the picker says why); upload "
                                 "another, pick a sample photo, or generate a scene")
            raise InputError("no image chosen: upload one, pick a sample photo, or generate a scene")
        return self.image

    # -- events --------------------------------------------------------------------------------
    def _on_upload(self, change) -> None:
        files = uploaded_files(change["new"])
        if not files:
            return
        if IPYWIDGETS_MAJOR >= 8:
            self.upload.value = ()  # forget it, so uploading the same file again is seen as a change
        self._take_upload(*files[-1])

    def _take_upload(self, name: str, content: bytes, size: int) -> None:
        shown = over_limit(max(size, len(content)), self.max_upload_mb)
        if shown:
            self.refuse(f"{name!r} is {shown}; the limit is {self.max_upload_mb:g} MB. "
                                          "Resize the image or save it as JPEG, then upload it again.")
            return
        if not content:
            self.refuse(f"{name!r} is empty (0 bytes); choose another file")
            return
        self.set_image(content, f"upload: {name}", file_name=name)

    def _on_sample(self, change) -> None:
        from mmkit.data import sample_path

        name = change["new"]
        if name == NONE:
            return
        try:
            path = sample_path(name)
        except InputError as e:
            self.refuse(e)
            return
        self.set_image(path, f"sample photo: {name}")


def simulate_upload(upload: w.FileUpload, name: str, content: bytes, mime: str = "image/png") -> None:
    """Put a file into a FileUpload as the browser would (for tests and scripted demos), on 7.7 or 8."""
    if IPYWIDGETS_MAJOR >= 8:
        import datetime

        stamp = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)  # a fixed, valid last_modified
        upload.value = ({"name": name, "type": mime, "size": len(content), "content": memoryview(content),
                         "last_modified": stamp},)
    else:  # 7.7: the browser syncs metadata and data, then bumps _counter, which builds value
        upload.metadata = [{"name": name, "type": mime, "size": len(content), "lastModified": 0}]
        upload.data = [content]
        upload._counter += 1
