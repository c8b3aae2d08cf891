"""Runtime configuration: device, dtype, seeding, paths, and a fast hub-reachability check.

Nothing here imports torch at module import time; torch is imported when a device or dtype
is actually asked for.
"""
from __future__ import annotations

import os
import random
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent


def data_dir() -> Path:
    """The `data/` folder: $MMKIT_DATA if set, else the one beside the package (a source checkout)."""
    return Path(os.environ.get("MMKIT_DATA", REPO_DIR / "data"))


def models_dir() -> Path:
    """Where the bundled checkpoints live (`data/models/<name>/`)."""
    return data_dir() / "models"


# ---------------------------------------------------------------------------------------------
# device and dtype
# ---------------------------------------------------------------------------------------------

_DTYPES = {
    "fp32": "float32", "float32": "float32", "float": "float32",
    "fp16": "float16", "float16": "float16", "half": "float16",
    "bf16": "bfloat16", "bfloat16": "bfloat16",
}


DEVICE_TYPES = ("cpu", "cuda", "mps")  # the torch device types mmkit runs models on
DEVICES = "'cpu', 'cuda', 'cuda:0' or 'mps'"  # the devices a user may name, for messages


def get_device(device=None):
    """Pick a torch.device: the argument, else $MMKIT_DEVICE, else cuda > mps > cpu."""
    import torch

    from .errors import InputError

    env = device is None and bool(os.environ.get("MMKIT_DEVICE"))
    choice = device if device is not None else os.environ.get("MMKIT_DEVICE") or None
    if isinstance(choice, str):
        choice = choice.strip().lower()  # 'CPU', 'Cuda:0', as dtype='FP16' is taken too
    if choice is not None and str(choice) != "auto":
        where = f" (from MMKIT_DEVICE={os.environ['MMKIT_DEVICE']!r}; unset it or set it to 'cpu')" if env else ""
        try:
            dev = torch.device(choice)
        except (RuntimeError, TypeError) as e:
            raise InputError(f"device {choice!r}{where} is not a torch device ({e}); use {DEVICES}") from None
        if dev.type not in DEVICE_TYPES:
            why = ("the meta device holds shapes but no values, so no model can run on it" if dev.type == "meta"
                   else f"mmkit runs models on {', '.join(DEVICE_TYPES)} only")
            raise InputError(f"device {choice!r}{where} cannot run a model ({why}); use {DEVICES}")
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise InputError(f"device {choice!r}{where} was asked for but CUDA is not available here; use device='cpu'")
        if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
            n = torch.cuda.device_count()
            raise InputError(f"device {choice!r}{where} was asked for but this machine has {n} CUDA device(s) "
                             f"({', '.join(repr(f'cuda:{i}') for i in range(n))}); use one of them, or 'cuda'")
        if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise InputError(f"device {choice!r}{where} was asked for but MPS is not available here; use device='cpu'")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if hasattr(torch.backends, "mps") and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def cpu_has_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX on Linux); elsewhere bf16 is emulated."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def get_dtype(device=None, dtype=None):
    """Pick a torch dtype: the argument, else $MMKIT_DTYPE, else bf16/fp16 on GPU and fp32 on CPU.

    On a CPU with native bf16 (see cpu_has_bf16) dtype="bf16" runs real-size models 2-3x faster than fp32
    (benchmarks/README.md); it is not the CPU default, so results match the fp32 references everywhere.
    """
    import torch

    from .errors import InputError

    choice = dtype if dtype is not None else os.environ.get("MMKIT_DTYPE") or None
    if isinstance(choice, torch.dtype):
        return choice
    if choice is not None and str(choice) != "auto":
        name = _DTYPES.get(str(choice).lower().replace("torch.", ""))
        if name is None:
            raise InputError(f"dtype {choice!r} is not understood; use 'fp32', 'fp16', 'bf16' or 'auto'")
        return getattr(torch, name)
    dev = get_device(device)
    if dev.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if dev.type == "mps":
        return torch.float16
    return torch.float32


def seed_everything(seed: int = 0) -> int:
    """Seed Python's, NumPy's and torch's generators (torch only if it is importable). Returns seed."""
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:  # pragma: no cover - numpy is a dependency
        pass
    if "torch" in sys.modules or _importable("torch"):
        import torch

        torch.manual_seed(seed)
    return seed


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


# ---------------------------------------------------------------------------------------------
# hub reachability
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HubStatus:
    """Whether the Hugging Face hub can be used from this process, and why."""

    online: bool  # True when an HTTP request to the hub endpoint answered in time
    reason: str   # one readable sentence
    seconds: float  # how long the check took


_HUB: HubStatus | None = None
_HUB_LOCK = threading.Lock()
_ANNOUNCED = False
HUB_TIMEOUT_S = 1.5  # the whole reachability check never takes longer than this


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _probe(url: str, box: list) -> None:
    try:
        req = urllib.request.Request(url, method="HEAD")
        urllib.request.urlopen(req, timeout=HUB_TIMEOUT_S)
        box.append((True, "the hub answered"))
    except urllib.error.HTTPError as e:  # any HTTP answer means the hub is reachable
        box.append((True, f"the hub answered (HTTP {e.code})"))
    except Exception as e:  # DNS failure, refused, TLS, timeout ...
        box.append((False, f"{type(e).__name__}: {e}"))


