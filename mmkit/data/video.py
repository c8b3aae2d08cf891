"""Video in and out with PyAV (whose wheel bundles FFmpeg): `video_frames` streams sampled frames, `write_video` encodes.

`video_frames` opens the file at once (so a file that is not a video, has no picture track or no frames fails
with `InputError` before any work), then yields `Frame`s one at a time while it decodes: a long clip is never
held in memory. Timestamps are the frames' own presentation times, so variable-frame-rate clips come out right;
rotation metadata (phones) is applied; huge pictures are scaled down while still in YUV.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Iterator, NamedTuple

from PIL import Image

from ..errors import InputError, describe, warn

MAX_SIDE = 1280  # frames whose longer side is above this are scaled down unless max_side says otherwise
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi", ".gif", ".mpg", ".mpeg", ".ogv", ".3gp"})
INSTALL = "install PyAV: pip install av (or pip install 'mmkit[video]')"


class Frame(NamedTuple):
    """One sampled frame."""

    time: float  # presentation time in seconds from the start of the clip
    image: Image.Image  # upright RGB picture, scaled to the size cap
    index: int  # position among the decoded frames (0-based), not among the sampled ones


@dataclass
class VideoInfo:
    """What the container says about the picture track (before any decoding beyond the first frame)."""

    width: int  # of the decoded, upright picture before scaling
    height: int
    duration: float | None  # seconds from the first frame to the end the header declares, None when it does not
    fps: float | None  # average frame rate, None when unknown
    frames: int | None  # frame count the container declares, None when it does not
    rotation: int  # degrees counter-clockwise applied to make the picture upright (0, 90, 180, 270)
    codec: str
    scaled_to: tuple[int, int] | None  # (width, height) of the frames handed out, when scaled down


def _av():
    try:
        import av
    except ImportError as e:  # the "video" extra is optional
        raise InputError(f"reading video needs PyAV, which is not installed: {INSTALL}") from e
    return av


def _open_source(source):
    """(what av.open takes, a description for messages) for a path, bytes or a binary file object."""
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.exists(path):
            raise InputError(f"video {describe(source)} does not exist; check the path")
        if os.path.isdir(path):
            raise InputError(f"video {describe(source)} is a folder; pass one video file")
        if os.path.getsize(path) == 0:
            raise InputError(f"video {describe(source)} is an empty file (0 bytes); download or record it again")
        return path, describe(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise InputError("the video bytes are empty; pass the file's content, e.g. open(path, 'rb').read()")
        return io.BytesIO(bytes(source)), describe(source)
    if hasattr(source, "read"):
        name = f"file object {getattr(source, 'name', type(source).__name__)!r}"
        if isinstance(source, io.TextIOBase) or isinstance(source.read(0), str):
            raise InputError(f"{name} is open in text mode; open the video in binary mode: open(path, 'rb')")
        return source, name
    raise InputError(f"cannot read a video from {describe(source)}; pass a file path, the file's bytes "
                     "or a binary file object")


def _scaled(w: int, h: int, cap: int) -> tuple[int, int] | None:
    """(w, h) scaled so the longer side is `cap` (even sizes for YUV), or None when it already fits."""
    if max(w, h) <= cap:
        return None
    s = cap / max(w, h)
    return max(2, round(w * s / 2) * 2), max(2, round(h * s / 2) * 2)


class VideoFrames:
    """An iterator of sampled `Frame`s from one video; made by `video_frames`. Use it once, in a for loop.

    `info` describes the clip; `truncated` becomes True when decoding stopped early on damaged data. The file
    is closed when the iteration ends (or by `close()`, or in a `with` block).
    """

    def __init__(self, source, every: float | None = 1.0, max_frames: int | None = None, max_side: int | None = None):
        if every is not None and (isinstance(every, bool) or not isinstance(every, (int, float)) or not every > 0):
            raise InputError(f"every={every!r} must be a number of seconds > 0 (or None for every frame)")
        if max_frames is not None and (isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1):
            raise InputError(f"max_frames={max_frames!r} must be a whole number >= 1 (or None for no limit)")
        if max_side is not None and (isinstance(max_side, bool) or not isinstance(max_side, int) or max_side < 16):
            raise InputError(f"max_side={max_side!r} must be a whole number of pixels >= 16 (or None for {MAX_SIDE})")
        av = _av()
        target, self.name = _open_source(source)
        self.every, self.max_frames, self.cap = every, max_frames, max_side or MAX_SIDE
        self.truncated = False
        self._gen = None
        self._frames_end = None  # where the decoded frames stop showing, once they have all been read
        try:
            self._container = av.open(target, metadata_errors="ignore")
        except av.FFmpegError as e:
            raise InputError(f"{self.name} is not a readable video ({_reason(e)}): it is damaged, cut short, or not "
                             "a video at all; re-download it or re-encode it (e.g. to MP4/H.264)") from None
        try:
            self._prepare(av)
        except BaseException:
            self._container.close()
            raise

    def _prepare(self, av) -> None:
        c = self._container
        if not c.streams.video:
            kinds = sorted({s.type for s in c.streams})
            if not kinds:
                raise InputError(f"{self.name} has no streams at all: an empty (zero-frame) recording; record or "
                                 "export the video again")
            what = "only audio" if kinds == ["audio"] else "only " + ", ".join(kinds)
            raise InputError(f"{self.name} has no picture track ({what}); pass a video file with a video stream, or "
                             "use an audio tool for sound")
        self._stream = stream = c.streams.video[0]
        stream.thread_type = "AUTO"  # frame-parallel decoding, same frames
        self._frames = c.decode(stream)
        self._first = self._next_decoded(av)  # decode one frame now: a zero-frame or damaged file fails here
        if self._first is None:
            raise InputError(f"{self.name} has a video stream but no decodable frames (an empty or broken "
                             "recording); record or export it again")
        f = self._first
        rot = int(round((getattr(f, "rotation", 0) or 0) / 90)) * 90 % 360
        w, h = (f.height, f.width) if rot in (90, 270) else (f.width, f.height)
        dur = _header_length(c, stream, f.time or 0.0)
        rate = stream.average_rate or stream.guessed_rate
        self.info = VideoInfo(w, h, dur, float(rate) if rate else None, stream.frames or None, rot,
                              stream.codec_context.name, _scaled(w, h, self.cap))

    def _next_decoded(self, av):
        try:
            return next(self._frames)
        except StopIteration:
            return None
        except (av.FFmpegError, EOFError) as e:
            if getattr(self, "info", None) is None:
                raise InputError(f"{self.name} cannot be decoded ({_reason(e)}); re-encode it (e.g. to MP4/H.264)") from None
            self.truncated = True
            warn(f"{self.name}: decoding stopped early ({_reason(e)}); the file is damaged or cut short, and frames "
                 "after this point are missing")
            return None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self._container.close()

    def __iter__(self) -> Iterator[Frame]:
        return self

    def __next__(self) -> Frame:
        if self._gen is None:
            self._gen = self._generate()
        return next(self._gen)

    def _generate(self) -> Iterator[Frame]:
        av = _av()
        every, start, next_t, n, index, t, shown = self.every, None, 0.0, 0, 0, None, 0.0
        frame = self._first
        self._first = None
        try:
            while frame is not None:
                t = frame.time if frame.time is not None else index / (self.info.fps or 1.0)
                start = t if start is None else start  # a clip may not start at 0
                t -= start
                shown = float(frame.duration * frame.time_base) if frame.duration and frame.time_base else 0.0
                if every is None or t >= next_t - 1e-6:
                    yield Frame(round(t, 6), self._picture(frame), index)
                    n += 1
                    if self.max_frames is not None and n >= self.max_frames:
                        return
                    if every is not None:
                        next_t += every * max(1, int((t - next_t) // every) + 1)  # the next grid time after t
                frame, index = self._next_decoded(av), index + 1
            if t is not None:
                self._frames_end = round(t + (shown or 1.0 / (self.info.fps or 25.0)), 6)
            self._check_end()
        finally:
            self.close()

    @property
    def end(self) -> float | None:
        """Where the clip ends (s from its first frame): the header's duration, or where all the frames stop."""
        # the frames' end wins when they were all read and the file was cut short or runs past its header
        frames_end, duration = self._frames_end, self.info.duration
        if frames_end is None or (duration is not None and not self.truncated and duration >= frames_end):
            return duration
        return frames_end

    def _check_end(self) -> None:
        """Warn when the frames end well before the duration the header declares (a file cut short)."""
        info, end = self.info, self._frames_end
        if self.truncated or end is None or not info.duration:
            return
        if info.duration - end > max(1.0, 0.1 * info.duration):
            self.truncated = True
            warn(f"{self.name}: the frames end at {end:.2f} s but the file says it lasts {info.duration:.2f} s; it "
                 "was probably cut short, and the rest is missing (download or copy it again)")

    def _picture(self, frame) -> Image.Image:
        """The frame as an upright RGB image, scaled (in YUV, before conversion) to the size cap."""
        rot = self.info.rotation
        size = self.info.scaled_to
        if size is not None and rot in (90, 270):
            size = (size[1], size[0])  # scale the stored (unrotated) picture
        if size is not None:
            frame = frame.reformat(width=size[0], height=size[1])
        image = frame.to_image()
        if rot:
            image = image.transpose({90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180,
                                     270: Image.Transpose.ROTATE_270}[rot])  # counter-clockwise, like FFmpeg
        return image


