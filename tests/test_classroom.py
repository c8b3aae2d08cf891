"""The classroom server (mmkit.classroom): one shared model process that the students' kernels call.

The server runs in a thread of this process on 127.0.0.1; apps are built with `server=url`, as a Voila
kernel does through $MMKIT_MODEL_SERVER. The Voila side is exercised by tests_browser/test_classroom_load.py.
"""
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ipywidgets")

from mmkit.classroom import ENV, ModelServer, RemoteCaptioner  # noqa: E402
from mmkit.classroom.__main__ import app_notebook, voila_command  # noqa: E402
from mmkit.config import models_dir  # noqa: E402
from mmkit.errors import InputError  # noqa: E402
from widgets import CaptionApp  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MODEL = "shapes-blip-caption"


@pytest.fixture(scope="module")
def server():
    if not (models_dir() / MODEL / "config.json").exists():
        pytest.skip(f"bundled model {MODEL} is not in data/models (make models)")
    s = ModelServer(MODEL).start()
    yield s
    s.stop()


def test_remote_app_gives_the_local_captions_and_maps(server):
    remote = CaptionApp(background=False, server=server.url)
    local = CaptionApp(MODEL, background=False, server="")
    assert "bundled model (offline): shapes-blip-caption" in remote.model.info.value  # before any caption
    assert remote.model.name.disabled
    for i in range(2):
        for app in (remote, local):
            app.picker.choose_scene(i, split="test")
            app.caption()
            assert not app.dialog_open, app.dialog_message.value
        assert remote.result == local.result == remote.picker.scene.caption
        assert remote.maps.words == local.maps.words and remote.maps.methods == local.maps.methods
        for method in local.maps.methods:
            for k in range(len(local.maps.words)):
                assert np.allclose(remote.maps.for_token(k, method=method), local.maps.for_token(k, method=method),
                                   atol=1e-4)
    remote.show_word(1)
    assert remote.attention.value[:4] == b"\x89PNG" and remote.selected == 1
    remote.decoding.method.value = "beam"
    remote.caption()
    assert remote.history[-1]["decoding"].startswith("beam search") and remote.history[-1]["model"] == MODEL


def test_each_student_keeps_their_own_history(server):
    a, b = CaptionApp(background=False, server=server.url), CaptionApp(background=False, server=server.url)
    a.picker.choose_scene(0, split="test")
    b.picker.choose_scene(3, split="test")
    a.caption()
    b.caption()
    a.caption()
    assert [h["image"] for h in a.history] == ["ShapesWorld test #0"] * 2
    assert [h["image"] for h in b.history] == ["ShapesWorld test #3"] and b.result != a.result


def test_photo_notice_travels_from_the_server(server):
    app = CaptionApp(background=False, server=server.url)
    app.picker.choose_sample("cat")
    app.caption()
    assert app.result and "Note:" in app.notice.value and not app.dialog_open


def test_errors_name_the_fix(server):
    with pytest.raises(InputError, match="unknown caption options"):
        RemoteCaptioner(server.url).caption(CaptionApp(background=False, server="").picker.image, bogus=1)
    body = json.dumps({"image": "bm90IGFuIGltYWdl", "kwargs": {}}).encode()  # base64 of "not an image"
    req = urllib.request.Request(server.url + "/caption", data=body, method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=30)
    assert e.value.code == 400
    down = CaptionApp(background=False, server="http://127.0.0.1:9")  # nothing listens there
    assert "does not answer" in down.model.info.value
    down.caption()
    assert down.dialog_open and "make classroom" in down.dialog_message.value


def test_kernel_with_a_server_never_imports_torch(server):
    code = ("import sys; from widgets import CaptionApp\n"
            "app = CaptionApp(background=False); app.picker.choose_scene(0, split='test'); app.caption()\n"
            "app.show_word(0); assert app.result and app.attention.value, app.dialog_message.value\n"
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    env = dict(os.environ, **{ENV: server.url}, MPLBACKEND="Agg", PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_served_notebook_is_the_app_alone(tmp_path):
    nb = json.loads(app_notebook(tmp_path).read_text())
    code = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    assert code[-1].rstrip().endswith("\napp") and "CaptionApp(" in code[-1]
    assert not any("assert" in c for c in code)  # the course's check cells are not run per student
    cmd = voila_command(tmp_path / "caption_app.ipynb", 8866, 8)
    assert "--preheat_kernel=True" in cmd and "--pool_size=8" in cmd
    assert "--preheat_kernel=True" not in voila_command(tmp_path / "x.ipynb", 8866, 0)
