"""The classroom server (mmkit.classroom): one shared model process that the students' kernels call.

The server runs in a thread of this process on 127.0.0.1; apps are built with `server=url`, as a Voila
kernel does through $MMKIT_MODEL_SERVER. The simulated student's protocols (mmkit.classroom.wsproto) are
checked against jupyter_server's own framing and a real CaptionApp's widget states; one protocol-level student
uses `python -m mmkit.classroom` end to end. The load test at CI size (6 students, 1 minute) runs with
MMKIT_CLASSROOM_LOAD=1 (`make test-classroom`); in browsers: tests_browser/test_classroom_load.py.
"""
import asyncio
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
from mmkit.classroom.student import Page, history_rows, text_of  # noqa: E402
from mmkit.classroom.wsproto import KernelChannel, Widgets, message, pack_v1, put_buffers, unpack_v1  # noqa: E402
from mmkit.config import models_dir  # noqa: E402
from mmkit.errors import InputError  # noqa: E402
from mmkit.testing import load_script  # noqa: E402
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


def test_remote_maps_of_a_wide_picture_lie_on_the_picture_the_model_was_given(server, draw_shape):
    """The server's model is given a 2:1 drawing cropped to a 4:3 window around its shape (or padded to 4:3 when
    its shapes span more); the maps it sends lie on that picture, so the client crops or pads its own copy the
    same way (before, the maps were stretched over the picture as given)."""
    import mmkit
    from PIL import ImageDraw

    image = draw_shape("triangle", draw_shape.known["green"], (235, 225, 200), (300, 150), 0.7)
    spread = draw_shape("triangle", draw_shape.known["green"], (235, 225, 200), (300, 150), 0.3)
    ImageDraw.Draw(spread).ellipse((5, 50, 55, 100), fill=draw_shape.known["red"])
    ImageDraw.Draw(spread).ellipse((245, 50, 295, 100), fill=draw_shape.known["red"])
    for picture, size in ((image, (200, 150)), (spread, (300, 225))):
        res = RemoteCaptioner(server.url).caption(picture)
        local = mmkit.attention_maps(MODEL, picture, res.caption)
        assert res.maps.image.size == local.image.size == size
        assert np.array_equal(np.asarray(res.maps.image), np.asarray(local.image))
        assert res.maps.offset == local.offset


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


# -- the simulated student (mmkit.classroom.student, wsproto) -------------------------------------------------------
def test_v1_frames_are_jupyter_servers_own():
    conn = pytest.importorskip("jupyter_server.services.kernels.connection.base")
    _, parts = message("s", "comm_msg", {"comm_id": "c", "data": {"method": "custom"}})
    parts = parts + [b"\x89PNG\x00binary", b""]  # buffers, an empty one too
    frame = pack_v1("shell", parts)
    assert conn.deserialize_msg_from_ws_v1(frame) == ("shell", parts)
    theirs = conn.serialize_msg_to_ws_v1(parts, "iopub")
    assert unpack_v1(theirs) == ("iopub", parts)
    legacy = conn.serialize_binary_message({"header": {}, "parent_header": {}, "metadata": {}, "content": {},
                                            "buffers": [b"x" * 100]})
    with pytest.raises(ValueError, match="not a v1"):  # the old framing is refused, not misread
        unpack_v1(legacy)


def app_states(app) -> tuple[dict, list, list]:
    """What the kernel's request_states sends for every live widget (ipywidgets' own code)."""
    from ipywidgets.widgets import widget

    instances = getattr(widget, "_instances", None) or widget.Widget.widgets  # ipywidgets 8; 7.7
    full = {mid: {"model_name": wd._model_name, "state": wd.get_state(drop_defaults=False)}
            for mid, wd in list(instances.items())}
    return widget._remove_buffers(full)


class Recorder:
    """A stand-in websocket: keeps the frames a KernelChannel writes."""

    def __init__(self):
        self.frames = []

    def write_message(self, frame, binary=False):
        self.frames.append(unpack_v1(frame))

    async def read_message(self):
        await asyncio.sleep(3600)


