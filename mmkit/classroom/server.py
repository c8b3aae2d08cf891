"""ModelServer: one process holds a captioning model and answers caption + attention-map requests over HTTP.

POST /caption  {"image": base64 PNG, "kwargs": {...mmkit.caption options}}
   -> {"caption", "model": {name, source, chosen_by}, "notices": [...], "words": [...], "methods": [...],
       "maps": {method: (n_words, gh, gw) nested lists}, "map_error": "", "seconds"}
GET  /health   -> {"ok": true, "model": {name, source, chosen_by}, "served": n}
A malformed request or a bad option gets 400 {"error": one sentence, "input_error": true}; 500 is for server faults.
Requests run one at a time (a lock): the model's attention switch and torch's threads are shared, and on
a small machine two generate calls at once take as long as two in a row. Binds 127.0.0.1 by default.
"""
from __future__ import annotations

import base64
import binascii
import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from ..errors import InputError
from ..notices import capture_notices

MAX_BODY = 40 * 10**6  # bytes of one request (an image of up to 20 MB, as base64, and its options)
ALLOWED = {"max_new_tokens", "num_beams", "do_sample", "temperature", "top_p", "seed", "prompt"}  # caption kwargs


# what POST /caption takes, ending every refusal of a malformed request
REQUEST = ('POST /caption takes a JSON object {"image": "<a PNG or JPEG file, base64-encoded>", '
           '"kwargs": {<mmkit.caption options, optional>}}')
JSON_TYPES = {list: "a JSON list", str: "a JSON string", int: "a JSON number", float: "a JSON number",
              bool: "JSON true/false", type(None): "JSON null", dict: "a JSON object"}


def parse_request(raw: bytes) -> tuple[bytes, dict]:
    """The image bytes and caption options of a POST /caption body; InputError (a 400) saying what is wrong."""
    try:
        req = json.loads(raw)
    except ValueError:  # JSONDecodeError, or bytes that are not UTF-8
        raise InputError(f"the body is not JSON (it starts with {raw[:20]!r}); {REQUEST}") from None
    if not isinstance(req, dict):
        raise InputError(f"the body is {JSON_TYPES.get(type(req), 'JSON')}, not an object; {REQUEST}")
    if "image" not in req:
        fields = ", ".join(map(repr, req)) or "none"
        raise InputError(f"the request has no 'image' field (its fields: {fields}); {REQUEST}")
    image = req["image"]
    if not isinstance(image, str):
        raise InputError(f"'image' is {JSON_TYPES.get(type(image), 'JSON')}, not a string; {REQUEST}")
    if image.startswith("data:") and "," in image:  # a data: URL, as a browser's FileReader gives
        image = image.split(",", 1)[1]
    if not image.strip():
        raise InputError(f"'image' is empty; {REQUEST}")
    try:
        data = base64.b64decode(image)  # as before: characters outside the alphabet (line breaks) are skipped
        if not data:
            raise ValueError("no base64 characters")
    except (binascii.Error, ValueError):
        raise InputError(f"'image' is not valid base64 (A-Z, a-z, 0-9, + and /, padded with = to a multiple "
                         f"of 4 characters); {REQUEST}") from None
    kwargs = req.get("kwargs")
    if kwargs is None:
        return data, {}
    if not isinstance(kwargs, dict):
        raise InputError(f"'kwargs' is {JSON_TYPES.get(type(kwargs), 'JSON')}, not a JSON object of caption "
                         f"options; {REQUEST}")
    return data, kwargs


