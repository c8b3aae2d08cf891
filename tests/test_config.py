"""Runtime config: device/dtype choice, seeding, the hub check, and a cheap `import mmkit`."""
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

import mmkit
from mmkit import InputError, config


def test_device_and_dtype_defaults_on_cpu(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.delenv("MMKIT_DEVICE", raising=False)
    monkeypatch.delenv("MMKIT_DTYPE", raising=False)
    if not torch.cuda.is_available():
        assert config.get_device().type in ("cpu", "mps")
    assert config.get_dtype("cpu") == torch.float32
    assert config.get_dtype("cpu", "bf16") == torch.bfloat16
    assert config.get_dtype("cpu", torch.float16) == torch.float16
    monkeypatch.setenv("MMKIT_DTYPE", "fp16")
    assert config.get_dtype("cpu") == torch.float16


def test_device_override_and_errors(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setenv("MMKIT_DEVICE", "cpu")
    assert config.get_device() == torch.device("cpu")
    with pytest.raises(InputError, match="not a torch device"):
        config.get_device("gpu-please")
    with pytest.raises(InputError, match="dtype"):
        config.get_dtype("cpu", "int3")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA is not available"):
            config.get_device("cuda")


def test_seed_everything_repeats():
    torch = pytest.importorskip("torch")
    import numpy as np

    config.seed_everything(7)
    a = (np.random.rand(), torch.rand(1).item())
    config.seed_everything(7)
    assert (np.random.rand(), torch.rand(1).item()) == a


def _silent_server():
    """A local TCP server that accepts connections and never answers (a hub that hangs)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    conns = []
    stop = threading.Event()

    def run():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])
            except OSError:
                pass

    threading.Thread(target=run, daemon=True).start()
    return srv, stop


def test_hub_check_is_fast_when_the_hub_hangs_and_goes_offline(monkeypatch, capsys):
    srv, stop = _silent_server()
    try:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{srv.getsockname()[1]}")
        monkeypatch.setattr(config, "_ANNOUNCED", False)
        t0 = time.perf_counter()
        status = config.hub_status(refresh=True)
        elapsed = time.perf_counter() - t0
        assert not status.online and elapsed < 2.5
        assert os.environ["HF_HUB_OFFLINE"] == "1"
        assert "working offline" in capsys.readouterr().err
        config.hub_status(refresh=True)
        assert "working offline" not in capsys.readouterr().err  # said once
    finally:
        stop.set()
        srv.close()
        monkeypatch.setattr(config, "_HUB", None)


def test_hub_check_sees_an_answering_endpoint(monkeypatch):
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Ok(BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(200)
            self.end_headers()

        def log_message(self, *a):
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=httpd.handle_request, daemon=True).start()
    try:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{httpd.server_address[1]}")
        assert config.hub_status(refresh=True).online
    finally:
        httpd.server_close()
        monkeypatch.setattr(config, "_HUB", None)


def test_hub_offline_env_short_circuits(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    s = config.hub_status(refresh=True)
    assert not s.online and s.seconds == 0.0
    monkeypatch.setattr(config, "_HUB", None)


def test_import_is_cheap_and_has_no_widgets():
    code = ("import time, sys; t = time.perf_counter(); import mmkit; dt = time.perf_counter() - t; "
            "print(dt, 'torch' in sys.modules, 'transformers' in sys.modules, 'ipywidgets' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[1:] == ["False", "False", "False"]
    assert float(out[0]) < 1.0


def test_no_ipywidgets_import_anywhere_in_the_library():
    root = os.path.dirname(mmkit.__file__)
    for dirpath, _, files in os.walk(root):
        for f in files:
            if f.endswith(".py"):
                text = open(os.path.join(dirpath, f), encoding="utf-8").read()
                assert "import ipywidgets" not in text and "from ipywidgets" not in text, f


def test_environment_report():
    env = config.environment()
    assert {"python", "torch", "transformers", "device", "dtype", "hub"} <= set(env)


def test_cpu_bf16_detection_reads_the_cpu_flags(tmp_path):
    from mmkit.config import cpu_has_bf16

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f\n")
    assert cpu_has_bf16(str(info)) is False
    info.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 avx512_vnni\n")
    assert cpu_has_bf16(str(info)) is True
    assert cpu_has_bf16(str(tmp_path / "missing")) is False  # not Linux: assume emulated
