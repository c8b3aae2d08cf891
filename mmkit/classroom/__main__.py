"""`python -m mmkit.classroom` (`make classroom`): the shared model server plus Voila with preheated kernels.

    python -m mmkit.classroom [--port 8866] [--pool 8] [--model blip-caption] [--ip 127.0.0.1] [--no-server]

The app page (notebooks/11_caption_app.ipynb up to the cell that shows the app; the check cells that
follow it are for the course, not for each student) is written to build/classroom/ and served by Voila.
`--pool N` kernels run it ahead of time (Voila's preheat), so a student's page comes from a warm kernel;
Voila starts a new one for the pool after each visitor. Each kernel captions through the model server
($MMKIT_MODEL_SERVER), so it stays small: no torch, no model. `--no-server` loads the model in every
kernel instead (what `make app` does), for comparison.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from .client import ENV

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "notebooks" / "11_caption_app.ipynb"
# s before Voila replaces a kernel taken from the pool: each replacement runs the app page inside Voila's own
# process, so 30 of them during the first rush slowed every student's page (measured: benchmarks/classroom.py)
FILL_DELAY = 180


def app_notebook(out_dir: Path, source: Path = SOURCE) -> Path:
    """Write the app-only copy of the caption app notebook (cells up to the one that shows `app`)."""
    nb = json.loads(source.read_text(encoding="utf-8"))
    cells = []
    for c in nb["cells"]:
        cells.append(c)
        if c["cell_type"] == "code" and "".join(c["source"]).rstrip().endswith("\napp"):
            break
    else:
        raise SystemExit(f"{source} has no cell ending in `app`; cannot find the app to serve")
    nb["cells"] = [dict(c, outputs=[], execution_count=None) if c["cell_type"] == "code" else c for c in cells]
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "caption_app.ipynb"
    path.write_text(json.dumps(nb, indent=1), encoding="utf-8")
    return path


def voila_command(notebook: Path, port: int, pool: int, ip: str = "127.0.0.1", extra=(),
                  fill_delay: float = FILL_DELAY) -> list[str]:
    """The Voila command line: preheated pool of `pool` kernels (0: a fresh kernel per visitor)."""
    cmd = [sys.executable, "-m", "voila", str(notebook), "--no-browser", f"--port={port}", f"--Voila.ip={ip}",
           f"--Voila.root_dir={notebook.parent}",
           "--MappingKernelManager.cull_idle_timeout=1800",  # a closed tab's kernel goes after 30 min
           "--MappingKernelManager.cull_interval=120",
           "--KernelManager.transport=ipc"]  # Unix sockets: 30 kernels starting at once race for TCP ports
    if pool > 0:
        cmd += ["--preheat_kernel=True", f"--pool_size={pool}", f"--VoilaKernelManager.fill_delay={fill_delay}"]  # refill after the rush, not during it
    return cmd + list(extra)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mmkit.classroom", description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=8866, help="Voila's port (students open http://HOST:PORT/)")
    ap.add_argument("--ip", default="127.0.0.1", help="interface to listen on; 0.0.0.0 for a classroom network")
    ap.add_argument("--pool", type=int, default=8, help="preheated kernels kept ready (0: none)")
    ap.add_argument("--model", default="blip-caption", help="the captioning model the server loads")
    ap.add_argument("--model-port", type=int, default=0, help="the model server's port (0: a free one)")
    ap.add_argument("--no-server", action="store_true", help="no shared model: each kernel loads its own")
    ap.add_argument("--out", default=str(REPO / "build" / "classroom"), help="where the app notebook is written")
    args, extra = ap.parse_known_args(argv)
    notebook = app_notebook(Path(args.out))
    env = dict(os.environ)
    server = None
    if not args.no_server:
        from .server import ModelServer

        server = ModelServer(args.model, port=args.model_port).start()
        env[ENV] = server.url
        print(f"mmkit classroom: model server {server.url} ({server.m.spec.name}, {server.m.spec.source})",
              flush=True)
    else:
        env.pop(ENV, None)
    print(f"mmkit classroom: Voila on http://{args.ip}:{args.port}/ with {args.pool} preheated kernels", flush=True)
    proc = subprocess.Popen(voila_command(notebook, args.port, args.pool, args.ip, extra), env=env)

    def end(*_):  # SIGTERM (a service manager, a test) ends Voila and its kernels too
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, end)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()  # Voila shuts its kernels down on SIGTERM
        try:
            return proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