class ModelServer:
    """Serve caption + per-word attention maps of one model on host:port (port 0: a free one).

    Args:
        model: a model name or path for mmkit.load_model (default the "blip-caption" family).
        host, port: where to listen; 127.0.0.1 keeps it on this machine.
        warm: caption one scene at start, so the first student does not wait for torch's set-up.
    """

    def __init__(self, model: str = "blip-caption", host: str = "127.0.0.1", port: int = 0, warm: bool = True):
        import mmkit

        self.m = mmkit.load_model(model)
        self.lock = threading.Lock()
        self.served = 0
        if warm:  # the first generate and map pay torch's one-off set-up (~3 s): not the first student
            from ..data import ShapesWorld

            buf = io.BytesIO()
            ShapesWorld(1, seed=0, split="test")[0].image.save(buf, format="PNG")
            self.caption(buf.getvalue(), {"max_new_tokens": 30})
            self.served = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet: one line per request would flood a class's log
                pass

            def _reply(self, code: int, obj: dict) -> None:
                body = json.dumps(obj).encode("utf-8")
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):  # noqa: N802 (http.server's name)
                if self.path == "/health":
                    spec = server.m.spec
                    self._reply(200, {"ok": True, "model": {"name": spec.name, "source": spec.source,
                                                            "chosen_by": spec.chosen_by}, "served": server.served})
                else:
                    self._reply(404, {"error": f"no such path {self.path}; use /health or POST /caption"})

            def do_POST(self):  # noqa: N802
                if self.path != "/caption":
                    self._reply(404, {"error": f"no such path {self.path}; POST /caption"})
                    return
                try:
                    n = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    n = -1
                if n > MAX_BODY:
                    self._reply(413, {"error": f"request of {n} bytes; send one image of at most 20 MB"})
                    return
                if n <= 0:
                    self._reply(400, {"error": f"the body is empty or its Content-Length header is not a number of "
                                               f"bytes; {REQUEST}", "input_error": True})
                    return
                try:
                    image, kwargs = parse_request(self.rfile.read(n))
                    self._reply(200, server.caption(image, kwargs))
                except InputError as e:
                    self._reply(400, {"error": str(e), "input_error": True})
                except Exception as e:  # one bad request must not stop the class's server
                    self._reply(500, {"error": f"{type(e).__name__}: {e}"})

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self.thread: threading.Thread | None = None

    def caption(self, image_bytes: bytes, kwargs: dict) -> dict:
        """Caption one image (bytes of any format load_image reads) and compute each word's maps."""
        import mmkit
        from ..domain import pictures_checked
        from ..tasks.inputs import fit_new_tokens

        bad = set(kwargs) - ALLOWED
        if bad:
            raise InputError(f"unknown caption options {sorted(bad)}; use {sorted(ALLOWED)}")
        image = mmkit.load_image(image_bytes)
        t = time.perf_counter()
        with self.lock, capture_notices() as notices:
            text = mmkit.caption(self.m, image, **fit_new_tokens(self.m, kwargs))
            words, methods, maps, map_error, padded = [], [], {}, "", None
            if text:
                try:
                    with pictures_checked():  # the caption's check said what there is to say of this picture, once
                        am = mmkit.attention_maps(self.m, image, text=text)
                    words, methods = list(am.words), list(am.methods)
                    maps = {k: [am.for_token(i, method=k).round(5).tolist() for i in range(len(words))]
                            for k in methods}  # each (gh, gw)
                    if am.image.size != image.size:  # the maps lie on the picture as padded for the model
                        padded = {"size": list(am.image.size), "offset": list(am.offset),
                                  "fill": list(am.image.getpixel((0, 0)))}  # a corner is padding
                except Exception as e:  # the caption still counts; say why there is no map
                    map_error = str(e) if isinstance(e, InputError) else f"{type(e).__name__}: {e}"
            self.served += 1
        spec = self.m.spec
        return {"caption": text, "model": {"name": spec.name, "source": spec.source, "chosen_by": spec.chosen_by},
                "notices": list(notices), "words": words, "methods": methods, "maps": maps, "padded": padded,
                "repainted": bool(words) and bool(getattr(am, "repainted", False)),
                "map_error": map_error, "seconds": round(time.perf_counter() - t, 4)}

    def start(self) -> "ModelServer":
        """Serve in a background thread (for tests and notebooks); `serve_forever` blocks instead."""
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