def test_student_finds_and_drives_a_real_app(server):
    app = CaptionApp(background=False, server=server.url)
    for i in (2, 5):
        app.picker.choose_scene(i, split="test")
        app.caption()
    app.show_word(0)
    states, paths, buffers = app_states(app)
    assert buffers  # the preview and the map are PNG bytes sent as buffers

    async def check():
        ch = KernelChannel(Recorder(), "session")
        ch.control = "ctl"
        ch._on_message("iopub", "comm_msg", {}, {"comm_id": "ctl", "data": {
            "method": "update_states", "states": states, "buffer_paths": paths}}, buffers)
        page = Page(ch, app.model_id)
        assert (page.caption, page.generate, page.scene) == (app.button.model_id, app.picker.generate.model_id,
                                                             app.picker.index.model_id)
        assert (page.history, page.words, page.image) == (app.history_html.model_id, app.words.model_id,
                                                          app.attention.model_id)
        assert ch.widgets.state(page.image)["value"] == app.attention.value[:]
        assert [row[1] for row in page.rows()] == ["ShapesWorld test #5", "ShapesWorld test #2"]
        assert page.rows()[0][2] == app.result and page.problems() == []
        ch.click(page.caption)
        ch.update(page.decoding, index=1)
        (_, click), (_, update) = ch.ws.frames
        assert json.loads(click[3]) == {"comm_id": app.button.model_id,
                                        "data": {"method": "custom", "content": {"event": "click"}}}
        assert json.loads(update[0])["msg_type"] == "comm_msg"
        assert json.loads(update[3])["data"] == {"method": "update", "state": {"index": 1}, "buffer_paths": []}
        v = ch.widgets.versions[page.image]
        ch._on_message("iopub", "comm_msg", {}, {"comm_id": page.image, "data": {
            "method": "update", "state": {}, "buffer_paths": [["value"]]}}, [b"new png"])
        assert ch.widgets.versions[page.image] == v + 1 and ch.widgets.state(page.image)["value"] == b"new png"
        ch._on_message("iopub", "error", {}, {"ename": "ValueError", "evalue": "x",
                                              "traceback": ["Traceback (most recent call last)", "ValueError: x"]}, [])
        ch._on_message("iopub", "comm_msg", {}, {"comm_id": ch.widgets.ref(page.dialog, "layout"), "data": {
            "method": "update", "state": {"display": None}, "buffer_paths": []}}, [])
        assert [p.split(":")[0] for p in page.problems()] == ["error box open", "traceback from the kernel"]
        ch.reader.cancel()

    asyncio.run(check())


class OldKernel(Recorder):
    """A kernel that does not answer the control comm: the page then asks for each widget's state."""

    def __init__(self, states):
        super().__init__()
        self.states, self.channel = states, None

    def write_message(self, frame, binary=False):
        super().write_message(frame)
        header, content = json.loads(self.frames[-1][1][0]), json.loads(self.frames[-1][1][3])
        ch, reply = self.channel, None
        if header["msg_type"] == "comm_info_request":
            reply = ("shell", "comm_info_reply", {"status": "ok", "comms": {
                mid: {"target_name": "jupyter.widget"} for mid in self.states}})
        elif header["msg_type"] == "comm_msg" and content["data"].get("method") == "request_state":
            mid = content["comm_id"]
            if mid in self.states:
                reply = ("iopub", "comm_msg", {"comm_id": mid, "data": {
                    "method": "update", "state": self.states[mid]["state"], "buffer_paths": []}})
        if reply:
            ch._on_message(reply[0], reply[1], {"msg_id": header["msg_id"]}, reply[2], [])
            ch.changed.set()


def test_widgets_load_model_by_model_when_the_control_comm_is_silent(monkeypatch):
    import mmkit.classroom.wsproto as wsproto

    monkeypatch.setattr(wsproto, "STATES_WAIT", 0.2)
    app = CaptionApp(background=False, server="")
    states, _, _ = app_states(app)

    async def check():
        kernel = OldKernel(states)
        ch = KernelChannel(kernel, "session")
        kernel.channel = ch
        assert await ch.load_widgets(10) == "models"
        sent = [json.loads(parts[0])["msg_type"] for _, parts in kernel.frames]
        assert sent[:3] == ["comm_open", "comm_msg", "comm_info_request"] and sent[-1] == "comm_close"
        assert sent.count("comm_msg") == 1 + len(states)  # request_states, then one request_state per widget
        page = Page(ch, app.model_id)
        assert page.caption == app.button.model_id and page.rows() == []
        ch.reader.cancel()

    asyncio.run(check())