def _header_length(c, stream, first: float) -> float | None:
    """Seconds from the first frame to the end the header declares; None when it declares none."""
    # Matroska and WebM count their duration from timestamp 0, other containers from their start time: a clip
    # whose timestamps run from 5 s to 13 s says 13 s in an MKV and 8 s in an MP4; both give 8 s here
    if c.duration:
        end = c.duration / 1e6 + (0.0 if "matroska" in (c.format.name or "") else (c.start_time or 0) / 1e6)
    elif stream.duration and stream.time_base:
        end = float(((stream.start_time or 0) + stream.duration) * stream.time_base)
    else:
        return None
    length = round(end - first, 6)
    return length if length > 0 else None


def _reason(e: BaseException) -> str:
    return getattr(e, "strerror", None) or str(e) or type(e).__name__


def video_frames(source, every: float | None = 1.0, max_frames: int | None = None,
                 max_side: int | None = None) -> VideoFrames:
    """Stream sampled frames of a video: an iterator of Frame(time, image, index), one decoded at a time.

    Args:
        source: a file path, the file's bytes, or a binary file object (MP4, WebM, MKV, MOV, AVI, GIF...).
        every: seconds between sampled frames (the first frame at or after each multiple of `every`);
            None hands out every frame.
        max_frames: stop after this many sampled frames (None: to the end).
        max_side: scale frames down so the longer side is at most this many pixels (default 1280).

    Raises InputError, naming the fix, for a missing/empty/damaged file, a file with no picture track (audio
    only) or no frames. A file that breaks off midway yields the frames before the break, with a warning.
    """
    return VideoFrames(source, every, max_frames, max_side)


