"""Image-text tasks over time: caption_video, search_video, answer_video.

Each samples frames (`mmkit.data.video_frames`), runs the ordinary image task (`mmkit.caption`,
`embed_images`/`embed_texts` or `match`, `mmkit.answer`) on them in batches while they stream, and turns
the per-frame results into something with times: segments, moments, a voted answer. Only one batch of
frames is in memory at a time. The models see one frame at a time: nothing here knows order or motion.
"""
from __future__ import annotations

import io
import os
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import numpy as np

from ..data.video import Frame, VideoFrames, video_frames
from ..errors import InputError, describe
from ..families import adapter
from ..tasks.inputs import task_model

TASK_SIDE = 640  # frames are scaled (while decoding, in YUV) so the longer side is at most this: image models
# see 64-384 px, and a batch of 16 frames at 640 px is 20 MB where 16 full-HD frames would be 100 MB
Progress = Callable[[int, float], None]  # (frames done, time of the last one); may raise to stop the work


@dataclass
class Segment:
    """Consecutive sampled frames that got the same caption: shown from `start` to `end` seconds."""

    start: float
    end: float
    caption: str


@dataclass
class VideoCaptions:
    """caption_video's result: timed segments, and the per-frame captions they were merged from."""

    segments: list[Segment]
    times: list[float]  # (T,) time of each sampled frame
    captions: list[str]  # (T,) its caption

    def caption_at(self, t: float) -> str:
        """The caption of the segment shown at time t."""
        for s in self.segments:
            if s.start <= t < s.end:
                return s.caption
        return self.segments[-1].caption if self.segments and t >= self.segments[-1].end else ""

    def __str__(self) -> str:
        return "\n".join(f"{s.start:6.2f}-{s.end:6.2f} s  {s.caption}" for s in self.segments)


@dataclass
class Moment:
    """A stretch of the video that matches the text: from `start` to `end` seconds, with its peak score."""

    start: float
    end: float
    score: float


@dataclass
class VideoSearch:
    """search_video's result: the best moments, and the per-frame score curve they come from."""

    text: str
    moments: list[Moment]  # best first
    times: np.ndarray  # (T,) time of each sampled frame
    scores: np.ndarray  # (T,) its image-text score (cosine for CLIP/ALIGN/BLIP, P(match) for ViLT's ITM head)
    threshold: float  # frames scoring at least this form moments

    def __str__(self) -> str:
        return "\n".join(f"{m.start:6.2f}-{m.end:6.2f} s  score {m.score:.3f}" for m in self.moments)

    def plot(self, ax=None, truth=None):
        """The score curve with the moments shaded (and true intervals as bars); returns the Figure."""
        from .plots import plot_search

        return plot_search(self, ax=ax, truth=truth)


@dataclass
class VideoAnswers:
    """answer_video's result: one answer per sampled frame, and one overall answer with the rule that made it."""

    question: str
    answer: str
    rule: str  # how `answer` was chosen, in words
    times: list[float]
    answers: list[str]
    counts: dict[str, int] = field(default_factory=dict)  # answer -> number of frames that gave it
    limits: str = ("each answer saw one still frame: questions about order or motion ('what comes first?', "
                   "'which way does it move?') cannot be answered this way")

    def __str__(self) -> str:
        return f"{self.answer}  ({self.rule}; per frame: {dict(self.counts)}; {self.limits})"


STILL = {"caption": "mmkit.caption(m, image)", "search result": "mmkit.match(m, image, texts)",
         "answer": "mmkit.answer(m, image, question)"}  # _run's task -> the image function for one picture


ANIMATIONS = ("GIF", "PNG", "WEBP", "FLI")  # formats whose frames are an animation (APNG for PNG); TIFF pages are not


def still_picture(video) -> str | None:
    """The format of a one-frame picture file (PNG, JPEG, a GIF that does not move, ...) given as a video, else None
    (an animated GIF, a video or anything PIL does not read: video_frames reads it, or says what is wrong)."""
    from PIL import Image

    at = None
    if isinstance(video, (bytes, bytearray, memoryview)):
        source = io.BytesIO(bytes(video))
    elif isinstance(video, (str, os.PathLike)):
        if not os.path.isfile(video):
            return None
        source = video
    elif hasattr(video, "read") and hasattr(video, "seek"):
        try:
            at, source = video.tell(), video
        except (OSError, ValueError, io.UnsupportedOperation):  # a pipe or socket: left to video_frames
            return None
    else:
        return None
    try:
        with Image.open(source) as im:
            moving = getattr(im, "is_animated", False) and im.format in ANIMATIONS
            return None if moving or im.format == "MPEG" else im.format  # PIL names an MPEG-1 video by its header
    except Exception:  # not a picture PIL reads (a video, or text): video_frames says what it is
        return None
    finally:
        if at is not None:
            video.seek(at)


