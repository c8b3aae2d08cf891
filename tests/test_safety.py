"""Safety: weights only from safetensors, never remote code, uploads capped and kept off disk, every
model-written or user-typed text HTML-escaped in every panel."""
import builtins
import io
import json
import os
import pickle
import shutil
import tempfile
from pathlib import Path

import pytest

import mmkit
from mmkit.errors import InputError

XSS = "<img src=x onerror=alert(1)>"
pytestmark = pytest.mark.usefixtures("one_thread")


class Payload:
    """Unpickling this runs code: it creates the marker file (what a malicious .bin would do)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_pickle_weights_are_refused_and_never_unpickled(tmp_path, model_dirs):
    d = tmp_path / "pickled"
    shutil.copytree(model_dirs("clip"), d)
    (d / "model.safetensors").unlink()
    marker = tmp_path / "code-ran"
    with open(d / "pytorch_model.bin", "wb") as f:
        pickle.dump({"weights": Payload(marker)}, f)
    with pytest.raises(InputError) as e:
        mmkit.load_model(str(d))
    assert "safetensors" in str(e.value) and "save_pretrained" in str(e.value)  # says why and the fix
    assert not marker.exists(), "the pickle was loaded"


def test_remote_code_is_never_run(tmp_path, model_dirs):
    marker = tmp_path / "code-ran"
    evil = f"import pathlib\npathlib.Path({str(marker)!r}).touch()\nclass Evil: pass\n"
    # 1. a config asking for a custom architecture through auto_map: refused, its module never imported
    d = tmp_path / "custom"
    shutil.copytree(model_dirs("clip"), d)
    cfg = json.loads((d / "config.json").read_text())
    cfg.update(architectures=["EvilModel"], auto_map={"AutoModel": "evil.Evil", "AutoConfig": "evil.Evil"})
    (d / "config.json").write_text(json.dumps(cfg))
    (d / "evil.py").write_text(evil)
    with pytest.raises(InputError, match="not one mmkit knows"):
        mmkit.load_model(str(d))
    # 2. a known model whose processor files point at custom code: the standard processor is used instead
    d2 = tmp_path / "custom_processor"
    shutil.copytree(model_dirs("clip"), d2)
    for name in ("processor_config.json", "tokenizer_config.json"):
        p = d2 / name
        if p.exists():
            j = json.loads(p.read_text())
            j["auto_map"] = {"AutoProcessor": "evil.Evil", "AutoTokenizer": ["evil.Evil", None]}
            p.write_text(json.dumps(j))
    (d2 / "evil.py").write_text(evil)
    m = mmkit.load_model(str(d2))
    assert type(m.processor).__module__.startswith("transformers.") and not marker.exists()
    # 3. and nothing in mmkit or widgets ever asks for it
    root = Path(mmkit.__file__).parents[1]
    for f in list((root / "mmkit").rglob("*.py")) + list((root / "widgets").rglob("*.py")):
        assert "trust_remote_code=True" not in f.read_text(), f


def test_upload_cap_is_configurable():
    from widgets import ImagePicker
    from widgets.picker import MAX_UPLOAD_MB, simulate_upload

    assert MAX_UPLOAD_MB == 20 and ImagePicker(source=None).max_upload_mb == 20
    p = ImagePicker(source=None, max_upload_mb=0.5)
    simulate_upload(p.upload, "big.png", b"\0" * (600 * 1024))
    assert "limit is 0.5 MB" in p.error.value and p.image is None
    assert "up to 0.5 MB" in p.children[0].value


def test_uploads_are_never_written_to_disk(tmp_path, monkeypatch, scenes):
    """Uploads stay in memory: no file is opened for writing outside the temp dir, whatever the name."""
    from widgets import CaptionApp
    from widgets.picker import simulate_upload

    writes = []
    real_open, real_os_open = builtins.open, os.open

    def spy_open(file, mode="r", *a, **k):
        if any(c in mode for c in "wax+"):
            writes.append(str(file))
        return real_open(file, mode, *a, **k)

    def spy_os_open(path, flags, *a, **k):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            writes.append(str(path))
        return real_os_open(path, flags, *a, **k)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(mmkit, "caption", lambda *a, **k: "a caption")
    app = CaptionApp("shapes-blip-caption" if (Path(mmkit.__file__).parents[1] / "data/models/shapes-blip-caption").exists()
                     else "blip-caption", background=False)
    buf = io.BytesIO()
    scenes[0].image.save(buf, format="PNG")
    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(os, "open", spy_os_open)
    for name in ("../../../escape.png", "/etc/evil.png", "..\\..\\win.png", XSS + ".png"):
        simulate_upload(app.picker.upload, name, buf.getvalue())
        assert app.picker.label == f"upload: {name}"
    monkeypatch.setattr(builtins, "open", real_open)
    monkeypatch.setattr(os, "open", real_os_open)
    tmp = os.path.realpath(tempfile.gettempdir())
    outside = [w for w in writes if not os.path.realpath(w).startswith(tmp)]
    assert outside == [] and sorted(os.listdir(tmp_path)) == []
    assert XSS not in app.picker.caption.value  # the file name is escaped where it is shown


def html_values(widget) -> list[str]:
    """The value of every HTML widget inside widget (recursively)."""
    import ipywidgets

    out = []
    stack = [widget]
    while stack:
        w = stack.pop()
        if isinstance(w, (ipywidgets.HTML, ipywidgets.HTMLMath)):
            out.append(w.value)
        stack.extend(getattr(w, "children", ()) or ())
    return out


def test_every_panel_escapes_model_and_user_text(model_dirs, monkeypatch, tmp_path, scenes):
    """Model outputs, labels, questions, queries and file names set to markup: no HTML widget renders it."""
    from widgets import AnnotationPanel, CaptionApp, CaptionPanel, RetrievalPanel, VQAPanel, ZeroShotPanel
    from widgets.picker import simulate_upload

    monkeypatch.setattr(mmkit, "caption", lambda *a, **k: XSS)
    monkeypatch.setattr(mmkit, "answer", lambda *a, **k: XSS)
    blip, vqa, clip = model_dirs("blip-caption"), model_dirs("vilt-vqa"), model_dirs("clip")
    panels = []

    cap = CaptionPanel(blip, background=False)
    simulate_upload(cap.picker.upload, XSS + ".png", _png(scenes[0].image))
    cap.decoding.prompt.value = XSS
    cap.caption()
    panels.append(cap)
    vqa_panel = VQAPanel(vqa, background=False)
    vqa_panel.ask(XSS)
    panels.append(vqa_panel)
    zs = ZeroShotPanel(clip, labels=(XSS, "blue"), background=False)
    zs.templates.value = XSS + " {}"
    zs.classify()
    panels.append(zs)
    ret = RetrievalPanel(clip, gallery_size=4, background=False)
    ret.set_gallery({XSS: scenes[0].image, "b": scenes[1].image})
    ret.search(XSS)
    panels.append(ret)
    app = CaptionApp(blip, background=False)
    app.caption()
    app.picker.set_image(b"<html>" + XSS.encode() + b"</html>")  # an error message quoting nothing raw
    app._offer("captions.json", "application/json", app.export_json())
    panels.append(app)
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / (XSS.replace("/", "") + ".png")).write_bytes(_png(scenes[0].image))
    ann = AnnotationPanel(folder, caption_model=blip, tag_model=clip, labels=(XSS, "blue"), background=False)
    panels.append(ann)
    for p in panels:
        assert p.error.value == "" or type(p).__name__ == "CaptionApp", p.error.value
        values = html_values(p)
        assert not [v for v in values if "<img" in v], f"{type(p).__name__} renders markup from text"
    assert any("&lt;img src=x onerror=alert(1)&gt;" in v for v in html_values(app))
    assert any("&lt;img" in v for v in html_values(ann))


def _png(im) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()
