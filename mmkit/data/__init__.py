"""Data: robust image loading, ShapesWorld, and bundled sample photos."""
from .images import load_image
from .samples import SAMPLES, sample_images, sample_path
from .shapes import ANSWERS, COLORS, HELD_OUT, QA, QUESTION_KINDS, SHAPES, SIZES, Obj, Scene, ShapesWorld
from .video import Frame, VideoFrames, VideoInfo, video_frames, write_video
from .video_world import Clip, Interval, ShapesClips, Track

__all__ = ["load_image", "ShapesWorld", "Scene", "Obj", "QA", "ANSWERS", "COLORS", "SHAPES", "SIZES",
           "HELD_OUT", "QUESTION_KINDS", "sample_images", "sample_path", "SAMPLES",
           "video_frames", "write_video", "Frame", "VideoFrames", "VideoInfo", "ShapesClips", "Clip", "Track", "Interval"]