def frame_source(video, every, max_frames, max_side, task: str = "result") -> tuple[Iterable[Frame], float | None]:
    """(iterable of Frames, clip end in seconds if known) for a path/bytes/file, a VideoFrames, a Clip or Frames."""
    from ..data.video_world import Clip

    if isinstance(video, VideoFrames):
        return video, video.end
    if isinstance(video, Clip):
        if every is not None and every <= 0:
            raise InputError(f"every={every!r} must be a number of seconds > 0 (or None for every frame)")
        step = 1 if every is None else max(1, int(round(every * video.fps)))
        idx = list(range(0, len(video.times), step))[:max_frames]
        return (Frame(float(video.times[i]), video.frame(video.times[i]), i) for i in idx), video.duration
    if isinstance(video, (list, tuple)):
        if not video or not all(isinstance(f, Frame) for f in video):
            raise InputError("a list of frames must hold Frame(time, image, index) items, e.g. "
                             "list(mmkit.data.video_frames(path)); pass a file path or bytes for a video file")
        frames = sorted(video, key=lambda f: f.time)  # in time order, whatever order they came in
        return frames[:max_frames] if max_frames else frames, None
    fmt = still_picture(video)
    if fmt is not None:
        name = describe(video) if isinstance(video, (str, os.PathLike, bytes, bytearray, memoryview)) else \
            f"file object {getattr(video, 'name', type(video).__name__)!r}"
        raise InputError(f"{name} is a picture ({fmt}, one still frame), not a video; pass it to "
                         f"{STILL.get(task, 'the image function, e.g. mmkit.caption(m, image)')} instead (the video "
                         "functions read clips that move: MP4, WebM, MOV, an animated GIF, ...)")
    return video_frames(video, every=every, max_frames=max_frames, max_side=max_side), None


def _batches(frames: Iterable[Frame], batch_size: int) -> Iterator[list[Frame]]:
    batch: list[Frame] = []
    for f in frames:
        batch.append(f)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def _run(video, every, max_frames, max_side, batch_size, fn, progress: Progress | None, m=None,
         task: str = "result"):
    """Apply fn(list of images) -> list to the sampled frames batch by batch: (times, results, clip end).

    With m, the frames are checked for m (mmkit.domain) as they go, and one notice for the whole clip names the
    frames by their times, where the task functions would warn batch by batch, naming indices within a batch."""
    from ..domain import picture_readings, pictures_checked, reading_notices
    from ..errors import OutOfDomainWarning, warn

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size={batch_size!r} must be a whole number >= 1")
    frames, end = frame_source(video, every, max_frames, max_side, task)
    times: list[float] = []
    out: list = []
    flags: list[bool] = []
    counts: list[int] = []
    shapes: list[list] = []
    for batch in _batches(frames, batch_size):
        images = [f.image for f in batch]
        if m is not None:
            batch_flags, batch_counts, batch_shapes = picture_readings(m, images)
            flags, counts, shapes = flags + batch_flags, counts + batch_counts, shapes + batch_shapes
        with pictures_checked() if m is not None else nullcontext():
            out += list(fn(images))
        times += [f.time for f in batch]
        if progress is not None:
            progress(len(times), times[-1])
    if not times:
        raise InputError("no frames were sampled from the video; use a smaller `every` or check the file")
    if m is not None:
        names = [f"{t:.1f} s" for t in times]
        for message in reading_notices(getattr(m, "spec", None), flags, counts, task,
                                       names if len(times) > 1 else None, shapes):
            warn(message, OutOfDomainWarning)
    return times, out, clip_end(frames, end, times, every)


def clip_end(frames, end: float | None, times: list[float], every: float | None) -> float:
    """Where the last sampled frame stops showing: the clip's end when known, else one sampling step on."""
    if isinstance(frames, VideoFrames):
        end = frames.end  # known once the frames have been read: the header's duration or the frames' own end
    if end is not None and end > times[-1]:
        return float(end)
    step = float(np.median(np.diff(times))) if len(times) > 1 else (every or 1.0)
    return times[-1] + step


