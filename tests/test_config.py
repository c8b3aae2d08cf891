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
    assert config.get_device(" CPU ") == torch.device("cpu")  # as dtype="FP16" is taken
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA is not available"):
            config.get_device("cuda")
        monkeypatch.setenv("MMKIT_DEVICE", "cuda")  # the variable, not an argument: the message names it
        with pytest.raises(InputError, match="from MMKIT_DEVICE='cuda'; unset it"):
            config.get_device()


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


@pytest.fixture
def speedup_state(monkeypatch):
    """The speed-up switch and version check as a test leaves them: restored afterwards."""
    monkeypatch.setattr(config, "_SPEEDUPS", None)
    monkeypatch.setattr(config, "_WINDOW", None)
    monkeypatch.setattr(config, "_WINDOW_NOTICED", False)
    monkeypatch.delenv("MMKIT_SPEEDUPS", raising=False)
    return monkeypatch


def test_speedups_switch_by_environment_and_at_run_time(speedup_state):
    pytest.importorskip("transformers")
    if not config.version_inside(__import__("transformers").__version__, *config.SPEEDUPS_TESTED):
        pytest.skip("the installed transformers is outside the tested range (its own test covers that)")
    assert config.speedups_enabled()  # on by default
    for off in ("0", "false", "OFF"):
        speedup_state.setenv("MMKIT_SPEEDUPS", off)
        assert not config.speedups_enabled()
    speedup_state.setenv("MMKIT_SPEEDUPS", "1")
    assert config.speedups_enabled()
    config.set_speedups(False)  # the run-time switch wins over the environment
    assert not config.speedups_enabled() and config.environment()["speedups"] == "off"
    config.set_speedups(True)
    speedup_state.setenv("MMKIT_SPEEDUPS", "0")
    assert config.speedups_enabled()
    config.set_speedups(None)  # back to the environment
    assert not config.speedups_enabled()
    with pytest.raises(InputError, match="True, False"):
        config.set_speedups("no")


@pytest.mark.parametrize("version, inside", [("5.15.0", True), ("5.20.1", True), ("5.25.0", True), ("5.25.3", True),
                                             ("5.25.0.dev0", True), ("5.14.2", False), ("5.26.0.dev0", False),
                                             ("5.26.0", False), ("6.0.0", False), ("not-a-version", False)])
def test_speedups_are_off_outside_the_tested_transformers_range_with_one_notice(version, inside, speedup_state, capsys):
    transformers = pytest.importorskip("transformers")
    speedup_state.setattr(transformers, "__version__", version)
    config.set_speedups(True)  # even asked for: not outside the range
    assert config.speedups_enabled() is inside
    assert config.speedups_enabled() is inside
    err = capsys.readouterr().err
    assert err.count("speed-ups off") == (0 if inside else 1)  # said once
    if not inside:
        assert version in err and config.SPEEDUPS_TESTED[0] in err


def test_installed_transformers_is_inside_the_tested_range():
    """CI runs the oldest tested transformers (`make test-colab`, MMKIT_EXPECT_TRANSFORMERS) and the newest
    (`make test`): the speed-ups must be on in both."""
    transformers = pytest.importorskip("transformers")
    expected = os.environ.get("MMKIT_EXPECT_TRANSFORMERS")
    if expected:
        assert transformers.__version__ == expected
    assert config.version_inside(transformers.__version__, *config.SPEEDUPS_TESTED), (
        f"transformers {transformers.__version__} is outside SPEEDUPS_TESTED {config.SPEEDUPS_TESTED}: run "
        "tests/test_speedups.py on it and widen the range in mmkit/config.py")