def is_video_path(path) -> bool:
    """True when a path's suffix is a common video container (.mp4, .webm, .mkv, .mov, .avi, ...)."""
    return os.path.splitext(os.fspath(path))[1].lower() in VIDEO_SUFFIXES


def write_video(frames, path_or_buffer, fps: float = 8.0, format: str | None = None, times=None,
                rotation: int = 0, quality: int = 18):
    """Encode RGB frames (PIL images or (H, W, 3) uint8 arrays, all one size) to MP4 (H.264) or WebM (VP9).

    Args:
        frames: an iterable of frames; consumed one at a time.
        path_or_buffer: a file path (its suffix picks the format) or a writable binary buffer (give format).
        fps: frame rate; with `times` it is only the time base's resolution hint.
        format: "mp4" or "webm" (default: from the path's suffix).
        times: optional presentation time (s) of each frame, for variable-frame-rate clips.
        rotation: display-rotation metadata in degrees (what a phone writes); pixels are stored as given.
        quality: CRF, lower is better (18 keeps ShapesWorld's colours).

    Returns the path or buffer.
    """
    from fractions import Fraction

    import numpy as np

    av = _av()
    if format is None:
        if not isinstance(path_or_buffer, (str, os.PathLike)):
            raise InputError("format is needed when writing to a buffer: 'mp4' or 'webm'")
        format = os.path.splitext(os.fspath(path_or_buffer))[1].lstrip(".").lower()
    if format not in ("mp4", "webm"):
        raise InputError(f"format {format!r}: use 'mp4' or 'webm'")
    codec = "libx264" if format == "mp4" else "libvpx-vp9"
    container = av.open(path_or_buffer, "w", format=format)
    try:
        stream = None
        time_base = Fraction(1, 1000)  # millisecond timestamps for variable-frame-rate clips
        times = iter(times) if times is not None else None
        for i, fr in enumerate(frames):
            a = np.asarray(fr.convert("RGB") if hasattr(fr, "convert") else fr, dtype=np.uint8)  # (H, W, 3)
            if stream is None:
                opts = {"crf": str(quality)} if format == "mp4" else {"crf": str(quality), "b": "0", "deadline": "good",
                                                                      "cpu-used": "8"}
                stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1000), options=opts)
                stream.height, stream.width = a.shape[0] // 2 * 2, a.shape[1] // 2 * 2
                stream.pix_fmt = "yuv420p"
                if times is not None:
                    stream.codec_context.time_base = time_base
                if rotation:
                    stream.set_display_rotation(rotation)
            a = a[: stream.height, : stream.width]
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(a), format="rgb24")
            if times is not None:
                frame.pts, frame.time_base = int(round(next(times) * 1000)), time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        if stream is None:
            raise InputError("no frames to write; pass at least one frame")
        for packet in stream.encode():
            container.mux(packet)
    finally:
        container.close()
    return path_or_buffer