def runs(values: list, times: list[float], end: float) -> list[tuple[float, float, object]]:
    """Merge consecutive equal values into (start, end, value): each lasts until the next different one."""
    out: list[tuple[float, float, object]] = []
    for i, (t, v) in enumerate(zip(times, values)):
        if out and out[-1][2] == v:
            continue
        if out:
            out[-1] = (out[-1][0], t, out[-1][2])
        out.append((t, end, v))
    return out


def caption_video(m, video, every: float | None = 1.0, max_frames: int | None = None, max_side: int | None = TASK_SIDE,
                  batch_size: int = 16, progress: Progress | None = None, **caption_kwargs) -> VideoCaptions:
    """Caption sampled frames and merge consecutive frames with the same caption into timed segments.

    Args:
        m: a captioning model (Loaded or name), e.g. "shapes-blip-caption".
        video: a file path, bytes, a binary file object, a `video_frames(...)` iterator, a list of Frames, or a
            synthetic `Clip`. A still picture (PNG, JPEG, a GIF that does not move) is refused: use mmkit.caption.
        every: seconds between sampled frames (None: every frame); max_frames: as in video_frames.
        max_side: frames are scaled so the longer side is at most this many pixels (default 640).
        progress: called as progress(frames_done, last_time) after each batch (raise in it to stop).
        caption_kwargs: decoding options for mmkit.caption (num_beams, max_new_tokens, ...).
    """
    from ..tasks import caption

    m = task_model(m, "caption")
    times, caps, end = _run(video, every, max_frames, max_side, batch_size,
                            lambda ims: caption(m, ims, **caption_kwargs), progress, m, "caption")
    return VideoCaptions([Segment(a, b, c) for a, b, c in runs(caps, times, end)], times, caps)


REGIONS = {"frame": 1, "halves": 5}  # images scored per frame: the frame; or the frame and its four halves


def masked_halves(image):
    """The image and four copies of it, each keeping one half (top, bottom, left, right) on its border colour.

    Masking, not cropping: each copy keeps the frame's size and the objects their size and place, so a frame
    with two objects gives copies that show one each, the kind of picture a short text like 'a red circle' fits.
    """
    from PIL import Image

    from ..data.framing import edge_colour

    a = np.asarray(image.convert("RGB"))  # (H, W, 3)
    h, w = a.shape[0] // 2, a.shape[1] // 2
    fill = edge_colour(a).astype(np.uint8)  # the background colour, usually
    out = [image]
    for keep in [(slice(0, h), slice(None)), (slice(h, None), slice(None)), (slice(None), slice(0, w)),
                 (slice(None), slice(w, None))]:
        b = np.empty_like(a)
        b[:] = fill
        b[keep] = a[keep]
        out.append(Image.fromarray(b))
    return out


def _scorer(m, texts: list[str], regions: str):
    """fn(list of images) -> (B, Q) scores of the images against the texts (the best region of each image)."""
    from ..tasks import embed_images, embed_texts, match

    k = REGIONS[regions]
    if adapter(m).embeds:  # an embedding space (BLIP-ITM: its contrastive head, BLIP's own retrieval score)
        text_emb = embed_texts(m, texts)  # (Q, D) embedded once
        score = lambda ims: (embed_images(m, ims) @ text_emb.T).numpy()  # (B * k, Q) cosine similarity
    else:
        score = lambda ims: match(m, ims, texts).numpy()  # (B * k, Q) P(match) from ViLT's ITM head
    if k == 1:
        return score

    def best_region(ims):  # (B, Q); search_video checks the frames, not their halves (some show no shape)
        return score([x for im in ims for x in masked_halves(im)]).reshape(len(ims), k, -1).max(1)

    return best_region


