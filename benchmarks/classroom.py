"""Classroom load test: N simulated students use the caption app at once, either at the protocol level (`--client ws`,
the default: mmkit.classroom.student, HTTP (the page and the static files a chromium page loads, listed in
classroom_assets.json) + the kernel websocket + ipywidgets' comm messages, no browser, all in this process) or
in browsers (`--client browser`, benchmarks/classroom_browser.py: Playwright browser contexts, 5 per headless
chromium), against `make app` (plain Voila: a fresh kernel per visitor that loads its own model and runs the
whole notebook 11), `make classroom` (python -m mmkit.classroom: a pool of preheated kernels that caption
through one shared model server) and "pool" (the same preheated kernels, each loading its own model).
Localhost only; bounded in users, time and memory.

Each student opens the page (all together), picks their own ShapesWorld scene (test #i), captions it greedily,
clicks a word, switches to beam search, captions again and clicks another word; the actions are spread over
the run with seeded random think times. Measured: time to the page (ws: first byte and whole page; browser:
server response and first contentful paint) and to a usable app (ws: the Caption button's model received;
browser: drawn), caption latency (click to the new history row), word-map latency, errors (timeouts, the error
box, a traceback, a history row that is not the student's own), peak memory (PSS) and CPU of the server side
(Voila, kernels, model server) and of the load generator (ws: this process; browser: chromium), sampled every
2 s. The run stops early when server + client memory passes --max-gb (default 16) or the machine's available
memory falls under 3 GB.

    .venv/bin/python benchmarks/classroom.py                    # 30 ws students, 5 min, classroom and app
    .venv/bin/python benchmarks/classroom.py --users 6 --duration 60 --setups classroom   # the CI size
    nice -n 5 .venv/bin/python benchmarks/classroom.py --client browser --setups classroom
    .venv/bin/python benchmarks/classroom.py --record-assets     # re-list the static files (after a Voila upgrade)
Results: benchmarks/classroom_results_ws.json (ws) or classroom_results.json (browser) (--out); browser
screenshots of student 0 in out/browser/.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from classroom_browser import PAGE_TIMEOUT, drive, record_assets  # noqa: E402  (benchmarks/classroom_browser.py)

MIN_AVAILABLE_MB = 3 * 1024  # stop before the machine (shared with others) runs short


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(xs, q: float):
    """The q-th percentile (0-100) by nearest rank, or None for no data."""
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    return round(xs[min(len(xs) - 1, max(0, round(q / 100 * len(xs) + 0.5) - 1))], 3)


class Server:
    """`make app` ("app"), `make classroom` ("classroom") or its pool without the shared model ("pool": each
    preheated kernel loads its own model at its first caption) on a free port, in its own session."""

    def __init__(self, setup: str, pool: int, log: Path, timeout: float = 600):
        self.port = free_port()
        self.log = log
        env = dict(os.environ, HF_HUB_OFFLINE="1", TQDM_DISABLE="1", MPLBACKEND="Agg", JUPYTER_PLATFORM_DIRS="1")
        env.pop("MMKIT_MODEL_SERVER", None)
        if setup == "app":  # exactly what `make app` runs
            cmd = [sys.executable, "-m", "voila", str(REPO / "notebooks" / "11_caption_app.ipynb"), "--no-browser",
                   f"--port={self.port}", "--Voila.ip=127.0.0.1"]
            ready = "Voil"  # "Voilà is running at"
        else:
            cmd = [sys.executable, "-m", "mmkit.classroom", f"--port={self.port}", f"--pool={pool}",
                   "--out", str(log.parent / "classroom_nb")] + (["--no-server"] if setup == "pool" else [])
            ready = "is filled with" if pool > 0 else "Voil"
        self.out = open(log, "w")
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=self.out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        t0, deadline = time.monotonic(), time.monotonic() + timeout
        while ready not in log.read_text(errors="replace") or not self._listening():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{setup} server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        self.start_s = round(time.monotonic() - t0, 1)  # until the pool is full (classroom) or it listens (app)
        self.url = f"http://127.0.0.1:{self.port}/"

    def _listening(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.out.close()


class Sampler(threading.Thread):
    """Every 2 s: memory (PSS: shared pages counted once, split among the processes that share them; RSS where
    PSS cannot be read) and CPU of the server's process tree and of the browser's; aborts past max_gb, or when
    the machine's available memory falls under MIN_AVAILABLE_MB."""

    def __init__(self, server_pid: int, max_gb: float, max_wall: float = float("inf"), self_is_client=False):
        super().__init__(daemon=True)
        self.self_is_client = self_is_client  # ws: the load generator is this process, not its children
        self.max_wall = max_wall  # s: the run is stopped after this, whatever it is waiting for
        import psutil

        self.psutil, self.server_pid, self.max_mb = psutil, server_pid, max_gb * 1024
        self.samples: list[dict] = []
        self.reason = ""  # why the run was stopped early ("" when it was not)
        self.abort = threading.Event()
        self.done = threading.Event()
        self.procs: dict[int, object] = {}

    def _tree(self, pid: int) -> list:
        try:
            p = self.psutil.Process(pid)
            return [p] + p.children(recursive=True)
        except self.psutil.NoSuchProcess:
            return []

    def _measure(self, procs) -> tuple[float, float, int]:
        rss = cpu = 0.0
        n = 0
        for p in procs:
            p = self.procs.setdefault(p.pid, p)  # the same object each time, so cpu_percent has a baseline
            try:
                try:
                    rss += p.memory_full_info().pss / 2**20
                except (AttributeError, self.psutil.AccessDenied):
                    rss += p.memory_info().rss / 2**20
                cpu += p.cpu_percent(None)
                n += 1
            except (self.psutil.NoSuchProcess, self.psutil.AccessDenied):
                pass
        return rss, cpu, n

    def run(self) -> None:
        t0 = time.monotonic()
        # ws: the load generator is this process, which may hold much else (a pytest run's models): its memory
        # counts from here on, as what the students added
        base = self._measure(self._tree(os.getpid())[:1])[0] if self.self_is_client else 0.0
        while not self.done.is_set():
            server = self._tree(self.server_pid)
            ids = {p.pid for p in server}
            client = [p for p in self._tree(os.getpid())[0 if self.self_is_client else 1:] if p.pid not in ids]
            s_rss, s_cpu, kernels = self._measure(server)
            c_rss, c_cpu, _ = self._measure(client)
            c_rss = max(0.0, c_rss - base)
            self.samples.append(dict(t=round(time.monotonic() - t0, 1), server_mb=round(s_rss), server_cpu=s_cpu,
                                     client_mb=round(c_rss), client_cpu=c_cpu, server_procs=kernels,
                                     available_mb=round(self.psutil.virtual_memory().available / 2**20)))
            if s_rss + c_rss > self.max_mb or self.samples[-1]["available_mb"] < MIN_AVAILABLE_MB:
                self.reason = self.reason or f"memory at {self.samples[-1]['t']} s"
                self.abort.set()
            if time.monotonic() - t0 > self.max_wall:
                self.reason = self.reason or f"time limit of {self.max_wall:.0f} s"
                self.abort.set()
            self.done.wait(2.0)

    def summary(self) -> dict:
        s = self.samples[1:] or self.samples  # the first cpu_percent reading is 0 by definition
        if not s:
            return {}
        return dict(peak_server_mb=max(x["server_mb"] for x in s), peak_client_mb=max(x["client_mb"] for x in s),
                    peak_total_mb=max(x["server_mb"] + x["client_mb"] for x in s),
                    peak_server_cpu_pct=round(max(x["server_cpu"] for x in s)),
                    mean_server_cpu_pct=round(sum(x["server_cpu"] for x in s) / len(s)),
                    peak_client_cpu_pct=round(max(x["client_cpu"] for x in s)),
                    mean_client_cpu_pct=round(sum(x["client_cpu"] for x in s) / len(s)),
                    peak_server_procs=max(x["server_procs"] for x in s),
                    min_available_mb=min(x["available_mb"] for x in s))


