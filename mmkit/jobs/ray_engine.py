"""The Ray engine: the same shards, done by Ray Data actors that load the model once each.

`ray.data.from_items(pending shards).map_batches(ShardWorker, concurrency=workers, num_cpus=...)`: each actor
loads the model in its constructor, then takes one shard at a time: decodes it (JPEG draft; 2 threads, up to
3 batches ahead of the model), runs the same fixed batches as the local engine and writes the shard file
itself (atomically). Ray retries the task of a worker that dies, and a shard file appears only complete, so
the output is whole and has no duplicates; resume works exactly as for the local engine. Actors ask for 0.5
CPU each: on a 2-CPU machine whole-CPU actors would leave nothing for Ray Data's own read tasks and the job
would wait forever.
"""
from __future__ import annotations

import logging
import os
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from ..errors import InputError


class ShardWorker:
    """A Ray Data actor: one model, many shards."""

    def __init__(self, model: str, task: str, options: dict, out: str, batch_size: int, draft: bool,
                 device=None, threads: int = 1):
        import torch

        import mmkit
        from .shards import Journal
        from .tasks import get_task

        torch.set_num_threads(max(1, threads))
        self.m = mmkit.load_model(model, device=device)
        self.task, self.options, self.batch_size, self.draft = get_task(task), options, batch_size, draft
        self.journal = Journal(out)
        self.plan = self.journal.plan()

    def __call__(self, batch: dict) -> dict:
        from .local import Timing, decode_one, process_shard_batches
        from .source import input_size

        size = input_size(self.m) if self.draft else 0
        out = {"shard": [], "n": [], "decode": [], "model": [], "write": []}
        for k in batch["shard"]:
            k = int(k)
            paths = self.plan[k]
            timing = Timing()
            if not self.journal.shard_path(k).exists():  # a retried task whose shard was already written
                batches = [paths[i:i + self.batch_size] for i in range(0, len(paths), self.batch_size)]
                ahead: dict = {}  # batch index -> futures: the next batches decode while the model runs

                def decoded(i):
                    for j in range(i, min(i + 3, len(batches))):
                        if j not in ahead:
                            ahead[j] = [pool.submit(decode_one, p, size, self.draft) for p in batches[j]]
                    got = [f.result() for f in ahead.pop(i)]
                    timing["decode"] += sum(g[2] for g in got)
                    return [(im, err, st) for im, err, _, st in got]

                with ThreadPoolExecutor(2, thread_name_prefix="mmkit-decode") as pool:
                    rows = process_shard_batches(self.task, self.m, self.options, batches, decoded, timing)
                t = time.perf_counter()
                self.journal.write_shard(k, rows)
                timing["write"] += time.perf_counter() - t
            for key, value in (("shard", k), ("n", len(paths)), ("decode", timing["decode"]),
                               ("model", timing["model"]), ("write", timing["write"])):
                out[key].append(value)
        return out


CONNECT_TIMEOUT_S = 5.0  # how long the reachability check waits for a cluster's port to answer
CLIENT_PORT = 10001  # Ray Client's default port, for "ray://host" without one


def check_address(address: str | None, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """InputError unless HOST:PORT or ray://HOST[:PORT] answers a TCP connect (Ray would retry it for minutes)."""
    if not _checked(address):
        return
    host, port = _host_port(address)
    try:
        for family, kind, proto, _, where in _resolve(host, port, timeout):
            try:
                with socket.socket(family, kind, proto) as s:
                    s.settimeout(timeout)
                    s.connect(where)
                break
            except OSError as e:
                failed = e
        else:
            raise failed
    except OSError as e:
        why = getattr(e, "strerror", None) or str(e) or type(e).__name__
        raise InputError(f"ray_address={address!r} (--ray-address): nothing answers at {host}:{port} ({why}); start "
                         "the cluster there (`ray start --head`) or check the address, or leave ray_address out "
                         "(drop --ray-address) to start a local Ray") from None


def _resolve(host: str, port: int, timeout: float) -> list:
    """socket.getaddrinfo within `timeout` seconds (a name server that does not answer would block for minutes):
    OSError when it fails or takes longer. The lookup left behind runs on in a daemon thread."""
    import threading

    box: dict = {}

    def look() -> None:
        try:
            box["found"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as e:
            box["error"] = e

    t = threading.Thread(target=look, name="mmkit-resolve", daemon=True)
    t.start()
    t.join(timeout)
    if "error" in box:
        raise box["error"]
    if not box.get("found"):
        raise OSError(f"the name lookup of {host!r} took more than {timeout:g} s")
    return box["found"]


def _checked(address: str | None) -> bool:
    """Whether check_address tests `address`: not None, "auto", "local", another scheme, or Ray already started."""
    ray = sys.modules.get("ray")
    if not address or address in ("auto", "local") or (ray is not None and ray.is_initialized()):
        return False  # left to Ray (run_ray uses a cluster this process already joined)
    return address.startswith("ray://") or "://" not in address


def _host_port(address: str) -> tuple[str, int]:
    """(host, port) of HOST:PORT, [IPv6]:PORT or ray://HOST[:PORT]; InputError on another form."""
    client = address.startswith("ray://")
    rest = address[len("ray://"):] if client else address
    host, sep, port = rest.rpartition(":")
    if not sep or "]" in port:  # no port (or only an IPv6 literal's colons)
        host, port = rest, str(CLIENT_PORT) if client else ""
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"ray_address={address!r} (--ray-address): pass HOST:PORT of the cluster's head (e.g. "
                         "10.0.0.5:6379), ray://HOST:10001 for Ray Client, or 'auto' for the cluster this node "
                         "belongs to; leave it out to start a local Ray")
    return host, int(port)


def model_reference(m) -> str:
    """What a worker passes to load_model to get the same model: a folder for path models, else the name."""
    return m.spec.repo if m.spec.source in ("path", "bundled") else m.spec.name


def run_ray(task, m, options: dict, plan, pending: list[int], journal, *, batch_size: int, draft: bool, bar,
            timing, address: str | None = None, workers: int = 2, num_cpus: float = 0.5) -> None:
    """Do the pending shards on Ray (a local cluster unless `address` names one); each shard file is written
    by the actor that did it. Ray's start-up (init and actors) is timed apart, as timing["start"]."""
    try:
        import ray
    except ImportError:
        raise InputError("engine='ray' needs Ray: pip install 'mmkit[scale]' (ray[data]), or use engine='local'") from None
    if not pending:
        return
    t0 = time.perf_counter()
    if not ray.is_initialized():
        check_address(address)
        kw = {"address": address} if address else {"num_cpus": max(2, os.cpu_count() or 1)}
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False, **kw)
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.verbose_progress = False
    ds = ray.data.from_items([{"shard": k} for k in pending], override_num_blocks=len(pending))
    ds = ds.map_batches(ShardWorker, batch_size=1, compute=ray.data.ActorPoolStrategy(size=max(1, int(workers))),
                        num_cpus=num_cpus,
                        fn_constructor_kwargs=dict(model=model_reference(m), task=task.name, options=options,
                                                   out=str(journal.out), batch_size=batch_size, draft=draft,
                                                   device=str(m.device)))  # Ray Data restarts dead actors
    first = True
    for row in ds.iter_rows():
        if first:  # init, planning and the actors' model loading: Ray's fixed cost
            timing["start"] = time.perf_counter() - t0
            first = False
        bar.update(int(row["n"]))
        for key in ("decode", "model", "write"):
            timing[key] += float(row[key])
