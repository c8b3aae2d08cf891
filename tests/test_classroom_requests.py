"""The classroom model server's answers to malformed requests, and the token limit it fits requests to.

A request that is not what POST /caption takes is the client's mistake: 400 with one sentence saying what the
request must be, never 500 with a bare Python exception (500 stays for faults of the server itself).
The server runs in a thread of this process, as in tests/test_classroom.py.
"""
import base64
import http.client
import inspect
import io
import json
import urllib.error
import urllib.request
import warnings

import pytest

from mmkit.classroom import ModelServer
from mmkit.tasks.inputs import fit_new_tokens as fit_tokens
from mmkit.config import models_dir
from mmkit.data import ShapesWorld

MODEL = "shapes-blip-caption"
WHAT = "POST /caption takes a JSON object"


@pytest.fixture(scope="module")
def server():
    if not (models_dir() / MODEL / "config.json").exists():
        pytest.skip(f"bundled model {MODEL} is not in data/models (make models)")
    s = ModelServer(MODEL, warm=False).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def png():
    buf = io.BytesIO()
    ShapesWorld(1, seed=0, split="test")[0].image.save(buf, format="PNG")
    return buf.getvalue()


def post(server, raw: bytes) -> tuple[int, dict]:
    req = urllib.request.Request(server.url + "/caption", data=raw, method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.mark.parametrize("raw, says", [
    (b"hello", "the body is not JSON"),
    (b'{"image": "abc"', "the body is not JSON"),  # cut short
    (b"\xff\xfe not utf-8", "the body is not JSON"),
    (b"[1, 2, 3]", "the body is a JSON list"),
    (b'"just a string"', "the body is a JSON string"),
    (b"null", "the body is JSON null"),
    (b'{"kwargs": {}}', "has no 'image' field"),
    (b'{"x": 1}', "has no 'image' field"),
    (b'{"image": 12345}', "'image' is a JSON number, not a string"),
    (b'{"image": null}', "'image' is JSON null, not a string"),
    (b'{"image": "!!!not base64!!!"}', "'image' is not valid base64"),
    (b'{"image": "abc"}', "'image' is not valid base64"),  # wrong padding
    (b'{"image": ""}', "'image' is empty"),
    (b'{"image": "!!!!"}', "'image' is not valid base64"),  # nothing left once the !s are skipped
])
def test_malformed_requests_get_400_saying_what_the_request_must_be(server, raw, says):
    code, body = post(server, raw)
    assert code == 400, body
    msg = body["error"]
    assert says in msg and WHAT in msg and "base64" in msg and body.get("input_error") is True
    assert "Error:" not in msg and "Traceback" not in msg  # no bare Python exception


@pytest.mark.parametrize("length", ["0", "lots"])
def test_an_empty_body_or_a_bad_content_length_gets_400(server, length):
    host, port = server.url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.putrequest("POST", "/caption")
    conn.putheader("Content-Length", length)
    conn.endheaders()
    r = conn.getresponse()
    body = json.loads(r.read())
    conn.close()
    assert r.status == 400 and "the body is empty or its Content-Length header is not a number" in body["error"]
    assert WHAT in body["error"]


def test_kwargs_that_are_not_an_object_get_400(server, png):
    b64 = base64.b64encode(png).decode()
    code, body = post(server, json.dumps({"image": b64, "kwargs": [1, 2]}).encode())
    assert code == 400 and "'kwargs' is a JSON list" in body["error"] and "JSON object" in body["error"]


def test_the_good_400s_and_good_requests_are_unchanged(server, png):
    b64 = base64.b64encode(png).decode()
    code, body = post(server, json.dumps({"image": base64.b64encode(b"just text").decode()}).encode())
    assert code == 400 and "not an image" in body["error"]
    code, body = post(server, json.dumps({"image": b64, "kwargs": {"rm_rf": True}}).encode())
    assert code == 400 and "unknown caption options" in body["error"]
    code, body = post(server, json.dumps({"image": b64, "kwargs": {"num_beams": -5}}).encode())
    assert code == 400 and "num_beams" in body["error"]
    code, body = post(server, json.dumps({"image": b64}).encode())  # no kwargs at all: the defaults
    assert code == 200 and body["caption"]
    served = json.loads(urllib.request.urlopen(server.url + "/health", timeout=30).read())["served"]
    assert served >= 1


def test_a_server_fault_is_still_500(server, png, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the model fell over")

    monkeypatch.setattr(server, "caption", broken)
    code, body = post(server, json.dumps({"image": base64.b64encode(png).decode()}).encode())
    assert code == 500 and "the model fell over" in body["error"]


@pytest.mark.parametrize("asked", [30, 38, 39, 60, 10**9])
def test_requests_are_fitted_to_the_limit_that_caption_keeps_without_a_warning(server, png, asked):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = server.caption(png, {"max_new_tokens": asked})
    assert res["caption"]
    lowered = [str(w.message) for w in caught if "lowered to" in str(w.message)]
    assert lowered == []  # the server lowers silently to what mmkit.caption takes, so caption has nothing to say
    assert fit_tokens(server.m, {"max_new_tokens": asked})["max_new_tokens"] == min(asked, 38)  # 40 - BOS - spare


def test_a_prompt_takes_its_room_from_the_limit(server, png):
    kw = fit_tokens(server.m, {"max_new_tokens": 60, "prompt": "a picture of"})
    n_prompt = len(server.m.processor.tokenizer("a picture of")["input_ids"])
    assert kw["max_new_tokens"] == 40 - n_prompt
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert server.caption(png, {"max_new_tokens": 60, "prompt": "a picture of"})["caption"]
    assert not [w for w in caught if "lowered to" in str(w.message)]


def test_run_students_says_it_is_a_coroutine():
    from mmkit.classroom.student import run_students

    assert inspect.iscoroutinefunction(run_students)
    assert "asyncio.run(run_students(" in inspect.getdoc(run_students)


def test_the_apps_decoding_controls_fit_max_tokens_as_caption_does(server, png):
    """The plain app's slider at 39-60 was lowered to 39, then caption warned '39 lowered to 38' (one token off)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from widgets.decoding import DecodingControls

    controls = DecodingControls()
    for asked in (30, 39, 60):
        kw = controls.fit(server.m, {"max_new_tokens": asked})
        assert kw["max_new_tokens"] == min(asked, 38)
