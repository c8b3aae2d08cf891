"""The two protocols a Voila page speaks after it has loaded, without a browser: Jupyter messages over the kernel
websocket and ipywidgets' comm messages. Used by the simulated students of mmkit.classroom.student.

- Kernel websocket: `/api/kernels/<id>/channels?session_id=...` with the subprotocol JupyterLab's (and so
  Voila's) frontend asks for, "v1.kernel.websocket.jupyter.org": every frame is binary, a table of offsets, the
  channel name, then the message parts (header, parent_header, metadata, content, buffers...). The older JSON
  protocol is not an option against Voila 0.5: its websocket handler reads every binary frame it sends as v1,
  and a kernel message with buffers (an Image widget's PNG) sent to a JSON client makes it allocate without
  bound (seen here: 3.4 GB within two minutes, the server stuck).
- Widgets (protocol 2.x): the page opens a "jupyter.widget.control" comm and asks for every model's state
  (`request_states`; the frontend falls back to `comm_info_request` + one `request_state` per model when that
  takes more than 4 s); it changes a value with `{"method": "update", "state": {...}}` and clicks a Button
  with `{"method": "custom", "content": {"event": "click"}}`; the kernel sends `update` / `echo_update` comm
  messages and `comm_open` for each new widget.
"""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import datetime, timezone

PROTOCOL = "v1.kernel.websocket.jupyter.org"
CONTROL_TARGET = "jupyter.widget.control"
CONTROL_VERSION = "1.0.0"  # ipywidgets' control protocol (the kernel checks the major version)
WIDGET_PROTOCOL = "2.1.0"  # ipywidgets 8's widget protocol (7.7 speaks 2.0: the same messages used here)
STATES_WAIT = 4.0  # s the frontend waits for request_states before asking model by model (widgets-manager8)


def pack_v1(channel: str, parts: list[bytes]) -> bytes:
    """One v1 websocket frame: (2 + len(parts)) offsets as 8-byte little-endian ints, after their count."""
    name = channel.encode("utf-8")
    offsets = [8 * (1 + 1 + len(parts) + 1), 8 * (1 + 1 + len(parts) + 1) + len(name)]
    for p in parts:
        offsets.append(offsets[-1] + len(p))
    head = len(offsets).to_bytes(8, "little") + b"".join(o.to_bytes(8, "little") for o in offsets)
    return head + name + b"".join(parts)


def unpack_v1(frame: bytes) -> tuple[str, list[bytes]]:
    """(channel, parts) of a v1 websocket frame; ValueError when the offsets do not fit the frame."""
    n = int.from_bytes(frame[:8], "little")
    if not 2 <= n <= (len(frame) - 8) // 8:
        raise ValueError(f"not a v1 kernel websocket frame: {n} offsets in {len(frame)} bytes")
    offsets = [int.from_bytes(frame[8 * (i + 1):8 * (i + 2)], "little") for i in range(n)]
    if offsets != sorted(offsets) or offsets[-1] != len(frame):
        raise ValueError(f"not a v1 kernel websocket frame: offsets {offsets[:6]} in {len(frame)} bytes")
    channel = frame[offsets[0]:offsets[1]].decode("utf-8")
    return channel, [frame[offsets[i]:offsets[i + 1]] for i in range(1, n - 1)]


def message(session: str, msg_type: str, content: dict, metadata: dict | None = None) -> tuple[str, list[bytes]]:
    """(msg_id, parts) of a client message (Jupyter messaging v5.3)."""
    msg_id = uuid.uuid4().hex
    header = dict(msg_id=msg_id, username="student", session=session, msg_type=msg_type, version="5.3",
                  date=datetime.now(timezone.utc).isoformat())
    parts = [json.dumps(x).encode("utf-8") for x in (header, {}, metadata or {}, content)]
    return msg_id, parts


def put_buffers(state: dict, paths: list, buffers: list) -> None:
    """Put binary buffers back where the kernel took them out of a state (ipywidgets' _put_buffers)."""
    for path, buf in zip(paths, buffers):
        obj = state
        for key in path[:-1]:
            obj = obj[key]
        obj[path[-1]] = bytes(buf)


