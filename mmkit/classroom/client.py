"""RemoteCaptioner: caption through a ModelServer, so a student's kernel never loads torch or a model."""
from __future__ import annotations

import base64
import io
import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..attention.maps import OnPicture
from ..errors import InputError, OutOfDomainWarning, warn

ENV = "MMKIT_MODEL_SERVER"  # e.g. http://127.0.0.1:8867: the app captions through this server when set
TIMEOUT = 300  # s for one request (30 students queue behind one model)


def remote_url() -> str | None:
    """The model server's URL from the MMKIT_MODEL_SERVER environment variable, or None."""
    url = os.environ.get(ENV, "").strip().rstrip("/")
    return url or None


@dataclass
class RemoteSpec:
    """The part of a ModelSpec the app shows: name, source and why a family name picked it."""

    name: str
    source: str
    chosen_by: str = ""


@dataclass
class RemoteMaps(OnPicture):
    """Per-word maps sent by the server: `for_token(i, method, size)` -> (gh, gw), placed like AttentionMaps'."""

    image: object  # the RGB PIL image as the server's model was given it (the picture passed, cropped or padded)
    words: list[str]
    methods: list[str]
    maps: dict  # method -> (n_words, gh, gw) array
    offset: tuple = (0, 0)  # (x, y) of the picture given inside `image`, when the model was given it padded
    given_size: tuple = ()  # (w, h) of the picture given, when the model was given it padded or cropped
    repainted: bool = False  # the model was given it with its one-colour background repainted (bundled models)

    def for_token(self, i: int, method: str | None = None, size=None) -> np.ndarray:
        """Word i's map, (gh, gw), or at size: None, "image", "given" or (height, width), as in AttentionMaps.for_token;
        for a picture the server's model was given cropped or padded, a PlacedMap (every size but "given") that
        mmkit.viz.overlay draws where `image` lies on the picture you passed."""
        method = method or self.methods[0]
        if method not in self.maps:
            raise InputError(f"method {method!r} is not available; choose one of {self.methods}")
        if not 0 <= i < len(self.words):
            raise InputError(f"token index {i} out of range: there are {len(self.words)} tokens")
        return self._resize(np.asarray(self.maps[method][i], dtype=np.float32), size)


@dataclass
class RemoteResult:
    caption: str
    spec: RemoteSpec
    maps: RemoteMaps | None
    map_note: str


class RemoteCaptioner:
    """Caption images through a ModelServer at `url` (default: $MMKIT_MODEL_SERVER)."""

    def __init__(self, url: str | None = None, timeout: float = TIMEOUT):
        self.url = (url or remote_url() or "").rstrip("/")
        if not self.url:
            raise InputError(f"no model server: set {ENV}=http://127.0.0.1:PORT (python -m mmkit.classroom)")
        self.timeout = timeout

    def health(self) -> dict:
        """{"ok", "model": {name, source, chosen_by}, "served"} of the server (InputError when it does not answer)."""
        return self._call("GET", "/health")

    def spec(self) -> RemoteSpec:
        """Which model the server holds."""
        m = self.health()["model"]
        return RemoteSpec(m["name"], m["source"], m.get("chosen_by", ""))

    def caption(self, image, **kwargs) -> RemoteResult:
        """Caption one RGB PIL image with mmkit.caption's options; out-of-domain notices are re-raised here."""
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        res = self._call("POST", "/caption", {"image": base64.b64encode(buf.getvalue()).decode("ascii"),
                                               "kwargs": kwargs})
        for n in res.get("notices", []):
            warn(n, OutOfDomainWarning)
        maps = None
        if res.get("words"):
            pad, offset, given = res.get("padded"), (0, 0), ()
            if pad:  # the maps lie on the picture as the server's model was given it: pad or crop it the same way
                canvas = Image.new("RGB", tuple(pad["size"]), tuple(pad["fill"]))
                offset, given = tuple(pad["offset"]), tuple(image.size)
                canvas.paste(image, offset)
                image = canvas
            maps = RemoteMaps(image, res["words"], res["methods"],
                              {k: np.asarray(v, dtype=np.float32) for k, v in res["maps"].items()}, offset, given,
                              bool(res.get("repainted")))
        m = res["model"]
        return RemoteResult(res["caption"], RemoteSpec(m["name"], m["source"], m.get("chosen_by", "")), maps,
                            res.get("map_error", "") and f"no attention map: {res['map_error']}")

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode("utf-8")
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:  # noqa: S310 (the class's own server)
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            try:
                msg = json.loads(e.read()).get("error", str(e))
            except Exception:
                msg = str(e)
            raise InputError(f"the model server at {self.url} refused the request: {msg}") from None
        except (urllib.error.URLError, OSError) as e:
            raise InputError(f"the model server at {self.url} does not answer ({e}); ask the teacher to "
                             f"restart `make classroom`") from None