def test_history_and_text_parsing():
    value = ("<div><table><tr><th>n</th><th>image</th></tr><tr><td style='x'>2</td><td>ShapesWorld test #1</td>"
             "<td>a &lt;red&gt; circle</td></tr><tr><td>1</td><td>sample photo: cat</td><td>x</td></tr></table></div>")
    assert history_rows(value) == [["2", "ShapesWorld test #1", "a <red> circle"], ["1", "sample photo: cat", "x"]]
    assert history_rows("<i>no captions yet</i>") == []
    assert text_of("ShapesWorld test #3 <span style='color:#666'>(64x64)</span>") == "ShapesWorld test #3 (64x64)"
    state = {"a": {"state": {"value": None}}, "b": [0, None]}
    put_buffers(state, [["a", "state", "value"], ["b", 1]], [memoryview(b"xy"), b"z"])
    assert state == {"a": {"state": {"value": b"xy"}}, "b": [0, b"z"]}
    w = Widgets()
    w.set("root", {"_model_name": "VBoxModel", "children": ["IPY_MODEL_a", "IPY_MODEL_b"]})
    w.set("a", {"_model_name": "HTMLModel", "value": "<b>History</b>"})
    w.set("b", {"_model_name": "HTMLModel", "value": ""})
    assert w.tree("root") == ["root", "a", "b"] and w.after("root", "<b>History</b>") == "b"
    assert w.after("root", "<b>Attention</b>") is None and w.find("root", "ButtonModel") is None


def load_benchmark():
    return load_script(REPO / "benchmarks" / "classroom.py", "classroom_bench")


def test_one_student_over_the_protocol_end_to_end():
    """`python -m mmkit.classroom` with one preheated kernel and one protocol-level student, no think time."""
    pytest.importorskip("voila")
    pytest.importorskip("psutil")
    if not (models_dir() / MODEL / "config.json").exists():
        pytest.skip(f"bundled model {MODEL} is not in data/models (make models)")
    bench = load_benchmark()
    res = bench.run("classroom", 1, 0, pool=1, max_gb=4, client="ws", assets=bench.ASSETS)
    summary = {k: v for k, v in res.items() if k != "students"}
    assert res["errors"] == 0 and res["kernel_errors"] == 0, (res["error_list"], res["students"])
    assert res["captions"] == 2 and res["maps"] == 2 and res["client"] == "ws", summary
    (s,) = res["students"]
    assert [h[0] for h in s["history"]] == ["ShapesWorld test #0"] * 2, s
    assert s["first_byte_s"] <= s["response_s"] <= s["assets_s"] <= s["ready_s"], s
    assert s["asset_errors"] == [] and s["asset_bytes"] > 1e6, s  # the page's CSS and JavaScript, as a browser


@pytest.mark.skipif(os.environ.get("MMKIT_CLASSROOM_LOAD") != "1",
                    reason="the classroom load test takes ~2 minutes: make test-classroom (MMKIT_CLASSROOM_LOAD=1)")
def test_six_students_for_a_minute_over_the_protocol():
    """The CI size of benchmarks/classroom.py: 6 protocol-level students, 1 minute, the classroom setup."""
    pytest.importorskip("voila")
    pytest.importorskip("psutil")
    users = int(os.environ.get("MMKIT_CLASSROOM_USERS", "6"))
    bench = load_benchmark()
    res = bench.run("classroom", users, float(os.environ.get("MMKIT_CLASSROOM_SECONDS", "60")), pool=users, max_gb=8,
                    client="ws", assets=bench.ASSETS)
    summary = {k: v for k, v in res.items() if k != "students"}
    print(summary)
    assert res["errors"] == 0 and res["kernel_errors"] == 0 and not res["stopped_early"], summary
    assert res["captions"] == 2 * users and res["maps"] == 2 * users, summary
    for s in res["students"]:  # each sees their own two captions, newest (beam) first
        assert [h[0] for h in s["history"]] == [f"ShapesWorld test #{s['user']}"] * 2, s
    assert res["response_p95_s"] < 10 and res["asset_errors"] == [], summary  # the page is a preheated kernel's
    assert res["peak_total_mb"] < 6 * 1024, summary  # kernels stay small: the model lives in one process
    assert res["peak_server_procs"] <= 3 + 2 * users, summary