class Widgets:
    """The widget models of one page as its widget manager holds them: model id -> {"model_name", "state"}.

    `versions[id]` counts the updates each model has received, so a caller can wait for the next one."""

    def __init__(self):
        self.models: dict[str, dict] = {}
        self.versions: dict[str, int] = {}

    def set(self, mid: str, state: dict, model_name: str | None = None) -> None:
        m = self.models.setdefault(mid, {"model_name": model_name or state.get("_model_name", ""), "state": {}})
        m["state"].update(state)
        if model_name:
            m["model_name"] = model_name
        self.versions[mid] = self.versions.get(mid, 0) + 1

    def state(self, mid: str) -> dict:
        return self.models.get(mid, {}).get("state", {})

    def children(self, mid: str) -> list[str]:
        """Model ids of a box's children ("IPY_MODEL_<id>" references in its state)."""
        return [c[len("IPY_MODEL_"):] for c in self.state(mid).get("children", []) if isinstance(c, str)]

    def ref(self, mid: str, key: str) -> str | None:
        """The model id a state key refers to (a widget's "layout", say)."""
        v = self.state(mid).get(key)
        return v[len("IPY_MODEL_"):] if isinstance(v, str) and v.startswith("IPY_MODEL_") else None

    def tree(self, root: str) -> list[str]:
        """root and every widget under it, depth first, in the order the page shows them."""
        out, stack = [], [root]
        while stack:
            mid = stack.pop()
            if mid in self.models and mid not in out:
                out.append(mid)
                stack.extend(reversed(self.children(mid)))
        return out

    def find(self, root: str, model_name: str, **match) -> str | None:
        """The first widget under root of a model name whose state has the given values."""
        for mid in self.tree(root):
            m = self.models[mid]
            if m["model_name"] == model_name and all(m["state"].get(k) == v for k, v in match.items()):
                return mid
        return None

    def after(self, root: str, text: str) -> str | None:
        """The widget that follows, in the same box, the HTML label containing `text` (how a reader finds it)."""
        for mid in self.tree(root):
            kids = self.children(mid)
            for a, b in zip(kids, kids[1:]):
                if self.models.get(a, {}).get("model_name") == "HTMLModel" and text in self.state(a).get("value", ""):
                    return b
        return None


