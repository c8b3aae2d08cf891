"""Video: image-text models over time (frames via PyAV; timed captions, moment search, per-frame answers).

    caps = mmkit.caption_video(m, "clip.mp4", every=0.5)   # .segments: [Segment(start, end, caption)]
    hits = mmkit.search_video(m, "clip.mp4", "a red circle")  # .moments, .times, .scores
    qa = mmkit.answer_video(m, "clip.mp4", "is there a red circle?")  # .answer, .rule, .answers
"""
from .plots import frame_strip, plot_search, plot_segments
from .tasks import (Moment, Segment, VideoAnswers, VideoCaptions, VideoSearch, answer_video, caption_video, moments,
                    masked_halves, runs, search_video, temporal_iou)

__all__ = ["Moment", "Segment", "VideoAnswers", "VideoCaptions", "VideoSearch", "answer_video", "caption_video",
           "frame_strip", "masked_halves", "moments", "plot_search", "plot_segments", "runs", "search_video", "temporal_iou"]