def moments(times, scores, end: float, threshold: float | None = None, k: int = 3) -> tuple[list[Moment], float]:
    """Maximal runs of frames scoring >= threshold, as Moments ranked by peak score; (top k, threshold used).

    threshold None: halfway between the lowest and the highest score of the clip (a moment is where the score
    is nearer its top than its bottom). A run lasts from its first frame to the next sampled frame.
    """
    s = np.asarray(scores, dtype=float)  # (T,)
    thr = float((s.min() + s.max()) / 2) if threshold is None else float(threshold)
    on, found, i = s >= thr, [], 0
    while i < len(s):
        if not on[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(s) and on[j + 1]:
            j += 1  # frames i..j form one run
        found.append(Moment(float(times[i]), float(times[j + 1]) if j + 1 < len(s) else float(end), float(s[i:j + 1].max())))
        i = j + 1
    return sorted(found, key=lambda mo: -mo.score)[:k], thr


def search_video(m, video, text, k: int = 3, every: float | None = 1.0, threshold: float | None = None,
                 regions: str = "halves", max_frames: int | None = None, max_side: int | None = TASK_SIDE,
                 batch_size: int = 16, progress: Progress | None = None):
    """Find the moments of a video that match a text: cosine of CLIP/ALIGN/BLIP-ITM embeddings (ViLT: P(match)).

    Args:
        m: an image-text model (Loaded or name), e.g. "shapes-clip".
        video: as in caption_video.
        text: what to find, e.g. "a red circle"; a list of texts gives a list of results from one pass
            over the video (the frames are decoded and embedded once).
        k: how many moments to return (best first).
        threshold: frames scoring at least this belong to a moment (default: halfway between the clip's
            lowest and highest score, so some moment is always found: read the scores).
        regions: "halves" scores the frame and its four masked halves and keeps the best (5 images per frame:
            a two-object frame matches 'a red circle' through the half that shows it); "frame" scores the frame
            alone (5x cheaper; single-object texts then score low on frames with several objects).
    Returns VideoSearch(text, moments, times (T,), scores (T,), threshold), or a list of them.
    """
    from ..tasks.inputs import text_list

    m = task_model(m, "match")
    if not isinstance(text, (str, list, tuple)):
        raise InputError("text must be a string, e.g. 'a red circle', or a list of strings")
    texts, single = text_list(text, "text")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InputError(f"k={k!r} must be a whole number >= 1")
    if regions not in REGIONS:
        raise InputError(f"regions={regions!r}: use 'halves' (frame and its four halves) or 'frame' (frame only)")
    times, scores, end = _run(video, every, max_frames, max_side, batch_size, _scorer(m, texts, regions), progress,
                              m, "search result")
    scores = np.asarray(scores, dtype=float)  # (T, Q)
    out = []
    for q, t in enumerate(texts):
        found, thr = moments(times, scores[:, q], end, threshold, k)
        out.append(VideoSearch(t, found, np.asarray(times), scores[:, q], thr))
    return out[0] if single else out


RULES = {"vote": "the answer most frames gave (ties: the one given first)",
         "any": "'yes' when any frame says yes, else the vote (for 'is there ... in the video?')"}


def answer_video(m, video, question: str, every: float | None = 1.0, rule: str = "vote",
                 max_frames: int | None = None, max_side: int | None = TASK_SIDE, batch_size: int = 16,
                 progress: Progress | None = None) -> VideoAnswers:
    """Answer a question on each sampled frame, and combine the answers into one by a stated rule.

    Args:
        m: a VQA model (Loaded or name), e.g. "shapes-blip-vqa".
        question: one question, asked of every sampled frame separately.
        rule: "vote" (the most frequent answer) or "any" ('yes' if any frame says yes).
    A frame-by-frame model cannot answer questions about order or motion ("what comes first?", "which way does
    it move?"): each answer sees one still picture.
    """
    from ..tasks import answer

    if rule not in RULES:
        raise InputError(f"rule={rule!r}: use one of {sorted(RULES)} ({'; '.join(f'{k}: {v}' for k, v in RULES.items())})")
    m = task_model(m, "answer")
    if not isinstance(question, str) or not question.strip():
        raise InputError("question must be a non-empty string, e.g. 'is there a red circle?'")
    times, answers, _ = _run(video, every, max_frames, max_side, batch_size, lambda ims: answer(m, ims, question),
                             progress, m, "answer")
    counts = Counter(answers)
    first = {a: i for i, a in reversed(list(enumerate(answers)))}  # answer -> first frame giving it
    overall = max(counts, key=lambda a: (counts[a], -first[a]))
    if rule == "any" and "yes" in counts:
        overall = "yes"
    return VideoAnswers(question, overall, f"{rule}: {RULES[rule]}", times, answers, dict(counts))


def temporal_iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Intersection over union of two time intervals (start, end) in seconds; 0 when they do not overlap."""
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0