ASSETS = REPO / "benchmarks" / "classroom_assets.json"  # the static files a chromium page loads (--record-assets)


def asset_paths(path: Path | None) -> list[str] | None:
    """The paths of an asset manifest (None for none)."""
    return None if path is None else [p for p, _ in json.loads(Path(path).read_text())["files"]]


def drive_ws(url: str, users: int, duration: float, abort: threading.Event, seed: int,
             assets: list[str] | None = None) -> list[dict]:
    """`users` protocol-level students (mmkit.classroom.student) in this process's event loop."""
    from mmkit.classroom.student import run_students

    return asyncio.run(run_students(url, users, duration, seed=seed, abort=abort, assets=assets))


def run(setup: str, users: int, duration: float, pool: int | None = None, max_gb: float = 16, seed: int = 0,
        shots: Path | None = None, client: str = "browser", assets: Path | None = None) -> dict:
    """One load test of `setup` ("classroom", "pool" or "app") with `client` students ("browser" or "ws"): a dict
    of the measurements and each student's. `assets`: a manifest (ASSETS) whose files ws students fetch too."""
    if client not in ("browser", "ws"):
        raise ValueError(f"client={client!r}: use 'browser' (chromium) or 'ws' (protocol level, no browser)")
    pool = users if pool is None else pool
    with tempfile.TemporaryDirectory(prefix=f"mmkit-{setup}-") as tmp:
        server = Server(setup, pool, Path(tmp) / "server.log")
        sampler = Sampler(server.proc.pid, max_gb, max_wall=duration + 2 * PAGE_TIMEOUT / 1000,
                          self_is_client=client == "ws")
        sampler.start()
        t = time.monotonic()
        try:
            if client == "ws":
                students = drive_ws(server.url, users, duration, sampler.abort, seed, asset_paths(assets))
            else:
                students = asyncio.run(drive(server.url, users, duration, sampler.abort, seed, shots))
        finally:
            sampler.done.set()
            sampler.join(5)
            wall = round(time.monotonic() - t, 1)
            log = server.log.read_text(errors="replace")
            server.stop()
    caps = [c for s in students for c in s["captions"]]
    maps = [m for s in students for m in s["maps"]]
    errors = [f"user {s['user']}: {e}" for s in students for e in s["errors"]]
    ws = [s for s in students if s.get("client") == "ws"]
    return dict(setup=setup, client=client, users=users, duration_s=duration, pool=pool if setup != "app" else 0,
                server_start_s=server.start_s, wall_s=wall, aborted_for_memory=sampler.reason.startswith("memory"),
                stopped_early=sampler.reason,
                response_p50_s=percentile([s.get("response_s") for s in students], 50),
                response_p95_s=percentile([s.get("response_s") for s in students], 95),
                first_paint_p50_s=percentile([s.get("first_paint_s") for s in students], 50),
                first_paint_p95_s=percentile([s.get("first_paint_s") for s in students], 95),
                first_byte_p50_s=percentile([s.get("first_byte_s") for s in students], 50),
                first_byte_p95_s=percentile([s.get("first_byte_s") for s in students], 95),
                assets_p50_s=percentile([s.get("assets_s") for s in students], 50),
                assets_p95_s=percentile([s.get("assets_s") for s in students], 95),
                asset_mb=round(sum(s.get("asset_bytes", 0) for s in students) / 2**20, 1),
                asset_errors=sorted({e for s in students for e in s.get("asset_errors", [])})[:10],
                states_via={k: sum(s.get("states_via") == k for s in ws) for k in ("control", "models")} if ws else None,
                shutdown_status=sorted({s.get("shutdown_status") for s in ws} - {None}) if ws else None,
                ready_p50_s=percentile([s.get("ready_s") for s in students], 50),
                ready_p95_s=percentile([s.get("ready_s") for s in students], 95),
                ready_max_s=percentile([s.get("ready_s") for s in students], 100),
                captions=len(caps), caption_p50_s=percentile(caps, 50), caption_p95_s=percentile(caps, 95),
                maps=len(maps), map_p50_s=percentile(maps, 50), map_p95_s=percentile(maps, 95),
                errors=len(errors), error_list=errors[:20], kernel_errors=log.count("Traceback"),
                **sampler.summary(), students=students)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=30)
    ap.add_argument("--duration", type=float, default=300, help="seconds over which each student's actions spread")
    ap.add_argument("--setups", default="classroom,app", help="comma-separated: classroom, pool, app")
    ap.add_argument("--pool", type=int, default=None, help="preheated kernels for classroom (default: --users)")
    ap.add_argument("--max-gb", type=float, default=16, help="stop when server + browser PSS passes this")
    ap.add_argument("--client", choices=["ws", "browser"], default="ws",
                    help="ws: protocol-level students in this process (no browser); browser: chromium via Playwright")
    ap.add_argument("--seed", type=int, default=0, help="the students' think times")
    ap.add_argument("--assets", default=str(ASSETS), help="ws: manifest of the static files each student fetches "
                                                         "as a browser would ('none': the page and the websocket only)")
    ap.add_argument("--record-assets", action="store_true",
                    help="open the classroom page once in chromium and write the files it loads to --assets")
    ap.add_argument("--out", default=None, help="default: benchmarks/classroom_results_ws.json (ws) or "
                                                "classroom_results.json (browser)")
    args = ap.parse_args(argv)
    assets = None if args.assets == "none" else Path(args.assets)
    if args.record_assets:
        import voila

        with tempfile.TemporaryDirectory(prefix="mmkit-assets-") as tmp:
            server = Server("classroom", 1, Path(tmp) / "server.log")
            try:
                files = asyncio.run(record_assets(server.url))
            finally:
                server.stop()
        assets.write_text(json.dumps(dict(
            what="same-origin files a chromium page of `make classroom` loaded before its Caption button was drawn "
                 "(first visit, no cache); mmkit.classroom.student fetches them 6 at a time like a browser",
            voila=voila.__version__, recorded=time.strftime("%Y-%m-%d, benchmarks/classroom.py --record-assets"),
            total_bytes=sum(n for _, n in files), files=files), indent=0))
        print(f"{len(files)} files, {sum(n for _, n in files) / 2**20:.1f} MB -> {assets}")
        return 0
    out = Path(args.out or REPO / "benchmarks" / ("classroom_results_ws.json" if args.client == "ws"
                                                   else "classroom_results.json"))
    shots = REPO / "out" / "browser"
    shots.mkdir(parents=True, exist_ok=True)
    results = []
    for setup in args.setups.split(","):
        load = os.getloadavg()
        res = run(setup.strip(), args.users, args.duration, args.pool, args.max_gb, args.seed,
                  shots=shots if args.client == "browser" else None, client=args.client,
                  assets=assets if args.client == "ws" else None)
        res = dict(res, load_before=[round(x, 2) for x in load], load_after=[round(x, 2) for x in os.getloadavg()])
        results.append(res)
        print(json.dumps({k: v for k, v in res.items() if k != "students"}, indent=1), flush=True)
    import platform

    out.write_text(json.dumps(dict(machine=f"{platform.machine()}, {os.cpu_count()} CPUs",
                                              date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                              results=results), indent=1))
    return 0 if all(r["errors"] == 0 for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
