"""Video: decoding throughput of mmkit.data.video_frames against a plain PyAV loop, and a 1-minute 720p clip
captioned at 1 frame/s without holding its frames, with the peak memory measured. One run, one machine.

Rows (times: medians of 5 interleaved rounds after a warm-up, benchmarks/timing.py):
  decode-all:   every frame of a 720p H.264 clip to RGB. plain: `for f in container.decode(video=0):
                f.to_image()`; mmkit: `list(video_frames(path, every=None))` (timestamps, rotation, size cap).
  decode-1fps:  the frames at 1 frame/s. plain: the same loop, converting only the frame at or after each whole
                second; mmkit: `video_frames(path, every=1.0)`.
  long-clip:    `mmkit.caption_video(shapes-blip-caption, 720p clip, every=1.0)` in a fresh process, for a 10 s and
                a 60 s clip: peak RSS over the RSS once the model is loaded (the same for both when nothing
                accumulates), against the size all decoded frames would take.

    python benchmarks/video.py            # writes benchmarks/video_results.json
    python benchmarks/video.py --quick    # a 12-second clip, for a smoke run
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

import av  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import timed_together  # noqa: E402  (benchmarks/timing.py: interleaved rounds, medians)

W, H, FPS = 1280, 720, 25


def make_clip(path: str, seconds: float) -> int:
    """A 720p H.264 clip of ShapesWorld shapes moving (each 64 px frame scaled 10x onto a 1280x720 canvas)."""
    from mmkit.data import ShapesClips

    clip = ShapesClips(1, seed=7, duration=seconds, fps=FPS)[0]
    c = av.open(path, "w")
    s = c.add_stream("libx264", rate=FPS, options={"preset": "veryfast", "crf": "23"})
    s.width, s.height, s.pix_fmt = W, H, "yuv420p"
    n = 0
    for frame in clip.frames():
        canvas = Image.new("RGB", (W, H), (240, 240, 240))
        canvas.paste(frame.resize((640, 640), Image.NEAREST), ((W - 640) // 2, (H - 640) // 2))
        for p in s.encode(av.VideoFrame.from_image(canvas)):
            c.mux(p)
        n += 1
    for p in s.encode():
        c.mux(p)
    c.close()
    return n


def plain_loop(path: str, every: float | None) -> int:
    """The baseline: PyAV's decode loop, converting the frames wanted to PIL images."""
    n, next_t = 0, 0.0
    with av.open(path) as c:
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        for f in c.decode(stream):
            if every is None or f.time >= next_t - 1e-6:
                f.to_image()
                n += 1
                next_t += every or 0.0
    return n


def mmkit_loop(path: str, every: float | None) -> int:
    from mmkit.data import video_frames

    return sum(1 for _ in video_frames(path, every=every))


def rss_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process in MB, from /proc (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(path: str) -> None:
    """Run in a fresh process: load the captioner, then caption the clip at 1 frame/s; print JSON."""
    import torch

    import mmkit

    torch.set_num_threads(1)
    m = mmkit.load_model("shapes-blip-caption")
    mmkit.caption(m, Image.new("RGB", (64, 64), (240, 240, 240)))  # warm up: first-call allocations
    base = rss_mb("VmRSS")
    t0 = time.perf_counter()
    res = mmkit.caption_video(m, path, every=1.0)
    print(json.dumps({"seconds": time.perf_counter() - t0, "frames": len(res.times), "segments": len(res.segments),
                      "rss_loaded_mb": base, "peak_mb": rss_mb("VmHWM")}))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a 12 s clip instead of 60 s")
    ap.add_argument("--out", default=str(Path(__file__).with_name("video_results.json")))
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child)
        return 0
    seconds = 12 if args.quick else 60
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "clip.mp4")
        t0 = time.perf_counter()
        n = make_clip(path, seconds)
        print(f"made a {seconds} s {W}x{H} clip, {n} frames, {os.path.getsize(path) / 1e6:.1f} MB, "
              f"in {time.perf_counter() - t0:.1f} s")
        for name, every in (("decode-all", None), ("decode-1fps", 1.0)):
            n_plain, n_mm = plain_loop(path, every), mmkit_loop(path, every)
            assert n_plain == n_mm, (n_plain, n_mm)  # the same frames come out
            t = timed_together({"plain": lambda: plain_loop(path, every), "mmkit": lambda: mmkit_loop(path, every)},
                               repeats=5)
            tp, tm = t["plain"], t["mmkit"]
            rows[name] = {"frames_out": n_mm, "decoded": n, "plain_s": round(tp, 3), "mmkit_s": round(tm, 3),
                          "plain_decoded_fps": round(n / tp, 1), "mmkit_decoded_fps": round(n / tm, 1),
                          "ratio_mmkit_over_plain_time": round(tm / tp, 3)}
            print(f"{name:12s} plain {n / tp:7.1f} frames/s  mmkit {n / tm:7.1f} frames/s  "
                  f"time ratio mmkit/plain {tm / tp:.2f}")
        short = os.path.join(tmp, "short.mp4")
        n_short = make_clip(short, max(4, seconds / 6))
        runs = {}
        for label, p, frames in (("short", short, n_short), ("long", path, n)):
            out = subprocess.run([sys.executable, __file__, "--child", p], capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            r.update(clip_seconds=frames / FPS, clip_frames=frames, resolution=f"{W}x{H}",
                     peak_over_loaded_mb=round(r["peak_mb"] - r["rss_loaded_mb"], 1),
                     all_frames_rgb_mb=round(frames * W * H * 3 / 2**20, 1),
                     sampled_frames_rgb_mb=round(r["frames"] * W * H * 3 / 2**20, 1))
            runs[label] = r
            print(f"{label:5s} clip  {frames / FPS:4.0f} s: {r['frames']} frames captioned at 1 frame/s in "
                  f"{r['seconds']:.1f} s; peak RSS {r['peak_mb']:.0f} MB, {r['peak_over_loaded_mb']:.0f} MB over the "
                  f"loaded model (all {frames} frames as RGB: {r['all_frames_rgb_mb']:.0f} MB; the sampled ones: "
                  f"{r['sampled_frames_rgb_mb']:.0f} MB)")
        rows["long-clip"] = runs
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs visible", "pyav": av.__version__,
              "python": platform.python_version(), "rows": rows}
    if not args.quick:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