def hub_status(refresh: bool = False) -> HubStatus:
    """Decide once per process whether the hub is reachable; never takes more than ~1.5 s.

    When it is not, sets HF_HUB_OFFLINE=1 for this process (so later hub calls fail fast
    instead of waiting ~30 s) and says so once on stderr.
    """
    global _HUB
    with _HUB_LOCK:
        if _HUB is not None and not refresh:
            return _HUB
        t0 = time.perf_counter()
        if _env_true("HF_HUB_OFFLINE") or _env_true("TRANSFORMERS_OFFLINE"):
            _HUB = HubStatus(False, "HF_HUB_OFFLINE is set", 0.0)
            return _HUB
        endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
        box: list = []
        # a daemon thread, so a DNS lookup that hangs (socket timeouts do not cover it) cannot stall us
        t = threading.Thread(target=_probe, args=(endpoint + "/api/models?limit=1", box), daemon=True)
        t.start()
        t.join(HUB_TIMEOUT_S)
        online, reason = box[0] if box else (False, f"no answer from {endpoint} within {HUB_TIMEOUT_S:.1f} s")
        _HUB = HubStatus(online, reason, time.perf_counter() - t0)
        if not online:
            go_offline(f"the Hugging Face hub is not reachable ({reason})")
        return _HUB


def go_offline(why: str = "") -> None:
    """Put this process in hub-offline mode (HF_HUB_OFFLINE=1) and announce it once."""
    global _ANNOUNCED
    os.environ["HF_HUB_OFFLINE"] = "1"
    hub_consts = sys.modules.get("huggingface_hub.constants")
    if hub_consts is not None:  # huggingface_hub reads the variable at import time
        hub_consts.HF_HUB_OFFLINE = True
    if not _ANNOUNCED:
        _ANNOUNCED = True
        msg = f"mmkit: working offline: {why}. " if why else "mmkit: working offline. "
        print(msg + "Family names (e.g. 'blip-caption') use the bundled ShapesWorld models; "
              "models already in your Hugging Face cache still load.", file=sys.stderr)


def is_cached(repo_id: str) -> bool:
    """True when a hub model's config is already in the local Hugging Face cache (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover
        return False
    try:
        path = try_to_load_from_cache(repo_id, "config.json")
    except Exception:
        return False
    return isinstance(path, str) and os.path.exists(path)


def environment() -> dict[str, str]:
    """What this machine runs: versions, device, default dtype, and whether the hub is reachable."""
    import platform
    from importlib import metadata

    def version(pkg: str) -> str:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return "not installed"

    info = {"python": platform.python_version()}
    info.update({pkg: version(pkg) for pkg in ("torch", "transformers", "ipywidgets", "matplotlib")})
    dev = get_device()
    info["device"] = str(dev)
    info["dtype"] = str(get_dtype(dev)).replace("torch.", "")
    hub = hub_status()
    info["hub"] = "reachable" if hub.online else f"offline ({hub.reason})"
    info["speedups"] = "on" if speedups_enabled() else "off"
    return info


# ---------------------------------------------------------------------------------------------
# speed-ups (mmkit/speedups): a switch, and the transformers versions they are tested on
# ---------------------------------------------------------------------------------------------

# the transformers versions the speed-ups are tested on (CI runs the oldest in `make test-colab`, the newest in
# `make test`): the oldest, and the first release past the newest tested (5.25.x)
SPEEDUPS_TESTED = ("5.15.0", "5.26.0")
_SPEEDUPS: bool | None = None  # set_speedups' choice; None: $MMKIT_SPEEDUPS decides (default on)
_WINDOW: tuple[str, bool] | None = None  # (transformers version, inside SPEEDUPS_TESTED), checked once
_WINDOW_NOTICED = False


def set_speedups(on: bool | None) -> None:
    """Switch mmkit's speed-ups on or off for this process, at once, for models already loaded too.

    Off, every model runs transformers' own code (the same outputs as plain transformers). None goes back to
    $MMKIT_SPEEDUPS (`MMKIT_SPEEDUPS=0` turns them off; default on). Inside the tested transformers range only:
    set_speedups(True) does not turn them on for a version outside SPEEDUPS_TESTED.
    """
    global _SPEEDUPS
    if on is not None and not isinstance(on, bool):
        from .errors import InputError

        raise InputError(f"set_speedups({on!r}): pass True, False, or None (back to $MMKIT_SPEEDUPS)")
    _SPEEDUPS = on


def speedups_enabled() -> bool:
    """Whether mmkit's speed-ups run now: switched on (set_speedups / $MMKIT_SPEEDUPS) and transformers inside
    SPEEDUPS_TESTED. Cheap: the patched forwards ask on every call."""
    wanted = _SPEEDUPS if _SPEEDUPS is not None else \
        os.environ.get("MMKIT_SPEEDUPS", "1").strip().lower() not in {"0", "false", "no", "off"}
    return wanted and _transformers_tested()


def _transformers_tested() -> bool:
    """Whether the installed transformers lies inside SPEEDUPS_TESTED; says so once on stderr when it does not."""
    global _WINDOW, _WINDOW_NOTICED
    import transformers

    version = transformers.__version__
    if _WINDOW is None or _WINDOW[0] != version:
        _WINDOW = (version, version_inside(version, *SPEEDUPS_TESTED))
        if not _WINDOW[1] and not _WINDOW_NOTICED:
            _WINDOW_NOTICED = True
            print(f"mmkit: speed-ups off: transformers {version} is outside the versions they are tested on "
                  f"({SPEEDUPS_TESTED[0]} up to, not including, {SPEEDUPS_TESTED[1]}); every model runs transformers' "
                  "own code (correct, somewhat slower).", file=sys.stderr)
    return _WINDOW[1]


def version_inside(version: str, oldest: str, past_newest: str) -> bool:
    """oldest <= version < past_newest, by release numbers (5.25.0.dev0 and 5.25.1 count as 5.25)."""
    from packaging.version import InvalidVersion, Version

    try:
        v = Version(version).release
    except InvalidVersion:
        return False
    return Version(oldest).release <= v < Version(past_newest).release