class KernelChannel:
    """One page's websocket to its kernel: sends messages and keeps `widgets` up to date from the kernel's comm
    messages; tracebacks and stderr the kernel sends are kept in `tracebacks`."""

    def __init__(self, ws, session: str, abort=None):
        self.ws, self.session, self.abort = ws, session, abort
        self.widgets = Widgets()
        self.tracebacks: list[str] = []
        self.replies: dict[str, dict] = {}  # parent msg_id -> the shell reply's content
        self.control: str | None = None  # the control comm's id while it is open
        self.states_loaded = False
        self.closed = False
        self.changed = asyncio.Event()
        self.reader = asyncio.ensure_future(self._read())

    @classmethod
    async def connect(cls, ws_url: str, headers: dict | None = None, timeout: float = 60, abort=None):
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        session = uuid.uuid4().hex
        req = HTTPRequest(f"{ws_url}?session_id={session}", headers=headers or {}, connect_timeout=timeout,
                          request_timeout=timeout)
        ws = await websocket_connect(req, subprotocols=[PROTOCOL], max_message_size=256 * 2**20)
        if ws.selected_subprotocol != PROTOCOL:
            ws.close()
            raise ConnectionError(f"the server did not accept the {PROTOCOL} websocket protocol")
        return cls(ws, session, abort)

    def send(self, msg_type: str, content: dict, metadata: dict | None = None, channel: str = "shell") -> str:
        msg_id, parts = message(self.session, msg_type, content, metadata)
        self.ws.write_message(pack_v1(channel, parts), binary=True)
        return msg_id

    def comm(self, comm_id: str, data: dict) -> str:
        return self.send("comm_msg", {"comm_id": comm_id, "data": data})

    def update(self, mid: str, **state) -> str:
        """Set widget values, as the frontend does when a person changes a control."""
        self.widgets.set(mid, state)
        return self.comm(mid, {"method": "update", "state": state, "buffer_paths": []})

    def click(self, mid: str) -> str:
        """Click a Button."""
        return self.comm(mid, {"method": "custom", "content": {"event": "click"}})

    async def until(self, predicate, timeout: float, what: str):
        """Wait until predicate() is true (checked after every kernel message); its value, or TimeoutError."""
        deadline = time.monotonic() + timeout
        while not (value := predicate()):
            if self.closed:
                raise ConnectionError(f"{what}: the kernel's websocket closed")
            if self.abort is not None and self.abort.is_set():
                raise RuntimeError("aborted: the memory or time limit was reached")
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{what}: no answer within {timeout:.0f} s")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), min(left, 1.0))
            except asyncio.TimeoutError:
                pass
        return value

    async def load_widgets(self, timeout: float) -> str:
        """Fetch every widget's state as the page's widget manager does; returns how ("control" or "models")."""
        self.control = uuid.uuid4().hex
        self.send("comm_open", {"comm_id": self.control, "target_name": CONTROL_TARGET, "data": {}},
                  {"version": CONTROL_VERSION})
        self.comm(self.control, {"method": "request_states"})
        try:
            await self.until(lambda: self.states_loaded, STATES_WAIT, "request_states")
            how = "control"
        except TimeoutError:  # what the frontend does next: ask which comms exist, then each one's state
            info = self.send("comm_info_request", {"target_name": "jupyter.widget"})
            comms = await self.until(lambda: self.replies.get(info), timeout, "comm_info_request")
            ids = [c for c, v in comms.get("comms", {}).items() if v.get("target_name") == "jupyter.widget"]
            for c in ids:
                self.comm(c, {"method": "request_state"})
            await self.until(lambda: self.states_loaded or all(c in self.widgets.models for c in ids), timeout,
                             "request_state of every widget")
            how = "models"
        self.send("comm_close", {"comm_id": self.control, "data": {}})
        self.control = None
        return how

    async def _read(self) -> None:
        try:
            while True:
                frame = await self.ws.read_message()
                if frame is None:
                    break
                if isinstance(frame, str):  # not v1; the server sends JSON frames only to legacy clients
                    continue
                channel, parts = unpack_v1(frame)
                header, parent, _, content = (json.loads(p) for p in parts[:4])
                self._on_message(channel, header["msg_type"], parent, content, parts[4:])
                self.changed.set()
        finally:
            self.closed = True
            self.changed.set()

    def _on_message(self, channel: str, msg_type: str, parent: dict, content: dict, buffers: list) -> None:
        if channel == "shell" and parent.get("msg_id"):
            self.replies[parent["msg_id"]] = content
        if msg_type == "comm_open" and content.get("target_name") == "jupyter.widget":
            data = content.get("data", {})
            state = data.get("state", {})
            put_buffers(state, data.get("buffer_paths", []), buffers)
            self.widgets.set(content["comm_id"], state)
        elif msg_type == "comm_msg":
            data = content.get("data", {})
            method = data.get("method")
            if method == "update_states" and content.get("comm_id") == self.control:
                states = data.get("states", {})
                put_buffers(states, data.get("buffer_paths", []), buffers)
                for mid, m in states.items():
                    self.widgets.set(mid, m.get("state", {}), m.get("model_name"))
                self.states_loaded = True
            elif method in ("update", "echo_update"):
                state = data.get("state", {})
                put_buffers(state, data.get("buffer_paths", []), buffers)
                self.widgets.set(content["comm_id"], state)
        elif msg_type == "comm_close":
            self.widgets.models.pop(content.get("comm_id"), None)
        elif msg_type == "error":
            self.tracebacks.append("\n".join(content.get("traceback", [])) or content.get("evalue", "error"))
        elif msg_type == "stream" and "Traceback" in content.get("text", ""):
            self.tracebacks.append(content["text"])

    async def close(self) -> None:
        self.ws.close()
        try:
            await asyncio.wait_for(self.reader, 5)
        except (asyncio.TimeoutError, Exception):
            self.reader.cancel()
